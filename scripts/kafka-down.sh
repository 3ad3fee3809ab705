#!/usr/bin/env bash
# Stop the broker started by kafka-up.sh (SIGTERM, up to 30 s, then SIGKILL),
# delete its temporary data dir and remove $HERALD_SERVERS_DIR/kafka.env.
# Safe to run when nothing is running.
set -euo pipefail
HERALD_LOG_TAG=kafka-down
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$HERALD_SCRIPTS_DIR/lib/kafka.sh"

envf="$(kafka_env_file)"
herald_lock kafka
rc=0

# Brokers of this checkout whose env file was lost (e.g. build/ was deleted).
sweep_orphans() {
  local d pid
  while IFS= read -r d; do
    pid="$(cat "$d/pid" 2>/dev/null || true)"
    herald_log "cleaning up orphaned Kafka dir $d (pid ${pid:-none})"
    herald_stop_pid "$pid" "$d/server.properties" "$HERALD_KAFKA_STOP_TIMEOUT" "Kafka broker" || rc=1
    rm -rf "$d"
  done < <(herald_owned_dirs herald-kafka)
}

if [[ ! -f "$envf" ]]; then
  sweep_orphans
  herald_log "no $envf: nothing (else) to stop"
  exit "$rc"
fi

if [[ "$(herald_env_get "$envf" HERALD_KAFKA_MANAGED)" == 1 ]]; then
  dir="$(herald_env_get "$envf" HERALD_KAFKA_DIR)"
  pid="$(herald_env_get "$envf" HERALD_KAFKA_PID)"
  herald_stop_pid "$pid" "$dir/server.properties" "$HERALD_KAFKA_STOP_TIMEOUT" "Kafka broker" || rc=1
  # Only ever delete directories this script family created.
  case "$dir" in
    */herald-kafka.*) rm -rf "$dir" ;;
    *) herald_log "not deleting unexpected dir '$dir'" ;;
  esac
  herald_log "Kafka broker stopped (pid $pid), data dir removed"
else
  herald_log "external broker: nothing to stop"
fi
rm -f "$envf"
sweep_orphans
exit "$rc"
