#!/usr/bin/env bash
# Install the Debian packages herald needs, only those missing (idempotent).
# Usage: scripts/install-deps.sh [--servers] [--check]
#   (none)     build deps only (enough for `make demo`)
#   --servers  also what the real test servers need: postgresql, and
#              openjdk-17-jre-headless / maven only if java / mvn are not on PATH
#   --fuzz     also clang and libFuzzer's runtime, for scripts/run-fuzz.sh
#   --check    install nothing; list what is missing and exit 1 if anything is
# Extra packages can be added with HERALD_EXTRA_DEPS="pkg1 pkg2".
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build ccache pkg-config
  libabsl-dev rapidjson-dev librdkafka-dev libsqlite3-dev sqlite3 libpq-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev libcli11-dev
  clang-format clang-tidy clang
)

servers=0
fuzz=0
check=0
for arg in "$@"; do
  case "$arg" in
    --servers) servers=1 ;;
    --fuzz) fuzz=1 ;;
    --check) check=1 ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "install-deps: unknown argument '$arg' (use --servers, --fuzz, --check)" >&2; exit 2 ;;
  esac
done

wanted=("${build_pkgs[@]}")
if ((servers)); then
  wanted+=(postgresql)
  command -v java >/dev/null 2>&1 || wanted+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null 2>&1 || wanted+=(maven)
  command -v python3 >/dev/null 2>&1 || wanted+=(python3)
fi
if ((fuzz)); then wanted+=(clang libclang-rt-14-dev); fi
if [[ -n "${HERALD_EXTRA_DEPS:-}" ]]; then
  read -r -a extra <<<"$HERALD_EXTRA_DEPS"
  wanted+=("${extra[@]}")
fi

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
echo "install-deps: done"
