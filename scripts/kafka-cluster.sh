#!/usr/bin/env bash
# A throwaway three-node Apache Kafka cluster (KRaft; each node is broker and
# controller) on 127.0.0.1, what production runs on: replication factor 3 and
# min.insync.replicas=2 for every topic, so leader elections, ISR shrink and
# NOT_ENOUGH_REPLICAS happen as they do there. Same jars and JVM settings as
# the single broker of kafka-up.sh.
#
# Usage: scripts/kafka-cluster.sh up|down|status
#        scripts/kafka-cluster.sh kill|stop|start NODE   (NODE = 1, 2 or 3)
#   up     starts the three nodes (reuses a running cluster) and writes
#          $HERALD_SERVERS_DIR/kafka-cluster.env with
#          HERALD_TEST_KAFKA_CLUSTER_BROKERS=127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3
#          and HERALD_TEST_KAFKA_CLUSTER_CTL (this script)
#   kill   SIGKILLs one node (a crash: its partitions elect new leaders)
#   stop   stops one node cleanly; start starts it again with its data
#   down   stops every node and removes the data
set -euo pipefail
HERALD_LOG_TAG=kafka-cluster
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$HERALD_SCRIPTS_DIR/lib/kafka.sh"

readonly NODES=(1 2 3)
envf="$(herald_servers_dir)/kafka-cluster.env"

usage() { echo "usage: $0 up|down|status | kill|stop|start NODE (1..3)" >&2; exit 2; }
cmd="${1:-}"
node="${2:-}"
case "$cmd" in
  up | down | status) [[ -z "$node" ]] || usage ;;
  kill | stop | start) [[ "$node" =~ ^[123]$ ]] || usage ;;
  *) usage ;;
esac
herald_lock kafka-cluster

get() { herald_env_get "$envf" "$1"; }
node_dir() { printf '%s/node%s\n' "$(get HERALD_KAFKA_CLUSTER_DIR)" "$1"; }
node_port() { get "HERALD_KAFKA_CLUSTER_PORT_$1"; }
node_pid() { cat "$(node_dir "$1")/pid" 2>/dev/null || true; }
node_running() { herald_pid_matches "$(node_pid "$1")" "$(node_dir "$1")/server.properties"; }

stop_node() {  # NODE SIGNAL_TIMEOUT
  local n="$1" timeout="$2" i
  node_running "$n" || return 0
  if ((timeout == 0)); then
    kill -KILL "$(node_pid "$n")" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do herald_pid_alive "$(node_pid "$n")" || break; sleep 0.1; done
  else
    herald_stop_pid "$(node_pid "$n")" "$(node_dir "$n")/server.properties" "$timeout" "Kafka node $n" || return 1
  fi
  for ((i = 0; i < 50; i++)); do
    herald_port_open "$(node_port "$n")" || return 0
    sleep 0.1
  done
}

start_node() {  # NODE -> launches it; the caller waits
  local n="$1" dir
  dir="$(node_dir "$n")"
  node_running "$n" && return 0
  herald_port_open "$(node_port "$n")" && herald_die "port $(node_port "$n") of node $n is taken by another process"
  stat -c %s "$dir/server.log" 2>/dev/null >"$dir/log-offset" || echo 0 >"$dir/log-offset"
  kafka_launch "$dir" "$(get HERALD_KAFKA_JARS)" >/dev/null || herald_die "could not launch Kafka node $n"
}

wait_node() {
  local n="$1" dir
  dir="$(node_dir "$n")"
  kafka_wait_ready "$dir" "$(node_port "$n")" "$(node_pid "$n")" "$(cat "$dir/log-offset")" ||
    herald_die "Kafka node $n did not become ready (log: $dir/server.log)"
}

