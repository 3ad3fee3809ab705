#include "herald/core/strings.h"
#include "herald/core/dispatcher.h"

#include <algorithm>
#include <cmath>
#include <exception>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "herald/core/bus.h"
#include "herald/core/status.h"

namespace herald {

absl::Duration RetryPolicy::BaseBackoff(int next_attempt) const {
  double factor = std::pow(multiplier, std::max(0, next_attempt - 2));
  absl::Duration d = initial_backoff * factor;
  return std::min(d, max_backoff);
}

absl::Duration RetryPolicy::Backoff(int next_attempt) const {
  absl::Duration base = BaseBackoff(next_attempt);
  double spread = std::clamp(jitter, 0.0, 1.0);
  if (spread == 0) return base;
  thread_local absl::BitGen gen;
  return base * absl::Uniform<double>(gen, 1.0 - spread, 1.0 + spread);
}

Dispatcher::Dispatcher(Bus& bus, SubscribeOptions options, Handler handler, const Clock& clock)
    : bus_(bus), options_(std::move(options)), handler_(std::move(handler)), clock_(clock) {
  // Build the middleware chain once, innermost (the handler) first.
  chain_ = handler_;
  for (auto it = options_.middleware.rbegin(); it != options_.middleware.rend(); ++it) {
    Middleware mw = *it;
    Handler next = chain_;
    chain_ = [mw, next](const Message& m) { return mw(m, next); };
  }
}

absl::Status Dispatcher::RunChain(const Message& message) {
  internal::ScopedCurrentMessage scope(&message);
  try {
    return chain_(message);
  } catch (const std::exception& e) {
    return absl::InternalError(herald::StrCat("handler threw: ", e.what()));
  } catch (...) {
    return absl::InternalError("handler threw a non-std::exception");
  }
}

std::string DeadLetterTopic(const DeadLetterPolicy& policy, std::string_view topic) {
  return policy.topic.empty() ? herald::StrCat(topic, policy.suffix) : policy.topic;
}

void AddDeadLetterHeaders(Headers& headers, const absl::Status& error, int attempts, std::string_view topic,
                          int32_t partition, int64_t offset, std::string_view group) {
  SetHeader(headers, kDlqReasonHeader, ToStd(error.message()));
  SetHeader(headers, kDlqCodeHeader, absl::StatusCodeToString(error.code()));
  SetHeader(headers, kDlqAttemptsHeader, herald::StrCat(attempts));
  SetHeader(headers, kDlqTopicHeader, topic);
  SetHeader(headers, kDlqPartitionHeader, herald::StrCat(partition));
  SetHeader(headers, kDlqOffsetHeader, herald::StrCat(offset));
  SetHeader(headers, kDlqGroupHeader, group);
}

Envelope Dispatcher::MakeDeadLetter(const Message& message, const absl::Status& error,
                                    const DeadLetterPolicy& policy) {
  Envelope dead = message.envelope;
  dead.topic = DeadLetterTopic(policy, message.topic);
  AddDeadLetterHeaders(dead.headers, error, message.attempt, message.topic, message.partition, message.offset,
                       message.group);
  return dead;
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
    status = RunChain(message);
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
  absl::StatusOr<DeliveryReport> dlq = bus_.Publish(MakeDeadLetter(message, status, options_.dead_letter));
  if (!dlq.ok()) {
    // Never drop: try the message again later; the dead letter is retried then.
    stats_.retried.fetch_add(1, std::memory_order_relaxed);
    return Verdict::RetryAfter(options_.retry.Backoff(message.attempt + 1));
  }
  stats_.dead_lettered.fetch_add(1, std::memory_order_relaxed);
  return Verdict::Ack();
}

}  // namespace herald
