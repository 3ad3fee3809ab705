// Private: libpq connections, prepared statements and the connection pool of
// PostgresOutboxStore.
#ifndef HERALD_POSTGRES_SRC_CONNECTION_H_
#define HERALD_POSTGRES_SRC_CONNECTION_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <libpq-fe.h>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "herald/core/log.h"
#include "herald/core/mutex.h"

namespace herald::postgres {

struct PGconnDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using ConnPtr = std::unique_ptr<PGconn, PGconnDeleter>;

struct PGresultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using ResultPtr = std::unique_ptr<PGresult, PGresultDeleter>;

// How to open a connection. Holds the conninfo: never print it.
struct ConnectSettings {
  std::string conninfo;
  std::string connect_timeout_seconds = "10";
  absl::Duration statement_timeout = absl::ZeroDuration();
  // The password in conninfo, if any.
  std::string password;
  // PostgresOptions::log: connection failures and losses (warning), server
  // NOTICEs (debug). Null: herald::DefaultLogSink().
  LogSink* log = nullptr;

  // `text` with the password and sslpassword of conninfo redacted
  // (RedactConnectionSecrets, herald/postgres/redact.h).
  std::string Redact(std::string_view text) const;
};

// Checks that `conninfo` parses and extracts the password for redaction.
// kInvalidArgument without details (they could quote the password).
absl::Status ParseConnInfo(ConnectSettings& settings);

// A SQL statement prepared once per connection under `name`.
struct Statement {
  std::string name;
  std::string sql;
};

// Text parameters; nullptr is SQL NULL.
using Params = absl::Span<const char* const>;

// Runs `sql` with `params` unprepared (PQexecParams) on any connection.
absl::StatusOr<ResultPtr> ExecParams(PGconn* conn, const std::string& sql, Params params, std::string_view what);

// One open connection plus the statements prepared on it. Not thread-safe.
class Connection {
 public:
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const ConnectSettings& settings, std::string_view what);

  PGconn* get() const { return conn_.get(); }
  bool broken() const { return PQstatus(conn_.get()) == CONNECTION_BAD; }

  // Runs `statement`, preparing it first on this connection if needed.
  absl::StatusOr<ResultPtr> Run(const Statement& statement, Params params, std::string_view what);
  // Runs parameterless SQL (may hold several statements).
  absl::Status Exec(const std::string& sql, std::string_view what);

 private:
  explicit Connection(ConnPtr conn) : conn_(std::move(conn)) {}
  ConnPtr conn_;
  absl::flat_hash_set<std::string> prepared_;
};

class ConnectionPool;

// A connection borrowed from the pool; given back when destroyed (dropped
// instead when broken or left inside a transaction).
class PooledConnection {
 public:
  PooledConnection(ConnectionPool* pool, std::unique_ptr<Connection> connection, bool reused)
      : pool_(pool), connection_(std::move(connection)), reused_(reused) {}
  ~PooledConnection();
  PooledConnection(const PooledConnection&) = delete;
  PooledConnection& operator=(const PooledConnection&) = delete;

  Connection& operator*() { return *connection_; }
  Connection* operator->() { return connection_.get(); }
  // True when the connection had been used before (so may have gone stale
  // while idle, e.g. across a server restart).
  bool reused() const { return reused_; }

 private:
  ConnectionPool* pool_;
  std::unique_ptr<Connection> connection_;
  bool reused_;
};

// At most `size` connections, opened on demand, reused LIFO. Thread-safe.
class ConnectionPool {
 public:
  ConnectionPool(ConnectSettings settings, int size, absl::Duration acquire_timeout)
      : settings_(std::move(settings)), size_(size), acquire_timeout_(acquire_timeout) {}

  // A free connection, waiting up to acquire_timeout (kResourceExhausted);
  // kUnavailable when a new one cannot be opened.
  absl::StatusOr<std::unique_ptr<PooledConnection>> Acquire();

  const ConnectSettings& settings() const { return settings_; }

 private:
  friend class PooledConnection;
  void Release(std::unique_ptr<Connection> connection);

  const ConnectSettings settings_;
  const int size_;
  const absl::Duration acquire_timeout_;
  Mutex mu_;
  CondVar cv_;
  std::vector<std::unique_ptr<Connection>> idle_ ABSL_GUARDED_BY(mu_);
  int in_use_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace herald::postgres

#endif  // HERALD_POSTGRES_SRC_CONNECTION_H_
