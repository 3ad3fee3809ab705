// herald/core/json.h: JSON mapping for plain structs, with the field list
// written once.
//
// A struct maps to a JSON object by listing its fields in a static function
// `JsonFields()`; herald writes and reads it with RapidJSON. No hand-written
// RapidJSON calls per type.
//
//   struct Address {
//     std::string city;
//     std::optional<std::string> zip;
//     static constexpr auto JsonFields() {
//       return herald::json::Fields(herald::json::Field("city", &Address::city),
//                                   herald::json::Field("zip", &Address::zip));
//     }
//   };
//
//   std::string text = herald::json::Encode(Address{"Oslo", std::nullopt});
//   absl::StatusOr<Address> a = herald::json::Decode<Address>(text);
//
// Supported member types: std::string, bool, integers, floating point,
// absl::Time (RFC 3339 with offset), std::optional<T> (null or absent),
// std::vector<T>, std::map<std::string, T>, enums with a `JsonEnumNames`
// overload, herald::json::RawJson (any JSON, kept as text), and structs with
// their own JsonFields(). Reading ignores unknown members (forward
// compatibility) and leaves absent members at their defaults; a member of the
// wrong type is kInvalidArgument naming its path ("payload.items[2].qty").
//
// Types without JsonFields() can specialize herald::json::Codec<T>.
//
// Limits. Every JSON text herald reads (payloads, record values, CloudEvents,
// the outbox headers column, typed decoding) goes through ParseSax or Parse
// below: an iterative parse (no recursion, so no stack overflow whatever the
// input), at most herald::kMaxJsonDepth levels of nested arrays and objects,
// and the whole text (a NUL byte and anything after the value is an error,
// not an early end). Input over a limit is kInvalidArgument whose message
// names the limit; the relay parks such a row and a consumer dead-letters
// such a record, like any other malformed input. There is no separate size
// limit: memory grows linearly with the input, whose size the transport
// bounds (Kafka's message.max.bytes) or the database column holds.
//
// RapidJSON's SIMD scans (RAPIDJSON_SSE2, RAPIDJSON_SSE42) stay off: in
// RapidJSON 1.1.0 (Debian's rapidjson-dev) they let the bytes 0x1A to 0x1F
// through raw, so the Writer writes JSON that Go's encoding/json rejects and
// the reader accepts what the JSON grammar does not (docs/performance.md,
// "JSON scans"). Do not define them in a build that includes this header.
#ifndef HERALD_CORE_JSON_H_
#define HERALD_CORE_JSON_H_

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "herald/core/strings.h"
#include "rapidjson/document.h"
#include "rapidjson/memorystream.h"
#include "rapidjson/reader.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace herald {

// The deepest nesting of JSON arrays and objects herald reads: `[[1]]` is 2
// levels. Deeper input is rejected with kInvalidArgument (see "Limits" above).
// Go's encoding/json and the CloudEvents SDKs read far deeper documents, but
// no event payload needs more, and every recursive walk of a parsed document
// (serializing, typed decoding, upcasters) stays shallow. A JSON envelope or
// structured CloudEvent adds one level around its payload, which does not
// count: a payload of kMaxJsonDepth levels goes through every wire mode.
inline constexpr int kMaxJsonDepth = 128;

}  // namespace herald

