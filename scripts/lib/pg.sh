# shellcheck shell=bash
# PostgreSQL helpers shared by pg-up.sh / pg-ctl.sh / pg-down.sh (sourced).
# Requires lib/common.sh to be sourced first.

HERALD_PG_START_TIMEOUT="${HERALD_PG_START_TIMEOUT:-60}"
HERALD_PG_STOP_TIMEOUT="${HERALD_PG_STOP_TIMEOUT:-30}"

pg_env_file() { printf '%s/pg.env\n' "$(herald_servers_dir)"; }

# pg_find_bin -> newest /usr/lib/postgresql/<ver>/bin that has initdb+pg_ctl
# (HERALD_PG_BIN overrides).
pg_find_bin() {
  if [[ -n "${HERALD_PG_BIN:-}" ]]; then
    [[ -x "$HERALD_PG_BIN/pg_ctl" ]] || herald_die "HERALD_PG_BIN=$HERALD_PG_BIN has no pg_ctl"
    printf '%s\n' "$HERALD_PG_BIN"
    return
  fi
  local v best=""
  if [[ -d /usr/lib/postgresql ]]; then
    # shellcheck disable=SC2012 # plain version-number dir names
    while IFS= read -r v; do
      if [[ -x "/usr/lib/postgresql/$v/bin/initdb" && -x "/usr/lib/postgresql/$v/bin/pg_ctl" ]]; then
        best="/usr/lib/postgresql/$v/bin"
      fi
    done < <(ls -1 /usr/lib/postgresql | sort -V)
  fi
  [[ -n "$best" ]] || herald_die "no PostgreSQL server binaries under /usr/lib/postgresql (run scripts/install-deps.sh --servers)"
  printf '%s\n' "$best"
}

# pg_as_owner CMD... -> run CMD as the `postgres` OS user when we are root
# (postgres refuses to run as root), else as ourselves.  Runs from / so an
# unreadable caller cwd does not matter; inherited fds above 2 are closed.
pg_as_owner() {
  if ((EUID == 0)); then
    (cd / && herald_run_closefds runuser -u postgres -- "$@")
  else
    (cd / && herald_run_closefds "$@")
  fi
}

# pg_postmaster_pid DATADIR -> pid from postmaster.pid (empty if none).
pg_postmaster_pid() {
  local f="$1/postmaster.pid"
  if [[ -r "$f" ]]; then head -n1 "$f"; fi
}

# pg_start DIR BIN -> start the cluster in DIR/data, wait until it accepts
# connections.  Port and socket dir come from postgresql.conf.
pg_start() {
  local dir="$1" bin="$2"
  if ! pg_as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" \
      -w -t "$HERALD_PG_START_TIMEOUT" start >"$dir/pg_ctl.out" 2>&1 </dev/null; then
    cat "$dir/pg_ctl.out" >&2 || true
    herald_tail_log "$dir/postgres.log" 50
    return 1
  fi
}

# pg_stop DIR BIN -> fast shutdown (disconnects clients, no crash recovery
# needed); escalate to immediate, then SIGKILL of the postmaster's group.
pg_stop() {
  local dir="$1" bin="$2" pid i
  pid="$(pg_postmaster_pid "$dir/data")"
  if [[ -z "$pid" ]] || ! herald_pid_matches "$pid" "$dir/data"; then
    return 0
  fi
  if pg_as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t "$HERALD_PG_STOP_TIMEOUT" stop \
      >>"$dir/pg_ctl.out" 2>&1 </dev/null; then
    return 0
  fi
  herald_log "fast shutdown did not finish in ${HERALD_PG_STOP_TIMEOUT}s; trying immediate"
  if pg_as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 10 stop \
      >>"$dir/pg_ctl.out" 2>&1 </dev/null; then
    return 0
  fi
  herald_log "immediate shutdown failed; sending SIGKILL to postmaster $pid and its process group"
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    herald_pid_alive "$pid" || return 0
    sleep 0.1
  done
  return 1
}

pg_set_pid() {
  local envf="$1" pid="$2"
  sed "s/^HERALD_PG_PID=.*/HERALD_PG_PID=$pid/" "$envf" | herald_write_env "$envf"
}
