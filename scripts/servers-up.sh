#!/usr/bin/env bash
# Start the real test servers (Kafka broker + PostgreSQL) on loopback, in
# parallel.  Usage: scripts/servers-up.sh [kafka] [pg] [kafka-cluster]
# (default: kafka and pg; `make test` adds the three-node kafka-cluster).
# Each writes its env file into $HERALD_SERVERS_DIR (default build/servers):
# kafka.env (HERALD_TEST_KAFKA_BROKERS), pg.env (HERALD_TEST_PG_DSN) and
# kafka-cluster.env (HERALD_TEST_KAFKA_CLUSTER_BROKERS).
# Exits non-zero if any server failed, naming it; the others stay up
# (scripts/servers-down.sh stops everything).
set -euo pipefail
HERALD_LOG_TAG=servers-up
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

which=("$@")
((${#which[@]})) || which=(kafka pg)
for s in "${which[@]}"; do
  case "$s" in kafka | pg | kafka-cluster) ;; *) herald_die "unknown server '$s' (kafka, pg, kafka-cluster)" ;; esac
done

sdir="$(herald_servers_dir)"
t0=$SECONDS
declare -A pids
for s in "${which[@]}"; do
  if [[ "$s" == kafka-cluster ]]; then
    "$HERALD_SCRIPTS_DIR/kafka-cluster.sh" up >"$sdir/$s-up.out" 2>&1 </dev/null &
  else
    "$HERALD_SCRIPTS_DIR/$s-up.sh" >"$sdir/$s-up.out" 2>&1 </dev/null &
  fi
  pids[$s]=$!
done

failed=()
for s in "${which[@]}"; do
  if wait "${pids[$s]}"; then
    cat "$sdir/$s-up.out" >&2
  else
    cat "$sdir/$s-up.out" >&2
    failed+=("$s")
  fi
done

if ((${#failed[@]})); then
  herald_log "FAILED to start: ${failed[*]} (output above; see also $sdir/<name>-up.out)"
  exit 1
fi
herald_log "all up in $((SECONDS - t0))s: ${which[*]} (env files in $sdir; load them with: eval \"\$(scripts/servers-env.sh)\")"