namespace herald::json {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// Any JSON value kept as its text: a payload field whose shape herald should
// not interpret.
struct RawJson {
  std::string text = "null";
  friend bool operator==(const RawJson&, const RawJson&) = default;
};

// One mapped member: JSON name and pointer to member.
template <typename Class, typename Member>
struct FieldRef {
  std::string_view name;
  Member Class::*member;
};

template <typename Class, typename Member>
constexpr FieldRef<Class, Member> Field(std::string_view name, Member Class::*member) {
  return {name, member};
}

template <typename... F>
constexpr std::tuple<F...> Fields(F... fields) {
  return std::tuple<F...>(fields...);
}

// Enum mapping: declare in the enum's namespace
//   constexpr auto JsonEnumNames(Color) {
//     return std::array{std::pair{Color::kRed, std::string_view("red")},
//                       std::pair{Color::kGreen, std::string_view("green")}};
//   }
template <typename E>
concept NamedEnum = std::is_enum_v<E> && requires(E e) { JsonEnumNames(e); };

template <typename T>
concept Mapped = requires { T::JsonFields(); };

// Codec<T>: Write(Writer&, const T&) and Read(const rapidjson::Value&, T&,
// std::string_view path) -> absl::Status. Specialize for custom types.
template <typename T, typename Enable = void>
struct Codec;

namespace internal {
absl::Status TypeError(std::string_view path, std::string_view expected);
bool WriteRawJson(Writer& w, const std::string& text);
absl::Status ReadRawJson(const rapidjson::Value& v, std::string& text);
std::string FormatTime(absl::Time t);
// Room for any text FormatTime writes (the longest is a year of twelve
// digits with nine fractional digits, 40 characters).
inline constexpr size_t kFormattedTimeCapacity = 64;
// FormatTime's text written into `buffer`, no allocation for the years 0000
// to 9999; the view points into `buffer`.
std::string_view FormatTimeTo(absl::Time t, char (&buffer)[kFormattedTimeCapacity]);

// This thread's StringBuffer for Encode, borrowed for one call and cleared
// when given back, so that encoding a payload does not allocate and regrow a
// buffer every time (RapidJSON's Writer reserves six bytes per byte of each
// string it writes). A nested Encode on the same thread (a Codec calling
// Encode) gets a buffer of its own. A buffer that held more than
// kScratchKeepBytes is freed rather than kept.
class ScratchBuffer {
 public:
  static constexpr size_t kScratchKeepBytes = 16 * 1024;
  ScratchBuffer();
  ~ScratchBuffer();
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  rapidjson::StringBuffer& get() { return *buffer_; }

 private:
  rapidjson::StringBuffer* buffer_;
  bool borrowed_;
};
absl::StatusOr<absl::Time> ParseTime(std::string_view text);
inline std::string Path(std::string_view base, std::string_view name) {
  return base.empty() ? std::string(name) : herald::StrCat(base, ".", name);
}

// Forwards SAX events to `handler` and stops the parse when arrays and
// objects nest deeper than `max_depth`.
template <typename Handler>
class DepthLimitedHandler {
 public:
  DepthLimitedHandler(Handler& handler, int max_depth) : handler_(handler), max_depth_(max_depth) {}

  bool Null() { return handler_.Null(); }
  bool Bool(bool b) { return handler_.Bool(b); }
  bool Int(int i) { return handler_.Int(i); }
  bool Uint(unsigned i) { return handler_.Uint(i); }
  bool Int64(int64_t i) { return handler_.Int64(i); }
  bool Uint64(uint64_t i) { return handler_.Uint64(i); }
  bool Double(double d) {
    // RapidJSON rounds some numbers near the top of the range to infinity,
    // which no JSON writer can write back.
    if (!std::isfinite(d)) {
      not_finite_ = true;
      return false;
    }
    return handler_.Double(d);
  }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) { return handler_.RawNumber(s, n, copy); }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return handler_.String(s, n, copy); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return handler_.Key(s, n, copy); }
  bool StartObject() { return Enter() && handler_.StartObject(); }
  bool StartArray() { return Enter() && handler_.StartArray(); }
  bool EndObject(rapidjson::SizeType n) {
    --depth_;
    return handler_.EndObject(n);
  }
  bool EndArray(rapidjson::SizeType n) {
    --depth_;
    return handler_.EndArray(n);
  }

  bool too_deep() const { return too_deep_; }
  bool not_finite() const { return not_finite_; }

 private:
  bool Enter() {
    if (++depth_ > max_depth_) too_deep_ = true;
    return !too_deep_;
  }

  Handler& handler_;
  int max_depth_;
  int depth_ = 0;
  bool too_deep_ = false;
  bool not_finite_ = false;
};

