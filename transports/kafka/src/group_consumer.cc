#include "group_consumer.h"

#include <algorithm>
#include <cstring>
#include <exception>

#include "assignment.h"
#include "herald/core/strings.h"
#include "kafka_config.h"
#include "kafka_status.h"

namespace herald::kafka {

struct GroupConsumer::PartitionWorker {
  PartitionWorker(std::string t, int32_t p, QueuePtr q) : topic(std::move(t)), partition(p), owned_records(std::move(q)) {}

  const std::string topic;
  const int32_t partition;
  // The partition's own librdkafka queue (not forwarded to the consumer
  // queue): the worker consumes it directly, in batches, and librdkafka's
  // prefetch limits (queued.min.messages) are the backpressure. Null when
  // librdkafka has no queue for the partition.
  const QueuePtr owned_records;
  rd_kafka_queue_t* const records = owned_records.get();

  Mutex mu;
  CondVar cv;
  // Stop dispatching: exit after the current record; records fetched but
  // not started stay uncommitted for the next owner.
  bool stopping ABSL_GUARDED_BY(mu) = false;
  // Mirrors `stopping` for the worker's lock-free check between records.
  std::atomic<bool> stop_requested{false};
  // The current record's retries may wait until then once `stopping`.
  absl::Time finish_by ABSL_GUARDED_BY(mu) = absl::InfiniteFuture();
  bool abandoned ABSL_GUARDED_BY(mu) = false;
  bool exited ABSL_GUARDED_BY(mu) = false;
  // Offset after the last finished record; -1 before the first. Written by
  // the worker after each record, read by the committer.
  std::atomic<int64_t> next_commit{-1};
  int64_t committed ABSL_GUARDED_BY(mu) = -1;
  bool paused_retry ABSL_GUARDED_BY(mu) = false;
  bool paused ABSL_GUARDED_BY(mu) = false;
  std::thread thread;

