// Private: the SQL text of PostgresOutboxStore (built once from validated,
// quoted identifiers) and the versioned migrations.
#ifndef HERALD_POSTGRES_SRC_SCHEMA_H_
#define HERALD_POSTGRES_SRC_SCHEMA_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
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
  Statement insert;          // $1..$11, see postgres_outbox_store.cc
  Statement fetch_pending;   // $1 limit, $2 now
  Statement fetch_pending_shard;  // + $3 shard_count, $4 shard
  Statement mark_published;  // $1 bigint[], $2 now
  Statement mark_failed;     // $1 seq, $2 error, $3 retry_at, $4 park, $5 now
  Statement retry_parked;    // $1 bigint[] or NULL for all, $2 now
  Statement skip_parked;     // $1 bigint[], $2 now, $3 skip note
  Statement assign_key;      // $1 bigint[], $2 key
  Statement purge_published; // $1 before, $2 limit
  Statement stats;           // $1 now
  Statement list_parked;     // $1 limit
  Statement inbox_insert;    // $1 consumer, $2 event_id, $3 now
  Statement inbox_purge;     // $1 before, $2 limit
};

OutboxSql BuildOutboxSql(const PostgresOptions& options);

// The columns every record query selects, in the order ReadRecord expects.
extern const char kRecordColumns[];

// Installs or upgrades the schema on `connection` in one transaction under
// an advisory lock, then makes sure the notify trigger uses the configured
// channel. Idempotent.
absl::Status Migrate(Connection& connection, const PostgresOptions& options, const OutboxSql& sql);

// The highest migration version this build knows.
int LatestSchemaVersion();

}  // namespace herald::postgres

#endif  // HERALD_POSTGRES_SRC_SCHEMA_H_