case "$cmd" in
  up)
    if [[ -f "$envf" ]]; then
      running=0
      for n in "${NODES[@]}"; do node_running "$n" && running=$((running + 1)); done
      if ((running == ${#NODES[@]})); then
        herald_log "cluster already running: $(get HERALD_TEST_KAFKA_CLUSTER_BROKERS)"
        exit 0
      fi
      herald_log "removing a stale cluster ($(get HERALD_KAFKA_CLUSTER_DIR))"
      for n in "${NODES[@]}"; do stop_node "$n" 10 || true; done
      old="$(get HERALD_KAFKA_CLUSTER_DIR)"
      case "$old" in */herald-kafka-cluster.*) rm -rf "$old" ;; esac
      rm -f "$envf"
    fi
    command -v java >/dev/null 2>&1 || herald_die "java not found on PATH (run scripts/install-deps.sh --servers)"
    t0=$SECONDS
    version="${HERALD_KAFKA_VERSION:-$HERALD_KAFKA_DEFAULT_VERSION}"
    jars="$(kafka_ensure_jars "$version")"
    dir="$(mktemp -d "${TMPDIR:-/tmp}/herald-kafka-cluster.XXXXXX")"
    herald_mark_owner "$dir"
    mapfile -t ports < <(herald_free_ports 6)
    voters="1@127.0.0.1:${ports[3]},2@127.0.0.1:${ports[4]},3@127.0.0.1:${ports[5]}"
    cluster_id="$(kafka_new_cluster_id)"
    brokers="127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
    herald_write_env "$envf" <<EOF
HERALD_TEST_KAFKA_CLUSTER_BROKERS=$brokers
HERALD_TEST_KAFKA_CLUSTER_CTL=$HERALD_SCRIPTS_DIR/kafka-cluster.sh
HERALD_KAFKA_CLUSTER_DIR=$dir
HERALD_KAFKA_CLUSTER_PORT_1=${ports[0]}
HERALD_KAFKA_CLUSTER_PORT_2=${ports[1]}
HERALD_KAFKA_CLUSTER_PORT_3=${ports[2]}
HERALD_KAFKA_JARS=$jars
HERALD_KAFKA_VERSION=$version
EOF
    for n in "${NODES[@]}"; do
      kafka_write_config "$dir/node$n" "${ports[$((n - 1))]}" "${ports[$((n + 2))]}" "$n" "$voters" 3 2
      kafka_format "$dir/node$n" "$jars" "$cluster_id" || herald_die "kafka-storage format of node $n failed"
    done
    # All three first: a node finishes starting only once the controller
    # quorum (two of three) has formed.
    for n in "${NODES[@]}"; do start_node "$n"; done
    for n in "${NODES[@]}"; do wait_node "$n"; done
    herald_log "3-node Kafka $version cluster up: HERALD_TEST_KAFKA_CLUSTER_BROKERS=$brokers ($((SECONDS - t0))s) -> $envf"
    ;;
  down)
    [[ -f "$envf" ]] || { herald_log "no cluster to stop"; exit 0; }
    for n in "${NODES[@]}"; do stop_node "$n" "$HERALD_KAFKA_STOP_TIMEOUT" || stop_node "$n" 0; done
    old="$(get HERALD_KAFKA_CLUSTER_DIR)"
    case "$old" in */herald-kafka-cluster.*) rm -rf "$old" ;; esac
    rm -f "$envf"
    herald_log "cluster stopped, data removed"
    ;;
  status)
    [[ -f "$envf" ]] || { echo "no cluster"; exit 1; }
    down=0
    for n in "${NODES[@]}"; do
      if node_running "$n"; then echo "node $n running pid=$(node_pid "$n") 127.0.0.1:$(node_port "$n")"; else echo "node $n stopped 127.0.0.1:$(node_port "$n")"; down=1; fi
    done
    exit "$down"
    ;;
  kill)
    [[ -f "$envf" ]] || herald_die "no cluster: run $0 up first"
    stop_node "$node" 0
    herald_log "node $node killed (SIGKILL)"
    ;;
  stop)
    [[ -f "$envf" ]] || herald_die "no cluster: run $0 up first"
    stop_node "$node" "$HERALD_KAFKA_STOP_TIMEOUT"
    herald_log "node $node stopped"
    ;;
  start)
    [[ -f "$envf" ]] || herald_die "no cluster: run $0 up first"
    t0=$SECONDS
    start_node "$node"
    wait_node "$node"
    herald_log "node $node up on 127.0.0.1:$(node_port "$node") ($((SECONDS - t0))s)"
    ;;
esac
