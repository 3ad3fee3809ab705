// herald/core/bus.h: the one facade applications publish and subscribe
// through, over any transport.
//
//   herald::Bus bus(std::make_unique<herald::inmemory::InMemoryTransport>());
//   HERALD_RETURN_IF_ERROR(bus.Subscribe<CustomerEvent>("event-reader",
//       [](const CustomerEvent& e) -> absl::Status { return Project(e); }));
//   HERALD_RETURN_IF_ERROR(bus.Start());
//   absl::StatusOr<herald::DeliveryReport> r = bus.Publish(CustomerEvent{.customer_id = "cust-42"});
//   HERALD_RETURN_IF_ERROR(r.status());
//   HERALD_RETURN_IF_ERROR(bus.Stop(absl::Seconds(5)));
//
// A Bus owns one Transport (transport.h), which only moves bytes, reports
// delivery and redelivers when told. Everything else is here, the same for
// every transport: typed encoding, decoding, middleware, calling handlers,
// retries with backoff, dead letters, skipping, statistics (Subscribe wraps
// each handler in a Dispatcher, dispatcher.h). A transport's own extras
// (Kafka statistics, in-process lag, a fake's recorded publishes) are reached
// through transport<T>().
//
// Thread-safety: every method may be called from any thread, concurrently.
// Handlers run on transport threads: concurrently for different partitions,
// one at a time and in offset order within a partition.
#ifndef HERALD_CORE_BUS_H_
#define HERALD_CORE_BUS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "herald/core/clock.h"
#include "herald/core/dispatcher.h"
#include "herald/core/envelope.h"
#include "herald/core/event.h"
#include "herald/core/log.h"
#include "herald/core/message.h"
#include "herald/core/metrics.h"
#include "herald/core/mutex.h"
#include "herald/core/tracing.h"
#include "herald/core/transport.h"
#include "herald/core/typed_handler.h"

namespace herald {

namespace internal {
[[noreturn]] void WrongTransportType(const char* wanted, const char* actual);
}  // namespace internal

// Identity and clock a bus stamps on the envelopes it makes.
struct BusOptions {
  // CloudEvents source of published events. Default: "herald".
  std::string source = "herald";
  // Clock for ids and times of published events. Must outlive the bus.
  // Default: nullptr, the system clock.
  const Clock* clock = nullptr;
  // Where the bus, its dispatchers and its transport report metrics
  // (metrics.h; the names are in docs/operations.md). Must outlive the bus.
  // Default: none, and then nothing is measured.
  Metrics* metrics = nullptr;
  // Where the bus reports spans (tracing.h): one per publish ("send
  // <topic>", whose context becomes the record's `traceparent`) and one per
  // delivery to a handler ("process <topic>"). Must outlive the bus.
  // Default: none, and then nothing is traced, parsed or allocated for it.
  Tracer* tracer = nullptr;
  // Where the bus and its dispatchers log (log.h; docs/operations.md
  // "Logging"): handler failures and dead letters (warning), each event's
  // outcome (debug). The Kafka transport takes its own sink in
  // KafkaTransportOptions::log, because librdkafka needs it before the
  // transport exists; pass the same one. Must outlive the bus. Default: none,
  // and then DefaultLogSink() (warnings and errors on stderr).
  LogSink* log = nullptr;
};

namespace internal {
class PublishMetrics;
}  // namespace internal

class Bus final {
 public:
  // Takes ownership of `transport` (not null).
  explicit Bus(std::unique_ptr<Transport> transport, BusOptions options = {});
  // Destroys the transport first (which stops it and joins its threads),
  // then the subscriptions' dispatchers.
  ~Bus();
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;

  // ---- Publishing ----

  // Hands `envelope` to the transport and returns at once (or blocks while a
  // bounded queue is full, as the transport's options say). `done` runs once
  // with the outcome. Without `done` (fire and forget) a failure is counted
  // in publish_failures() and its status kept in last_publish_error().
  // Publishing before Start() is allowed; after Stop() it fails with
  // kFailedPrecondition.
  void PublishAsync(Envelope envelope, PublishCallback done = {});
  // Publishes and blocks until the outcome is known.
  absl::StatusOr<DeliveryReport> Publish(Envelope envelope);

  // Typed events: the envelope is made by MakeEnvelope with this bus's
  // source and clock; `options` override the topic, key, headers, ...
  template <Event T>
  absl::StatusOr<DeliveryReport> Publish(const T& event, EnvelopeOptions options = {}) {
    return Publish(MakeEnvelope(event, WithDefaults(std::move(options))));
  }
  template <Event T>
  void PublishAsync(const T& event, EnvelopeOptions options = {}, PublishCallback done = {}) {
    PublishAsync(MakeEnvelope(event, WithDefaults(std::move(options))), std::move(done));
  }

