// herald/inmemory/inmemory_bus.h: the in-process transport.
//
// InMemoryBus is a herald::Bus that keeps its topics in memory and mirrors
// Kafka's semantics, so that code tested against it behaves the same on Kafka:
//   - a topic is created on first use with `partitions` partitions; an event's
//     partition is murmur2(key) like the Java client and kafka-go's
//     Murmur2Balancer (round-robin when the key is empty); each partition is
//     a log with offsets;
//   - consumer groups: each group receives every event once; within a group
//     each partition is assigned to one of the group's subscriptions
//     (round-robin, reassigned when one joins or leaves); a new group starts
//     at the earliest retained record (auto.offset.reset=earliest);
//   - order is kept per partition (so per key), partitions run in parallel;
//   - a kRetry verdict redelivers the same message (attempt + 1) after its
//     delay, holding back the rest of the partition; kAck commits;
//   - bounded memory: records every group has consumed are trimmed; a topic
//     without groups keeps the newest `retention_per_partition` records;
//     publishers block (or fail) while a partition has
//     `max_pending_per_partition` records not yet consumed by its slowest
//     group.
//
//   herald::InMemoryBus bus;
//   bus.Subscribe<OrderPlaced>("billing", [](const OrderPlaced& e) { ...; return absl::OkStatus(); });
//   bus.Start();
//   bus.Publish(OrderPlaced{"o-1", 4200});
//   bus.Stop(absl::Seconds(5));
//
// Deterministic mode (tests): no threads at all; RunPending() delivers on the
// calling thread everything that is deliverable.
//
//   herald::InMemoryBusOptions options;
//   options.deterministic = true;
//   herald::InMemoryBus bus(options);
//   bus.Subscribe<OrderPlaced>("billing", handler);
//   bus.Start();
//   bus.Publish(OrderPlaced{"o-1", 4200});
//   EXPECT_EQ(bus.RunPending(), 1);
//
// Several buses may share one InMemoryBroker, as several Kafka clients share
// a cluster: the topics, consumer groups and committed offsets live in the
// broker; a bus owns its subscriptions and delivery threads. Stop() is final
// for a bus; to "reconnect", make a new bus on the same broker and subscribe
// in the same group: it continues from the group's committed offsets.
#ifndef HERALD_INMEMORY_INMEMORY_BUS_H_
#define HERALD_INMEMORY_INMEMORY_BUS_H_

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "herald/core/bus.h"
#include "herald/core/mutex.h"

namespace herald {

// What a publish does when its partition already holds
// `max_pending_per_partition` unconsumed records.
enum class OverflowPolicy {
  kBlock,  // wait up to `publish_block_timeout`, then fail kResourceExhausted
  kFail,   // fail with kResourceExhausted at once
};

// Settings of the topics' logs, shared by every bus of a broker.
struct InMemoryBrokerOptions {
  // Partitions of each topic, created on first use. Must be >= 1. Default: 4.
  int partitions = 4;
  // Records a partition keeps while its topic has no consumer group; the
  // oldest are dropped beyond it (like Kafka retention). Must be >= 1.
  // Default: 100000.
  int64_t retention_per_partition = 100000;
  // Records of a partition not yet consumed by its slowest group before
  // publishers are held back (see `overflow`). Must be >= 1. Default: 10000.
  int64_t max_pending_per_partition = 10000;
  // How long a publish waits for room under OverflowPolicy::kBlock.
  // Default: 5 s.
  absl::Duration publish_block_timeout = absl::Seconds(5);
  // Default: OverflowPolicy::kBlock.
  OverflowPolicy overflow = OverflowPolicy::kBlock;
};

class InMemoryBus;

// The shared state of in-process topics: logs, consumer groups and committed
// offsets. Live as long as the last bus (or other holder) using it.
// Thread-safe.
class InMemoryBroker {
 public:
  // kInvalidArgument for options out of range.
  static absl::StatusOr<std::shared_ptr<InMemoryBroker>> Create(InMemoryBrokerOptions options = {});
  // Aborts with a message on invalid options; use Create to get an error.
  explicit InMemoryBroker(InMemoryBrokerOptions options = {});
  ~InMemoryBroker();
  InMemoryBroker(const InMemoryBroker&) = delete;
  InMemoryBroker& operator=(const InMemoryBroker&) = delete;

  const InMemoryBrokerOptions& options() const { return options_; }

  // The partition an event with `key` goes to (murmur2, as Kafka's default
  // partitioner). -1 for an empty key (those go round-robin).
  int32_t PartitionFor(std::string_view key) const;

  // Records of `topic` published but not yet acknowledged by `group`, summed
  // over partitions. For a group that never subscribed to the topic: every
  // retained record (what it would read). 0 for an unknown topic.
  int64_t Lag(std::string_view group, std::string_view topic) const;
  // Records of `topic` held in memory, summed over partitions.
  int64_t RetainedRecords(std::string_view topic) const;
  // Offset the next record of `topic`/`partition` will get (its log end);
  // 0 for an unknown topic or partition.
  int64_t EndOffset(std::string_view topic, int32_t partition) const;

