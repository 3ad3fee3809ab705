#include "herald/core/delivery_policy.h"

#include <algorithm>
#include <cmath>

#include "absl/random/random.h"
#include "herald/core/strings.h"

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

}  // namespace herald