  // Worker-thread only: reused for every record so the steady state does
  // not allocate for them.
  Headers headers;
};

namespace {

// Reads the record's headers into `out`, reusing its strings' storage.
void ReadHeaders(const rd_kafka_message_t& record, Headers& out) {
  rd_kafka_headers_t* headers = nullptr;
  size_t count = 0;
  if (rd_kafka_message_headers(&record, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR && headers != nullptr) {
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    for (; rd_kafka_header_get_all(headers, count, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++count) {
      if (count == out.size()) out.emplace_back();
      out[count].first.assign(name);
      if (value != nullptr) {
        out[count].second.assign(static_cast<const char*>(value), size);
      } else {
        out[count].second.clear();
      }
    }
  }
  out.resize(count);
}

// Records a worker takes from its partition queue at once.
constexpr size_t kWorkerBatch = 512;

std::string_view Key(const rd_kafka_message_t& record) {
  return record.key != nullptr ? std::string_view(static_cast<const char*>(record.key), record.key_len)
                               : std::string_view();
}
std::string_view Value(const rd_kafka_message_t& record) {
  return record.payload != nullptr ? std::string_view(static_cast<const char*>(record.payload), record.len)
                                   : std::string_view();
}

}  // namespace

GroupConsumer::GroupConsumer(const KafkaTransportOptions& options, TransportSubscription subscription,
                             ErrorLog& errors)
    : options_(options), subscription_(std::move(subscription)), errors_(errors) {}

absl::StatusOr<std::unique_ptr<GroupConsumer>> GroupConsumer::Create(const KafkaTransportOptions& options,
                                                                     TransportSubscription subscription,
                                                                     ErrorLog& errors) {
  absl::StatusOr<ConfPtr> conf = BuildConsumerConf(options, subscription.group);
  if (!conf.ok()) return conf.status();
  std::unique_ptr<GroupConsumer> consumer(new GroupConsumer(options, std::move(subscription), errors));
  rd_kafka_conf_set_opaque(conf->get(), consumer.get());
  rd_kafka_conf_set_rebalance_cb(conf->get(), &GroupConsumer::OnRebalance);
  rd_kafka_conf_set_offset_commit_cb(conf->get(), &GroupConsumer::OnOffsetCommit);
  rd_kafka_conf_set_error_cb(conf->get(), &GroupConsumer::OnError);
  rd_kafka_conf_set_log_cb(conf->get(), [](const rd_kafka_t* rk, int level, const char* facility, const char* text) {
    static_cast<GroupConsumer*>(rd_kafka_opaque(rk))->errors_.Librdkafka(rk, level, facility, text);
  });
  char errstr[512] = {0};
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), errstr, sizeof(errstr));
  if (rk == nullptr) {
    return absl::InvalidArgumentError(herald::StrCat("KafkaTransport: cannot create the consumer of group \"",
                                                     consumer->subscription_.group,
                                                     "\": ", RedactSecrets(options, errstr)));
  }
  static_cast<void>(conf.value().release());
  consumer->rk_.reset(rk);
  rd_kafka_poll_set_consumer(rk);
  return consumer;
}

GroupConsumer::~GroupConsumer() {
  bool need_stop;
  {
    MutexLock lock(mu_);
    need_stop = started_ && !stopped_;
  }
  if (need_stop) Stop(absl::Now()).IgnoreError();
  stop_polling_.store(true);
  if (poll_thread_.joinable()) poll_thread_.join();
  std::vector<WorkerPtr> all;
  {
    MutexLock lock(mu_);
    for (auto& [key, w] : workers_) all.push_back(w);
    workers_.clear();
    all.insert(all.end(), retired_.begin(), retired_.end());
    retired_.clear();
  }
  for (const WorkerPtr& w : all) {
    RequestStop(*w, absl::InfinitePast());
    if (w->thread.joinable()) w->thread.join();
  }
  rk_.reset();
}

absl::Status GroupConsumer::Start() {
  MutexLock lock(mu_);
  if (started_) return absl::OkStatus();
  PartitionListPtr topics(rd_kafka_topic_partition_list_new(static_cast<int>(subscription_.topics.size())));
  for (const std::string& topic : subscription_.topics) {
    rd_kafka_topic_partition_list_add(topics.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
  }
  rd_kafka_resp_err_t err = rd_kafka_subscribe(rk_.get(), topics.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaErrorToStatus(err, herald::StrCat("subscribe group \"", subscription_.group, "\""));
  }
  started_ = true;
  poll_thread_ = std::thread([this] { PollLoop(); });
  return absl::OkStatus();
}

void GroupConsumer::PollLoop() {
  // Records go to the partition queues, which the workers consume; this
  // loop serves rebalances, errors and commit callbacks, and commits.
  absl::Time next_commit_at = absl::Now() + options_.commit_interval;
  while (!stop_polling_.load(std::memory_order_relaxed)) {
    rd_kafka_message_t* raw = rd_kafka_consumer_poll(rk_.get(), 100);
    if (raw != nullptr) {
      MessagePtr message(raw);
      const char* topic = message->rkt != nullptr ? rd_kafka_topic_name(message->rkt) : "";
      if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        errors_.Record(herald::StrCat("consumer group \"", subscription_.group, "\" ", topic, ": ",
                                             rd_kafka_message_errstr(message.get())));
      } else {
        // Not expected: every assigned partition's queue is detached from
        // the consumer queue before the assignment starts. Reported.
        errors_.Record(herald::StrCat("consumer group \"", subscription_.group, "\": record of ", topic,
                                             "[", message->partition, "] at offset ", message->offset,
                                             " arrived on the consumer queue (not handled here)"));
      }
    }
    if (absl::Now() >= next_commit_at) {
      Commit(Workers(), /*async=*/true, /*force=*/recommit_all_.exchange(false));
      next_commit_at = absl::Now() + options_.commit_interval;
    }
  }
}

void GroupConsumer::UpdatePause(PartitionWorker& worker) {
  worker.mu.AssertHeld();
  bool want = worker.paused_retry;
  if (want == worker.paused) return;
  PartitionListPtr list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), worker.topic.c_str(), worker.partition);
  if (want) {
    rd_kafka_pause_partitions(rk_.get(), list.get());
  } else {
    rd_kafka_resume_partitions(rk_.get(), list.get());
  }
  worker.paused = want;
}

