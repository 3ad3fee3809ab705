#include "herald/core/dispatcher.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <future>
#include <map>
#include <memory>
#include <optional>

#include "absl/strings/numbers.h"
#include "herald/core/mutex.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"

namespace herald {

namespace {

// Publishes through `transport` and waits for the outcome.
template <typename PublishFn>
absl::Status PublishAndWait(PublishFn&& publish) {
  std::promise<absl::Status> promise;
  std::future<absl::Status> result = promise.get_future();
  publish([&promise](absl::StatusOr<DeliveryReport> report) { promise.set_value(report.status()); });
  return result.get();
}

// Calls `call` and turns what it throws into kInternal: the one exception
// policy for every kind of handler.
template <typename Call>
absl::Status CallCatching(Call&& call) {
  try {
    return call();
  } catch (const std::exception& e) {
    return absl::InternalError(herald::StrCat("handler threw: ", e.what()));
  } catch (...) {
    return absl::InternalError("handler threw a non-std::exception");
  }
}

absl::StatusCode ParseStatusCode(std::string_view name) {
  for (int code = 0; code <= static_cast<int>(absl::StatusCode::kUnauthenticated); ++code) {
    if (absl::StatusCodeToString(static_cast<absl::StatusCode>(code)) == name) {
      return static_cast<absl::StatusCode>(code);
    }
  }
  return absl::StatusCode::kUnknown;
}

template <typename Int>
Int ParseIntHeader(const Headers& headers, std::string_view name, Int missing) {
  std::optional<std::string_view> text = FindHeader(headers, name);
  if (!text.has_value()) return missing;
  int64_t value = 0;
  if (!absl::SimpleAtoi(ToAbsl(*text), &value)) return missing;
  return static_cast<Int>(value);
}

// The Message a record is decoded into on this thread, reused from record
// to record so that a consumer's worker does not allocate the message's
// strings again for each one. A Dispatch nested in a handler on the same
// thread (a handler publishing to a bus that delivers synchronously) gets a
// fresh Message; after a message over 64 KiB the thread's is dropped, so it
// never keeps more than that.
class MessageLease {
 public:
  MessageLease() {
    if (!slot_.in_use) {
      slot_.in_use = true;
      message_ = &slot_.message;
    } else {
      message_ = &own_.emplace();
    }
  }
  ~MessageLease() {
    if (message_ != &slot_.message) return;
    if (slot_.message.envelope.payload.capacity() > kKeepBelow) slot_.message = Message();
    slot_.in_use = false;
  }
  MessageLease(const MessageLease&) = delete;
  MessageLease& operator=(const MessageLease&) = delete;
  Message& message() { return *message_; }

 private:
  static constexpr size_t kKeepBelow = 64 * 1024;
  struct Slot {
    Message message;
    bool in_use = false;
  };
  static thread_local Slot slot_;
  std::optional<Message> own_;
  Message* message_ = nullptr;
};
thread_local MessageLease::Slot MessageLease::slot_;

}  // namespace

absl::Status InvokeHandler(const Handler& handler, const Message& message) {
  internal::ScopedCurrentMessage scope(&message);
  return CallCatching([&] { return handler(message); });
}

absl::Status InvokeHandler(const DeadLetterHandler& handler, const DeadLetter& dead_letter) {
  return CallCatching([&] { return handler(dead_letter); });
}

DeadLetter ReadDeadLetter(const ReceivedRecord& record) {
  DeadLetter d;
  d.topic = std::string(record.topic);
  d.partition = record.partition;
  d.offset = record.offset;
  d.group = std::string(record.group);
  d.attempt = record.attempt;
  if (record.envelope != nullptr) {
    d.envelope = *record.envelope;
    d.record.key = record.envelope->key;
    d.record.headers = record.envelope->headers;
  } else {
    d.record.key = std::string(record.key);
    d.record.value = std::string(record.value);
    if (record.headers != nullptr) d.record.headers = *record.headers;
  }
  const Headers& h = d.record.headers;
  d.original_topic = std::string(FindHeader(h, kDlqTopicHeader).value_or(""));
  d.original_partition = ParseIntHeader<int32_t>(h, kDlqPartitionHeader, -1);
  d.original_offset = ParseIntHeader<int64_t>(h, kDlqOffsetHeader, -1);
  d.original_group = std::string(FindHeader(h, kDlqGroupHeader).value_or(""));
  d.reason = std::string(FindHeader(h, kDlqReasonHeader).value_or(""));
  d.code = ParseStatusCode(FindHeader(h, kDlqCodeHeader).value_or(""));
  d.attempts = ParseIntHeader<int>(h, kDlqAttemptsHeader, 0);
  std::string_view dropped = FindHeader(h, kDlqDroppedHeader).value_or("");
  d.value_dropped = !dropped.empty();
  d.key_and_headers_dropped = dropped.find("headers") != std::string_view::npos;
  d.value_size = ParseIntHeader<int64_t>(h, kDlqValueSizeHeader, -1);
  return d;
}

namespace internal {

// One subscription's metrics, per topic: made up front for the subscribed
// topics (no lock on the way), on first use for any other.
class DispatchMetrics {
 public:
  struct Topic {
    Counter* handled;
    Counter* retried;
    Counter* dead_lettered;
    Counter* skipped;
    Histogram* duration;
  };

