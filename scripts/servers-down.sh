#!/usr/bin/env bash
# Stop the test servers started by servers-up.sh and delete their temp dirs.
# Usage: scripts/servers-down.sh [kafka] [pg]   (default: both)
# Safe to run when nothing is running; exits non-zero if a stop failed.
set -euo pipefail
HERALD_LOG_TAG=servers-down
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

which=("$@")
((${#which[@]})) || which=(kafka pg)
for s in "${which[@]}"; do
  case "$s" in kafka | pg) ;; *) herald_die "unknown server '$s' (kafka, pg)" ;; esac
done

declare -A pids
for s in "${which[@]}"; do
  "$HERALD_SCRIPTS_DIR/$s-down.sh" </dev/null &
  pids[$s]=$!
done
failed=()
for s in "${which[@]}"; do
  wait "${pids[$s]}" || failed+=("$s")
done
if ((${#failed[@]})); then
  herald_log "FAILED to stop cleanly: ${failed[*]}"
  exit 1
fi
