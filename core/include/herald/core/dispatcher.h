// herald/core/dispatcher.h: herald's consumption policy, in one place.
//
// For each record a transport hands over, the Dispatcher runs: decode (a
// record that does not decode is dead-lettered as it is), skip types the
// subscription does not take, middleware, the handler (exceptions become
// errors, see InvokeHandler), then decides: ack; retry after an exponential
// backoff with jitter while the error is retryable (IsRetryable, status.h)
// and attempts remain; otherwise publish a dead letter (delivery_policy.h)
// and ack. Nothing is silently dropped: when the dead letter cannot be
// published, the record is retried; when the transport says it is too large
// (IsRecordTooLarge), it is cut down until it fits (CutDeadLetter), so one
// record never stalls its partition for ever.
//
// A dead letter is the record as it was read (delivery_policy.h): the same
// bytes and headers when the transport moved bytes, the same envelope when it
// moved envelopes.
//
// A dead-letter subscription (Bus::SubscribeDeadLetters) has a Dispatcher
// made with a DeadLetterHandler: every record goes to the handler as a
// DeadLetter, undecoded ones included, and nothing is ever dead-lettered
// from it.
//
// Bus::Subscribe builds Dispatchers; transports see only the RecordHandler
// that calls Dispatch. Thread-safe: Dispatch may be called concurrently (one
// call per partition).
#ifndef HERALD_CORE_DISPATCHER_H_
#define HERALD_CORE_DISPATCHER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "herald/core/delivery_policy.h"
#include "herald/core/log.h"
#include "herald/core/message.h"
#include "herald/core/metrics.h"
#include "herald/core/tracing.h"
#include "herald/core/transport.h"

namespace herald {

class TypeRegistry;

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
  std::atomic<int64_t> undecodable{0};    // records that did not decode
  // Dead letters written without their value (or also without key and
  // headers) because they were too large for the dead-letter topic.
  std::atomic<int64_t> dead_letters_cut{0};
};

// Calls `handler` with `message` as CurrentMessage(), and turns an exception
// it throws into kInternal ("handler threw: ..."), which is permanent: the
// message is dead-lettered, never retried in a loop and never allowed to
// crash a transport thread. The one place where herald calls user handlers.
absl::Status InvokeHandler(const Handler& handler, const Message& message);
// The same for a dead-letter handler.
absl::Status InvokeHandler(const DeadLetterHandler& handler, const DeadLetter& dead_letter);

// The DeadLetter view of a record read from a dead-letter topic: its
// coordinates, the raw record (or envelope) and the parsed herald-dlq-*
// headers.
DeadLetter ReadDeadLetter(const ReceivedRecord& record);

namespace internal {
class DispatchMetrics;
}  // namespace internal

class Dispatcher {
 public:
  // `transport` publishes the dead letters and must outlive this. With
  // `metrics`, which must outlive this too, the outcomes and the handler's
  // latency are reported per topic and group (docs/operations.md). With
  // `tracer` (must outlive this too), each Dispatch is one "process <topic>"
  // span (tracing.h), child of the record's `traceparent`, ended with the
  // outcome and the error. To `log` (must outlive this; default
  // DefaultLogSink()), handler failures and dead letters are logged as
  // warnings, each handled or skipped event at debug (component "bus").
  Dispatcher(Transport& transport, SubscribeOptions options, Handler handler, Metrics* metrics = nullptr,
             Tracer* tracer = nullptr, LogSink* log = nullptr);
  // A dead-letter subscription: each record goes to `handler` as a
  // DeadLetter; an error is retried with options.retry's backoff while it is
  // retryable and attempts remain, then every options.retry.max_backoff
  // until the handler acknowledges it (a dead letter is never dead-lettered
  // again; return OK to pass one by). options.middleware, accepted_types and
  // dead_letter are not used.
  Dispatcher(Transport& transport, SubscribeOptions options, DeadLetterHandler handler, Metrics* metrics = nullptr,
             Tracer* tracer = nullptr, LogSink* log = nullptr);
  ~Dispatcher();

  // Decodes the record when the transport moved bytes (a record that does
  // not decode is dead-lettered as it is, whatever options().dead_letter
  // says, and retried while that fails), then decides as
  // Dispatch(Message) does, dead-lettering the record as it was read.
  // Blocks while publishing a dead letter. A dead-letter subscription hands
  // the record to its handler instead (see the constructor).
  Verdict Dispatch(const ReceivedRecord& record);
  // Decides what to do with one decoded delivery (dead letter: the
  // message's envelope).
  Verdict Dispatch(const Message& message);

  const DispatchStats& stats() const { return stats_; }
  const SubscribeOptions& options() const { return options_; }

  // The dead-letter envelope for `message` failed with `error`.
  static Envelope MakeDeadLetter(const Message& message, const absl::Status& error, const DeadLetterPolicy& policy);
  // The dead-letter record for `record` (read as bytes) failed with `error`
  // after `record.attempt` attempts: its key, value and headers as read,
  // plus the herald-dlq-* headers.
  static Record MakeDeadLetter(const ReceivedRecord& record, const absl::Status& error);

 private:
  enum class Outcome { kHandled, kRetried, kDeadLettered, kSkipped };
  // What one delivery came to: the verdict, the outcome counted, and the
  // error (OK when handled or skipped).
  struct Result {
    Verdict verdict;
    Outcome outcome = Outcome::kHandled;
    absl::Status error;
  };
  // Counts `outcome` in stats() and, with Metrics, for `topic`.
  void Count(Outcome outcome, std::string_view topic);
  // Runs `decide` for one delivery, counts its outcome and, with a tracer,
  // runs it inside its "process" span (parent: `headers`' traceparent).
  // `message` (when decoded) or `record` describes the delivery.
  template <typename DecideFn>
  Verdict Run(const ReceivedRecord* record, const Message* message, DecideFn&& decide);
  // Logs a handler's failure (or a dead letter) of the delivery at
  // `topic`/`partition`@`offset`.
  void LogFailure(std::string_view what, const absl::Status& status, std::string_view topic, int32_t partition,
                  int64_t offset, int attempt, std::string_view id);
  // `raw` is the record as read when the transport moved bytes, else null.
  Result Decide(const Message& message, const ReceivedRecord* raw);
  Result DeadLetterUndecodable(const ReceivedRecord& record, const absl::Status& error);
  Result DispatchDeadLetter(const ReceivedRecord& record);
  // Publishes the dead letter, cut down while the transport says it is too
  // large. OK once it is written.
  absl::Status PublishDeadLetter(std::string topic, Record dead);
  absl::Status PublishDeadLetter(Envelope dead);

  Transport& transport_;
  SubscribeOptions options_;
  Handler chain_;
  DeadLetterHandler dead_letter_handler_;
  DispatchStats stats_;
  std::unique_ptr<internal::DispatchMetrics> metrics_;  // null without Metrics
  Tracer* const tracer_;                                // null: no spans
  LogSink& log_;
};

}  // namespace herald

#endif  // HERALD_CORE_DISPATCHER_H_
