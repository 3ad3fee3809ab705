// Fuzzes the typed JSON mapping (herald/core/json.h) and DecodeEvent: the
// input is a payload. It is decoded as the sample CustomerEvent (what a typed
// handler does), as a struct that uses every supported member type, and as a
// plain document.
//
// Properties: never a crash; a rejection is kInvalidArgument; what decodes
// encodes to JSON that decodes to an equal value (floating point within two
// ulps); what json::Serialize writes, json::Parse reads.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "fuzz_support.h"
#include "herald/core/event.h"
#include "herald/core/json.h"
#include "herald/testing/sample_events.h"

namespace herald::fuzz {
namespace {

enum class Color { kRed, kGreen };
constexpr auto JsonEnumNames(Color) {
  return std::array{std::pair{Color::kRed, std::string_view("red")},
                    std::pair{Color::kGreen, std::string_view("green")}};
}

struct Inner {
  std::string name;
  std::optional<int64_t> n;
  friend bool operator==(const Inner&, const Inner&) = default;
  static constexpr auto JsonFields() { return json::Fields(json::Field("name", &Inner::name), json::Field("n", &Inner::n)); }
};

struct Every {
  std::string s;
  bool b = false;
  int8_t i8 = 0;
  int32_t i32 = 0;
  int64_t i64 = 0;
  uint16_t u16 = 0;
  uint64_t u64 = 0;
  double d = 0;
  float f = 0;
  absl::Time t = absl::UnixEpoch();
  Color c = Color::kRed;
  std::optional<std::string> o;
  std::vector<int32_t> v;
  std::map<std::string, Inner> m;
  std::vector<Inner> list;
  Inner inner;
  json::RawJson raw;

  static constexpr auto JsonFields() {
    return json::Fields(json::Field("s", &Every::s), json::Field("b", &Every::b), json::Field("i8", &Every::i8),
                        json::Field("i32", &Every::i32), json::Field("i64", &Every::i64),
                        json::Field("u16", &Every::u16), json::Field("u64", &Every::u64), json::Field("d", &Every::d),
                        json::Field("f", &Every::f), json::Field("t", &Every::t), json::Field("c", &Every::c),
                        json::Field("o", &Every::o), json::Field("v", &Every::v), json::Field("m", &Every::m),
                        json::Field("list", &Every::list), json::Field("inner", &Every::inner),
                        json::Field("raw", &Every::raw));
  }
};

// Floating point compared to within two ulps: RapidJSON's default number
// parsing is not always correctly rounded, so a number can move by an ulp
// on a round trip (docs/fuzzing.md, finding 3). Anything more is a bug.
template <typename T>
bool Close(T a, T b) {
  if (a == b) return true;
  if (!std::isfinite(a) || !std::isfinite(b) || std::signbit(a) != std::signbit(b)) return false;
  using Bits = std::conditional_t<sizeof(T) == 8, int64_t, int32_t>;
  Bits x, y;
  std::memcpy(&x, &a, sizeof(T));
  std::memcpy(&y, &b, sizeof(T));
  return (x > y ? x - y : y - x) <= 2;
}

// Two JSON values equal up to Close() numbers (a RawJson member keeps the
// text of its value, and a number in it can move by an ulp).
bool SameJson(const rapidjson::Value& a, const rapidjson::Value& b) {
  if (a.IsNumber() && b.IsNumber()) return Close(a.GetDouble(), b.GetDouble());
  if (a.GetType() != b.GetType()) return false;
  if (a.IsArray()) {
    if (a.Size() != b.Size()) return false;
    for (rapidjson::SizeType i = 0; i < a.Size(); ++i) {
      if (!SameJson(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.IsObject()) {
    if (a.MemberCount() != b.MemberCount()) return false;
    for (auto x = a.MemberBegin(), y = b.MemberBegin(); x != a.MemberEnd(); ++x, ++y) {
      if (!(x->name == y->name) || !SameJson(x->value, y->value)) return false;
    }
    return true;
  }
  return a == b;
}

bool SameRaw(const json::RawJson& a, const json::RawJson& b) {
  rapidjson::Document x, y;
  if (!json::Parse(a.text, x).ok() || !json::Parse(b.text, y).ok()) return a == b;
  return SameJson(x, y);
}

bool Equal(const Every& a, const Every& b) {
  return a.s == b.s && a.b == b.b && a.i8 == b.i8 && a.i32 == b.i32 && a.i64 == b.i64 && a.u16 == b.u16 &&
         a.u64 == b.u64 && Close(a.d, b.d) && Close(a.f, b.f) && a.t == b.t && a.c == b.c && a.o == b.o && a.v == b.v &&
         a.m == b.m && a.list == b.list && a.inner == b.inner && SameRaw(a.raw, b.raw);
}

void CheckEvery(std::string_view input) {
  absl::StatusOr<Every> decoded = json::Decode<Every>(input);
  CheckRejection(decoded.status(), "json::Decode failed with a code other than kInvalidArgument");
  if (!decoded.ok()) return;
  const std::string text = json::Encode(*decoded);
  absl::StatusOr<Every> again = json::Decode<Every>(text);
  if (!again.ok()) Fail("json::Encode wrote what json::Decode rejects", text + "\n" + again.status().ToString());
  if (!Equal(*decoded, *again)) Fail("json::Decode(json::Encode(x)) != x", text + "\n" + json::Encode(*again));
}

void CheckEvent(std::string_view input) {
  Envelope e;
  e.id = "fuzz";
  e.type = "customer.updated";
  e.payload = std::string(input);
  using ::herald::testing::CustomerEvent;
  absl::StatusOr<CustomerEvent> event = DecodeEvent<CustomerEvent>(e);
  CheckRejection(event.status(), "DecodeEvent failed with a code other than kInvalidArgument");
  if (!event.ok()) return;
  e.payload = EventTraits<CustomerEvent>::EncodePayload(*event);
  absl::StatusOr<CustomerEvent> again = DecodeEvent<CustomerEvent>(e);
  if (!again.ok()) Fail("an encoded CustomerEvent does not decode", e.payload + "\n" + again.status().ToString());
  if (again->customer_id != event->customer_id || again->details != event->details || again->type != event->type) {
    Fail("DecodeEvent(encode(x)) != x", e.payload);
  }
}

void CheckDocument(std::string_view input) {
  rapidjson::Document d;
  absl::Status parsed = json::Parse(input, d);
  CheckRejection(parsed, "json::Parse failed with a code other than kInvalidArgument");
  if (json::Validate(input).ok() != parsed.ok()) Fail("json::Validate and json::Parse disagree", std::string(input));
  if (!parsed.ok()) return;
  const std::string text = json::Serialize(d);
  rapidjson::Document again;
  if (absl::Status s = json::Parse(text, again); !s.ok()) {
    Fail("json::Serialize wrote what json::Parse rejects", text + "\n" + s.ToString());
  }
}

}  // namespace
}  // namespace herald::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  herald::fuzz::CheckEvery(input);
  herald::fuzz::CheckEvent(input);
  herald::fuzz::CheckDocument(input);
  return 0;
}
