// herald/core/inbox.h: idempotent consumption.
//
// A handler that writes to the same database records the event id in the same
// transaction as its own writes; a redelivered event then has no second
// effect:
//
//   absl::Status Handle(const CustomerEvent& e, const herald::Message& m) {
//     HERALD_ASSIGN_OR_RETURN(auto tx, inbox.Begin());
//     HERALD_ASSIGN_OR_RETURN(bool first, inbox.MarkProcessed(*tx, "event-reader", m.envelope.id));
//     if (!first) return absl::OkStatus();      // seen before: do nothing
//     HERALD_RETURN_IF_ERROR(SendWelcome(*tx, e));   // its own writes, same transaction
//     return tx->Commit();
//   }
//
// Thread-safety: as OutboxStore.
#ifndef HERALD_CORE_INBOX_H_
#define HERALD_CORE_INBOX_H_

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "herald/core/outbox.h"

namespace herald {

class Inbox {
 public:
  virtual ~Inbox() = default;
  virtual absl::StatusOr<std::unique_ptr<Transaction>> Begin() = 0;
  // Records that `consumer` processed `event_id` inside `tx`. True the first
  // time; false when it was already recorded (by a committed transaction).
  virtual absl::StatusOr<bool> MarkProcessed(Transaction& tx, std::string_view consumer,
                                             std::string_view event_id) = 0;
  // Deletes at most `limit` entries processed before `before` (bounded
  // retention); returns how many.
  virtual absl::StatusOr<int64_t> PurgeProcessed(absl::Time before, int limit) = 0;
};

}  // namespace herald

#endif  // HERALD_CORE_INBOX_H_
