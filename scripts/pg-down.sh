#!/usr/bin/env bash
# Stop the PostgreSQL server started by pg-up.sh (fast shutdown, escalating
# to immediate / SIGKILL), delete its temp dir and remove
# $HERALD_SERVERS_DIR/pg.env.  Safe to run when nothing is running.
set -euo pipefail
HERALD_LOG_TAG=pg-down
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$HERALD_SCRIPTS_DIR/lib/pg.sh"

envf="$(pg_env_file)"
herald_lock pg
rc=0

# Servers of this checkout whose env file was lost (e.g. build/ was deleted).
sweep_orphans() {
  local d bin
  while IFS= read -r d; do
    herald_log "cleaning up orphaned PostgreSQL dir $d"
    if [[ -d "$d/data" ]]; then
      bin="$(cat "$d/.herald-pg-bin" 2>/dev/null || true)"
      [[ -x "$bin/pg_ctl" ]] || bin="$(pg_find_bin)"
      pg_stop "$d" "$bin" || rc=1
    fi
    rm -rf "$d"
  done < <(herald_owned_dirs herald-pg)
}

if [[ ! -f "$envf" ]]; then
  sweep_orphans
  herald_log "no $envf: nothing (else) to stop"
  exit "$rc"
fi

if [[ "$(herald_env_get "$envf" HERALD_PG_MANAGED)" == 1 ]]; then
  dir="$(herald_env_get "$envf" HERALD_PG_DIR)"
  bin="$(herald_env_get "$envf" HERALD_PG_BIN)"
  if [[ -d "$dir/data" ]]; then
    pg_stop "$dir" "$bin" || { herald_log "could not stop PostgreSQL cleanly"; rc=1; }
  fi
  case "$dir" in
    */herald-pg.*) rm -rf "$dir" ;;
    *) herald_log "not deleting unexpected dir '$dir'" ;;
  esac
  herald_log "PostgreSQL stopped, data dir removed"
else
  herald_log "external server: nothing to stop"
fi
rm -f "$envf"
sweep_orphans
exit "$rc"
