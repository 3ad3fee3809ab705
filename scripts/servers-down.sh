#!/usr/bin/env bash
# Stop the test servers started by servers-up.sh and delete their temp dirs.
# Usage: scripts/servers-down.sh [kafka] [pg] [kafka-cluster]   (default: all)
# Safe to run when nothing is running; exits non-zero if a stop failed.
set -euo pipefail
HERALD_LOG_TAG=servers-down
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

which=("$@")
((${#which[@]})) || which=(kafka pg kafka-cluster)
for s in "${which[@]}"; do
  case "$s" in kafka | pg | kafka-cluster) ;; *) herald_die "unknown server '$s' (kafka, pg, kafka-cluster)" ;; esac
done

declare -A pids
for s in "${which[@]}"; do
  if [[ "$s" == kafka-cluster ]]; then
    "$HERALD_SCRIPTS_DIR/kafka-cluster.sh" down </dev/null &
  else
    "$HERALD_SCRIPTS_DIR/$s-down.sh" </dev/null &
  fi
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
