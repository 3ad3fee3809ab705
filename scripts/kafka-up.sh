#!/usr/bin/env bash
# Start a throwaway single-node Apache Kafka broker (KRaft, broker+controller)
# on 127.0.0.1 for the herald tests, from Maven Central jars run with the
# machine's Java.  Writes $HERALD_SERVERS_DIR/kafka.env (default build/servers)
# with HERALD_TEST_KAFKA_BROKERS=127.0.0.1:<port> plus the state that
# kafka-ctl.sh (stop|start|restart|status) and kafka-down.sh need.
#
# The broker also has a SASL_SSL listener (SCRAM-SHA-512 and PLAIN) on its own port,
# with a CA, a broker certificate and a user whose password is made afresh
# for each run (never committed): HERALD_TEST_KAFKA_SASL_SSL_BROKERS,
# HERALD_TEST_KAFKA_CA_FILE (the CA that signed the broker's certificate),
# HERALD_TEST_KAFKA_UNTRUSTED_CA_FILE (a CA that did not),
# HERALD_TEST_KAFKA_SASL_MECHANISM (SCRAM-SHA-512, or PLAIN when the
# machine's librdkafka cannot do SCRAM with this broker: lib/kafka.sh,
# kafka_sasl_mechanism), HERALD_TEST_KAFKA_SASL_USER and
# HERALD_TEST_KAFKA_SASL_PASSWORD_FILE (a file holding the password: the
# secret itself is never in the environment).
#
# Env knobs: HERALD_TEST_KAFKA_BROKERS (use that broker, start nothing),
#   HERALD_KAFKA_VERSION (default 4.1.2), HERALD_KAFKA_READY_TIMEOUT (90 s),
#   KAFKA_HEAP_OPTS / KAFKA_JVM_PERFORMANCE_OPTS / KAFKA_OPTS (JVM options).
set -euo pipefail
HERALD_LOG_TAG=kafka-up
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$HERALD_SCRIPTS_DIR/lib/kafka.sh"

envf="$(kafka_env_file)"
herald_lock kafka

# A developer-provided broker: record it (and its SASL_SSL settings, when
# given) and start nothing.
if [[ -n "${HERALD_TEST_KAFKA_BROKERS:-}" ]]; then
  {
    echo "HERALD_TEST_KAFKA_BROKERS=$HERALD_TEST_KAFKA_BROKERS"
    echo "HERALD_KAFKA_MANAGED=0"
    for v in SASL_SSL_BROKERS CA_FILE UNTRUSTED_CA_FILE SASL_MECHANISM SASL_USER SASL_PASSWORD_FILE; do
      name=HERALD_TEST_KAFKA_$v
      if [[ -n "${!name:-}" ]]; then echo "$name=${!name}"; fi
    done
  } | herald_write_env "$envf"
  herald_log "using external broker HERALD_TEST_KAFKA_BROKERS=$HERALD_TEST_KAFKA_BROKERS"
  exit 0
fi

# Already running from an earlier kafka-up? Reuse it; clean up a stale one.
if [[ -f "$envf" && "$(herald_env_get "$envf" HERALD_KAFKA_MANAGED)" == 1 ]]; then
  old_dir="$(herald_env_get "$envf" HERALD_KAFKA_DIR)"
  old_pid="$(herald_env_get "$envf" HERALD_KAFKA_PID)"
  old_port="$(herald_env_get "$envf" HERALD_KAFKA_PORT)"
  if herald_pid_matches "$old_pid" "$old_dir/server.properties"; then
    if kafka_wait_ready "$old_dir" "$old_port" "$old_pid" 0; then
      herald_log "Kafka broker already running: $(herald_env_get "$envf" HERALD_TEST_KAFKA_BROKERS) (pid $old_pid)"
      exit 0
    fi
    herald_die "the broker from an earlier kafka-up (pid $old_pid) runs but does not answer; run scripts/kafka-down.sh"
  fi
  herald_log "removing stale Kafka state from a previous run ($old_dir)"
  herald_stop_pid "$old_pid" "$old_dir/server.properties" 10 "stale Kafka broker" || true
  case "$old_dir" in */herald-kafka.*) rm -rf "$old_dir" ;; esac
  rm -f "$envf"
fi

command -v java >/dev/null 2>&1 || herald_die "java not found on PATH (run scripts/install-deps.sh --servers)"
command -v python3 >/dev/null 2>&1 || herald_die "python3 not found on PATH (needed for port picking and the readiness probe)"
command -v openssl >/dev/null 2>&1 || herald_die "openssl not found on PATH (run scripts/install-deps.sh --servers)"

