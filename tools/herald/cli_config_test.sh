#!/usr/bin/env bash
# `herald ... --config FILE` with the real binary: the shipped
# examples/deploy/herald.toml is accepted (--check-config), the shipped unit
# verifies (systemd-analyze, where it exists) and agrees with the config's
# shutdown-timeout, keys set flags and the command line overrides them, and
# every bad input is exit code 2 with one line naming FILE:LINE and the key
# (never a secret). Also `herald outbox stats|parked --json`. Needs no server.
# Usage: cli_config_test.sh HERALD DEPLOY_DIR
set -euo pipefail
HERALD=$1
DEPLOY=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
db=$dir/outbox.db
secret="s3cr3t-$RANDOM$RANDOM"
fail() { echo "FAIL: $*"; exit 1; }

# expect_usage_error WANT ARGS...: exit code 2, one line containing WANT,
# and never the secret.
expect_usage_error() {
  local want=$1; shift
  local rc=0 out
  out=$(timeout 20 "$HERALD" "$@" 2>&1) || rc=$?
  [[ $rc == 2 ]] || fail "herald $*: exit code $rc, want 2 (output: $out)"
  [[ $(wc -l <<<"$out") == 1 ]] || fail "herald $*: want a one-line error, got: $out"
  grep -qF -- "$want" <<<"$out" || fail "herald $*: error lacks \"$want\": $out"
  if grep -qF -- "$secret" <<<"$out"; then fail "herald $*: the secret is in the output: $out"; fi
}

# --- The shipped config file and unit. -------------------------------------
export HERALD_PG_DSN="host=127.0.0.1 port=1 dbname=unused"
out=$(HERALD_KAFKA_PASSWORD=$secret "$HERALD" relay --config "$DEPLOY/herald.toml" --check-config 2>&1) ||
  fail "the shipped herald.toml is refused: $out"
grep -qx "herald: configuration OK" <<<"$out" || fail "--check-config said: $out"
# Its Kafka secret comes from the environment: without the variable, it is
# refused, naming the variable.
expect_usage_error "--kafka-secret-env sasl.password=HERALD_KAFKA_PASSWORD: environment variable HERALD_KAFKA_PASSWORD is not set" \
  relay --config "$DEPLOY/herald.toml" --check-config
# So is its DSN's: --check-config does not open the store, but checks that.
(
  unset HERALD_PG_DSN
  HERALD_KAFKA_PASSWORD=$secret expect_usage_error "environment variable HERALD_PG_DSN (postgres-env) is not set" \
    relay --config "$DEPLOY/herald.toml" --check-config
)

unit=$DEPLOY/herald-relay.service
grep -q '^ExecStart=/usr/bin/herald relay --config /etc/herald/herald.toml$' "$unit" || fail "ExecStart of $unit"
# systemd must not SIGKILL a relay that is within its shutdown deadline
# (shutdown-timeout, plus the 5 s herald gives the relay thread after it).
shutdown=$(sed -n 's/^shutdown-timeout = "\([0-9]*\)s".*/\1/p' "$DEPLOY/herald.toml")
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$unit")
[[ -n $shutdown && -n $stop ]] || fail "shutdown-timeout ($shutdown) or TimeoutStopSec ($stop) not found"
((stop > shutdown + 5)) || fail "TimeoutStopSec=${stop}s is not above shutdown-timeout ${shutdown}s + 5s"
if command -v systemd-analyze >/dev/null 2>&1; then
  # verify checks that the commands exist: point them at the binary built.
  sed "s|/usr/bin/herald|$HERALD|g" "$unit" >"$dir/herald-relay.service"
  systemd-analyze verify "$dir/herald-relay.service" || fail "systemd-analyze verify $unit"
  echo "systemd-analyze verify: ok"
else
  echo "skipping the unit check only: systemd-analyze is not installed on this machine"
fi

