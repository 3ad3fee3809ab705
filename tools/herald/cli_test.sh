#!/usr/bin/env bash
# End-to-end test of the `herald` CLI on a SQLite outbox: rows written the way
# a Go service writes them (a plain three-column INSERT) are relayed, counted,
# and a parked row is retried.
set -euo pipefail
trap 'echo "cli_test.sh: line $LINENO failed (exit $?): $BASH_COMMAND" >&2' ERR
HERALD=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
db=$dir/outbox.db

# Create the schema through herald, then write rows as another program would.
"$HERALD" outbox stats --sqlite "$db" >/dev/null
sqlite3 "$db" "INSERT INTO herald_outbox (event_type, topic, event_payload) VALUES
  ('customer.created', 'customer-events', '{\"customer_id\":\"c1\",\"details\":\"Ada\"}'),
  ('customer.updated', 'customer-events', '{\"customer_id\":\"c1\",\"details\":\"Ada K\"}'),
  ('customer.created', 'customer-events', 'not json');"

[[ "$("$HERALD" outbox stats --sqlite "$db" | head -1)" == "pending 3" ]] || { echo "expected 3 pending"; exit 1; }

# A drain that leaves a row parked says so and fails.
if out=$("$HERALD" relay --sqlite "$db" --stdout --drain --trace-file "$dir/spans.jsonl" 2>"$dir/err"); then
  echo "a drain that left a parked row exited 0"; cat "$dir/err"; exit 1
fi
grep -q 'drain incomplete: published 2, 0 still pending.*1 parked' "$dir/err" || { echo "drain counts missing"; cat "$dir/err"; exit 1; }
lines=$(grep -c '"type":"customer' <<<"$out" || true)
[[ "$lines" == 2 ]] || { echo "expected 2 relayed events, got: $out"; cat "$dir/err"; exit 1; }
grep -q '"payload":{"customer_id":"c1","details":"Ada"}' <<<"$out" || { echo "payload not relayed byte-exact: $out"; exit 1; }
# --trace-file: one OTLP JSON line per relayed or parked row, from service herald-relay.
python3 - "$dir/spans.jsonl" <<'PY' || { echo "--trace-file did not write the relay's spans"; cat "$dir/spans.jsonl"; exit 1; }
import json, sys
outcomes = []
for line in open(sys.argv[1]):
    rs = json.loads(line)["resourceSpans"][0]
    assert rs["resource"]["attributes"][0] == {"key": "service.name", "value": {"stringValue": "herald-relay"}}, rs
    for span in rs["scopeSpans"][0]["spans"]:
        assert span["name"] == "relay customer-events", span
        attrs = {a["key"]: a["value"] for a in span["attributes"]}
        outcomes.append(attrs["herald.outcome"]["stringValue"])
assert sorted(outcomes) == ["parked", "published", "published"], outcomes
PY

