// One consumer-group member of KafkaTransport (private): a poll thread that
// serves the group (rebalances, errors, commits), one worker thread per
// assigned partition that consumes the partition's own librdkafka queue in
// batches and hands each record to the subscription's handler (the Bus's) in
// offset order, at-least-once commits.
// See kafka_transport.h for the contract.
#ifndef HERALD_KAFKA_SRC_GROUP_CONSUMER_H_
#define HERALD_KAFKA_SRC_GROUP_CONSUMER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "herald/core/transport.h"
#include "herald/core/mutex.h"
#include "herald/kafka/kafka_transport.h"
#include "error_log.h"
#include "rdkafka_handles.h"

namespace herald::kafka {

// Thread-safe. `options` and `errors` must outlive this.
class GroupConsumer {
 public:
  static absl::StatusOr<std::unique_ptr<GroupConsumer>> Create(const KafkaTransportOptions& options,
                                                               TransportSubscription subscription, ErrorLog& errors);
  // Stop(now) if it was started and not stopped, then waits for every worker
  // thread (a handler still running is waited for), then destroys the handle.
  ~GroupConsumer();

  // Subscribes to the topics and starts the poll thread.
  absl::Status Start();
  // Stops fetching; in-flight records may finish until `deadline`; buffered
  // ones are dropped (uncommitted); commits; leaves the group.
  // kDeadlineExceeded when a record was abandoned. Idempotent.
  absl::Status Stop(absl::Time deadline);

  void AddStats(KafkaTransportStats& stats) const;

 private:
  struct PartitionWorker;
  using WorkerPtr = std::shared_ptr<PartitionWorker>;
  using PartitionKey = std::pair<std::string, int32_t>;

  GroupConsumer(const KafkaTransportOptions& options, TransportSubscription subscription, ErrorLog& errors);

  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions,
                          void* opaque);
  static void OnOffsetCommit(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets,
                             void* opaque);
  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque);

  void PollLoop();
  void Assign(rd_kafka_topic_partition_list_t* partitions);
  // Stops the workers of `partitions`, waits for them (bounded), commits
  // their finished offsets.
  void Revoke(rd_kafka_topic_partition_list_t* partitions);
  // Commits each worker's finished offset (all of them when `force`, else
  // those that moved since the last commit).
  void Commit(const std::vector<WorkerPtr>& workers, bool async, bool force);
  std::vector<WorkerPtr> Workers() const;

  void RunWorker(PartitionWorker& worker);
  // Hands one record to the Bus until it is acknowledged; false when it was
  // abandoned (stop or revoke). `retried` is set when the Bus asked for a
  // retry (the partition was paused for it).
  bool HandleRecord(PartitionWorker& worker, const rd_kafka_message_t& record, bool& retried);
  // Tells `worker` to stop after its current record, which may take retries
  // until `finish_by`, and wakes it.
  static void RequestStop(PartitionWorker& worker, absl::Time finish_by);
  // Waits `delay` on the worker; false when stop/revoke says to give up.
  bool WaitOrGiveUp(PartitionWorker& worker, absl::Duration delay);
  // Pauses or resumes the partition to match the worker's pause reasons.
  void UpdatePause(PartitionWorker& worker);

  const KafkaTransportOptions& options_;
  const TransportSubscription subscription_;
  ErrorLog& errors_;
  HandlePtr rk_;
  std::thread poll_thread_;
  std::atomic<bool> stop_polling_{false};
  std::atomic<bool> closing_{false};
  std::atomic<bool> recommit_all_{false};
  std::atomic<bool> joined_{false};

  mutable Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::map<PartitionKey, WorkerPtr> workers_ ABSL_GUARDED_BY(mu_);
  // Revoked workers whose handler outlived the drain timeout; joined later.
  std::vector<WorkerPtr> retired_ ABSL_GUARDED_BY(mu_);

  std::atomic<int64_t> received_{0};
  std::atomic<int64_t> handled_{0};
  std::atomic<int64_t> redelivered_{0};
  std::atomic<int64_t> dropped_{0};
  std::atomic<int64_t> commits_{0};
  std::atomic<int64_t> commit_failures_{0};
  std::atomic<int64_t> rebalances_{0};
};

}  // namespace herald::kafka

#endif  // HERALD_KAFKA_SRC_GROUP_CONSUMER_H_
