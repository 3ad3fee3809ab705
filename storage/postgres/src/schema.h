// Private: the SQL text of PostgresOutboxStore (built once from validated,
// quoted identifiers) and the versioned migrations.
#ifndef HERALD_POSTGRES_SRC_SCHEMA_H_
#define HERALD_POSTGRES_SRC_SCHEMA_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "connection.h"
#include "herald/postgres/postgres_outbox_store.h"

namespace herald::postgres {

// "name" with double quotes; `name` must be a valid identifier.
std::string QuoteIdentifier(std::string_view name);

// A stable 64-bit key for advisory locks (FNV-1a).
int64_t AdvisoryLockKey(std::string_view text);

// Every statement the store runs, for one (schema, table, inbox table).
struct OutboxSql {
  std::string schema;         // "schema"
  std::string table;          // "schema"."table"
  std::string inbox;          // "schema"."inbox"
  std::string table_literal;  // the same, unquoted-safe for to_regclass($1)
  std::string inbox_literal;
  Statement insert;               // $1..$11, see postgres_outbox_store.cc
  Statement fetch_pending;        // $1 limit, $2 now
  Statement fetch_pending_shard;  // + $3 shard_count, $4 shard
  Statement mark_published;       // $1 bigint[], $2 now
  Statement delete_published;     // $1 bigint[]
  Statement mark_failed;          // $1 seq, $2 error, $3 retry_at, $4 park, $5 now
  Statement retry_parked;         // $1 bigint[] or NULL for all, $2 now
  Statement skip_parked;          // $1 bigint[], $2 now, $3 skip note
  Statement assign_key;           // $1 bigint[], $2 key
  Statement keys_with_earlier;    // $1 [[key, seq], ...] jsonb, $2 bigint[] excluded
  Statement purge_published;      // $1 before, $2 limit
  Statement stats;                // $1 now
  Statement list_parked;          // $1 limit
  Statement inbox_insert;         // $1 consumer, $2 event_id, $3 now
  Statement inbox_purge;          // $1 before, $2 limit
};

OutboxSql BuildOutboxSql(const PostgresOptions& options);

// The columns every record query selects, in the order ReadRecord expects.
extern const char kRecordColumns[];

// Validates `options` (kInvalidArgument naming the field), derives the
// default notify channel, and returns how to connect.
absl::StatusOr<ConnectSettings> PrepareOptions(PostgresOptions& options);

// An index name "<table><suffix>" cut to PostgreSQL's 63 characters, quoted.
std::string IndexName(std::string_view table, std::string_view suffix);

// What an existing outbox table lacks of herald's table contract
// (docs/outbox.md). Read from the catalogs only: no table is scanned.
struct TableInspection {
  bool exists = false;        // the outbox table
  bool inbox_exists = false;  // the inbox table
  bool trigger = false;       // a herald_notify trigger on the outbox table
  // Columns herald adds (nullable, or NOT NULL with a constant default).
  std::vector<std::string> missing_columns;
  // Existing columns herald cannot use as they are, and why; the migration
  // refuses to touch the table while this is not empty.
  std::vector<std::string> incompatible;
  // Columns that need a default for new rows (a 3-column INSERT).
  std::vector<std::string> missing_defaults;
  // Columns that must be NOT NULL but are not yet (after the backfill).
  std::vector<std::string> nullable;
  // herald_<column>_not_null CHECK constraints left by an interrupted
  // migration, with whether they are validated.
  std::vector<std::pair<std::string, bool>> not_null_checks;
  // herald's indexes that are absent, and those left INVALID by an
  // interrupted CREATE INDEX CONCURRENTLY.
  std::vector<std::string> missing_indexes;
  std::vector<std::string> invalid_indexes;
  // herald's indexes that only make things faster (the purge's), absent on
  // a table from before them: the table is still adopted, and `herald
  // outbox migrate` adds them.
  std::vector<std::string> missing_optional_indexes;
  bool seq_unique = false;
  bool event_id_unique = false;
  // The sequence behind seq on an adopted table exists.
  bool seq_sequence = false;

  // True when the outbox table exists and meets the contract.
  bool adopted() const;
  // "missing columns seq, event_id; ..." for messages.
  std::string Summary() const;
};

// Reads the catalogs for the outbox and inbox tables of `sql`.
absl::StatusOr<TableInspection> InspectTables(Connection& c, const OutboxSql& sql, const PostgresOptions& options);

// Migration 3: the index of the published rows that the purge reads.
std::string PublishedIndexSql(const PostgresOptions& options, const OutboxSql& sql, bool concurrently);

// The name of the sequence behind seq on an adopted table, quoted.
std::string SeqSequenceName(const PostgresOptions& options, const OutboxSql& sql);

// The script that creates herald's schema, tables, indexes and trigger from
// nothing (every statement IF NOT EXISTS), and records the versions.
std::string CreateSchemaSql(const PostgresOptions& options, const OutboxSql& sql);
// The same for the inbox table alone.
std::string CreateInboxSql(const PostgresOptions& options, const OutboxSql& sql);
// Creates the versions table and records every version this build knows.
std::string RecordSchemaVersionsSql(const OutboxSql& sql);
// Installs the notify trigger with the configured channel.
std::string CreateTriggerSql(const PostgresOptions& options, const OutboxSql& sql);

// The kFailedPrecondition of a store opened on a table herald has not
// adopted: names `herald outbox migrate` and what is missing.
absl::Status NotAdoptedError(const PostgresOptions& options, const OutboxSql& sql, const TableInspection& inspection);

// Open's schema step, in one transaction under an advisory lock: creates
// herald's tables when the outbox table is absent (with `create_schema`),
// refuses a table that does not meet the contract (NotAdoptedError), creates
// a missing inbox and makes sure the notify trigger uses the configured
// channel. Never alters an existing outbox table's columns or indexes.
absl::Status PrepareSchema(Connection& connection, const PostgresOptions& options, const OutboxSql& sql);

// The advisory lock key Open and `herald outbox migrate` take while they
// create tables in `schema`.
int64_t SchemaLockKey(const PostgresOptions& options);

// The highest migration version this build knows.
int LatestSchemaVersion();

}  // namespace herald::postgres

#endif  // HERALD_POSTGRES_SRC_SCHEMA_H_