version="${HERALD_KAFKA_VERSION:-$HERALD_KAFKA_DEFAULT_VERSION}"
t0=$SECONDS
jars="$(kafka_ensure_jars "$version")"

dir="$(mktemp -d "${TMPDIR:-/tmp}/herald-kafka.XXXXXX")"
herald_mark_owner "$dir"
ok=0
cleanup() {
  if ((ok == 0)); then
    if [[ -s "$dir/pid" ]]; then
      herald_stop_pid "$(cat "$dir/pid")" "$dir/server.properties" 10 "Kafka broker" || true
    fi
    # Keep the logs of a failed start around for a post-mortem.
    if [[ -f "$dir/server.log" ]]; then
      cp -f "$dir/server.log" "$(herald_servers_dir)/kafka-failed.log" 2>/dev/null || true
    fi
    rm -rf "$dir"
  fi
}
trap cleanup EXIT

mapfile -t ports < <(herald_free_ports 3)
port="${ports[0]}"
cport="${ports[1]}"
sport="${ports[2]}"
sasl_user=herald-test
sasl_mechanism="$(kafka_sasl_mechanism "$version")"
[[ "$sasl_mechanism" == SCRAM-SHA-512 ]] || herald_log "this librdkafka cannot do SCRAM with Kafka $version (it needs 2.6.1): tests use $sasl_mechanism on the SASL_SSL listener"
cluster_id="$(kafka_new_cluster_id)"

kafka_write_config "$dir" "$port" "$cport"
kafka_make_tls "$dir" || herald_die "could not make the test CA and broker certificate with openssl"
kafka_add_sasl_ssl_listener "$dir" "$sport" "$sasl_user"
# The SCRAM user is written into the cluster metadata at format time (KRaft;
# Kafka >= 3.5), so it exists before the listener accepts anyone.
kafka_format "$dir" "$jars" "$cluster_id" \
  --add-scram "SCRAM-SHA-512=[name=$sasl_user,password=$(cat "$dir/tls/sasl-password")]" \
  || herald_die "kafka-storage format failed (Kafka $version)"

pid="$(kafka_launch "$dir" "$jars")" || herald_die "could not launch the Kafka broker"
if ! kafka_wait_ready "$dir" "$port" "$pid" 0; then
  herald_die "Kafka $version broker failed to start on 127.0.0.1:$port (log kept in $(herald_servers_dir)/kafka-failed.log)"
fi
kafka_wait_port "$sport" || herald_die "the SASL_SSL listener did not open on 127.0.0.1:$sport"

herald_write_env "$envf" <<EOF
HERALD_TEST_KAFKA_BROKERS=127.0.0.1:$port
HERALD_KAFKA_MANAGED=1
HERALD_KAFKA_PID=$pid
HERALD_KAFKA_DIR=$dir
HERALD_KAFKA_PORT=$port
HERALD_KAFKA_CONTROLLER_PORT=$cport
HERALD_KAFKA_CLUSTER_ID=$cluster_id
HERALD_KAFKA_VERSION=$version
HERALD_KAFKA_JARS=$jars
HERALD_KAFKA_LOG=$dir/server.log
HERALD_KAFKA_SASL_SSL_PORT=$sport
HERALD_TEST_KAFKA_SASL_SSL_BROKERS=127.0.0.1:$sport
HERALD_TEST_KAFKA_CA_FILE=$dir/tls/ca.pem
HERALD_TEST_KAFKA_UNTRUSTED_CA_FILE=$dir/tls/other-ca.pem
HERALD_TEST_KAFKA_SASL_MECHANISM=$sasl_mechanism
HERALD_TEST_KAFKA_SASL_USER=$sasl_user
HERALD_TEST_KAFKA_SASL_PASSWORD_FILE=$dir/tls/sasl-password
HERALD_SERVERS_DIR=$(herald_servers_dir)
HERALD_TEST_KAFKA_CTL=$HERALD_SCRIPTS_DIR/kafka-ctl.sh
EOF
ok=1
rm -f "$(herald_servers_dir)/kafka-failed.log"
herald_log "Kafka $version up: HERALD_TEST_KAFKA_BROKERS=127.0.0.1:$port, SASL_SSL on 127.0.0.1:$sport (pid $pid, $((SECONDS - t0))s) -> $envf"
