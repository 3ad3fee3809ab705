// herald/core/delivery_policy.h: how failed deliveries are retried and where
// the ones that cannot succeed go. The one definition, used by the Bus's
// dispatcher for handlers and by the outbox relay for publishes.
//
//   herald::RetryPolicy retry{.max_attempts = 8, .initial_backoff = absl::Milliseconds(50)};
//   absl::Duration wait = retry.Backoff(/*next_attempt=*/2);
//
// What is retried at all is decided by herald::IsRetryable (status.h).
//
// A dead letter is the original record (same id, type, key, payload and
// headers; for a record that could not be decoded, the same bytes) on the
// dead-letter topic, plus these headers:
//   herald-dlq-reason          the error message
//   herald-dlq-code            the absl::StatusCode name, e.g. INVALID_ARGUMENT
//   herald-dlq-attempts        delivery attempts made
//   herald-dlq-topic / -partition / -offset / -group   original coordinates
#ifndef HERALD_CORE_DELIVERY_POLICY_H_
#define HERALD_CORE_DELIVERY_POLICY_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "herald/core/envelope.h"

namespace herald {

inline constexpr std::string_view kDlqReasonHeader = "herald-dlq-reason";
inline constexpr std::string_view kDlqCodeHeader = "herald-dlq-code";
inline constexpr std::string_view kDlqAttemptsHeader = "herald-dlq-attempts";
inline constexpr std::string_view kDlqTopicHeader = "herald-dlq-topic";
inline constexpr std::string_view kDlqPartitionHeader = "herald-dlq-partition";
inline constexpr std::string_view kDlqOffsetHeader = "herald-dlq-offset";
inline constexpr std::string_view kDlqGroupHeader = "herald-dlq-group";

struct RetryPolicy {
  // Deliveries in all, the first included. Default: 5.
  int max_attempts = 5;
  // Delay before the second attempt. Default: 100 ms.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  // Upper bound of any delay. Default: 30 s.
  absl::Duration max_backoff = absl::Seconds(30);
  // Growth per attempt. Default: 2.
  double multiplier = 2.0;
  // Each delay is scaled by a random factor in [1 - jitter, 1 + jitter].
  // Default: 0.2.
  double jitter = 0.2;

  // The delay before attempt `next_attempt` (>= 2), without jitter.
  absl::Duration BaseBackoff(int next_attempt) const;
  // BaseBackoff scaled by a random factor in [1 - jitter, 1 + jitter]. The
  // dispatcher and the outbox relay both wait this long between attempts.
  absl::Duration Backoff(int next_attempt) const;
};

struct DeadLetterPolicy {
  // Dead-letter permanent failures and exhausted retries. When false, such a
  // message is retried at max_backoff until it succeeds (it blocks its
  // partition; nothing is dropped). Records that cannot be decoded at all
  // are dead-lettered whatever this says: they can never succeed.
  // Default: true.
  bool enabled = true;
  // Dead-letter topic; empty means `<original topic><suffix>`.
  std::string topic;
  // Default: ".dlq".
  std::string suffix = ".dlq";
};

// The dead-letter topic of `topic`: `policy.topic`, or topic + suffix.
std::string DeadLetterTopic(const DeadLetterPolicy& policy, std::string_view topic);

// Adds the herald-dlq-* headers above to `headers`: the one definition of a
// dead letter's headers.
void AddDeadLetterHeaders(Headers& headers, const absl::Status& error, int attempts, std::string_view topic,
                          int32_t partition, int64_t offset, std::string_view group);

}  // namespace herald

#endif  // HERALD_CORE_DELIVERY_POLICY_H_
