// herald/sqlite/sqlite_status.h: the one mapping from SQLite result codes to
// absl::Status.
//
// Every SQLite call in herald::sqlite reports failure through
// SqliteErrorToStatus (named like kafka::KafkaErrorToStatus and
// postgres::PgResultToStatus), so the relay's retry rule
// (herald::IsRetryable) sees the same codes everywhere:
//
//   SQLITE_BUSY, SQLITE_LOCKED   kUnavailable (retryable; hint: busy_timeout)
//   SQLITE_FULL, SQLITE_NOMEM    kResourceExhausted (retryable)
//   SQLITE_IOERR, SQLITE_PROTOCOL kUnavailable (retryable; hint: the disk)
//   SQLITE_CONSTRAINT_UNIQUE/PK  kAlreadyExists (e.g. a duplicate event id)
//   other SQLITE_CONSTRAINT_*    kInvalidArgument (NOT NULL, CHECK, ...)
//   SQLITE_CORRUPT, SQLITE_NOTADB kDataLoss
//   SQLITE_READONLY, SQLITE_PERM, SQLITE_AUTH  kPermissionDenied
//   SQLITE_CANTOPEN              kFailedPrecondition (hint: path, permissions)
//   SQLITE_ABORT, SQLITE_SCHEMA  kAborted (retry the transaction)
//   SQLITE_INTERRUPT             kCancelled
//   SQLITE_TOOBIG, SQLITE_MISMATCH, SQLITE_RANGE  kInvalidArgument
//   anything else                kInternal
//
//   int rc = sqlite3_step(stmt);
//   if (rc != SQLITE_DONE) return herald::sqlite::SqliteErrorToStatus(rc, "append", db);
//
// Thread-safe (pure function; reads sqlite3_errmsg of `db` when given, which
// must be the connection the calling thread just used).
#ifndef HERALD_SQLITE_SQLITE_STATUS_H_
#define HERALD_SQLITE_SQLITE_STATUS_H_

#include <string_view>

#include "absl/status/status.h"

struct sqlite3;

namespace herald::sqlite {

// The status for SQLite result code `code` (primary or extended) returned by
// `operation` ("append", "fetch pending rows", ...). OK for SQLITE_OK, SQLITE_ROW and
// SQLITE_DONE. The message names the operation, SQLite's own message (from
// `db` when not null) and the code, plus a hint of what to do.
absl::Status SqliteErrorToStatus(int code, std::string_view operation, sqlite3* db = nullptr);

}  // namespace herald::sqlite

#endif  // HERALD_SQLITE_SQLITE_STATUS_H_
