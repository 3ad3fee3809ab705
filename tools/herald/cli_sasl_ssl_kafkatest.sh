#!/usr/bin/env bash
# `herald relay` and `herald tail` over TLS + SASL, against the real broker's
# SASL_SSL listener (scripts/kafka-up.sh; label kafka): -X for the protocol
# and mechanism, --kafka-config for the user, the password and the CA. A
# SQLite outbox is relayed and read back; a wrong password and an untrusted
# CA each end the command with exit code 1 and an error line saying why,
# and no output line of any run holds a password.
set -euo pipefail
HERALD=$1
for v in HERALD_TEST_KAFKA_SASL_SSL_BROKERS HERALD_TEST_KAFKA_CA_FILE HERALD_TEST_KAFKA_UNTRUSTED_CA_FILE \
         HERALD_TEST_KAFKA_SASL_MECHANISM HERALD_TEST_KAFKA_SASL_USER HERALD_TEST_KAFKA_SASL_PASSWORD_FILE; do
  [[ -n "${!v:-}" ]] || { echo "$v is not set: run scripts/kafka-up.sh and eval \"\$(scripts/servers-env.sh)\""; exit 1; }
done
dir=$(mktemp -d)
tail_pid=
cleanup() {
  [[ -n "$tail_pid" ]] && kill -KILL "$tail_pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
brokers=$HERALD_TEST_KAFKA_SASL_SSL_BROKERS
password=$(cat "$HERALD_TEST_KAFKA_SASL_PASSWORD_FILE")
wrong="wrong-$RANDOM$RANDOM$RANDOM"
topic="herald-cli-sasl-$$-$RANDOM"
db=$dir/outbox.db
secure=(-X security.protocol=SASL_SSL -X "sasl.mechanisms=$HERALD_TEST_KAFKA_SASL_MECHANISM")

# write_config FILE PASSWORD CA
write_config() {
  (umask 077 && printf '# the test broker'"'"'s SASL_SSL user\nsasl.username=%s\nsasl.password=%s\nssl.ca.location=%s\n' \
    "$HERALD_TEST_KAFKA_SASL_USER" "$2" "$3" >"$1")
}
write_config "$dir/good.properties" "$password" "$HERALD_TEST_KAFKA_CA_FILE"
write_config "$dir/wrong-password.properties" "$wrong" "$HERALD_TEST_KAFKA_CA_FILE"
write_config "$dir/untrusted-ca.properties" "$password" "$HERALD_TEST_KAFKA_UNTRUSTED_CA_FILE"

# no_secret FILE...: no line of the files holds either password.
no_secret() {
  if grep -F -e "$password" -e "$wrong" "$@" >/dev/null; then
    echo "a password appears in the output ($*)"; exit 1
  fi
}

"$HERALD" outbox stats --sqlite "$db" >/dev/null
for i in 1 2 3; do
  echo "INSERT INTO herald_outbox (event_type, topic, event_payload) VALUES ('customer.created', '$topic', '{\"customer_id\":\"c$i\"}');"
done | sqlite3 "$db"

# Relayed over TLS + SASL.
"$HERALD" relay --sqlite "$db" --kafka "$brokers" "${secure[@]}" --kafka-config "$dir/good.properties" \
  --drain --drain-timeout 60s >"$dir/relay.out" 2>"$dir/relay.err" || { echo "relay over SASL_SSL failed"; cat "$dir/relay.err"; exit 1; }
grep -q 'drained 3 events' "$dir/relay.err" || { echo "relay did not drain 3 events"; cat "$dir/relay.err"; exit 1; }
no_secret "$dir/relay.out" "$dir/relay.err"

# Read back over TLS + SASL.
"$HERALD" tail --kafka "$brokers" "${secure[@]}" --kafka-config "$dir/good.properties" --topic "$topic" \
  --from-beginning --timeout 30s >"$dir/tail.out" 2>"$dir/tail.err" &
tail_pid=$!
for _ in $(seq 1 600); do
  [[ $(grep -c 'customer.created' "$dir/tail.out" || true) -ge 3 ]] && break
  kill -0 "$tail_pid" 2>/dev/null || break
  sleep 0.1
done
kill -TERM "$tail_pid" 2>/dev/null || true
rc=0; wait "$tail_pid" || rc=$?
tail_pid=
[[ $rc == 0 ]] || { echo "tail over SASL_SSL exited $rc"; cat "$dir/tail.err"; exit 1; }
for i in 1 2 3; do
  grep -q "customer.created .*\"customer_id\":\"c$i\"" "$dir/tail.out" || { echo "tail did not print c$i"; cat "$dir/tail.out" "$dir/tail.err"; exit 1; }
done
no_secret "$dir/tail.out" "$dir/tail.err"

# A wrong password: the relay keeps the row pending (the event is fine, the
# credentials are not) and says why; exit code 1.
echo "INSERT INTO herald_outbox (event_type, topic, event_payload) VALUES ('customer.created', '$topic', '{\"customer_id\":\"c4\"}');" | sqlite3 "$db"
rc=0
timeout 60 "$HERALD" relay --sqlite "$db" --kafka "$brokers" "${secure[@]}" --kafka-config "$dir/wrong-password.properties" \
  --drain --drain-timeout 3s >"$dir/wrong.out" 2>"$dir/wrong.err" || rc=$?
[[ $rc == 1 ]] || { echo "relay with a wrong password: exit code $rc, want 1"; cat "$dir/wrong.err"; exit 1; }
error=$(grep '^herald: ' "$dir/wrong.err" || true)
[[ $(wc -l <<<"$error") == 1 ]] || { echo "want one error line, got: $error"; cat "$dir/wrong.err"; exit 1; }
grep -q 'drain incomplete: published 0, 1 still pending' <<<"$error" || { echo "row not kept pending: $error"; exit 1; }
grep -q 'SASL authentication error' <<<"$error" || { echo "error does not say authentication failed: $error"; exit 1; }
grep -q 'sasl.password' <<<"$error" || { echo "error gives no hint: $error"; exit 1; }
no_secret "$dir/wrong.out" "$dir/wrong.err"
[[ "$("$HERALD" outbox stats --sqlite "$db" | head -2 | tr '\n' ' ')" == "pending 1 parked 0 " ]] || { echo "row not pending"; exit 1; }

# tail with a wrong password, then with a CA that did not sign the broker's
# certificate: exit code 1 within --timeout, naming the cause.
for case in wrong-password untrusted-ca; do
  rc=0
  timeout 60 "$HERALD" tail --kafka "$brokers" "${secure[@]}" --kafka-config "$dir/$case.properties" --topic "$topic" \
    --timeout 5s >"$dir/$case.out" 2>"$dir/$case.err" || rc=$?
  [[ $rc == 1 ]] || { echo "tail, $case: exit code $rc, want 1"; cat "$dir/$case.err"; exit 1; }
  error=$(grep '^herald: ' "$dir/$case.err" || true)
  [[ $(wc -l <<<"$error") == 1 ]] || { echo "tail, $case: want one error line, got: $error"; exit 1; }
  grep -q "no Kafka broker at $brokers answered within 5s" <<<"$error" || { echo "tail, $case: $error"; exit 1; }
  no_secret "$dir/$case.out" "$dir/$case.err"
done
grep -q 'SASL authentication error' "$dir/wrong-password.err" || { echo "tail: no authentication error"; cat "$dir/wrong-password.err"; exit 1; }
grep -q 'certificate verify failed' "$dir/untrusted-ca.err" || { echo "tail: no certificate error"; cat "$dir/untrusted-ca.err"; exit 1; }
echo "herald over SASL_SSL ($HERALD_TEST_KAFKA_SASL_MECHANISM): OK"
