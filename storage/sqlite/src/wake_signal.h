// Private to herald::sqlite: the in-process wake-up of WaitForWork, and the
// process-wide registry that lets a commit on any handle wake every store on
// the same file.
#ifndef HERALD_SQLITE_SRC_WAKE_SIGNAL_H_
#define HERALD_SQLITE_SRC_WAKE_SIGNAL_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "herald/core/mutex.h"

namespace herald::sqlite::internal {

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

}  // namespace herald::sqlite::internal

#endif  // HERALD_SQLITE_SRC_WAKE_SIGNAL_H_
