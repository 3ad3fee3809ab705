#include "herald/inmemory/inmemory_transport.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "broker_state.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/core/wire.h"

namespace herald::inmemory {
namespace {

// Records a delivery thread takes per lock acquisition and per commit: as a
// rule everything that queued up while it slept or ran handlers, so that the
// lock, the wake-up and the commit are paid once per batch, not per record.
constexpr int64_t kMaxBatch = 1024;
// Coalescing wake-ups under load. A delivery thread that caught up after a
// batch of at least kDozeAfterBatch records (records arrive faster than it
// takes them one by one) does not ask the publishers to wake it: it sleeps
// kDoze and then takes whatever arrived meanwhile in one batch. A publisher
// thus makes no wake-up call per record, and on a machine with fewer cores
// than threads the publisher keeps its core instead of handing it to a
// freshly woken delivery thread for each record. The cost is at most kDoze of
// extra latency while records stream in; a lone record (the last batch was
// smaller) wakes its thread at once, as before. No spinning: with more
// delivery threads than cores, a spinning or yielding thread takes the core
// from the publisher it waits for.
constexpr int64_t kDozeAfterBatch = 2;
constexpr absl::Duration kDoze = absl::Microseconds(200);

// RecordTooLargeError when `envelope`, laid out as the Kafka transport writes
// it by default, is over `max_bytes`.
absl::Status CheckRecordSize(const Envelope& envelope, int64_t max_bytes) {
  absl::StatusOr<Record> record = EncodeRecord(envelope);
  if (!record.ok()) return record.status();
  int64_t bytes = static_cast<int64_t>(record->key.size() + record->value.size());
  for (const auto& [name, value] : record->headers) bytes += static_cast<int64_t>(name.size() + value.size());
  if (bytes <= max_bytes) return absl::OkStatus();
  return RecordTooLargeError(herald::StrCat("InMemoryTransport: a record of ", bytes, " bytes for topic \"",
                                            envelope.topic, "\" is over InMemoryBrokerOptions.max_record_bytes (",
                                            max_bytes, ")"));
}

}  // namespace

// Delivers one (subscription, topic, partition): a thread in threaded mode,
// a slot visited by RunPending in deterministic mode.
struct InMemoryTransport::Worker {
  uint64_t member_id = 0;
  RecordHandler handler;
  InMemoryBroker::Assignment slot;
  std::thread thread;
  // Guarded by slot.partition->mu: a delivery under `lease`, from
  // `first_offset` on, is running.
  bool in_handler = false;
  uint64_t lease = 0;
  int64_t first_offset = 0;
  // The records being delivered, in the partition's log: a deque keeps its
  // elements in place while others are appended or trimmed, and Trim keeps
  // them until the delivery is committed or, once abandoned by Stop(),
  // unpinned (Partition::pins). Taken under the partition's lock, read
  // without it. Touched only by the delivering thread.
  std::vector<const Envelope*> batch;
  // The last batch was large enough to doze before the next (kDoze).
  // Touched only by the delivering thread.
  bool doze = false;
};

InMemoryTransport::InMemoryTransport(InMemoryTransportOptions options)
    : broker_(options.broker != nullptr ? std::move(options.broker) : *InMemoryBroker::Create()),
      deterministic_(options.deterministic),
      clock_(options.clock != nullptr ? options.clock : &SystemClock()) {}

InMemoryTransport::~InMemoryTransport() {
  Stop(absl::Seconds(30)).IgnoreError();
  std::vector<std::thread> threads;
  {
    MutexLock lock(mu_);
    for (auto& w : workers_) {
      if (w->thread.joinable()) threads.push_back(std::move(w->thread));
    }
  }
  for (std::thread& t : threads) t.join();
}

absl::Time InMemoryTransport::Now() const { return deterministic_ ? clock_->Now() : absl::Now(); }

void InMemoryTransport::Publish(Envelope envelope, PublishCallback done) {
  publishes_in_flight_.fetch_add(1);
  absl::InlinedVector<CondVar*, 4> to_wake;
  absl::StatusOr<DeliveryReport> report = [&]() -> absl::StatusOr<DeliveryReport> {
    if (stopping_.load()) {
      return absl::FailedPreconditionError(
          "InMemoryTransport: publish after Stop(); make a new transport to publish again");
    }
    if (envelope.topic.empty()) return absl::InvalidArgumentError("InMemoryTransport: envelope has no topic");
    const InMemoryBrokerOptions& options = broker_->options();
    if (options.max_record_bytes > 0) HERALD_RETURN_IF_ERROR(CheckRecordSize(envelope, options.max_record_bytes));
    InMemoryBroker::Topic* topic = broker_->GetOrCreateTopic(envelope.topic);
    int32_t index = envelope.key.empty()
                        ? static_cast<int32_t>(topic->round_robin.fetch_add(1, std::memory_order_relaxed) %
                                               topic->partitions.size())
                        : broker_->PartitionFor(envelope.key);
    InMemoryBroker::Partition& p = *topic->partitions[index];
    MutexLock lock(p.mu);
    // Records every group has committed are freed here, by the thread that
    // allocated them (the delivery threads leave them while they keep up,
    // see DeliverBatch), and must not count as pending.
    p.Trim(options.retention_per_partition);
    auto full = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.mu) {
      return !p.cursors.empty() && static_cast<int64_t>(p.log.size()) >= options.max_pending_per_partition;
    };
    if (full()) {
      if (options.overflow == OverflowPolicy::kFail) {
        return absl::ResourceExhaustedError(herald::StrCat(
            "InMemoryTransport: partition ", index, " of topic ", topic->name, " holds ",
            options.max_pending_per_partition,
            " unconsumed records; Hint: consumers are behind, retry later or raise max_pending_per_partition"));
      }
      ++p.space_waiters;
      p.space_cv.WaitFor(p.mu, ClampWait(options.publish_block_timeout),
                         [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.mu) { return stopping_.load() || !full(); });
      --p.space_waiters;
      if (stopping_.load()) {
        return absl::FailedPreconditionError("InMemoryTransport: stopped while waiting for room to publish");
      }
      if (full()) {
        return absl::ResourceExhaustedError(
            herald::StrCat("InMemoryTransport: partition ", index, " of topic ", topic->name, " stayed full for ",
                           absl::FormatDuration(options.publish_block_timeout),
                           "; Hint: consumers are behind or stopped, retry later or raise max_pending_per_partition"));
      }
    }
    const int64_t offset = p.end_offset();
    p.log.push_back(std::move(envelope));
    if (p.cursors.empty()) p.Trim(options.retention_per_partition);
    // Wake sleeping delivery threads after unlocking, so that they do not
    // wake up only to wait for this lock. Cursors are never destroyed.
    for (auto& cursor : p.cursors) {
      if (cursor->waiters > 0) to_wake.push_back(&cursor->cv);
    }
    return DeliveryReport{topic->name, index, offset};
  }();
  for (CondVar* cv : to_wake) cv->NotifyAll();
  if (done) done(std::move(report));
  if (publishes_in_flight_.fetch_sub(1) == 1 && flush_waiters_.load() > 0) {
    MutexLock lock(flush_mu_);
    flush_cv_.NotifyAll();
  }
}

