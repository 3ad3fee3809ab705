// herald/core/tracing.h: the one tracing hook herald reports spans through,
// and W3C trace context (`traceparent`) parsing and formatting.
//
//   herald::Bus bus(std::move(transport), {.tracer = &tracer});
//   herald::OutboxRelay relay(store, bus, {.tracer = &tracer});
//
// Connect OpenTelemetry (or anything else) by implementing Tracer, or use
// herald::otlp::JsonLinesTracer (herald/otlp/json_lines_tracer.h), which
// writes OTLP JSON lines that the OpenTelemetry Collector's otlpjsonfile
// receiver reads (docs/operations.md, "Tracing").
//
// The spans herald starts, and which context a record carries:
// - Bus publish ("send <topic>", kProducer): parent = the envelope's
//   `traceparent` header, else CurrentTraceContext() (e.g. the handler's
//   span when publishing from a handler). The record's `traceparent` is set
//   to this span's context, so the consumer continues from the publish.
// - Relay of one outbox row ("relay <topic>", kProducer), one per publish
//   attempt: parent = the row's `traceparent`. The rule across the outbox:
//   the record keeps the row's `traceparent`, the context of the code that
//   appended the row (the publisher), so a handler's span is a child of the
//   publisher's span, and the relay's span is its sibling in the same trace.
//   The Bus starts no publish span of its own for a relayed row. A row
//   without a `traceparent` gets the relay span's context instead (the relay
//   span then roots the trace and is the handler's parent).
// - Handling ("process <topic>", kConsumer) in the dispatcher, one per
//   delivery attempt: parent = the record's `traceparent`. It ends with the
//   outcome (attribute herald.outcome: handled, retry, dead_letter, skipped)
//   and the handler's error as its status. While the handler runs,
//   CurrentTraceContext() is this span's context, so what the handler
//   publishes (MakeEnvelope, PropagateContext) continues its trace.
// Attribute names follow OpenTelemetry's messaging conventions
// (messaging.destination.name, messaging.message.id, ...) plus herald.*.
//
// Without a tracer (the default) nothing is parsed, allocated or started.
//
// Thread-safety: Tracer::StartSpan is called from any thread, concurrently
// (publishing threads, transport threads, the relay's thread). One Span is
// used by one thread at a time, but End may run on another thread than the
// start (a publish span ends in the transport's delivery callback).
#ifndef HERALD_CORE_TRACING_H_
#define HERALD_CORE_TRACING_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"

namespace herald {

// A W3C trace context (https://www.w3.org/TR/trace-context/): what a
// `traceparent` header carries.
struct TraceContext {
  std::array<uint8_t, 16> trace_id{};
  std::array<uint8_t, 8> span_id{};
  // trace-flags; bit 0 is "sampled".
  uint8_t flags = 0;

  // Both ids are not all zeros.
  bool valid() const;
  bool sampled() const { return (flags & 1) != 0; }
  friend bool operator==(const TraceContext&, const TraceContext&) = default;
};

// Parses a `traceparent` header value ("00-<32 hex>-<16 hex>-<2 hex>").
// Lowercase hex only; version ff, all-zero ids, a wrong length or stray
// characters give std::nullopt. A version above 00 is read as 00 when what
// follows its four fields starts with '-' (the spec's forward
// compatibility rule).
std::optional<TraceContext> ParseTraceparent(std::string_view value);
// The `traceparent` header value of `context` (version 00).
std::string FormatTraceparent(const TraceContext& context);
// Lowercase hex of the ids, as in traceparent and OTLP JSON.
std::string TraceIdHex(const TraceContext& context);
std::string SpanIdHex(const TraceContext& context);

enum class SpanKind { kInternal, kProducer, kConsumer };

// An attribute value: text, integer, boolean or floating point.
using AttributeValue = std::variant<std::string, int64_t, bool, double>;
using SpanAttributes = std::vector<std::pair<std::string, AttributeValue>>;

// What herald asks a Tracer to start.
struct SpanStart {
  // "send orders", "relay orders", "process orders".
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  // The remote parent, from a `traceparent`; none: a new trace.
  std::optional<TraceContext> parent;
  SpanAttributes attributes;
};

// One span, started by Tracer::StartSpan. herald calls End exactly once
// and then destroys it.
class Span {
 public:
  virtual ~Span() = default;
  // This span's own context: its trace id (the parent's when it has one),
  // its new span id, and the flags. herald writes it into `traceparent`.
  virtual const TraceContext& context() const = 0;
  // Adds (or replaces) an attribute before End.
  virtual void SetAttribute(std::string_view key, AttributeValue value) = 0;
  // Ends the span now. `status`: OK, or the error of the operation (the
  // span's status is then an error with its message).
  virtual void End(const absl::Status& status) = 0;
};

class Tracer {
 public:
  virtual ~Tracer() = default;
  // Starts a span now. May return null (e.g. sampled out): herald then
  // starts nothing and propagates the parent's context as it came.
  virtual std::unique_ptr<Span> StartSpan(SpanStart start) = 0;
};

// The trace context of the code running on this thread: the handler's span
// while herald runs a handler with a tracer, or what a ScopedTraceContext
// set. PropagateContext (event.h) writes it as the `traceparent` of events
// made here; Bus publish spans take it as their parent when the envelope
// has no `traceparent`.
std::optional<TraceContext> CurrentTraceContext();

// Sets CurrentTraceContext() on this thread for its lifetime, e.g. around
// an outbox append inside the caller's own span:
//
//   std::unique_ptr<herald::Span> span = tracer.StartSpan({.name = "create customer"});
//   {
//     herald::ScopedTraceContext in_span(span->context());
//     HERALD_RETURN_IF_ERROR(store.Append(*tx, CustomerEvent{.customer_id = "cust-42"}));
//   }
//   span->End(absl::OkStatus());
class ScopedTraceContext {
 public:
  explicit ScopedTraceContext(const TraceContext& context);
  ~ScopedTraceContext();
  ScopedTraceContext(const ScopedTraceContext&) = delete;
  ScopedTraceContext& operator=(const ScopedTraceContext&) = delete;

 private:
  const TraceContext* previous_;
  TraceContext context_;
};

}  // namespace herald

#endif  // HERALD_CORE_TRACING_H_
