// herald/testing/fake_transport.h: an in-memory Transport for unit tests of
// handlers and publishers, with no threads, no broker and failure injection.
// The Bus over it is the real one, so retries, dead letters and middleware
// behave exactly as in production.
//
//   herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
//   herald::testing::FakeTransport& fake = bus.transport<herald::testing::FakeTransport>();
//   herald::testing::RecordingHandler<CustomerEvent> seen;
//   ASSERT_THAT(bus.Subscribe<CustomerEvent>("event-reader", seen), IsOk());
//   ASSERT_THAT(bus.Publish(CustomerEvent{.customer_id = "cust-1"}), IsOk());   // handled already
//   EXPECT_EQ(seen.count(), 1);
//   EXPECT_THAT(fake.published("customer-events"), ElementsAre(HasType("customer.created")));
//
// Several FakeTransports can stand for several clients of one Kafka cluster
// (a publishing service and a consuming one, a consumer that restarts) by
// sharing a FakeCluster:
//
//   auto cluster = std::make_shared<herald::testing::FakeCluster>();
//   herald::Bus producer(std::make_unique<herald::testing::FakeTransport>(
//       herald::testing::FakeTransportOptions{.cluster = cluster}));
//   auto consumer = std::make_unique<herald::Bus>(std::make_unique<herald::testing::FakeTransport>(
//       herald::testing::FakeTransportOptions{.cluster = cluster}));
//   ASSERT_THAT(consumer->Subscribe<CustomerEvent>("event-reader", seen), IsOk());
//   ASSERT_THAT(consumer->Stop(absl::Seconds(1)), IsOk());   // leaves the group
//   ASSERT_THAT(producer.Publish(CustomerEvent{.customer_id = "cust-1"}), IsOk());   // retained
//   herald::Bus restarted(std::make_unique<herald::testing::FakeTransport>(
//       herald::testing::FakeTransportOptions{.cluster = cluster}));
//   ASSERT_THAT(restarted.Subscribe<CustomerEvent>("event-reader", seen), IsOk());
//   EXPECT_EQ(seen.count(), 1);   // delivered inside Subscribe
//
// Semantics:
// - The cluster (FakeTransportOptions::cluster; by default private to the bus)
//   holds the topics, each one partition (0) with every record ever accepted,
//   and the consumer groups with their members and committed offsets. Buses
//   of one cluster see each other's records, share groups, and a group's
//   committed offset outlives the bus that advanced it.
// - Every accepted publish is recorded in the publishing bus (published()),
//   appended to its topic in the cluster, gets a DeliveryReport with
//   partition 0 and the next offset of the topic, and `done` runs before
//   PublishAsync returns. Rejected publishes (see failure injection) are not
//   recorded and not delivered; `done` gets the error.
// - A consumer group joins a topic when its first live subscription to it is
//   added; from then on the group's committed offset on that topic is kept.
//   It starts at the end of the topic (AutoOffsetReset::kLatest, Kafka's
//   default: earlier records are not delivered) or at its first record
//   (kEarliest), as FakeTransportOptions::auto_offset_reset of the joining bus says.
// - Delivery is synchronous, on the publishing thread, inside PublishAsync
//   (hence inside the blocking Publish too): each group that has a live
//   subscription to the topic gets the message once, groups in the order they
//   joined the topic. Several subscriptions of one group share the work
//   round-robin, per topic, across every bus of the cluster.
// - Retention: a record published while a joined group has no live
//   subscription to the topic (every member's bus stopped or destroyed) is
//   kept for that group. When a subscription of the group becomes live again
//   (Subscribe on a transport that is not stopped, or Start after Stop), the
//   calling thread delivers the group's retained records in offset order
//   before it returns, so Subscribe / Start returns with the group caught up.
//   Records published on other threads while a group catches up are
//   delivered, in order, by the thread catching up.
// - A subscription is live from Subscribe until Stop, and again from
//   Start; FakeTransport delivers whether or not Start() was called. Start and
//   Flush return OK at once. Stop makes the bus's subscriptions leave their
//   groups, makes publishing fail with kFailedPrecondition until Start is
//   called again, and waits up to `drain_deadline` for the deliveries that
//   other threads are making to its handlers (kDeadlineExceeded if some are
//   still running; deliveries queued on the calling thread itself are not
//   waited for). The destructor leaves the groups and waits for those
//   deliveries without a deadline.
// - A kRetry verdict redelivers the same message at once with attempt + 1,
//   until the handler acks. The requested delays are recorded in
//   retry_delays() of the bus whose handler asked, and when its
//   FakeTransportOptions::clock_to_advance is set the clock is advanced by each
//   delay (so time-based logic sees the backoff). After its
//   FakeTransportOptions::max_deliveries deliveries of one message it gives up,
//   records the message in abandoned() and moves on (a test with dead
//   letters disabled and an always-failing handler then still ends). The
//   group's offset is past the message either way.
// - Dead letters published by the dispatcher land on `<topic>.dlq` through
//   the bus the handler subscribed on, so they appear in its published() and
//   reach DLQ subscribers of the cluster, all within the original Publish
//   call.
// - Reentrancy: a handler may publish, subscribe, start or stop. A publish
//   made on a thread that is already delivering for the cluster is recorded
//   and acknowledged at once, and its deliveries are queued and run by that
//   thread right after the current delivery (including its retries)
//   finishes: queue-and-drain, so handlers never nest and deliveries keep
//   publish order. A catch-up started inside a handler is queued the same
//   way.
//
// Thread-safety: FakeTransport and FakeCluster may be used from any thread. No lock
// is held while a handler runs; concurrent publishers each deliver on their
// own thread, so handlers may run concurrently when tests publish from several
// threads (one group's records then reach it in offset order per publishing
// thread, not across threads).
#ifndef HERALD_TESTING_FAKE_TRANSPORT_H_
#define HERALD_TESTING_FAKE_TRANSPORT_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "herald/core/transport.h"
#include "herald/core/envelope.h"
#include "herald/core/event.h"
#include "herald/core/message.h"
#include "herald/core/mutex.h"
#include "herald/testing/fake_clock.h"

