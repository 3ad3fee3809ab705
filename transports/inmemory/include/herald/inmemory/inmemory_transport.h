// herald/inmemory/inmemory_transport.h: the in-process transport.
//
// InMemoryTransport is a herald::Transport that keeps its topics in an
// InMemoryBroker (inmemory_broker.h) and mirrors Kafka's semantics, so that
// code tested on it behaves the same on Kafka: partitions by key, consumer
// groups, order per partition (so per key) with partitions in parallel,
// redelivery of the same record (attempt + 1) after a kRetry verdict holding
// back only its partition, bounded memory with backpressure.
//
//   herald::Bus bus(std::make_unique<herald::inmemory::InMemoryTransport>());
//   HERALD_RETURN_IF_ERROR(bus.Subscribe<OrderPlaced>("billing", handler));
//   HERALD_RETURN_IF_ERROR(bus.Start());
//   HERALD_RETURN_IF_ERROR(bus.Publish(OrderPlaced{"o-1", 4200}).status());
//   HERALD_RETURN_IF_ERROR(bus.transport<herald::inmemory::InMemoryTransport>().Drain(absl::Seconds(5)));
//   HERALD_RETURN_IF_ERROR(bus.Stop(absl::Seconds(5)));
//
// Deterministic mode (tests): no threads at all; RunPending() delivers on the
// calling thread everything that is deliverable.
//
//   herald::Bus bus(std::make_unique<herald::inmemory::InMemoryTransport>(
//       herald::inmemory::InMemoryTransportOptions{.deterministic = true}));
//   herald::testing::RecordingHandler<OrderPlaced> seen;
//   ASSERT_THAT(bus.Subscribe<OrderPlaced>("billing", seen), IsOk());
//   ASSERT_THAT(bus.Start(), IsOk());
//   ASSERT_THAT(bus.Publish(OrderPlaced{"o-1", 4200}), IsOk());
//   EXPECT_EQ(bus.transport<herald::inmemory::InMemoryTransport>().RunPending(), 1);
//
// Several transports may share one broker, as several Kafka clients share a
// cluster: topics, consumer groups and committed offsets live in the broker;
// a transport owns its subscriptions and delivery threads. Stop() is final
// for a transport; to "reconnect", make a new one on the same broker and
// subscribe in the same group: it continues from the group's committed
// offsets.
//
// Delivery threads take everything queued on their partition in one batch
// (up to 1024 records) and hand the records to the handler in place, without
// copying them. While records stream in faster than they are taken one by
// one, a delivery thread collects them for up to 200 µs instead of being
// woken for each (fewer context switches when threads outnumber cores); a
// record that arrives alone wakes its thread at once.
//
// Thread-safe: every method may be called from any thread. Publish runs its
// callback on the calling thread before it returns, once the record is
// appended (that is durable for this transport), so never call it with a lock
// the callback takes.
#ifndef HERALD_INMEMORY_INMEMORY_TRANSPORT_H_
#define HERALD_INMEMORY_INMEMORY_TRANSPORT_H_

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "herald/core/clock.h"
#include "herald/core/mutex.h"
#include "herald/core/transport.h"
#include "herald/inmemory/inmemory_broker.h"

namespace herald::inmemory {

struct InMemoryTransportOptions {
  // Share topics, groups and offsets with other transports. Default: null,
  // a broker of this transport's own with default InMemoryBrokerOptions.
  std::shared_ptr<InMemoryBroker> broker;
  // No threads: deliveries happen only inside RunPending(). Default: false.
  bool deterministic = false;
  // Times retry delays in deterministic mode (see RunPending); threaded mode
  // uses real time. Must outlive the transport. Default: nullptr, the system clock.
  const Clock* clock = nullptr;
};

class InMemoryTransport final : public Transport {
 public:
  explicit InMemoryTransport(InMemoryTransportOptions options = {});
  // Stops (waiting for running handlers however long they take) and joins
  // every thread.
  ~InMemoryTransport() override;

