#!/usr/bin/env bash
# `herald relay --metrics-address`: a running relay on a SQLite outbox serves
# /metrics (checked by Prometheus' own promtool), /healthz and /readyz; a
# standby is not ready with --ready-requires-leader; a bad address is a usage
# error and an address in use a start failure.
set -euo pipefail
HERALD=$1
command -v promtool >/dev/null || { echo "promtool not found: run scripts/install-deps.sh --servers"; exit 1; }
dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
db=$dir/outbox.db
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Waits up to 20 s for `curl URL` to print something matching REGEX.
wait_for() {
  local url=$1 regex=$2
  for _ in $(seq 200); do
    if curl -s "$url" 2>/dev/null | grep -qE "$regex"; then return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for /$regex/ at $url; last answer:"; curl -s -i "$url" || true
  return 1
}

"$HERALD" outbox stats --sqlite "$db" >/dev/null
sqlite3 "$db" "INSERT INTO herald_outbox (event_type, topic, event_key, event_payload) VALUES
  ('customer.created', 'customer-events', 'c1', '{\"customer_id\":\"c1\"}'),
  ('customer.updated', 'customer-events', 'c1', '{\"customer_id\":\"c1\"}'),
  ('customer.created', 'customer-events', 'c2', '{\"customer_id\":\"c2\"}');"

port=$(free_port)
"$HERALD" relay --sqlite "$db" --stdout --metrics-address "127.0.0.1:$port" --ready-max-lag 1h --poll 100ms \
  >"$dir/out" 2>"$dir/err" &
pids+=($!)
base=http://127.0.0.1:$port
wait_for "$base/metrics" '^herald_relay_rows_published_total\{relay="relay"\} 3$' || { cat "$dir/err"; exit 1; }
wait_for "$base/readyz" '^ready$'
[[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")" == 200 ]] || { echo "/healthz is not 200"; exit 1; }
[[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/nothing")" == 404 ]] || { echo "an unknown path is not 404"; exit 1; }
page=$(curl -s "$base/metrics")
for line in 'herald_relay_leader{relay="relay"} 1' 'herald_outbox_pending_rows{relay="relay"} 0' \
            'herald_outbox_up{relay="relay"} 1' 'herald_published_total{topic="customer-events"} 3' \
            'herald_publish_failures_total{topic="customer-events"} 0'; do
  grep -qxF "$line" <<<"$page" || { echo "missing from /metrics: $line"; echo "$page"; exit 1; }
done
promtool check metrics <<<"$page" || { echo "promtool check metrics failed on:"; echo "$page"; exit 1; }
grep -q "relay: metrics on http://127.0.0.1:$port/metrics" "$dir/err" || { echo "the address was not printed"; cat "$dir/err"; exit 1; }

# A second relay on the same outbox is a standby: healthy, ready by default,
# not ready when the leader is required.
port2=$(free_port)
"$HERALD" relay --sqlite "$db" --stdout --metrics-address "127.0.0.1:$port2" --ready-requires-leader \
  >/dev/null 2>"$dir/err2" &
pids+=($!)
wait_for "http://127.0.0.1:$port2/readyz" 'relay: UNAVAILABLE: relay: not the leader'
[[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port2/readyz")" == 503 ]] || { echo "standby /readyz is not 503"; exit 1; }
wait_for "http://127.0.0.1:$port2/metrics" '^herald_relay_leader\{relay="relay"\} 0$'

# The address in use: the start fails, naming it (exit 1).
set +e
"$HERALD" relay --sqlite "$db" --stdout --metrics-address "127.0.0.1:$port" >/dev/null 2>"$dir/err3"
rc=$?
set -e
[[ $rc == 1 ]] || { echo "an address in use: expected exit 1, got $rc"; cat "$dir/err3"; exit 1; }
grep -q "cannot listen on 127.0.0.1:$port" "$dir/err3" || { echo "an address in use not named"; cat "$dir/err3"; exit 1; }
# Not HOST:PORT: a usage error (exit 2), before anything runs.
for bad in nonsense 127.0.0.1 127.0.0.1:99999; do
  set +e
  "$HERALD" relay --sqlite "$db" --stdout --metrics-address "$bad" >/dev/null 2>"$dir/err4"
  rc=$?
  set -e
  [[ $rc == 2 ]] || { echo "--metrics-address $bad: expected exit 2, got $rc"; cat "$dir/err4"; exit 1; }
  grep -q 'is not HOST:PORT' "$dir/err4" || { echo "--metrics-address $bad: no reason given"; cat "$dir/err4"; exit 1; }
done

# SIGTERM: the relay stops, then its server.
kill -TERM "${pids[0]}"
wait "${pids[0]}" || { echo "the relay did not exit 0 on SIGTERM"; cat "$dir/err"; exit 1; }
if curl -s "$base/healthz" >/dev/null 2>&1; then echo "the metrics server outlived the relay"; exit 1; fi
[[ "$(grep -c '"type":"customer' "$dir/out")" == 3 ]] || { echo "expected 3 events relayed"; cat "$dir/out"; exit 1; }
echo "cli metrics: /metrics (promtool clean), /healthz, /readyz (leader ready, standby not), address errors"
