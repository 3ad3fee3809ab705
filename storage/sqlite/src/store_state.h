// Private to herald::sqlite: the shared state of one SqliteOutboxStore: its
// connection pool, the in-process writer gate and the relay's low-water mark.
#ifndef HERALD_SQLITE_SRC_STORE_STATE_H_
#define HERALD_SQLITE_SRC_STORE_STATE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "connection.h"
#include "herald/core/mutex.h"
#include "herald/sqlite/sqlite_outbox_store.h"
#include "sql.h"
#include "wake_signal.h"

namespace herald::sqlite::internal {

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