namespace herald::testing {

class FakeTransport;
namespace internal {
// One delivery claimed for a group, or one step of a group's catch-up.
// Defined in fake_transport.cc.
struct FakeTransportWork;
}  // namespace internal

// Where a consumer group with no committed offset on a topic starts reading
// it, like Kafka's `auto.offset.reset`.
enum class AutoOffsetReset {
  // After the records the topic already holds (Kafka's default).
  kLatest,
  // At the topic's first record: the group receives everything published.
  kEarliest,
};

// What the FakeTransports of one test share when they stand for clients of one
// Kafka cluster: topics with their records, consumer groups with their live
// subscriptions and committed offsets. Make one with std::make_shared and pass
// it in FakeTransportOptions::cluster to every bus; it lives as long as its last bus
// (or holder). Records are kept for the cluster's lifetime (no retention
// limit).
//
// Thread-safe.
class FakeCluster {
 public:
  FakeCluster();
  ~FakeCluster();
  FakeCluster(const FakeCluster&) = delete;
  FakeCluster& operator=(const FakeCluster&) = delete;

  // Every record of `topic`, from every bus, in offset order.
  std::vector<Envelope> records(std::string_view topic) const;
  // The offset of the next record `group` will receive from `topic` (its
  // committed offset), or -1 when the group has not joined the topic.
  int64_t committed_offset(std::string_view group, std::string_view topic) const;
  // Records of `topic` retained for `group` and not delivered to it yet
  // (0 when the group has not joined the topic).
  int64_t lag(std::string_view group, std::string_view topic) const;

 private:
  friend class FakeTransport;

  struct Member {
    FakeTransport* bus = nullptr;
    TransportSubscription subscription;
    bool live = false;
  };
  struct GroupState {
    std::string group;
    // Committed offset: every record before it was handed to the group.
    int64_t next = 0;
    uint64_t round_robin = 0;
    // A thread is delivering this group's retained records.
    bool catching_up = false;
  };
  struct TopicState {
    std::vector<Envelope> records;
    // In the order the groups joined.
    std::vector<GroupState> groups;
  };

  // The next live member of `group` subscribed to `topic`, round-robin; null
  // when there is none.
  Member* PickMember(GroupState& group, const std::string& topic) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  GroupState* FindGroup(std::string_view group, std::string_view topic) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const GroupState* FindGroup(std::string_view group, std::string_view topic) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  // Signalled whenever a delivery ends.
  CondVar delivery_ended_;
  std::map<std::string, TopicState, std::less<>> topics_ ABSL_GUARDED_BY(mu_);
  std::vector<Member> members_ ABSL_GUARDED_BY(mu_);
  // Per bus: deliveries to its handlers claimed and not finished.
  std::map<const FakeTransport*, int64_t> in_flight_ ABSL_GUARDED_BY(mu_);
};

struct FakeTransportOptions {
  // When set, each retry delay advances this clock (it should usually be
  // the Bus's clock too, BusOptions::clock). Must outlive the transport.
  // Default: null.
  FakeClock* clock_to_advance = nullptr;
  // Deliveries of one message to one group before FakeTransport gives up and
  // records it in abandoned(). Default: 100.
  int max_deliveries = 100;
  // The cluster this bus is a client of; share one between buses that must
  // see each other's topics, groups and offsets. Default: null, a cluster
  // private to this bus.
  std::shared_ptr<FakeCluster> cluster;
  // Where a group that this bus's subscription makes join a topic starts.
  // Default: kLatest (only records published from then on are delivered).
  AutoOffsetReset auto_offset_reset = AutoOffsetReset::kLatest;
};

class FakeTransport final : public herald::Transport {
 public:
  explicit FakeTransport(FakeTransportOptions options = {});
  // Leaves the groups; waits for deliveries to this bus's handlers that other
  // threads are making.
  ~FakeTransport() override;

