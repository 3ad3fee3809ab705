// The broker's private data structures, shared by inmemory_broker.cc and
// inmemory_transport.cc (private to the component).
#ifndef HERALD_INMEMORY_SRC_BROKER_STATE_H_
#define HERALD_INMEMORY_SRC_BROKER_STATE_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "herald/core/envelope.h"
#include "herald/core/mutex.h"
#include "herald/inmemory/inmemory_broker.h"

namespace herald::inmemory {

// Condition variables take a finite wait (std::chrono overflows on
// absl::InfiniteDuration()).
inline absl::Duration ClampWait(absl::Duration d) { return std::clamp(d, absl::ZeroDuration(), absl::Hours(24 * 365)); }

// One consumer group's position in one partition. Every field is guarded by
// the partition's mutex.
struct InMemoryBroker::GroupCursor {
  std::string group;
  // Committed: the next offset to deliver.
  int64_t next_offset = 0;
  // Member the partition is assigned to; 0 when the group has none.
  uint64_t assigned = 0;
  // A delivery of next_offset.. is running (under `lease`).
  bool busy = false;
  uint64_t lease = 0;
  // Delivery attempt of next_offset.
  int attempt = 1;
  // next_offset is redelivered no earlier than this.
  absl::Time retry_due = absl::InfinitePast();
  // Delivery threads waiting on `cv`.
  int waiters = 0;
  CondVar cv;
};

struct InMemoryBroker::Partition {
  Mutex mu;
  std::deque<Envelope> log ABSL_GUARDED_BY(mu);
  // Offset of log.front().
  int64_t start_offset ABSL_GUARDED_BY(mu) = 0;
  std::vector<std::unique_ptr<GroupCursor>> cursors ABSL_GUARDED_BY(mu);
  // Publishers waiting for room.
  int space_waiters ABSL_GUARDED_BY(mu) = 0;
  CondVar space_cv;
  // First offsets of deliveries that Stop() gave back to their group while
  // their handler still ran. Handlers read the records in place (no copy),
  // so Trim keeps every record from the lowest pin on until the abandoned
  // handler returns and removes its pin.
  std::vector<int64_t> pins ABSL_GUARDED_BY(mu);

  int64_t end_offset() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return start_offset + static_cast<int64_t>(log.size());
  }
  GroupCursor* FindCursor(std::string_view group) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (auto& c : cursors) {
      if (c->group == group) return c.get();
    }
    return nullptr;
  }
  // Drops what every group has consumed, or beyond retention when there is
  // no group; never a pinned record.
  void Trim(int64_t retention) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (cursors.empty()) {
      while (static_cast<int64_t>(log.size()) > retention) {
        log.pop_front();
        ++start_offset;
      }
      return;
    }
    int64_t min_next = cursors.front()->next_offset;
    for (const auto& c : cursors) min_next = std::min(min_next, c->next_offset);
    for (int64_t pin : pins) min_next = std::min(min_next, pin);
    while (start_offset < min_next && !log.empty()) {
      log.pop_front();
      ++start_offset;
    }
  }
};

struct InMemoryBroker::Topic {
  std::string name;
  std::vector<std::unique_ptr<Partition>> partitions;
  std::atomic<uint64_t> round_robin{0};
};

}  // namespace herald::inmemory

#endif  // HERALD_INMEMORY_SRC_BROKER_STATE_H_
