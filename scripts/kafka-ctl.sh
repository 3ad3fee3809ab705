#!/usr/bin/env bash
# Stop / start / restart the broker started by kafka-up.sh, keeping its data
# dir, cluster id and ports (for tests that bounce the broker mid-stream).
# Usage: scripts/kafka-ctl.sh stop|start|restart|kill|status
#   stop = SIGTERM (clean shutdown, SIGKILL after 30 s); kill = SIGKILL now
#   (simulated crash; the next start recovers the logs).
# State is read from $HERALD_SERVERS_DIR/kafka.env (default build/servers).
# Exit codes: 0 ok, 1 failure, 2 usage, 3 broker is external (not managed
# by these scripts: HERALD_TEST_KAFKA_BROKERS was preset) - tests should skip.
set -euo pipefail
HERALD_LOG_TAG=kafka-ctl
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$HERALD_SCRIPTS_DIR/lib/kafka.sh"

cmd="${1:-}"
case "$cmd" in
  stop | start | restart | kill | status) ;;
  *) echo "usage: $0 stop|start|restart|kill|status" >&2; exit 2 ;;
esac

envf="$(kafka_env_file)"
[[ -f "$envf" ]] || herald_die "$envf not found: run scripts/kafka-up.sh first"
if [[ "$(herald_env_get "$envf" HERALD_KAFKA_MANAGED)" != 1 ]]; then
  herald_log "broker $(herald_env_get "$envf" HERALD_TEST_KAFKA_BROKERS) is external; cannot $cmd it"
  exit 3
fi
herald_lock kafka

status() {
  local dir pid port
  dir="$(herald_env_get "$envf" HERALD_KAFKA_DIR)"
  pid="$(herald_env_get "$envf" HERALD_KAFKA_PID)"
  port="$(herald_env_get "$envf" HERALD_KAFKA_PORT)"
  if herald_pid_matches "$pid" "$dir/server.properties"; then
    echo "running pid=$pid brokers=127.0.0.1:$port"
  else
    echo "stopped brokers=127.0.0.1:$port"
    return 1
  fi
}

case "$cmd" in
  stop)
    kafka_stop_existing "$envf"
    herald_log "broker stopped"
    ;;
  kill)
    pid="$(herald_env_get "$envf" HERALD_KAFKA_PID)"
    if herald_pid_matches "$pid" "$(herald_env_get "$envf" HERALD_KAFKA_DIR)/server.properties"; then
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 100; i++)); do herald_pid_alive "$pid" || break; sleep 0.1; done
      ! herald_pid_alive "$pid" || herald_die "broker (pid $pid) survived SIGKILL"
    fi
    herald_log "broker killed (SIGKILL)"
    ;;
  start)
    t0=$SECONDS
    kafka_start_existing "$envf"
    herald_log "broker up on $(herald_env_get "$envf" HERALD_TEST_KAFKA_BROKERS) ($((SECONDS - t0))s)"
    ;;
  restart)
    t0=$SECONDS
    kafka_stop_existing "$envf"
    kafka_start_existing "$envf"
    herald_log "broker restarted on $(herald_env_get "$envf" HERALD_TEST_KAFKA_BROKERS) ($((SECONDS - t0))s)"
    ;;
  status) status ;;
esac
