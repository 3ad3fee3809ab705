#!/usr/bin/env bash
# Build herald's libFuzzer targets (fuzz/) with clang, ASan and UBSan, and run
# each for SECONDS (default 15). Prints executions and findings per target and
# exits non-zero when any target finds a crash, a leak, a timeout or an OOM.
# Usage: scripts/run-fuzz.sh [SECONDS]
#   BUILD=dir        build tree root (default: build); the fuzz build is $BUILD/fuzz
#   JOBS=n           parallel compile jobs (default: nproc)
#   FUZZ_TARGETS="a b"  run only these targets
# Each target starts from its seed corpus fuzz/corpus/<target>/ and keeps
# what it finds in $BUILD/fuzz/corpus/<target>/ for the next run; findings go
# to $BUILD/fuzz/findings/<target>/. Reproduce one with
#   $BUILD/fuzz/fuzz/<target> $BUILD/fuzz/findings/<target>/crash-...
# See docs/fuzzing.md.
set -euo pipefail

seconds="${1:-15}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "run-fuzz: SECONDS must be a positive integer, got '$seconds'" >&2
  exit 2
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD:-build}"
[[ "$build" = /* ]] || build="$root/$build"
dir="$build/fuzz"
jobs="${JOBS:-$(nproc)}"
max_len=2097152  # 2 MB: deep nesting and large values are reachable

for tool in clang clang++; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "run-fuzz: $tool not found; install it with scripts/install-deps.sh --fuzz" >&2
    exit 1
  fi
done
if ! compgen -G "$(dirname "$(clang -print-libgcc-file-name 2>/dev/null)")/libclang_rt.fuzzer*.a" >/dev/null &&
   ! compgen -G "$(clang -print-resource-dir)/lib/linux/libclang_rt.fuzzer*.a" >/dev/null; then
  echo "run-fuzz: libFuzzer runtime not found; install it with scripts/install-deps.sh --fuzz" >&2
  exit 1
fi

launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
echo "== fuzz: configuring $dir (clang, address+undefined, libFuzzer)"
cmake -S "$root" -B "$dir" -G Ninja "${launcher[@]}" \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DHERALD_SANITIZE=address,undefined -DHERALD_BUILD_FUZZERS=ON \
  -DHERALD_BUILD_TESTING=OFF -DHERALD_BUILD_EXAMPLES=OFF -DHERALD_BUILD_BENCHMARKS=OFF -DHERALD_BUILD_TOOLS=OFF \
  -DHERALD_WITH_KAFKA=OFF -DHERALD_WITH_POSTGRES=OFF -DHERALD_WITH_SQLITE=OFF >/dev/null
echo "== fuzz: building"
cmake --build "$dir" -j "$jobs" --target fuzzers

targets=(${FUZZ_TARGETS:-decode_record_fuzzer outbox_headers_fuzzer typed_json_fuzzer wire_roundtrip_fuzzer})
failed=()
summary=()
for t in "${targets[@]}"; do
  seeds="$root/fuzz/corpus/$t"
  work="$dir/corpus/$t"
  findings="$dir/findings/$t"
  log="$dir/logs/$t.log"
  mkdir -p "$work" "$findings" "$(dirname "$log")"
  echo "== fuzz: $t for ${seconds}s (seeds: fuzz/corpus/$t, max_len $max_len)"
  rc=0
  # UBSan reports abort (-fno-sanitize-recover); ASan's leak check is on.
  "$dir/fuzz/$t" -max_len="$max_len" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2560 \
    -dict="$root/fuzz/json.dict" -print_final_stats=1 -artifact_prefix="$findings/" \
    "$work" "$seeds" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  units=$(find "$work" -type f | wc -l)
  # libFuzzer stops at its first finding: a failed run is one finding.
  line="fuzz $t: ${execs:-?} executions in ${seconds}s (${rate:-?}/s), corpus ${units} inputs, findings $((rc != 0))"
  summary+=("$line")
  echo "$line"
  if ((rc != 0)); then
    failed+=("$t")
    echo "-- $t failed (exit $rc); the end of $log:" >&2
    grep -v '^#' "$log" | tail -40 >&2
    echo "-- findings in $findings:" >&2
    ls -t "$findings" | head -5 >&2
  fi
done

echo "== fuzz summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "run-fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "run-fuzz: no findings"
