// herald/testing/recording_handler.h: handlers that remember what arrived.
//
//   herald::testing::RecordingHandler<CustomerEvent> seen;
//   ASSERT_THAT(bus.Subscribe<CustomerEvent>("event-reader", seen), IsOk());
//   for (const char* id : {"cust-1", "cust-2", "cust-3"}) {
//     ASSERT_THAT(bus.Publish(CustomerEvent{.customer_id = id}), IsOk());
//   }
//   ASSERT_TRUE(seen.WaitForCount(3, absl::Seconds(10)));
//   EXPECT_EQ(seen.events()[0].customer_id, "cust-1");
//   seen.FailNext(2, absl::UnavailableError("db down"));   // then succeed
//
// A RecordingHandler is a cheap handle: copies share one record (a
// shared_ptr), so passing it by value to Bus::Subscribe (which copies
// callables into a std::function) keeps the test's copy live. It is a
// callable taking (const T&, const herald::Message&); handler() gives the
// same as a std::function, and AsEventHandler() as an EventHandler<T>.
//
// Every call is recorded, failed ones included, so a redelivered message
// appears once per delivery; statuses() says what each call returned.
// Failure rules, checked in this order on each call: FailNext's countdown,
// then FailWith's function; otherwise the call returns OK.
//
// RecordingRawHandler is the same for a raw herald::Handler
// (const Message& -> absl::Status), e.g. Bus::Subscribe(options, handler).
//
// Thread-safety: every method may be called concurrently; handlers may be
// called concurrently from transport threads.
#ifndef HERALD_TESTING_RECORDING_HANDLER_H_
#define HERALD_TESTING_RECORDING_HANDLER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "herald/core/message.h"
#include "herald/core/mutex.h"

namespace herald::testing {
namespace internal {

// The shared record of a recording handler. `Item` is what the handler
// receives besides the Message (an event), or void for raw handlers.
template <typename Item>
class Recording {
 public:
  // Decides a call's result from what arrived (`item` is null for raw handlers).
  using Predicate = std::function<absl::Status(const Item* item, const Message& message)>;

  // Records one call and decides its result.
  absl::Status Record(const Item* item, const Message& message) {
    Predicate fail_with;
    absl::Status result;
    {
      MutexLock lock(mu_);
      if (item != nullptr) items_.push_back(*item);
      messages_.push_back(message);
      if (fail_next_ > 0) {
        --fail_next_;
        result = fail_next_status_;
      } else {
        fail_with = fail_with_;
      }
    }
    // The user's function runs without the lock, so it may inspect us.
    if (result.ok() && fail_with) result = fail_with(item, message);
    MutexLock lock(mu_);
    statuses_.push_back(result);
    cv_.NotifyAll();
    return result;
  }

  bool WaitForCount(int64_t n, absl::Duration timeout) {
    MutexLock lock(mu_);
    return cv_.WaitFor(
        mu_, timeout, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return static_cast<int64_t>(statuses_.size()) >= n; });
  }
  std::vector<Item> items() const {
    MutexLock lock(mu_);
    return items_;
  }
  std::vector<Message> messages() const {
    MutexLock lock(mu_);
    return messages_;
  }
  std::vector<absl::Status> statuses() const {
    MutexLock lock(mu_);
    return statuses_;
  }
  int64_t count() const {
    MutexLock lock(mu_);
    return static_cast<int64_t>(statuses_.size());
  }
  void FailNext(int n, absl::Status status) {
    MutexLock lock(mu_);
    fail_next_ = n;
    fail_next_status_ = std::move(status);
  }
  void FailWith(Predicate predicate) {
    MutexLock lock(mu_);
    fail_with_ = std::move(predicate);
  }
  void Clear() {
    MutexLock lock(mu_);
    items_.clear();
    messages_.clear();
    statuses_.clear();
  }

 private:
  mutable Mutex mu_;
  CondVar cv_;
  std::vector<Item> items_ ABSL_GUARDED_BY(mu_);
  std::vector<Message> messages_ ABSL_GUARDED_BY(mu_);
  // One per completed call: what it returned. Its size is count().
  std::vector<absl::Status> statuses_ ABSL_GUARDED_BY(mu_);
  int fail_next_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status fail_next_status_ ABSL_GUARDED_BY(mu_);
  Predicate fail_with_ ABSL_GUARDED_BY(mu_);
};

// What a raw handler records besides the Message: nothing.
struct NoItem {};

}  // namespace internal