void GroupConsumer::RunWorker(PartitionWorker& worker) {
  std::vector<rd_kafka_message_t*> taken(kWorkerBatch);
  if (worker.records == nullptr) {
    // No queue for the partition (see Assign): nothing to consume.
    MutexLock lock(worker.mu);
    worker.cv.Wait(worker.mu, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(worker.mu) { return worker.stopping; });
  }
  while (!worker.stop_requested.load(std::memory_order_acquire)) {
    // Wait for a record (a stop or revoke wakes this with
    // rd_kafka_queue_yield), then take what else is already fetched.
    rd_kafka_message_t* first = rd_kafka_consume_queue(worker.records, 100);
    if (first == nullptr) continue;
    taken[0] = first;
    size_t n = 1;
    ssize_t more = rd_kafka_consume_batch_queue(worker.records, 0, taken.data() + 1, kWorkerBatch - 1);
    if (more > 0) n += static_cast<size_t>(more);
    received_.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed);
    size_t i = 0;
    for (; i < n; ++i) {
      MessagePtr record(taken[i]);
      if (record->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        errors_.Record(herald::StrCat("consumer group \"", subscription_.group, "\" ", worker.topic, "[",
                                             worker.partition, "]: ", rd_kafka_message_errstr(record.get())));
        continue;
      }
      // Stop or revoke: leave the rest (uncommitted) to the next owner.
      if (worker.stop_requested.load(std::memory_order_acquire)) {
        dropped_.fetch_add(static_cast<int64_t>(n - i), std::memory_order_relaxed);
        break;
      }
      const int64_t offset = record->offset;
      bool retried = false;
      const bool finished = HandleRecord(worker, *record, retried);
      record.reset();
      if (finished) worker.next_commit.store(offset + 1, std::memory_order_release);
      if (!finished || retried) {
        MutexLock lock(worker.mu);
        if (!finished) worker.abandoned = true;
        if (worker.paused_retry) {
          worker.paused_retry = false;
          UpdatePause(worker);
        }
      }
      if (!finished) {
        dropped_.fetch_add(static_cast<int64_t>(n - i - 1), std::memory_order_relaxed);
        break;
      }
    }
    // Destroy what the loop left (after a break).
    for (size_t j = i + 1; j < n; ++j) rd_kafka_message_destroy(taken[j]);
  }
  MutexLock lock(worker.mu);
  worker.exited = true;
  worker.cv.NotifyAll();
}

bool GroupConsumer::HandleRecord(PartitionWorker& worker, const rd_kafka_message_t& record, bool& retried) {
  ReadHeaders(record, worker.headers);
  ReceivedRecord received;
  received.topic = worker.topic;
  received.partition = worker.partition;
  received.offset = record.offset;
  received.group = subscription_.group;
  received.key = Key(record);
  received.value = Value(record);
  received.headers = &worker.headers;
  while (true) {
    // The Bus's handler never throws (transport.h).
    Verdict verdict = subscription_.handler(received);
    if (verdict.is_ack()) {
      handled_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    retried = true;
    {
      MutexLock lock(worker.mu);
      worker.paused_retry = true;
      UpdatePause(worker);
    }
    if (!WaitOrGiveUp(worker, verdict.delay)) return false;
    ++received.attempt;
    redelivered_.fetch_add(1, std::memory_order_relaxed);
  }
}

void GroupConsumer::RequestStop(PartitionWorker& worker, absl::Time finish_by) {
  MutexLock lock(worker.mu);
  worker.stopping = true;
  worker.stop_requested.store(true, std::memory_order_release);
  if (worker.records != nullptr) rd_kafka_queue_yield(worker.records);
  worker.finish_by = std::min(worker.finish_by, finish_by);
  worker.cv.NotifyAll();
}

bool GroupConsumer::WaitOrGiveUp(PartitionWorker& worker, absl::Duration delay) {
  const absl::Time at = absl::Now() + delay;
  MutexLock lock(worker.mu);
  while (true) {
    if (worker.stopping && at > worker.finish_by) return false;
    absl::Time now = absl::Now();
    if (now >= at) return true;
    worker.cv.WaitFor(worker.mu, at - now,
                      [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(worker.mu) { return worker.stopping && at > worker.finish_by; });
  }
}

std::vector<GroupConsumer::WorkerPtr> GroupConsumer::Workers() const {
  MutexLock lock(mu_);
  std::vector<WorkerPtr> out;
  out.reserve(workers_.size());
  for (const auto& [key, w] : workers_) out.push_back(w);
  return out;
}

void GroupConsumer::Commit(const std::vector<WorkerPtr>& workers, bool async, bool force) {
  PartitionListPtr offsets(rd_kafka_topic_partition_list_new(static_cast<int>(workers.size())));
  for (const WorkerPtr& w : workers) {
    const int64_t next = w->next_commit.load(std::memory_order_acquire);
    MutexLock lock(w->mu);
    if (next < 0 || (!force && next == w->committed)) continue;
    rd_kafka_topic_partition_list_add(offsets.get(), w->topic.c_str(), w->partition)->offset = next;
    w->committed = next;
  }
  if (offsets->cnt == 0) return;
  commits_.fetch_add(1, std::memory_order_relaxed);
  rd_kafka_resp_err_t err = rd_kafka_commit(rk_.get(), offsets.get(), async ? 1 : 0);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    commit_failures_.fetch_add(1, std::memory_order_relaxed);
    recommit_all_.store(true);
    errors_.Record(herald::StrCat("commit of group \"", subscription_.group,
                                         "\": ", KafkaErrorToStatus(err, "commit").message()));
  }
}

void GroupConsumer::OnOffsetCommit(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets,
                                   void* opaque) {
  auto* self = static_cast<GroupConsumer*>(opaque);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;
  self->commit_failures_.fetch_add(1, std::memory_order_relaxed);
  self->recommit_all_.store(true);
  self->errors_.Record(herald::StrCat("commit of group \"", self->subscription_.group,
                                      "\": ", KafkaErrorToStatus(err, "commit").message()));
}

void GroupConsumer::OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto* self = static_cast<GroupConsumer*>(opaque);
  self->errors_.Record(herald::StrCat("consumer group \"", self->subscription_.group,
                                      "\": ", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)), ": ",
                                      reason != nullptr ? reason : ""),
                       LogLevel::kInfo);
}

