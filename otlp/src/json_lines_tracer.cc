#include "herald/otlp/json_lines_tracer.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/random/random.h"
#include "herald/core/strings.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace herald::otlp {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// The length of the valid UTF-8 sequence at text[i], or 0 when the byte
// there does not start one (RFC 3629: no overlongs, no surrogates, at most
// U+10FFFF).
size_t Utf8SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n;
  unsigned char low = 0x80, high = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) low = 0xa0;
    if (c == 0xed) high = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) low = 0x90;
    if (c == 0xf4) high = 0x8f;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return 0;
  }
  return n;
}

void String(JsonWriter& w, std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    size_t n = Utf8SequenceLength(text, i);
    if (n == 0) break;
    i += n;
  }
  if (i == text.size()) {
    w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
    return;
  }
  std::string clean;
  clean.reserve(text.size() + 8);
  for (i = 0; i < text.size();) {
    size_t n = Utf8SequenceLength(text, i);
    if (n == 0) {
      clean += "\xef\xbf\xbd";  // U+FFFD
      ++i;
    } else {
      clean.append(text.substr(i, n));
      i += n;
    }
  }
  w.String(clean.data(), static_cast<rapidjson::SizeType>(clean.size()));
}

void Key(JsonWriter& w, const char* key) { w.Key(key); }

void AnyValue(JsonWriter& w, const AttributeValue& value) {
  w.StartObject();
  if (const auto* s = std::get_if<std::string>(&value)) {
    Key(w, "stringValue");
    String(w, *s);
  } else if (const auto* i = std::get_if<int64_t>(&value)) {
    Key(w, "intValue");  // int64: a string in the protobuf JSON mapping
    String(w, herald::StrCat(*i));
  } else if (const auto* b = std::get_if<bool>(&value)) {
    Key(w, "boolValue");
    w.Bool(*b);
  } else {
    const double d = std::get<double>(value);
    Key(w, "doubleValue");
    if (std::isnan(d)) {
      String(w, "NaN");
    } else if (std::isinf(d)) {
      String(w, d > 0 ? "Infinity" : "-Infinity");
    } else {
      w.Double(d);
    }
  }
  w.EndObject();
}

void Attributes(JsonWriter& w, const SpanAttributes& attributes) {
  w.StartArray();
  for (const auto& [key, value] : attributes) {
    w.StartObject();
    Key(w, "key");
    String(w, key);
    Key(w, "value");
    AnyValue(w, value);
    w.EndObject();
  }
  w.EndArray();
}

// SpanKind of opentelemetry/proto/trace/v1/trace.proto.
int OtlpKind(SpanKind kind) {
  switch (kind) {
    case SpanKind::kInternal:
      return 1;
    case SpanKind::kProducer:
      return 4;
    case SpanKind::kConsumer:
      return 5;
  }
  return 0;
}

std::array<uint8_t, 8> RandomSpanId(absl::BitGen& gen) {
  std::array<uint8_t, 8> id{};
  do {
    uint64_t bits = absl::Uniform<uint64_t>(gen);
    std::memcpy(id.data(), &bits, id.size());
  } while (id == std::array<uint8_t, 8>{});
  return id;
}

std::array<uint8_t, 16> RandomTraceId(absl::BitGen& gen) {
  std::array<uint8_t, 16> id{};
  do {
    for (size_t half = 0; half < 2; ++half) {
      uint64_t bits = absl::Uniform<uint64_t>(gen);
      std::memcpy(id.data() + 8 * half, &bits, 8);
    }
  } while (id == std::array<uint8_t, 16>{});
  return id;
}

}  // namespace