// The RapidJSON reader for one parse of `input_size` bytes: the calling
// thread's own, reused so that its stack (which holds the nesting states and
// each string being read) is not allocated again for every record, or a
// fresh one while a parse on this thread already holds it (a parse started
// from inside a SAX handler). After an input over 64 KiB the thread's reader
// is dropped, so it never keeps more than that. Not movable.
class ReaderLease {
 public:
  explicit ReaderLease(size_t input_size);
  ~ReaderLease();
  ReaderLease(const ReaderLease&) = delete;
  ReaderLease& operator=(const ReaderLease&) = delete;
  rapidjson::Reader& reader() { return *reader_; }

 private:
  size_t input_size_;
  bool owns_thread_reader_ = false;
  std::optional<rapidjson::Reader> own_;
  rapidjson::Reader* reader_ = nullptr;
};

// The status of a finished parse of `stream` (see ParseSax).
absl::Status ParseStatus(const rapidjson::MemoryStream& stream, const rapidjson::ParseResult& result, bool too_deep,
                         bool not_finite, int envelope_levels);
}  // namespace internal

// Runs the SAX `handler` (RapidJSON's Handler concept) over the JSON text in
// `stream`: iteratively, at most kMaxJsonDepth levels deep (plus
// `envelope_levels`, the levels of a wire envelope around a payload), and
// over the whole of the stream. kInvalidArgument with the offset and reason
// when the text is not JSON, nests too deep, holds a NUL byte or has anything
// but white space after its value, has a number too large for a double, or
// when `handler` returns false.
//
// Unlike RapidJSON's recursive parser, EndObject/EndArray are called before
// the closing bracket is taken: there, stream.Tell() is the offset of the
// bracket itself. Every other event comes after its text.
template <typename Handler>
absl::Status ParseSax(rapidjson::MemoryStream& stream, Handler& handler, int envelope_levels = 0,
                      rapidjson::Reader* reuse = nullptr) {
  internal::DepthLimitedHandler<Handler> limited(handler, kMaxJsonDepth + envelope_levels);
  // `reuse`: a reader whose stack (where RapidJSON copies each string it
  // reads) is already allocated; a parse leaves it empty but keeps its room.
  // Without one, this thread's reader (ReaderLease).
  std::optional<internal::ReaderLease> lease;
  if (reuse == nullptr) lease.emplace(stream.size_);
  rapidjson::Reader& reader = reuse != nullptr ? *reuse : lease->reader();
  // Not kParseFullPrecisionFlag: in RapidJSON 1.1.0 it misreads a zero with
  // an exponent ("0e308" becomes -6e-269). The default can be one ulp off
  // for some long or extreme numbers (docs/fuzzing.md).
  rapidjson::ParseResult result = reader.Parse<rapidjson::kParseIterativeFlag>(stream, limited);
  return internal::ParseStatus(stream, result, limited.too_deep(), limited.not_finite(), envelope_levels);
}

template <>
struct Codec<std::string> {
  static void Write(Writer& w, const std::string& v) { w.String(v.data(), static_cast<rapidjson::SizeType>(v.size())); }
  static absl::Status Read(const rapidjson::Value& v, std::string& out, std::string_view path) {
    if (!v.IsString()) return internal::TypeError(path, "a string");
    out.assign(v.GetString(), v.GetStringLength());
    return absl::OkStatus();
  }
};

template <>
struct Codec<bool> {
  static void Write(Writer& w, bool v) { w.Bool(v); }
  static absl::Status Read(const rapidjson::Value& v, bool& out, std::string_view path) {
    if (!v.IsBool()) return internal::TypeError(path, "true or false");
    out = v.GetBool();
    return absl::OkStatus();
  }
};

template <typename T>
struct Codec<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>> {
  static void Write(Writer& w, T v) {
    if constexpr (std::is_signed_v<T>) {
      w.Int64(static_cast<int64_t>(v));
    } else {
      w.Uint64(static_cast<uint64_t>(v));
    }
  }
  static absl::Status Read(const rapidjson::Value& v, T& out, std::string_view path) {
    if constexpr (std::is_signed_v<T>) {
      if (!v.IsInt64()) return internal::TypeError(path, "an integer");
      int64_t x = v.GetInt64();
      if (x < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
          x > static_cast<int64_t>(std::numeric_limits<T>::max())) {
        return internal::TypeError(path, "an integer in range");
      }
      out = static_cast<T>(x);
    } else {
      if (!v.IsUint64()) return internal::TypeError(path, "a non-negative integer");
      uint64_t x = v.GetUint64();
      if (x > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
        return internal::TypeError(path, "an integer in range");
      }
      out = static_cast<T>(x);
    }
    return absl::OkStatus();
  }
};