void GroupConsumer::OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions,
                                void* opaque) {
  auto* self = static_cast<GroupConsumer*>(opaque);
  self->rebalances_.fetch_add(1, std::memory_order_relaxed);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS || err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    std::string listed;
    for (int i = 0; i < partitions->cnt; ++i) {
      herald::StrAppend(&listed, listed.empty() ? "" : ",", partitions->elems[i].topic, "[",
                        partitions->elems[i].partition, "]");
    }
    self->errors_.Log(LogLevel::kInfo,
                      err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? "rebalance: partitions assigned"
                                                                  : "rebalance: partitions revoked",
                      {{"group", self->subscription_.group}, {"partitions", listed}});
  }
  const char* protocol = rd_kafka_rebalance_protocol(rk);
  const bool cooperative = protocol != nullptr && std::strcmp(protocol, "COOPERATIVE") == 0;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    self->Assign(partitions);
    self->joined_.store(true);
    if (absl::Status s = ApplyRebalance(rk, AssignmentChange::kAssign, cooperative, partitions); !s.ok()) {
      self->errors_.Record(
          herald::StrCat("rebalance of group \"", self->subscription_.group, "\": ", s.message()));
    }
    // A partition paused before an earlier revoke starts fresh.
    rd_kafka_resume_partitions(rk, partitions);
    return;
  }
  if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    self->errors_.Record(herald::StrCat("rebalance of group \"", self->subscription_.group,
                                               "\": ", rd_kafka_err2str(err)));
  }
  self->Revoke(partitions);
  if (absl::Status s = ApplyRebalance(rk, AssignmentChange::kRevoke, cooperative, partitions); !s.ok()) {
    self->errors_.Record(
        herald::StrCat("rebalance of group \"", self->subscription_.group, "\": ", s.message()));
  }
}

void GroupConsumer::Assign(rd_kafka_topic_partition_list_t* partitions) {
  MutexLock lock(mu_);
  for (int i = 0; i < partitions->cnt; ++i) {
    const rd_kafka_topic_partition_t& p = partitions->elems[i];
    PartitionKey key(p.topic, p.partition);
    if (workers_.count(key) != 0) continue;
    // Detach the partition's queue from the consumer queue before the
    // assignment starts fetching into it; its worker consumes it.
    QueuePtr records(rd_kafka_queue_get_partition(rk_.get(), p.topic, p.partition));
    if (records != nullptr) {
      rd_kafka_queue_forward(records.get(), nullptr);
    } else {
      errors_.Record(herald::StrCat("consumer group \"", subscription_.group, "\": no queue for ", p.topic,
                                           "[", p.partition, "]; its records are not consumed by this member"));
    }
    auto worker = std::make_shared<PartitionWorker>(p.topic, p.partition, std::move(records));
    worker->thread = std::thread([this, w = worker.get()] { RunWorker(*w); });
    workers_.emplace(std::move(key), std::move(worker));
  }
}

