#include "herald/sqlite/sqlite_status.h"

#include <sqlite3.h>

#include <string>

#include "herald/core/strings.h"

namespace herald::sqlite {
namespace {

absl::StatusCode CodeFor(int code) {
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_PROTOCOL:
      return absl::StatusCode::kUnavailable;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_CONSTRAINT:
      return (code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY)
                 ? absl::StatusCode::kAlreadyExists
                 : absl::StatusCode::kInvalidArgument;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::StatusCode::kPermissionDenied;
    case SQLITE_CANTOPEN:
      return absl::StatusCode::kFailedPrecondition;
    case SQLITE_ABORT:
    case SQLITE_SCHEMA:
      return absl::StatusCode::kAborted;
    case SQLITE_INTERRUPT:
      return absl::StatusCode::kCancelled;
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
      return absl::StatusCode::kInvalidArgument;
    default:
      return absl::StatusCode::kInternal;
  }
}

std::string_view HintFor(int code) {
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return " Hint: another connection holds the database lock; raise SqliteOptions.busy_timeout or keep "
             "transactions shorter.";
    case SQLITE_FULL:
      return " Hint: the disk (or the temp directory) is full; free space or purge published rows sooner "
             "(RelayOptions.retention).";
    case SQLITE_IOERR:
      return " Hint: the operating system reported an I/O error; check the disk and the file system.";
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return " Hint: the file is damaged or not an SQLite database; restore it from a backup.";
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return " Hint: the process may not write the database file, its directory or its -wal/-shm files.";
    case SQLITE_CANTOPEN:
      return " Hint: check that the directory exists and the process may create files in it.";
    case SQLITE_TOOBIG:
      return " Hint: the value exceeds SQLite's length limit (SQLITE_MAX_LENGTH).";
    case SQLITE_SCHEMA:
      return " Hint: the schema changed under the statement; retry.";
    default:
      return "";
  }
}

}  // namespace

absl::Status SqliteErrorToStatus(int code, std::string_view operation, sqlite3* db) {
  if (code == SQLITE_OK || code == SQLITE_ROW || code == SQLITE_DONE) return absl::OkStatus();
  // A connection without extended result codes (sqlite3_extended_result_codes
  // off, the default for a caller's own handle) returns the primary code; the
  // connection still knows the extended one (a UNIQUE or PRIMARY KEY
  // violation among constraint failures).
  if (db != nullptr && (sqlite3_extended_errcode(db) & 0xff) == code) code = sqlite3_extended_errcode(db);
  std::string_view detail = sqlite3_errstr(code);
  if (db != nullptr && sqlite3_extended_errcode(db) == code) detail = sqlite3_errmsg(db);
  return absl::Status(CodeFor(code),
                      herald::StrCat("sqlite ", operation, ": ", detail, " (code ", code, ").", HintFor(code)));
}

}  // namespace herald::sqlite