  // ---- Transport ----
  // Records and delivers as described above; `done` runs before return.
  void Publish(Envelope envelope, PublishCallback done) override;
  // Decodes the record (wire.h) and publishes the envelope to `topic`;
  // kInvalidArgument when it does not decode.
  void PublishRecord(std::string topic, Record record, PublishCallback done) override;
  // Adds a subscription, live unless the transport is stopped; delivers the
  // group's retained records before returning (see "Retention").
  // kInvalidArgument (ValidateSubscription).
  absl::Status Subscribe(TransportSubscription subscription) override;
  // Makes the subscriptions live again after Stop and delivers their groups'
  // retained records before returning. OK.
  absl::Status Start() override;
  // Leaves the groups and refuses publishes; waits for other threads'
  // deliveries to this bus's handlers up to `drain_deadline`
  // (kDeadlineExceeded when some are still running).
  absl::Status Stop(absl::Duration drain_deadline) override;
  // OK at once: publishes complete inside PublishAsync.
  absl::Status Flush(absl::Duration timeout) override;

  // The cluster this bus is a client of (the private one by default): pass
  // it in FakeTransportOptions::cluster to make another client of it.
  const std::shared_ptr<FakeCluster>& cluster() const { return cluster_; }

  // ---- What happened ----
  // Every envelope this bus accepted, in publish order (dead letters of its
  // subscriptions included). Records of other buses of the cluster are in
  // cluster()->records().
  std::vector<Envelope> published() const;
  // The accepted envelopes on `topic`, in order.
  std::vector<Envelope> published(std::string_view topic) const;
  // The events of type T published on `topic` (default: T's topic), decoded,
  // in order; envelopes of other types are left out. An envelope of one of
  // T's types that does not decode is a test failure (ADD_FAILURE) and left
  // out.
  template <Event T>
  std::vector<T> PublishedEvents(std::string_view topic = {}) const;
  // Each delay of a kRetry verdict of this bus's handlers, in order.
  std::vector<absl::Duration> retry_delays() const;
  // Messages given up after max_deliveries (one entry per group).
  std::vector<Message> abandoned() const;
  // Deliveries made to this bus's handlers (redeliveries included).
  int64_t delivery_count() const;
  // Forgets published(), retry_delays(), abandoned() and delivery_count().
  // Subscriptions, the cluster's records and offsets, and failure injection
  // stay.
  void Clear();

  // ---- Failure injection (checked in this order) ----
  // The next `n` publishes fail with `status` (not recorded, not delivered).
  void FailNextPublishes(int n, absl::Status status);
  // Every publish to `topic` fails with `status`; an OK status clears it.
  void FailPublishesTo(std::string_view topic, absl::Status status);
  // Called with each envelope before it is accepted; a non-OK result
  // rejects the publish with that status (herald::RecordTooLargeError stands
  // for a topic's size limit: the dispatcher then cuts a dead letter down to
  // fit). An empty function clears it.
  // Runs without FakeTransport's lock held; it may inspect the bus.
  void SetPublishHook(std::function<absl::Status(const Envelope&)> hook);

 private:
  using Pending = internal::FakeTransportWork;

  // Claims `record` (at `offset` of `topic`) for `group` with `member` as the
  // target, counting it in flight. Cluster lock held.
  Pending Claim(FakeCluster::Member& member, const std::string& group, const Envelope& record, int64_t offset)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(cluster_->mu_);
  // Makes `member` live: joins its groups to its topics and appends a
  // catch-up step to `steps` for each group with retained records that no
  // thread is catching up.
  void Join(FakeCluster::Member& member, std::vector<Pending>& steps) ABSL_EXCLUSIVE_LOCKS_REQUIRED(cluster_->mu_);
  // Runs `work` on this thread (queue-and-drain), or queues it behind the
  // current delivery when this thread is already delivering for the cluster.
  void Run(std::vector<Pending> work);
  // Runs one item; a catch-up step appends its next step to `queue`.
  void RunOne(Pending item, std::deque<Pending>& queue);
  void Deliver(Pending& delivery);
  void DeliverToGroup(const RecordHandler& handler, Message message);
  // Waits until no other thread is delivering to this bus's handlers, up to
  // `timeout` (forever when infinite). False on timeout.
  bool WaitForOtherDeliveries(absl::Duration timeout);

  FakeTransportOptions options_;
  std::shared_ptr<FakeCluster> cluster_;
  mutable Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
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
std::vector<T> FakeTransport::PublishedEvents(std::string_view topic) const {
  std::string wanted = topic.empty() ? std::string(EventTraits<T>::Topic()) : std::string(topic);
  std::vector<std::string_view> names = EventTraits<T>::TypeNames();
  std::vector<T> out;
  for (const Envelope& e : published(wanted)) {
    bool ours = false;
    for (std::string_view name : names) ours = ours || name == e.type;
    if (!ours) continue;
    absl::StatusOr<T> event = DecodeEvent<T>(e);
    if (!event.ok()) {
      ADD_FAILURE() << "FakeTransport::PublishedEvents: cannot decode " << e << ": " << event.status();
      continue;
    }
    out.push_back(*std::move(event));
  }
  return out;
}

}  // namespace herald::testing

#endif  // HERALD_TESTING_FAKE_TRANSPORT_H_
