#!/usr/bin/env bash
# The seed's Go services against herald, on a real broker and PostgreSQL.
#
#   tests/interop/go/run.sh HERALD_CLI HERALD_PEER [WORK_DIR]
#
# Reads HERALD_TEST_KAFKA_BROKERS and HERALD_TEST_PG_DSN; GO names the go
# binary (default: go on PATH). Builds the Go program (the module cache and
# build cache are reused after the first run), then runs four scenarios, each
# checked by counts and ids, and exits non-zero on any mismatch:
#   a) Go outbox Writer rows (3-column INSERT of evt.ToJSON()) in the Go
#      table adopted by `herald outbox migrate` -> `herald relay --drain
#      --key-from` -> a kafka-go
#      reader and a herald typed handler, with the Go ids, times and keys;
#   b) herald publishes -> kafka-go reader decodes CustomerEvent (time.Time);
#   c) the Go bus (kafka-go, Murmur2Balancer) publishes -> herald typed handler;
#   d) the same keys (every length mod 4, some UTF-8) land on the same
#      partition from herald, kafka-go's Murmur2Balancer and the Java client.
set -euo pipefail

HERALD=${1:?usage: run.sh HERALD_CLI HERALD_PEER [WORK_DIR]}
PEER=${2:?usage: run.sh HERALD_CLI HERALD_PEER [WORK_DIR]}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
: "${HERALD_TEST_KAFKA_BROKERS:?set HERALD_TEST_KAFKA_BROKERS (scripts/servers-up.sh; eval \"\$(scripts/servers-env.sh)\")}"
: "${HERALD_TEST_PG_DSN:?set HERALD_TEST_PG_DSN (scripts/servers-up.sh; eval \"\$(scripts/servers-env.sh)\")}"
GO=${GO:-go}
brokers=$HERALD_TEST_KAFKA_BROKERS
work=${3:-}
if [[ -z "$work" ]]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
N=${HERALD_INTEROP_EVENTS:-25}
run_id="$(date +%s)$$"
schema="interop_go_$run_id"
say() { printf 'go-interop: %s\n' "$*"; }

say "building the Go services (go build; modules and build cache reused)"
(cd "$here" && "$GO" build -buildvcs=false -o "$work/interop-go" .)
GOPEER=$work/interop-go

# --- a) Go outbox rows -> herald relay -> kafka-go reader + herald handler ---
topic_a="interop-go-outbox-$run_id"
# The Go service's own table comes first (the columns its writer and its
# publisher use); a user adopts it explicitly, reviewing the DDL first. The
# relay would refuse the table before that.
psql "$HERALD_TEST_PG_DSN" -X -q -v ON_ERROR_STOP=1 -c "CREATE SCHEMA \"$schema\";
  CREATE TABLE \"$schema\".outbox (id BIGSERIAL PRIMARY KEY, event_type TEXT NOT NULL, topic TEXT NOT NULL,
    event_payload JSONB NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now(), published_at TIMESTAMPTZ NULL)"
migrate=(outbox migrate --postgres --postgres-env HERALD_TEST_PG_DSN --schema "$schema" --table outbox)
"$HERALD" "${migrate[@]}" --dry-run >"$work/migrate.sql" 2>/dev/null
grep -q 'ALTER TABLE' "$work/migrate.sql" || { cat "$work/migrate.sql" >&2; say "FAIL: migrate --dry-run printed no DDL"; exit 1; }
"$HERALD" "${migrate[@]}" >/dev/null 2>"$work/migrate.log" || { cat "$work/migrate.log" >&2; say "FAIL: herald outbox migrate"; exit 1; }
say "a) herald outbox migrate adopted the Go table $schema.outbox ($(grep -c '^-- step' "$work/migrate.sql") steps)"
"$GOPEER" create-topic --brokers "$brokers" --topic "$topic_a" --partitions 4
"$GOPEER" write-outbox --table "$schema.outbox" --topic "$topic_a" --n "$N" --prefix "a$run_id" --out "$work/a.jsonl"
relay_err=$("$HERALD" relay --postgres --postgres-env HERALD_TEST_PG_DSN --schema "$schema" --table outbox \
  --kafka "$brokers" --drain --key-from "$topic_a=/customer_id" 2>&1 >/dev/null) ||
  { echo "$relay_err" >&2; say "FAIL: herald relay"; exit 1; }
grep -q "drained $N events" <<<"$relay_err" || { echo "$relay_err" >&2; say "FAIL: relay did not drain $N events"; exit 1; }
stats=$("$HERALD" outbox stats --postgres --postgres-env HERALD_TEST_PG_DSN --schema "$schema" --table outbox)
grep -q '^pending 0$' <<<"$stats" && grep -q '^parked 0$' <<<"$stats" ||
  { echo "$stats" >&2; say "FAIL: outbox not empty after the relay"; exit 1; }
