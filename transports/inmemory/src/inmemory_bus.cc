#include "herald/inmemory/inmemory_bus.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"

namespace herald {
namespace {

// Delivered per wake-up and per commit in threaded mode: amortises the lock
// and the wake-up over several records without delaying any of them.
constexpr int64_t kMaxBatch = 64;
// Redelivery delay after a raw MessageHandler threw (Bus::Subscribe's
// handlers never throw: the dispatcher turns exceptions into errors).
constexpr absl::Duration kThrowRetryDelay = absl::Milliseconds(100);
// An idle delivery thread yields up to this many times (about a millisecond),
// watching for a new record,
// before it sleeps on its condition variable: under load the next record
// usually comes first, which saves a sleep and a wake-up (two context
// switches) per record.
constexpr int kSpinYields = 1000;

// Condition variables take a finite wait (std::chrono overflows on
// absl::InfiniteDuration()).
absl::Duration ClampWait(absl::Duration d) {
  return std::clamp(d, absl::ZeroDuration(), absl::Hours(24 * 365));
}

// Kafka's murmur2 (the Java client's Utils.murmur2), so a key lands on the
// same partition as from the Java client or kafka-go's Murmur2Balancer.
uint32_t Murmur2(std::string_view data) {
  const uint32_t seed = 0x9747b28c;
  const uint32_t m = 0x5bd1e995;
  const int r = 24;
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  const size_t length = data.size();
  uint32_t h = seed ^ static_cast<uint32_t>(length);
  const size_t length4 = length / 4;
  for (size_t i = 0; i < length4; ++i) {
    const size_t i4 = i * 4;
    uint32_t k = static_cast<uint32_t>(bytes[i4]) | (static_cast<uint32_t>(bytes[i4 + 1]) << 8) |
                 (static_cast<uint32_t>(bytes[i4 + 2]) << 16) | (static_cast<uint32_t>(bytes[i4 + 3]) << 24);
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  const size_t tail = length4 * 4;
  switch (length % 4) {
    case 3:
      h ^= static_cast<uint32_t>(bytes[tail + 2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<uint32_t>(bytes[tail + 1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= static_cast<uint32_t>(bytes[tail]);
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return h;
}

absl::Status ValidateOptions(const InMemoryBrokerOptions& o) {
  if (o.partitions < 1) return absl::InvalidArgumentError("InMemoryBrokerOptions: partitions must be >= 1");
  if (o.retention_per_partition < 1) {
    return absl::InvalidArgumentError("InMemoryBrokerOptions: retention_per_partition must be >= 1");
  }
  if (o.max_pending_per_partition < 1) {
    return absl::InvalidArgumentError("InMemoryBrokerOptions: max_pending_per_partition must be >= 1");
  }
  if (o.publish_block_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("InMemoryBrokerOptions: publish_block_timeout must not be negative");
  }
  return absl::OkStatus();
}

Verdict CallHandler(const MessageHandler& handler, const Message& message) {
  try {
    return handler(message);
  } catch (...) {
    return Verdict::RetryAfter(kThrowRetryDelay);
  }
}

}  // namespace

// One consumer group's position in one partition. Every field is guarded by
// the partition's mutex.
struct InMemoryBroker::GroupCursor {
  std::string group;
  // Committed: the next offset to deliver.
  int64_t next_offset = 0;
  // Member the partition is assigned to; 0 when the group has none.
  uint64_t assigned = 0;
  // A delivery of next_offset.. is running (under `lease`).
  bool busy = false;
  uint64_t lease = 0;
  // Delivery attempt of next_offset.
  int attempt = 1;
  // next_offset is redelivered no earlier than this.
  absl::Time retry_due = absl::InfinitePast();
  // Delivery threads waiting on `cv`.
  int waiters = 0;
  CondVar cv;
};

struct InMemoryBroker::Partition {
  Mutex mu;
  std::deque<Envelope> log ABSL_GUARDED_BY(mu);
  // Offset of log.front().
  int64_t start_offset ABSL_GUARDED_BY(mu) = 0;
  std::vector<std::unique_ptr<GroupCursor>> cursors ABSL_GUARDED_BY(mu);
  // Publishers waiting for room.
  int space_waiters ABSL_GUARDED_BY(mu) = 0;
  CondVar space_cv;
  // end_offset(), readable without the lock (for spinning delivery threads).
  std::atomic<int64_t> end_hint{0};

  int64_t end_offset() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return start_offset + static_cast<int64_t>(log.size());
  }
  GroupCursor* FindCursor(std::string_view group) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (auto& c : cursors) {
      if (c->group == group) return c.get();
    }
    return nullptr;
  }
  // Drops what every group has consumed, or beyond retention when there is
  // no group.
  void Trim(int64_t retention) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (cursors.empty()) {
      while (static_cast<int64_t>(log.size()) > retention) {
        log.pop_front();
        ++start_offset;
      }
      return;
    }
    int64_t min_next = cursors.front()->next_offset;
    for (const auto& c : cursors) min_next = std::min(min_next, c->next_offset);
    while (start_offset < min_next && !log.empty()) {
      log.pop_front();
      ++start_offset;
    }
  }
};

struct InMemoryBroker::Topic {
  std::string name;
  std::vector<std::unique_ptr<Partition>> partitions;
  std::atomic<uint64_t> round_robin{0};
};

// ---------------------------------------------------------------- broker ---

absl::StatusOr<std::shared_ptr<InMemoryBroker>> InMemoryBroker::Create(InMemoryBrokerOptions options) {
  HERALD_RETURN_IF_ERROR(ValidateOptions(options));
  return std::make_shared<InMemoryBroker>(std::move(options));
}

InMemoryBroker::InMemoryBroker(InMemoryBrokerOptions options) : options_(std::move(options)) {
  if (absl::Status s = ValidateOptions(options_); !s.ok()) {
    std::fprintf(stderr, "herald::InMemoryBroker: %s\n", std::string(s.message()).c_str());
    std::abort();
  }
}

InMemoryBroker::~InMemoryBroker() = default;

int32_t InMemoryBroker::PartitionFor(std::string_view key) const {
  if (key.empty()) return -1;
  return static_cast<int32_t>((Murmur2(key) & 0x7fffffff) % static_cast<uint32_t>(options_.partitions));
}

InMemoryBroker::Topic* InMemoryBroker::GetOrCreateTopic(std::string_view name) {
  MutexLock lock(mu_);
  auto it = topics_.find(ToAbsl(name));
  if (it != topics_.end()) return it->second.get();
  auto topic = std::make_unique<Topic>();
  topic->name = std::string(name);
  for (int i = 0; i < options_.partitions; ++i) topic->partitions.push_back(std::make_unique<Partition>());
  Topic* raw = topic.get();
  topics_.emplace(std::string(name), std::move(topic));
  return raw;
}

const InMemoryBroker::Topic* InMemoryBroker::FindTopic(std::string_view name) const {
  MutexLock lock(mu_);
  auto it = topics_.find(ToAbsl(name));
  return it == topics_.end() ? nullptr : it->second.get();
}

uint64_t InMemoryBroker::NextMemberId() {
  MutexLock lock(mu_);
  return next_member_id_++;
}

std::vector<InMemoryBroker::Assignment> InMemoryBroker::Join(const Member& member) {
  std::vector<Assignment> slots;
  for (const std::string& name : member.topics) {
    Topic* topic = GetOrCreateTopic(name);
    for (size_t i = 0; i < topic->partitions.size(); ++i) {
      Partition& p = *topic->partitions[i];
      MutexLock lock(p.mu);
      GroupCursor* cursor = p.FindCursor(member.group);
      if (cursor == nullptr) {
        auto created = std::make_unique<GroupCursor>();
        created->group = member.group;
        created->next_offset = p.start_offset;  // earliest retained
        cursor = created.get();
        p.cursors.push_back(std::move(created));
      }
      slots.push_back(Assignment{&p, cursor, name, static_cast<int32_t>(i)});
    }
  }
  MutexLock lock(mu_);
  members_.push_back(member);
  for (const std::string& name : member.topics) Rebalance(member.group, name);
  return slots;
}

void InMemoryBroker::Leave(const std::vector<uint64_t>& member_ids) {
  MutexLock lock(mu_);
  std::vector<std::pair<std::string, std::string>> affected;
  for (auto it = members_.begin(); it != members_.end();) {
    if (std::find(member_ids.begin(), member_ids.end(), it->id) != member_ids.end()) {
      for (const std::string& t : it->topics) affected.emplace_back(it->group, t);
      it = members_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [group, topic] : affected) Rebalance(group, topic);
}

void InMemoryBroker::Rebalance(const std::string& group, const std::string& topic_name) {
  std::vector<uint64_t> ids;
  for (const Member& m : members_) {
    if (m.group == group && std::find(m.topics.begin(), m.topics.end(), topic_name) != m.topics.end()) {
      ids.push_back(m.id);
    }
  }
  auto it = topics_.find(topic_name);
  if (it == topics_.end()) return;
  Topic& topic = *it->second;
  for (size_t i = 0; i < topic.partitions.size(); ++i) {
    Partition& p = *topic.partitions[i];
    MutexLock lock(p.mu);
    GroupCursor* cursor = p.FindCursor(group);
    if (cursor == nullptr) continue;
    cursor->assigned = ids.empty() ? 0 : ids[i % ids.size()];
    if (cursor->waiters > 0) cursor->cv.NotifyAll();
  }
}

void InMemoryBroker::WakePublishers() {
  std::vector<Partition*> partitions;
  {
    MutexLock lock(mu_);
    for (auto& [name, topic] : topics_) {
      for (auto& p : topic->partitions) partitions.push_back(p.get());
    }
  }
  for (Partition* p : partitions) {
    MutexLock lock(p->mu);
    if (p->space_waiters > 0) p->space_cv.NotifyAll();
  }
}

int64_t InMemoryBroker::Lag(std::string_view group, std::string_view topic_name) const {
  const Topic* topic = FindTopic(topic_name);
  if (topic == nullptr) return 0;
  int64_t lag = 0;
  for (const auto& p : topic->partitions) {
    MutexLock lock(p->mu);
    GroupCursor* cursor = p->FindCursor(group);
    lag += p->end_offset() - (cursor != nullptr ? std::max(cursor->next_offset, p->start_offset) : p->start_offset);
  }
  return lag;
}

int64_t InMemoryBroker::RetainedRecords(std::string_view topic_name) const {
  const Topic* topic = FindTopic(topic_name);
  if (topic == nullptr) return 0;
  int64_t retained = 0;
  for (const auto& p : topic->partitions) {
    MutexLock lock(p->mu);
    retained += static_cast<int64_t>(p->log.size());
  }
  return retained;
}

int64_t InMemoryBroker::EndOffset(std::string_view topic_name, int32_t partition) const {
  const Topic* topic = FindTopic(topic_name);
  if (topic == nullptr || partition < 0 || partition >= static_cast<int32_t>(topic->partitions.size())) return 0;
  Partition& p = *topic->partitions[partition];
  MutexLock lock(p.mu);
  return p.end_offset();
}

// ------------------------------------------------------------------- bus ---

// Delivers one (subscription, topic, partition): a thread in threaded mode,
// a slot visited by RunPending in deterministic mode.
struct InMemoryBus::Worker {
  uint64_t member_id = 0;
  MessageHandler handler;
  InMemoryBroker::Assignment slot;
  std::thread thread;
  // Guarded by slot.partition->mu: a delivery under `lease` is running.
  bool in_handler = false;
  uint64_t lease = 0;
  // Reused between batches (copy-assignment keeps string capacity). Touched
  // only by the delivering thread.
  std::vector<Message> batch;
};

absl::StatusOr<std::unique_ptr<InMemoryBus>> InMemoryBus::Create(InMemoryBusOptions options) {
  if (options.broker == nullptr) HERALD_RETURN_IF_ERROR(ValidateOptions(options.log));
  return std::make_unique<InMemoryBus>(std::move(options));
}

InMemoryBus::InMemoryBus(InMemoryBusOptions options)
    : Bus(options.defaults),
      broker_(options.broker != nullptr ? options.broker : std::make_shared<InMemoryBroker>(options.log)),
      deterministic_(options.deterministic) {}

InMemoryBus::~InMemoryBus() {
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

absl::Time InMemoryBus::Now() const { return deterministic_ ? defaults().clock->Now() : absl::Now(); }

void InMemoryBus::PublishAsync(Envelope envelope, PublishCallback done) {
  publishes_in_flight_.fetch_add(1);
  absl::InlinedVector<CondVar*, 4> to_wake;
  absl::StatusOr<DeliveryReport> report = [&]() -> absl::StatusOr<DeliveryReport> {
    if (stopping_.load()) {
      return absl::FailedPreconditionError("InMemoryBus: publish after Stop(); make a new bus to publish again");
    }
    if (envelope.topic.empty()) return absl::InvalidArgumentError("InMemoryBus: envelope has no topic");
    InMemoryBroker::Topic* topic = broker_->GetOrCreateTopic(envelope.topic);
    const InMemoryBrokerOptions& options = broker_->options();
    int32_t index = envelope.key.empty()
                        ? static_cast<int32_t>(topic->round_robin.fetch_add(1, std::memory_order_relaxed) %
                                               topic->partitions.size())
                        : broker_->PartitionFor(envelope.key);
    InMemoryBroker::Partition& p = *topic->partitions[index];
    MutexLock lock(p.mu);
    auto full = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.mu) {
      return !p.cursors.empty() && static_cast<int64_t>(p.log.size()) >= options.max_pending_per_partition;
    };
    if (full()) {
      if (options.overflow == OverflowPolicy::kFail) {
        return absl::ResourceExhaustedError(herald::StrCat(
            "InMemoryBus: partition ", index, " of topic ", topic->name, " holds ", options.max_pending_per_partition,
            " unconsumed records; Hint: consumers are behind, retry later or raise max_pending_per_partition"));
      }
      ++p.space_waiters;
      p.space_cv.WaitFor(p.mu, ClampWait(options.publish_block_timeout),
                         [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stopping_.load() || !full(); });
      --p.space_waiters;
      if (stopping_.load()) {
        return absl::FailedPreconditionError("InMemoryBus: stopped while waiting for room to publish");
      }
      if (full()) {
        return absl::ResourceExhaustedError(herald::StrCat(
            "InMemoryBus: partition ", index, " of topic ", topic->name, " stayed full for ",
            absl::FormatDuration(options.publish_block_timeout),
            "; Hint: consumers are behind or stopped, retry later or raise max_pending_per_partition"));
      }
    }
    const int64_t offset = p.end_offset();
    p.log.push_back(std::move(envelope));
    p.end_hint.store(offset + 1, std::memory_order_release);
    if (p.cursors.empty()) p.Trim(options.retention_per_partition);
    // Wake sleeping delivery threads after unlocking, so that they do not
    // wake up only to wait for this lock. Cursors are never destroyed.
    for (auto& cursor : p.cursors) {
      if (cursor->waiters > 0) to_wake.push_back(&cursor->cv);
    }
    return DeliveryReport{topic->name, index, offset};
  }();
  for (CondVar* cv : to_wake) cv->NotifyAll();
  done(std::move(report));
  if (publishes_in_flight_.fetch_sub(1) == 1 && flush_waiters_.load() > 0) {
    MutexLock lock(flush_mu_);
    flush_cv_.NotifyAll();
  }
}

absl::Status InMemoryBus::AddSubscription(Subscription subscription) {
  if (subscription.topics.empty()) return absl::InvalidArgumentError("AddSubscription: no topics");
  for (const std::string& t : subscription.topics) {
    if (t.empty()) return absl::InvalidArgumentError("AddSubscription: empty topic name");
  }
  if (subscription.group.empty()) return absl::InvalidArgumentError("AddSubscription: consumer group is empty");
  if (!subscription.handler) return absl::InvalidArgumentError("AddSubscription: handler is empty");
  std::sort(subscription.topics.begin(), subscription.topics.end());
  subscription.topics.erase(std::unique(subscription.topics.begin(), subscription.topics.end()),
                            subscription.topics.end());
  auto member = std::make_unique<Member>();
  member->id = broker_->NextMemberId();
  member->subscription = std::move(subscription);
  MutexLock lock(mu_);
  if (stopped_) return absl::FailedPreconditionError("AddSubscription: the bus is stopped; make a new bus");
  members_.push_back(std::move(member));
  if (started_) JoinAndStart(*members_.back());
  return absl::OkStatus();
}

absl::Status InMemoryBus::Start() {
  MutexLock lock(mu_);
  if (stopped_) return absl::FailedPreconditionError("InMemoryBus: Start() after Stop(); make a new bus");
  if (started_) return absl::OkStatus();
  started_ = true;
  for (auto& member : members_) JoinAndStart(*member);
  return absl::OkStatus();
}

void InMemoryBus::JoinAndStart(Member& member) {
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
      raw->thread = std::thread(&InMemoryBus::RunWorker, this, raw);
    }
  }
}

bool InMemoryBus::WaitForWork(Worker& w) {
  InMemoryBroker::Partition& p = *w.slot.partition;
  InMemoryBroker::GroupCursor& c = *w.slot.cursor;
  MutexLock lock(p.mu);
  auto ready = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return c.assigned == w.member_id && !c.busy && c.next_offset < p.end_offset();
  };
  while (!stopping_.load()) {
    if (!ready() && c.assigned == w.member_id && !c.busy) {
      // Caught up: spin a little before sleeping.
      const int64_t next = c.next_offset;
      p.mu.Unlock();
      for (int i = 0; i < kSpinYields; ++i) {
        if (p.end_hint.load(std::memory_order_acquire) > next || stopping_.load(std::memory_order_relaxed)) break;
        std::this_thread::yield();
      }
      p.mu.Lock();
    }
    if (!ready()) {
      ++c.waiters;
      c.cv.Wait(p.mu, [&] { return stopping_.load() || ready(); });
      --c.waiters;
      continue;
    }
    absl::Time now = absl::Now();
    if (c.retry_due <= now) return true;
    ++c.waiters;
    c.cv.WaitFor(p.mu, ClampWait(c.retry_due - now), [&] { return stopping_.load(); });
    --c.waiters;
  }
  return false;
}

int64_t InMemoryBus::DeliverBatch(Worker& w, int64_t max_batch) {
  InMemoryBroker::Partition& p = *w.slot.partition;
  InMemoryBroker::GroupCursor& c = *w.slot.cursor;
  int64_t count = 0;
  uint64_t lease = 0;
  {
    MutexLock lock(p.mu);
    if (c.assigned != w.member_id || c.busy || c.retry_due > Now()) return 0;
    if (c.next_offset < p.start_offset) c.next_offset = p.start_offset;  // dropped by retention
    count = std::min(max_batch, p.end_offset() - c.next_offset);
    if (count <= 0) return 0;
    if (static_cast<int64_t>(w.batch.size()) < count) w.batch.resize(count);
    const int64_t first = c.next_offset - p.start_offset;
    for (int64_t i = 0; i < count; ++i) {
      Message& m = w.batch[i];
      m.envelope = p.log[first + i];
      m.topic = w.slot.topic;
      m.partition = w.slot.partition_index;
      m.offset = c.next_offset + i;
      m.group = c.group;
      m.attempt = i == 0 ? c.attempt : 1;
    }
    c.busy = true;
    lease = ++c.lease;
    w.in_handler = true;
    w.lease = lease;
  }
  int64_t acked = 0, calls = 0;
  bool retry = false;
  absl::Duration delay;
  for (int64_t i = 0; i < count; ++i) {
    if (i > 0 && stopping_.load(std::memory_order_relaxed)) break;  // stop fetching; the rest stays uncommitted
    Verdict verdict = CallHandler(w.handler, w.batch[i]);
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
  if (c.lease != lease) return calls;  // abandoned by Stop(): the group redelivers
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
  p.Trim(broker_->options().retention_per_partition);
  if (p.space_waiters > 0 && static_cast<int64_t>(p.log.size()) < broker_->options().max_pending_per_partition) {
    p.space_cv.NotifyAll();
  }
  // The partition may have moved to another subscription while we held it.
  if (c.assigned != w.member_id && c.waiters > 0) c.cv.NotifyAll();
  return calls;
}

void InMemoryBus::RunWorker(Worker* worker) {
  while (WaitForWork(*worker)) DeliverBatch(*worker, kMaxBatch);
  MutexLock lock(mu_);
  --running_workers_;
  workers_cv_.NotifyAll();
}

int64_t InMemoryBus::RunPending(int64_t max_deliveries) {
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
    absl::Duration wait = next_due - defaults().clock->Now();
    if (wait > absl::ZeroDuration()) defaults().clock->SleepFor(wait);
  }
  return handled;
}

absl::Status InMemoryBus::Stop(absl::Duration drain_deadline) {
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
                                  [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return running_workers_ == 0; });
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
        if (c.waiters > 0) c.cv.NotifyAll();
      }
    }
    return absl::DeadlineExceededError(
        "InMemoryBus::Stop: a handler was still running at the drain deadline; its message goes back to the "
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

absl::Status InMemoryBus::Flush(absl::Duration timeout) {
  flush_waiters_.fetch_add(1);
  bool done;
  {
    MutexLock lock(flush_mu_);
    done = flush_cv_.WaitFor(flush_mu_, ClampWait(timeout), [&] { return publishes_in_flight_.load() == 0; });
  }
  flush_waiters_.fetch_sub(1);
  if (!done) return absl::DeadlineExceededError("InMemoryBus::Flush: publishes still in progress at the timeout");
  return absl::OkStatus();
}

}  // namespace herald