# The malformed row (JSON content type, not JSON) is parked, not lost.
stats=$("$HERALD" outbox stats --sqlite "$db")
grep -q '^parked 1$' <<<"$stats" || { echo "expected the malformed row parked: $stats"; exit 1; }
"$HERALD" outbox parked --sqlite "$db" | grep -q 'not valid JSON' || { echo "parked row lacks its error"; exit 1; }
seq=$("$HERALD" outbox parked --sqlite "$db" | cut -f1)
sqlite3 "$db" "UPDATE herald_outbox SET event_payload = '\"fixed\"' WHERE seq = $seq"
"$HERALD" outbox retry --sqlite "$db" "$seq" | grep -q '^1 rows pending again$'
out=$("$HERALD" relay --sqlite "$db" --stdout --drain 2>/dev/null)
grep -q '"payload":"fixed"' <<<"$out" || { echo "retried row not relayed: $out"; exit 1; }
# The relay's default retention is zero: published rows are already gone.
"$HERALD" outbox purge --sqlite "$db" --older-than 0s | grep -q '^0 published rows purged$'
# (SQLite keeps the row with the highest seq until a newer one exists, so that
# sequence numbers are never reused.)
[[ "$(sqlite3 "$db" 'SELECT count(*) FROM herald_outbox')" == 1 ]] || { echo "published rows were kept"; exit 1; }
[[ "$("$HERALD" outbox stats --sqlite "$db" | head -2 | tr '\n' ' ')" == "pending 0 parked 0 " ]] || { echo "outbox not empty"; exit 1; }
err=$("$HERALD" relay --sqlite "$db" 2>&1 || true)
grep -q 'name a bus' <<<"$err" || { echo "missing bus not reported: $err"; exit 1; }
# A Go service's row holds the whole evt.ToJSON() envelope: relayed as that
# envelope (its own id, time and payload bytes), not wrapped again.
go_evt='{"id":"5b0e2f8c-3a71-4d2e-9c4b-7e1f0a2d6c93","type":"customer.created","timestamp":"2026-11-30T10:11:12.123456789Z","payload":{"customer_id":"c2","details":null}}'
sqlite3 "$db" "INSERT INTO herald_outbox (event_type, topic, event_payload) VALUES ('customer.created', 'customer-events', '$go_evt')"
err=$("$HERALD" relay --sqlite "$db" --stdout --drain --key-from customer-events=customer_id 2>&1 || true)
grep -q 'not a JSON pointer' <<<"$err" || { echo "bad --key-from not refused: $err"; exit 1; }
out=$("$HERALD" relay --sqlite "$db" --stdout --drain --key-from customer-events=/customer_id 2>/dev/null)
[[ "$out" == "$go_evt" ]] || { echo "Go envelope row not relayed as written: $out"; exit 1; }
# Per-key order: a row with schema version 0 (which consumers reject) is
# parked with the reason, and holds back the later row of its key until an
# operator skips it; the skip is recorded in the row.
sqlite3 "$db" "INSERT INTO herald_outbox (event_type, topic, event_key, schema_version, event_payload) VALUES
  ('customer.updated', 'customer-events', 'c9', 0, '{\"customer_id\":\"c9\",\"n\":1}'),
  ('customer.updated', 'customer-events', 'c9', 1, '{\"customer_id\":\"c9\",\"n\":2}'),
  ('customer.updated', 'customer-events', 'c8', 1, '{\"customer_id\":\"c8\",\"n\":1}');"
# (--drain waits up to --drain-timeout for pending rows; the row behind the
# parked one waits for an operator, so it stays pending: a short timeout.)
out=$("$HERALD" relay --sqlite "$db" --stdout --drain --drain-timeout 2s 2>/dev/null || true)
grep -q '"n":1' <<<"$out" && ! grep -q '"customer_id":"c9"' <<<"$out" || { echo "c9 not held back behind its parked row: $out"; exit 1; }
"$HERALD" outbox parked --sqlite "$db" | grep -q 'schema_version 0 is not a valid' || { echo "version 0 row not parked with its reason"; exit 1; }
seq=$("$HERALD" outbox parked --sqlite "$db" | cut -f1)
if "$HERALD" outbox skip --sqlite "$db" "$seq" >/dev/null 2>&1; then echo "skip without --reason accepted"; exit 1; fi
if "$HERALD" outbox skip --sqlite "$db" 1 --reason test >/dev/null 2>&1; then echo "skip of a row that is not parked succeeded"; exit 1; fi
"$HERALD" outbox skip --sqlite "$db" "$seq" --reason "ticket 17: bad version" | grep -q '^1 parked rows skipped$'
sqlite3 "$db" "SELECT last_error FROM herald_outbox WHERE seq = $seq" | grep -q '^skipped by operator at .*: ticket 17: bad version; last error: schema_version 0' || { echo "skip not recorded in the row"; exit 1; }
[[ "$("$HERALD" outbox stats --sqlite "$db" | sed -n 2p)" == "parked 0" ]] || { echo "skipped row still parked"; exit 1; }
out=$("$HERALD" relay --sqlite "$db" --stdout --drain 2>/dev/null)
grep -q '"customer_id":"c9","n":2' <<<"$out" || { echo "c9 not relayed after the skip: $out"; exit 1; }
! grep -q '"customer_id":"c9","n":1' <<<"$out" || { echo "the skipped row was delivered: $out"; exit 1; }

# --drain takes the relay lease: next to a running relay it waits, says why,
# and gives up after --drain-timeout; once the relay stops it drains.
"$HERALD" relay --sqlite "$db" --stdout --poll 100ms >"$dir/daemon.out" 2>"$dir/daemon.err" &
daemon=$!
# (Its lease is a lock file next to the database.)
for _ in $(seq 100); do [[ -e "$db-lease-herald_relay_leases-relay.lock" ]] && break; sleep 0.1; done
sleep 0.3
if "$HERALD" relay --sqlite "$db" --stdout --drain --drain-timeout 1s >/dev/null 2>"$dir/err"; then
  echo "--drain ran next to a live relay"; exit 1
