// Private to herald::sqlite: one connection with its cached statements.
#ifndef HERALD_SQLITE_SRC_CONNECTION_H_
#define HERALD_SQLITE_SRC_CONNECTION_H_

#include <sqlite3.h>

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "herald/sqlite/sqlite_outbox_store.h"
#include "sql.h"
#include "sqlite_handles.h"

namespace herald::sqlite::internal {

// Runs `sql` (may hold several statements) with sqlite3_exec.
absl::Status Exec(sqlite3* db, const std::string& sql, std::string_view operation);

// One connection with its cached statements. Used by one thread at a time.
class Connection {
 public:
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const SqliteOptions& options, const SqlTexts* sql);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* db() const { return db_.get(); }
  // The cached statement `id`, reset and ready to bind. Owned by the
  // connection; reset it after use (StatementReset).
  absl::StatusOr<sqlite3_stmt*> Get(Sql id);
  // Runs a cached statement that returns no rows (BEGIN, COMMIT, ...).
  absl::Status Run(Sql id, std::string_view operation);

 private:
  Connection(DatabasePtr db, const SqlTexts* sql) : db_(std::move(db)), sql_(sql) {}
  DatabasePtr db_;
  const SqlTexts* sql_;
  // Declared after db_, so finalized before the connection closes.
  std::array<StatementPtr, kSqlCount> statements_;
};

}  // namespace herald::sqlite::internal

#endif  // HERALD_SQLITE_SRC_CONNECTION_H_
