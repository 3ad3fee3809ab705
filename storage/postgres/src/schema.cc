#include "schema.h"

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"

namespace herald::postgres {

std::string QuoteIdentifier(std::string_view name) { return StrCat("\"", name, "\""); }

int64_t AdvisoryLockKey(std::string_view text) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return static_cast<int64_t>(hash);
}

// Microseconds since the epoch of a timestamptz column, exact (extract
// returns numeric).
#define HERALD_PG_MICROS(col) "(extract(epoch from " col ") * 1000000)::int8"

const char kRecordColumns[] =
    "seq, event_id, event_type, topic, event_key, headers::text, event_payload::text, content_type, source, "
    "schema_version, " HERALD_PG_MICROS("occurred_at") ", attempts, last_error, " HERALD_PG_MICROS("created_at");

OutboxSql BuildOutboxSql(const PostgresOptions& options) {
  OutboxSql sql;
  sql.schema = QuoteIdentifier(options.schema);
  sql.table = StrCat(sql.schema, ".", QuoteIdentifier(options.table));
  sql.inbox = StrCat(sql.schema, ".", QuoteIdentifier(options.inbox_table));
  sql.table_literal = sql.table;
  sql.inbox_literal = sql.inbox;
  const std::string& t = sql.table;
  const std::string now = "coalesce($2::timestamptz, now())";

  sql.insert = {"herald_insert",
                StrCat("INSERT INTO ", t,
                       " (event_id, event_type, topic, event_key, headers, event_payload, content_type, source, "
                       "schema_version, occurred_at, created_at, available_at) VALUES ($1, $2, $3, $4, $5::jsonb, "
                       "$6, $7, $8, $9::int, $10::timestamptz, coalesce($11::timestamptz, now()), "
                       "coalesce($11::timestamptz, now()))")};
  std::string pending = StrCat(
      "SELECT ", kRecordColumns, " FROM ", t,
      " o WHERE o.published_at IS NULL AND o.parked_at IS NULL AND o.available_at <= ", now,
      " AND (o.event_key IS NULL OR NOT EXISTS (SELECT 1 FROM ", t,
      " p WHERE p.event_key = o.event_key AND p.seq < o.seq AND p.published_at IS NULL"
      // Served by the small "waiting" index of migration 2: only rows that
      // failed (or were written to wait) can be not ready.
      " AND (p.parked_at IS NOT NULL OR p.available_at > p.created_at)"
      " AND (p.parked_at IS NOT NULL OR p.available_at > ", now, ")))");
  sql.fetch_pending = {"herald_fetch_pending", StrCat(pending, " ORDER BY o.seq LIMIT $1::int")};
  sql.fetch_pending_shard = {"herald_fetch_pending_shard",
                             StrCat(pending,
                                    " AND mod(abs(hashtext(coalesce(o.event_key, ''))::bigint), $3::int) = $4::int"
                                    " ORDER BY o.seq LIMIT $1::int")};
  sql.mark_published = {"herald_mark_published",
                        StrCat("UPDATE ", t, " SET published_at = ", now,
                               " WHERE seq = ANY($1::bigint[]) AND published_at IS NULL")};
  sql.mark_failed = {"herald_mark_failed",
                     StrCat("UPDATE ", t,
                            " SET attempts = attempts + 1, last_error = $2, available_at = $3::timestamptz, "
                            "parked_at = CASE WHEN $4::bool THEN coalesce($5::timestamptz, now()) ELSE NULL END "
                            "WHERE seq = $1::int8")};
  sql.retry_parked = {"herald_retry_parked",
                      StrCat("UPDATE ", t, " SET parked_at = NULL, attempts = 0, available_at = ", now,
                             " WHERE parked_at IS NOT NULL AND published_at IS NULL"
                             " AND ($1::bigint[] IS NULL OR seq = ANY($1::bigint[]))")};
  // A skip: the row leaves the pending set as a published row would (so it
  // no longer holds back its key, and is purged with published rows), keeps
  // parked_at (a delivered row never has both), and its last_error gets the
  // skip note ($3, OutboxSkipNote with an empty previous error) in front.
  sql.skip_parked = {"herald_skip_parked",
                     StrCat("UPDATE ", t,
                            " SET published_at = $2::timestamptz, last_error = $3 || coalesce(last_error, '')"
                            " WHERE parked_at IS NOT NULL AND published_at IS NULL AND seq = ANY($1::bigint[])")};
  sql.assign_key = {"herald_assign_key",
                    StrCat("UPDATE ", t,
                           " SET event_key = $2 WHERE seq = ANY($1::bigint[]) AND published_at IS NULL"
                           " AND (event_key IS NULL OR event_key = '')")};
  sql.purge_published = {"herald_purge_published",
                         StrCat("DELETE FROM ", t, " WHERE seq IN (SELECT seq FROM ", t,
                                " WHERE published_at IS NOT NULL AND published_at < $1::timestamptz"
                                " ORDER BY seq LIMIT $2::int)")};
  sql.stats = {"herald_stats",
               StrCat("SELECT count(*) FILTER (WHERE parked_at IS NULL), count(*) FILTER (WHERE parked_at IS NOT "
                      "NULL), coalesce((extract(epoch from (coalesce($1::timestamptz, now()) - min(created_at) "
                      "FILTER (WHERE parked_at IS NULL))) * 1000000)::int8, 0) FROM ",
                      t, " WHERE published_at IS NULL")};
  sql.list_parked = {"herald_list_parked",
                     StrCat("SELECT ", kRecordColumns, " FROM ", t,
                            " WHERE parked_at IS NOT NULL AND published_at IS NULL ORDER BY seq LIMIT $1::int")};
  sql.inbox_insert = {"herald_inbox_insert",
                      StrCat("INSERT INTO ", sql.inbox,
                             " (consumer, event_id, processed_at) VALUES ($1, $2, coalesce($3::timestamptz, "
                             "now())) ON CONFLICT DO NOTHING")};
  sql.inbox_purge = {"herald_inbox_purge",
                     StrCat("DELETE FROM ", sql.inbox, " WHERE (consumer, event_id) IN (SELECT consumer, event_id FROM ",
                            sql.inbox, " WHERE processed_at < $1::timestamptz LIMIT $2::int)")};
  return sql;
}

