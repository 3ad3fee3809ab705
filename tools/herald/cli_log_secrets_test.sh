#!/usr/bin/env bash
# No secret in any log line or error of the daemon (labels kafka, postgres).
# `herald relay` and `herald tail` run with known secrets everywhere a
# secret can go: a PostgreSQL DSN with password and sslpassword (key=value
# and URI forms, percent-encoded too), Kafka properties with sasl.password,
# ssl.key.password, ssl.keystore.password, and sasl.oauthbearer.config in a
# --kafka-config file; at --log-level debug with
# librdkafka's debug=security,broker,conf (conf dumps the configuration),
# in text and JSON log formats; runs that work and runs that fail (nothing
# listening for PostgreSQL, a wrong SASL password). Every line of stdout
# and stderr of every run is searched for each secret. JSON lines must
# parse.
set -euo pipefail
HERALD=$1
for v in HERALD_TEST_PG_DSN HERALD_TEST_KAFKA_BROKERS HERALD_TEST_KAFKA_SASL_SSL_BROKERS HERALD_TEST_KAFKA_CA_FILE \
         HERALD_TEST_KAFKA_SASL_MECHANISM HERALD_TEST_KAFKA_SASL_USER HERALD_TEST_KAFKA_SASL_PASSWORD_FILE; do
  [[ -n "${!v:-}" ]] || { echo "$v is not set: run scripts/servers-up.sh and eval \"\$(scripts/servers-env.sh)\""; exit 1; }
done
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
run=$$-$RANDOM
pg_password="PgPw-$run-x"
pg_sslpassword="PgSslPw-$run-y"
key_password="KeyPw-$run-z"
keystore_password="StorePw-$run-w"
oauth_secret="OauthSecret-$run-v"
wrong="WrongSasl-$run-t"
sasl_password=$(cat "$HERALD_TEST_KAFKA_SASL_PASSWORD_FILE")
secrets=("$pg_password" "$pg_sslpassword" "$key_password" "$keystore_password" "$oauth_secret" "$wrong"
         "$sasl_password" "PgPw%2D$run" "PgSslPw%2D$run")
schema="logsec_${run//-/_}"
topic="herald-log-secrets-$run"