void InMemoryTransport::PublishRecord(std::string topic, Record record, PublishCallback done) {
  absl::StatusOr<Envelope> envelope = DecodeRecord(topic, record.key, record.value, record.headers);
  if (!envelope.ok()) {
    if (done) {
      done(absl::InvalidArgumentError(
          herald::StrCat("InMemoryTransport: carries envelopes only, and this record does not "
                         "decode: ",
                         envelope.status().message())));
    }
    return;
  }
  envelope->topic = std::move(topic);
  Publish(*std::move(envelope), std::move(done));
}

absl::Status InMemoryTransport::Subscribe(TransportSubscription subscription) {
  HERALD_RETURN_IF_ERROR(ValidateSubscription(subscription));
  std::sort(subscription.topics.begin(), subscription.topics.end());
  subscription.topics.erase(std::unique(subscription.topics.begin(), subscription.topics.end()),
                            subscription.topics.end());
  auto member = std::make_unique<Member>();
  member->id = broker_->NextMemberId();
  member->subscription = std::move(subscription);
  MutexLock lock(mu_);
  if (stopped_)
    return absl::FailedPreconditionError("InMemoryTransport::Subscribe: the transport is stopped; make a new one");
  members_.push_back(std::move(member));
  if (started_) JoinAndStart(*members_.back());
  return absl::OkStatus();
}

