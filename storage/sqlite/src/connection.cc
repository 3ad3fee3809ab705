#include "connection.h"

#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/sqlite/sqlite_status.h"

namespace herald::sqlite::internal {

absl::Status Exec(sqlite3* db, const std::string& sql, std::string_view operation) {
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  sqlite3_free(error);
  return SqliteStatus(rc, operation, db);
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const SqliteOptions& options, const SqlTexts* sql) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(options.path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteStatus(rc, herald::StrCat("open \"", options.path, "\""), db);
    sqlite3_close_v2(db);
    return status;
  }
  std::unique_ptr<Connection> connection(new Connection(db, sql));
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, static_cast<int>(absl::ToInt64Milliseconds(options.busy_timeout)));
  HERALD_RETURN_IF_ERROR(Exec(
      db,
      herald::StrCat("PRAGMA synchronous = ", options.synchronous, "; PRAGMA secure_delete = ", options.secure_delete),
      "set the connection's pragmas"));
  return connection;
}

Connection::~Connection() {
  for (sqlite3_stmt* stmt : statements_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

absl::StatusOr<sqlite3_stmt*> Connection::Get(Sql id) {
  sqlite3_stmt*& stmt = statements_[static_cast<int>(id)];
  if (stmt == nullptr) {
    const std::string& text = (*sql_)[static_cast<int>(id)];
    int rc = sqlite3_prepare_v3(db_, text.c_str(), static_cast<int>(text.size()) + 1, SQLITE_PREPARE_PERSISTENT, &stmt,
                                nullptr);
    if (rc != SQLITE_OK) {
      stmt = nullptr;
      return SqliteStatus(rc, "prepare a statement", db_);
    }
  }
  return stmt;
}

absl::Status Connection::Run(Sql id, std::string_view operation) {
  HERALD_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Get(id));
  int rc = sqlite3_step(stmt);
  sqlite3_reset(stmt);
  return SqliteStatus(rc, operation, db_);
}

}  // namespace herald::sqlite::internal