  // Appends to the envelope's topic, blocking while the partition is full
  // (OverflowPolicy::kBlock). Errors, given to `done`: kFailedPrecondition
  // after Stop(), kInvalidArgument for an empty topic, kResourceExhausted
  // when the partition stays full.
  void Publish(Envelope envelope, PublishCallback done) override;
  // Decodes the record (wire.h) and publishes the envelope to `topic`;
  // kInvalidArgument when it does not decode.
  void PublishRecord(std::string topic, Record record, PublishCallback done) override;
  // Joins the subscription's group at Start() (at once when started).
  // kInvalidArgument (ValidateSubscription); kFailedPrecondition after Stop().
  absl::Status Subscribe(TransportSubscription subscription) override;
  // Joins the groups and starts one delivery thread per (subscription,
  // topic, partition) (none in deterministic mode). Idempotent;
  // kFailedPrecondition after Stop().
  absl::Status Start() override;
  // Final: publishing fails from now on; leaves the groups (their partitions
  // go to the group's other subscriptions, on this broker's other
  // transports), lets running handlers finish until `drain_deadline`.
  // kDeadlineExceeded when a handler was still running: its record is
  // released to the group (redelivered, at least once) and its verdict
  // ignored; the thread is joined by the destructor. Idempotent.
  absl::Status Stop(absl::Duration drain_deadline) override;
  // Waits until every Publish call has run its callback.
  // kDeadlineExceeded after `timeout`.
  absl::Status Flush(absl::Duration timeout) override;

  // Waits until this transport's subscriptions have handled everything
  // published to their topics so far: every group they belong to has
  // acknowledged every record (so retries are finished too) and no handler
  // is running. In deterministic mode it runs RunPending() instead of
  // waiting. kDeadlineExceeded after `timeout`; kFailedPrecondition before
  // Start().
  absl::Status Drain(absl::Duration timeout);

  // Deterministic mode: delivers on the calling thread every record that is
  // deliverable to this transport's subscriptions, until none is left, and
  // returns how many handler calls it made. A retry is due when
  // options.clock reaches its delay; when only retries that are not due
  // remain, it calls clock->SleepFor until the next one (a fake clock
  // advances at once; the system clock really waits). A handler that retries
  // forever makes it run until `max_deliveries`. Returns 0 before Start(),
  // after Stop(), or in threaded mode.
  int64_t RunPending(int64_t max_deliveries = std::numeric_limits<int64_t>::max());

  // See InMemoryBroker::Lag.
  int64_t Lag(std::string_view group, std::string_view topic) const { return broker_->Lag(group, topic); }
  InMemoryBroker& broker() const { return *broker_; }
  bool deterministic() const { return deterministic_; }

 private:
  struct Worker;
  struct Member {
    uint64_t id = 0;
    TransportSubscription subscription;
    bool joined = false;
  };

  void JoinAndStart(Member& member) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunWorker(Worker* worker);
  // Takes up to `max_batch` deliverable records of the worker's partition
  // and hands them to the handler. Returns handler calls made.
  int64_t DeliverBatch(Worker& worker, int64_t max_batch);
  // Threaded mode: waits until the worker has something to deliver; false
  // when stopping.
  bool WaitForWork(Worker& worker);
  // True when every worker's group has consumed its partition and no
  // delivery is running.
  bool Idle();
  absl::Time Now() const;

  const std::shared_ptr<InMemoryBroker> broker_;
  const bool deterministic_;
  const Clock* const clock_;
  std::atomic<bool> stopping_{false};

  // Flush: Publish increments `publishes_in_flight_` on entry and decrements
  // it after the callback; a Flush registers in `flush_waiters_` before it
  // waits. Both are seq_cst, so a publisher that brings the count to zero
  // either sees the registered waiter (and notifies under flush_mu_) or the
  // waiter's predicate, checked under flush_mu_ after registering, sees the
  // zero: no wake-up is lost, and publishers never take flush_mu_ while
  // nobody flushes.
  std::atomic<int64_t> publishes_in_flight_{0};
  std::atomic<int> flush_waiters_{0};
  Mutex flush_mu_;
  CondVar flush_cv_;

  // Drain: bumped after every delivered batch.
  Mutex progress_mu_;
  CondVar progress_cv_;
  uint64_t progress_ ABSL_GUARDED_BY(progress_mu_) = 0;

  mutable Mutex mu_;
  CondVar workers_cv_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::unique_ptr<Member>> members_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Worker>> workers_ ABSL_GUARDED_BY(mu_);
  int running_workers_ ABSL_GUARDED_BY(mu_) = 0;
  Mutex run_pending_mu_;  // one RunPending at a time
};

}  // namespace herald::inmemory

#endif  // HERALD_INMEMORY_INMEMORY_TRANSPORT_H_
