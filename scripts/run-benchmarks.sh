#!/usr/bin/env bash
# Builds herald in Release and runs every benchmark against local servers,
# each printing its SDK figure, its baseline from the same run and the ratio
# (one JSON object per line, also collected in build/bench/results.jsonl).
# Figures go into docs/performance.md by hand, with the machine and settings.
#   scripts/run-benchmarks.sh            # all
#   BENCH_QUICK=1 scripts/run-benchmarks.sh   # smaller runs
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
B=build/bench
export HERALD_SERVERS_DIR=$ROOT/$B/servers
mkdir -p "$HERALD_SERVERS_DIR"
LAUNCHER=$(command -v ccache || true)
cmake -S . -B "$B" -G Ninja ${LAUNCHER:+-DCMAKE_CXX_COMPILER_LAUNCHER=$LAUNCHER} -DCMAKE_BUILD_TYPE=Release \
  -DHERALD_BUILD_TESTING=OFF -DHERALD_BUILD_EXAMPLES=OFF >/dev/null || exit 1
cmake --build "$B" -j "$(nproc)" || exit 1
trap 'scripts/servers-down.sh >/dev/null 2>&1 || true' EXIT
scripts/servers-up.sh || exit 1
eval "$(scripts/servers-env.sh)"
RESULTS=$ROOT/$B/results.jsonl
: >"$RESULTS"
quick=${BENCH_QUICK:-0}
run() {
  echo "== $*" >&2
  "$@" | tee -a "$RESULTS"
}
run "$B/bench/inmemory_bench" $([[ $quick == 1 ]] && echo --events=200000 || echo --events=1000000)
[[ $quick == 1 ]] || run "$B/bench/inmemory_bench" --events=10000000 --latency_events=1000
run "$B/bench/relay_bench" --store=sqlite --events=$([[ $quick == 1 ]] && echo 5000 || echo 30000)
run "$B/bench/relay_bench" --store=postgres --events=$([[ $quick == 1 ]] && echo 5000 || echo 30000)
run "$B/bench/outbox_sqlite_bench"
run "$B/bench/outbox_postgres_bench"
[[ -x "$B/bench/kafka_bench" ]] && run "$B/bench/kafka_bench"
echo "results: $RESULTS" >&2
