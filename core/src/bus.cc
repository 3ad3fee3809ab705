#include "herald/core/bus.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>

#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/core/uuid.h"
#include "herald/core/wire.h"

namespace herald {

namespace internal {
void WrongTransportType(const char* wanted, const char* actual) {
  std::fprintf(stderr, "herald::Bus::transport<T>(): the bus's transport is a %s, not a %s\n", actual, wanted);
  std::abort();
}
}  // namespace internal

namespace internal {

// Publish outcomes and times per topic, each topic's metrics made on first
// use.
class PublishMetrics {
 public:
  struct Topic {
    Counter* published;
    Counter* failed;
    Histogram* ack;
  };

  explicit PublishMetrics(Metrics& metrics) : metrics_(metrics) {}

  const Topic& For(std::string_view topic) {
    MutexLock lock(mu_);
    auto it = topics_.find(topic);
    if (it == topics_.end()) {
      const MetricLabels labels = {{"topic", std::string(topic)}};
      it = topics_
               .emplace(std::string(topic),
                        Topic{&metrics_.GetCounter("herald_published_total",
                                                   "Events the transport reported delivered (acknowledged).", labels),
                              &metrics_.GetCounter("herald_publish_failures_total",
                                                   "Publishes the transport reported failed.", labels),
                              &metrics_.GetHistogram("herald_publish_ack_duration_seconds",
                                                     "Time from handing an event to the transport to its delivery "
                                                     "report.",
                                                     LatencyBuckets(), labels)})
               .first;
    }
    return it->second;
  }

