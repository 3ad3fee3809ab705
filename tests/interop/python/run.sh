#!/usr/bin/env bash
# The CloudEvents Python SDK (cloudevents, confluent-kafka) against herald, on
# a real broker.
#
#   tests/interop/python/run.sh HERALD_CE_PEER [WORK_DIR]
#
# Reads HERALD_TEST_KAFKA_BROKERS. The SDK runs from the virtual environment
# that `scripts/install-deps.sh --interop` makes (HERALD_INTEROP_VENV, default
# build/interop-venv). Two scenarios, each checked by counts and ids; exits
# non-zero on any mismatch:
#   a) herald publishes in each wire mode (the default JSON envelope, and
#      binary and structured chosen per topic by wire_mode_by_topic) -> the
#      SDK's Kafka binding reads id, type, source, time, subject, dataschema,
#      extensions, traceparent and partitionkey; its `data` is the whole JSON
#      envelope in the default mode and the payload in the others;
#   b) the SDK produces binary and structured records (data as JSON, bytes,
#      text; data_base64; extensions, subject, dataschema, traceparent,
#      partitionkey without a record key) -> a herald handler decodes every
#      attribute and the payload bytes.
set -euo pipefail

PEER=${1:?usage: run.sh HERALD_CE_PEER [WORK_DIR]}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
: "${HERALD_TEST_KAFKA_BROKERS:?set HERALD_TEST_KAFKA_BROKERS (scripts/servers-up.sh; eval \"\$(scripts/servers-env.sh)\")}"
brokers=$HERALD_TEST_KAFKA_BROKERS
venv=${HERALD_INTEROP_VENV:-$repo/build/interop-venv}
py=$venv/bin/python
say() { printf 'python-interop: %s\n' "$*"; }

if [[ ! -x "$py" ]] || ! "$py" -c 'import cloudevents.core.bindings.kafka, confluent_kafka' 2>/dev/null; then
  say "FAIL: the CloudEvents Python SDK is not installed in $venv: run scripts/install-deps.sh --interop"
  exit 1
fi
say "$("$py" -c 'import sys, cloudevents, confluent_kafka
print("Python %d.%d, cloudevents %s, confluent-kafka %s (librdkafka %s)" % (sys.version_info[0], sys.version_info[1],
      cloudevents.__version__, confluent_kafka.__version__, confluent_kafka.libversion()[0]))')"

work=${2:-}
if [[ -z "$work" ]]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
N=${HERALD_INTEROP_EVENTS:-16}
run_id="$(date +%s)$$"
t_envelope="interop-py-envelope-$run_id"
t_binary="interop-py-binary-$run_id"
t_structured="interop-py-structured-$run_id"
t_py_binary="interop-py-sdk-binary-$run_id"
t_py_structured="interop-py-sdk-structured-$run_id"
"$py" "$here/peer.py" create-topics --brokers "$brokers" \
  "$t_envelope" "$t_binary" "$t_structured" "$t_py_binary" "$t_py_structured"

# --- a) herald -> the CloudEvents SDK, in each wire mode ---
"$PEER" publish "$brokers" "$N" "$work/herald.jsonl" "$t_envelope" "$t_binary" "$t_structured"
"$py" "$here/peer.py" read --brokers "$brokers" --expect "$work/herald.jsonl"
say "a) $((3 * N)) herald events read by the CloudEvents SDK ($N per wire mode)"

# --- b) the CloudEvents SDK -> a herald handler ---
"$py" "$here/peer.py" produce --brokers "$brokers" --binary-topic "$t_py_binary" \
  --structured-topic "$t_py_structured" --n "$N" --run "$run_id" --out "$work/python.jsonl"
"$PEER" consume "$brokers" "$work/python.jsonl" "$t_py_binary" "$t_py_structured"
say "b) $((2 * N)) CloudEvents SDK events decoded by herald ($N binary, $N structured)"

say "2 scenarios passed: a) herald -> CloudEvents SDK ($((3 * N)) ids, 3 wire modes), b) CloudEvents SDK -> herald ($((2 * N)) ids, binary and structured, data and data_base64)"
