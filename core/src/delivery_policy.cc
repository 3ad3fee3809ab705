#include "herald/core/delivery_policy.h"

#include <algorithm>
#include <cmath>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
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
  std::string_view reason = ToStd(error.message());
  if (reason.size() > kMaxDeadLetterReasonBytes) {
    // Cut on a UTF-8 character boundary, and say so.
    size_t cut = kMaxDeadLetterReasonBytes - 16;
    while (cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xC0) == 0x80) --cut;
    SetHeader(headers, kDlqReasonHeader, herald::StrCat(reason.substr(0, cut), " [truncated]"));
  } else {
    SetHeader(headers, kDlqReasonHeader, reason);
  }
  SetHeader(headers, kDlqCodeHeader, absl::StatusCodeToString(error.code()));
  SetHeader(headers, kDlqAttemptsHeader, herald::StrCat(attempts));
  SetHeader(headers, kDlqTopicHeader, topic);
  SetHeader(headers, kDlqPartitionHeader, herald::StrCat(partition));
  SetHeader(headers, kDlqOffsetHeader, herald::StrCat(offset));
  SetHeader(headers, kDlqGroupHeader, group);
}

namespace {

constexpr std::string_view kDlqHeaderPrefix = "herald-dlq-";

std::string_view CutName(DeadLetterCut cut) { return cut == DeadLetterCut::kValue ? "value" : "value,key,headers"; }

// Keeps the herald-dlq-* headers only.
void KeepDeadLetterHeadersOnly(Headers& headers) {
  std::erase_if(headers, [](const auto& h) { return !IsDeadLetterHeader(h.first); });
}

}  // namespace

bool IsDeadLetterHeader(std::string_view name) { return absl::StartsWith(ToAbsl(name), ToAbsl(kDlqHeaderPrefix)); }

void CutDeadLetter(Record& dead, DeadLetterCut cut) {
  // A value already dropped by an earlier cut keeps its recorded size.
  if (!FindHeader(dead.headers, kDlqValueSizeHeader).has_value()) {
    SetHeader(dead.headers, kDlqValueSizeHeader, herald::StrCat(dead.value.size()));
  }
  dead.value.clear();
  if (cut == DeadLetterCut::kValueKeyAndHeaders) {
    dead.key.clear();
    KeepDeadLetterHeadersOnly(dead.headers);
  }
  SetHeader(dead.headers, kDlqDroppedHeader, CutName(cut));
}

void CutDeadLetter(Envelope& dead, DeadLetterCut cut) {
  if (!FindHeader(dead.headers, kDlqValueSizeHeader).has_value()) {
    SetHeader(dead.headers, kDlqValueSizeHeader, herald::StrCat(dead.payload.size()));
  }
  dead.payload.clear();
  if (cut == DeadLetterCut::kValueKeyAndHeaders) {
    dead.key.clear();
    KeepDeadLetterHeadersOnly(dead.headers);
  }
  SetHeader(dead.headers, kDlqDroppedHeader, CutName(cut));
}

Headers DeadLetter::OriginalHeaders() const {
  const Headers& all = envelope.has_value() ? envelope->headers : record.headers;
  Headers out;
  out.reserve(all.size());
  for (const auto& h : all) {
    if (!IsDeadLetterHeader(h.first)) out.push_back(h);
  }
  return out;
}

absl::StatusOr<Envelope> DeadLetter::Decode() const {
  if (value_dropped) {
    return absl::FailedPreconditionError(
        herald::StrCat("dead letter ", topic, "[", partition, "]@", offset, " was written without its value (",
                       value_size, " bytes, too large for the dead-letter topic); read the original at ",
                       original_topic, "[", original_partition, "]@", original_offset));
  }
  const std::string_view from = original_topic.empty() ? std::string_view(topic) : std::string_view(original_topic);
  if (envelope.has_value()) {
    Envelope original = *envelope;
    original.topic = std::string(from);
    original.headers = OriginalHeaders();
    return original;
  }
  return DecodeRecord(from, record.key, record.value, OriginalHeaders());
}

}  // namespace herald
