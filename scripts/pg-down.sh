#!/usr/bin/env bash
# Stop the PostgreSQL server started by pg-up.sh (fast shutdown, escalating
# to immediate / SIGKILL), delete its temp dir and remove
# $HERALD_SERVERS_DIR/pg.env.  Safe to run when nothing is running.
set -euo pipefail
HERALD_LOG_TAG=pg-down
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$HERALD_SCRIPTS_DIR/lib/pg.sh"

envf="$(pg_env_file)"
if [[ ! -f "$envf" ]]; then
  herald_log "no $envf: nothing to stop"
  exit 0
fi
herald_lock pg

rc=0
if [[ "$(herald_env_get "$envf" HERALD_PG_MANAGED)" == 1 ]]; then
  dir="$(herald_env_get "$envf" HERALD_PG_DIR)"
  bin="$(herald_env_get "$envf" HERALD_PG_BIN)"
  if [[ -d "$dir/data" ]]; then
    pg_stop "$dir" "$bin" || { herald_log "could not stop PostgreSQL cleanly"; rc=1; }
  fi
  case "$dir" in
    */herald-pg.*) [[ -d "$dir" ]] && rm -rf "$dir" ;;
    *) herald_log "not deleting unexpected dir '$dir'" ;;
  esac
  herald_log "PostgreSQL stopped, data dir removed"
else
  herald_log "external server: nothing to stop"
fi
rm -f "$envf"
exit "$rc"
