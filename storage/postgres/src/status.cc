#include "herald/postgres/status.h"

#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "herald/core/strings.h"

namespace herald::postgres {
namespace {

std::string Trimmed(const char* text) {
  if (text == nullptr) return "";
  return std::string(absl::StripAsciiWhitespace(text));
}

bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

}  // namespace

absl::Status PgConnectionToStatus(const PGconn* conn, std::string_view what) {
  std::string detail = conn == nullptr ? "out of memory" : Trimmed(PQerrorMessage(conn));
  if (detail.empty()) detail = "connection lost";
  return absl::UnavailableError(StrCat(
      what, ": PostgreSQL connection failed: ", detail,
      ". Hint: check that the server is running and reachable with PostgresOptions.conninfo; "
      "herald reconnects on the next call"));
}

absl::Status PgSqlStateToStatus(std::string_view sqlstate, std::string_view message, std::string_view what) {
  std::string text = StrCat(what, ": ", message, " (SQLSTATE ", sqlstate, ")");
  if (StartsWith(sqlstate, "08") || sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03") {
    return absl::UnavailableError(
        StrCat(text, ". Hint: the server is unreachable or restarting; retry after a backoff"));
  }
  if (sqlstate == "40001" || sqlstate == "40P01") {
    return absl::AbortedError(StrCat(text, ". Hint: retry the whole transaction"));
  }
  if (sqlstate == "25P02") {
    return absl::AbortedError(
        StrCat(text, ". Hint: an earlier statement in this transaction failed; roll back and retry"));
  }
  if (sqlstate == "23505") return absl::AlreadyExistsError(text);
  if (StartsWith(sqlstate, "23") || StartsWith(sqlstate, "22")) return absl::InvalidArgumentError(text);
  if (sqlstate == "42P01" || sqlstate == "3F000") {
    return absl::FailedPreconditionError(
        StrCat(text, ". Hint: check the schema and table names; create or adopt the table with `herald outbox "
                     "migrate` (or open the store with PostgresOptions.create_schema = true)"));
  }
  if (StartsWith(sqlstate, "42")) return absl::FailedPreconditionError(text);
  if (sqlstate == "57014") {
    return absl::DeadlineExceededError(
        StrCat(text, ". Hint: raise PostgresOptions.statement_timeout or look for lock waits"));
  }
  if (sqlstate == "55P03") return absl::UnavailableError(text);
  if (StartsWith(sqlstate, "53")) {
    return absl::ResourceExhaustedError(
        StrCat(text, ". Hint: the server is out of connections, memory or disk; lower pool_size or "
                     "raise max_connections"));
  }
  if (sqlstate.empty()) return absl::UnknownError(text);
  return absl::InternalError(text);
}

absl::Status PgResultToStatus(const PGconn* conn, const PGresult* result, std::string_view what) {
  if (result == nullptr) return PgConnectionToStatus(conn, what);
  switch (PQresultStatus(result)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_SINGLE_TUPLE:
      return absl::OkStatus();
    default:
      break;
  }
  const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  std::string message = Trimmed(PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY));
  if (message.empty()) message = Trimmed(PQresultErrorMessage(result));
  if ((state == nullptr || *state == '\0') && conn != nullptr && PQstatus(conn) == CONNECTION_BAD) {
    return PgConnectionToStatus(conn, what);
  }
  if (state == nullptr || *state == '\0') {
    if (message.empty()) message = StrCat("unexpected result ", PQresStatus(PQresultStatus(result)));
    return absl::UnknownError(StrCat(what, ": ", message));
  }
  return PgSqlStateToStatus(state, message, what);
}

}  // namespace herald::postgres
