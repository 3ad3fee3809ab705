// Private to herald::sqlite: the versioned migrations of the outbox, inbox
// and lease tables.
#ifndef HERALD_SQLITE_SRC_SCHEMA_H_
#define HERALD_SQLITE_SRC_SCHEMA_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "herald/sqlite/sqlite_outbox_store.h"

namespace herald::sqlite::internal {

// One schema version: statements run in order in the migration transaction.
struct Migration {
  int version;
  std::vector<std::string> statements;
};
// Every migration, oldest first; future versions append.
std::vector<Migration> Migrations(const SqliteOptions& options);
// Applies the missing migrations in one BEGIN IMMEDIATE transaction.
absl::Status Migrate(sqlite3* db, const SqliteOptions& options, int64_t now_micros);

}  // namespace herald::sqlite::internal

#endif  // HERALD_SQLITE_SRC_SCHEMA_H_
