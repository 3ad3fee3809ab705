// Private to herald::sqlite: one connection with its cached statements.
#ifndef HERALD_SQLITE_SRC_CONNECTION_H_
#define HERALD_SQLITE_SRC_CONNECTION_H_

#include <sqlite3.h>

#include <array>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "herald/sqlite/sqlite_outbox_store.h"
#include "sql.h"

namespace herald::sqlite::internal {

// Runs `sql` (may hold several statements) with sqlite3_exec.
absl::Status Exec(sqlite3* db, const std::string& sql, std::string_view operation);

// One connection with its cached statements. Used by one thread at a time.
class Connection {
 public:
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const SqliteOptions& options, const SqlTexts* sql);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* db() const { return db_; }
  // The cached statement `id`, reset and ready to bind.
  absl::StatusOr<sqlite3_stmt*> Get(Sql id);
  // Runs a cached statement that returns no rows (BEGIN, COMMIT, ...).
  absl::Status Run(Sql id, std::string_view operation);

 private:
  Connection(sqlite3* db, const SqlTexts* sql) : db_(db), sql_(sql) {}
  sqlite3* db_;
  const SqlTexts* sql_;
  std::array<sqlite3_stmt*, kSqlCount> statements_{};
};

// Resets a statement when it leaves scope (so it holds no read snapshot).
class StatementReset {
 public:
  explicit StatementReset(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~StatementReset() { sqlite3_reset(stmt_); }
  StatementReset(const StatementReset&) = delete;
  StatementReset& operator=(const StatementReset&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

}  // namespace herald::sqlite::internal

#endif  // HERALD_SQLITE_SRC_CONNECTION_H_
