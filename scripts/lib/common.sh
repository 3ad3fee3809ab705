# shellcheck shell=bash
# Shared helpers for the herald test-server scripts (sourced, not executed).
#
# Conventions:
#   * HERALD_REPO_ROOT   - repo root, derived from this file's location.
#   * HERALD_SERVERS_DIR - where <server>.env state files go; default
#                          build/servers (a relative value is taken relative
#                          to the repo root, so the result does not depend on
#                          the caller's working directory).
#   * env files are plain KEY=VALUE lines: the value is everything after the
#     first '=', unquoted (it may contain spaces, e.g. a libpq DSN).  Read them
#     with herald_env_get, or `eval "$(scripts/servers-env.sh)"`; do NOT
#     `source` them from a shell.

HERALD_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck disable=SC2034 # used by the sourcing scripts
HERALD_SCRIPTS_DIR="$HERALD_REPO_ROOT/scripts"

herald_servers_dir() {
  local d="${HERALD_SERVERS_DIR:-build/servers}"
  case "$d" in
    /*) ;;
    *) d="$HERALD_REPO_ROOT/$d" ;;
  esac
  mkdir -p "$d"
  (cd "$d" && pwd)
}

herald_log() { printf '[%s] %s\n' "${HERALD_LOG_TAG:-herald}" "$*" >&2; }
herald_die() { printf '[%s] ERROR: %s\n' "${HERALD_LOG_TAG:-herald}" "$*" >&2; exit 1; }

# herald_env_get FILE KEY -> prints the value (empty if absent), never fails.
herald_env_get() {
  local file="$1" key="$2" line
  [[ -f "$file" ]] || return 0
  while IFS= read -r line || [[ -n "$line" ]]; do
    if [[ "$line" == "$key="* ]]; then
      printf '%s\n' "${line#"$key="}"
      return 0
    fi
  done <"$file"
  return 0
}

# herald_write_env FILE  (content on stdin) - atomic replace.
herald_write_env() {
  local file="$1" tmp
  tmp="$(mktemp "$file.XXXXXX")"
  cat >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$file"
}

# herald_free_ports N -> N distinct currently-free TCP ports on 127.0.0.1,
# one per line.  All sockets are held open until every port is picked so the
# same port is never returned twice.
herald_free_ports() {
  local n="$1"
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$n" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
for s in socks:
    s.close()
PY
    return
  fi
  # Fallback without python3: probe random high ports with ss.
  local picked=() p tries=0
  while ((${#picked[@]} < n)); do
    ((tries++ < 1000)) || herald_die "could not find $n free ports"
    p=$((20000 + RANDOM % 40000))
    [[ " ${picked[*]} " == *" $p "* ]] && continue
    if ! ss -Htan "( sport = :$p )" 2>/dev/null | grep -q .; then
      picked+=("$p")
    fi
  done
  printf '%s\n' "${picked[@]}"
}

# herald_port_open PORT -> success if something accepts on 127.0.0.1:PORT.
herald_port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# herald_pid_alive PID -> success if PID exists and is not a zombie.
herald_pid_alive() {
  local pid="$1" state
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# herald_pid_matches PID NEEDLE -> success if PID is alive and its command
# line contains NEEDLE (guards against signalling a recycled pid).
herald_pid_matches() {
  local pid="$1" needle="$2"
  herald_pid_alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$needle"
}

# herald_stop_pid PID NEEDLE TIMEOUT_S [NAME]
# SIGTERM, wait up to TIMEOUT_S seconds, then SIGKILL.  Does nothing when PID
# is gone or is no longer the process we started (cmdline lacks NEEDLE).
herald_stop_pid() {
  local pid="$1" needle="$2" timeout="$3" name="${4:-process}" i
  if ! herald_pid_matches "$pid" "$needle"; then
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    herald_pid_alive "$pid" || return 0
    sleep 0.1
  done
  herald_log "$name (pid $pid) did not exit within ${timeout}s after SIGTERM; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    herald_pid_alive "$pid" || return 0
    sleep 0.1
  done
  herald_log "WARNING: $name (pid $pid) still alive after SIGKILL"
  return 1
}

# herald_lock NAME -> takes an exclusive lock on $SERVERS_DIR/.NAME.lock on
# fd 9 for the rest of the calling script.  Children started afterwards must
# close fd 9 (`9>&-`) so a long-running server does not keep the lock.
herald_lock() {
  local dir
  dir="$(herald_servers_dir)"
  exec 9>"$dir/.$1.lock"
  flock -w 300 9 || herald_die "timed out waiting for lock $dir/.$1.lock"
}

# herald_tail_log FILE [N] -> last N (default 50) lines to stderr.
herald_tail_log() {
  local file="$1" n="${2:-50}"
  if [[ -f "$file" ]]; then
    printf -- '----- last %s lines of %s -----\n' "$n" "$file" >&2
    tail -n "$n" "$file" >&2 || true
    printf -- '----- end of log -----\n' >&2
  else
    printf -- '(no log file at %s)\n' "$file" >&2
  fi
}

# herald_spawn_detached PIDFILE LOGFILE CMD... -> runs CMD in its own session,
# stdin from /dev/null, stdout+stderr appended to LOGFILE, every other
# inherited fd closed (so callers reading a pipe until EOF, or holding a lock
# fd, are not kept waiting by the server).  PIDFILE receives the pid of the
# process that exec()s CMD, whether or not setsid had to fork.
herald_spawn_detached() {
  local pidfile="$1" logfile="$2"
  shift 2
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid bash -c '
    pidfile="$1"; shift
    for fd in /proc/$$/fd/*; do
      fd="${fd##*/}"
      if [[ "$fd" =~ ^[0-9]+$ ]] && ((fd > 2)); then eval "exec $fd>&-"; fi
    done 2>/dev/null
    echo $$ >"$pidfile"
    exec "$@"' herald-spawn "$pidfile" "$@" >>"$logfile" 2>&1 </dev/null &
}

# herald_run_closefds CMD... -> runs CMD in the foreground with every fd above
# 2 closed (for commands such as pg_ctl that leave a daemon behind, which
# would otherwise inherit our lock fd and any pipe the caller is reading).
herald_run_closefds() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  bash -c '
    for fd in /proc/$$/fd/*; do
      fd="${fd##*/}"
      if [[ "$fd" =~ ^[0-9]+$ ]] && ((fd > 2)); then eval "exec $fd>&-"; fi
    done 2>/dev/null
    exec "$@"' herald-run "$@"
}

# herald_mark_owner DIR -> records which servers dir a temp dir belongs to, so
# the *-down scripts can still find it if the env file was lost (rm -rf build).
herald_mark_owner() { herald_servers_dir >"$1/.herald-owner"; }

# herald_owned_dirs PREFIX -> existing ${TMPDIR:-/tmp}/PREFIX.* dirs that were
# created for this servers dir, one per line.
herald_owned_dirs() {
  local prefix="$1" sdir d
  sdir="$(herald_servers_dir)"
  for d in "${TMPDIR:-/tmp}/$prefix".*; do
    [[ -d "$d" && -f "$d/.herald-owner" ]] || continue
    if [[ "$(cat "$d/.herald-owner" 2>/dev/null)" == "$sdir" ]]; then
      printf '%s\n' "$d"
    fi
  done
}