template <typename T>
struct Codec<T, std::enable_if_t<std::is_floating_point_v<T>>> {
  // NaN and infinities have no JSON form: they are written as null.
  static void Write(Writer& w, T v) {
    if (!std::isfinite(v)) {
      w.Null();
      return;
    }
    w.Double(static_cast<double>(v));
  }
  static absl::Status Read(const rapidjson::Value& v, T& out, std::string_view path) {
    if (!v.IsNumber()) return internal::TypeError(path, "a number");
    const double x = v.GetDouble();
    if constexpr (sizeof(T) < sizeof(double)) {
      // A number that would round to an infinity of T, which JSON cannot
      // carry back (it is written as null): at least max + half an ulp.
      const double overflow =
          static_cast<double>(std::numeric_limits<T>::max()) +
          std::ldexp(1.0, std::numeric_limits<T>::max_exponent - std::numeric_limits<T>::digits - 1);
      if (std::fabs(x) >= overflow) return internal::TypeError(path, "a number in range");
    }
    out = static_cast<T>(x);
    return absl::OkStatus();
  }
};

template <>
struct Codec<absl::Time> {
  static void Write(Writer& w, absl::Time v) {
    std::string s = internal::FormatTime(v);
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  }
  static absl::Status Read(const rapidjson::Value& v, absl::Time& out, std::string_view path) {
    if (!v.IsString()) return internal::TypeError(path, "an RFC 3339 time string");
    absl::StatusOr<absl::Time> t = internal::ParseTime(std::string_view(v.GetString(), v.GetStringLength()));
    if (!t.ok()) return internal::TypeError(path, "an RFC 3339 time string");
    out = *t;
    return absl::OkStatus();
  }
};

template <>
struct Codec<RawJson> {
  static void Write(Writer& w, const RawJson& v) { internal::WriteRawJson(w, v.text); }
  static absl::Status Read(const rapidjson::Value& v, RawJson& out, std::string_view) {
    return internal::ReadRawJson(v, out.text);
  }
};

template <typename T>
struct Codec<std::optional<T>> {
  static void Write(Writer& w, const std::optional<T>& v) {
    if (v.has_value()) {
      Codec<T>::Write(w, *v);
    } else {
      w.Null();
    }
  }
  static absl::Status Read(const rapidjson::Value& v, std::optional<T>& out, std::string_view path) {
    if (v.IsNull()) {
      out.reset();
      return absl::OkStatus();
    }
    T value{};
    if (absl::Status s = Codec<T>::Read(v, value, path); !s.ok()) return s;
    out = std::move(value);
    return absl::OkStatus();
  }
};

template <typename T>
struct Codec<std::vector<T>> {
  static void Write(Writer& w, const std::vector<T>& v) {
    w.StartArray();
    for (const T& item : v) Codec<T>::Write(w, item);
    w.EndArray();
  }
  static absl::Status Read(const rapidjson::Value& v, std::vector<T>& out, std::string_view path) {
    if (!v.IsArray()) return internal::TypeError(path, "an array");
    out.clear();
    out.reserve(v.Size());
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
      T item{};
      if (absl::Status s = Codec<T>::Read(v[i], item, herald::StrCat(path, "[", i, "]")); !s.ok()) return s;
      out.push_back(std::move(item));
    }
    return absl::OkStatus();
  }
};

