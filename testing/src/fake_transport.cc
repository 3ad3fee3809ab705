#include "herald/testing/fake_transport.h"

#include <algorithm>
#include <deque>
#include <iterator>
#include <utility>

#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/core/wire.h"

namespace herald::testing {
namespace internal {

struct FakeTransportWork {
  // A claimed delivery: `target`'s `handler` gets `message`.
  FakeTransport* target = nullptr;
  RecordHandler handler;
  Message message;
  // Otherwise (target null) one step of `group`'s catch-up on `topic`.
  std::string group;
  std::string topic;
};

}  // namespace internal

namespace {

using Work = internal::FakeTransportWork;

// The clusters this thread is delivering for, each with the work that its
// handlers queued (see "Reentrancy" in fake_transport.h).
struct ActiveDrain {
  const FakeCluster* cluster;
  std::deque<Work>* queue;
};
thread_local std::vector<ActiveDrain> active_drains;

// Deliveries claimed by this thread and not finished, per target bus. A
// thread claims only what it delivers itself, so Stop and the destructor can
// tell other threads' deliveries (waited for) from this thread's own.
thread_local std::map<const FakeTransport*, int64_t> claimed_here;

std::deque<Work>* ActiveQueue(const FakeCluster* cluster) {
  for (const ActiveDrain& a : active_drains) {
    if (a.cluster == cluster) return a.queue;
  }
  return nullptr;
}

int64_t ClaimedHere(const FakeTransport* bus) {
  auto it = claimed_here.find(bus);
  return it == claimed_here.end() ? 0 : it->second;
}

bool Reads(const TransportSubscription& s, std::string_view topic) {
  return std::find(s.topics.begin(), s.topics.end(), topic) != s.topics.end();
}

}  // namespace

// ------------------------------------------------------------ FakeCluster ---

FakeCluster::FakeCluster() = default;
FakeCluster::~FakeCluster() = default;

std::vector<Envelope> FakeCluster::records(std::string_view topic) const {
  MutexLock lock(mu_);
  auto it = topics_.find(topic);
  return it == topics_.end() ? std::vector<Envelope>{} : it->second.records;
}

int64_t FakeCluster::committed_offset(std::string_view group, std::string_view topic) const {
  MutexLock lock(mu_);
  const GroupState* g = FindGroup(group, topic);
  return g == nullptr ? -1 : g->next;
}

int64_t FakeCluster::lag(std::string_view group, std::string_view topic) const {
  MutexLock lock(mu_);
  const GroupState* g = FindGroup(group, topic);
  if (g == nullptr) return 0;
  return static_cast<int64_t>(topics_.find(topic)->second.records.size()) - g->next;
}

FakeCluster::Member* FakeCluster::PickMember(GroupState& group, const std::string& topic) {
  std::vector<Member*> live;
  for (Member& m : members_) {
    if (m.live && m.subscription.group == group.group && Reads(m.subscription, topic)) live.push_back(&m);
  }
  if (live.empty()) return nullptr;
  return live[group.round_robin++ % live.size()];
}

FakeCluster::GroupState* FakeCluster::FindGroup(std::string_view group, std::string_view topic) {
  auto it = topics_.find(topic);
  if (it == topics_.end()) return nullptr;
  for (GroupState& g : it->second.groups) {
    if (g.group == group) return &g;
  }
  return nullptr;
}

const FakeCluster::GroupState* FakeCluster::FindGroup(std::string_view group, std::string_view topic) const {
  return const_cast<FakeCluster*>(this)->FindGroup(group, topic);
}

// ---------------------------------------------------------------- FakeTransport ---

FakeTransport::FakeTransport(FakeTransportOptions options)
    : options_(std::move(options)),
      cluster_(options_.cluster != nullptr ? options_.cluster : std::make_shared<FakeCluster>()) {}

FakeTransport::~FakeTransport() {
  {
    MutexLock lock(cluster_->mu_);
    std::erase_if(cluster_->members_, [this](const FakeCluster::Member& m) { return m.bus == this; });
  }
  WaitForOtherDeliveries(absl::InfiniteDuration());
  MutexLock lock(cluster_->mu_);
  cluster_->in_flight_.erase(this);
}

void FakeTransport::Publish(Envelope envelope, PublishCallback done) {
  if (!done) done = [](absl::StatusOr<DeliveryReport>) {};
  std::function<absl::Status(const Envelope&)> hook;
  absl::Status rejected;
  {
    MutexLock lock(mu_);
    if (stopped_) {
      rejected = absl::FailedPreconditionError("FakeTransport: publish after Stop()");
    } else if (fail_next_ > 0) {
      --fail_next_;
      rejected = fail_next_status_;
    } else if (auto it = fail_topics_.find(envelope.topic); it != fail_topics_.end()) {
      rejected = it->second;
    }
    hook = hook_;
  }
  if (!rejected.ok()) {
    done(rejected);
    return;
  }
  if (hook) {
    if (absl::Status s = hook(envelope); !s.ok()) {
      done(s);
      return;
    }
  }
  if (envelope.topic.empty()) {
    done(absl::InvalidArgumentError("FakeTransport: envelope has no topic"));
    return;
  }
  DeliveryReport report;
  std::vector<Pending> claims;
  {
    MutexLock lock(mu_);
    MutexLock cluster_lock(cluster_->mu_);
    FakeCluster::TopicState& topic = cluster_->topics_[envelope.topic];
    report.topic = envelope.topic;
    report.partition = 0;
    report.offset = static_cast<int64_t>(topic.records.size());
    topic.records.push_back(envelope);
    for (FakeCluster::GroupState& group : topic.groups) {
      // A group that is catching up gets this record from the thread doing
      // it; one with no live member keeps it (the committed offset stays).
      if (group.catching_up || group.next != report.offset) continue;
      FakeCluster::Member* member = cluster_->PickMember(group, envelope.topic);
      if (member == nullptr) continue;
      claims.push_back(Claim(*member, group.group, envelope, report.offset));
      group.next = report.offset + 1;
    }
    published_.push_back(std::move(envelope));
  }
  done(report);
  Run(std::move(claims));
}

FakeTransport::Pending FakeTransport::Claim(FakeCluster::Member& member, const std::string& group, const Envelope& record,
                                int64_t offset) {
  Pending work;
  work.target = member.bus;
  work.handler = member.subscription.handler;
  work.message.envelope = record;
  work.message.topic = record.topic;
  work.message.partition = 0;
  work.message.offset = offset;
  work.message.group = group;
  work.message.attempt = 1;
  ++cluster_->in_flight_[member.bus];
  ++claimed_here[member.bus];
  return work;
}

void FakeTransport::Join(FakeCluster::Member& member, std::vector<Pending>& steps) {
  member.live = true;
  for (const std::string& topic_name : member.subscription.topics) {
    FakeCluster::TopicState& topic = cluster_->topics_[topic_name];
    const int64_t end = static_cast<int64_t>(topic.records.size());
    FakeCluster::GroupState* group = cluster_->FindGroup(member.subscription.group, topic_name);
    if (group == nullptr) {
      FakeCluster::GroupState joined;
      joined.group = member.subscription.group;
      joined.next = options_.auto_offset_reset == AutoOffsetReset::kEarliest ? 0 : end;
      topic.groups.push_back(std::move(joined));
      group = &topic.groups.back();
    }
    if (!group->catching_up && group->next < end) {
      group->catching_up = true;
      Pending step;
      step.group = group->group;
      step.topic = topic_name;
      steps.push_back(std::move(step));
    }
  }
}

void FakeTransport::Run(std::vector<Pending> work) {
  if (work.empty()) return;
  if (std::deque<Pending>* queue = ActiveQueue(cluster_.get())) {
    for (Pending& w : work) queue->push_back(std::move(w));
    return;
  }
  std::deque<Pending> queue(std::make_move_iterator(work.begin()), std::make_move_iterator(work.end()));
  active_drains.push_back({cluster_.get(), &queue});
  while (!queue.empty()) {
    Pending next = std::move(queue.front());
    queue.pop_front();
    RunOne(std::move(next), queue);
  }
  active_drains.pop_back();
}

void FakeTransport::RunOne(Pending item, std::deque<Pending>& queue) {
  if (item.target != nullptr) {
    Deliver(item);
    return;
  }
  // One catch-up step: the group's next retained record, if a member is live.
  Pending delivery;
  {
    MutexLock lock(cluster_->mu_);
    FakeCluster::GroupState* group = cluster_->FindGroup(item.group, item.topic);
    if (group == nullptr) return;
    const std::vector<Envelope>& records = cluster_->topics_.find(item.topic)->second.records;
    FakeCluster::Member* member = nullptr;
    if (group->next < static_cast<int64_t>(records.size())) member = cluster_->PickMember(*group, item.topic);
    if (member == nullptr) {
      group->catching_up = false;
      return;
    }
    delivery = Claim(*member, group->group, records[group->next], group->next);
    ++group->next;
  }
  Deliver(delivery);
  // After what the handler queued, so deliveries keep publish order.
  queue.push_back(std::move(item));
}

void FakeTransport::Deliver(Pending& delivery) {
  FakeTransport* target = delivery.target;
  target->DeliverToGroup(delivery.handler, std::move(delivery.message));
  {
    MutexLock lock(cluster_->mu_);
    --cluster_->in_flight_[target];
  }
  if (--claimed_here[target] == 0) claimed_here.erase(target);
  cluster_->delivery_ended_.NotifyAll();
}

void FakeTransport::DeliverToGroup(const RecordHandler& handler, Message message) {
  for (int delivery = 1;; ++delivery) {
    {
      MutexLock lock(mu_);
      ++deliveries_;
    }
    ReceivedRecord record;
    record.topic = message.topic;
    record.partition = message.partition;
    record.offset = message.offset;
    record.group = message.group;
    record.attempt = message.attempt;
    record.envelope = &message.envelope;
    Verdict verdict = handler(record);
    if (verdict.is_ack()) return;
    {
      MutexLock lock(mu_);
      retry_delays_.push_back(verdict.delay);
    }
    if (options_.clock_to_advance != nullptr && verdict.delay > absl::ZeroDuration()) {
      options_.clock_to_advance->Advance(verdict.delay);
    }
    if (delivery >= options_.max_deliveries) {
      MutexLock lock(mu_);
      abandoned_.push_back(std::move(message));
      return;
    }
    ++message.attempt;
  }
}

bool FakeTransport::WaitForOtherDeliveries(absl::Duration timeout) {
  const int64_t mine = ClaimedHere(this);
  MutexLock lock(cluster_->mu_);
  auto others_done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(cluster_->mu_) {
    auto it = cluster_->in_flight_.find(this);
    return it == cluster_->in_flight_.end() || it->second <= mine;
  };
  if (timeout == absl::InfiniteDuration()) {
    cluster_->delivery_ended_.Wait(cluster_->mu_, others_done);
    return true;
  }
  return cluster_->delivery_ended_.WaitFor(cluster_->mu_, timeout, others_done);
}

void FakeTransport::PublishRecord(std::string topic, Record record, PublishCallback done) {
  absl::StatusOr<Envelope> envelope = DecodeRecord(topic, record.key, record.value, record.headers);
  if (!envelope.ok()) {
    if (done) {
      done(absl::InvalidArgumentError(herald::StrCat(
          "FakeTransport: carries envelopes only, and this record does not decode: ", envelope.status().message())));
    }
    return;
  }
  envelope->topic = std::move(topic);
  Publish(*std::move(envelope), std::move(done));
}

absl::Status FakeTransport::Subscribe(TransportSubscription subscription) {
  HERALD_RETURN_IF_ERROR(ValidateSubscription(subscription));
  std::vector<Pending> steps;
  {
    MutexLock lock(mu_);
    MutexLock cluster_lock(cluster_->mu_);
    cluster_->members_.push_back({this, std::move(subscription), false});
    if (!stopped_) Join(cluster_->members_.back(), steps);
  }
  Run(std::move(steps));
  return absl::OkStatus();
}

absl::Status FakeTransport::Start() {
  std::vector<Pending> steps;
  {
    MutexLock lock(mu_);
    stopped_ = false;
    MutexLock cluster_lock(cluster_->mu_);
    for (FakeCluster::Member& member : cluster_->members_) {
      if (member.bus == this && !member.live) Join(member, steps);
    }
  }
  Run(std::move(steps));
  return absl::OkStatus();
}

absl::Status FakeTransport::Stop(absl::Duration drain_deadline) {
  {
    MutexLock lock(mu_);
    stopped_ = true;
    MutexLock cluster_lock(cluster_->mu_);
    for (FakeCluster::Member& member : cluster_->members_) {
      if (member.bus == this) member.live = false;
    }
  }
  if (!WaitForOtherDeliveries(drain_deadline)) {
    return absl::DeadlineExceededError(herald::StrCat(
        "FakeTransport: Stop: handlers still running on other threads after ", absl::FormatDuration(drain_deadline),
        "; their messages count as handled (the group's offset is past them)"));
  }
  return absl::OkStatus();
}

absl::Status FakeTransport::Flush(absl::Duration) { return absl::OkStatus(); }

std::vector<Envelope> FakeTransport::published() const {
  MutexLock lock(mu_);
  return published_;
}

std::vector<Envelope> FakeTransport::published(std::string_view topic) const {
  MutexLock lock(mu_);
  std::vector<Envelope> out;
  for (const Envelope& e : published_) {
    if (e.topic == topic) out.push_back(e);
  }
  return out;
}

std::vector<absl::Duration> FakeTransport::retry_delays() const {
  MutexLock lock(mu_);
  return retry_delays_;
}

std::vector<Message> FakeTransport::abandoned() const {
  MutexLock lock(mu_);
  return abandoned_;
}

int64_t FakeTransport::delivery_count() const {
  MutexLock lock(mu_);
  return deliveries_;
}

void FakeTransport::Clear() {
  MutexLock lock(mu_);
  published_.clear();
  retry_delays_.clear();
  abandoned_.clear();
  deliveries_ = 0;
}

void FakeTransport::FailNextPublishes(int n, absl::Status status) {
  MutexLock lock(mu_);
  fail_next_ = n;
  fail_next_status_ = std::move(status);
}

void FakeTransport::FailPublishesTo(std::string_view topic, absl::Status status) {
  MutexLock lock(mu_);
  if (status.ok()) {
    if (auto it = fail_topics_.find(topic); it != fail_topics_.end()) fail_topics_.erase(it);
  } else {
    fail_topics_[std::string(topic)] = std::move(status);
  }
}

void FakeTransport::SetPublishHook(std::function<absl::Status(const Envelope&)> hook) {
  MutexLock lock(mu_);
  hook_ = std::move(hook);
}

}  // namespace herald::testing
