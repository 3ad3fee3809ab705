#include "herald/core/bus.h"
#include "herald/core/status.h"
#include "herald/core/wire.h"

#include <future>

namespace herald {

absl::StatusOr<DeliveryReport> Bus::Publish(Envelope envelope) {
  std::promise<absl::StatusOr<DeliveryReport>> promise;
  std::future<absl::StatusOr<DeliveryReport>> result = promise.get_future();
  PublishAsync(std::move(envelope),
               [&promise](absl::StatusOr<DeliveryReport> report) { promise.set_value(std::move(report)); });
  return result.get();
}

absl::StatusOr<DeliveryReport> Bus::PublishRaw(std::string_view topic, std::string_view type,
                                               std::string_view payload, std::string_view key) {
  if (topic.empty()) return absl::InvalidArgumentError("PublishRaw: topic is empty");
  if (type.empty()) return absl::InvalidArgumentError("PublishRaw: event type is empty");
  Envelope e;
  e.time = defaults_.clock->Now();
  e.id = NewUuidV7(e.time);
  e.type = std::string(type);
  e.topic = std::string(topic);
  e.key = std::string(key);
  e.source = defaults_.source;
  e.payload = std::string(payload);
  UnwrapJsonEnvelope(e);  // a Go service's evt.ToJSON() keeps its id, time and payload
  PropagateContext(e.headers);
  return Publish(std::move(e));
}

absl::Status Bus::Subscribe(SubscribeOptions options, Handler handler) {
  if (options.group.empty()) return absl::InvalidArgumentError("Subscribe: consumer group is empty");
  if (options.topics.empty()) return absl::InvalidArgumentError("Subscribe: no topics");
  if (!handler) return absl::InvalidArgumentError("Subscribe: handler is empty");
  if (options.retry.max_attempts < 1) {
    return absl::InvalidArgumentError("Subscribe: retry.max_attempts must be at least 1");
  }
  Subscription subscription;
  subscription.topics = options.topics;
  subscription.group = options.group;
  subscription.dead_letter = options.dead_letter;
  auto dispatcher = std::make_shared<Dispatcher>(*this, std::move(options), std::move(handler), *defaults_.clock);
  subscription.handler = [dispatcher](const Message& m) { return dispatcher->Dispatch(m); };
  HERALD_RETURN_IF_ERROR(AddSubscription(std::move(subscription)));
  MutexLock lock(dispatchers_mu_);
  dispatchers_.push_back(std::move(dispatcher));
  return absl::OkStatus();
}

std::vector<Bus::SubscriptionStats> Bus::Stats() const {
  MutexLock lock(dispatchers_mu_);
  std::vector<SubscriptionStats> out;
  for (const auto& d : dispatchers_) {
    SubscriptionStats s;
    s.group = d->options().group;
    s.topics = d->options().topics;
    s.handled = d->stats().handled.load(std::memory_order_relaxed);
    s.retried = d->stats().retried.load(std::memory_order_relaxed);
    s.dead_lettered = d->stats().dead_lettered.load(std::memory_order_relaxed);
    s.skipped = d->stats().skipped.load(std::memory_order_relaxed);
    s.failed = d->stats().failed.load(std::memory_order_relaxed);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace herald