# A nothing-listening port for the failing DSNs.
dead_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The working server (trust authentication: the password is sent nowhere,
# but herald holds it and must not print it) in key=value form.
export LOGSEC_GOOD_DSN="$HERALD_TEST_PG_DSN password='$pg_password' sslpassword=$pg_sslpassword"
# URI forms, percent-encoded and not, against nothing listening.
export LOGSEC_DEAD_URI="postgresql://postgres:PgPw%2D$run-x@127.0.0.1:$dead_port/herald_test?sslpassword=PgSslPw%2D$run-y&connect_timeout=2"
export LOGSEC_DEAD_KV="host=127.0.0.1 port=$dead_port user=postgres password=$pg_password sslpassword='$pg_sslpassword' connect_timeout=2"

(umask 077 && printf '%s\n' \
  "security.protocol=SASL_SSL" "sasl.mechanisms=$HERALD_TEST_KAFKA_SASL_MECHANISM" \
  "sasl.username=$HERALD_TEST_KAFKA_SASL_USER" "sasl.password=$sasl_password" \
  "ssl.ca.location=$HERALD_TEST_KAFKA_CA_FILE" "ssl.key.password=$key_password" \
  "ssl.keystore.password=$keystore_password" "sasl.oauthbearer.config=principal=svc clientSecret=$oauth_secret" >"$dir/good.properties")
sed "s/^sasl.password=.*/sasl.password=$wrong/" "$dir/good.properties" >"$dir/wrong.properties"
debug=(--log-level debug -X debug=security,broker,conf)

# check NAME: no secret in $dir/NAME.out or .err; JSON runs parse line by line.
check() {
  local name=$1 format=$2
  for secret in "${secrets[@]}"; do
    if grep -F -- "$secret" "$dir/$name.out" "$dir/$name.err" >/dev/null; then
      echo "$name: a secret is in the output:"; grep -F -- "$secret" "$dir/$name.out" "$dir/$name.err" | head -5
      exit 1
    fi
  done
  [[ -s "$dir/$name.err" ]] || { echo "$name: nothing was logged"; exit 1; }
  if [[ $format == json ]]; then
    python3 - "$dir/$name.err" <<'PY' || { echo "$name: stderr is not JSON lines"; head -5 "$dir/$name.err"; exit 1; }
import json, sys
for n, line in enumerate(open(sys.argv[1], encoding="utf-8", errors="strict"), 1):
    record = json.loads(line)
    assert {"time", "level", "component", "message"} <= record.keys(), (n, line)
PY
  fi
}

# Outbox rows to relay: the store makes its tables, psql adds three rows.
HERALD_PG_DSN=$LOGSEC_GOOD_DSN "$HERALD" outbox stats --postgres --postgres-env LOGSEC_GOOD_DSN --schema "$schema" >/dev/null
for i in 1 2 3; do
  echo "INSERT INTO $schema.outbox (event_type, topic, event_payload) VALUES ('customer.created', '$topic', '{\"customer_id\":\"c$i\"}');"
done | psql -q -v ON_ERROR_STOP=1 "$HERALD_TEST_PG_DSN" >/dev/null

for format in text json; do
  # Works: rows relayed over SASL_SSL with every secret set.
  rc=0
  "$HERALD" relay --drain --postgres --postgres-env LOGSEC_GOOD_DSN --schema "$schema" \
    --kafka "$HERALD_TEST_KAFKA_SASL_SSL_BROKERS" --kafka-config "$dir/good.properties" "${debug[@]}" \
    --log-format "$format" >"$dir/relay-$format.out" 2>"$dir/relay-$format.err" || rc=$?
  [[ $rc == 0 ]] || { echo "relay ($format): exit code $rc"; tail -5 "$dir/relay-$format.err"; exit 1; }
  check "relay-$format" "$format"
  grep -q 'drained' "$dir/relay-$format.err" || { echo "relay ($format): no drain line"; exit 1; }
  grep -q 'sasl.password' "$dir/relay-$format.err" || { echo "relay ($format): no librdkafka conf dump"; exit 1; }
  grep -qi 'debug' "$dir/relay-$format.err" || { echo "relay ($format): no debug record"; exit 1; }

  # PostgreSQL not there, in both DSN forms: the error names no secret.
  for dsn in LOGSEC_DEAD_URI LOGSEC_DEAD_KV; do
    name="relay-$format-$dsn"
    rc=0
    "$HERALD" relay --drain --postgres --postgres-env "$dsn" --kafka "$HERALD_TEST_KAFKA_BROKERS" "${debug[@]}" \
      --log-format "$format" >"$dir/$name.out" 2>"$dir/$name.err" || rc=$?
    [[ $rc == 1 ]] || { echo "$name: exit code $rc, want 1"; cat "$dir/$name.err"; exit 1; }
    grep -q 'PostgreSQL connection failed' "$dir/$name.err" || { echo "$name: no connection error"; cat "$dir/$name.err"; exit 1; }
    check "$name" "$format"
    # The outbox stats command fails the same way (plain text errors).
    rc=0
    "$HERALD" outbox stats --postgres --postgres-env "$dsn" >"$dir/$name-stats.out" 2>"$dir/$name-stats.err" || rc=$?
    [[ $rc == 1 ]] || { echo "$name stats: exit code $rc, want 1"; exit 1; }
    check "$name-stats" text
  done

  # A wrong SASL password: tail fails to connect, librdkafka logs why.
  name="tail-$format-wrong"
  rc=0
  "$HERALD" tail --kafka "$HERALD_TEST_KAFKA_SASL_SSL_BROKERS" --topic "$topic" --timeout 5s \
    --kafka-config "$dir/wrong.properties" "${debug[@]}" --log-format "$format" \
    >"$dir/$name.out" 2>"$dir/$name.err" || rc=$?
  [[ $rc == 1 ]] || { echo "$name: exit code $rc, want 1"; cat "$dir/$name.err"; exit 1; }
  grep -q 'SASL authentication' "$dir/$name.err" || { echo "$name: no authentication error"; tail -5 "$dir/$name.err"; exit 1; }
  check "$name" "$format"
done
echo "herald log secrets: OK"
