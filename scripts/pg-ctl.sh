#!/usr/bin/env bash
# Stop / start / restart the PostgreSQL server started by pg-up.sh, keeping
# its data dir and port (for tests that bounce the database mid-run).
# Usage: scripts/pg-ctl.sh stop|start|restart|kill|status
#   stop = fast shutdown (clients are disconnected; escalates to immediate);
#   kill = immediate shutdown (simulated crash; next start does recovery).
# State is read from $HERALD_SERVERS_DIR/pg.env (default build/servers).
# Exit codes: 0 ok, 1 failure, 2 usage, 3 server is external (not managed
# by these scripts: HERALD_TEST_PG_DSN was preset) - tests should skip.
set -euo pipefail
HERALD_LOG_TAG=pg-ctl
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$HERALD_SCRIPTS_DIR/lib/pg.sh"

cmd="${1:-}"
case "$cmd" in
  stop | start | restart | kill | status) ;;
  *) echo "usage: $0 stop|start|restart|kill|status" >&2; exit 2 ;;
esac

envf="$(pg_env_file)"
[[ -f "$envf" ]] || herald_die "$envf not found: run scripts/pg-up.sh first"
if [[ "$(herald_env_get "$envf" HERALD_PG_MANAGED)" != 1 ]]; then
  herald_log "server '$(herald_env_get "$envf" HERALD_TEST_PG_DSN)' is external; cannot $cmd it"
  exit 3
fi
herald_lock pg

dir="$(herald_env_get "$envf" HERALD_PG_DIR)"
bin="$(herald_env_get "$envf" HERALD_PG_BIN)"
port="$(herald_env_get "$envf" HERALD_PG_PORT)"
[[ -d "$dir/data" ]] || herald_die "PostgreSQL data dir '$dir/data' from $envf is gone"

running() {
  local pid
  pid="$(pg_postmaster_pid "$dir/data")"
  [[ -n "$pid" ]] && herald_pid_matches "$pid" "$dir/data"
}

do_stop() {
  pg_stop "$dir" "$bin" || herald_die "could not stop PostgreSQL (see $dir/postgres.log)"
  herald_log "PostgreSQL stopped"
}

do_start() {
  if running; then
    herald_log "PostgreSQL already running (pid $(pg_postmaster_pid "$dir/data"))"
    return 0
  fi
  herald_port_open "$port" && herald_die "port $port is taken by another process; cannot restart PostgreSQL on it"
  pg_start "$dir" "$bin" || herald_die "PostgreSQL failed to restart on 127.0.0.1:$port"
  pg_set_pid "$envf" "$(pg_postmaster_pid "$dir/data")"
  herald_log "PostgreSQL up on 127.0.0.1:$port"
}

case "$cmd" in
  stop) do_stop ;;
  kill)
    if running; then
      pg_as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 10 stop >>"$dir/pg_ctl.out" 2>&1 </dev/null \
        || herald_die "immediate shutdown failed (see $dir/pg_ctl.out)"
    fi
    herald_log "PostgreSQL killed (immediate shutdown)"
    ;;
  start) do_start ;;
  restart) do_stop; do_start ;;
  status)
    if running; then
      echo "running pid=$(pg_postmaster_pid "$dir/data") port=$port"
    else
      echo "stopped port=$port"
      exit 1
    fi
    ;;
esac
