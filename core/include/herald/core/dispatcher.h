// herald/core/dispatcher.h: herald's consumption policy, in one place.
//
// For each delivery a transport hands over, the Dispatcher runs: skip types
// the subscription does not take, middleware, the handler (exceptions become
// errors), then decides: ack; retry after an exponential backoff with jitter
// while the error is retryable and attempts remain; otherwise publish a dead
// letter to `<topic>.dlq` and ack. Nothing is silently dropped: when the dead
// letter cannot be published, the message is retried.
//
// A dead letter is the original envelope (same id, type, key, payload and
// headers) plus these headers:
//   herald-dlq-reason          the error message
//   herald-dlq-code            the absl::StatusCode name, e.g. INVALID_ARGUMENT
//   herald-dlq-attempts        delivery attempts made
//   herald-dlq-topic / -partition / -offset / -group   original coordinates
//
// Bus::Subscribe builds Dispatchers; transports never see this policy.
// Thread-safe: Dispatch may be called concurrently (one call per partition).
#ifndef HERALD_CORE_DISPATCHER_H_
#define HERALD_CORE_DISPATCHER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "herald/core/clock.h"
#include "herald/core/event.h"
#include "herald/core/message.h"

namespace herald {

class Bus;
class TypeRegistry;

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
  // partition; nothing is dropped). Default: true.
  bool enabled = true;
  // Dead-letter topic; empty means `<original topic><suffix>`.
  std::string topic;
  // Default: ".dlq".
  std::string suffix = ".dlq";
};

// The dead-letter topic of `topic`: `policy.topic`, or topic + suffix.
std::string DeadLetterTopic(const DeadLetterPolicy& policy, std::string_view topic);

// Adds the herald-dlq-* headers above to `headers`: the one definition of a
// dead letter's headers, used by the dispatcher and by transports for records
// they cannot decode.
void AddDeadLetterHeaders(Headers& headers, const absl::Status& error, int attempts, std::string_view topic,
                          int32_t partition, int64_t offset, std::string_view group);

// Wraps the handler: call `next(message)` to continue, or return early.
using Middleware = std::function<absl::Status(const Message& message, const Handler& next)>;

struct SubscribeOptions {
  // Consumer group. Required.
  std::string group;
  // Topics to read. Typed Subscribe<T> fills in T's topic when empty.
  std::vector<std::string> topics;
  RetryPolicy retry;
  DeadLetterPolicy dead_letter;
  // Run outermost first, around the handler.
  std::vector<Middleware> middleware;
  // Types this subscription handles; empty means all.
  std::vector<std::string> accepted_types;
  // What to do with a type not in `accepted_types`: ack and count it as
  // skipped (true, for typed subscriptions sharing a topic), or dead-letter it
  // as unknown (false). Default: false.
  bool skip_unknown_types = false;
  // Registry for upcasting old schema versions in typed handlers. Optional;
  // must outlive the subscription.
  const TypeRegistry* registry = nullptr;
};

// Counters of one subscription. Read with relaxed loads; monotonic.
struct DispatchStats {
  std::atomic<int64_t> handled{0};        // handler returned OK
  std::atomic<int64_t> retried{0};        // retry verdicts
  std::atomic<int64_t> dead_lettered{0};  // dead letters published
  std::atomic<int64_t> skipped{0};        // types not taken by this subscription
  std::atomic<int64_t> failed{0};         // handler errors of any kind
};

class Dispatcher {
 public:
  // `bus` publishes the dead letters; it and `clock` must outlive this.
  Dispatcher(Bus& bus, SubscribeOptions options, Handler handler, const Clock& clock);

  // Decides what to do with one delivery. Blocks while publishing a dead
  // letter.
  Verdict Dispatch(const Message& message);

  const DispatchStats& stats() const { return stats_; }
  const SubscribeOptions& options() const { return options_; }

  // The dead-letter envelope for `message` failed with `error`.
  static Envelope MakeDeadLetter(const Message& message, const absl::Status& error, const DeadLetterPolicy& policy);

 private:
  absl::Status RunChain(const Message& message);

  Bus& bus_;
  SubscribeOptions options_;
  Handler handler_;
  Handler chain_;
  const Clock& clock_;
  DispatchStats stats_;
};

// Decodes with upcasting when `registry` is set (defined in type_registry.cc).
template <Event T>
absl::StatusOr<T> DecodeWithRegistry(const TypeRegistry* registry, const Envelope& envelope);

namespace internal {
absl::StatusOr<rapidjson::Document> UpcastPayload(const TypeRegistry* registry, const Envelope& envelope,
                                                  int target_version);
}  // namespace internal

template <Event T>
absl::StatusOr<T> DecodeWithRegistry(const TypeRegistry* registry, const Envelope& envelope) {
  if (registry == nullptr) return DecodeEvent<T>(envelope);
  absl::StatusOr<rapidjson::Document> payload =
      internal::UpcastPayload(registry, envelope, EventTraits<T>::SchemaVersion());
  if (!payload.ok()) return payload.status();
  return DecodeEventPayload<T>(envelope.type, *payload);
}

// Adapts a typed handler (callable taking (const T&) or (const T&, const
// Message&), EventHandler<T>&, or shared_ptr<EventHandler<T>>) to a Handler
// that decodes first. Decode errors are kInvalidArgument (dead-lettered).
template <Event T, typename F>
Handler TypedHandler(F&& handler, const TypeRegistry* registry = nullptr) {
  using D = std::remove_cvref_t<F>;
  if constexpr (std::is_base_of_v<EventHandler<T>, D>) {
    EventHandler<T>* target = &handler;
    return [target, registry](const Message& m) -> absl::Status {
      absl::StatusOr<T> event = DecodeWithRegistry<T>(registry, m.envelope);
      if (!event.ok()) return event.status();
      return target->Handle(*event, m);
    };
  } else if constexpr (std::is_convertible_v<D, std::shared_ptr<EventHandler<T>>>) {
    std::shared_ptr<EventHandler<T>> target = handler;
    return [target, registry](const Message& m) -> absl::Status {
      absl::StatusOr<T> event = DecodeWithRegistry<T>(registry, m.envelope);
      if (!event.ok()) return event.status();
      return target->Handle(*event, m);
    };
  } else if constexpr (std::is_invocable_r_v<absl::Status, D&, const T&, const Message&>) {
    return [f = D(std::forward<F>(handler)), registry](const Message& m) mutable -> absl::Status {
      absl::StatusOr<T> event = DecodeWithRegistry<T>(registry, m.envelope);
      if (!event.ok()) return event.status();
      return f(*event, m);
    };
  } else {
    static_assert(std::is_invocable_r_v<absl::Status, D&, const T&>,
                  "a typed handler takes (const T&) or (const T&, const herald::Message&) and returns absl::Status, "
                  "or is an EventHandler<T>");
    return [f = D(std::forward<F>(handler)), registry](const Message& m) mutable -> absl::Status {
      absl::StatusOr<T> event = DecodeWithRegistry<T>(registry, m.envelope);
      if (!event.ok()) return event.status();
      return f(*event);
    };
  }
}

}  // namespace herald

#endif  // HERALD_CORE_DISPATCHER_H_
