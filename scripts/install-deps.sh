#!/usr/bin/env bash
# Install the Debian packages herald needs, only those missing (idempotent).
# Usage: scripts/install-deps.sh [--servers] [--fuzz] [--interop] [--bench] [--check]
#   (none)     build deps only (enough for `make demo`)
#   --servers  also what the real test servers need: postgresql, and
#              openjdk-17-jre-headless / maven only if java / mvn are not on PATH
#   --fuzz     also clang and libFuzzer's runtime, for scripts/run-fuzz.sh
#   --interop  also the CloudEvents Python SDK for tests/interop/python: a
#              virtual environment (HERALD_INTEROP_VENV, default
#              build/interop-venv) with the pinned versions of
#              tests/interop/python/requirements.txt, made or updated with pip
#              only when that file changed
#   --bench    also gnuplot-nox, which scripts/run-benchmarks.sh draws its
#              charts with (the Watermill peer in bench/peers needs a Go
#              toolchain >= 1.26, newer than Debian 12's golang-go: a note
#              is printed when none is on PATH)
#   --check    install nothing; list what is missing and exit 1 if anything is
# Extra packages can be added with HERALD_EXTRA_DEPS="pkg1 pkg2".
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build ccache pkg-config
  libabsl-dev rapidjson-dev librdkafka-dev libsqlite3-dev sqlite3 libpq-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev libcli11-dev libcpp-httplib-dev libtomlplusplus-dev
  clang-format clang-tidy clang
)

servers=0
fuzz=0
interop=0
bench=0
check=0
for arg in "$@"; do
  case "$arg" in
    --servers) servers=1 ;;
    --fuzz) fuzz=1 ;;
    --interop) interop=1 ;;
    --bench) bench=1 ;;
    --check) check=1 ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "install-deps: unknown argument '$arg' (use --servers, --fuzz, --interop, --bench, --check)" >&2; exit 2 ;;
  esac
done

wanted=("${build_pkgs[@]}")
if ((servers)); then
  # promtool checks the /metrics exposition (Prometheus' own linter).
  wanted+=(postgresql prometheus)
  command -v java >/dev/null 2>&1 || wanted+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null 2>&1 || wanted+=(maven)
  command -v python3 >/dev/null 2>&1 || wanted+=(python3)
fi
if ((fuzz)); then wanted+=(clang libclang-rt-14-dev); fi
if ((bench)); then
  wanted+=(gnuplot-nox)
  if ! command -v go >/dev/null 2>&1; then
    echo "install-deps: note: no Go toolchain on PATH: make bench skips the Watermill peer (bench/peers needs Go >= 1.26)" >&2
  fi
fi
if ((interop)); then
  # venv needs ensurepip, which Debian ships in python3-venv.
  if ! command -v python3 >/dev/null 2>&1; then
    wanted+=(python3 python3-venv)
  elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    wanted+=(python3-venv)
  fi
fi
if [[ -n "${HERALD_EXTRA_DEPS:-}" ]]; then
  read -r -a extra <<<"$HERALD_EXTRA_DEPS"
  wanted+=("${extra[@]}")
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${HERALD_INTEROP_VENV:-$root/build/interop-venv}"
requirements="$root/tests/interop/python/requirements.txt"

# The Python peer's virtual environment: made, or brought to the pinned
# versions, only when requirements.txt differs from what it was made with.
interop_venv() {
  local stamp="$venv/.herald-requirements"
  if [[ -x "$venv/bin/python" ]] && cmp -s "$requirements" "$stamp"; then
    echo "install-deps: Python interop venv up to date ($venv)"
    return 0
  fi
  if ((check)); then
    echo "install-deps: missing: the Python interop venv ($venv; run with --interop)" >&2
    return 1
  fi
  echo "install-deps: installing the CloudEvents Python SDK into $venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
  cp "$requirements" "$stamp"
}

installed() {
  # dpkg -s succeeds for removed-but-configured packages too: check Status.
  dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'
}

missing=()
for p in "${wanted[@]}"; do
  installed "$p" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#wanted[@]} packages present"
  if ((interop)); then interop_venv || exit 1; fi
  exit 0
fi

if ((check)); then
  echo "install-deps: missing: ${missing[*]}" >&2
  exit 1
fi

if ((EUID != 0)); then
  echo "install-deps: ERROR: missing packages and not running as root." >&2
  echo "  install them with:  apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-q -y -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
apt-get -q -o Dpkg::Use-Pty=0 update
apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}"

still=()
for p in "${missing[@]}"; do
  installed "$p" || still+=("$p")
done
if ((${#still[@]})); then
  echo "install-deps: ERROR: still missing after apt-get: ${still[*]}" >&2
  exit 1
fi
if ((interop)); then interop_venv; fi
echo "install-deps: done"