 private:
  friend class InMemoryBus;
  struct GroupCursor;
  struct Partition;
  struct Topic;
  struct Member {
    uint64_t id = 0;
    std::string group;
    std::vector<std::string> topics;
  };
  // Where one member reads one partition.
  struct Assignment {
    Partition* partition = nullptr;
    GroupCursor* cursor = nullptr;
    std::string topic;
    int32_t partition_index = 0;
  };

  Topic* GetOrCreateTopic(std::string_view name);
  const Topic* FindTopic(std::string_view name) const;
  // Adds `member` to its group; returns one assignment slot per (topic,
  // partition) it reads (whether or not currently assigned to it).
  std::vector<Assignment> Join(const Member& member);
  void Leave(const std::vector<uint64_t>& member_ids);
  void Rebalance(const std::string& group, const std::string& topic) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Wakes publishers blocked on full partitions (a bus is stopping).
  void WakePublishers();
  uint64_t NextMemberId();

  const InMemoryBrokerOptions options_;
  mutable Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Topic>> topics_ ABSL_GUARDED_BY(mu_);
  std::vector<Member> members_ ABSL_GUARDED_BY(mu_);  // in join order
  uint64_t next_member_id_ ABSL_GUARDED_BY(mu_) = 1;
};

struct InMemoryBusOptions {
  // Log settings of the bus's own broker; ignored when `broker` is set.
  InMemoryBrokerOptions log;
  // Share topics, groups and offsets with other buses. Default: null, the
  // bus makes its own broker from `log`.
  std::shared_ptr<InMemoryBroker> broker;
  // No threads: deliveries happen only inside RunPending(). Default: false.
  bool deterministic = false;
  // Source and clock stamped on typed events. In deterministic mode the
  // clock also times retry delays (see RunPending). Default: {}.
  BusDefaults defaults;
};

// A herald::Bus in process memory. Thread-safe: every method may be called
// from any thread. PublishAsync runs its callback on the calling thread
// before it returns, once the record is appended (that is durable for this
// bus), so never call it with a lock the callback takes.
class InMemoryBus final : public Bus {
 public:
  // kInvalidArgument for invalid log options.
  static absl::StatusOr<std::unique_ptr<InMemoryBus>> Create(InMemoryBusOptions options = {});
  // Aborts on invalid log options; use Create to get an error instead.
  explicit InMemoryBus(InMemoryBusOptions options = {});
  // Stops (waiting for running handlers however long they take) and joins
  // every thread.
  ~InMemoryBus() override;

  // Appends to the envelope's topic, blocking while the partition is full
  // (OverflowPolicy::kBlock). Errors, given to `done`: kFailedPrecondition
  // after Stop(), kInvalidArgument for an empty topic, kResourceExhausted
  // when the partition stays full.
  void PublishAsync(Envelope envelope, PublishCallback done) override;
  using Bus::PublishAsync;
  // Joins the subscription's group at Start() (at once when started).
  // kInvalidArgument for no topics, an empty topic or group, or no handler;
  // kFailedPrecondition after Stop().
  absl::Status AddSubscription(Subscription subscription) override;
  // Joins the groups and starts one delivery thread per (subscription,
  // topic, partition) (none in deterministic mode). Idempotent;
  // kFailedPrecondition after Stop().
  absl::Status Start() override;
  // Final: publishing fails from now on; leaves the groups (their partitions
  // go to the group's other subscriptions, on this broker's other buses),
  // lets running handlers finish until `drain_deadline`. kDeadlineExceeded
  // when a handler was still running: its message is released to the group
  // (redelivered, at least once) and its verdict ignored; the thread is
  // joined by the destructor. Idempotent.
  absl::Status Stop(absl::Duration drain_deadline) override;
  // Waits until every PublishAsync call has run its callback.
  // kDeadlineExceeded after `timeout`.
  absl::Status Flush(absl::Duration timeout) override;

  // Deterministic mode: delivers on the calling thread every message that is
  // deliverable to this bus's subscriptions, until none is left, and returns
  // how many handler calls it made. A retry is due when the bus clock
  // (BusDefaults::clock) reaches its delay; when only retries that are not
  // due remain, it calls clock->SleepFor until the next one (a fake clock
  // advances at once; the system clock really waits). A handler that retries
  // forever makes it run until `max_deliveries`. Returns 0 before Start(),
  // after Stop(), or in threaded mode.
  int64_t RunPending(int64_t max_deliveries = std::numeric_limits<int64_t>::max());

  // See InMemoryBroker.
  int64_t Lag(std::string_view group, std::string_view topic) const { return broker_->Lag(group, topic); }
  InMemoryBroker& broker() const { return *broker_; }
  bool deterministic() const { return deterministic_; }

 private:
  struct Worker;
  struct Member {
    uint64_t id = 0;
    Subscription subscription;
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
  absl::Time Now() const;

  const std::shared_ptr<InMemoryBroker> broker_;
  const bool deterministic_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> publishes_in_flight_{0};
  std::atomic<int> flush_waiters_{0};
  Mutex flush_mu_;
  CondVar flush_cv_;

  mutable Mutex mu_;
  CondVar workers_cv_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::unique_ptr<Member>> members_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Worker>> workers_ ABSL_GUARDED_BY(mu_);
  int running_workers_ ABSL_GUARDED_BY(mu_) = 0;
  Mutex run_pending_mu_;  // one RunPending at a time
};

}  // namespace herald

#endif  // HERALD_INMEMORY_INMEMORY_BUS_H_
