#!/usr/bin/env bash
# Start a throwaway PostgreSQL server (Debian's packaged binaries, newest
# /usr/lib/postgresql/<ver>) in a fresh temp dir, listening only on
# 127.0.0.1:<free port>, trust auth, with database herald_test.  Runs the
# server as the `postgres` OS user when invoked as root.  Writes
# $HERALD_SERVERS_DIR/pg.env (default build/servers) with
# HERALD_TEST_PG_DSN=host=127.0.0.1 port=<port> dbname=herald_test user=postgres
# plus the state pg-ctl.sh (stop|start|restart|status) and pg-down.sh need.
#
# Env knobs: HERALD_TEST_PG_DSN (use that server, start nothing),
#   HERALD_PG_BIN (server bin dir), HERALD_PG_START_TIMEOUT (60 s).
set -euo pipefail
HERALD_LOG_TAG=pg-up
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$HERALD_SCRIPTS_DIR/lib/pg.sh"

envf="$(pg_env_file)"
herald_lock pg

if [[ -n "${HERALD_TEST_PG_DSN:-}" ]]; then
  herald_write_env "$envf" <<EOF
HERALD_TEST_PG_DSN=$HERALD_TEST_PG_DSN
HERALD_PG_MANAGED=0
EOF
  herald_log "using external server HERALD_TEST_PG_DSN=$HERALD_TEST_PG_DSN"
  exit 0
fi

bin="$(pg_find_bin)"
psql="$bin/psql"
[[ -x "$psql" ]] || psql="$(command -v psql || true)"
[[ -n "$psql" ]] || herald_die "psql not found (install postgresql-client)"

# Already running from an earlier pg-up? Reuse it; clean up a stale one.
if [[ -f "$envf" && "$(herald_env_get "$envf" HERALD_PG_MANAGED)" == 1 ]]; then
  old_dir="$(herald_env_get "$envf" HERALD_PG_DIR)"
  old_dsn="$(herald_env_get "$envf" HERALD_TEST_PG_DSN)"
  old_pid="$(pg_postmaster_pid "$old_dir/data")"
  if [[ -n "$old_pid" ]] && herald_pid_matches "$old_pid" "$old_dir/data"; then
    for ((i = 0; i < HERALD_PG_START_TIMEOUT; i++)); do
      if "$psql" "$old_dsn connect_timeout=5" -Atqc 'select 1' >/dev/null 2>&1; then
        herald_log "PostgreSQL already running: $old_dsn (pid $old_pid)"
        exit 0
      fi
      sleep 1
    done
    herald_die "the server from an earlier pg-up (pid $old_pid) runs but does not answer; run scripts/pg-down.sh"
  fi
  herald_log "removing stale PostgreSQL state from a previous run ($old_dir)"
  if [[ -d "$old_dir/data" ]]; then
    pg_stop "$old_dir" "$(herald_env_get "$envf" HERALD_PG_BIN)" || true
  fi
  case "$old_dir" in */herald-pg.*) rm -rf "$old_dir" ;; esac
  rm -f "$envf"
fi

if ((EUID == 0)); then
  id postgres >/dev/null 2>&1 || herald_die "OS user 'postgres' missing (install the postgresql package)"
fi

t0=$SECONDS
dir="$(mktemp -d "${TMPDIR:-/tmp}/herald-pg.XXXXXX")"
herald_mark_owner "$dir"
printf '%s\n' "$bin" >"$dir/.herald-pg-bin"
ok=0
cleanup() {
  if ((ok == 0)); then
    if [[ -d "$dir/data" ]]; then pg_stop "$dir" "$bin" >/dev/null 2>&1 || true; fi
    if [[ -f "$dir/postgres.log" ]]; then
      cp -f "$dir/postgres.log" "$(herald_servers_dir)/pg-failed.log" 2>/dev/null || true
    fi
    rm -rf "$dir"
  fi
}
trap cleanup EXIT

mkdir -p "$dir/sock"
chmod 0700 "$dir"
if ((EUID == 0)); then
  chown -R postgres:postgres "$dir"
  runuser -u postgres -- test -w "$dir" \
    || herald_die "user postgres cannot write $dir (is TMPDIR=${TMPDIR:-/tmp} inside a private dir? set TMPDIR=/tmp)"
fi

# Unix socket path must stay under ~107 bytes.
((${#dir} < 90)) || herald_die "temp dir path too long for a unix socket: $dir (set TMPDIR=/tmp)"

port="$(herald_free_ports 1)"

if ! pg_as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust \
    -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 </dev/null; then
  herald_tail_log "$dir/initdb.log" 50
  herald_die "initdb failed"
fi

# Throwaway test server: loopback only, private socket dir.  Durability
# settings (fsync, synchronous_commit, full_page_writes) stay at defaults.
cat >>"$dir/data/postgresql.conf" <<EOF

# --- added by scripts/pg-up.sh ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/sock'
max_connections = 200
shared_buffers = 128MB
logging_collector = off
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
EOF
# Only loopback + local socket, no password (trust).
cat >"$dir/data/pg_hba.conf" <<'EOF'
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   trust
EOF
((EUID == 0)) && chown postgres:postgres "$dir/data/postgresql.conf" "$dir/data/pg_hba.conf"

pg_start "$dir" "$bin" || herald_die "PostgreSQL failed to start on 127.0.0.1:$port (log kept in $(herald_servers_dir)/pg-failed.log)"
pid="$(pg_postmaster_pid "$dir/data")"

admin_dsn="host=127.0.0.1 port=$port dbname=postgres user=postgres connect_timeout=10"
dsn="host=127.0.0.1 port=$port dbname=herald_test user=postgres"
if ! "$psql" "$admin_dsn" -v ON_ERROR_STOP=1 -Atqc 'CREATE DATABASE herald_test' >"$dir/createdb.log" 2>&1; then
  cat "$dir/createdb.log" >&2
  herald_tail_log "$dir/postgres.log" 50
  herald_die "could not create database herald_test"
fi
"$psql" "$dsn connect_timeout=10" -Atqc 'select 1' >/dev/null \
  || { herald_tail_log "$dir/postgres.log" 50; herald_die "server started but '$dsn' does not answer"; }

herald_write_env "$envf" <<EOF
HERALD_TEST_PG_DSN=$dsn
HERALD_PG_MANAGED=1
HERALD_PG_PID=$pid
HERALD_PG_DIR=$dir
HERALD_PG_DATA=$dir/data
HERALD_PG_PORT=$port
HERALD_PG_SOCKET_DIR=$dir/sock
HERALD_PG_BIN=$bin
HERALD_PG_LOG=$dir/postgres.log
HERALD_SERVERS_DIR=$(herald_servers_dir)
HERALD_TEST_PG_CTL=$HERALD_SCRIPTS_DIR/pg-ctl.sh
EOF
ok=1
rm -f "$(herald_servers_dir)/pg-failed.log"
herald_log "PostgreSQL $(basename "$(dirname "$bin")") up: HERALD_TEST_PG_DSN=$dsn (pid $pid, $((SECONDS - t0))s) -> $envf"
