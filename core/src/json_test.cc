#include "herald/core/json.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/testing/status_matchers.h"

namespace herald::json {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::IsOkAndHolds;
using ::herald::testing::StatusIs;
using ::testing::HasSubstr;

enum class Color { kRed, kGreen, kBlue };
constexpr auto JsonEnumNames(Color) {
  return std::array{std::pair{Color::kRed, std::string_view("red")},
                    std::pair{Color::kGreen, std::string_view("green")},
                    std::pair{Color::kBlue, std::string_view("blue")}};
}

struct Line {
  std::string sku;
  int32_t qty = 0;
  friend bool operator==(const Line&, const Line&) = default;
  static constexpr auto JsonFields() { return Fields(Field("sku", &Line::sku), Field("qty", &Line::qty)); }
};

struct Everything {
  std::string text;
  bool flag = false;
  int8_t i8 = 0;
  int16_t i16 = 0;
  int32_t i32 = 0;
  int64_t i64 = 0;
  uint8_t u8 = 0;
  uint32_t u32 = 0;
  uint64_t u64 = 0;
  float f = 0;
  double d = 0;
  absl::Time when = absl::UnixEpoch();
  std::optional<std::string> maybe;
  std::optional<int> maybe_int;
  std::vector<Line> items;
  std::map<std::string, int> counts;
  Color color = Color::kRed;
  RawJson extra;
  Line main;
  friend bool operator==(const Everything&, const Everything&) = default;
  static constexpr auto JsonFields() {
    return Fields(Field("text", &Everything::text), Field("flag", &Everything::flag), Field("i8", &Everything::i8),
                  Field("i16", &Everything::i16), Field("i32", &Everything::i32), Field("i64", &Everything::i64),
                  Field("u8", &Everything::u8), Field("u32", &Everything::u32), Field("u64", &Everything::u64),
                  Field("f", &Everything::f), Field("d", &Everything::d), Field("when", &Everything::when),
                  Field("maybe", &Everything::maybe), Field("maybe_int", &Everything::maybe_int),
                  Field("items", &Everything::items), Field("counts", &Everything::counts),
                  Field("color", &Everything::color), Field("extra", &Everything::extra),
                  Field("main", &Everything::main));
  }
};

Everything Full() {
  Everything e;
  e.text = "h\u00e9llo \"quoted\"\n";
  e.flag = true;
  e.i8 = -128;
  e.i16 = 32767;
  e.i32 = -2000000000;
  e.i64 = std::numeric_limits<int64_t>::min();
  e.u8 = 255;
  e.u32 = 4000000000u;
  e.u64 = std::numeric_limits<uint64_t>::max();
  e.f = 1.5f;
  e.d = -0.125;
  e.when = absl::FromUnixMillis(1764226889123);
  e.maybe = "here";
  e.maybe_int = 0;
  e.items = {{"a", 1}, {"b", 2}};
  e.counts = {{"x", 1}, {"y", -2}};
  e.color = Color::kBlue;
  e.extra = RawJson{R"({"any":[1,true,null,"s"]})"};
  e.main = {"m", 9};
  return e;
}

TEST(Json, EveryMemberTypeRoundTrips) {
  Everything e = Full();
  std::string text = Encode(e);
  EXPECT_THAT(Decode<Everything>(text), IsOkAndHolds(e)) << text;
}

TEST(Json, EncodesMembersInFieldOrderWithExpectedShapes) {
  std::string text = Encode(Full());
  EXPECT_THAT(text, HasSubstr(R"("i64":-9223372036854775808)"));
  EXPECT_THAT(text, HasSubstr(R"("u64":18446744073709551615)"));
  EXPECT_THAT(text, HasSubstr(R"("when":"2025-11-27T07:01:29.123Z")"));
  EXPECT_THAT(text, HasSubstr(R"("items":[{"sku":"a","qty":1},{"sku":"b","qty":2}])"));
  EXPECT_THAT(text, HasSubstr(R"("color":"blue")"));
  EXPECT_THAT(text, HasSubstr(R"("extra":{"any":[1,true,null,"s"]})"));
  EXPECT_LT(text.find("\"text\""), text.find("\"main\""));
}

TEST(Json, AbsentMembersKeepDefaultsAndUnknownAreIgnored) {
  absl::StatusOr<Line> line = Decode<Line>(R"({"sku":"a","future_field":{"x":[1,2]},"another":3})");
  ASSERT_THAT(line, IsOk());
  EXPECT_EQ(line->sku, "a");
  EXPECT_EQ(line->qty, 0);
  EXPECT_THAT(Decode<Everything>("{}"), IsOkAndHolds(Everything{}));
}

TEST(Json, OptionalAbsentOrNullIsEmpty) {
  absl::StatusOr<Everything> absent = Decode<Everything>(R"({"text":"t"})");
  ASSERT_THAT(absent, IsOk());
  EXPECT_FALSE(absent->maybe.has_value());
  absl::StatusOr<Everything> null = Decode<Everything>(R"({"maybe":null,"maybe_int":null})");
  ASSERT_THAT(null, IsOk());
  EXPECT_FALSE(null->maybe.has_value());
  EXPECT_FALSE(null->maybe_int.has_value());
  Everything e;
  EXPECT_THAT(Encode(e), HasSubstr(R"("maybe":null)"));
  EXPECT_THAT(Decode<Everything>(R"({"maybe":5})"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("maybe")));
}

TEST(Json, WrongTypeNamesThePath) {
  EXPECT_THAT(Decode<Everything>(R"({"items":[{"qty":1},{"qty":2},{"qty":"three"}]})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"items[2].qty\"")));
  EXPECT_THAT(Decode<Everything>(R"({"main":{"sku":7}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"main.sku\"")));
  EXPECT_THAT(Decode<Everything>(R"({"counts":{"x":"1"}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"counts.x\"")));
  EXPECT_THAT(Decode<Everything>(R"({"flag":1})"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("flag")));
  EXPECT_THAT(Decode<Everything>(R"({"items":{}})"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("items")));
  EXPECT_THAT(Decode<Everything>(R"({"d":"1.0"})"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"d\"")));
  EXPECT_THAT(Decode<Everything>(R"([1,2])"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("top level")));
}

