#include "herald/core/dispatcher.h"

#include <algorithm>
#include <exception>
#include <future>

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

}  // namespace

absl::Status InvokeHandler(const Handler& handler, const Message& message) {
  internal::ScopedCurrentMessage scope(&message);
  try {
    return handler(message);
  } catch (const std::exception& e) {
    return absl::InternalError(herald::StrCat("handler threw: ", e.what()));
  } catch (...) {
    return absl::InternalError("handler threw a non-std::exception");
  }
}

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

Verdict Dispatcher::Dispatch(const ReceivedRecord& record) {
  absl::StatusOr<Message> message = DecodeReceivedRecord(record);
  if (!message.ok()) return DeadLetterUndecodable(record, message.status());
  return Dispatch(*message);
}

Verdict Dispatcher::DeadLetterUndecodable(const ReceivedRecord& record, const absl::Status& error) {
  // Always dead-lettered, also when the subscription's policy disables dead
  // letters: a record that cannot be decoded can never succeed, and holding
  // it would stop its partition for good. Its bytes are kept as they are.
  Record dead;
  dead.key = std::string(record.key);
  dead.value = std::string(record.value);
  if (record.headers != nullptr) dead.headers = *record.headers;
  AddDeadLetterHeaders(dead.headers,
                       absl::Status(error.code(), herald::StrCat("undecodable record: ", ToStd(error.message()))),
                       record.attempt, record.topic, record.partition, record.offset, record.group);
  std::string topic = DeadLetterTopic(options_.dead_letter, record.topic);
  absl::Status published = PublishAndWait([&](PublishCallback done) {
    transport_.PublishRecord(std::move(topic), std::move(dead), std::move(done));
  });
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

Verdict Dispatcher::Dispatch(const Message& message) {
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
  absl::Status dlq = PublishAndWait([&](PublishCallback done) {
    transport_.Publish(MakeDeadLetter(message, status, options_.dead_letter), std::move(done));
  });
  if (!dlq.ok()) {
    // Never drop: try the message again later; the dead letter is retried then.
    stats_.retried.fetch_add(1, std::memory_order_relaxed);
    return Verdict::RetryAfter(options_.retry.Backoff(message.attempt + 1));
  }
  stats_.dead_lettered.fetch_add(1, std::memory_order_relaxed);
  return Verdict::Ack();
}

}  // namespace herald
