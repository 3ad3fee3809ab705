#!/usr/bin/env bash
# End-to-end test of `herald outbox migrate` on PostgreSQL: a table the
# seed's Go services created (their writer's 3-column INSERT, their
# publisher's published_at) is refused by the relay until it is adopted
# explicitly; --dry-run prints the DDL and changes nothing; the migration
# keeps each row's time, does not rewrite the table, is a no-op the second
# time; afterwards the Go INSERT works and the relay relays its rows.
#   cli_migrate_pgtest.sh HERALD_CLI     (HERALD_TEST_PG_DSN from scripts/servers-env.sh)
set -euo pipefail
HERALD=$1
: "${HERALD_TEST_PG_DSN:?set HERALD_TEST_PG_DSN (scripts/servers-up.sh pg; eval \"\$(scripts/servers-env.sh)\")}"
schema="cli_migrate_$$_$(date +%s)"
sql() { psql "$HERALD_TEST_PG_DSN" -X -q -v ON_ERROR_STOP=1 -At -c "$1"; }
trap 'sql "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true' EXIT
fail() { echo "cli migrate: $*" >&2; exit 1; }
flags=(--postgres --postgres-env HERALD_TEST_PG_DSN --schema "$schema" --table outbox)
node() { sql "SELECT relfilenode FROM pg_class WHERE oid = '$schema.outbox'::regclass"; }
columns() { sql "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns WHERE table_schema = '$schema' AND table_name = 'outbox'"; }

sql "CREATE SCHEMA $schema;
  CREATE TABLE $schema.outbox (id BIGSERIAL PRIMARY KEY, event_type TEXT NOT NULL, topic TEXT NOT NULL,
    event_payload JSONB NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now(), published_at TIMESTAMPTZ NULL);
  INSERT INTO $schema.outbox (event_type, topic, event_payload, created_at, published_at) VALUES
    ('customer.created', 'customer-events', '{\"customer_id\":\"c1\"}', '2026-11-30 10:00:00+00', now()),
    ('customer.created', 'customer-events', '{\"customer_id\":\"c2\"}', '2026-11-30 10:01:00+00', NULL),
    ('customer.updated', 'customer-events', '{\"customer_id\":\"c2\"}', '2026-11-30 10:02:00+00', NULL);"
before_columns=$(columns)
before_node=$(node)

# The relay (and every other command) refuses the unmigrated table.
if err=$("$HERALD" relay "${flags[@]}" --stdout --drain 2>&1 >/dev/null); then fail "relay started on a Go table"; fi
grep -q 'herald outbox migrate' <<<"$err" || fail "relay's refusal does not name the command: $err"
grep -q 'FAILED_PRECONDITION' <<<"$err" || fail "relay's refusal is not a failed precondition: $err"
[[ "$(columns)" == "$before_columns" ]] || fail "the refused relay changed the table"

# --dry-run prints the DDL and changes nothing.
plan=$("$HERALD" outbox migrate "${flags[@]}" --dry-run 2>/dev/null)
for want in 'ADD COLUMN IF NOT EXISTS seq BIGINT' 'occurred_at = coalesce(occurred_at, created_at, now())' \
  'CREATE UNIQUE INDEX CONCURRENTLY' 'NOT VALID' 'VALIDATE CONSTRAINT' '-- locks: '; do
  grep -qF -- "$want" <<<"$plan" || fail "dry run lacks \"$want\": $plan"
done
[[ "$(columns)" == "$before_columns" ]] || fail "--dry-run changed the columns"
[[ "$(sql "SELECT count(*) FROM pg_indexes WHERE schemaname = '$schema'")" == 1 ]] || fail "--dry-run built indexes"

# The migration: progress printed, no rewrite, row times kept.
errfile=$(mktemp)
out=$("$HERALD" outbox migrate "${flags[@]}" --batch 2 2>"$errfile") || { cat "$errfile" >&2; rm -f "$errfile"; fail "migrate failed"; }
progress=$(cat "$errfile")
rm -f "$errfile"
grep -q 'backfilled batch 1/' <<<"$progress" || fail "no backfill progress: $progress"
grep -q 'adopted' <<<"$out" || fail "migrate did not report the adoption: $out"
[[ "$(node)" == "$before_node" ]] || fail "the table was rewritten (relfilenode changed)"
[[ "$(sql "SELECT count(*) FROM $schema.outbox WHERE occurred_at = created_at AND seq IS NOT NULL")" == 3 ]] ||
  fail "rows lost their created_at: $(sql "SELECT created_at, occurred_at FROM $schema.outbox")"

# Twice: a no-op, said so.
again=$("$HERALD" outbox migrate "${flags[@]}" 2>/dev/null)
grep -q 'nothing to do' <<<"$again" || fail "second migrate was not a no-op: $again"
[[ "$(node)" == "$before_node" ]] || fail "the second run rewrote the table"

# The seed's Go writer, exactly, inside a transaction; then the relay.
sql "BEGIN; INSERT INTO $schema.outbox (event_type, topic, event_payload) VALUES ('customer.deleted', 'customer-events', '{\"customer_id\":\"c2\"}'); COMMIT;"
relayed=$("$HERALD" relay "${flags[@]}" --stdout --drain 2>/dev/null)
[[ "$(grep -cE '"customer_id": ?"c2"' <<<"$relayed")" == 3 ]] || fail "expected the 3 pending rows relayed: $relayed"
[[ "$(head -1 <<<"$relayed" | grep -c '"type":"customer.created"')" == 1 ]] || fail "old rows not first: $relayed"
grep -q '"timestamp":"2026-11-30T10:01:00Z"' <<<"$relayed" || fail "an old row lost its time: $relayed"
grep -q '"type":"customer.deleted"' <<<"$(tail -1 <<<"$relayed")" || fail "the new Go row not last: $relayed"
stats=$("$HERALD" outbox stats "${flags[@]}")
grep -q '^pending 0$' <<<"$stats" || fail "rows left pending: $stats"
echo "herald CLI migrate on PostgreSQL: OK (refused, dry run, 3 rows adopted without rewrite, no-op rerun, 3 relayed)"