TEST(Json, IntegersOutOfRangeOrFractionalAreRejected) {
  EXPECT_THAT(Decode<Everything>(R"({"i8":128})"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("i8")));
  EXPECT_THAT(Decode<Everything>(R"({"i8":-129})"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Decode<Everything>(R"({"u8":256})"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Decode<Everything>(R"({"u32":-1})"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("u32")));
  EXPECT_THAT(Decode<Everything>(R"({"i32":1.5})"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Decode<Everything>(R"({"i64":9223372036854775808})"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Decode<Everything>(R"({"d":3})"), IsOk());  // integers are numbers
}

TEST(Json, MalformedJsonReportsTheOffset) {
  EXPECT_THAT(Decode<Line>(R"({"sku":"a",})"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("offset 11")));
  EXPECT_THAT(Decode<Line>(""), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not valid JSON")));
  EXPECT_THAT(Decode<Line>(R"({"sku":"a"} trailing)"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Decode<Line>("{\"sku\":\"unterminated"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(Json, EnumsUseTheirNames) {
  EXPECT_EQ(Encode(Color::kGreen), R"("green")");
  EXPECT_THAT(Decode<Color>(R"("red")"), IsOkAndHolds(Color::kRed));
  EXPECT_THAT(Decode<Color>(R"("purple")"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("enum")));
  EXPECT_THAT(Decode<Color>("1"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(Encode(static_cast<Color>(42)), "null");  // a value without a name
}

TEST(Json, RawJsonKeepsAnyValueAsText) {
  EXPECT_THAT(Decode<RawJson>(R"( {"a" : [1, 2.5, "x"]} )"), IsOkAndHolds(RawJson{R"({"a":[1,2.5,"x"]})"}));
  EXPECT_THAT(Decode<RawJson>("42"), IsOkAndHolds(RawJson{"42"}));
  EXPECT_EQ(Encode(RawJson{}), "null");
  EXPECT_EQ(Encode(RawJson{"not json"}), "null");  // invalid text degrades to null, never breaks the output
  EXPECT_EQ(Encode(std::vector<RawJson>{RawJson{"[1]"}, RawJson{"{}"}}), "[[1],{}]");
}

TEST(Json, TimesAreRfc3339InUtcWrittenWithZAsGoWritesThem) {
  absl::Time t = absl::FromUnixSeconds(1764226889);
  EXPECT_EQ(Encode(t), R"("2025-11-27T07:01:29Z")");
  EXPECT_EQ(Encode(t + absl::Milliseconds(5)), R"("2025-11-27T07:01:29.005Z")");
  EXPECT_THAT(Decode<absl::Time>(R"("2025-11-27T07:01:29Z")"), IsOkAndHolds(t));
  EXPECT_THAT(Decode<absl::Time>(R"("2025-11-27T07:01:29+00:00")"), IsOkAndHolds(t));
  EXPECT_THAT(Decode<absl::Time>(R"("2025-11-27T09:01:29+02:00")"), IsOkAndHolds(t));
  EXPECT_THAT(Decode<absl::Time>(R"("2025-11-27T02:01:29.5-05:00")"), IsOkAndHolds(t + absl::Milliseconds(500)));
  EXPECT_THAT(Decode<absl::Time>(R"("2025-11-27 07:01:29")"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Decode<absl::Time>(R"("yesterday")"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("RFC 3339")));
  EXPECT_THAT(Decode<absl::Time>("1764226889"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(Json, FormatAndParseTimeHelpers) {
  absl::Time t = absl::FromUnixMicros(1764226889123456);
  EXPECT_EQ(internal::FormatTime(t), "2025-11-27T07:01:29.123456Z");
  EXPECT_THAT(internal::ParseTime(internal::FormatTime(t)), IsOkAndHolds(t));
  EXPECT_THAT(internal::ParseTime("nope"), StatusIs(absl::StatusCode::kInvalidArgument));
}

// What Go's json.Marshal writes for a time.Time (time.RFC3339Nano): "Z" in
// UTC, nanoseconds with trailing zeros trimmed, or the zone's offset.
TEST(Json, TimesMatchGoRfc3339NanoByteForByte) {
  absl::Time t = absl::FromUnixSeconds(1796033472);  // 2026-11-30T10:11:12Z
  EXPECT_EQ(internal::FormatTime(t + absl::Nanoseconds(123456789)), "2026-11-30T10:11:12.123456789Z");
  EXPECT_EQ(internal::FormatTime(t + absl::Nanoseconds(120000000)), "2026-11-30T10:11:12.12Z");
  EXPECT_EQ(internal::FormatTime(t + absl::Nanoseconds(1)), "2026-11-30T10:11:12.000000001Z");
  EXPECT_EQ(internal::FormatTime(t), "2026-11-30T10:11:12Z");
  // Four-digit years, as Go writes them.
  EXPECT_EQ(internal::FormatTime(absl::FromCivil(absl::CivilSecond(1, 1, 1, 0, 0, 0), absl::UTCTimeZone())),
            "0001-01-01T00:00:00Z");  // Go's zero time.Time
  EXPECT_THAT(internal::ParseTime("2026-11-30T10:11:12.123456789Z"), IsOkAndHolds(t + absl::Nanoseconds(123456789)));
  EXPECT_THAT(internal::ParseTime("2026-11-30T11:11:12.123456789+01:00"),
              IsOkAndHolds(t + absl::Nanoseconds(123456789)));
  EXPECT_THAT(internal::ParseTime("0001-01-01T00:00:00Z"),
              IsOkAndHolds(absl::FromCivil(absl::CivilSecond(1, 1, 1, 0, 0, 0), absl::UTCTimeZone())));
}

TEST(Json, ParseAndSerialize) {
  rapidjson::Document d;
  ASSERT_THAT(Parse(R"({ "a" : 1 })", d), IsOk());
  EXPECT_EQ(Serialize(d), R"({"a":1})");
  EXPECT_THAT(Parse("{", d), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("offset 1")));
}

TEST(Json, StringsWithEmbeddedNulAndUnicodeRoundTrip) {
  std::string s("a\0b\xe2\x82\xac", 6);
  EXPECT_THAT(Decode<std::string>(Encode(s)), IsOkAndHolds(s));
}

// Bug: RapidJSON's Writer refuses NaN and infinities (returns false and
// writes nothing), so Codec<double>::Write leaves a key without a value and
// Encode returns invalid JSON such as {"d":}. A non-finite number should be
// written as null (or rejected).
TEST(Json, NonFiniteNumbersStillGiveValidJson) {
  Everything e;
  e.d = std::nan("");
  e.f = std::numeric_limits<float>::infinity();
  std::string text = Encode(e);
  rapidjson::Document d;
  EXPECT_THAT(Parse(text, d), IsOk()) << text;
}

}  // namespace
}  // namespace herald::json

namespace herald::json {
namespace {

// FormatTime and ParseTime have a fast path; it must agree with Abseil's
// RFC 3339 formatting and parsing everywhere.
TEST(JsonTime, FastFormatAndParseAgreeWithAbseil) {
  std::vector<absl::Time> times = {absl::UnixEpoch(),
                                   absl::FromUnixSeconds(-1),
                                   absl::FromUnixSeconds(951782400),
                                   absl::FromUnixNanos(1795765704123456789),
                                   absl::FromUnixMicros(4102444799999999),
                                   absl::FromUnixMillis(-62135596800000)};
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 20000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    times.push_back(absl::FromUnixNanos(static_cast<int64_t>(x % 8000000000000000000ull) - 2000000000000000000ll));
  }
  for (absl::Time t : times) {
    std::string fast = internal::FormatTime(t);
    ASSERT_EQ(fast, absl::FormatTime("%E4Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone()));
    absl::StatusOr<absl::Time> back = internal::ParseTime(fast);
    ASSERT_TRUE(back.ok()) << fast;
    ASSERT_EQ(*back, t) << fast;
  }
  for (const char* text : {"2026-02-28T23:59:59.5-08:00", "2024-02-29T00:00:00Z", "1999-12-31t23:59:59.000000001z",
                           "2026-11-27T07:01:29+05:30"}) {
    absl::Time expected;
    std::string err;
    ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, text, &expected, &err)) << text;
    absl::StatusOr<absl::Time> got = internal::ParseTime(text);
    ASSERT_TRUE(got.ok()) << text;
    EXPECT_EQ(*got, expected) << text;
  }
  for (const char* bad : {"2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z",
                          "2026-01-01 00:00:00Z", "2026-01-01T00:00:00", "2026-01-01T00:00:00.Z", "yesterday"}) {
    EXPECT_FALSE(internal::ParseTime(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace herald::json

namespace herald::json {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::IsOkAndHolds;
using ::herald::testing::StatusIs;
using ::testing::HasSubstr;

// About 200 KB: deep enough to overflow the stack of a recursive parser.
constexpr int kHostileDepth = 100'000;

std::string NestedArrays(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }
std::string NestedObjects(int depth) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += R"({"a":)";
  s += "1";
  s += std::string(depth, '}');
  return s;
}

auto IsOverTheDepthLimit() { return StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("kMaxJsonDepth = 128")); }

TEST(JsonLimits, DeepNestingIsInvalidArgumentNotACrash) {
  for (const std::string& deep :
       {NestedArrays(kHostileDepth), NestedObjects(kHostileDepth / 2), std::string(2 * kHostileDepth, '['),
        NestedObjects(kHostileDepth / 2).substr(0, 5 * kHostileDepth / 2)}) {
    rapidjson::Document d;
    EXPECT_THAT(Parse(deep, d), IsOverTheDepthLimit());
    EXPECT_TRUE(d.IsNull());
    EXPECT_THAT(Validate(deep), IsOverTheDepthLimit());
    // The typed mapping, for a struct, a RawJson member and a container.
    EXPECT_THAT(Decode<Line>(deep), IsOverTheDepthLimit());
    EXPECT_THAT(Decode<RawJson>(deep), IsOverTheDepthLimit());
    EXPECT_THAT(Decode<std::vector<RawJson>>(deep), IsOverTheDepthLimit());
    // Encoding a RawJson that holds it degrades to null, like other bad text.
    EXPECT_EQ(Encode(RawJson{deep}), "null");
  }
}

TEST(JsonLimits, TheLimitIsExactAndNamedWithItsOffset) {
  rapidjson::Document d;
  EXPECT_THAT(Parse(NestedArrays(kMaxJsonDepth), d), IsOk());
  EXPECT_THAT(Parse(NestedObjects(kMaxJsonDepth), d), IsOk());
  EXPECT_THAT(Decode<RawJson>(NestedArrays(kMaxJsonDepth)), IsOkAndHolds(RawJson{NestedArrays(kMaxJsonDepth)}));
  EXPECT_THAT(Parse(NestedArrays(kMaxJsonDepth + 1), d),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("nests deeper than herald::kMaxJsonDepth = 128 levels of arrays and objects at "
                                 "offset 128")));
  EXPECT_THAT(Parse(NestedObjects(kMaxJsonDepth + 1), d), IsOverTheDepthLimit());
  // Levels of an envelope around the document do not count, and are named.
  EXPECT_THAT(Parse(NestedArrays(kMaxJsonDepth + 1), d, /*envelope_levels=*/1), IsOk());
  EXPECT_THAT(Validate(NestedArrays(kMaxJsonDepth + 2), /*envelope_levels=*/1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not counting its envelope's 1")));
  // Width is not depth.
  std::string wide = "[";
  for (int i = 0; i < 10'000; ++i) wide += "[1],";
  wide += "[]]";
  EXPECT_THAT(Parse(wide, d), IsOk());
}

// RapidJSON treats a NUL byte as the end of the text; herald must not accept
// a value followed by a NUL and junk.
TEST(JsonLimits, NulByteAndJunkAfterAValueAreInvalidJson) {
  const std::string junk("{}\0garbage", 10);
  rapidjson::Document d;
  EXPECT_THAT(Parse(junk, d), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NUL byte")));
  EXPECT_THAT(Validate(junk), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("offset 2")));
  EXPECT_THAT(Decode<Line>(std::string("{\"sku\":\"a\"}\0", 12)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NUL byte")));
  EXPECT_THAT(Decode<RawJson>(junk), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Decode<std::vector<int>>(std::string("[1,\0 2]", 7)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unexpected NUL byte")));
  EXPECT_EQ(Encode(RawJson{junk}), "null");
  // An escaped NUL inside a string is fine; white space after the value too.
  EXPECT_THAT(Decode<std::string>(R"("a\u0000b")"), IsOkAndHolds(std::string("a\0b", 3)));
  EXPECT_THAT(Decode<Line>("{} \n\t"), IsOk());
}

// Every control byte inside a string is escaped on the way out and refused
// raw on the way in, wherever it falls in a long string (RapidJSON's SSE2
// scans, which let 0x1A to 0x1F through in 16-byte blocks, stay off: see
// json.h). Each byte is tried at every offset of a 16-byte block.
TEST(JsonLimits, ControlBytesInLongStringsAreEscapedAndRefusedRaw) {
  for (int c = 0x01; c < 0x20; ++c) {
    for (int offset = 32; offset < 48; ++offset) {
      std::string text(offset, 'a');
      text.push_back(static_cast<char>(c));
      text.append(64, 'b');
      const std::string encoded = Encode(text);
      EXPECT_EQ(encoded.find(static_cast<char>(c)), std::string::npos) << "byte " << c << " at " << offset;
      EXPECT_THAT(Decode<std::string>(encoded), IsOkAndHolds(text));
      EXPECT_THAT(Validate("\"" + text + "\""), StatusIs(absl::StatusCode::kInvalidArgument))
          << "byte " << c << " at " << offset;
    }
  }
}

// ParseSax reports every event; EndObject/EndArray come with the stream at
// the closing bracket (what the wire scanners rely on).
TEST(JsonLimits, ParseSaxReportsEndsAtTheClosingBracket) {
  struct Ends : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, Ends> {
    explicit Ends(const rapidjson::MemoryStream& s) : stream(s) {}
    bool EndObject(rapidjson::SizeType) { return End(); }
    bool EndArray(rapidjson::SizeType) { return End(); }
    bool End() {
      offsets.push_back(stream.Tell());
      return true;
    }
    const rapidjson::MemoryStream& stream;
    std::vector<size_t> offsets;
  };
  const std::string text = R"({"a":[1, {}] })";
  rapidjson::MemoryStream stream(text.data(), text.size());
  Ends ends(stream);
  ASSERT_THAT(ParseSax(stream, ends), IsOk());
  EXPECT_EQ(ends.offsets, (std::vector<size_t>{10, 11, 13}));
  // A handler that stops the parse is an error too.
  struct Stop : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, Stop> {
    bool Default() { return false; }
  } stop;
  rapidjson::MemoryStream again(text.data(), text.size());
  EXPECT_THAT(ParseSax(again, stop), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace herald::json

// Regression tests for what fuzz/typed_json_fuzzer and
// fuzz/wire_roundtrip_fuzzer found (docs/fuzzing.md).
namespace herald::json {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::IsOkAndHolds;
using ::herald::testing::StatusIs;
using ::testing::HasSubstr;

// RapidJSON rounds some numbers near the top of the double range (even
// DBL_MAX as Go writes it) to infinity: Encode then wrote null for it, so a
// value read back differently (and json::Serialize wrote invalid JSON).
TEST(JsonFuzzFindings, NumbersThatReadAsInfinityAreRejected) {
  for (const char* big : {"1.7976931348623158e308", "1.8e308", "0.18e309", "[1, 17976931348623159e292]"}) {
    rapidjson::Document d;
    EXPECT_THAT(Parse(big, d), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("too large for a double")))
        << big;
    EXPECT_THAT(Decode<double>(big), StatusIs(absl::StatusCode::kInvalidArgument)) << big;
  }
  EXPECT_THAT(Decode<double>("1e308"), IsOkAndHolds(1e308));
  EXPECT_THAT(Decode<double>("0e308"), IsOkAndHolds(0.0));  // what full precision misread
  EXPECT_THAT(Decode<double>("1e-400"), IsOkAndHolds(0.0));
}

// A double beyond float's range became an infinity, which Encode writes as
// null and Decode then rejects.
TEST(JsonFuzzFindings, FloatOutOfRangeIsRejectedNotInfinite) {
  EXPECT_THAT(Decode<float>("1e39"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("in range")));
  EXPECT_THAT(Decode<float>("-1e39"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("in range")));
  EXPECT_THAT(Decode<float>("3.4028234e38"), IsOk());
  // The largest float, as herald writes it, reads back (RapidJSON reads it a
  // little above, which still rounds to the largest float).
  const float max = std::numeric_limits<float>::max();
  EXPECT_THAT(Decode<float>(Encode(max)), IsOkAndHolds(max));
  EXPECT_THAT(Decode<float>(Encode(-max)), IsOkAndHolds(-max));
  EXPECT_THAT(Decode<float>("3.4028236e38"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Decode<double>("1e308"), IsOk());
}

// Fractions past nanoseconds were kept (absl::Time holds quarter
// nanoseconds) but never written: a time did not read back the same.
TEST(JsonFuzzFindings, TimesKeepWholeNanosecondsSoTheyReadBackTheSame) {
  const absl::Time want = absl::FromUnixSeconds(1764227489) + absl::Nanoseconds(177777777);
  EXPECT_THAT(internal::ParseTime("2025-11-27T07:11:29.17777777775+00:00"), IsOkAndHolds(want));
  EXPECT_THAT(internal::ParseTime("2025-11-27T07:11:29.1777777779Z"), IsOkAndHolds(want));
  absl::StatusOr<absl::Time> before = internal::ParseTime("1969-12-31T23:59:59.99999999999Z");
  ASSERT_THAT(before, IsOk());
  EXPECT_EQ(*before, absl::FromUnixNanos(-1));
  EXPECT_THAT(internal::ParseTime(internal::FormatTime(*before)), IsOkAndHolds(*before));
}

// ParseSax reuses one reader per thread. A parse started from inside a SAX
// handler (on the same thread) gets its own, and neither disturbs the
// other; nor does a large input, after which the thread's reader is dropped.
class NestedParseHandler : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, NestedParseHandler> {
 public:
  bool Default() { return true; }
  bool Key(const char*, rapidjson::SizeType, bool) { return true; }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    strings.emplace_back(s, n);
    inner.push_back(Validate(std::string_view(s, n)));  // a parse within the parse
    return true;
  }
  std::vector<std::string> strings;
  std::vector<absl::Status> inner;
};

TEST(ParseSax, NestedAndLargeParsesOnOneThreadDoNotDisturbEachOther) {
  const std::string text = R"({"a":"[1,2]","b":["{\"x\":1}","not json"],"c":"3"})";
  rapidjson::MemoryStream stream(text.data(), text.size());
  NestedParseHandler handler;
  ASSERT_THAT(ParseSax(stream, handler), IsOk());
  EXPECT_EQ(handler.strings, (std::vector<std::string>{"[1,2]", R"({"x":1})", "not json", "3"}));
  ASSERT_EQ(handler.inner.size(), 4u);
  EXPECT_THAT(handler.inner[0], IsOk());
  EXPECT_THAT(handler.inner[1], IsOk());
  EXPECT_THAT(handler.inner[2], StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(handler.inner[3], IsOk());

  const std::string large = "[\"" + std::string(200 * 1024, 'x') + "\"]";
  rapidjson::Document d;
  ASSERT_THAT(Parse(large, d), IsOk());
  EXPECT_EQ(d[0].GetStringLength(), 200u * 1024);
  EXPECT_THAT(Validate("[1,"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Validate(R"({"after":"an error, the reader still works"})"), IsOk());
}

// Encode writes into a buffer kept per thread. A Codec that encodes another
// value inside its Write must not write into the buffer being filled, and a
// large text must not leave its bytes in the next one.
struct Inner {
  std::string text;
  static constexpr auto JsonFields() { return Fields(Field("text", &Inner::text)); }
};
struct EncodedInside {
  Inner inner;
};

}  // namespace

template <>
struct Codec<EncodedInside> {
  static void Write(Writer& w, const EncodedInside& v) {
    const std::string nested = Encode(v.inner);
    w.String(nested.data(), static_cast<rapidjson::SizeType>(nested.size()));
  }
  static absl::Status Read(const rapidjson::Value&, EncodedInside&, std::string_view) { return absl::OkStatus(); }
};

namespace {

struct Outer {
  std::string before;
  EncodedInside inside;
  std::string after;
  static constexpr auto JsonFields() {
    return Fields(Field("before", &Outer::before), Field("inside", &Outer::inside), Field("after", &Outer::after));
  }
};

TEST(JsonScratch, AnEncodeInsideAnEncodeGetsABufferOfItsOwn) {
  EXPECT_EQ(Encode(Outer{"b", EncodedInside{Inner{"x"}}, "a"}),
            R"({"before":"b","inside":"{\"text\":\"x\"}","after":"a"})");
  EXPECT_EQ(Encode(Inner{"y"}), R"({"text":"y"})");
}

TEST(JsonScratch, LargeAndSmallTextsFollowingEachOtherAreExact) {
  for (size_t size : {size_t{100000}, size_t{3}, size_t{20000}, size_t{0}, size_t{5000}}) {
    const std::string text(size, 'q');
    EXPECT_EQ(Encode(Inner{text}), R"({"text":")" + text + R"("})") << size;
  }
}

// Validate keeps its reader between calls: a failed parse (at any point of
// the text, or over the depth limit) leaves nothing behind for the next.
TEST(JsonLimits, ValidateAfterAFailureReadsTheNextTextAfresh) {
  const std::string deepest = NestedArrays(kMaxJsonDepth);
  const std::string too_deep = NestedArrays(kMaxJsonDepth + 1);
  const std::string long_string = "[\"" + std::string(40000, 's') + "\"]";
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(Validate(R"({"a":[1,"two)"), StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(Validate(R"({"a":[1,"two"]})"), IsOk());
    EXPECT_THAT(Validate(too_deep), IsOverTheDepthLimit());
    EXPECT_THAT(Validate(deepest), IsOk());
    EXPECT_THAT(Validate(long_string), IsOk());
    EXPECT_THAT(Validate(long_string.substr(0, 30000)), StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(Validate("\"\\u00e9\""), IsOk());
  }
}

// FormatTimeTo is FormatTime into a buffer, also where FormatTime leaves its
// fast path (years outside 0000-9999, the infinite times).
TEST(JsonTime, FormatTimeToWritesFormatTimesText) {
  for (absl::Time t : {absl::UnixEpoch(), absl::FromUnixNanos(1795765704123456789), absl::InfiniteFuture(),
                       absl::InfinitePast(), absl::FromUnixSeconds(253402300800), absl::FromUnixSeconds(-62167219201),
                       absl::FromUnixSeconds(int64_t{9000000000000}), absl::FromUnixSeconds(-62167219200),
                       absl::FromUnixSeconds(253402300799) + absl::Nanoseconds(999999999), absl::FromUnixNanos(-1),
                       absl::FromUnixSeconds(std::numeric_limits<int64_t>::min() / 2)}) {
    char buffer[internal::kFormattedTimeCapacity];
    EXPECT_EQ(internal::FormatTimeTo(t, buffer), absl::FormatTime("%E4Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone()));
    EXPECT_EQ(internal::FormatTimeTo(t, buffer), internal::FormatTime(t));
  }
}

}  // namespace
}  // namespace herald::json
