#include "schema.h"

#include <string_view>

#include "connection.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/sqlite/sqlite_status.h"
#include "sql.h"
#include "sqlite_handles.h"

namespace herald::sqlite::internal {
namespace {

// A random RFC 9562 version 4 UUID in SQL, for rows inserted without an id.
constexpr std::string_view kSqlRandomUuid =
    "(lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))))";

}  // namespace

// clang-format off
std::vector<Migration> Migrations(const SqliteOptions& options) {
  const std::string t = Quote(options.outbox_table);
  const std::string& n = options.outbox_table;
  std::vector<Migration> migrations;
  migrations.push_back(Migration{
      1,
      {
          herald::StrCat("CREATE TABLE IF NOT EXISTS ", t, " ("
                         // No AUTOINCREMENT: see kPurgePublished.
                         "seq INTEGER PRIMARY KEY, "
                         "event_id TEXT NOT NULL UNIQUE DEFAULT ", kSqlRandomUuid, ", "
                         "event_type TEXT NOT NULL, "
                         "topic TEXT NOT NULL, "
                         "event_key TEXT NULL, "
                         "headers TEXT NULL, "
                         "event_payload TEXT NOT NULL, "
                         "content_type TEXT NOT NULL DEFAULT 'application/json', "
                         "source TEXT NULL, "
                         "schema_version INTEGER NOT NULL DEFAULT 1, "
                         "occurred_at INTEGER NOT NULL DEFAULT ", kSqlNowMicros, ", "
                         "created_at INTEGER NOT NULL DEFAULT ", kSqlNowMicros, ", "
                         "available_at INTEGER NOT NULL DEFAULT ", kSqlNowMicros, ", "
                         "published_at INTEGER NULL, "
                         "parked_at INTEGER NULL, "
                         "attempts INTEGER NOT NULL DEFAULT 0, "
                         "last_error TEXT NULL)"),
          // Held rows (failed or parked): blocked keys, ListParked. Fresh rows
          // are not in it, so appends do not pay for it. Pending rows are
          // found by rowid from a low-water mark instead of a pending index
          // (every index on fresh rows is a page written per commit).
          herald::StrCat("CREATE INDEX IF NOT EXISTS ", Quote(n + "_held"), " ON ", t,
                         " (event_key, seq) WHERE published_at IS NULL AND (attempts > 0 OR parked_at IS NOT NULL)"),
          // Published rows, oldest first, for bounded purges (a row enters it
          // when marked, not when appended).
          herald::StrCat("CREATE INDEX IF NOT EXISTS ", Quote(n + "_published"), " ON ", t,
                         " (published_at) WHERE published_at IS NOT NULL"),
          herald::StrCat("CREATE TABLE IF NOT EXISTS ", Quote(options.inbox_table), " ("
                         "consumer TEXT NOT NULL, "
                         "event_id TEXT NOT NULL, "
                         "processed_at INTEGER NOT NULL DEFAULT ", kSqlNowMicros, ", "
                         "PRIMARY KEY (consumer, event_id)) WITHOUT ROWID"),
          herald::StrCat("CREATE INDEX IF NOT EXISTS ", Quote(options.inbox_table + "_processed_at"), " ON ",
                         Quote(options.inbox_table), " (processed_at)"),
          herald::StrCat("CREATE TABLE IF NOT EXISTS ", Quote(options.lease_table), " ("
                         "name TEXT PRIMARY KEY, "
                         "owner TEXT NOT NULL, "
                         "expires_at INTEGER NOT NULL)"),
      }});
  return migrations;
}
// clang-format on

namespace {

absl::Status MigrateInTransaction(sqlite3* db, const SqliteOptions& options, int64_t now_micros) {
  const std::string migrations_table = Quote(options.migrations_table);
  HERALD_RETURN_IF_ERROR(Exec(db,
                              herald::StrCat("CREATE TABLE IF NOT EXISTS ", migrations_table,
                                             " (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"),
                              "create the migrations table"));
  HERALD_ASSIGN_OR_RETURN(StatementPtr stmt,
                          Prepare(db, herald::StrCat("SELECT COALESCE(MAX(version), 0) FROM ", migrations_table),
                                  "read the schema version"));
  int rc = sqlite3_step(stmt.get());
  if (rc != SQLITE_ROW) return SqliteErrorToStatus(rc, "read the schema version", db);
  const int64_t current = sqlite3_column_int64(stmt.get(), 0);
  stmt.reset();  // finalized before the migrations change the schema

  std::vector<Migration> migrations = Migrations(options);
  if (current > migrations.back().version) {
    return absl::FailedPreconditionError(herald::StrCat("the outbox schema in ", options.path, " is at version ",
                                                        current, ", newer than this build of herald knows (",
                                                        migrations.back().version, "); upgrade herald"));
  }
  for (const Migration& m : migrations) {
    if (m.version <= current) continue;
    for (const std::string& statement : m.statements) {
      HERALD_RETURN_IF_ERROR(Exec(db, statement, herald::StrCat("migration ", m.version)));
    }
    HERALD_RETURN_IF_ERROR(Exec(db,
                                herald::StrCat("INSERT INTO ", migrations_table, " (version, applied_at) VALUES (",
                                               m.version, ", ", now_micros, ")"),
                                "record a migration"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Migrate(sqlite3* db, const SqliteOptions& options, int64_t now_micros) {
  HERALD_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE", "begin the migrations"));
  absl::Status status = MigrateInTransaction(db, options, now_micros);
  if (status.ok()) status = Exec(db, "COMMIT", "commit the migrations");
  if (!status.ok()) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  return status;
}

}  // namespace herald::sqlite::internal