fi
grep -q 'waiting up to .* for the lease' "$dir/err" || { echo "no progress message while waiting"; cat "$dir/err"; exit 1; }
grep -q 'stayed unavailable' "$dir/err" || { echo "lease timeout not reported"; cat "$dir/err"; exit 1; }
kill -TERM "$daemon"; wait "$daemon" || true
"$HERALD" relay --sqlite "$db" --stdout --drain --drain-timeout 5s >/dev/null 2>"$dir/err" || { echo "drain after the relay stopped failed"; cat "$dir/err"; exit 1; }
grep -q 'drained 0 events' "$dir/err" || { echo "drain did not finish"; cat "$dir/err"; exit 1; }
# SQLite cannot shard: refused at start, with the reason.
if "$HERALD" relay --sqlite "$db" --stdout --shards 2 --shard 1 >/dev/null 2>"$dir/err"; then
  echo "a sharded SQLite relay started"; exit 1
fi
grep -q 'shard_count 2: this store cannot relay in shards' "$dir/err" || { echo "shards not refused"; cat "$dir/err"; exit 1; }

# A bad flag value stops the program before it does anything: one line
# naming the flag, exit code 2. (--batch 0 used to loop for ever; --poll 5
# used to be replaced by the default.)
expect_usage_error() {
  local want=$1; shift
  local rc=0 err
  err=$(timeout 10 "$HERALD" "$@" 2>&1 >/dev/null) || rc=$?
  [[ $rc == 2 ]] || { echo "herald $*: exit code $rc, want 2 (output: $err)"; exit 1; }
  [[ $(wc -l <<<"$err") == 1 ]] || { echo "herald $*: want a one-line error, got: $err"; exit 1; }
  grep -qF -- "$want" <<<"$err" || { echo "herald $*: error lacks \"$want\": $err"; exit 1; }
}
for bad in 0 -1 x; do
  expect_usage_error "--batch" outbox purge --sqlite "$db" --batch "$bad"
  expect_usage_error "--batch" relay --sqlite "$db" --stdout --drain --batch "$bad"
  expect_usage_error "--limit" outbox parked --sqlite "$db" --limit "$bad"
  expect_usage_error "--shards" relay --sqlite "$db" --stdout --drain --shards "$bad"
done
expect_usage_error "--shard" relay --sqlite "$db" --stdout --drain --shard -1
expect_usage_error "--shard 2 is not below --shards 2" relay --sqlite "$db" --stdout --drain --shards 2 --shard 2
expect_usage_error "seq" outbox retry --sqlite "$db" 0
for bad in 5 garbage -5s inf 0s; do
  expect_usage_error "--poll: \"$bad\"" relay --sqlite "$db" --stdout --drain --poll "$bad"
  expect_usage_error "--report-every" relay --sqlite "$db" --stdout --drain --report-every "$bad"
done
expect_usage_error "250ms, 5s" relay --sqlite "$db" --stdout --drain --poll 5
expect_usage_error "--shutdown-timeout" relay --sqlite "$db" --stdout --drain --shutdown-timeout 10
expect_usage_error "--older-than" outbox purge --sqlite "$db" --older-than 24
expect_usage_error "--batch" outbox migrate --postgres --batch 0
expect_usage_error "--lock-timeout" outbox migrate --postgres --lock-timeout 5
expect_usage_error "--timeout" tail --kafka 127.0.0.1:1 --topic t --timeout 5
expect_usage_error "--topic" tail --kafka 127.0.0.1:1
# Good values still work, and --help exits 0.
"$HERALD" outbox purge --sqlite "$db" --older-than 1m30s --batch 1 | grep -q 'published rows purged$'
"$HERALD" relay --sqlite "$db" --stdout --drain --poll 250ms --report-every 1h --shutdown-timeout 0 >/dev/null 2>&1
# The whole help first: grep -q stops reading at its match, and a writer
# still writing then dies of SIGPIPE, which pipefail makes a failure.
grep -q -- '--shutdown-timeout' <<<"$("$HERALD" relay --help)"
echo "herald CLI: OK"
