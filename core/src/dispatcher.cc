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

absl::Duration Dispatcher::Backoff(int next_attempt) {
  absl::Duration base = options_.retry.BaseBackoff(next_attempt);
  double jitter = std::clamp(options_.retry.jitter, 0.0, 1.0);
  if (jitter == 0) return base;
  thread_local absl::BitGen gen;
  double factor = absl::Uniform<double>(gen, 1.0 - jitter, 1.0 + jitter);
  return base * factor;
}

Envelope Dispatcher::MakeDeadLetter(const Message& message, const absl::Status& error,
                                    const DeadLetterPolicy& policy) {
  Envelope dead = message.envelope;
  dead.topic = policy.topic.empty() ? herald::StrCat(message.topic, policy.suffix) : policy.topic;
  SetHeader(dead.headers, kDlqReasonHeader, ToStd(error.message()));
  SetHeader(dead.headers, kDlqCodeHeader, absl::StatusCodeToString(error.code()));
  SetHeader(dead.headers, kDlqAttemptsHeader, herald::StrCat(message.attempt));
  SetHeader(dead.headers, kDlqTopicHeader, message.topic);
  SetHeader(dead.headers, kDlqPartitionHeader, herald::StrCat(message.partition));
  SetHeader(dead.headers, kDlqOffsetHeader, herald::StrCat(message.offset));
  SetHeader(dead.headers, kDlqGroupHeader, message.group);
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
    return Verdict::RetryAfter(Backoff(message.attempt + 1));
  }
  if (!options_.dead_letter.enabled) {
    stats_.retried.fetch_add(1, std::memory_order_relaxed);
    return Verdict::RetryAfter(options_.retry.max_backoff);
  }
  absl::StatusOr<DeliveryReport> dlq = bus_.Publish(MakeDeadLetter(message, status, options_.dead_letter));
  if (!dlq.ok()) {
    // Never drop: try the message again later; the dead letter is retried then.
    stats_.retried.fetch_add(1, std::memory_order_relaxed);
    return Verdict::RetryAfter(Backoff(message.attempt + 1));
  }
  stats_.dead_lettered.fetch_add(1, std::memory_order_relaxed);
  return Verdict::Ack();
}

}  // namespace herald
