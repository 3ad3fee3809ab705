// herald/inmemory/inmemory_broker.h: the topics of the in-process transport.
//
// An InMemoryBroker holds what a Kafka cluster holds: topics made of
// partitioned logs with offsets, consumer groups, and their committed
// offsets. InMemoryTransports are its clients (inmemory_transport.h); several
// transports on one broker behave like several Kafka clients of one cluster.
//
//   absl::StatusOr<std::shared_ptr<herald::inmemory::InMemoryBroker>> broker =
//       herald::inmemory::InMemoryBroker::Create({.partitions = 8});
//   if (!broker.ok()) return broker.status();
//   herald::Bus a(std::make_unique<herald::inmemory::InMemoryTransport>(
//       herald::inmemory::InMemoryTransportOptions{.broker = *broker}));
//
// Semantics (Kafka's):
//   - a topic is created on first use with `partitions` partitions; an
//     event's partition is murmur2(key) like the Java client and kafka-go's
//     Murmur2Balancer (round-robin when the key is empty);
//   - each consumer group receives every record once; within a group each
//     partition is assigned to one subscription (round-robin, reassigned when
//     one joins or leaves); a new group starts at the earliest retained record
//     (auto.offset.reset=earliest);
//   - bounded memory: records every group has consumed are freed (by the
//     next publish to their partition, or once the group caught up); a topic
//     without groups keeps the newest `retention_per_partition` records;
//     publishers block (or fail) while a partition has
//     `max_pending_per_partition` records not yet consumed by its slowest
//     group.
//
// Thread-safe. Lives as long as its last holder (shared_ptr).
#ifndef HERALD_INMEMORY_INMEMORY_BROKER_H_
#define HERALD_INMEMORY_INMEMORY_BROKER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "herald/core/mutex.h"

namespace herald::inmemory {

// What a publish does when its partition already holds
// `max_pending_per_partition` unconsumed records.
enum class OverflowPolicy {
  kBlock,  // wait up to `publish_block_timeout`, then fail kResourceExhausted
  kFail,   // fail with kResourceExhausted at once
};

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
  // How long a publish waits for room under OverflowPolicy::kBlock. Must not
  // be negative. Default: 5 s.
  absl::Duration publish_block_timeout = absl::Seconds(5);
  // Default: OverflowPolicy::kBlock.
  OverflowPolicy overflow = OverflowPolicy::kBlock;
  // The largest record a topic accepts, in bytes, counted as the Kafka
  // transport writes it by default (key, value and header names and values
  // of EncodeRecord, herald/core/wire.h). A larger publish fails with
  // RecordTooLargeError (herald/core/transport.h), as Kafka refuses a record
  // over message.max.bytes; set it to the broker's limit to meet that failure
  // in unit tests. Costs one encoding per publish when set. 0: no limit.
  // Must not be negative. Default: 0.
  int64_t max_record_bytes = 0;
};

class InMemoryTransport;

class InMemoryBroker {
  struct Passkey {};

 public:
  // kInvalidArgument naming the option out of range.
  static absl::StatusOr<std::shared_ptr<InMemoryBroker>> Create(InMemoryBrokerOptions options = {});
  // For Create (std::make_shared); the options are already checked.
  InMemoryBroker(Passkey, InMemoryBrokerOptions options);
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
  // Records of `topic` held in memory, summed over partitions: those not yet
  // consumed by every group, those kept for retention, and consumed ones not
  // yet freed (see "bounded memory" above).
  int64_t RetainedRecords(std::string_view topic) const;
  // Offset the next record of `topic`/`partition` will get (its log end);
  // 0 for an unknown topic or partition.
  int64_t EndOffset(std::string_view topic, int32_t partition) const;

 private:
  friend class InMemoryTransport;
  // Defined in broker_state.h (private to the component).
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
  // Wakes publishers blocked on full partitions (a transport is stopping).
  void WakePublishers();
  uint64_t NextMemberId();

  const InMemoryBrokerOptions options_;
  mutable Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Topic>> topics_ ABSL_GUARDED_BY(mu_);
  std::vector<Member> members_ ABSL_GUARDED_BY(mu_);  // in join order
  uint64_t next_member_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace herald::inmemory

#endif  // HERALD_INMEMORY_INMEMORY_BROKER_H_
