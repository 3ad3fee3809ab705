#!/usr/bin/env bash
# Everything `make test` runs, in order:
#   1. build (RelWithDebInfo) while PostgreSQL and Kafka start on loopback
#   2. every test in that build (unit, sqlite, postgres, kafka, kafka-cluster,
#      kafka-mock, examples), against the real servers, then the counts the
#      crash and cluster runs print
#   3. the same tests built with ASan+UBSan
#   4. the concurrency tests built with TSan (Kafka's mock-cluster tests too)
#   5. a clang build with -Wthread-safety -Werror (every component; build only)
#   6. clang-tidy over every .cc file (.clang-tidy; any finding fails)
#   7. install, then build and run a find_package(herald) consumer of every
#      component, and check that a component this install lacks fails clearly
# Servers are stopped whatever happens. Stages go on after a failure so one
# run shows every problem; the exit status is non-zero if any stage failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
JOBS=${JOBS:-$(nproc)}
export HERALD_SERVERS_DIR=${HERALD_SERVERS_DIR:-$ROOT/$BUILD/servers}
mkdir -p "$HERALD_SERVERS_DIR"
LAUNCHER=$(command -v ccache || true)
CMAKE_COMMON=(-G Ninja ${LAUNCHER:+-DCMAKE_CXX_COMPILER_LAUNCHER=$LAUNCHER})
# ccache: paths relative to the checkout, so another clone of the same
# sources hits the cache; precompiled headers are cacheable.
export CCACHE_BASEDIR=$ROOT CCACHE_NOHASHDIR=1
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
# Line tables are enough for symbolized stack traces and cost far less to
# compile and link than full debug info.
FLAGS_OPT="-O2 -g1"
FLAGS_ASAN="-O0 -g1"
FLAGS_TSAN="-O1 -g1"
# The clang build is for its diagnostics only: no optimisation, no debug info.
FLAGS_CLANG="-O0 -g0"
T0=$SECONDS
# Go (for the Go interop test) is installed from its official archive on
# these machines, which puts it in /usr/local/go; add it when PATH lacks it.
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then export PATH=$PATH:/usr/local/go/bin; fi
FAILED=()
PASSED_TOTAL=0
FAILED_TOTAL=0

step() { echo; echo "== [$((SECONDS - T0))s] $*"; }
fail() { echo "!! FAILED: $*"; FAILED+=("$*"); }

# ctest wrapper that adds its counts to the totals.
run_ctest() {
  local name=$1; shift
  local log="$ROOT/$BUILD/ctest-$name.log"
  ctest "$@" --output-on-failure 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
  if [[ -n "$line" ]]; then
    local failed total
    failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
    PASSED_TOTAL=$((PASSED_TOTAL + total - failed))
    FAILED_TOTAL=$((FAILED_TOTAL + failed))
  fi
  if ! grep -q 'tests passed' "$log"; then
    fail "$name: ctest ran no test"
  elif ((rc != 0)); then
    fail "$name: tests"
  fi
}

cleanup() {
  step "stopping servers"
  scripts/servers-down.sh || true
}
trap cleanup EXIT

step "starting PostgreSQL, a Kafka broker and a three-node Kafka cluster in the background"
scripts/servers-up.sh kafka pg kafka-cluster >"$HERALD_SERVERS_DIR/servers-up.log" 2>&1 &
SERVERS_PID=$!

step "build: RelWithDebInfo (all components, tests, examples, benchmarks)"
cmake -S . -B "$BUILD/release" "${CMAKE_COMMON[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$FLAGS_OPT" -DCMAKE_INSTALL_PREFIX="$ROOT/$BUILD/install" >/dev/null &&
  cmake --build "$BUILD/release" -j "$JOBS" || fail "release build"

step "waiting for the servers"
if wait "$SERVERS_PID"; then
  cat "$HERALD_SERVERS_DIR/servers-up.log"
else
  cat "$HERALD_SERVERS_DIR/servers-up.log"
  fail "servers did not start (log above): postgres and kafka tests will fail"
fi
eval "$(scripts/servers-env.sh)"
export HERALD_TEST_PG_CTL="$ROOT/scripts/pg-ctl.sh"
export HERALD_TEST_KAFKA_CTL="$ROOT/scripts/kafka-ctl.sh"

step "tests: release build, every label"
run_ctest release --test-dir "$BUILD/release" -j "$JOBS"
# The crash and cluster runs print one line of counts each (kills, events,
# lost, order violations, duplicates); show them whether they passed or not.
step "counts of the crash, cluster and hostile-input runs"
grep -hE '^\[(cluster|crash[a-z -]*|hostile[a-z -]*)\] ' "$BUILD/release/Testing/Temporary/LastTest.log" || echo "(none printed)"

step "build: ASan+UBSan"
cmake -S . -B "$BUILD/asan" "${CMAKE_COMMON[@]}" -DCMAKE_BUILD_TYPE=Debug -DHERALD_SANITIZE=address,undefined \
  -DCMAKE_CXX_FLAGS_DEBUG="$FLAGS_ASAN" \
  -DHERALD_BUILD_BENCHMARKS=OFF -DHERALD_BUILD_EXAMPLES=OFF -DHERALD_BUILD_TOOLS=OFF >/dev/null &&
  cmake --build "$BUILD/asan" -j "$JOBS" || fail "asan build"