absl::Status InMemoryTransport::Start() {
  MutexLock lock(mu_);
  if (stopped_) return absl::FailedPreconditionError("InMemoryTransport: Start() after Stop(); make a new transport");
  if (started_) return absl::OkStatus();
  started_ = true;
  for (auto& member : members_) JoinAndStart(*member);
  return absl::OkStatus();
}

void InMemoryTransport::JoinAndStart(Member& member) {
  if (member.joined) return;
  member.joined = true;
  InMemoryBroker::Member broker_member{member.id, member.subscription.group, member.subscription.topics};
  for (InMemoryBroker::Assignment& slot : broker_->Join(broker_member)) {
    auto worker = std::make_unique<Worker>();
    worker->member_id = member.id;
    worker->handler = member.subscription.handler;
    worker->slot = std::move(slot);
    Worker* raw = worker.get();
    workers_.push_back(std::move(worker));
    if (!deterministic_) {
      ++running_workers_;
      raw->thread = std::thread(&InMemoryTransport::RunWorker, this, raw);
    }
  }
}

bool InMemoryTransport::WaitForWork(Worker& w) {
  InMemoryBroker::Partition& p = *w.slot.partition;
  InMemoryBroker::GroupCursor& c = *w.slot.cursor;
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.mu) {
    return c.assigned == w.member_id && !c.busy && c.next_offset < p.end_offset();
  };
  while (!stopping_.load()) {
    bool caught_up = false;
    {
      MutexLock lock(p.mu);
      if (ready()) {
        absl::Time now = absl::Now();
        if (c.retry_due <= now) return true;
        ++c.waiters;
        c.cv.WaitFor(p.mu, ClampWait(c.retry_due - now), [&] { return stopping_.load(); });
        --c.waiters;
        continue;
      }
      caught_up = c.assigned == w.member_id && !c.busy;
    }
    if (caught_up && w.doze) {
      // Records are streaming in: collect them for one batch (see kDoze).
      w.doze = false;
      absl::SleepFor(kDoze);
      continue;
    }
    MutexLock lock(p.mu);
    if (ready()) continue;
    ++c.waiters;
    c.cv.Wait(p.mu, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.mu) { return stopping_.load() || ready(); });
    --c.waiters;
  }
  return false;
}

