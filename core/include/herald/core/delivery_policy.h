// herald/core/delivery_policy.h: how failed deliveries are retried, where the
// ones that cannot succeed go, and how they are read back. The one
// definition, used by the Bus's dispatcher for handlers and by the outbox
// relay for publishes.
//
//   herald::RetryPolicy retry{.max_attempts = 8, .initial_backoff = absl::Milliseconds(50)};
//   absl::Duration wait = retry.Backoff(/*next_attempt=*/2);
//
// What is retried at all is decided by herald::IsRetryable (status.h).
//
// A dead letter is the original record as it was read, on the dead-letter
// topic: on a transport that moves bytes (Kafka) the same key, value (an
// empty value stays empty, it never becomes a null tombstone) and every
// header in order, whether or not the record decoded; on a transport that
// moves envelopes, the same envelope. Plus these headers:
//   herald-dlq-reason          the error message (at most kMaxDeadLetterReasonBytes)
//   herald-dlq-code            the absl::StatusCode name, e.g. INVALID_ARGUMENT
//   herald-dlq-attempts        delivery attempts made
//   herald-dlq-topic / -partition / -offset / -group   original coordinates
// and, only when the dead letter was too large for its topic
// (IsRecordTooLarge, transport.h) and had to be cut down to be written:
//   herald-dlq-dropped         "value", or "value,key,headers" when even the
//                              key and the original headers had to go
//   herald-dlq-value-size      the size of the dropped value in bytes
// The original record stays in its topic at the named partition and offset,
// so a dead letter never stalls its partition on size, and nothing is lost.
//
// Dead letters are read back, never dead-lettered again, through
// Bus::SubscribeDeadLetters, which hands each one to the handler as a
// DeadLetter (below): the raw record, the parsed headers, and the original
// event where it decodes.
//
//   HERALD_RETURN_IF_ERROR(bus.SubscribeDeadLetters({.group = "dlq-audit", .topics = {"order-events.dlq"}},
//       [](const herald::DeadLetter& d) -> absl::Status {
//         absl::StatusOr<OrderPlaced> order = d.As<OrderPlaced>();   // when it decodes
//         std::cerr << d.original_topic << "@" << d.original_offset << ": " << d.reason
//                   << (order.ok() ? " (order " + order->order_id + ")" : "") << "\n";
//         return absl::OkStatus();
//       }));
#ifndef HERALD_CORE_DELIVERY_POLICY_H_
#define HERALD_CORE_DELIVERY_POLICY_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "herald/core/envelope.h"
#include "herald/core/event.h"
#include "herald/core/typed_handler.h"
#include "herald/core/wire.h"

namespace herald {

inline constexpr std::string_view kDlqReasonHeader = "herald-dlq-reason";
inline constexpr std::string_view kDlqCodeHeader = "herald-dlq-code";
inline constexpr std::string_view kDlqAttemptsHeader = "herald-dlq-attempts";
inline constexpr std::string_view kDlqTopicHeader = "herald-dlq-topic";
inline constexpr std::string_view kDlqPartitionHeader = "herald-dlq-partition";
inline constexpr std::string_view kDlqOffsetHeader = "herald-dlq-offset";
inline constexpr std::string_view kDlqGroupHeader = "herald-dlq-group";
inline constexpr std::string_view kDlqDroppedHeader = "herald-dlq-dropped";
inline constexpr std::string_view kDlqValueSizeHeader = "herald-dlq-value-size";

// The reason header is cut to this many bytes (a dead letter must stay small
// enough to be written whatever the error says).
inline constexpr size_t kMaxDeadLetterReasonBytes = 2048;

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

// How much of a dead letter is left out so that it fits its topic.
enum class DeadLetterCut {
  kValue,               // the value (an envelope's payload)
  kValueKeyAndHeaders,  // also the key and every header but herald-dlq-*
};

// Cuts `dead` (a dead letter with its herald-dlq-* headers) down as `cut`
// says and records it in herald-dlq-dropped / herald-dlq-value-size. The
// dispatcher applies kValue, then kValueKeyAndHeaders, when the transport
// reports the dead letter too large (IsRecordTooLarge).
void CutDeadLetter(Record& dead, DeadLetterCut cut);
void CutDeadLetter(Envelope& dead, DeadLetterCut cut);

// True for a herald-dlq-* header name.
bool IsDeadLetterHeader(std::string_view name);

// One record read from a dead-letter topic, as it is, with its herald-dlq-*
// headers parsed. What Bus::SubscribeDeadLetters hands to its handler. A
// plain value; the handler may copy it.
struct DeadLetter {
  // ---- Where the dead letter itself was read ----
  std::string topic;  // the dead-letter topic, e.g. "orders.dlq"
  int32_t partition = 0;
  int64_t offset = 0;
  std::string group;  // the consumer group reading the dead letters
  int attempt = 1;    // delivery attempt of the dead letter to this group

  // ---- The original record and why it failed (herald-dlq-* headers) ----
  // Empty, -1 or 0 when the header is missing (a record not written by
  // herald's dispatcher; see is_herald_dead_letter()).
  std::string original_topic;
  int32_t original_partition = -1;
  int64_t original_offset = -1;
  std::string original_group;
  std::string reason;
  absl::StatusCode code = absl::StatusCode::kUnknown;
  int attempts = 0;
  // The value was left out because the dead letter did not fit its topic
  // (herald-dlq-dropped); the original is still at original_topic /
  // original_partition / original_offset. `value_size` is its size.
  bool value_dropped = false;
  // The key and the original headers were left out as well.
  bool key_and_headers_dropped = false;
  int64_t value_size = -1;

  // ---- The record as read ----
  // Key, value and every header in order, herald-dlq-* included. On a
  // transport that carries envelopes, key and headers only (the value is
  // in `envelope`).
  Record record;
  // Set by transports that carry envelopes (in-process, fakes): the dead
  // letter's envelope, herald-dlq-* headers included.
  std::optional<Envelope> envelope;

  // True when the record carries herald's coordinates (herald-dlq-topic).
  bool is_herald_dead_letter() const { return !original_topic.empty(); }
  // The original record's headers: every header but herald-dlq-*, in order.
  Headers OriginalHeaders() const;
  // The original event, as the original subscription would have seen it
  // (decoded as read from original_topic, herald-dlq-* headers removed).
  // kInvalidArgument with the decoder's reason when it does not decode (it
  // may be why it was dead-lettered); kFailedPrecondition when its value was
  // dropped (read the original at its coordinates).
  absl::StatusOr<Envelope> Decode() const;
  // Decode(), then T's decoder (upcast through `registry` when set).
  // kInvalidArgument when the type is not one of T's or it does not decode.
  template <Event T>
  absl::StatusOr<T> As(const TypeRegistry* registry = nullptr) const {
    absl::StatusOr<Envelope> original = Decode();
    if (!original.ok()) return original.status();
    return DecodeWithRegistry<T>(registry, *original);
  }
};

// What a dead-letter subscription runs for each dead letter. OK acknowledges
// it; an error is retried (see Bus::SubscribeDeadLetters): a dead letter is
// never dead-lettered again.
using DeadLetterHandler = std::function<absl::Status(const DeadLetter&)>;

}  // namespace herald

#endif  // HERALD_CORE_DELIVERY_POLICY_H_
