// Private to herald::sqlite: owning handles for SQLite's C objects, and the
// scope guard that resets a cached statement.
//
// A connection owns its sqlite3 in a DatabasePtr and its cached statements
// in StatementPtrs (finalized before the connection closes); a statement
// prepared for one call (on a caller's own handle) is a StatementPtr too, so
// every return path finalizes it.
#ifndef HERALD_SQLITE_SRC_SQLITE_HANDLES_H_
#define HERALD_SQLITE_SRC_SQLITE_HANDLES_H_

#include <sqlite3.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace herald::sqlite::internal {

struct DatabaseCloser {
  // close_v2: a connection with statements still open becomes a zombie that
  // closes with its last statement, instead of failing with SQLITE_BUSY.
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StatementFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};

using DatabasePtr = std::unique_ptr<sqlite3, DatabaseCloser>;
using StatementPtr = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;

// Prepares `sql` on `db` (sqlite3_prepare_v3 with `flags`). The
// SqliteErrorToStatus of the failure names `operation`.
absl::StatusOr<StatementPtr> Prepare(sqlite3* db, const std::string& sql, std::string_view operation,
                                     unsigned int flags = 0);

// Resets a statement when it leaves scope, whatever the path (so a cached
// statement holds no read snapshot and is ready for the next call).
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

#endif  // HERALD_SQLITE_SRC_SQLITE_HANDLES_H_