say "a) herald relay drained $N Go-written rows (pending 0, parked 0); keys from /customer_id"
"$GOPEER" read --brokers "$brokers" --topic "$topic_a" --expect "$work/a.jsonl" --check-key
"$PEER" consume "$brokers" "$topic_a" "$work/a.jsonl" --check-key

# --- b) herald publishes -> kafka-go reader ---
topic_b="interop-go-from-herald-$run_id"
"$GOPEER" create-topic --brokers "$brokers" --topic "$topic_b" --partitions 4
"$PEER" publish "$brokers" "$topic_b" "$N" "$work/b.jsonl"
"$GOPEER" read --brokers "$brokers" --topic "$topic_b" --expect "$work/b.jsonl" --check-key
say "b) $N herald events read by kafka-go"

# --- c) the Go bus publishes -> herald typed handler ---
topic_c="interop-go-to-herald-$run_id"
"$GOPEER" create-topic --brokers "$brokers" --topic "$topic_c" --partitions 4
"$GOPEER" publish --brokers "$brokers" --topic "$topic_c" --n "$N" --prefix "c$run_id" --out "$work/c.jsonl"
"$PEER" consume "$brokers" "$topic_c" "$work/c.jsonl" --check-key
say "c) $((N + 1)) Go bus events handled by herald"

# --- d) partitions: herald, kafka-go Murmur2Balancer, Java client ---
topic_d="interop-go-partitions-$run_id"
keys=$work/keys.txt
: >"$keys"
for len in 1 2 3 4 5 6 7 8 9 10 11 12 13 16 17 31 64; do
  printf '%s\n' "$(head -c "$len" <<<"customer-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789")" >>"$keys"
done
printf '%s\n' "cust-42" "kundé-7" "顧客-1234" "клиент" "🙂" "ß" "naïve café" "Zoë" >>"$keys"
"$GOPEER" create-topic --brokers "$brokers" --topic "$topic_d" --partitions 12
"$PEER" produce-keys "$brokers" "$topic_d" "$keys" herald
"$GOPEER" produce-keys --brokers "$brokers" --topic "$topic_d" --keys "$keys" --tag go
# The Java client: the broker jars' console producer, key<TAB>value.
jars=${HERALD_KAFKA_JARS:-}
if [[ -z "$jars" ]]; then
  # shellcheck source=/dev/null
  source "$repo/scripts/lib/common.sh"
  # shellcheck source=/dev/null
  source "$repo/scripts/lib/kafka.sh"
  jars=$(kafka_ensure_jars "${HERALD_KAFKA_VERSION:-$HERALD_KAFKA_DEFAULT_VERSION}")
fi
# Kafka 4 ships the console producer in kafka-tools, which the broker's jar
# list lacks: fetch that one jar once with Maven, next to the broker jars'
# cache (git-ignored).
version=$(basename "$(ls "$jars"/kafka-clients-*.jar)" .jar)
version=${version#kafka-clients-}
tools="$repo/.cache/kafka-tools/$version"
if [[ ! -f "$tools/kafka-tools-$version.jar" ]]; then
  say "fetching org.apache.kafka:kafka-tools:$version (first run only)"
  mkdir -p "$tools"
  mvn -B -q -Dstyle.color=never dependency:copy -Dartifact="org.apache.kafka:kafka-tools:$version" \
    -DoutputDirectory="$tools" >"$work/mvn.log" 2>&1 </dev/null || { cat "$work/mvn.log" >&2; say "FAIL: mvn"; exit 1; }
fi
java_log=$work/java-producer.log
produced=false
for class in org.apache.kafka.tools.ConsoleProducer kafka.tools.ConsoleProducer; do
  if sed 's/$/\tjava/' "$keys" | java -Dfile.encoding=UTF-8 -Dstdin.encoding=UTF-8 -cp "$tools/*:$jars/*" "$class" \
      --bootstrap-server "$brokers" --topic "$topic_d" --property parse.key=true --property "key.separator=	" \
      --producer-property acks=all >>"$java_log" 2>&1; then
    produced=true
    break
  fi
done
$produced || { cat "$java_log" >&2; say "FAIL: the Java console producer did not run"; exit 1; }
say "the Java client (console producer) produced $(wc -l <"$keys") keyed records to $topic_d"
"$GOPEER" partitions --brokers "$brokers" --topic "$topic_d" --keys "$keys" --tags herald,go,java
say "d) partitions agree"

say "4 scenarios passed: a) Go outbox -> herald relay -> kafka-go + herald ($N ids), b) herald -> kafka-go ($N ids), c) Go bus -> herald ($((N + 1)) ids), d) $(wc -l <"$keys") keys x 3 producers"