std::string FormatOtlpJson(const SpanRecord& span, const JsonLinesTracerOptions& options) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  Key(w, "resourceSpans");
  w.StartArray();
  w.StartObject();
  Key(w, "resource");
  w.StartObject();
  Key(w, "attributes");
  SpanAttributes resource = {{"service.name", options.service_name}};
  resource.insert(resource.end(), options.resource_attributes.begin(), options.resource_attributes.end());
  Attributes(w, resource);
  w.EndObject();
  Key(w, "scopeSpans");
  w.StartArray();
  w.StartObject();
  Key(w, "scope");
  w.StartObject();
  Key(w, "name");
  String(w, options.scope_name);
  w.EndObject();
  Key(w, "spans");
  w.StartArray();
  w.StartObject();
  Key(w, "traceId");
  String(w, TraceIdHex(span.context));
  Key(w, "spanId");
  String(w, SpanIdHex(span.context));
  if (span.parent_span_id.has_value()) {
    TraceContext parent;
    parent.span_id = *span.parent_span_id;
    Key(w, "parentSpanId");
    String(w, SpanIdHex(parent));
  }
  Key(w, "flags");  // W3C trace flags in the low byte
  w.Uint(span.context.flags);
  Key(w, "name");
  String(w, span.name);
  Key(w, "kind");
  w.Int(OtlpKind(span.kind));
  Key(w, "startTimeUnixNano");  // fixed64: a string
  String(w, herald::StrCat(absl::ToUnixNanos(span.start)));
  Key(w, "endTimeUnixNano");
  String(w, herald::StrCat(absl::ToUnixNanos(span.end)));
  Key(w, "attributes");
  if (span.status.ok()) {
    Attributes(w, span.attributes);
  } else {
    SpanAttributes attributes = span.attributes;
    attributes.emplace_back("error.type", absl::StatusCodeToString(span.status.code()));
    Attributes(w, attributes);
  }
  Key(w, "status");
  w.StartObject();
  if (!span.status.ok()) {
    Key(w, "message");
    String(w, herald::StrCat(absl::StatusCodeToString(span.status.code()), ": ", ToStd(span.status.message())));
    Key(w, "code");
    w.Int(2);  // STATUS_CODE_ERROR
  }
  w.EndObject();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

class JsonLinesTracer::JsonSpan final : public Span {
 public:
  JsonSpan(JsonLinesTracer& tracer, SpanRecord record) : tracer_(tracer), record_(std::move(record)) {}
  ~JsonSpan() override {
    if (!ended_) End(absl::OkStatus());
  }

  const TraceContext& context() const override { return record_.context; }

  void SetAttribute(std::string_view key, AttributeValue value) override {
    for (auto& [name, old] : record_.attributes) {
      if (name == key) {
        old = std::move(value);
        return;
      }
    }
    record_.attributes.emplace_back(std::string(key), std::move(value));
  }

  void End(const absl::Status& status) override {
    if (ended_) return;
    ended_ = true;
    record_.end = absl::Now();
    record_.status = status;
    tracer_.Write(record_);
  }

 private:
  JsonLinesTracer& tracer_;
  SpanRecord record_;
  bool ended_ = false;
};

absl::StatusOr<std::unique_ptr<JsonLinesTracer>> JsonLinesTracer::Open(JsonLinesTracerOptions options) {
  if (options.path.empty()) return absl::InvalidArgumentError("JsonLinesTracer: the path is empty");
  std::FILE* file = std::fopen(options.path.c_str(), "ae");
  if (file == nullptr) {
    return absl::UnavailableError(
        herald::StrCat("JsonLinesTracer: cannot open ", options.path, " for appending: ", std::strerror(errno)));
  }
  return std::unique_ptr<JsonLinesTracer>(new JsonLinesTracer(std::move(options), file));
}

JsonLinesTracer::JsonLinesTracer(JsonLinesTracerOptions options, std::FILE* file)
    : options_(std::move(options)), file_(file, &std::fclose) {}

JsonLinesTracer::~JsonLinesTracer() = default;

std::unique_ptr<Span> JsonLinesTracer::StartSpan(SpanStart start) {
  thread_local absl::BitGen gen;  // seeded from the OS's entropy, per thread
  SpanRecord record;
  if (start.parent.has_value() && start.parent->valid()) {
    record.context.trace_id = start.parent->trace_id;
    record.context.flags = start.parent->flags;
    record.parent_span_id = start.parent->span_id;
  } else {
    record.context.trace_id = RandomTraceId(gen);
    record.context.flags = 0x01;  // sampled
  }
  record.context.span_id = RandomSpanId(gen);
  record.name = std::move(start.name);
  record.kind = start.kind;
  record.attributes = std::move(start.attributes);
  record.start = absl::Now();
  return std::make_unique<JsonSpan>(*this, std::move(record));
}

void JsonLinesTracer::Write(const SpanRecord& span) {
  std::string line = FormatOtlpJson(span, options_);
  line.push_back('\n');
  MutexLock lock(mu_);
  if (std::fwrite(line.data(), 1, line.size(), file_.get()) != line.size() || std::fflush(file_.get()) != 0) {
    if (write_error_.ok()) {
      write_error_ = absl::UnavailableError(
          herald::StrCat("JsonLinesTracer: cannot write to ", options_.path, ": ", std::strerror(errno)));
    }
    return;
  }
  spans_written_.fetch_add(1, std::memory_order_relaxed);
}

absl::Status JsonLinesTracer::write_error() const {
  MutexLock lock(mu_);
  return write_error_;
}

}  // namespace herald::otlp
