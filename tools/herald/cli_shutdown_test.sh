#!/usr/bin/env bash
# `herald relay` stops within its --shutdown-timeout when the broker is down,
# and says how many publishes were not confirmed; `herald tail` reports an
# unreachable broker within its --timeout. Needs no server: the Kafka
# address is a loopback port where nothing listens.
set -euo pipefail
HERALD=$1
dir=$(mktemp -d)
relay_pid=
cleanup() {
  [[ -n "$relay_pid" ]] && kill -KILL "$relay_pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
db=$dir/outbox.db
# A loopback port that was free a moment ago (nothing listens on it).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
brokers=127.0.0.1:$port

"$HERALD" outbox stats --sqlite "$db" >/dev/null
for i in $(seq 1 20); do
  echo "INSERT INTO herald_outbox (event_type, topic, event_payload) VALUES ('customer.created', 'customer-events', '{\"customer_id\":\"c$i\"}');"
done | sqlite3 "$db"

# SIGTERM while the relay waits for delivery reports that cannot come.
"$HERALD" relay --sqlite "$db" --kafka "$brokers" --shutdown-timeout 2s >"$dir/out" 2>"$dir/err" &
relay_pid=$!
for _ in $(seq 1 100); do grep -q 'relay: running' "$dir/err" && break; sleep 0.1; done
sleep 1  # the first batch is claimed and published
start=$(date +%s%N)
kill -TERM "$relay_pid"
rc=0
wait "$relay_pid" || rc=$?
relay_pid=
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
# Deadline 2 s; the margin covers librdkafka's shutdown and a slow machine.
((elapsed_ms < 7000)) || { echo "relay took ${elapsed_ms} ms to exit after SIGTERM (--shutdown-timeout 2s)"; cat "$dir/err"; exit 1; }
[[ $rc == 3 ]] || { echo "relay exit code $rc, want 3 (publishes unconfirmed)"; cat "$dir/err"; exit 1; }
grep -q ': 20 publishes not confirmed' "$dir/err" || { echo "no count of unconfirmed publishes:"; cat "$dir/err"; exit 1; }
# Nothing is lost: every row is still pending, none parked.
[[ "$("$HERALD" outbox stats --sqlite "$db" | head -2 | tr '\n' ' ')" == "pending 20 parked 0 " ]] ||
  { echo "rows not left pending:"; "$HERALD" outbox stats --sqlite "$db"; exit 1; }
echo "relay stopped ${elapsed_ms} ms after SIGTERM, exit code 3"

# A second signal ends the stop at once (128 + SIGTERM), rows still pending.
"$HERALD" relay --sqlite "$db" --kafka "$brokers" --shutdown-timeout 60s >/dev/null 2>"$dir/err" &
relay_pid=$!
for _ in $(seq 1 100); do grep -q 'relay: running' "$dir/err" && break; sleep 0.1; done
sleep 1
kill -TERM "$relay_pid"
for _ in $(seq 1 100); do grep -q 'relay: stopping' "$dir/err" && break; sleep 0.1; done
start=$(date +%s%N)
kill -TERM "$relay_pid"
rc=0
wait "$relay_pid" || rc=$?
relay_pid=
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
[[ $rc == 143 ]] || { echo "relay after a second SIGTERM: exit code $rc, want 143"; cat "$dir/err"; exit 1; }
((elapsed_ms < 3000)) || { echo "relay took ${elapsed_ms} ms to exit after a second SIGTERM"; exit 1; }
[[ "$("$HERALD" outbox stats --sqlite "$db" | head -2 | tr '\n' ' ')" == "pending 20 parked 0 " ]] ||
  { echo "rows not left pending after a second signal"; exit 1; }

# With everything confirmed (stdout bus), a stop is exit code 0. (A fresh
# outbox: the killed relay's SQLite lease would make this one stand by.)
db=$dir/fresh.db
"$HERALD" outbox stats --sqlite "$db" >/dev/null
for i in $(seq 1 20); do
  echo "INSERT INTO herald_outbox (event_type, topic, event_payload) VALUES ('customer.created', 'customer-events', '{\"customer_id\":\"c$i\"}');"
done | sqlite3 "$db"
"$HERALD" relay --sqlite "$db" --stdout --shutdown-timeout 5s >"$dir/out" 2>"$dir/err" &
relay_pid=$!
for _ in $(seq 1 100); do grep -q 'relay: running' "$dir/err" && break; sleep 0.1; done
# (stdout is a file here, so lines show up at the flush: wait on the outbox)
for _ in $(seq 1 100); do "$HERALD" outbox stats --sqlite "$db" | grep -q '^pending 0$' && break; sleep 0.1; done
kill -TERM "$relay_pid"
rc=0
wait "$relay_pid" || rc=$?
relay_pid=
[[ $rc == 0 ]] || { echo "relay stop with nothing unconfirmed: exit code $rc, want 0"; cat "$dir/err"; exit 1; }
[[ $(grep -c customer.created "$dir/out") == 20 ]] || { echo "stdout relay did not publish the 20 rows:"; cat "$dir/out" "$dir/err"; "$HERALD" outbox stats --sqlite "$db"; exit 1; }

# tail with nothing at the address: an error within --timeout, not silence.
start=$(date +%s%N)
rc=0
err=$(timeout 30 "$HERALD" tail --kafka "$brokers" --topic customer-events --timeout 2s 2>&1 >/dev/null) || rc=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
[[ $rc == 1 ]] || { echo "tail with no broker: exit code $rc, want 1: $err"; exit 1; }
((elapsed_ms < 7000)) || { echo "tail took ${elapsed_ms} ms to report the unreachable broker"; exit 1; }
grep -q "no Kafka broker at $brokers answered within 2s" <<<"$err" || { echo "tail error unclear: $err"; exit 1; }
# An invalid topic name is refused before connecting.
rc=0
err=$(timeout 30 "$HERALD" tail --kafka "$brokers" --topic 'no such/topic' 2>&1 >/dev/null) || rc=$?
[[ $rc == 2 ]] || { echo "tail with an invalid topic: exit code $rc, want 2: $err"; exit 1; }
grep -q 'no such/topic' <<<"$err" || { echo "tail error does not name the topic: $err"; exit 1; }
echo "herald CLI shutdown: OK"