  // Publishes bytes under a type name, like the seed's PublishRaw. `payload`
  // may also be a Go service's whole JSON envelope of `type` (evt.ToJSON()):
  // its id, time and payload are then kept (UnwrapJsonEnvelope, wire.h).
  absl::StatusOr<DeliveryReport> PublishRaw(std::string_view topic, std::string_view type, std::string_view payload,
                                            std::string_view key = {});

  // ---- Subscribing ----

  // Subscribes a raw handler with herald's policy (retries, dead letters,
  // middleware) from `options`. kInvalidArgument for an empty group, no
  // topics, an empty handler or retry.max_attempts < 1; the transport's
  // errors otherwise.
  absl::Status Subscribe(SubscribeOptions options, Handler handler);

  // Subscribes a typed handler for T in consumer `group`: on T's topic (or
  // `options.topics`), it receives the envelopes whose type is one of T's;
  // other types on the topic are acknowledged and skipped (route several types
  // through an EventRouter to handle them all). `handler` is any callable
  // taking (const T&) or (const T&, const Message&) and returning
  // absl::Status, or an EventHandler<T>& (borrowed: must outlive the bus) /
  // shared_ptr<EventHandler<T>>.
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

  // Reads dead letters: subscribes `handler` in `options.group` to
  // `options.topics`, which are dead-letter topics (e.g. "orders.dlq"). Each
  // record is handed over as it is, as a DeadLetter (delivery_policy.h): the
  // raw record, its herald-dlq-* headers parsed (original topic, partition,
  // offset, reason, attempts) and Decode() / As<T>() for the original event
  // where it decodes. Nothing is decoded before the handler runs, so no
  // record is refused, and nothing read here is ever dead-lettered again.
  // A handler error is retried with options.retry's backoff, then every
  // options.retry.max_backoff until the handler returns OK (which is how it
  // passes a dead letter by). kInvalidArgument as for Subscribe, and for
  // middleware or accepted_types (they work on decoded messages; a dead
  // letter may not decode).
  absl::Status SubscribeDeadLetters(SubscribeOptions options, DeadLetterHandler handler);

  // ---- Lifecycle (the transport's; see transport.h) ----

  absl::Status Start() { return transport_->Start(); }
  absl::Status Stop(absl::Duration drain_deadline) { return transport_->Stop(drain_deadline); }
  absl::Status Flush(absl::Duration timeout) { return transport_->Flush(timeout); }

  // ---- Observing ----

  // Counters of each subscription made through Subscribe, in order.
  struct SubscriptionStats {
    std::string group;
    std::vector<std::string> topics;
    int64_t handled = 0, retried = 0, dead_lettered = 0, skipped = 0, failed = 0, undecodable = 0;
    // Dead letters cut down to fit their topic (DispatchStats).
    int64_t dead_letters_cut = 0;
  };
  std::vector<SubscriptionStats> Stats() const;
  // Fire-and-forget publishes (PublishAsync without a callback) that failed.
  int64_t publish_failures() const { return publish_failures_.load(std::memory_order_relaxed); }
  // The status of the latest of them; OK when none failed.
  absl::Status last_publish_error() const;

  // The transport, for its own extras. transport<T>() checks the type and
  // aborts with a message naming both types when it is not a T.
  Transport& transport() const { return *transport_; }
  template <typename T>
  T& transport() const {
    Transport& actual = *transport_;
    T* typed = dynamic_cast<T*>(&actual);
    if (typed == nullptr) internal::WrongTransportType(typeid(T).name(), typeid(actual).name());
    return *typed;
  }

  const BusOptions& options() const { return options_; }

 private:
  // Validates `options`, builds the dispatcher and attaches it.
  template <typename AnyHandler>
  absl::Status Attach(SubscribeOptions options, AnyHandler handler);

  EnvelopeOptions WithDefaults(EnvelopeOptions options) const {
    if (options.clock == nullptr) options.clock = options_.clock;
    if (options.source.empty()) options.source = options_.source;
    return options;
  }

  // With metrics: counts the outcome of a publish to `topic` and its time
  // to the report, then calls `done`.
  PublishCallback Measured(std::string_view topic, PublishCallback done);
  // With a tracer: starts the publish span, writes its context into the
  // envelope's `traceparent`, and ends it with the report before `done`.
  PublishCallback Traced(Envelope& envelope, PublishCallback done);

  // The relay's publish: its own span is the publish span (tracing.h), so
  // the bus starts none.
  friend class OutboxRelay;
  void PublishAsyncUntraced(Envelope envelope, PublishCallback done);

  const BusOptions options_;
  std::unique_ptr<internal::PublishMetrics> publish_metrics_;  // null without metrics
  std::atomic<int64_t> publish_failures_{0};
  mutable Mutex mu_;
  absl::Status last_publish_error_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Dispatcher>> dispatchers_ ABSL_GUARDED_BY(mu_);
  // Declared last: destroyed first, so no transport thread outlives the
  // dispatchers it calls.
  std::unique_ptr<Transport> transport_;
};

}  // namespace herald

#endif  // HERALD_CORE_BUS_H_
