#include "store_state.h"

#include <algorithm>
#include <utility>

#include "herald/core/status.h"
#include "herald/core/strings.h"

namespace herald::sqlite::internal {

StoreState::~StoreState() {
  if (!file.empty()) UnregisterWakeSignal(file, wake.get());
}

absl::StatusOr<Connection*> StoreState::Acquire() {
  {
    MutexLock lock(pool_mu_);
    if (!idle_.empty()) {
      Connection* c = idle_.back().release();
      idle_.pop_back();
      return c;
    }
  }
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<Connection> c, Connection::Open(options, &sql));
  return c.release();
}

void StoreState::Return(Connection* connection) {
  std::unique_ptr<Connection> c(connection);
  if (sqlite3_get_autocommit(c->db()) == 0 && !c->Run(Sql::kRollback, "roll back").ok()) return;  // closed
  MutexLock lock(pool_mu_);
  if (static_cast<int>(idle_.size()) < std::max(1, options.idle_connections)) idle_.push_back(std::move(c));
}

absl::Status StoreState::EnterWriter() {
  MutexLock lock(gate_mu_);
  bool free = gate_cv_.WaitFor(gate_mu_, options.busy_timeout,
                               [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(gate_mu_) { return !writer_; });
  if (!free) {
    return absl::UnavailableError(herald::StrCat(
        "sqlite: another write transaction of this process held the database for more than busy_timeout (",
        absl::FormatDuration(options.busy_timeout),
        "). Hint: keep transactions short, do not begin a second transaction on a thread that holds one, or raise "
        "SqliteOptions.busy_timeout."));
  }
  writer_ = true;
  return absl::OkStatus();
}

void StoreState::LeaveWriter() {
  MutexLock lock(gate_mu_);
  writer_ = false;
  gate_cv_.NotifyOne();
}

}  // namespace herald::sqlite::internal
