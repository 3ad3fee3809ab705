#include "wake_signal.h"

#include <map>
#include <utility>
#include <vector>

namespace herald::sqlite::internal {

void WakeSignal::Notify() {
  MutexLock lock(mu_);
  ++generation_;
  cv_.NotifyAll();
}

void WakeSignal::Wait(absl::Duration timeout) {
  MutexLock lock(mu_);
  if (generation_ == seen_) {
    uint64_t entered = generation_;
    cv_.WaitFor(mu_, timeout, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return generation_ != entered; });
  }
  seen_ = generation_;
}

namespace {

struct WakeRegistry {
  Mutex mu;
  std::multimap<std::string, std::shared_ptr<WakeSignal>> signals ABSL_GUARDED_BY(mu);
};

WakeRegistry& Registry() {
  static WakeRegistry* registry = new WakeRegistry;  // never destroyed: hooks may run at exit
  return *registry;
}

}  // namespace

void RegisterWakeSignal(const std::string& file, std::shared_ptr<WakeSignal> signal) {
  WakeRegistry& r = Registry();
  MutexLock lock(r.mu);
  r.signals.emplace(file, std::move(signal));
}

void UnregisterWakeSignal(const std::string& file, const WakeSignal* signal) {
  WakeRegistry& r = Registry();
  MutexLock lock(r.mu);
  auto [begin, end] = r.signals.equal_range(file);
  for (auto it = begin; it != end; ++it) {
    if (it->second.get() == signal) {
      r.signals.erase(it);
      return;
    }
  }
}

void NotifyWakeSignals(const std::string& file) {
  std::vector<std::shared_ptr<WakeSignal>> to_wake;
  {
    WakeRegistry& r = Registry();
    MutexLock lock(r.mu);
    auto [begin, end] = r.signals.equal_range(file);
    for (auto it = begin; it != end; ++it) to_wake.push_back(it->second);
  }
  for (const auto& signal : to_wake) signal->Notify();
}

int WakeOnWalCommit(void*, sqlite3* db, const char* schema, int pages) {
  const char* file = sqlite3_db_filename(db, schema);
  if (file != nullptr && *file != '\0') NotifyWakeSignals(file);
  // What SQLite's default hook (sqlite3_wal_autocheckpoint(db, 1000)) does.
  if (pages >= 1000) sqlite3_wal_checkpoint(db, schema);
  return SQLITE_OK;
}

}  // namespace herald::sqlite::internal