int64_t InMemoryTransport::DeliverBatch(Worker& w, int64_t max_batch) {
  InMemoryBroker::Partition& p = *w.slot.partition;
  InMemoryBroker::GroupCursor& c = *w.slot.cursor;
  int64_t count = 0;
  uint64_t lease = 0;
  int64_t first_offset = 0;
  int first_attempt = 1;
  {
    MutexLock lock(p.mu);
    if (c.assigned != w.member_id || c.busy || c.retry_due > Now()) return 0;
    if (c.next_offset < p.start_offset) c.next_offset = p.start_offset;  // dropped by retention
    count = std::min(max_batch, p.end_offset() - c.next_offset);
    if (count <= 0) return 0;
    w.batch.clear();
    const int64_t first = c.next_offset - p.start_offset;
    for (int64_t i = 0; i < count; ++i) w.batch.push_back(&p.log[first + i]);
    first_offset = c.next_offset;
    first_attempt = c.attempt;
    c.busy = true;
    lease = ++c.lease;
    w.in_handler = true;
    w.lease = lease;
    w.first_offset = first_offset;
  }
  int64_t acked = 0, calls = 0;
  bool retry = false;
  absl::Duration delay;
  for (int64_t i = 0; i < count; ++i) {
    if (i > 0 && stopping_.load(std::memory_order_relaxed)) break;  // stop fetching; the rest stays uncommitted
    ReceivedRecord record;
    record.topic = w.slot.topic;
    record.partition = w.slot.partition_index;
    record.offset = first_offset + i;
    record.group = c.group;  // immutable once the cursor exists
    record.attempt = i == 0 ? first_attempt : 1;
    record.envelope = w.batch[i];
    Verdict verdict = w.handler(record);
    ++calls;
    if (verdict.is_ack()) {
      ++acked;
    } else {
      retry = true;
      delay = verdict.delay;
      break;
    }
  }
  MutexLock lock(p.mu);
  w.in_handler = false;
  if (c.lease != lease) {
    // Abandoned by Stop(): the group redelivers. Our records may go now.
    auto pin = std::find(p.pins.begin(), p.pins.end(), first_offset);
    if (pin != p.pins.end()) p.pins.erase(pin);
    p.Trim(broker_->options().retention_per_partition);
    if (p.space_waiters > 0) p.space_cv.NotifyAll();
    return calls;
  }
  c.busy = false;
  if (acked > 0) {
    c.next_offset += acked;
    c.attempt = 1;
    c.retry_due = absl::InfinitePast();
  }
  if (retry) {
    ++c.attempt;
    c.retry_due = Now() + delay;
  }
  // Committed records are trimmed by the next publish (freed on the thread
  // that allocated them, which keeps malloc's per-thread caches warm on
  // both sides); here only when a publisher waits for room or this group
  // caught up (the publishers may have stopped: memory stays bounded).
  if (p.space_waiters > 0 || c.next_offset == p.end_offset()) p.Trim(broker_->options().retention_per_partition);
  if (p.space_waiters > 0 && static_cast<int64_t>(p.log.size()) < broker_->options().max_pending_per_partition) {
    p.space_cv.NotifyAll();
  }
  // The partition may have moved to another subscription while we held it.
  if (c.assigned != w.member_id && c.waiters > 0) c.cv.NotifyAll();
  {
    MutexLock progress(progress_mu_);
    ++progress_;
  }
  progress_cv_.NotifyAll();
  return calls;
}

void InMemoryTransport::RunWorker(Worker* worker) {
  while (WaitForWork(*worker)) worker->doze = DeliverBatch(*worker, kMaxBatch) >= kDozeAfterBatch;
  MutexLock lock(mu_);
  --running_workers_;
  workers_cv_.NotifyAll();
}

int64_t InMemoryTransport::RunPending(int64_t max_deliveries) {
  if (!deterministic_) return 0;
  MutexLock run_lock(run_pending_mu_);
  int64_t handled = 0;
  while (handled < max_deliveries && !stopping_.load()) {
    std::vector<Worker*> workers;
    {
      MutexLock lock(mu_);
      if (!started_) return 0;
      for (auto& w : workers_) workers.push_back(w.get());
    }
    bool progress = false;
    for (Worker* w : workers) {
      if (handled >= max_deliveries) break;
      int64_t n = DeliverBatch(*w, std::min<int64_t>(kMaxBatch, max_deliveries - handled));
      handled += n;
      progress = progress || n > 0;
    }
    if (progress) continue;
    // Only retries that are not yet due may remain: sleep on the bus clock
    // until the first one.
    absl::Time next_due = absl::InfiniteFuture();
    for (Worker* w : workers) {
      InMemoryBroker::Partition& p = *w->slot.partition;
      InMemoryBroker::GroupCursor& c = *w->slot.cursor;
      MutexLock lock(p.mu);
      if (c.assigned == w->member_id && !c.busy && c.next_offset < p.end_offset()) {
        next_due = std::min(next_due, c.retry_due);
      }
    }
    if (next_due == absl::InfiniteFuture()) break;
    absl::Duration wait = next_due - clock_->Now();
    if (wait > absl::ZeroDuration()) clock_->SleepFor(wait);
  }
  return handled;
}