 private:
  Metrics& metrics_;
  Mutex mu_;
  std::map<std::string, Topic, std::less<>> topics_ ABSL_GUARDED_BY(mu_);
};

}  // namespace internal

namespace {
BusOptions BusWithDefaults(BusOptions options) {
  if (options.clock == nullptr) options.clock = &SystemClock();
  return options;
}
}  // namespace

Bus::Bus(std::unique_ptr<Transport> transport, BusOptions options)
    : options_(BusWithDefaults(std::move(options))), transport_(std::move(transport)) {
  if (transport_ == nullptr) {
    std::fprintf(stderr, "herald::Bus: the transport is null\n");
    std::abort();
  }
  if (options_.metrics != nullptr) {
    publish_metrics_ = std::make_unique<internal::PublishMetrics>(*options_.metrics);
    transport_->ReportMetricsTo(*options_.metrics);
  }
}

PublishCallback Bus::Measured(std::string_view topic, PublishCallback done) {
  if (publish_metrics_ == nullptr) return done;
  const internal::PublishMetrics::Topic& metrics = publish_metrics_->For(topic);
  return [&metrics, start = std::chrono::steady_clock::now(),
          done = std::move(done)](absl::StatusOr<DeliveryReport> report) mutable {
    if (report.ok()) {
      metrics.published->Add();
      metrics.ack->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    } else {
      metrics.failed->Add();
    }
    if (done) done(std::move(report));
  };
}

Bus::~Bus() { transport_.reset(); }

PublishCallback Bus::Traced(Envelope& envelope, PublishCallback done) {
  if (options_.tracer == nullptr) return done;
  SpanStart start;
  start.name = herald::StrCat("send ", envelope.topic);
  start.kind = SpanKind::kProducer;
  if (std::optional<std::string_view> header = FindHeader(envelope.headers, kTraceparentHeader)) {
    start.parent = ParseTraceparent(*header);
    // W3C: a traceparent that does not parse restarts the trace, and its
    // tracestate goes with it.
    if (!start.parent.has_value()) {
      std::erase_if(envelope.headers, [](const auto& h) { return h.first == kTracestateHeader; });
    }
  } else {
    start.parent = CurrentTraceContext();
  }
  start.attributes = {{"messaging.operation.type", std::string("send")},
                      {"messaging.destination.name", envelope.topic},
                      {"messaging.message.id", envelope.id},
                      {"herald.event.type", envelope.type}};
  std::unique_ptr<Span> span = options_.tracer->StartSpan(std::move(start));
  if (span == nullptr) return done;
  SetHeader(envelope.headers, kTraceparentHeader, FormatTraceparent(span->context()));
  return [span = std::move(span), done = std::move(done)](absl::StatusOr<DeliveryReport> report) mutable {
    if (report.ok()) {
      span->SetAttribute("messaging.destination.partition.id", herald::StrCat(report->partition));
      span->SetAttribute("messaging.kafka.offset", report->offset);
    }
    span->End(report.status());
    span.reset();
    if (done) done(std::move(report));
  };
}

void Bus::PublishAsyncUntraced(Envelope envelope, PublishCallback done) {
  PublishCallback measured = Measured(envelope.topic, std::move(done));
  transport_->Publish(std::move(envelope), std::move(measured));
}

void Bus::PublishAsync(Envelope envelope, PublishCallback done) {
  if (!done) {
    done = [this](absl::StatusOr<DeliveryReport> report) {
      if (report.ok()) return;
      publish_failures_.fetch_add(1, std::memory_order_relaxed);
      MutexLock lock(mu_);
      last_publish_error_ = report.status();
    };
  }
  PublishCallback measured = Measured(envelope.topic, Traced(envelope, std::move(done)));
  transport_->Publish(std::move(envelope), std::move(measured));
}

absl::StatusOr<DeliveryReport> Bus::Publish(Envelope envelope) {
  std::promise<absl::StatusOr<DeliveryReport>> promise;
  std::future<absl::StatusOr<DeliveryReport>> result = promise.get_future();
  PublishCallback done = Measured(envelope.topic, Traced(envelope, [&promise](absl::StatusOr<DeliveryReport> report) {
                                    promise.set_value(std::move(report));
                                  }));
  transport_->Publish(std::move(envelope), std::move(done));
  return result.get();
}

absl::StatusOr<DeliveryReport> Bus::PublishRaw(std::string_view topic, std::string_view type, std::string_view payload,
                                               std::string_view key) {
  if (topic.empty()) return absl::InvalidArgumentError("PublishRaw: topic is empty");
  if (type.empty()) return absl::InvalidArgumentError("PublishRaw: event type is empty");
  Envelope e;
  e.time = options_.clock->Now();
  e.id = NewUuidV7(e.time);
  e.type = std::string(type);
  e.topic = std::string(topic);
  e.key = std::string(key);
  e.source = options_.source;
  e.payload = std::string(payload);
  UnwrapJsonEnvelope(e);  // a Go service's evt.ToJSON() keeps its id, time and payload
  PropagateContext(e.headers);
  return Publish(std::move(e));
}

template <typename AnyHandler>
absl::Status Bus::Attach(SubscribeOptions options, AnyHandler handler) {
  if (options.group.empty()) return absl::InvalidArgumentError("Subscribe: consumer group is empty");
  if (options.topics.empty()) return absl::InvalidArgumentError("Subscribe: no topics");
  if (!handler) return absl::InvalidArgumentError("Subscribe: handler is empty");
  if (options.retry.max_attempts < 1) {
    return absl::InvalidArgumentError("Subscribe: retry.max_attempts must be at least 1");
  }
  TransportSubscription subscription;
  subscription.topics = options.topics;
  subscription.group = options.group;
  auto dispatcher = std::make_shared<Dispatcher>(*transport_, std::move(options), std::move(handler), options_.metrics,
                                                 options_.tracer, options_.log);
  subscription.handler = [dispatcher](const ReceivedRecord& r) { return dispatcher->Dispatch(r); };
  HERALD_RETURN_IF_ERROR(transport_->Subscribe(std::move(subscription)));
  MutexLock lock(mu_);
  dispatchers_.push_back(std::move(dispatcher));
  return absl::OkStatus();
}

absl::Status Bus::Subscribe(SubscribeOptions options, Handler handler) {
  return Attach(std::move(options), std::move(handler));
}

absl::Status Bus::SubscribeDeadLetters(SubscribeOptions options, DeadLetterHandler handler) {
  if (!options.middleware.empty() || !options.accepted_types.empty()) {
    return absl::InvalidArgumentError(
        "SubscribeDeadLetters: middleware and accepted_types work on decoded messages and are not used for dead "
        "letters (which may not decode); leave them empty and decide in the handler (DeadLetter::Decode)");
  }
  return Attach(std::move(options), std::move(handler));
}

absl::Status Bus::last_publish_error() const {
  MutexLock lock(mu_);
  return last_publish_error_;
}

std::vector<Bus::SubscriptionStats> Bus::Stats() const {
  MutexLock lock(mu_);
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
    s.undecodable = d->stats().undecodable.load(std::memory_order_relaxed);
    s.dead_letters_cut = d->stats().dead_letters_cut.load(std::memory_order_relaxed);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace herald
