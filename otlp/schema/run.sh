#!/usr/bin/env bash
# herald's OTLP JSON lines against the real OTLP schema (opentelemetry-proto
# and protobuf's json_format, from the virtual environment that
# `scripts/install-deps.sh --interop` makes: HERALD_INTEROP_VENV, default
# build/interop-venv).
#
#   otlp/schema/run.sh OTLP_JSON_SAMPLE [WORK_DIR]
set -euo pipefail

SAMPLE=${1:?usage: run.sh OTLP_JSON_SAMPLE [WORK_DIR]}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
venv=${HERALD_INTEROP_VENV:-$repo/build/interop-venv}
py=$venv/bin/python
if [[ ! -x "$py" ]] || ! "$py" -c 'import google.protobuf.json_format, opentelemetry.proto.collector.trace.v1.trace_service_pb2' 2>/dev/null; then
  echo "otlp-schema: FAIL: opentelemetry-proto is not installed in $venv: run scripts/install-deps.sh --interop" >&2
  exit 1
fi
work=${2:-$(mktemp -d)}
mkdir -p "$work"
rm -f "$work/spans.jsonl"
"$SAMPLE" "$work/spans.jsonl"
"$py" "$here/check_otlp_json.py" "$work/spans.jsonl" 3
