// herald/testing/recording_tracer.h: a Tracer (herald/core/tracing.h) that
// keeps every span in memory, for tests of what herald traces.
//
//   herald::testing::RecordingTracer tracer;
//   herald::Bus bus(std::make_unique<herald::testing::FakeTransport>(), {.tracer = &tracer});
//
// Ids are sequential (trace 1, 2, ...; span 1, 2, ...), so failures read
// easily. Thread-safety: every method may be called concurrently.
#ifndef HERALD_TESTING_RECORDING_TRACER_H_
#define HERALD_TESTING_RECORDING_TRACER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "herald/core/mutex.h"
#include "herald/core/tracing.h"

namespace herald::testing {

struct RecordedSpan {
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  std::optional<TraceContext> parent;
  TraceContext context;
  SpanAttributes attributes;
  bool ended = false;
  absl::Status status;  // as ended

  // The attribute `key` as text (integers and booleans printed); nullopt
  // when absent.
  std::optional<std::string> Attribute(std::string_view key) const;
};

class RecordingTracer final : public Tracer {
 public:
  std::unique_ptr<Span> StartSpan(SpanStart start) override;

  // Every span started, in start order, ended or not.
  std::vector<RecordedSpan> spans() const;
  // The ended spans called `name`, in start order.
  std::vector<RecordedSpan> Ended(std::string_view name) const;

 private:
  class RecordingSpan;
  mutable Mutex mu_;
  std::vector<RecordedSpan> spans_ ABSL_GUARDED_BY(mu_);
  uint64_t next_trace_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace herald::testing

#endif  // HERALD_TESTING_RECORDING_TRACER_H_
