#include "sqlite_handles.h"

#include "herald/sqlite/sqlite_status.h"

namespace herald::sqlite::internal {

absl::StatusOr<StatementPtr> Prepare(sqlite3* db, const std::string& sql, std::string_view operation,
                                     unsigned int flags) {
  sqlite3_stmt* stmt = nullptr;
  // The length includes the terminating NUL, which saves SQLite a copy.
  int rc = sqlite3_prepare_v3(db, sql.c_str(), static_cast<int>(sql.size()) + 1, flags, &stmt, nullptr);
  StatementPtr owned(stmt);
  if (rc != SQLITE_OK) return SqliteErrorToStatus(rc, operation, db);
  return owned;
}

}  // namespace herald::sqlite::internal
