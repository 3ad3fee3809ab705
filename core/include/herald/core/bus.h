// herald/core/bus.h: the message bus abstraction that every transport
// implements (in-process, Kafka, the testing FakeBus).
//
//   herald::InMemoryBus bus;                     // or herald::kafka::KafkaBus
//   bus.Subscribe<CustomerEvent>("event-reader",
//       [](const CustomerEvent& e) -> absl::Status { ...; return absl::OkStatus(); });
//   bus.Start();
//   absl::StatusOr<herald::DeliveryReport> r = bus.Publish(CustomerEvent{...});
//   bus.Stop(absl::Seconds(5));
//
// A transport implements five primitives (PublishAsync, AddSubscription,
// Start, Stop, Flush) and only moves bytes, reports delivery and redelivers
// when told. Everything else (typed encoding, decoding, retries with backoff,
// dead letters, middleware) is here in core, the same for every transport:
// Subscribe() wraps the user's handler in a Dispatcher (dispatcher.h).
//
// Thread-safety: every method may be called from any thread, concurrently.
// Handlers run on transport threads: concurrently for different partitions,
// one at a time and in offset order within a partition.
#ifndef HERALD_CORE_BUS_H_
#define HERALD_CORE_BUS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "herald/core/clock.h"
#include "herald/core/dispatcher.h"
#include "herald/core/envelope.h"
#include "herald/core/event.h"
#include "herald/core/message.h"
#include "herald/core/mutex.h"

namespace herald {

// Where a published event was stored.
struct DeliveryReport {
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
};

// Called exactly once per PublishAsync, on a transport thread, when the event
// is durably accepted (OK) or definitively failed.
using PublishCallback = absl::AnyInvocable<void(absl::StatusOr<DeliveryReport>)>;

// What a transport attaches: topics, consumer group and a message-level
// handler. Built by Bus::Subscribe; transports see only this.
struct Subscription {
  std::vector<std::string> topics;
  // Consumer group: each group receives every event once; within a group each
  // event goes to one subscriber.
  std::string group;
  // Called serially per partition. kAck commits; kRetry redelivers the same
  // message (attempt + 1) after the delay, holding back the rest of its
  // partition.
  MessageHandler handler;
  // Where a transport sends records it cannot even decode into an envelope
  // (the dispatcher dead-letters everything else). Set by Bus::Subscribe from
  // SubscribeOptions; build the record with AddDeadLetterHeaders.
  DeadLetterPolicy dead_letter;
};

// Identity and defaults a bus stamps on the envelopes it makes from typed
// events.
struct BusDefaults {
  // CloudEvents source of published events. Default: "herald".
  std::string source = "herald";
  // Clock for ids, times and backoff. Must outlive the bus. Default: system.
  const Clock* clock = &SystemClock();
};

class Bus {
 public:
  explicit Bus(BusDefaults defaults = {}) : defaults_(std::move(defaults)) {}
  virtual ~Bus() = default;
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;

  // ---- Transport primitives ----

  // Hands `envelope` to the transport and returns at once (or blocks while a
  // bounded queue is full, as the transport's options say). `done` runs once
  // with the outcome. Publishing before Start() is allowed; after Stop() it
  // fails with kFailedPrecondition.
  virtual void PublishAsync(Envelope envelope, PublishCallback done) = 0;
  // Attaches a message-level subscription; most code calls Subscribe instead.
  // kInvalidArgument for no topics, an empty group or no handler.
  virtual absl::Status AddSubscription(Subscription subscription) = 0;
  // Starts consuming. Idempotent.
  virtual absl::Status Start() = 0;
  // Stops consuming and publishing: stops fetching, lets in-flight handlers
  // finish until `drain_deadline`, delivers what publishers had accepted,
  // commits, leaves consumer groups. kDeadlineExceeded when work was
  // abandoned (it will be redelivered to the group later). Idempotent.
  virtual absl::Status Stop(absl::Duration drain_deadline) = 0;
  // Waits until every accepted publish has its outcome, up to `timeout`.
  virtual absl::Status Flush(absl::Duration timeout) = 0;

  // ---- Conveniences built on the primitives ----

  // Publishes and blocks until the outcome is known.
  absl::StatusOr<DeliveryReport> Publish(Envelope envelope);

  // Publishes a typed event (envelope made by MakeEnvelope with this bus's
  // defaults).
  template <Event T>
  absl::StatusOr<DeliveryReport> Publish(const T& event, EnvelopeOptions options = {}) {
    return Publish(MakeEnvelope(event, WithDefaults(std::move(options))));
  }
  template <Event T>
  void PublishAsync(const T& event, PublishCallback done, EnvelopeOptions options = {}) {
    PublishAsync(MakeEnvelope(event, WithDefaults(std::move(options))), std::move(done));
  }

  // Publishes bytes under a type name, like the seed's PublishRaw. `payload`
  // may also be a Go service's whole JSON envelope of `type` (evt.ToJSON()):
  // its id, time and payload are then kept (UnwrapJsonEnvelope, wire.h).
  absl::StatusOr<DeliveryReport> PublishRaw(std::string_view topic, std::string_view type, std::string_view payload,
                                            std::string_view key = {});

  // Subscribes a raw handler with herald's policy (retries, dead letters,
  // middleware) from `options`. `options.topics` must not be empty.
  absl::Status Subscribe(SubscribeOptions options, Handler handler);

  // Subscribes a typed handler for T in consumer `group`: on T's topic (or
  // `options.topics`), it receives the envelopes whose type is one of T's;
  // other types on the topic are acknowledged and skipped (route several types
  // through an EventRouter to handle them all). `handler` is any callable
  // taking (const T&) or (const T&, const Message&) and returning
  // absl::Status, or an EventHandler<T>& / shared_ptr<EventHandler<T>>.
  template <Event T, typename F>
  absl::Status Subscribe(std::string group, F&& handler, SubscribeOptions options = {}) {
    options.group = std::move(group);
    if (options.topics.empty()) options.topics.push_back(std::string(EventTraits<T>::Topic()));
    options.skip_unknown_types = true;
    options.accepted_types.clear();
    for (std::string_view name : EventTraits<T>::TypeNames()) options.accepted_types.emplace_back(name);
    Handler typed = TypedHandler<T>(std::forward<F>(handler), options.registry);
    return Subscribe(std::move(options), std::move(typed));
  }

  // Counters of each subscription made through Subscribe, in order.
  struct SubscriptionStats {
    std::string group;
    std::vector<std::string> topics;
    int64_t handled = 0, retried = 0, dead_lettered = 0, skipped = 0, failed = 0;
  };
  std::vector<SubscriptionStats> Stats() const;

  const BusDefaults& defaults() const { return defaults_; }

 private:
  EnvelopeOptions WithDefaults(EnvelopeOptions options) const {
    if (options.clock == nullptr) options.clock = defaults_.clock;
    if (options.source.empty()) options.source = defaults_.source;
    return options;
  }

  BusDefaults defaults_;
  mutable Mutex dispatchers_mu_;
  std::vector<std::shared_ptr<Dispatcher>> dispatchers_ ABSL_GUARDED_BY(dispatchers_mu_);
};

}  // namespace herald

#endif  // HERALD_CORE_BUS_H_
