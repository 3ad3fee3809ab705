// herald/postgres/status.h: libpq results and SQLSTATEs as absl::Status.
//
// The one place that decides what a PostgreSQL error means to herald (and so
// whether the relay and the dispatcher retry it, see herald::IsRetryable).
// Business code that runs its own SQL on a herald::postgres::Transaction's
// connection may use it too:
//
//   PGresult* r = PQexec(tx.conn(), "UPDATE customers SET name = 'Ada' WHERE id = 'cust-42'");
//   absl::Status s = herald::postgres::PgResultToStatus(tx.conn(), r, "update customer");
//   PQclear(r);
//   HERALD_RETURN_IF_ERROR(s);
//
// The mapping:
//   connection failures (class 08, 57P01..57P03, a NULL result, a connection
//     whose PQstatus is CONNECTION_BAD)        -> kUnavailable
//   40001 serialization failure, 40P01 deadlock,
//     25P02 statement in an aborted transaction  -> kAborted
//   23505 unique violation                      -> kAlreadyExists
//   other class 23 (integrity), class 22 (data)  -> kInvalidArgument
//   42P01 undefined table, 3F000 undefined schema -> kFailedPrecondition
//     ("run migrations" hint)
//   other class 42 (syntax, privileges)          -> kFailedPrecondition
//   57014 statement timeout / cancel             -> kDeadlineExceeded
//   55P03 lock not available                     -> kUnavailable
//   class 53 (insufficient resources)            -> kResourceExhausted
//   anything else                                -> kInternal
// Every message carries the SQLSTATE and what herald was doing; none carries
// the connection string (it may hold a password).
//
// Thread-safety: the functions are pure.
#ifndef HERALD_POSTGRES_STATUS_H_
#define HERALD_POSTGRES_STATUS_H_

#include <string_view>

#include <libpq-fe.h>

#include "absl/status/status.h"

namespace herald::postgres {

// OK when `result` is PGRES_COMMAND_OK, PGRES_TUPLES_OK or
// PGRES_SINGLE_TUPLE; otherwise the error, mapped as above. `result` may be
// NULL (libpq could not even send the command), then `conn` explains.
// `what` names the operation for the message ("fetch pending outbox rows").
// Does not take ownership of `result`.
absl::Status PgResultToStatus(const PGconn* conn, const PGresult* result, std::string_view what);

// The status for SQLSTATE `sqlstate` with the server's `message`.
absl::Status PgSqlStateToStatus(std::string_view sqlstate, std::string_view message, std::string_view what);

// kUnavailable for a connection that could not be opened or broke, with
// libpq's message and a hint. Never includes the connection string.
absl::Status PgConnectionToStatus(const PGconn* conn, std::string_view what);

}  // namespace herald::postgres

#endif  // HERALD_POSTGRES_STATUS_H_
