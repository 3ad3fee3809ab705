// herald/otlp/json_lines_tracer.h: a Tracer that appends each finished span
// to a file as one line of OTLP JSON.
//
//   absl::StatusOr<std::unique_ptr<herald::otlp::JsonLinesTracer>> tracer =
//       herald::otlp::JsonLinesTracer::Open({.path = path, .service_name = "orders"});
//   HERALD_RETURN_IF_ERROR(tracer.status());
//   herald::Bus bus(std::move(transport), {.tracer = tracer->get()});
//
// Each line is an ExportTraceServiceRequest in the OpenTelemetry protobuf
// JSON mapping (OTLP/JSON: hex trace and span ids, enums as numbers, 64-bit
// integers as strings), holding one resource (service.name and the
// options' resource attributes), one scope ("herald") and one span: what
// the OpenTelemetry Collector's file exporter writes, and what its
// otlpjsonfile receiver reads and forwards to any backend.
//
// Trace and span ids come from Abseil's BitGen (seeded from the operating
// system's entropy), never all zeros. A span without a parent starts a new
// trace, sampled (flags 01); a child keeps its parent's trace id and flags.
// Every span is written, whatever its sampled flag.
//
// Thread-safety: StartSpan from any thread, concurrently; lines are written
// whole, one at a time. The tracer must outlive every Span it started (and
// so the Bus and relay that use it).
#ifndef HERALD_OTLP_JSON_LINES_TRACER_H_
#define HERALD_OTLP_JSON_LINES_TRACER_H_

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "herald/core/mutex.h"
#include "herald/core/tracing.h"

namespace herald::otlp {

struct JsonLinesTracerOptions {
  // The file spans are appended to (created when missing). Required.
  std::string path;
  // The resource attribute service.name. Default: "herald".
  std::string service_name = "herald";
  // More resource attributes (service.version, deployment.environment.name,
  // ...), written after service.name. Default: none.
  SpanAttributes resource_attributes;
  // The instrumentation scope's name. Default: "herald".
  std::string scope_name = "herald";
};

// One finished span, as written.
struct SpanRecord {
  TraceContext context;
  // The parent's span id; none for a root span.
  std::optional<std::array<uint8_t, 8>> parent_span_id;
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  absl::Time start = absl::UnixEpoch();
  absl::Time end = absl::UnixEpoch();
  SpanAttributes attributes;
  // OK: status unset (code 0); an error: code 2 (ERROR) with its message,
  // and the attribute error.type = the status code's name.
  absl::Status status;
};

// The OTLP JSON line (without the newline) for `span` under `options`'
// resource and scope. Text that is not UTF-8 is written with U+FFFD for
// each bad byte.
std::string FormatOtlpJson(const SpanRecord& span, const JsonLinesTracerOptions& options);

class JsonLinesTracer final : public Tracer {
 public:
  // Opens options.path for appending. kInvalidArgument for an empty path,
  // kUnavailable (with the system's reason) when it cannot be opened.
  static absl::StatusOr<std::unique_ptr<JsonLinesTracer>> Open(JsonLinesTracerOptions options);
  ~JsonLinesTracer() override;
  JsonLinesTracer(const JsonLinesTracer&) = delete;
  JsonLinesTracer& operator=(const JsonLinesTracer&) = delete;

  // The span is written at End (flushed at once). A span destroyed without
  // End is ended then, with its status unset.
  std::unique_ptr<Span> StartSpan(SpanStart start) override;

  // Spans written so far.
  int64_t spans_written() const { return spans_written_.load(std::memory_order_relaxed); }
  // The first write error (a full disk), OK when none: tracing never fails
  // the program, so spans that cannot be written are dropped and counted
  // here.
  absl::Status write_error() const;

 private:
  class JsonSpan;
  JsonLinesTracer(JsonLinesTracerOptions options, std::FILE* file);
  void Write(const SpanRecord& span);

  const JsonLinesTracerOptions options_;
  std::atomic<int64_t> spans_written_{0};
  mutable Mutex mu_;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_ ABSL_GUARDED_BY(mu_);
  absl::Status write_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald::otlp

#endif  // HERALD_OTLP_JSON_LINES_TRACER_H_
