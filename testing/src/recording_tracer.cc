#include "herald/testing/recording_tracer.h"

#include <utility>

#include "herald/core/strings.h"

namespace herald::testing {

std::optional<std::string> RecordedSpan::Attribute(std::string_view key) const {
  for (const auto& [name, value] : attributes) {
    if (name != key) continue;
    if (const auto* s = std::get_if<std::string>(&value)) return *s;
    if (const auto* i = std::get_if<int64_t>(&value)) return herald::StrCat(*i);
    if (const auto* b = std::get_if<bool>(&value)) return std::string(*b ? "true" : "false");
    return herald::StrCat(std::get<double>(value));
  }
  return std::nullopt;
}

class RecordingTracer::RecordingSpan final : public Span {
 public:
  RecordingSpan(RecordingTracer& tracer, size_t index, TraceContext context)
      : tracer_(tracer), index_(index), context_(context) {}
  const TraceContext& context() const override { return context_; }
  void SetAttribute(std::string_view key, AttributeValue value) override {
    MutexLock lock(tracer_.mu_);
    SpanAttributes& attributes = tracer_.spans_[index_].attributes;
    for (auto& [name, old] : attributes) {
      if (name == key) {
        old = std::move(value);
        return;
      }
    }
    attributes.emplace_back(std::string(key), std::move(value));
  }
  void End(const absl::Status& status) override {
    MutexLock lock(tracer_.mu_);
    RecordedSpan& span = tracer_.spans_[index_];
    span.ended = true;
    span.status = status;
  }

 private:
  RecordingTracer& tracer_;
  const size_t index_;
  const TraceContext context_;
};

std::unique_ptr<Span> RecordingTracer::StartSpan(SpanStart start) {
  MutexLock lock(mu_);
  RecordedSpan span;
  span.name = std::move(start.name);
  span.kind = start.kind;
  span.parent = start.parent;
  span.attributes = std::move(start.attributes);
  if (start.parent.has_value()) {
    span.context.trace_id = start.parent->trace_id;
    span.context.flags = start.parent->flags;
  } else {
    uint64_t trace = next_trace_++;
    for (int i = 0; i < 8; ++i) span.context.trace_id[15 - i] = static_cast<uint8_t>(trace >> (8 * i));
    span.context.flags = 1;
  }
  const uint64_t id = spans_.size() + 1;
  for (int i = 0; i < 8; ++i) span.context.span_id[7 - i] = static_cast<uint8_t>(id >> (8 * i));
  spans_.push_back(span);
  return std::make_unique<RecordingSpan>(*this, spans_.size() - 1, span.context);
}

std::vector<RecordedSpan> RecordingTracer::spans() const {
  MutexLock lock(mu_);
  return spans_;
}

std::vector<RecordedSpan> RecordingTracer::Ended(std::string_view name) const {
  MutexLock lock(mu_);
  std::vector<RecordedSpan> out;
  for (const RecordedSpan& s : spans_) {
    if (s.ended && s.name == name) out.push_back(s);
  }
  return out;
}

}  // namespace herald::testing