namespace {

struct Migration {
  int version;
  std::string sql;
};

// An index name "<table><suffix>" cut to PostgreSQL's 63 characters.
std::string IndexName(std::string_view table, std::string_view suffix) {
  size_t room = 63 - suffix.size();
  return QuoteIdentifier(StrCat(table.substr(0, room), suffix));
}

// Append-only: a new schema change is a new entry with the next version.
// Every statement is idempotent, so a second outbox table in an already
// migrated schema gets created by running the list again.
std::vector<Migration> Migrations(const PostgresOptions& options, const OutboxSql& sql) {
  const std::string& t = sql.table;
  std::vector<Migration> list;
  list.push_back(
      {1, StrCat(
              // The outbox. An existing table (e.g. created by another
              // service with fewer columns) gets the missing ones.
              "CREATE TABLE IF NOT EXISTS ", t,
              " (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
              " event_id TEXT NOT NULL UNIQUE DEFAULT gen_random_uuid()::text,"
              " event_type TEXT NOT NULL, topic TEXT NOT NULL, event_key TEXT NULL, headers JSONB NULL,"
              " event_payload TEXT NOT NULL, content_type TEXT NOT NULL DEFAULT 'application/json',"
              " source TEXT NULL, schema_version INT NOT NULL DEFAULT 1,"
              " occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(), created_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
              " available_at TIMESTAMPTZ NOT NULL DEFAULT now(), published_at TIMESTAMPTZ NULL,"
              " parked_at TIMESTAMPTZ NULL, attempts INT NOT NULL DEFAULT 0, last_error TEXT NULL);\n",
              "ALTER TABLE ", t,
              " ADD COLUMN IF NOT EXISTS seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,"
              " ADD COLUMN IF NOT EXISTS event_id TEXT NOT NULL UNIQUE DEFAULT gen_random_uuid()::text,"
              " ADD COLUMN IF NOT EXISTS event_key TEXT NULL, ADD COLUMN IF NOT EXISTS headers JSONB NULL,"
              " ADD COLUMN IF NOT EXISTS content_type TEXT NOT NULL DEFAULT 'application/json',"
              " ADD COLUMN IF NOT EXISTS source TEXT NULL,"
              " ADD COLUMN IF NOT EXISTS schema_version INT NOT NULL DEFAULT 1,"
              " ADD COLUMN IF NOT EXISTS occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
              " ADD COLUMN IF NOT EXISTS created_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
              " ADD COLUMN IF NOT EXISTS available_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
              " ADD COLUMN IF NOT EXISTS published_at TIMESTAMPTZ NULL,"
              " ADD COLUMN IF NOT EXISTS parked_at TIMESTAMPTZ NULL,"
              " ADD COLUMN IF NOT EXISTS attempts INT NOT NULL DEFAULT 0,"
              " ADD COLUMN IF NOT EXISTS last_error TEXT NULL;\n",
              "CREATE INDEX IF NOT EXISTS ", IndexName(options.table, "_pending_idx"), " ON ", t,
              " (seq) WHERE published_at IS NULL;\n", "CREATE INDEX IF NOT EXISTS ",
              IndexName(options.table, "_key_pending_idx"), " ON ", t,
              " (event_key, seq) WHERE published_at IS NULL;\n",
              // The wake-up: one NOTIFY per inserting statement, delivered at
              // commit; the channel is the trigger's argument.
              "CREATE OR REPLACE FUNCTION ", sql.schema,
              ".herald_notify() RETURNS trigger LANGUAGE plpgsql AS $herald$ BEGIN PERFORM "
              "pg_notify(TG_ARGV[0], ''); RETURN NULL; END $herald$;\n",
              // The inbox.
              "CREATE TABLE IF NOT EXISTS ", sql.inbox,
              " (consumer TEXT NOT NULL, event_id TEXT NOT NULL, processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
              " PRIMARY KEY (consumer, event_id));\n",
              "CREATE INDEX IF NOT EXISTS ", IndexName(options.inbox_table, "_processed_idx"), " ON ", sql.inbox,
              " (processed_at);\n")});
  // The claim's order check looks for earlier rows of the same key that are
  // not ready (parked, or waiting for a retry). Only rows that failed, or
  // were written with a later available_at, can be so: this index holds just
  // those, so the check stays cheap however many rows are pending (the
  // (event_key, seq) index also holds published rows until vacuum).
  list.push_back({2, StrCat("CREATE INDEX IF NOT EXISTS ", IndexName(options.table, "_key_waiting_idx"), " ON ", t,
                            " (event_key, seq) WHERE published_at IS NULL AND"
                            " (parked_at IS NOT NULL OR available_at > created_at);\n")});
  return list;
}

absl::Status MigrateInTransaction(Connection& c, const PostgresOptions& options, const OutboxSql& sql) {
  const std::string lock_key = std::to_string(AdvisoryLockKey(StrCat("herald-migrations:", options.schema)));
  const char* lock_params[] = {lock_key.c_str()};
  HERALD_RETURN_IF_ERROR(
      ExecParams(c.get(), "SELECT pg_advisory_xact_lock($1::int8)", lock_params, "lock for migrations").status());
  const std::string versions_table = StrCat(sql.schema, ".herald_schema_migrations");
  HERALD_RETURN_IF_ERROR(c.Exec(StrCat("CREATE SCHEMA IF NOT EXISTS ", sql.schema, ";\nCREATE TABLE IF NOT EXISTS ",
                                       versions_table,
                                       " (version INT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"),
                                "create schema"));
  HERALD_ASSIGN_OR_RETURN(ResultPtr applied,
                          ExecParams(c.get(), StrCat("SELECT version FROM ", versions_table), {}, "read migrations"));
  absl::flat_hash_set<int> done;
  for (int i = 0; i < PQntuples(applied.get()); ++i) done.insert(std::atoi(PQgetvalue(applied.get(), i, 0)));
  const char* table_params[] = {sql.table_literal.c_str(), sql.inbox_literal.c_str()};
  HERALD_ASSIGN_OR_RETURN(ResultPtr missing,
                          ExecParams(c.get(), "SELECT to_regclass($1) IS NULL OR to_regclass($2) IS NULL",
                                     table_params, "look for tables"));
  const bool tables_missing = std::string_view(PQgetvalue(missing.get(), 0, 0)) == "t";
  for (const Migration& m : Migrations(options, sql)) {
    if (done.contains(m.version) && !tables_missing) continue;
    HERALD_RETURN_IF_ERROR(c.Exec(m.sql, StrCat("apply migration ", m.version)));
    const std::string version = std::to_string(m.version);
    const char* params[] = {version.c_str()};
    HERALD_RETURN_IF_ERROR(ExecParams(c.get(),
                                      StrCat("INSERT INTO ", versions_table,
                                             " (version) VALUES ($1::int) ON CONFLICT DO NOTHING"),
                                      params, "record migration")
                               .status());
  }
  // The trigger carries the channel; replace it only when the channel
  // changed (CREATE TRIGGER locks the table).
  const char* trigger_params[] = {sql.table_literal.c_str(), options.notify_channel.c_str()};
  HERALD_ASSIGN_OR_RETURN(
      ResultPtr trigger,
      ExecParams(c.get(),
                 "SELECT 1 FROM pg_trigger WHERE tgrelid = $1::regclass AND tgname = 'herald_notify' AND "
                 "tgargs = convert_to($2, 'UTF8') || '\\x00'::bytea",
                 trigger_params, "look for notify trigger"));
  if (PQntuples(trigger.get()) == 0) {
    HERALD_RETURN_IF_ERROR(c.Exec(
        StrCat("DROP TRIGGER IF EXISTS herald_notify ON ", sql.table, ";\nCREATE TRIGGER herald_notify AFTER INSERT ON ",
               sql.table, " FOR EACH STATEMENT EXECUTE FUNCTION ", sql.schema, ".herald_notify('",
               options.notify_channel, "')"),
        "install notify trigger"));
  }
  return absl::OkStatus();
}

}  // namespace

int LatestSchemaVersion() { return 2; }

absl::Status Migrate(Connection& connection, const PostgresOptions& options, const OutboxSql& sql) {
  HERALD_RETURN_IF_ERROR(connection.Exec("BEGIN", "begin migrations"));
  absl::Status status = MigrateInTransaction(connection, options, sql);
  if (!status.ok()) {
    (void)connection.Exec("ROLLBACK", "roll back migrations");
    return status;
  }
  return connection.Exec("COMMIT", "commit migrations");
}

}  // namespace herald::postgres