absl::Status InMemoryTransport::Stop(absl::Duration drain_deadline) {
  const absl::Time deadline = absl::Now() + ClampWait(drain_deadline);
  std::vector<uint64_t> member_ids;
  std::vector<Worker*> workers;
  {
    MutexLock lock(mu_);
    if (stopped_) return absl::OkStatus();
    stopped_ = true;
    stopping_.store(true);
    for (auto& m : members_) {
      if (m->joined) member_ids.push_back(m->id);
    }
    for (auto& w : workers_) workers.push_back(w.get());
  }
  // Publishers blocked on a full partition give up; accepted publishes finish.
  broker_->WakePublishers();
  Flush(deadline - absl::Now()).IgnoreError();
  // Leave the groups: their partitions go to the groups' other subscriptions.
  broker_->Leave(member_ids);
  for (Worker* w : workers) {
    MutexLock lock(w->slot.partition->mu);
    w->slot.cursor->cv.NotifyAll();
  }
  bool drained;
  {
    MutexLock lock(mu_);
    drained = workers_cv_.WaitFor(mu_, ClampWait(deadline - absl::Now()),
                                  [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_workers_ == 0; });
  }
  if (!drained) {
    // Release what is still running to the group; its verdict will be ignored.
    for (Worker* w : workers) {
      InMemoryBroker::Partition& p = *w->slot.partition;
      InMemoryBroker::GroupCursor& c = *w->slot.cursor;
      MutexLock lock(p.mu);
      if (w->in_handler && c.busy && c.lease == w->lease) {
        c.busy = false;
        ++c.lease;
        p.pins.push_back(w->first_offset);  // the handler still reads its records
        if (c.waiters > 0) c.cv.NotifyAll();
      }
    }
    return absl::DeadlineExceededError(
        "InMemoryTransport::Stop: a handler was still running at the drain deadline; its record goes back to the "
        "consumer group");
  }
  std::vector<std::thread> threads;
  {
    MutexLock lock(mu_);
    for (auto& w : workers_) {
      if (w->thread.joinable()) threads.push_back(std::move(w->thread));
    }
  }
  for (std::thread& t : threads) t.join();
  return absl::OkStatus();
}

absl::Status InMemoryTransport::Flush(absl::Duration timeout) {
  flush_waiters_.fetch_add(1);
  bool done;
  {
    MutexLock lock(flush_mu_);
    done = flush_cv_.WaitFor(flush_mu_, ClampWait(timeout), [&] { return publishes_in_flight_.load() == 0; });
  }
  flush_waiters_.fetch_sub(1);
  if (!done) return absl::DeadlineExceededError("InMemoryTransport::Flush: publishes still in progress at the timeout");
  return absl::OkStatus();
}

bool InMemoryTransport::Idle() {
  std::vector<Worker*> workers;
  {
    MutexLock lock(mu_);
    for (auto& w : workers_) workers.push_back(w.get());
  }
  for (Worker* w : workers) {
    InMemoryBroker::Partition& p = *w->slot.partition;
    InMemoryBroker::GroupCursor& c = *w->slot.cursor;
    MutexLock lock(p.mu);
    if (c.busy || c.next_offset < p.end_offset()) return false;
  }
  return true;
}

absl::Status InMemoryTransport::Drain(absl::Duration timeout) {
  {
    MutexLock lock(mu_);
    if (!started_) return absl::FailedPreconditionError("InMemoryTransport::Drain: not started");
  }
  if (deterministic_) {
    RunPending();
    if (Idle()) return absl::OkStatus();
    return absl::DeadlineExceededError(
        "InMemoryTransport::Drain: records are left that no subscription of this transport can take");
  }
  const absl::Time deadline = absl::Now() + ClampWait(timeout);
  while (true) {
    uint64_t seen;
    {
      MutexLock lock(progress_mu_);
      seen = progress_;
    }
    if (Idle()) return absl::OkStatus();
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          herald::StrCat("InMemoryTransport::Drain: subscriptions still behind after ", absl::FormatDuration(timeout)));
    }
    // A delivery batch ends (progress) or a publish lands (checked at least
    // every 10 ms).
    MutexLock lock(progress_mu_);
    progress_cv_.WaitFor(progress_mu_, std::min(left, absl::Milliseconds(10)),
                         [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(progress_mu_) { return progress_ != seen; });
  }
}

}  // namespace herald::inmemory
