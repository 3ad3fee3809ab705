#!/usr/bin/env bash
# clang-tidy over every .cc file of the project, with .clang-tidy's checks;
# exits non-zero on any finding (WarningsAsErrors: '*').
# Usage: scripts/clang-tidy.sh BUILD_DIR [JOBS]
#   BUILD_DIR  a configured clang build (CMAKE_EXPORT_COMPILE_COMMANDS is on);
#              `make tidy` and scripts/run-tests.sh use build/clang
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BUILD_DIR=${1:?usage: scripts/clang-tidy.sh BUILD_DIR [JOBS]}
JOBS=${2:-$(nproc)}
DB="$BUILD_DIR/compile_commands.json"
if [[ ! -f "$DB" ]]; then
  echo "clang-tidy: $DB not found: configure the clang build first (make build-clang)" >&2
  exit 2
fi
# The test binaries share a precompiled header that clang-tidy would have to
# load (and which may not be built yet); every test includes what it uses,
# so the tidy database drops it.
TIDY_DIR="$BUILD_DIR/tidy"
mkdir -p "$TIDY_DIR"
sed -E 's# -Winvalid-pch -Xclang -include-pch -Xclang [^ ]+ -Xclang -include -Xclang [^ "]+##' "$DB" \
  >"$TIDY_DIR/compile_commands.json"
# Our own sources only: not the files CMake generates in the build tree.
mapfile -t FILES < <(sed -nE 's#^ *"file": "([^"]+\.cc)",?$#\1#p' "$TIDY_DIR/compile_commands.json" |
  grep -E "^$ROOT/(core|storage|transports|testing|tools|bench|examples|tests)/" | sort -u)
if ((${#FILES[@]} == 0)); then
  echo "clang-tidy: no source file in $DB" >&2
  exit 2
fi
RUNNER=$(command -v run-clang-tidy || command -v run-clang-tidy-14 || true)
HEADERS="^$ROOT/(core|storage|transports|testing|tools|bench|examples|tests)/"
echo "clang-tidy: ${#FILES[@]} files, $JOBS jobs"
if [[ -n "$RUNNER" ]]; then
  "$RUNNER" -quiet -j "$JOBS" -p "$TIDY_DIR" -header-filter="$HEADERS" "${FILES[@]}"
else
  printf '%s\n' "${FILES[@]}" |
    xargs -P "$JOBS" -n 1 clang-tidy --quiet -p "$TIDY_DIR" --header-filter="$HEADERS"
fi
