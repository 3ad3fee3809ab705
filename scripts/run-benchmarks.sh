#!/usr/bin/env bash
# Builds herald in Release and runs every benchmark against local servers,
# each printing its SDK figure, its baselines from the same run and the
# ratios (JSON objects, also collected in build/bench/results.jsonl), then
# runs the same jobs with Watermill (bench/peers, built with the Go
# toolchain; skipped with a note when `go` is missing) and prints one table
# of every figure and ratio (bench/table.py) and draws the scaling charts
# into docs/ with gnuplot (bench/charts.py).
# Figures go into docs/performance.md by hand, with the machine and settings.
#   scripts/run-benchmarks.sh                 # all
#   BENCH_QUICK=1 scripts/run-benchmarks.sh   # smaller runs, fewer rounds
#   BENCH_PEERS=0 ...                         # without the Watermill peer
#   BENCH_PREVIOUS_REV=<commit> ...           # also an inmemory_bench built
#       from <commit> (e.g. one before metrics existed), run as a third
#       variant in every round of the in-process benchmark
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

quick=${BENCH_QUICK:-0}
previous_flag=()
if [[ -n "${BENCH_PREVIOUS_REV:-}" ]]; then
  P=$B/previous
  rm -rf "$P/src" && mkdir -p "$P/src"
  git archive "$BENCH_PREVIOUS_REV" | tar -x -C "$P/src" || exit 1
  cmake -S "$P/src" -B "$P/build" -G Ninja ${LAUNCHER:+-DCMAKE_CXX_COMPILER_LAUNCHER=$LAUNCHER} \
    -DCMAKE_BUILD_TYPE=Release -DHERALD_BUILD_TESTING=OFF -DHERALD_BUILD_EXAMPLES=OFF \
    -DHERALD_WITH_KAFKA=OFF -DHERALD_WITH_POSTGRES=OFF >/dev/null || exit 1
  cmake --build "$P/build" -j "$(nproc)" --target inmemory_bench || exit 1
  previous_flag=(--previous_bench="$ROOT/$P/build/bench/inmemory_bench")
fi

peers=${BENCH_PEERS:-1}
if [[ $peers == 1 ]]; then
  if command -v go >/dev/null 2>&1; then
    # Module and build caches inside the build directory: nothing outside it.
    (cd bench/peers && GOPATH=$ROOT/$B/go GOMODCACHE=$ROOT/$B/go/pkg/mod GOCACHE=$ROOT/$B/go/cache \
      GOFLAGS=-buildvcs=false go build -o "$ROOT/$B/peers" .) || exit 1
  else
    echo "run-benchmarks: no Go toolchain: the Watermill peer (bench/peers) is skipped" >&2
    peers=0
  fi
fi

trap 'scripts/servers-down.sh >/dev/null 2>&1 || true' EXIT
scripts/servers-up.sh || exit 1
eval "$(scripts/servers-env.sh)"
RESULTS=$ROOT/$B/results.jsonl
: >"$RESULTS"
run() {
  echo "== $*" >&2
  "$@" | tee -a "$RESULTS"
}
# Writes out the page cache before a latency-sensitive run. kafka_bench
# leaves gigabytes of the broker's log dirty in memory; when the kernel
# writes them back (896 MB in one second once here, iowait 70%), the
# broker's appends wait and so do the acknowledgements a latency run
# measures: a p99 of 0.7 s at 1,000 events/s right after the 100 KB publish
# rounds (docs/performance.md, "Commit-to-handler latency").
settle_disk() {
  local t0=$SECONDS
  sync
  echo "run-benchmarks: sync took $((SECONDS - t0)) s before the next run" >&2
}
if [[ $quick == 1 ]]; then
  run "$B/bench/inmemory_bench" --events=200000 --rounds=3 "${previous_flag[@]}"
else
  run "$B/bench/inmemory_bench" --events=1000000 --rounds=5 "${previous_flag[@]}"
  run "$B/bench/inmemory_bench" --events=10000000 --latency_events=1000 --rounds=1