step "tests: ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_ctest asan --test-dir "$BUILD/asan" -j "$JOBS"

# Kafka is in: its mock-cluster tests (labels kafka-mock and concurrency)
# need no server. librdkafka is not instrumented; .ci/tsan.supp says what of
# its internals is suppressed, and why. libpq is left out (its tests need the
# server).
step "build: TSan (concurrency tests, Kafka mock cluster included)"
cmake -S . -B "$BUILD/tsan" "${CMAKE_COMMON[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERALD_SANITIZE=thread \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$FLAGS_TSAN" -DHERALD_WITH_KAFKA=ON -DHERALD_WITH_POSTGRES=OFF \
  -DHERALD_BUILD_BENCHMARKS=OFF -DHERALD_BUILD_EXAMPLES=OFF -DHERALD_BUILD_TOOLS=OFF >/dev/null &&
  TSAN_TARGETS=$(ctest --test-dir "$BUILD/tsan" -N -L concurrency | sed -nE 's/^ *Test +#[0-9]+: ([A-Za-z0-9_]+).*/\1/p') &&
  [[ -n "$TSAN_TARGETS" ]] &&
  cmake --build "$BUILD/tsan" -j "$JOBS" --target $TSAN_TARGETS || fail "tsan build"
step "tests: TSan"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$ROOT/.ci/tsan.supp" \
  run_ctest tsan --test-dir "$BUILD/tsan" -L concurrency -j "$JOBS"

step "build: clang -Wthread-safety -Werror (every component, tests, tools, examples, benchmarks; build only)"
clang_build() {
  cmake -S . -B "$BUILD/clang" "${CMAKE_COMMON[@]}" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="$FLAGS_CLANG" \
    -DHERALD_WITH_KAFKA=ON -DHERALD_WITH_POSTGRES=ON -DHERALD_WITH_SQLITE=ON -DHERALD_BUILD_TESTING=ON \
    -DHERALD_BUILD_EXAMPLES=ON -DHERALD_BUILD_BENCHMARKS=ON -DHERALD_BUILD_TOOLS=ON >/dev/null &&
    cmake --build "$BUILD/clang" -j "$JOBS"
}
clang_build || fail "clang thread-safety build"

step "clang-tidy (every .cc file, compile database of the clang build)"
scripts/clang-tidy.py "$BUILD/clang" "$JOBS" >"$ROOT/$BUILD/clang-tidy.log" 2>&1
TIDY_RC=$?
grep -E '(warning|error):' "$ROOT/$BUILD/clang-tidy.log" | sort -u
grep -E '^clang-tidy: ' "$ROOT/$BUILD/clang-tidy.log"
((TIDY_RC == 0)) || { tail -20 "$ROOT/$BUILD/clang-tidy.log"; fail "clang-tidy (log: $BUILD/clang-tidy.log)"; }

step "fuzz: every libFuzzer target for ${HERALD_FUZZ_SECONDS:-15}s (make fuzz runs them longer)"
scripts/run-fuzz.sh "${HERALD_FUZZ_SECONDS:-15}" || fail "fuzz"

step "install + find_package(herald COMPONENTS ...) consumer"
rm -rf "$BUILD/install" "$BUILD/consumer" "$BUILD/consumer-missing"
if cmake --install "$BUILD/release" >/dev/null &&
  cmake -S tests/install_consumer -B "$BUILD/consumer" "${CMAKE_COMMON[@]}" \
    -DCMAKE_PREFIX_PATH="$ROOT/$BUILD/install" >/dev/null &&
  cmake --build "$BUILD/consumer" -j "$JOBS" && "$BUILD/consumer/install_consumer"; then
  PASSED_TOTAL=$((PASSED_TOTAL + 1))
else
  FAILED_TOTAL=$((FAILED_TOTAL + 1))
  fail "install consumer"
fi
# A component the installation lacks must fail find_package, saying which.
if cmake -S tests/install_consumer -B "$BUILD/consumer-missing" "${CMAKE_COMMON[@]}" \
  -DCMAKE_PREFIX_PATH="$ROOT/$BUILD/install" -DHERALD_CONSUMER_EXTRA_COMPONENT=no_such_component \
  >"$ROOT/$BUILD/consumer-missing.log" 2>&1; then
  FAILED_TOTAL=$((FAILED_TOTAL + 1))
  fail "install consumer: find_package(herald COMPONENTS no_such_component) succeeded"
elif grep -q "component 'no_such_component' is not in this installation" "$ROOT/$BUILD/consumer-missing.log"; then
  PASSED_TOTAL=$((PASSED_TOTAL + 1))
else
  cat "$ROOT/$BUILD/consumer-missing.log"
  FAILED_TOTAL=$((FAILED_TOTAL + 1))
  fail "install consumer: a missing component failed without naming it"
fi

step "done in $((SECONDS - T0))s"
if ((${#FAILED[@]})); then
  printf '!! %s\n' "${FAILED[@]}"
fi
echo "$PASSED_TOTAL passed, $FAILED_TOTAL failed"
((${#FAILED[@]} == 0))