void GroupConsumer::Revoke(rd_kafka_topic_partition_list_t* partitions) {
  std::vector<WorkerPtr> revoked;
  {
    MutexLock lock(mu_);
    for (int i = 0; i < partitions->cnt; ++i) {
      auto it = workers_.find(PartitionKey(partitions->elems[i].topic, partitions->elems[i].partition));
      if (it == workers_.end()) continue;
      revoked.push_back(std::move(it->second));
      workers_.erase(it);
    }
  }
  const absl::Time now = absl::Now();
  // Retries are left to the next owner.
  for (const WorkerPtr& w : revoked) RequestStop(*w, now);
  const absl::Time wait_until = closing_.load() ? now : now + options_.rebalance_drain_timeout;
  for (const WorkerPtr& w : revoked) {
    MutexLock lock(w->mu);
    w->cv.WaitFor(w->mu, wait_until - absl::Now(), [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->mu) { return w->exited; });
  }
  // Commit what finished, unless the assignment was lost (the group has
  // already moved on; the commit would fail).
  if (!rd_kafka_assignment_lost(rk_.get())) Commit(revoked, /*async=*/closing_.load(), /*force=*/true);
  std::vector<WorkerPtr> still_running;
  for (const WorkerPtr& w : revoked) {
    bool exited;
    {
      MutexLock lock(w->mu);
      exited = w->exited;
    }
    if (exited) {
      if (w->thread.joinable()) w->thread.join();
    } else {
      still_running.push_back(w);
    }
  }
  if (!still_running.empty()) {
    MutexLock lock(mu_);
    retired_.insert(retired_.end(), still_running.begin(), still_running.end());
  }
}

absl::Status GroupConsumer::Stop(absl::Time deadline) {
  {
    MutexLock lock(mu_);
    if (stopped_) return absl::OkStatus();
    stopped_ = true;
    if (!started_) return absl::OkStatus();
  }
  stop_polling_.store(true);
  if (poll_thread_.joinable()) poll_thread_.join();
  std::vector<WorkerPtr> workers = Workers();
  for (const WorkerPtr& w : workers) RequestStop(*w, deadline);
  int abandoned = 0;
  for (const WorkerPtr& w : workers) {
    MutexLock lock(w->mu);
    w->cv.WaitFor(w->mu, deadline - absl::Now(), [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->mu) { return w->exited; });
    if (!w->exited || w->abandoned) ++abandoned;
  }
  Commit(workers, /*async=*/true, /*force=*/true);
  closing_.store(true);
  // Serves the final revoke (our OnRebalance) and waits for the commits.
  rd_kafka_resp_err_t err = rd_kafka_consumer_close(rk_.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    errors_.Record(herald::StrCat("close of group \"", subscription_.group,
                                         "\": ", KafkaErrorToStatus(err, "consumer close").message()));
  }
  if (abandoned > 0) {
    return absl::DeadlineExceededError(
        herald::StrCat("consumer group \"", subscription_.group, "\": ", abandoned,
                       " partition(s) still had a record in progress at the drain deadline; it was not committed "
                       "and will be redelivered to the group"));
  }
  return absl::OkStatus();
}

void GroupConsumer::AddStats(KafkaTransportStats& stats) const {
  stats.received += received_.load(std::memory_order_relaxed);
  stats.handled += handled_.load(std::memory_order_relaxed);
  stats.redelivered += redelivered_.load(std::memory_order_relaxed);
  stats.dropped_on_revoke += dropped_.load(std::memory_order_relaxed);
  stats.commits += commits_.load(std::memory_order_relaxed);
  stats.commit_failures += commit_failures_.load(std::memory_order_relaxed);
  stats.rebalances += rebalances_.load(std::memory_order_relaxed);
  std::vector<WorkerPtr> workers = Workers();
  stats.consumers += 1;
  if (joined_.load()) stats.consumers_joined += 1;
  if (!workers.empty()) stats.consumers_with_partitions += 1;
  for (const WorkerPtr& w : workers) {
    KafkaTransportStats::Partition p;
    p.group = subscription_.group;
    p.topic = w->topic;
    p.partition = w->partition;
    int64_t low = -1, high = -1;
    if (rd_kafka_get_watermark_offsets(rk_.get(), w->topic.c_str(), w->partition, &low, &high) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        high >= 0) {
      p.high_watermark = high;
    }
    {
      MutexLock lock(w->mu);
      p.next_commit = w->next_commit.load(std::memory_order_acquire);
      p.paused = w->paused;
    }
    if (w->records != nullptr) p.buffered = static_cast<int64_t>(rd_kafka_queue_length(w->records));
    if (p.high_watermark >= 0 && p.next_commit >= 0) p.lag = std::max<int64_t>(0, p.high_watermark - p.next_commit);
    stats.partitions.push_back(std::move(p));
  }
}

}  // namespace herald::kafka
