#include "herald/core/tracing.h"

#include <algorithm>

namespace herald {
namespace {

thread_local const TraceContext* current_trace_context = nullptr;

// The value of a lowercase hex digit, or -1.
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Reads 2 * out.size() lowercase hex digits from `text`.
template <size_t N>
bool ReadHex(std::string_view text, std::array<uint8_t, N>& out) {
  if (text.size() != 2 * N) return false;
  for (size_t i = 0; i < N; ++i) {
    int high = HexValue(text[2 * i]), low = HexValue(text[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    out[i] = static_cast<uint8_t>(high * 16 + low);
  }
  return true;
}

template <size_t N>
void AppendHex(const std::array<uint8_t, N>& bytes, std::string& out) {
  constexpr char kDigits[] = "0123456789abcdef";
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
}

template <size_t N>
bool AllZero(const std::array<uint8_t, N>& bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

}  // namespace

bool TraceContext::valid() const { return !AllZero(trace_id) && !AllZero(span_id); }

std::optional<TraceContext> ParseTraceparent(std::string_view value) {
  // version "-" trace-id "-" parent-id "-" trace-flags: 2+1+32+1+16+1+2.
  constexpr size_t kLength = 55;
  if (value.size() < kLength) return std::nullopt;
  std::array<uint8_t, 1> version{}, flags{};
  if (!ReadHex(value.substr(0, 2), version) || version[0] == 0xff) return std::nullopt;
  // Version 00 has exactly four fields; a later version may append more
  // after a '-', which a version-00 reader ignores.
  if (version[0] == 0 ? value.size() != kLength : (value.size() > kLength && value[kLength] != '-')) {
    return std::nullopt;
  }
  if (value[2] != '-' || value[35] != '-' || value[52] != '-') return std::nullopt;
  TraceContext context;
  if (!ReadHex(value.substr(3, 32), context.trace_id) || !ReadHex(value.substr(36, 16), context.span_id) ||
      !ReadHex(value.substr(53, 2), flags)) {
    return std::nullopt;
  }
  context.flags = flags[0];
  if (!context.valid()) return std::nullopt;
  return context;
}

std::string FormatTraceparent(const TraceContext& context) {
  std::string out = "00-";
  out.reserve(55);
  AppendHex(context.trace_id, out);
  out.push_back('-');
  AppendHex(context.span_id, out);
  out.push_back('-');
  AppendHex(std::array<uint8_t, 1>{context.flags}, out);
  return out;
}

std::string TraceIdHex(const TraceContext& context) {
  std::string out;
  AppendHex(context.trace_id, out);
  return out;
}

std::string SpanIdHex(const TraceContext& context) {
  std::string out;
  AppendHex(context.span_id, out);
  return out;
}

std::optional<TraceContext> CurrentTraceContext() {
  if (current_trace_context == nullptr) return std::nullopt;
  return *current_trace_context;
}

ScopedTraceContext::ScopedTraceContext(const TraceContext& context)
    : previous_(current_trace_context), context_(context) {
  current_trace_context = &context_;
}

ScopedTraceContext::~ScopedTraceContext() { current_trace_context = previous_; }

}  // namespace herald
