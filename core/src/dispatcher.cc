#include "herald/core/dispatcher.h"

#include <algorithm>
#include <exception>
#include <future>

#include "absl/strings/numbers.h"
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

Dispatcher::Dispatcher(Transport& transport, SubscribeOptions options, DeadLetterHandler handler)
    : transport_(transport), options_(std::move(options)), dead_letter_handler_(std::move(handler)) {}

Dispatcher::Dispatcher(Transport& transport, SubscribeOptions options, Handler handler)
    : transport_(transport), options_(std::move(options)), chain_(std::move(handler)) {
  // Build the middleware chain once, innermost (the handler) first.
  for (auto it = options_.middleware.rbegin(); it != options_.middleware.rend(); ++it) {
    Middleware mw = *it;
    Handler next = chain_;
    chain_ = [mw, next](const Message& m) { return mw(m, next); };
  }
}

Envelope Dispatcher::MakeDeadLetter(const Message& message, const absl::Status& error,
                                    const DeadLetterPolicy& policy) {
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

Verdict Dispatcher::Dispatch(const ReceivedRecord& record) {
  if (dead_letter_handler_) return DispatchDeadLetter(record);
  absl::StatusOr<Message> message = DecodeReceivedRecord(record);
  if (!message.ok()) return DeadLetterUndecodable(record, message.status());
  return Decide(*message, record.envelope == nullptr ? &record : nullptr);
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
    return DispatchDeadLetter(record);
  }
  return Decide(message, nullptr);
}

Verdict Dispatcher::DispatchDeadLetter(const ReceivedRecord& record) {
  absl::Status status = InvokeHandler(dead_letter_handler_, ReadDeadLetter(record));
  if (status.ok()) {
    stats_.handled.fetch_add(1, std::memory_order_relaxed);
    return Verdict::Ack();
  }
  stats_.failed.fetch_add(1, std::memory_order_relaxed);
  stats_.retried.fetch_add(1, std::memory_order_relaxed);
  // Never dead-lettered again (that is how <topic>.dlq.dlq came about): retry
  // with backoff, then at max_backoff until the handler lets it pass.
  if (IsRetryable(status) && record.attempt < options_.retry.max_attempts) {
    return Verdict::RetryAfter(options_.retry.Backoff(record.attempt + 1));
  }
  return Verdict::RetryAfter(options_.retry.max_backoff);
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

Verdict Dispatcher::DeadLetterUndecodable(const ReceivedRecord& record, const absl::Status& error) {
  // Always dead-lettered, also when the subscription's policy disables dead
  // letters: a record that cannot be decoded can never succeed, and holding
  // it would stop its partition for good. Its bytes are kept as they are.
  Record dead = MakeDeadLetter(
      record, absl::Status(error.code(), herald::StrCat("undecodable record: ", ToStd(error.message()))));
  absl::Status published = PublishDeadLetter(DeadLetterTopic(options_.dead_letter, record.topic), std::move(dead));
  if (!published.ok()) {
    // Never drop: the transport redelivers the record and the dead letter is
    // tried again, with the subscription's backoff.
    stats_.retried.fetch_add(1, std::memory_order_relaxed);
    return Verdict::RetryAfter(options_.retry.Backoff(record.attempt + 1));
  }
  stats_.undecodable.fetch_add(1, std::memory_order_relaxed);
  stats_.dead_lettered.fetch_add(1, std::memory_order_relaxed);
  return Verdict::Ack();
}

Verdict Dispatcher::Decide(const Message& message, const ReceivedRecord* raw) {
  absl::Status status;
  if (!options_.accepted_types.empty() &&
      std::find(options_.accepted_types.begin(), options_.accepted_types.end(), message.envelope.type) ==
          options_.accepted_types.end()) {
    if (options_.skip_unknown_types) {
      stats_.skipped.fetch_add(1, std::memory_order_relaxed);
      return Verdict::Ack();
    }
    status = absl::InvalidArgumentError(
        herald::StrCat("no handler for event type \"", message.envelope.type, "\" in group ", message.group));
  } else {
    status = InvokeHandler(chain_, message);
  }
  if (status.ok()) {
    stats_.handled.fetch_add(1, std::memory_order_relaxed);
    return Verdict::Ack();
  }
  stats_.failed.fetch_add(1, std::memory_order_relaxed);
  bool attempts_left = message.attempt < options_.retry.max_attempts;
  if (IsRetryable(status) && attempts_left) {
    stats_.retried.fetch_add(1, std::memory_order_relaxed);
    return Verdict::RetryAfter(options_.retry.Backoff(message.attempt + 1));
  }
  if (!options_.dead_letter.enabled) {
    stats_.retried.fetch_add(1, std::memory_order_relaxed);
    return Verdict::RetryAfter(options_.retry.max_backoff);
  }
  // The record as it was read: its own bytes and every header when the
  // transport moved bytes (re-encoding the decoded envelope would lose what
  // the envelope does not model, and turn an empty value into another one).
  absl::Status dlq = raw != nullptr ? PublishDeadLetter(DeadLetterTopic(options_.dead_letter, message.topic),
                                                        MakeDeadLetter(*raw, status))
                                    : PublishDeadLetter(MakeDeadLetter(message, status, options_.dead_letter));
  if (!dlq.ok()) {
    // Never drop: try the message again later; the dead letter is retried then.
    stats_.retried.fetch_add(1, std::memory_order_relaxed);
    return Verdict::RetryAfter(options_.retry.Backoff(message.attempt + 1));
  }
  stats_.dead_lettered.fetch_add(1, std::memory_order_relaxed);
  return Verdict::Ack();
}

}  // namespace herald
