#include "herald/testing/fake_bus.h"

#include <deque>
#include <utility>

#include "herald/core/strings.h"

namespace herald::testing {
namespace {

struct QueuedDelivery {
  Envelope envelope;
  int64_t offset = 0;
};

// The buses this thread is delivering for, each with the deliveries that its
// handlers' publishes queued (see "Reentrancy" in fake_bus.h).
struct ActiveDelivery {
  const FakeBus* bus;
  std::deque<QueuedDelivery>* queue;
};
thread_local std::vector<ActiveDelivery> active_deliveries;

std::deque<QueuedDelivery>* ActiveQueue(const FakeBus* bus) {
  for (const ActiveDelivery& a : active_deliveries) {
    if (a.bus == bus) return a.queue;
  }
  return nullptr;
}

}  // namespace

FakeBus::FakeBus(FakeBusOptions options) : Bus(options.defaults), options_(std::move(options)) {}

FakeBus::~FakeBus() = default;

void FakeBus::PublishAsync(Envelope envelope, PublishCallback done) {
  std::function<absl::Status(const Envelope&)> hook;
  absl::Status rejected;
  {
    MutexLock lock(mu_);
    if (stopped_) {
      rejected = absl::FailedPreconditionError("FakeBus: publish after Stop()");
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
    done(absl::InvalidArgumentError("FakeBus: envelope has no topic"));
    return;
  }
  DeliveryReport report;
  {
    MutexLock lock(mu_);
    report.topic = envelope.topic;
    report.partition = 0;
    report.offset = next_offset_[envelope.topic]++;
    published_.push_back(envelope);
  }
  done(report);

  if (std::deque<QueuedDelivery>* queue = ActiveQueue(this)) {
    queue->push_back({std::move(envelope), report.offset});
    return;
  }
  std::deque<QueuedDelivery> queue;
  active_deliveries.push_back({this, &queue});
  queue.push_back({std::move(envelope), report.offset});
  while (!queue.empty()) {
    QueuedDelivery next = std::move(queue.front());
    queue.pop_front();
    Deliver(next.envelope, next.offset);
  }
  active_deliveries.pop_back();
}

void FakeBus::Deliver(const Envelope& envelope, int64_t offset) {
  std::vector<std::pair<std::string, MessageHandler>> targets;
  {
    MutexLock lock(mu_);
    std::vector<std::string> groups;
    for (const Subscription& s : subscriptions_) {
      bool reads_topic = std::find(s.topics.begin(), s.topics.end(), envelope.topic) != s.topics.end();
      if (reads_topic && std::find(groups.begin(), groups.end(), s.group) == groups.end()) {
        groups.push_back(s.group);
      }
    }
    for (const std::string& group : groups) {
      std::vector<const Subscription*> members;
      for (const Subscription& s : subscriptions_) {
        if (s.group == group && std::find(s.topics.begin(), s.topics.end(), envelope.topic) != s.topics.end()) {
          members.push_back(&s);
        }
      }
      uint64_t& turn = round_robin_[{envelope.topic, group}];
      targets.emplace_back(group, members[turn % members.size()]->handler);
      ++turn;
    }
  }
  for (auto& [group, handler] : targets) {
    Message message;
    message.envelope = envelope;
    message.topic = envelope.topic;
    message.partition = 0;
    message.offset = offset;
    message.group = group;
    message.attempt = 1;
    DeliverToGroup(handler, std::move(message));
  }
}

void FakeBus::DeliverToGroup(const MessageHandler& handler, Message message) {
  for (int delivery = 1;; ++delivery) {
    {
      MutexLock lock(mu_);
      ++deliveries_;
    }
    Verdict verdict = handler(message);
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

absl::Status FakeBus::AddSubscription(Subscription subscription) {
  if (subscription.topics.empty()) return absl::InvalidArgumentError("FakeBus: subscription has no topics");
  for (const std::string& topic : subscription.topics) {
    if (topic.empty()) return absl::InvalidArgumentError("FakeBus: subscription has an empty topic");
  }
  if (subscription.group.empty()) return absl::InvalidArgumentError("FakeBus: subscription has no consumer group");
  if (!subscription.handler) return absl::InvalidArgumentError("FakeBus: subscription has no handler");
  MutexLock lock(mu_);
  subscriptions_.push_back(std::move(subscription));
  return absl::OkStatus();
}

absl::Status FakeBus::Start() {
  MutexLock lock(mu_);
  stopped_ = false;
  return absl::OkStatus();
}

absl::Status FakeBus::Stop(absl::Duration) {
  MutexLock lock(mu_);
  stopped_ = true;
  return absl::OkStatus();
}

absl::Status FakeBus::Flush(absl::Duration) { return absl::OkStatus(); }

std::vector<Envelope> FakeBus::published() const {
  MutexLock lock(mu_);
  return published_;
}

std::vector<Envelope> FakeBus::published(std::string_view topic) const {
  MutexLock lock(mu_);
  std::vector<Envelope> out;
  for (const Envelope& e : published_) {
    if (e.topic == topic) out.push_back(e);
  }
  return out;
}

std::vector<absl::Duration> FakeBus::retry_delays() const {
  MutexLock lock(mu_);
  return retry_delays_;
}

std::vector<Message> FakeBus::abandoned() const {
  MutexLock lock(mu_);
  return abandoned_;
}

int64_t FakeBus::delivery_count() const {
  MutexLock lock(mu_);
  return deliveries_;
}

void FakeBus::Clear() {
  MutexLock lock(mu_);
  published_.clear();
  retry_delays_.clear();
  abandoned_.clear();
  deliveries_ = 0;
}

void FakeBus::FailNextPublishes(int n, absl::Status status) {
  MutexLock lock(mu_);
  fail_next_ = n;
  fail_next_status_ = std::move(status);
}

void FakeBus::FailPublishesTo(std::string_view topic, absl::Status status) {
  MutexLock lock(mu_);
  if (status.ok()) {
    if (auto it = fail_topics_.find(topic); it != fail_topics_.end()) fail_topics_.erase(it);
  } else {
    fail_topics_[std::string(topic)] = std::move(status);
  }
}

void FakeBus::SetPublishHook(std::function<absl::Status(const Envelope&)> hook) {
  MutexLock lock(mu_);
  hook_ = std::move(hook);
}

}  // namespace herald::testing
