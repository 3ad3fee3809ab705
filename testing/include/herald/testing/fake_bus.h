// herald/testing/fake_bus.h: an in-memory Bus for unit tests of handlers and
// publishers, with no threads, no broker and failure injection.
//
//   herald::testing::FakeBus bus;
//   herald::testing::RecordingHandler<CustomerEvent> seen;
//   ASSERT_THAT(bus.Subscribe<CustomerEvent>("event-reader", seen), IsOk());
//   ASSERT_THAT(bus.Publish(CustomerEvent{...}), IsOk());   // handled already
//   EXPECT_EQ(seen.count(), 1);
//   EXPECT_THAT(bus.published("customer-events"), ElementsAre(HasType("customer.created")));
//
// Semantics:
// - Every accepted publish is recorded (published()), gets a DeliveryReport
//   with partition 0 and the next offset of its topic, and `done` runs before
//   PublishAsync returns. Rejected publishes (see failure injection) are not
//   recorded and not delivered; `done` gets the error.
// - Delivery is synchronous, on the publishing thread, inside PublishAsync
//   (hence inside the blocking Publish too): each consumer group subscribed
//   to the topic gets the message once, groups in the order they first
//   subscribed. Several subscriptions of one group share the work
//   round-robin, per topic.
// - FakeBus delivers whether or not Start() was called. Start, Flush and
//   Stop return OK at once; after Stop, publishing fails with
//   kFailedPrecondition until Start is called again.
// - A kRetry verdict redelivers the same message at once with attempt + 1,
//   until the handler acks. The requested delays are recorded in
//   retry_delays(), and when FakeBusOptions::clock_to_advance is set the
//   clock is advanced by each delay (so time-based logic sees the backoff).
//   After FakeBusOptions::max_deliveries deliveries of one message it gives
//   up, records the message in abandoned() and moves on (a test with dead
//   letters disabled and an always-failing handler then still ends).
// - Dead letters published by the dispatcher land on `<topic>.dlq` in this
//   same bus, so they appear in published() and reach DLQ subscribers, all
//   within the original Publish call.
// - Reentrancy: a handler may publish. A publish made on a thread that is
//   already delivering is recorded and acknowledged at once, and its
//   delivery is queued and run by that thread right after the current
//   delivery (including its retries) finishes: queue-and-drain, so handlers
//   never nest and deliveries keep publish order.
//
// Thread-safety: every method may be called from any thread. No lock is held
// while a handler runs; concurrent publishers each deliver on their own
// thread, so handlers may run concurrently when tests publish from several
// threads.
#ifndef HERALD_TESTING_FAKE_BUS_H_
#define HERALD_TESTING_FAKE_BUS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/core/envelope.h"
#include "herald/core/event.h"
#include "herald/core/message.h"
#include "herald/core/mutex.h"
#include "herald/testing/fake_clock.h"

namespace herald::testing {

struct FakeBusOptions {
  // Source and clock stamped on typed publishes; the clock is also the
  // dispatcher's. Default: source "herald", the system clock.
  BusDefaults defaults;
  // When set, each retry delay advances this clock (it should usually be
  // the clock in `defaults` too). Must outlive the bus. Default: null.
  FakeClock* clock_to_advance = nullptr;
  // Deliveries of one message to one group before FakeBus gives up and
  // records it in abandoned(). Default: 100.
  int max_deliveries = 100;
};

class FakeBus : public herald::Bus {
 public:
  explicit FakeBus(FakeBusOptions options = {});
  ~FakeBus() override;

  using Bus::Publish;
  using Bus::PublishAsync;
  using Bus::Subscribe;

  // ---- Bus primitives ----
  // Records and delivers as described above; `done` runs before return.
  void PublishAsync(Envelope envelope, PublishCallback done) override;
  // kInvalidArgument for no topics, an empty topic, an empty group or no
  // handler.
  absl::Status AddSubscription(Subscription subscription) override;
  absl::Status Start() override;
  absl::Status Stop(absl::Duration drain_deadline) override;
  absl::Status Flush(absl::Duration timeout) override;

  // ---- What happened ----
  // Every accepted envelope, in publish order (dead letters included).
  std::vector<Envelope> published() const;
  // The accepted envelopes on `topic`, in order.
  std::vector<Envelope> published(std::string_view topic) const;
  // The events of type T published on `topic` (default: T's topic), decoded,
  // in order; envelopes of other types are left out. An envelope of one of
  // T's types that does not decode is a test failure (ADD_FAILURE) and left
  // out.
  template <Event T>
  std::vector<T> PublishedEvents(std::string_view topic = {}) const;
  // Each delay of a kRetry verdict, in order.
  std::vector<absl::Duration> retry_delays() const;
  // Messages given up after max_deliveries (one entry per group).
  std::vector<Message> abandoned() const;
  // Deliveries made to handlers (redeliveries included).
  int64_t delivery_count() const;
  // Forgets published(), retry_delays(), abandoned() and delivery_count().
  // Subscriptions, offsets and failure injection stay.
  void Clear();

  // ---- Failure injection (checked in this order) ----
  // The next `n` publishes fail with `status` (not recorded, not delivered).
  void FailNextPublishes(int n, absl::Status status);
  // Every publish to `topic` fails with `status`; an OK status clears it.
  void FailPublishesTo(std::string_view topic, absl::Status status);
  // Called with each envelope before it is accepted; a non-OK result
  // rejects the publish with that status. An empty function clears it.
  // Runs without FakeBus's lock held; it may inspect the bus.
  void SetPublishHook(std::function<absl::Status(const Envelope&)> hook);

 private:
  void Deliver(const Envelope& envelope, int64_t offset);
  void DeliverToGroup(const MessageHandler& handler, Message message);

  FakeBusOptions options_;
  mutable Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Subscription> subscriptions_ ABSL_GUARDED_BY(mu_);
  // (topic, group) -> round-robin counter.
  std::map<std::pair<std::string, std::string>, uint64_t> round_robin_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t, std::less<>> next_offset_ ABSL_GUARDED_BY(mu_);
  std::vector<Envelope> published_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Duration> retry_delays_ ABSL_GUARDED_BY(mu_);
  std::vector<Message> abandoned_ ABSL_GUARDED_BY(mu_);
  int64_t deliveries_ ABSL_GUARDED_BY(mu_) = 0;
  int fail_next_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status fail_next_status_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Status, std::less<>> fail_topics_ ABSL_GUARDED_BY(mu_);
  std::function<absl::Status(const Envelope&)> hook_ ABSL_GUARDED_BY(mu_);
};

template <Event T>
std::vector<T> FakeBus::PublishedEvents(std::string_view topic) const {
  std::string wanted = topic.empty() ? std::string(EventTraits<T>::Topic()) : std::string(topic);
  std::vector<std::string_view> names = EventTraits<T>::TypeNames();
  std::vector<T> out;
  for (const Envelope& e : published(wanted)) {
    bool ours = false;
    for (std::string_view name : names) ours = ours || name == e.type;
    if (!ours) continue;
    absl::StatusOr<T> event = DecodeEvent<T>(e);
    if (!event.ok()) {
      ADD_FAILURE() << "FakeBus::PublishedEvents: cannot decode " << e << ": " << event.status();
      continue;
    }
    out.push_back(*std::move(event));
  }
  return out;
}

}  // namespace herald::testing

#endif  // HERALD_TESTING_FAKE_BUS_H_
