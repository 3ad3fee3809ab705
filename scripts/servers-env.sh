#!/usr/bin/env bash
# Print `export NAME=value` lines (shell-quoted) for the HERALD_TEST_* variables
# in the env files written by servers-up.sh, for:
#   eval "$(scripts/servers-env.sh)"
# (The env files are plain KEY=VALUE lines with unquoted values that may
# contain spaces, so they must not be `source`d directly.)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

sdir="$(herald_servers_dir)"
for f in "$sdir"/kafka.env "$sdir"/pg.env "$sdir"/kafka-cluster.env; do
  [[ -f "$f" ]] || continue
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" =~ ^(HERALD_TEST_[A-Z0-9_]*|HERALD_SERVERS_DIR)=(.*)$ ]] || continue
    printf 'export %s=%q\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
  done <"$f"
done | sort -u