// Default wait of WaitForCount: generous, since it only matters on failure.
inline constexpr absl::Duration kDefaultWait = absl::Seconds(10);

template <typename T>
class RecordingHandler {
 public:
  RecordingHandler() : recording_(std::make_shared<internal::Recording<T>>()) {}

  // The handler call: records `event` and `message`, returns OK unless told
  // to fail.
  absl::Status operator()(const T& event, const Message& message) const {
    return recording_->Record(&event, message);
  }
  // This handle as a std::function (shares the record).
  std::function<absl::Status(const T&, const Message&)> handler() const {
    RecordingHandler copy = *this;
    return [copy](const T& event, const Message& message) { return copy(event, message); };
  }
  // This handle as an EventHandler<T> (shares the record).
  std::shared_ptr<EventHandler<T>> AsEventHandler() const { return std::make_shared<Adapter>(*this); }

  // Blocks until at least `n` calls completed or `timeout` passed; true when
  // they did.
  bool WaitForCount(int64_t n, absl::Duration timeout = kDefaultWait) const {
    return recording_->WaitForCount(n, timeout);
  }
  // The events received, in order (one per call).
  std::vector<T> events() const { return recording_->items(); }
  // The messages received, in order (one per call).
  std::vector<Message> messages() const { return recording_->messages(); }
  // What each call returned, in order.
  std::vector<absl::Status> statuses() const { return recording_->statuses(); }
  // Calls completed.
  int64_t count() const { return recording_->count(); }

  // The next `n` calls return `status` (replaces an earlier FailNext).
  void FailNext(int n, absl::Status status) const { recording_->FailNext(n, std::move(status)); }
  // Afterwards each call returns `decide(event)`; an empty function clears it.
  void FailWith(std::function<absl::Status(const T&)> decide) const {
    if (!decide) {
      recording_->FailWith(nullptr);
      return;
    }
    recording_->FailWith([decide = std::move(decide)](const T* event, const Message&) { return decide(*event); });
  }
  // Forgets what was recorded (failure rules stay).
  void Clear() const { recording_->Clear(); }

 private:
  class Adapter : public EventHandler<T> {
   public:
    explicit Adapter(RecordingHandler handler) : handler_(std::move(handler)) {}
    absl::Status Handle(const T& event, const Message& message) override { return handler_(event, message); }

   private:
    RecordingHandler handler_;
  };

  std::shared_ptr<internal::Recording<T>> recording_;
};

class RecordingRawHandler {
 public:
  RecordingRawHandler() : recording_(std::make_shared<internal::Recording<internal::NoItem>>()) {}

  absl::Status operator()(const Message& message) const { return recording_->Record(nullptr, message); }
  // This handle as a herald::Handler (shares the record).
  Handler handler() const {
    RecordingRawHandler copy = *this;
    return [copy](const Message& message) { return copy(message); };
  }

  bool WaitForCount(int64_t n, absl::Duration timeout = kDefaultWait) const {
    return recording_->WaitForCount(n, timeout);
  }
  std::vector<Message> messages() const { return recording_->messages(); }
  std::vector<absl::Status> statuses() const { return recording_->statuses(); }
  int64_t count() const { return recording_->count(); }
  // The next `n` calls return `status`.
  void FailNext(int n, absl::Status status) const { recording_->FailNext(n, std::move(status)); }
  // Afterwards each call returns `decide(message)`; an empty function clears it.
  void FailWith(std::function<absl::Status(const Message&)> decide) const {
    if (!decide) {
      recording_->FailWith(nullptr);
      return;
    }
    recording_->FailWith(
        [decide = std::move(decide)](const internal::NoItem*, const Message& message) { return decide(message); });
  }
  void Clear() const { recording_->Clear(); }

 private:
  std::shared_ptr<internal::Recording<internal::NoItem>> recording_;
};

}  // namespace herald::testing

#endif  // HERALD_TESTING_RECORDING_HANDLER_H_
