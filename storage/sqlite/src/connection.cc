#include "connection.h"

#include <utility>

#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/sqlite/sqlite_status.h"

namespace herald::sqlite::internal {

absl::Status Exec(sqlite3* db, const std::string& sql, std::string_view operation) {
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  sqlite3_free(error);
  return SqliteErrorToStatus(rc, operation, db);
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const SqliteOptions& options, const SqlTexts* sql) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(options.path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  DatabasePtr db(raw);  // sqlite3_open_v2 returns a handle to close even when it fails
  if (rc != SQLITE_OK) return SqliteErrorToStatus(rc, herald::StrCat("open \"", options.path, "\""), db.get());
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), static_cast<int>(absl::ToInt64Milliseconds(options.busy_timeout)));
  HERALD_RETURN_IF_ERROR(Exec(
      db.get(),
      herald::StrCat("PRAGMA synchronous = ", options.synchronous, "; PRAGMA secure_delete = ", options.secure_delete),
      "set the connection's pragmas"));
  return std::unique_ptr<Connection>(new Connection(std::move(db), sql));
}

absl::StatusOr<sqlite3_stmt*> Connection::Get(Sql id) {
  StatementPtr& stmt = statements_[static_cast<int>(id)];
  if (stmt == nullptr) {
    HERALD_ASSIGN_OR_RETURN(
        stmt, Prepare(db(), (*sql_)[static_cast<int>(id)], "prepare a statement", SQLITE_PREPARE_PERSISTENT));
  }
  return stmt.get();
}

absl::Status Connection::Run(Sql id, std::string_view operation) {
  HERALD_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Get(id));
  StatementReset reset(stmt);
  return SqliteErrorToStatus(sqlite3_step(stmt), operation, db());
}

}  // namespace herald::sqlite::internal