  DispatchMetrics(Metrics& metrics, std::string group, const std::vector<std::string>& topics)
      : metrics_(metrics), group_(std::move(group)) {
    for (const std::string& topic : topics) known_.emplace(topic, Make(topic));
  }

  const Topic& For(std::string_view topic) {
    if (auto it = known_.find(topic); it != known_.end()) return it->second;
    MutexLock lock(mu_);
    std::unique_ptr<Topic>& slot = others_[std::string(topic)];
    if (slot == nullptr) slot = std::make_unique<Topic>(Make(topic));
    return *slot;
  }

 private:
  Topic Make(std::string_view topic) {
    const MetricLabels labels = {{"topic", std::string(topic)}, {"group", group_}};
    return {
        &metrics_.GetCounter("herald_consumer_handled_total", "Events whose handler returned OK.", labels),
        &metrics_.GetCounter("herald_consumer_retries_total", "Deliveries that failed and were scheduled again.",
                             labels),
        &metrics_.GetCounter("herald_consumer_dead_letters_total",
                             "Events written to the dead-letter topic (the handler gave up, or the record did "
                             "not decode).",
                             labels),
        &metrics_.GetCounter("herald_consumer_skipped_total",
                             "Events acknowledged without a handler: types the subscription does not take.", labels),
        &metrics_.GetHistogram("herald_consumer_handler_duration_seconds",
                               "Time in the handler (middleware included) per delivery.", LatencyBuckets(), labels)};
  }

