#!/usr/bin/env bash
# `herald relay` and `herald tail` take librdkafka properties from -X
# key=value and --kafka-config FILE; -X overrides the file. Every bad flag,
# line, property or value is one line naming the key (FILE:LINE for the
# file), exit code 2, and no secret value in the output. Needs no server:
# the Kafka address is a loopback port where nothing listens.
set -euo pipefail
HERALD=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
db=$dir/outbox.db
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
brokers=127.0.0.1:$port
secret="s3cr3t-$RANDOM$RANDOM"
"$HERALD" outbox stats --sqlite "$db" >/dev/null

# expect_usage_error WANT ARGS...: exit code 2, one line containing WANT,
# and never the secret.
expect_usage_error() {
  local want=$1; shift
  local rc=0 out
  out=$(timeout 20 "$HERALD" "$@" 2>&1) || rc=$?
  [[ $rc == 2 ]] || { echo "herald $*: exit code $rc, want 2 (output: $out)"; exit 1; }
  [[ $(wc -l <<<"$out") == 1 ]] || { echo "herald $*: want a one-line error, got: $out"; exit 1; }
  grep -qF -- "$want" <<<"$out" || { echo "herald $*: error lacks \"$want\": $out"; exit 1; }
  if grep -qF -- "$secret" <<<"$out"; then echo "herald $*: the secret is in the output: $out"; exit 1; fi
}
relay=(relay --sqlite "$db" --kafka "$brokers" --drain --drain-timeout 2s)
tail=(tail --kafka "$brokers" --topic t --timeout 1s)

# -X flags.
for cmd in relay tail; do
  declare -n args=$cmd
  expect_usage_error '-X: librdkafka property "no.such.property": No such configuration property' \
    "${args[@]}" -X no.such.property=1
  expect_usage_error '"security.protocol": Invalid value "SASL_TLS"' "${args[@]}" -X security.protocol=SASL_TLS
  expect_usage_error "-X: want -X key=value" "${args[@]}" -X "$secret"
  expect_usage_error "no key before '='" "${args[@]}" -X "=$secret"
  expect_usage_error "client.id is given twice" "${args[@]}" -X client.id=a -X client.id=b
  # Secrets never come from the command line (ps shows it to every user).
  for key in sasl.password ssl.key.password ssl.keystore.password ssl.key.pem sasl.oauthbearer.config \
             sasl.oauthbearer.client.secret; do
    expect_usage_error "-X $key: a secret is never taken from the command line" "${args[@]}" -X "$key=$secret"
  done
  unset -n args
done
expect_usage_error "--stdout does not take them" relay --sqlite "$db" --stdout --drain -X client.id=x
expect_usage_error "--kafka is required" tail --topic t
expect_usage_error "name a bus" relay --sqlite "$db" --drain

# --kafka-config files: errors name FILE:LINE and the key, never a value.
conf=$dir/kafka.properties
printf '# comment\n\nsecurity.protocol=SASL_SSL\nsasl.password %s\n' "$secret" >"$conf"
expect_usage_error "$conf:4: want key=value" "${relay[@]}" --kafka-config "$conf"
printf 'security.protocol=SASL_SSL\nsasl.pasword=%s\n' "$secret" >"$conf"
expect_usage_error "$conf:2: librdkafka property \"sasl.pasword\": No such configuration property" \
  "${tail[@]}" --kafka-config "$conf"
printf 'sasl.mechanisms=SCRAM-SHA-512\nsecurity.protocol=PLAIN_TEXT\n' >"$conf"
expect_usage_error "$conf:2: librdkafka property \"security.protocol\": Invalid value" \
  "${relay[@]}" --kafka-config "$conf"
printf 'sasl.password=%s\nsasl.password=%s\n' "$secret" "$secret" >"$conf"
expect_usage_error "$conf:2: \"sasl.password\" is set twice (first on line 1)" "${relay[@]}" --kafka-config "$conf"
printf 'sasl.password=%s\\\n' "$secret" >"$conf"
expect_usage_error "$conf:1: \"sasl.password\": the line ends in a backslash" "${tail[@]}" --kafka-config "$conf"
expect_usage_error "--kafka-config: cannot read the librdkafka properties file $dir/absent" \
  "${relay[@]}" --kafka-config "$dir/absent"

# Good files and flags reach librdkafka: a file setting acks=1 (which the
# idempotent producer refuses when it is created) fails, naming acks; -X
# acks=all overrides it and the relay runs (nothing pending: it exits 0).
printf '# producer\nacks = 1\r\nsasl.username=svc\nsasl.password=%s\nclient.rack=r1\n' "$secret" >"$conf"
rc=0
out=$("$HERALD" "${relay[@]}" --kafka-config "$conf" 2>&1) || rc=$?
[[ $rc == 2 ]] || { echo "acks=1 from the file: exit code $rc, want 2 ($out)"; exit 1; }
grep -q 'acks' <<<"$out" || { echo "acks=1 from the file not named: $out"; exit 1; }
if grep -qF -- "$secret" <<<"$out"; then echo "the secret is in the output: $out"; exit 1; fi
out=$("$HERALD" "${relay[@]}" --kafka-config "$conf" -X acks=all 2>&1) || { echo "-X acks=all did not override the file: $out"; exit 1; }
grep -q 'drained 0 events' <<<"$out" || { echo "relay with -X and --kafka-config did not drain: $out"; exit 1; }
if grep -qF -- "$secret" <<<"$out"; then echo "the secret is in the output: $out"; exit 1; fi
# bootstrap.servers in the file stands for --kafka; tail reports the broker
# that does not answer (exit code 1), without the secret.
printf 'bootstrap.servers=%s\nsasl.password=%s\n' "$brokers" "$secret" >"$conf"
rc=0
out=$("$HERALD" tail --topic t --timeout 1s --kafka-config "$conf" 2>&1) || rc=$?
[[ $rc == 1 ]] || { echo "tail with bootstrap.servers from the file: exit code $rc, want 1 ($out)"; exit 1; }
grep -q "no Kafka broker at $brokers answered within 1s" <<<"$out" || { echo "tail did not report the silent broker: $out"; exit 1; }
if grep -qF -- "$secret" <<<"$out"; then echo "the secret is in the output: $out"; exit 1; fi
# librdkafka's own log lines, even its configuration dump (debug=conf), show
# secret properties as [redacted].
printf 'sasl.username=svc\nsasl.password=%s\nssl.key.password=%s-key\nsasl.oauthbearer.config=%s-oauth\n' \
  "$secret" "$secret" "$secret" >"$conf"
rc=0
out=$("$HERALD" "${tail[@]}" -X debug=conf,security --log-level debug --kafka-config "$conf" 2>&1) || rc=$?
[[ $rc == 1 ]] || { echo "tail with debug=conf: exit code $rc, want 1 ($out)"; exit 1; }
grep -q 'sasl.password = \[redacted\]' <<<"$out" || { echo "librdkafka did not dump its configuration: $out"; exit 1; }
if grep -qF -- "$secret" <<<"$out"; then echo "a secret is in librdkafka's log: $out"; exit 1; fi
echo "herald -X / --kafka-config: OK"