# --- A config file that runs: SQLite, stdout. -------------------------------
"$HERALD" outbox stats --sqlite "$db" >/dev/null
sqlite3 "$db" "INSERT INTO herald_outbox (event_type, topic, event_key, event_payload) VALUES
  ('customer.created', 'customer-events', 'c1', '{\"customer_id\":\"c1\"}'),
  ('customer.created', 'customer-events', 'c2', 'not json');"
conf=$dir/herald.toml
cat >"$conf" <<EOF
[store]
sqlite = "$db"
[bus]
stdout = true
[relay]
drain = true
drain-timeout = "3s"
key-from = { "customer-events" = "/customer_id" }
batch = 0
EOF
# batch = 0 is refused, naming the file, its line and the key...
expect_usage_error "$conf:9: relay.batch: must be at least 1, not 0" relay --config "$conf"
# ...but a flag on the command line wins, so the file's batch is not used.
rc=0
"$HERALD" relay --config "$conf" --batch 10 >"$dir/out" 2>"$dir/err" || rc=$?
# The malformed row is parked, so the drain is incomplete (exit 1): the
# file's sqlite, stdout, drain and drain-timeout were all in effect.
[[ $rc == 1 ]] || fail "relay --config: exit code $rc, want 1: $(cat "$dir/err")"
grep -q '"customer_id":"c1"' "$dir/out" || fail "the relay did not publish to stdout: $(cat "$dir/out")"
grep -q 'drain incomplete: published 1, 0 still pending.*1 parked' "$dir/err" || fail "drain: $(cat "$dir/err")"

# `herald outbox stats|parked --json`.
stats=$("$HERALD" outbox stats --sqlite "$db" --json)
python3 -c 'import json, sys
s = json.loads(sys.argv[1])
assert s["pending"] == 0 and s["parked"] == 1 and s["lag_seconds"] == 0, s' "$stats" ||
  fail "outbox stats --json: $stats"
parked=$("$HERALD" outbox parked --sqlite "$db" --json 2>/dev/null)
python3 -c 'import json, sys
lines = sys.argv[1].splitlines()
assert len(lines) == 1, lines
row = json.loads(lines[0])
assert row["type"] == "customer.created" and row["topic"] == "customer-events" and row["key"] == "c2", row
assert row["attempts"] >= 1 and "JSON" in row["last_error"] and isinstance(row["sequence"], int), row
assert set(row) == {"sequence", "id", "type", "topic", "key", "attempts", "last_error"}, row' "$parked" ||
  fail "outbox parked --json: $parked"

# --- Every bad input: exit code 2, FILE:LINE and the key. -----------------
bad=$dir/bad.toml
write() { printf '%b' "$1" >"$bad"; }
write '[store]\nsqlite = "x.db"\n[relay]\nbacth = 5\n'
expect_usage_error "$bad:4: relay.bacth: no herald command has a flag --bacth" relay --config "$bad" --stdout
write '[relay]\nbatch = "500"\n'
expect_usage_error "$bad:2: relay.batch: want a whole number, not string" relay --config "$bad"
write '[relay]\ndrain = 1\n'
expect_usage_error "$bad:2: relay.drain: want true or false, not integer" relay --config "$bad"
write '[relay]\nshutdown-timeout = 20\n'
expect_usage_error "$bad:2: relay.shutdown-timeout: want a string, not integer" relay --config "$bad"
write '[relay]\n\nshutdown-timeout = "20"\n'
expect_usage_error "$bad:3: relay.shutdown-timeout: \"20\" is not a duration" relay --config "$bad"
write '[metrics]\nmetrics-address = "nohost"\n'
expect_usage_error "$bad:2: metrics.metrics-address:" relay --config "$bad"
write '[realy]\nbatch = 5\n'
expect_usage_error "$bad:1: [realy]: not a section" relay --config "$bad"
write '[relay]\nbatch = = 5\n'
expect_usage_error "$bad:2: not TOML" relay --config "$bad"
expect_usage_error "--config $dir/missing.toml: cannot read it" relay --config "$dir/missing.toml"
# A value librdkafka refuses, an unknown property.
write '[kafka-property]\n"security.protocol" = "SASL_TLS"\n'
expect_usage_error "$bad:2: kafka-property.security.protocol: librdkafka property \"security.protocol\": Invalid value" \
  relay --config "$bad"