fi
# Relay: the store's bare claim-and-mark loop beside herald's relay to the
# in-process bus and to the broker, SQLite and PostgreSQL, retention 0 and
# 3600 s (rows marked, not deleted); then 1, 2 and 4 relay shards on
# PostgreSQL (the relay-vs-shards chart). The quick run does one of each bus.
relay_bench=("$B/bench/relay_bench")
relay_kafka=()
[[ -n "${HERALD_TEST_KAFKA_BROKERS:-}" ]] && relay_kafka=(kafka)
if [[ $quick == 1 ]]; then
  for store in sqlite postgres; do
    for bus in inmemory "${relay_kafka[@]}"; do
      run "${relay_bench[@]}" --store=$store --bus=$bus --events=5000 --latency_events=100
    done
  done
else
  for store in sqlite postgres; do
    for bus in inmemory "${relay_kafka[@]}"; do
      for retention in 0 3600; do
        run "${relay_bench[@]}" --store=$store --bus=$bus --retention_s=$retention --events=50000
      done
    done
  done
  for bus in inmemory "${relay_kafka[@]}"; do
    for shards in 2 4; do
      run "${relay_bench[@]}" --store=postgres --bus=$bus --shards=$shards --events=50000
    done
  done
  # A key's rows go to the broker one acknowledgement at a time, so 64 keys
  # bound the relay to Kafka by themselves: the shards again with 1024 keys.
  if [[ ${#relay_kafka[@]} -gt 0 ]]; then
    for shards in 1 2 4; do
      run "${relay_bench[@]}" --store=postgres --bus=kafka --shards=$shards --keys=1024 --events=50000
    done
  fi
fi
run "$B/bench/outbox_sqlite_bench"
run "$B/bench/outbox_postgres_bench"
# The full run also measures how throughput scales: record sizes up to
# 100 KB, 1, 2, 4 and 6 partitions, and 1, 2, 4 and 6 consumer processes
# in one group (charts below).
if [[ $quick == 1 ]]; then
  kafka_flags=(--quick --consume_processes 1,2) peer_flags=(-quick)
else
  kafka_flags=(--sizes 100,1024,10240,102400 --consume_partitions 1,2,4,6 --consume_processes 1,2,4,6)
  peer_flags=(-sizes 100,1024,10240,102400 -consume_partitions 1,2,4,6)
fi
[[ -x "$B/bench/kafka_bench" ]] && run "$B/bench/kafka_bench" "${kafka_flags[@]}"
# Commit-to-handler latency through the broker (outbox -> relay woken by the
# store -> Kafka -> Subscribe<T>), idle and against offered load.
if [[ -x "$B/bench/kafka_latency_bench" ]]; then
  for store in sqlite postgres; do
    settle_disk
    if [[ $quick == 1 ]]; then
      run "$B/bench/kafka_latency_bench" --store=$store --idle_events=200 --rates=500,1000,2000,5000 --seconds=2
    else
      run "$B/bench/kafka_latency_bench" --store=$store --idle_events=1000 --rates=500,1000,2000,5000,10000 --seconds=10
    fi
  done
fi
# Resident memory of a relay process and of a consumer process while
# 10 million events go through them (PostgreSQL -> Kafka -> Subscribe<T>).
settle_disk
[[ -x "$B/bench/rss_bench" ]] && run "$B/bench/rss_bench" --store=postgres \
  --events=$([[ $quick == 1 ]] && echo 200000 || echo 10000000)
[[ $peers == 1 ]] && run "$B/peers" "${peer_flags[@]}"
echo "results: $RESULTS" >&2
echo
python3 bench/table.py "$RESULTS"
# Charts into docs/ (BENCH_CHARTS_DIR to put them elsewhere, e.g. for a quick run).
python3 bench/charts.py "$RESULTS" "${BENCH_CHARTS_DIR:-docs}"