template <typename T>
struct Codec<std::map<std::string, T>> {
  static void Write(Writer& w, const std::map<std::string, T>& v) {
    w.StartObject();
    for (const auto& [k, item] : v) {
      w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
      Codec<T>::Write(w, item);
    }
    w.EndObject();
  }
  static absl::Status Read(const rapidjson::Value& v, std::map<std::string, T>& out, std::string_view path) {
    if (!v.IsObject()) return internal::TypeError(path, "an object");
    out.clear();
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
      std::string k(it->name.GetString(), it->name.GetStringLength());
      T item{};
      if (absl::Status s = Codec<T>::Read(it->value, item, internal::Path(path, k)); !s.ok()) return s;
      out.emplace(std::move(k), std::move(item));
    }
    return absl::OkStatus();
  }
};

template <NamedEnum E>
struct Codec<E> {
  static void Write(Writer& w, E v) {
    for (const auto& [value, name] : JsonEnumNames(E{})) {
      if (value == v) {
        w.String(name.data(), static_cast<rapidjson::SizeType>(name.size()));
        return;
      }
    }
    w.Null();
  }
  static absl::Status Read(const rapidjson::Value& v, E& out, std::string_view path) {
    if (v.IsString()) {
      std::string_view text(v.GetString(), v.GetStringLength());
      for (const auto& [value, name] : JsonEnumNames(E{})) {
        if (name == text) {
          out = value;
          return absl::OkStatus();
        }
      }
    }
    return internal::TypeError(path, "one of the enum's names");
  }
};

template <Mapped T>
struct Codec<T> {
  static void Write(Writer& w, const T& v) {
    w.StartObject();
    std::apply(
        [&](const auto&... field) {
          ((w.Key(field.name.data(), static_cast<rapidjson::SizeType>(field.name.size())),
            Codec<std::remove_cvref_t<decltype(v.*(field.member))>>::Write(w, v.*(field.member))),
           ...);
        },
        T::JsonFields());
    w.EndObject();
  }
  static absl::Status Read(const rapidjson::Value& v, T& out, std::string_view path) {
    if (!v.IsObject()) return internal::TypeError(path.empty() ? std::string_view("(top level)") : path, "an object");
    absl::Status status;
    std::apply(
        [&](const auto&... field) {
          (
              [&] {
                if (!status.ok()) return;
                auto it = v.FindMember(rapidjson::StringRef(field.name.data(), field.name.size()));
                if (it == v.MemberEnd()) return;  // absent: keep the default
                using M = std::remove_cvref_t<decltype(out.*(field.member))>;
                status = Codec<M>::Read(it->value, out.*(field.member), internal::Path(path, field.name));
              }(),
              ...);
        },
        T::JsonFields());
    return status;
  }
};

// Appends the JSON of `value` to `w`.
template <typename T>
void WriteValue(Writer& w, const T& value) {
  Codec<T>::Write(w, value);
}

// The JSON text of `value`.
template <typename T>
std::string Encode(const T& value) {
  internal::ScratchBuffer scratch;
  Writer writer(scratch.get());
  Codec<T>::Write(writer, value);
  return std::string(scratch.get().GetString(), scratch.get().GetSize());
}

// Reads `value` from a parsed JSON value.
template <typename T>
absl::Status DecodeValue(const rapidjson::Value& json, T& value) {
  return Codec<T>::Read(json, value, "");
}

// Parses `text` into `document`, within the limits of ParseSax (the same
// `envelope_levels`); kInvalidArgument with the offset and reason when it is
// not JSON or is over a limit. `document` is null after an error.
absl::Status Parse(std::string_view text, rapidjson::Document& document, int envelope_levels = 0);
// Checks that `text` is one JSON value within the limits of ParseSax,
// without building a document.
absl::Status Validate(std::string_view text, int envelope_levels = 0);
// The JSON text of a parsed value.
std::string Serialize(const rapidjson::Value& value);
// `text` without the JSON white space (space, tab, LF, CR) around it.
std::string_view TrimWhitespace(std::string_view text);

// Parses `text` into a T.
template <typename T>
absl::StatusOr<T> Decode(std::string_view text) {
  rapidjson::Document document;
  if (absl::Status s = Parse(text, document); !s.ok()) return s;
  T value{};
  if (absl::Status s = DecodeValue(document, value); !s.ok()) return s;
  return value;
}

}  // namespace herald::json

#endif  // HERALD_CORE_JSON_H_