write '[kafka-property]\n\n"no.such.property" = 1\n'
expect_usage_error "$bad:3: kafka-property.no.such.property: librdkafka property \"no.such.property\": No such" \
  tail --config "$bad"
# Secrets are refused in the file, without showing them.
for key in sasl.password ssl.key.password ssl.keystore.password sasl.oauthbearer.client.secret ssl.key.pem; do
  write "[bus]\nkafka = \"127.0.0.1:1\"\n[kafka-property]\n\"$key\" = \"$secret\"\n"
  expect_usage_error "$bad:4: kafka-property.$key: a secret is never taken from the config file" relay --config "$bad"
done
write '[kafka-secret-env]\n"sasl.password" = "not a name"\n'
expect_usage_error "$bad:2: kafka-secret-env.sasl.password: \"not a name\" is not an environment variable name" \
  relay --config "$bad"
write '[kafka-secret-env]\n"sasl.pasword" = "HERALD_KAFKA_PASSWORD"\n'
expect_usage_error "$bad:2: kafka-secret-env.sasl.pasword: librdkafka property \"sasl.pasword\": No such" \
  relay --config "$bad"
# --kafka-secret-env takes the secret from the environment (not from the
# command line, which names only the variable).
rc=0
out=$(HERALD_KAFKA_PASSWORD=$secret "$HERALD" tail --kafka 127.0.0.1:1 --topic t --check-config \
  --kafka-secret-env sasl.password=HERALD_KAFKA_PASSWORD 2>&1) || rc=$?
[[ $rc == 0 ]] || fail "--kafka-secret-env with the variable set: exit $rc: $out"
expect_usage_error "environment variable HERALD_NO_SUCH_VAR is not set" \
  tail --kafka 127.0.0.1:1 --topic t --check-config --kafka-secret-env sasl.password=HERALD_NO_SUCH_VAR
# A cross-flag check after the file: the file's shard, the command line's
# shards; overriding the shard makes it right.
write '[relay]\nshards = 1\nshard = 3\n'
expect_usage_error "--shard 3 is not below --shards 1" relay --config "$bad" --sqlite "$db" --stdout --check-config
"$HERALD" relay --config "$bad" --sqlite "$db" --stdout --check-config --shard 0 2>/dev/null ||
  fail "--shard on the command line did not override the file"
# The file may give a required flag (tail's --topic); a key of another
# command (relay's batch) is ignored by tail.
write '[bus]\nkafka = "127.0.0.1:1"\n[relay]\nbatch = 5\n[tail]\n'
expect_usage_error "$bad:5: [tail]: not a section" tail --config "$bad" --check-config
write 'topic = ["a", "b"]\n[bus]\nkafka = "127.0.0.1:1"\n[relay]\nbatch = 5\n'
"$HERALD" tail --config "$bad" --check-config 2>/dev/null || fail "tail --config with topic and kafka from the file"
# dlq takes --config too: its required --kafka and --topic from the file
# (a string here: dlq's --topic takes one). Nothing listens there, so it
# runs and fails (exit 1), within the file's timeout.
write '[bus]\nkafka = "127.0.0.1:1"\ntopic = "orders.dlq"\ntimeout = "1s"\n[relay]\nbatch = 5\n'
rc=0
out=$(timeout 20 "$HERALD" dlq list --config "$bad" 2>&1) || rc=$?
[[ $rc == 1 ]] || fail "dlq list --config: exit code $rc, want 1 (broker down): $out"
grep -q "127.0.0.1:1" <<<"$out" || fail "dlq list --config did not use the file's --kafka: $out"
write '[bus]\nkafka = "127.0.0.1:1"\ntopic = ["a"]\n'
expect_usage_error "$bad:3: bus.topic: want a string, not array" dlq list --config "$bad"
echo "cli_config_test: ok"
