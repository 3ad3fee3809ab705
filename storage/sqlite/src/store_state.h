// Private to herald::sqlite: the shared state of one SqliteOutboxStore
// (connection pool, writer gate, wake-up signal, SQL texts).
#ifndef HERALD_SQLITE_SRC_STORE_STATE_H_
#define HERALD_SQLITE_SRC_STORE_STATE_H_

#include <sqlite3.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "herald/core/mutex.h"
#include "herald/sqlite/sqlite_outbox_store.h"

namespace herald::sqlite::internal {

// Statements every connection prepares once (lazily) and keeps.
enum class Sql : int {
  kBegin,
  kCommit,
  kRollback,
  kAppend,
  kLowWater,
  kClaim,
  kMarkPublished,
  kMarkFailed,
  kRetryParked,
  kPurgePublished,
  kStats,
  kListParked,
  kLeaseAcquire,
  kLeaseRenew,
  kLeaseRelease,
  kInboxInsert,
  kInboxPurge,
  kCount,
};
inline constexpr int kSqlCount = static_cast<int>(Sql::kCount);
using SqlTexts = std::array<std::string, kSqlCount>;

// The SQL of every statement for the configured (validated) table names.
SqlTexts BuildSqlTexts(const SqliteOptions& options);

// "now" in SQLite as INTEGER Unix microseconds (millisecond precision).
inline constexpr std::string_view kSqlNowMicros =
    "(CAST(strftime('%s','now') AS INTEGER) * 1000000 + CAST(substr(strftime('%f','now'), 4) AS INTEGER) * 1000)";

// kInvalidArgument unless `name` matches [A-Za-z_][A-Za-z0-9_]{0,62}.
absl::Status ValidateIdentifier(std::string_view what, std::string_view name);
// `"name"` (the name is validated, so it holds no quote).
std::string Quote(std::string_view name);

// One schema version: statements run in order in the migration transaction.
struct Migration {
  int version;
  std::vector<std::string> statements;
};
// Every migration, oldest first; future versions append.
std::vector<Migration> Migrations(const SqliteOptions& options);
// Applies the missing migrations in one BEGIN IMMEDIATE transaction.
absl::Status Migrate(sqlite3* db, const SqliteOptions& options, int64_t now_micros);

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

// An in-process wake-up: a generation counter bumped by commits that
// appended rows, RetryParked and Interrupt.
class WakeSignal {
 public:
  void Notify();
  // Returns at once when Notify ran since the last Wait returned; otherwise
  // waits for the next Notify or `timeout`.
  void Wait(absl::Duration timeout);

 private:
  Mutex mu_;
  CondVar cv_;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t seen_ ABSL_GUARDED_BY(mu_) = 0;
};

// Process-wide registry of stores by database file, for the WAL hook that
// Append(sqlite3*) installs on callers' handles.
void RegisterWakeSignal(const std::string& file, std::shared_ptr<WakeSignal> signal);
void UnregisterWakeSignal(const std::string& file, const WakeSignal* signal);
// Wakes every store of this process on `file`.
void NotifyWakeSignals(const std::string& file);
// sqlite3_wal_hook callback: wakes the stores on the committed file, then
// checkpoints every 1000 pages like SQLite's default hook.
int WakeOnWalCommit(void* unused, sqlite3* db, const char* schema, int pages);

class StoreState {
 public:
  StoreState(SqliteOptions options) : options(std::move(options)), sql(BuildSqlTexts(this->options)) {}
  ~StoreState();

  const SqliteOptions options;
  const SqlTexts sql;
  std::string file;  // canonical file name (sqlite3_db_filename)
  std::shared_ptr<WakeSignal> wake = std::make_shared<WakeSignal>();

  // A pooled connection (opened on demand). Return it with Return.
  absl::StatusOr<Connection*> Acquire();
  // Returns a connection; one left inside a transaction is rolled back, and
  // closed if that fails.
  void Return(Connection* connection);

  // The in-process writer gate: one store write at a time per process.
  // kUnavailable after busy_timeout.
  absl::Status EnterWriter();
  void LeaveWriter();

  int64_t NowMicros() const { return absl::ToUnixMicros(options.clock->Now()); }

  // Every row with a smaller seq is published (rows are never unpublished,
  // and a seq is never reused: a new row gets MAX(seq) + 1, and purges
  // never delete the row with the highest seq), so relay scans start here.
  int64_t low_water() const { return low_water_.load(std::memory_order_relaxed); }
  void RaiseLowWater(int64_t seq) {
    int64_t current = low_water_.load(std::memory_order_relaxed);
    while (seq > current && !low_water_.compare_exchange_weak(current, seq, std::memory_order_relaxed)) {
    }
  }

 private:
  std::atomic<int64_t> low_water_{0};
  Mutex pool_mu_;
  std::vector<std::unique_ptr<Connection>> idle_ ABSL_GUARDED_BY(pool_mu_);
  Mutex gate_mu_;
  CondVar gate_cv_;
  bool writer_ ABSL_GUARDED_BY(gate_mu_) = false;
};

// A connection borrowed for one operation.
class PooledConnection {
 public:
  PooledConnection(StoreState* state, Connection* connection) : state_(state), connection_(connection) {}
  ~PooledConnection() {
    if (connection_ != nullptr) state_->Return(connection_);
  }
  PooledConnection(PooledConnection&& other) noexcept : state_(other.state_), connection_(other.connection_) {
    other.connection_ = nullptr;
  }
  PooledConnection(const PooledConnection&) = delete;
  PooledConnection& operator=(const PooledConnection&) = delete;
  PooledConnection& operator=(PooledConnection&&) = delete;
  Connection* operator->() const { return connection_; }
  Connection* get() const { return connection_; }
  Connection* release() {
    Connection* c = connection_;
    connection_ = nullptr;
    return c;
  }

 private:
  StoreState* state_;
  Connection* connection_;
};

// Holds the writer gate for a scope.
class WriterTurn {
 public:
  explicit WriterTurn(StoreState* state) : state_(state) {}
  ~WriterTurn() {
    if (state_ != nullptr) state_->LeaveWriter();
  }
  WriterTurn(WriterTurn&& other) noexcept : state_(other.state_) { other.state_ = nullptr; }
  WriterTurn(const WriterTurn&) = delete;
  WriterTurn& operator=(const WriterTurn&) = delete;
  WriterTurn& operator=(WriterTurn&&) = delete;
  // Keeps the gate held past this scope (a Transaction leaves it).
  void Keep() { state_ = nullptr; }

 private:
  StoreState* state_;
};

}  // namespace herald::sqlite::internal

#endif  // HERALD_SQLITE_SRC_STORE_STATE_H_
