#include "connection.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_replace.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/postgres/redact.h"
#include "herald/postgres/status.h"

namespace herald::postgres {

std::string ConnectSettings::Redact(std::string_view text) const { return RedactConnectionSecrets(conninfo, text); }

absl::Status ParseConnInfo(ConnectSettings& settings) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(settings.conninfo.c_str(), &error);
  if (options == nullptr) {
    if (error != nullptr) PQfreemem(error);
    return absl::InvalidArgumentError(
        "PostgresOptions.conninfo is not a valid libpq connection string or URI (details withheld: it may "
        "contain a password)");
  }
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (std::string_view(o->keyword) == "password" && o->val != nullptr) settings.password = o->val;
  }
  PQconninfoFree(options);
  return absl::OkStatus();
}

absl::StatusOr<ResultPtr> ExecParams(PGconn* conn, const std::string& sql, Params params, std::string_view what) {
  ResultPtr result(PQexecParams(conn, sql.c_str(), static_cast<int>(params.size()), nullptr, params.data(),
                                nullptr, nullptr, 0));
  absl::Status status = PgResultToStatus(conn, result.get(), what);
  if (!status.ok()) return status;
  return result;
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const ConnectSettings& settings, std::string_view what) {
  // Later keywords override earlier ones, and dbname is expanded as a
  // conninfo string: so the caller's conninfo wins over our defaults.
  const char* keywords[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {settings.connect_timeout_seconds.c_str(), "herald", settings.conninfo.c_str(), nullptr};
  ConnPtr conn(PQconnectdbParams(keywords, values, /*expand_dbname=*/1));
  if (conn == nullptr || PQstatus(conn.get()) != CONNECTION_OK) {
    absl::Status status = PgConnectionToStatus(conn.get(), what);
    std::string message = settings.Redact(ToStd(status.message()));
    Log(LogSinkOrDefault(settings.log), LogLevel::kWarning, "postgres", "connection failed", {{"error", message}});
    return absl::UnavailableError(message);
  }
  // NOTICEs ("already exists, skipping") would go to stderr by default: they
  // are debug records of the log sink instead.
  PQsetNoticeProcessor(
      conn.get(),
      [](void* sink, const char* text) {
        LogSink& log = LogSinkOrDefault(static_cast<LogSink*>(sink));
        if (!log.Enabled(LogLevel::kDebug)) return;
        std::string_view notice = text != nullptr ? text : "";
        while (!notice.empty() && (notice.back() == '\n' || notice.back() == ' ')) notice.remove_suffix(1);
        Log(log, LogLevel::kDebug, "postgres", "server notice", {{"notice", std::string(notice)}});
      },
      settings.log);
  std::unique_ptr<Connection> connection(new Connection(std::move(conn)));
  // JIT compilation costs milliseconds per claim (the planner's estimates
  // for the claim query are high) and saves nothing on herald's short
  // statements.
  std::string setup = "SET jit = off";
  if (settings.statement_timeout > absl::ZeroDuration()) {
    StrAppend(&setup, "; SET statement_timeout = ", absl::ToInt64Milliseconds(settings.statement_timeout));
  }
  HERALD_RETURN_IF_ERROR(connection->Exec(setup, what));
  return connection;
}

absl::StatusOr<ResultPtr> Connection::Run(const Statement& statement, Params params, std::string_view what) {
  if (!prepared_.contains(statement.name)) {
    ResultPtr prepared(PQprepare(conn_.get(), statement.name.c_str(), statement.sql.c_str(), 0, nullptr));
    absl::Status status = PgResultToStatus(conn_.get(), prepared.get(), what);
    if (!status.ok()) return status;
    prepared_.insert(statement.name);
  }
  ResultPtr result(PQexecPrepared(conn_.get(), statement.name.c_str(), static_cast<int>(params.size()),
                                  params.data(), nullptr, nullptr, 0));
  absl::Status status = PgResultToStatus(conn_.get(), result.get(), what);
  if (!status.ok()) return status;
  return result;
}

absl::Status Connection::Exec(const std::string& sql, std::string_view what) {
  ResultPtr result(PQexec(conn_.get(), sql.c_str()));
  return PgResultToStatus(conn_.get(), result.get(), what);
}

PooledConnection::~PooledConnection() { pool_->Release(std::move(connection_)); }

absl::StatusOr<std::unique_ptr<PooledConnection>> ConnectionPool::Acquire() {
  {
    MutexLock lock(mu_);
    bool ready = cv_.WaitFor(mu_, acquire_timeout_,
                             [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !idle_.empty() || in_use_ < size_; });
    if (!ready) {
      return absl::ResourceExhaustedError(
          StrCat("PostgreSQL connection pool exhausted: all ", size_, " connections stayed busy for ",
                 absl::FormatDuration(acquire_timeout_),
                 ". Hint: raise PostgresOptions.pool_size, or finish transactions sooner"));
    }
    ++in_use_;
    if (!idle_.empty()) {
      std::unique_ptr<Connection> connection = std::move(idle_.back());
      idle_.pop_back();
      return std::make_unique<PooledConnection>(this, std::move(connection), /*reused=*/true);
    }
  }
  absl::StatusOr<std::unique_ptr<Connection>> connection = Connection::Open(settings_, "open pooled connection");
  if (!connection.ok()) {
    MutexLock lock(mu_);
    --in_use_;
    cv_.NotifyOne();
    return connection.status();
  }
  return std::make_unique<PooledConnection>(this, *std::move(connection), /*reused=*/false);
}

void ConnectionPool::Release(std::unique_ptr<Connection> connection) {
  std::vector<std::unique_ptr<Connection>> dropped;
  {
    MutexLock lock(mu_);
    --in_use_;
    if (connection != nullptr && !connection->broken() &&
        PQtransactionStatus(connection->get()) == PQTRANS_IDLE) {
      idle_.push_back(std::move(connection));
    } else if (connection != nullptr && connection->broken()) {
      // One broken connection usually means the server went away: the idle
      // ones are stale too. Drop them so the next caller connects afresh.
      dropped.swap(idle_);
      Log(LogSinkOrDefault(settings_.log), LogLevel::kWarning, "postgres",
          "connection lost; idle connections dropped, the next call reconnects",
          {{"error", settings_.Redact(PQerrorMessage(connection->get()))}});
    }
    cv_.NotifyOne();
  }
  // `connection` (if not kept) and `dropped` close here, outside the lock.
}

}  // namespace herald::postgres