  Metrics& metrics_;
  const std::string group_;
  std::map<std::string, Topic, std::less<>> known_;
  Mutex mu_;
  std::map<std::string, std::unique_ptr<Topic>, std::less<>> others_ ABSL_GUARDED_BY(mu_);
};

}  // namespace internal

Dispatcher::Dispatcher(Transport& transport, SubscribeOptions options, DeadLetterHandler handler, Metrics* metrics,
                       Tracer* tracer, LogSink* log)
    : transport_(transport),
      options_(std::move(options)),
      dead_letter_handler_(std::move(handler)),
      tracer_(tracer),
      log_(LogSinkOrDefault(log)) {
  if (metrics != nullptr) {
    metrics_ = std::make_unique<internal::DispatchMetrics>(*metrics, options_.group, options_.topics);
  }
}

Dispatcher::~Dispatcher() = default;

void Dispatcher::LogFailure(std::string_view what, const absl::Status& status, std::string_view topic,
                            int32_t partition, int64_t offset, int attempt, std::string_view id) {
  if (!log_.Enabled(LogLevel::kWarning)) return;
  Log(log_, LogLevel::kWarning, "bus", what,
      {{"group", options_.group},
       {"topic", std::string(topic)},
       {"partition", herald::StrCat(partition)},
       {"offset", herald::StrCat(offset)},
       {"attempt", herald::StrCat(attempt)},
       {"id", std::string(id)},
       {"error", herald::StrCat(absl::StatusCodeToString(status.code()), ": ", ToStd(status.message()))}});
}

void Dispatcher::Count(Outcome outcome, std::string_view topic) {
  if (log_.Enabled(LogLevel::kDebug)) {
    static constexpr std::string_view kNames[] = {"handled", "retried", "dead-lettered", "skipped"};
    Log(log_, LogLevel::kDebug, "bus", "delivery done",
        {{"outcome", std::string(kNames[static_cast<int>(outcome)])},
         {"group", options_.group},
         {"topic", std::string(topic)}});
  }
  switch (outcome) {
    case Outcome::kHandled:
      stats_.handled.fetch_add(1, std::memory_order_relaxed);
      if (metrics_ != nullptr) metrics_->For(topic).handled->Add();
      break;
    case Outcome::kRetried:
      stats_.retried.fetch_add(1, std::memory_order_relaxed);
      if (metrics_ != nullptr) metrics_->For(topic).retried->Add();
      break;
    case Outcome::kDeadLettered:
      stats_.dead_lettered.fetch_add(1, std::memory_order_relaxed);
      if (metrics_ != nullptr) metrics_->For(topic).dead_lettered->Add();
      break;
    case Outcome::kSkipped:
      stats_.skipped.fetch_add(1, std::memory_order_relaxed);
      if (metrics_ != nullptr) metrics_->For(topic).skipped->Add();
      break;
  }
}

Dispatcher::Dispatcher(Transport& transport, SubscribeOptions options, Handler handler, Metrics* metrics,
                       Tracer* tracer, LogSink* log)
    : transport_(transport),
      options_(std::move(options)),
      chain_(std::move(handler)),
      tracer_(tracer),
      log_(LogSinkOrDefault(log)) {
  if (metrics != nullptr) {
    metrics_ = std::make_unique<internal::DispatchMetrics>(*metrics, options_.group, options_.topics);
  }
  // Build the middleware chain once, innermost (the handler) first.
  for (auto it = options_.middleware.rbegin(); it != options_.middleware.rend(); ++it) {
    Middleware mw = *it;
    Handler next = chain_;
    chain_ = [mw, next](const Message& m) { return mw(m, next); };
  }
}

Envelope Dispatcher::MakeDeadLetter(const Message& message, const absl::Status& error, const DeadLetterPolicy& policy) {
  Envelope dead = message.envelope;
  dead.topic = DeadLetterTopic(policy, message.topic);
  AddDeadLetterHeaders(dead.headers, error, message.attempt, message.topic, message.partition, message.offset,
                       message.group);
  return dead;
}

Record Dispatcher::MakeDeadLetter(const ReceivedRecord& record, const absl::Status& error) {
  Record dead;
  dead.key = std::string(record.key);
  dead.value = std::string(record.value);
  if (record.headers != nullptr) dead.headers = *record.headers;
  AddDeadLetterHeaders(dead.headers, error, record.attempt, record.topic, record.partition, record.offset,
                       record.group);
  return dead;
}

template <typename DecideFn>
Verdict Dispatcher::Run(const ReceivedRecord* record, const Message* message, DecideFn&& decide) {
  const std::string_view topic = message != nullptr ? std::string_view(message->topic) : record->topic;
  if (tracer_ == nullptr) {
    Result result = decide();
    Count(result.outcome, topic);
    return result.verdict;
  }
  // One span per delivery attempt, child of the record's traceparent.
  const Headers* headers = message != nullptr            ? &message->envelope.headers
                           : record->envelope != nullptr ? &record->envelope->headers
                                                         : record->headers;
  SpanStart start;
  start.name = herald::StrCat("process ", topic);
  start.kind = SpanKind::kConsumer;
  if (headers != nullptr) {
    if (std::optional<std::string_view> traceparent = FindHeader(*headers, kTraceparentHeader)) {
      start.parent = ParseTraceparent(*traceparent);
    }
  }
  start.attributes = {
      {"messaging.operation.type", std::string("process")},
      {"messaging.destination.name", std::string(topic)},
      {"messaging.consumer.group.name", message != nullptr ? message->group : std::string(record->group)},
      {"messaging.destination.partition.id",
       herald::StrCat(message != nullptr ? message->partition : record->partition)},
      {"messaging.kafka.offset", static_cast<int64_t>(message != nullptr ? message->offset : record->offset)},
      {"herald.attempt", static_cast<int64_t>(message != nullptr ? message->attempt : record->attempt)}};
  if (message != nullptr) {
    start.attributes.emplace_back("messaging.message.id", message->envelope.id);
    start.attributes.emplace_back("herald.event.type", message->envelope.type);
  }
  std::unique_ptr<Span> span = tracer_->StartSpan(std::move(start));
  Result result;
  if (span != nullptr) {
    ScopedTraceContext in_span(span->context());
    result = decide();
  } else {
    result = decide();
  }
  Count(result.outcome, topic);
  if (span != nullptr) {
    const char* outcome = "handled";
    switch (result.outcome) {
      case Outcome::kHandled:
        break;
      case Outcome::kRetried:
        outcome = "retry";
        break;
      case Outcome::kDeadLettered:
        outcome = "dead_letter";
        break;
      case Outcome::kSkipped:
        outcome = "skipped";
        break;
    }
    span->SetAttribute("herald.outcome", std::string(outcome));
    if (!result.verdict.is_ack()) {
      span->SetAttribute("herald.retry_delay_seconds", absl::ToDoubleSeconds(result.verdict.delay));
    }
    span->End(result.error);
  }
  return result.verdict;
}

Verdict Dispatcher::Dispatch(const ReceivedRecord& record) {
  if (dead_letter_handler_) return Run(&record, nullptr, [&] { return DispatchDeadLetter(record); });
  MessageLease lease;
  Message& message = lease.message();
  if (absl::Status decoded = DecodeReceivedRecordInto(record, message); !decoded.ok()) {
    return Run(&record, nullptr, [&] { return DeadLetterUndecodable(record, decoded); });
  }
  const ReceivedRecord* raw = record.envelope == nullptr ? &record : nullptr;
  return Run(nullptr, &message, [&] { return Decide(message, raw); });
}

Verdict Dispatcher::Dispatch(const Message& message) {
  if (dead_letter_handler_) {
    // A Message has no raw bytes left: hand over its envelope.
    ReceivedRecord record;
    record.topic = message.topic;
    record.partition = message.partition;
    record.offset = message.offset;
    record.group = message.group;
    record.attempt = message.attempt;
    record.envelope = &message.envelope;
    return Run(&record, nullptr, [&] { return DispatchDeadLetter(record); });
  }
  return Run(nullptr, &message, [&] { return Decide(message, nullptr); });
}

Dispatcher::Result Dispatcher::DispatchDeadLetter(const ReceivedRecord& record) {
  absl::Status status = InvokeHandler(dead_letter_handler_, ReadDeadLetter(record));
  if (status.ok()) return {Verdict::Ack(), Outcome::kHandled, status};
  stats_.failed.fetch_add(1, std::memory_order_relaxed);
  LogFailure("dead-letter handler failed; the dead letter is retried", status, record.topic, record.partition,
             record.offset, record.attempt, "");
  // Never dead-lettered again (that is how <topic>.dlq.dlq came about): retry
  // with backoff, then at max_backoff until the handler lets it pass.
  if (IsRetryable(status) && record.attempt < options_.retry.max_attempts) {
    return {Verdict::RetryAfter(options_.retry.Backoff(record.attempt + 1)), Outcome::kRetried, status};
  }
  return {Verdict::RetryAfter(options_.retry.max_backoff), Outcome::kRetried, status};
}

absl::Status Dispatcher::PublishDeadLetter(std::string topic, Record dead) {
  for (DeadLetterCut cut : {DeadLetterCut::kValue, DeadLetterCut::kValueKeyAndHeaders}) {
    absl::Status published = PublishAndWait([&](PublishCallback done) {
      transport_.PublishRecord(topic, dead, std::move(done));  // a copy: cut and sent again when too large
    });
    if (!IsRecordTooLarge(published)) return published;
    CutDeadLetter(dead, cut);
    stats_.dead_letters_cut.fetch_add(1, std::memory_order_relaxed);
  }
  return PublishAndWait(
      [&](PublishCallback done) { transport_.PublishRecord(std::move(topic), std::move(dead), std::move(done)); });
}

absl::Status Dispatcher::PublishDeadLetter(Envelope dead) {
  for (DeadLetterCut cut : {DeadLetterCut::kValue, DeadLetterCut::kValueKeyAndHeaders}) {
    absl::Status published = PublishAndWait([&](PublishCallback done) { transport_.Publish(dead, std::move(done)); });
    if (!IsRecordTooLarge(published)) return published;
    CutDeadLetter(dead, cut);
    stats_.dead_letters_cut.fetch_add(1, std::memory_order_relaxed);
  }
  return PublishAndWait([&](PublishCallback done) { transport_.Publish(std::move(dead), std::move(done)); });
}

Dispatcher::Result Dispatcher::DeadLetterUndecodable(const ReceivedRecord& record, const absl::Status& error) {
  // Always dead-lettered, also when the subscription's policy disables dead
  // letters: a record that cannot be decoded can never succeed, and holding
  // it would stop its partition for good. Its bytes are kept as they are.
  Record dead = MakeDeadLetter(
      record, absl::Status(error.code(), herald::StrCat("undecodable record: ", ToStd(error.message()))));
  absl::Status published = PublishDeadLetter(DeadLetterTopic(options_.dead_letter, record.topic), std::move(dead));
  if (!published.ok()) {
    // Never drop: the transport redelivers the record and the dead letter is
    // tried again, with the subscription's backoff.
    LogFailure("undecodable record: writing its dead letter failed; retried", published, record.topic, record.partition,
               record.offset, record.attempt, "");
    return {Verdict::RetryAfter(options_.retry.Backoff(record.attempt + 1)), Outcome::kRetried, error};
  }
  stats_.undecodable.fetch_add(1, std::memory_order_relaxed);
  LogFailure("undecodable record dead-lettered", error, record.topic, record.partition, record.offset, record.attempt,
             "");
  return {Verdict::Ack(), Outcome::kDeadLettered, error};
}

Dispatcher::Result Dispatcher::Decide(const Message& message, const ReceivedRecord* raw) {
  absl::Status status;
  if (!options_.accepted_types.empty() && std::find(options_.accepted_types.begin(), options_.accepted_types.end(),
                                                    message.envelope.type) == options_.accepted_types.end()) {
    if (options_.skip_unknown_types) return {Verdict::Ack(), Outcome::kSkipped, absl::OkStatus()};
    status = absl::InvalidArgumentError(
        herald::StrCat("no handler for event type \"", message.envelope.type, "\" in group ", message.group));
  } else {
    const auto start = std::chrono::steady_clock::now();
    status = InvokeHandler(chain_, message);
    if (metrics_ != nullptr) {
      metrics_->For(message.topic)
          .duration->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  }
  if (status.ok()) return {Verdict::Ack(), Outcome::kHandled, status};
  stats_.failed.fetch_add(1, std::memory_order_relaxed);
  LogFailure("handler failed", status, message.topic, message.partition, message.offset, message.attempt,
             message.envelope.id);
  bool attempts_left = message.attempt < options_.retry.max_attempts;
  if (IsRetryable(status) && attempts_left) {
    return {Verdict::RetryAfter(options_.retry.Backoff(message.attempt + 1)), Outcome::kRetried, status};
  }
  if (!options_.dead_letter.enabled) {
    return {Verdict::RetryAfter(options_.retry.max_backoff), Outcome::kRetried, status};
  }
  // The record as it was read: its own bytes and every header when the
  // transport moved bytes (re-encoding the decoded envelope would lose what
  // the envelope does not model, and turn an empty value into another one).
  absl::Status dlq = raw != nullptr ? PublishDeadLetter(DeadLetterTopic(options_.dead_letter, message.topic),
                                                        MakeDeadLetter(*raw, status))
                                    : PublishDeadLetter(MakeDeadLetter(message, status, options_.dead_letter));
  if (!dlq.ok()) {
    // Never drop: try the message again later; the dead letter is retried then.
    LogFailure("writing the dead letter failed; retried", dlq, message.topic, message.partition, message.offset,
               message.attempt, message.envelope.id);
    return {Verdict::RetryAfter(options_.retry.Backoff(message.attempt + 1)), Outcome::kRetried, status};
  }
  LogFailure("event dead-lettered", status, message.topic, message.partition, message.offset, message.attempt,
             message.envelope.id);
  return {Verdict::Ack(), Outcome::kDeadLettered, status};
}

}  // namespace herald
