#include "herald/core/wire.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <iterator>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "herald/core/json.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "rapidjson/memorystream.h"
#include "rapidjson/reader.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace herald {
namespace {

constexpr std::string_view kSpecVersion = "ce_specversion";
constexpr std::string_view kCeId = "ce_id";
constexpr std::string_view kCeSource = "ce_source";
constexpr std::string_view kCeType = "ce_type";
constexpr std::string_view kCeTime = "ce_time";
constexpr std::string_view kCeSchemaVersion = "ce_schemaversion";
constexpr std::string_view kCePartitionKey = "ce_partitionkey";
constexpr std::string_view kCeTraceparent = "ce_traceparent";
constexpr std::string_view kCeTracestate = "ce_tracestate";
constexpr std::string_view kContentType = "content-type";
constexpr std::string_view kStructuredContentType = "application/cloudevents+json";
constexpr std::string_view kPartitionKey = "partitionkey";
constexpr std::string_view kOctetStream = "application/octet-stream";

bool IsReserved(std::string_view name) {
  return IsCloudEventsHeaderName(name) || absl::EqualsIgnoreCase(ToAbsl(name), ToAbsl(kContentType));
}

bool IsJsonContentType(std::string_view ct) {
  return ct.empty() || absl::StartsWithIgnoreCase(ToAbsl(ct), "application/json") ||
         absl::EndsWithIgnoreCase(ToAbsl(ct), "+json");
}

// CloudEvents 1.0: attribute names are lowercase ASCII letters and digits.
bool IsAttributeName(std::string_view name) {
  return !name.empty() &&
         std::all_of(name.begin(), name.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); });
}

// Names that are not free extensions: the context attributes, `data`, and
// the ones herald keeps in fields or headers of their own.
bool IsMappedAttribute(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "specversion",     "id",   "source",      "type",          "time",        "subject",    "dataschema",
      "datacontenttype", "data", "data_base64", "schemaversion", "traceparent", "tracestate", "partitionkey"};
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

// A content type that makes a record structured: no event's data can have
// it, since in binary mode its content-type header would say the value is
// the event itself.
bool IsStructuredContentType(std::string_view ct) {
  return absl::StartsWithIgnoreCase(ToAbsl(ct), ToAbsl(kStructuredContentType));
}

absl::Status StructuredDataContentTypeError(std::string_view where) {
  return absl::InvalidArgumentError(
      herald::StrCat(where, ": the data's content type is ", kStructuredContentType,
                     ", which in binary mode would make the record a structured CloudEvent; use application/json"));
}

bool HasName(const Extensions& extensions, std::string_view name) {
  return std::any_of(extensions.begin(), extensions.end(), [&](const auto& x) { return x.first == name; });
}

// Valid UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
bool IsUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int n = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (int k = 1; k <= n; ++k) {
      auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

void Key(json::Writer& w, std::string_view k) { w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size())); }
void WriteString(json::Writer& w, std::string_view v) {
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}

absl::Status PayloadNotJsonError(const Envelope& e, const absl::Status& valid) {
  return absl::InvalidArgumentError(herald::StrCat("payload of \"", e.type, "\" event ", e.id, " (content type \"",
                                                   e.content_type, "\") is not accepted as JSON: ", valid.message(),
                                                   "; fix the payload, set content_type or use WireMode::kBinary"));
}

absl::Status WritePayload(json::Writer& w, const Envelope& e) {
  if (IsJsonContentType(e.content_type)) {
    if (absl::Status valid = json::Validate(e.payload); !valid.ok()) return PayloadNotJsonError(e, valid);
    // White space around a JSON value is not part of it; a reader finds the
    // value without it, so it is not written.
    std::string_view value = json::TrimWhitespace(e.payload);
    w.RawValue(value.data(), value.size(), rapidjson::kObjectType);
  } else {
    WriteString(w, e.payload);
  }
  return absl::OkStatus();
}

std::string ReadString(const rapidjson::Value& v) { return std::string(v.GetString(), v.GetStringLength()); }

// Where a member's value starts in `text`, given the offset just after its
// key: past the ':' and any white space.
size_t ValueStart(std::string_view text, size_t after_key) {
  size_t pos = text.find(':', after_key);
  pos = pos == std::string_view::npos ? text.size() : pos + 1;
  while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n' || text[pos] == '\r')) ++pos;
  return pos;
}

// Finds the bytes of the top-level member `name` of the JSON object `text`,
// so a payload is passed on exactly as it was written (no re-serialization:
// escapes, number spellings and spacing are kept). Uses the bounded SAX
// parse (json::ParseSax) and the stream position at each event.
class MemberSpanFinder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, MemberSpanFinder> {
 public:
  MemberSpanFinder(const rapidjson::MemoryStream& stream, std::string_view text, std::string_view name)
      : stream_(stream), text_(text), name_(name) {}

  bool Default() { return Value(); }
  bool String(const char*, rapidjson::SizeType, bool) { return Value(); }
  bool StartObject() { return Open(); }
  bool StartArray() { return Open(); }
  bool EndObject(rapidjson::SizeType) { return Close(); }
  bool EndArray(rapidjson::SizeType) { return Close(); }
  bool Key(const char* key, rapidjson::SizeType length, bool) {
    if (depth_ == 1 && !found() && std::string_view(key, length) == name_) {
      // The value starts after the ':' that follows the key.
      start_ = ValueStart(text_, stream_.Tell());
      value_depth_ = depth_;
    }
    return true;
  }

  bool found() const { return end_ != std::string_view::npos; }
  std::string_view span() const { return text_.substr(start_, end_ - start_); }

 private:
  bool Value() {
    if (value_depth_ == depth_ && !found()) end_ = stream_.Tell();
    return true;
  }
  bool Open() {
    ++depth_;
    return true;
  }
  bool Close() {
    --depth_;
    // The iterative parser reports the end before taking the bracket.
    if (value_depth_ == depth_ && !found()) end_ = stream_.Tell() + 1;
    return true;
  }

  const rapidjson::MemoryStream& stream_;
  std::string_view text_;
  std::string_view name_;
  int depth_ = 0;
  int value_depth_ = -1;
  size_t start_ = std::string_view::npos;
  size_t end_ = std::string_view::npos;
};

// The raw text of the top-level member `name` of a valid JSON object.
std::optional<std::string_view> RawMember(std::string_view text, std::string_view name) {
  rapidjson::MemoryStream stream(text.data(), text.size());
  MemberSpanFinder finder(stream, text, name);
  if (!json::ParseSax(stream, finder, /*envelope_levels=*/1).ok() || !finder.found()) return std::nullopt;
  return finder.span();
}

// One SAX pass over a JSON envelope value: the top-level string members id,
// type and timestamp, and the payload (a string's text, or the raw bytes of
// any other JSON value). No DOM is built. Reusable: ScanEnvelope resets it
// and keeps its strings' storage.
struct ScannedEnvelope {
  bool scanned = false;  // false: the value was not scanned at all
  absl::Status parsed;   // of the whole value, when scanned
  bool is_object = false;
  bool has_specversion = false;
  int members = 0;  // top-level members, repeats included
  bool has_id = false, has_type = false, has_timestamp = false;
  std::string id, type, timestamp;  // when has_*
  bool timestamp_not_string = false;
  bool has_payload = false;
  bool payload_is_string = false;
  std::string payload;  // the string's text, or the raw JSON bytes
  int max_depth = 0;    // of the whole value

  // Scanned and parsed as JSON.
  bool ok() const { return scanned && parsed.ok(); }
};

class EnvelopeScanner : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, EnvelopeScanner> {
 public:
  EnvelopeScanner(const rapidjson::MemoryStream& stream, std::string_view text, ScannedEnvelope& out)
      : stream_(stream), text_(text), out_(out) {}

  bool Default() { return Scalar(nullptr, 0); }
  bool String(const char* s, rapidjson::SizeType n, bool) { return Scalar(s, n); }
  bool StartObject() {
    if (depth_ == 0) out_.is_object = true;
    return Open();
  }
  bool StartArray() { return Open(); }
  bool EndObject(rapidjson::SizeType) { return Close(); }
  bool EndArray(rapidjson::SizeType) { return Close(); }
  bool Key(const char* key, rapidjson::SizeType length, bool) {
    if (depth_ != 1) return true;
    ++out_.members;
    std::string_view k(key, length);
    member_ = k == "id"          ? kId
              : k == "type"      ? kType
              : k == "timestamp" ? kTimestamp
              : k == "payload"   ? kPayload
                                 : kOther;
    if (k == "specversion") out_.has_specversion = true;
    if (member_ == kPayload) {
      payload_start_ = ValueStart(text_, stream_.Tell());
    }
    return true;
  }

 private:
  enum Member { kNone, kId, kType, kTimestamp, kPayload, kOther };

  bool Scalar(const char* s, rapidjson::SizeType n) {
    if (depth_ == 1) {
      switch (member_) {
        case kId:  // a repeated member: the last one counts
          if (s != nullptr) {
            out_.has_id = true;
            out_.id.assign(s, n);
          }
          break;
        case kType:
          if (s != nullptr) {
            out_.has_type = true;
            out_.type.assign(s, n);
          }
          break;
        case kTimestamp:
          if (s != nullptr) {
            out_.has_timestamp = true;
            out_.timestamp.assign(s, n);
          } else {
            out_.timestamp_not_string = true;
          }
          break;
        case kPayload:
          out_.has_payload = true;
          if (s != nullptr) {
            out_.payload_is_string = true;
            out_.payload.assign(s, n);
          } else {
            out_.payload.assign(text_.substr(payload_start_, stream_.Tell() - payload_start_));
          }
          break;
        default:
          break;
      }
      member_ = kNone;
    }
    return true;
  }
  bool Open() {
    if (depth_ == 1 && member_ == kTimestamp) out_.timestamp_not_string = true;
    ++depth_;
    out_.max_depth = std::max(out_.max_depth, depth_);
    return true;
  }
  bool Close() {
    --depth_;
    if (depth_ == 1 && member_ == kPayload) {
      // The iterative parser reports the end before taking the bracket.
      out_.has_payload = true;
      out_.payload.assign(text_.substr(payload_start_, stream_.Tell() + 1 - payload_start_));
    }
    if (depth_ == 1) member_ = kNone;
    return true;
  }

  const rapidjson::MemoryStream& stream_;
  std::string_view text_;
  ScannedEnvelope& out_;
  int depth_ = 0;
  Member member_ = kNone;
  size_t payload_start_ = 0;
};

void ScanEnvelope(std::string_view text, ScannedEnvelope& out) {
  out.scanned = true;
  out.is_object = false;
  out.has_specversion = false;
  out.members = 0;
  out.has_id = out.has_type = out.has_timestamp = false;
  out.id.clear();
  out.type.clear();
  out.timestamp.clear();
  out.timestamp_not_string = false;
  out.has_payload = false;
  out.payload_is_string = false;
  out.payload.clear();
  out.max_depth = 0;
  rapidjson::MemoryStream stream(text.data(), text.size());
  EnvelopeScanner scanner(stream, text, out);
  out.parsed = json::ParseSax(stream, scanner, /*envelope_levels=*/1);
}

absl::Status ReadTime(std::string_view text, absl::Time& out) {
  absl::StatusOr<absl::Time> t = json::internal::ParseTime(text);
  if (!t.ok()) return t.status();
  out = *t;
  return absl::OkStatus();
}

// ASCII case-insensitive equality with a lowercase `lower`, inline: every
// header of every record read is matched against these names.
bool EqualsLowercase(std::string_view name, std::string_view lower) {
  if (name.size() != lower.size()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (absl::ascii_tolower(static_cast<unsigned char>(name[i])) != lower[i]) return false;
  }
  return true;
}
// IsCloudEventsHeaderName and IsReserved, the same tests inline.
bool IsCeHeaderNameFast(std::string_view name) {
  return name.size() >= kCeHeaderPrefix.size() &&
         EqualsLowercase(name.substr(0, kCeHeaderPrefix.size()), kCeHeaderPrefix);
}
bool IsReservedFast(std::string_view name) { return IsCeHeaderNameFast(name) || EqualsLowercase(name, kContentType); }

void CopyAppHeaders(const Headers& in, Envelope& e) {
  for (const auto& [k, v] : in) {
    if (!IsReservedFast(k)) e.headers.emplace_back(k, v);
  }
}

// The CloudEvents attributes herald keeps elsewhere than in an attribute
// field: `partitionkey` (Envelope::key) and the distributed-tracing
// extension (the traceparent and tracestate headers).
struct MappedAttributes {
  std::optional<std::string> partitionkey, traceparent, tracestate;
};

// Applies `mapped` to `e`, whose key and application headers are set:
// partitionkey becomes the key when the record has none, and is kept as an
// extension when it differs from the record's key; traceparent/tracestate
// become headers unless the record carries a `traceparent` header itself
// (that one is the current hop's; a plain tracestate header is kept too).
void ApplyMapped(MappedAttributes mapped, Envelope& e) {
  if (mapped.partitionkey.has_value()) {
    if (e.key.empty()) {
      e.key = std::move(*mapped.partitionkey);
    } else if (*mapped.partitionkey != e.key) {
      e.extensions.emplace_back(kPartitionKey, std::move(*mapped.partitionkey));
    }
  }
  if (FindHeader(e.headers, kTraceparentHeader).has_value()) return;
  if (mapped.traceparent.has_value()) e.headers.emplace_back(kTraceparentHeader, std::move(*mapped.traceparent));
  if (mapped.tracestate.has_value() && !FindHeader(e.headers, kTracestateHeader).has_value()) {
    e.headers.emplace_back(kTracestateHeader, std::move(*mapped.tracestate));
  }
}

// The CloudEvents attributes of a record's headers, read as the CloudEvents
// SDKs read them: `ce_` and `content-type` matched case-insensitively,
// attribute names lowercased, the first of a repeated name taken.
struct HeaderAttributes {
  std::optional<std::string_view> content_type, id, type, source, time, schemaversion, subject, dataschema,
      datacontenttype;
  MappedAttributes mapped;
  Extensions extensions;
  std::optional<std::string> bad_name;  // the first ce_ header that names no attribute
};

HeaderAttributes ReadHeaderAttributes(const Headers& headers) {
  HeaderAttributes a;
  for (const auto& header : headers) {
    // Not a structured binding: clang 14 cannot capture one in a lambda.
    const std::string& name = header.first;
    const std::string& value = header.second;
    if (EqualsLowercase(name, kContentType)) {
      if (!a.content_type.has_value()) a.content_type = value;
      continue;
    }
    if (!IsCeHeaderNameFast(name)) continue;
    // The attribute name lowercased, in a buffer on the stack when it fits
    // (every attribute herald knows does).
    const std::string_view raw_attr = std::string_view(name).substr(kCeHeaderPrefix.size());
    char lower[32];
    std::string long_attr;
    std::string_view attr;
    if (raw_attr.size() <= sizeof lower) {
      for (size_t i = 0; i < raw_attr.size(); ++i)
        lower[i] = absl::ascii_tolower(static_cast<unsigned char>(raw_attr[i]));
      attr = std::string_view(lower, raw_attr.size());
    } else {
      long_attr = absl::AsciiStrToLower(ToAbsl(raw_attr));
      attr = long_attr;
    }
    auto take = [&value](std::optional<std::string_view>& slot) {
      if (!slot.has_value()) slot = value;
    };
    auto take_owned = [&value](std::optional<std::string>& slot) {
      if (!slot.has_value()) slot.emplace(value);
    };
    if (attr == "specversion") {
      // Only 1.0 is written; any version is read alike.
    } else if (attr == "id") {
      take(a.id);
    } else if (attr == "type") {
      take(a.type);
    } else if (attr == "source") {
      take(a.source);
    } else if (attr == "time") {
      take(a.time);
    } else if (attr == "schemaversion") {
      take(a.schemaversion);
    } else if (attr == "subject") {
      take(a.subject);
    } else if (attr == "dataschema") {
      take(a.dataschema);
    } else if (attr == "datacontenttype") {
      take(a.datacontenttype);
    } else if (attr == kPartitionKey) {
      take_owned(a.mapped.partitionkey);
    } else if (attr == kTraceparentHeader) {
      take_owned(a.mapped.traceparent);
    } else if (attr == kTracestateHeader) {
      take_owned(a.mapped.tracestate);
    } else if (!IsAttributeName(attr) || attr == "data") {
      if (!a.bad_name.has_value()) a.bad_name = name;
    } else if (!HasName(a.extensions, attr)) {
      a.extensions.emplace_back(std::string(attr), value);
    }
  }
  return a;
}

// A structured member's value as an attribute's canonical string: a string's
// text, a number as written, true/false; null is no value. Objects and
// arrays are no CloudEvents attribute values.
absl::StatusOr<std::optional<std::string>> AttributeText(std::string_view name, const rapidjson::Value& v) {
  if (v.IsNull()) return std::nullopt;
  if (v.IsString()) return std::optional<std::string>(ReadString(v));
  if (v.IsBool()) return std::optional<std::string>(v.GetBool() ? "true" : "false");
  if (v.IsNumber()) return std::optional<std::string>(json::Serialize(v));
  return absl::InvalidArgumentError(herald::StrCat("CloudEvents structured record: attribute \"", name, "\" is ",
                                                   v.IsObject() ? "an object" : "an array",
                                                   "; attribute values are strings, numbers or booleans"));
}

absl::StatusOr<Envelope> DecodeStructured(std::string_view topic, std::string_view key, std::string_view value,
                                          const Headers& headers) {
  rapidjson::Document d;
  if (absl::Status s = json::Parse(value, d, /*envelope_levels=*/1); !s.ok()) {
    return absl::InvalidArgumentError(herald::StrCat("CloudEvents structured record: ", s.message()));
  }
  if (!d.IsObject()) return absl::InvalidArgumentError("CloudEvents structured record is not a JSON object");
  Envelope e;
  e.topic = std::string(topic);
  e.key = std::string(key);
  auto get = [&](const char* name) -> const rapidjson::Value* {
    auto it = d.FindMember(name);
    return it == d.MemberEnd() || it->value.IsNull() ? nullptr : &it->value;
  };
  const rapidjson::Value* id = get("id");
  const rapidjson::Value* type = get("type");
  if (id == nullptr || !id->IsString() || type == nullptr || !type->IsString()) {
    return absl::InvalidArgumentError("CloudEvents structured record lacks string \"id\" and \"type\"");
  }
  e.id = ReadString(*id);
  e.type = ReadString(*type);
  if (e.id.empty() || e.type.empty()) {
    return absl::InvalidArgumentError(herald::StrCat("CloudEvents structured record on ", topic, " has an empty ",
                                                     e.id.empty() ? "\"id\"" : "\"type\""));
  }
  if (const auto* s = get("source"); s != nullptr && s->IsString()) e.source = ReadString(*s);
  if (const auto* t = get("time"); t != nullptr && t->IsString()) {
    HERALD_RETURN_IF_ERROR(ReadTime(ReadString(*t), e.time));
  }
  for (auto [name, field] : {std::pair{"subject", &e.subject}, std::pair{"dataschema", &e.dataschema}}) {
    if (const auto* v = get(name); v != nullptr) {
      if (!v->IsString()) {
        return absl::InvalidArgumentError(
            herald::StrCat("CloudEvents structured record: \"", name, "\" ", json::Serialize(*v), " is not a string"));
      }
      *field = ReadString(*v);
    }
  }
  if (auto it = d.FindMember("schemaversion"); it != d.MemberEnd()) {
    const rapidjson::Value* v = &it->value;  // null too: herald's own attribute, always a version
    // As the ce_schemaversion header: a positive integer (a JSON number, or
    // a string as SDKs that keep extensions as strings write it).
    int version = 0;
    if (v->IsInt()) {
      version = v->GetInt();
    } else if (v->IsString() && !absl::SimpleAtoi(ToAbsl(ReadString(*v)), &version)) {
      version = 0;
    }
    if (version < 1) {
      return absl::InvalidArgumentError(herald::StrCat("CloudEvents structured record: \"schemaversion\" ",
                                                       json::Serialize(*v), " is not a positive integer"));
    }
    e.schema_version = version;
  }
  MappedAttributes mapped;
  for (auto [name, slot] :
       {std::pair{kPartitionKey, &mapped.partitionkey}, std::pair{kTraceparentHeader, &mapped.traceparent},
        std::pair{kTracestateHeader, &mapped.tracestate}}) {
    if (const auto* v = get(std::string(name).c_str()); v != nullptr) {
      HERALD_ASSIGN_OR_RETURN(*slot, AttributeText(name, *v));
    }
  }
  for (auto m = d.MemberBegin(); m != d.MemberEnd(); ++m) {
    std::string_view name(m->name.GetString(), m->name.GetStringLength());
    if (IsMappedAttribute(name) || m->value.IsNull()) continue;
    if (!IsAttributeName(name)) {
      return absl::InvalidArgumentError(
          herald::StrCat("CloudEvents structured record: member \"", name,
                         "\" is not a CloudEvents attribute name (lowercase letters a-z and digits)"));
    }
    HERALD_ASSIGN_OR_RETURN(std::optional<std::string> text, AttributeText(name, m->value));
    if (!HasName(e.extensions, name)) e.extensions.emplace_back(std::string(name), *std::move(text));
  }
  const auto* content_type = get("datacontenttype");
  if (content_type != nullptr && content_type->IsString()) e.content_type = ReadString(*content_type);
  if (IsStructuredContentType(e.content_type)) return StructuredDataContentTypeError("CloudEvents structured record");
  const auto* data = get("data");
  if (const auto* base64 = get("data_base64"); base64 != nullptr) {
    // Binary data (CloudEvents JSON format 3.1.1): the bytes, decoded.
    if (data != nullptr) {
      return absl::InvalidArgumentError("CloudEvents structured record has both \"data\" and \"data_base64\"");
    }
    if (!base64->IsString() || !absl::Base64Unescape(ToAbsl(ReadString(*base64)), &e.payload)) {
      return absl::InvalidArgumentError("CloudEvents structured record: \"data_base64\" is not a base64 string");
    }
    if (content_type == nullptr || !content_type->IsString()) e.content_type = std::string(kOctetStream);
    if (IsJsonContentType(e.content_type)) {
      if (absl::Status valid = json::Validate(e.payload); !valid.ok()) {
        return absl::InvalidArgumentError(
            herald::StrCat("CloudEvents structured record: \"data_base64\" (content type \"", e.content_type,
                           "\"): ", valid.message()));
      }
    }
  } else if (data == nullptr && !d.HasMember("data")) {
    // An event without data: a JSON null, so that it re-encodes in every mode
    // (an empty payload is not JSON).
    if (IsJsonContentType(e.content_type)) e.payload = "null";
  } else if (data != nullptr && data->IsString() && !IsJsonContentType(e.content_type)) {
    e.payload = ReadString(*data);
  } else if (std::optional<std::string_view> raw = RawMember(value, "data")) {
    e.payload = std::string(*raw);  // byte-exact
  } else {
    e.payload = data != nullptr ? json::Serialize(*data) : std::string("null");
  }
  CopyAppHeaders(headers, e);
  ApplyMapped(std::move(mapped), e);
  return e;
}

// The value of `partitionkey` to write: an extension of that name, else the
// key; nullopt when both are absent or empty.
std::optional<std::string_view> PartitionKeyToWrite(const Envelope& e) {
  if (HasName(e.extensions, kPartitionKey)) return std::nullopt;  // written with the extensions
  if (e.key.empty()) return std::nullopt;
  return std::string_view(e.key);
}

// `data` or `data_base64` of a structured event: JSON payloads embedded,
// text/* payloads that are UTF-8 as a string, anything else base64 (the
// CloudEvents JSON format's rule for binary data).
absl::Status WriteStructuredData(json::Writer& w, const Envelope& e) {
  if (IsJsonContentType(e.content_type)) {
    Key(w, "data");
    return WritePayload(w, e);
  }
  if (absl::StartsWithIgnoreCase(ToAbsl(e.content_type), "text/") && IsUtf8(e.payload)) {
    Key(w, "data");
    WriteString(w, e.payload);
  } else {
    Key(w, "data_base64");
    WriteString(w, absl::Base64Escape(ToAbsl(e.payload)));
  }
  return absl::OkStatus();
}

}  // namespace

namespace {

// A JSON string's text exactly as RapidJSON's Writer writes it (UTF-8 in and
// out, default flags: json::Writer): '"' and '\\' escaped, control bytes as
// \b \t \n \f \r or \u00XX (uppercase hex), every other byte as it is.
// Written here without the Writer, whose worst-case reservation (six bytes
// per byte of every string) regrew the buffer on each publish; wire_test
// holds it to the Writer's bytes for every byte value.
constexpr std::array<char, 256> kJsonEscape = [] {
  std::array<char, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = 'u';
  t['\b'] = 'b';
  t['\t'] = 't';
  t['\n'] = 'n';
  t['\f'] = 'f';
  t['\r'] = 'r';
  t['"'] = '"';
  t['\\'] = '\\';
  return t;
}();

// The size of QuoteJsonString's text for `s`.
size_t QuotedJsonSize(std::string_view s) {
  size_t n = s.size() + 2;
  for (char c : s) {
    const char e = kJsonEscape[static_cast<unsigned char>(c)];
    if (e != 0) n += e == 'u' ? 5 : 1;
  }
  return n;
}

// Appends `s` as a JSON string (with its quotes), as json::Writer::String.
void AppendQuotedJson(std::string& out, std::string_view s) {
  static constexpr char kHexDigits[] = "0123456789ABCDEF";
  out.push_back('"');
  size_t plain = 0;  // start of the bytes not yet copied
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    const char e = kJsonEscape[c];
    if (e == 0) continue;
    out.append(s.data() + plain, i - plain);
    plain = i + 1;
    const char escaped[6] = {'\\', e, '0', '0', kHexDigits[c >> 4], kHexDigits[c & 15]};
    out.append(escaped, e == 'u' ? 6 : 2);
  }
  out.append(s.data() + plain, s.size() - plain);
  out.push_back('"');
}

// The JSON envelope {"id","type","timestamp","payload"} with `time` as the
// timestamp: the bytes json::Writer wrote for it (StartObject, Key/String
// pairs, the payload through WritePayload), assembled in one string of the
// exact size.
absl::StatusOr<std::string> EncodeJsonEnvelopeAt(const Envelope& e, std::string_view time) {
  static constexpr std::string_view kOpen = "{\"id\":", kType = ",\"type\":", kTimestamp = ",\"timestamp\":",
                                    kPayload = ",\"payload\":";
  const bool json_payload = IsJsonContentType(e.content_type);
  std::string_view payload = e.payload;
  if (json_payload) {
    if (absl::Status valid = json::Validate(e.payload); !valid.ok()) return PayloadNotJsonError(e, valid);
    // White space around a JSON value is not part of it; a reader finds the
    // value without it, so it is not written.
    payload = json::TrimWhitespace(e.payload);
  }
  std::string out;
  out.reserve(kOpen.size() + QuotedJsonSize(e.id) + kType.size() + QuotedJsonSize(e.type) + kTimestamp.size() +
              QuotedJsonSize(time) + kPayload.size() + (json_payload ? payload.size() : QuotedJsonSize(payload)) + 1);
  out.append(kOpen);
  AppendQuotedJson(out, e.id);
  out.append(kType);
  AppendQuotedJson(out, e.type);
  out.append(kTimestamp);
  AppendQuotedJson(out, time);
  out.append(kPayload);
  if (json_payload) {
    out.append(payload);
  } else {
    AppendQuotedJson(out, payload);
  }
  out.push_back('}');
  return out;
}

}  // namespace

bool IsCloudEventsHeaderName(std::string_view name) {
  return absl::StartsWithIgnoreCase(ToAbsl(name), ToAbsl(kCeHeaderPrefix));
}

// The extension rule of wire.h (DecodeRecord gives nothing else).
absl::Status CheckCloudEventsExtensions(const Envelope& e) {
  for (size_t i = 0; i < e.extensions.size(); ++i) {
    const std::string& name = e.extensions[i].first;
    if (!IsAttributeName(name)) {
      return absl::InvalidArgumentError(herald::StrCat("extension \"", name, "\" of \"", e.type, "\" event ", e.id,
                                                       ": CloudEvents attribute names are lowercase letters a-z "
                                                       "and digits"));
    }
    if (IsMappedAttribute(name) && name != kPartitionKey) {
      return absl::InvalidArgumentError(herald::StrCat(
          "extension \"", name, "\" of \"", e.type, "\" event ", e.id,
          " is an attribute herald writes from the envelope: set its field (or the traceparent/tracestate header)"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (e.extensions[j].first == name) {
        return absl::InvalidArgumentError(
            herald::StrCat("extension \"", name, "\" of \"", e.type, "\" event ", e.id, " appears twice"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> EncodeJsonEnvelope(const Envelope& e) {
  char time[json::internal::kFormattedTimeCapacity];
  return EncodeJsonEnvelopeAt(e, json::internal::FormatTimeTo(e.time, time));
}

absl::StatusOr<std::string> EncodeRecordValue(const Envelope& e, WireMode mode, RecordHeaderSink header) {
  if (e.id.empty() || e.type.empty()) {
    return absl::InvalidArgumentError("envelope needs an id and a type to go on the wire");
  }
  if (!e.extensions.empty()) HERALD_RETURN_IF_ERROR(CheckCloudEventsExtensions(e));
  if (mode != WireMode::kJsonEnvelope && IsStructuredContentType(e.content_type)) {
    return StructuredDataContentTypeError(herald::StrCat("\"", e.type, "\" event ", e.id));
  }
  std::string value;
  char time_text[json::internal::kFormattedTimeCapacity];
  const std::string_view time = json::internal::FormatTimeTo(e.time, time_text);
  std::optional<std::string_view> partitionkey = PartitionKeyToWrite(e);
  std::optional<std::string_view> traceparent = FindHeader(e.headers, kTraceparentHeader);
  std::optional<std::string_view> tracestate = FindHeader(e.headers, kTracestateHeader);
  switch (mode) {
    case WireMode::kJsonEnvelope:
    case WireMode::kBinary: {
      if (mode == WireMode::kJsonEnvelope) {
        HERALD_ASSIGN_OR_RETURN(value, EncodeJsonEnvelopeAt(e, time));
      } else {
        value = e.payload;
      }
      header(kSpecVersion, "1.0");
      header(kCeId, e.id);
      header(kCeSource, e.source.empty() ? std::string_view("herald") : std::string_view(e.source));
      header(kCeType, e.type);
      header(kCeTime, time);
      header(kContentType,
             mode == WireMode::kJsonEnvelope ? std::string_view("application/json") : std::string_view(e.content_type));
      if (e.schema_version != 1) {
        char digits[16];
        const std::to_chars_result end = std::to_chars(digits, digits + sizeof(digits), e.schema_version);
        header(kCeSchemaVersion, std::string_view(digits, static_cast<size_t>(end.ptr - digits)));
      }
      if (!e.subject.empty()) header(kCeSubjectHeader, e.subject);
      if (!e.dataschema.empty()) header(kCeDataSchemaHeader, e.dataschema);
      if (partitionkey.has_value()) header(kCePartitionKey, *partitionkey);
      if (traceparent.has_value()) header(kCeTraceparent, *traceparent);
      if (tracestate.has_value()) header(kCeTracestate, *tracestate);
      for (const auto& [name, text] : e.extensions) header(herald::StrCat(kCeHeaderPrefix, name), text);
      break;
    }
    case WireMode::kCloudEventsStructured: {
      rapidjson::StringBuffer buffer;
      json::Writer w(buffer);
      w.StartObject();
      Key(w, "specversion");
      WriteString(w, "1.0");
      Key(w, "id");
      WriteString(w, e.id);
      Key(w, "source");
      WriteString(w, e.source.empty() ? std::string_view("herald") : std::string_view(e.source));
      Key(w, "type");
      WriteString(w, e.type);
      Key(w, "time");
      WriteString(w, time);
      if (!e.subject.empty()) {
        Key(w, "subject");
        WriteString(w, e.subject);
      }
      if (!e.dataschema.empty()) {
        Key(w, "dataschema");
        WriteString(w, e.dataschema);
      }
      if (e.schema_version != 1) {
        Key(w, "schemaversion");
        w.Int(e.schema_version);
      }
      for (auto [name, text] : {std::pair{kPartitionKey, partitionkey}, std::pair{kTraceparentHeader, traceparent},
                                std::pair{kTracestateHeader, tracestate}}) {
        if (!text.has_value()) continue;
        Key(w, name);
        WriteString(w, *text);
      }
      for (const auto& [name, value] : e.extensions) {
        Key(w, name);
        WriteString(w, value);
      }
      Key(w, "datacontenttype");
      WriteString(w, e.content_type);
      HERALD_RETURN_IF_ERROR(WriteStructuredData(w, e));
      w.EndObject();
      value.assign(buffer.GetString(), buffer.GetSize());
      header(kContentType, kStructuredContentType);
      break;
    }
  }
  for (const auto& [k, v] : e.headers) {
    if (!IsReserved(k)) header(k, v);
  }
  return value;
}

absl::StatusOr<Record> EncodeRecord(const Envelope& e, WireMode mode) {
  Record r;
  r.headers.reserve(11 + e.extensions.size() + e.headers.size());
  HERALD_ASSIGN_OR_RETURN(r.value, EncodeRecordValue(e, mode, [&r](std::string_view name, std::string_view value) {
                            r.headers.emplace_back(name, value);
                          }));
  r.key = e.key;
  return r;
}

namespace {

// `e` as a default Envelope, keeping its strings' storage.
void ResetKeepingStorage(Envelope& e) {
#if defined(__GLIBCXX__) && defined(__x86_64__)
  static_assert(sizeof(Envelope) == 360, "Envelope changed: reset its new field here");
#endif
  e.id.clear();
  e.type.clear();
  e.topic.clear();
  e.key.clear();
  e.source.clear();
  e.time = absl::UnixEpoch();
  e.schema_version = 1;
  e.headers.clear();
  e.payload.clear();
  e.content_type.assign("application/json");
  e.subject.clear();
  e.dataschema.clear();
  e.extensions.clear();
}

}  // namespace

absl::StatusOr<Envelope> DecodeRecord(std::string_view topic, std::string_view key, std::string_view value,
                                      const Headers& headers) {
  Envelope e;
  HERALD_RETURN_IF_ERROR(DecodeRecordInto(topic, key, value, headers, e));
  return e;
}

absl::Status DecodeRecordInto(std::string_view topic, std::string_view key, std::string_view value,
                              const Headers& headers, Envelope& e) {
  HeaderAttributes attrs = ReadHeaderAttributes(headers);
  if (attrs.content_type.has_value() &&
      absl::StartsWithIgnoreCase(ToAbsl(*attrs.content_type), ToAbsl(kStructuredContentType))) {
    // ce_ headers are not read in structured mode
    HERALD_ASSIGN_OR_RETURN(e, DecodeStructured(topic, key, value, headers));
    return absl::OkStatus();
  }

  ResetKeepingStorage(e);
  e.topic.assign(topic);
  e.key.assign(key);

  // A JSON envelope value {"id","type","timestamp","payload"}? One SAX pass,
  // into this thread's scratch (nothing here calls out of this file).
  thread_local ScannedEnvelope scratch;
  ScannedEnvelope& scanned = scratch;
  scanned.scanned = false;
  if (!value.empty() && value.front() == '{') ScanEnvelope(value, scanned);
  bool parsed = scanned.ok() && scanned.is_object;
  bool is_envelope = parsed && scanned.has_id && scanned.has_type && scanned.has_payload &&
                     (!attrs.id.has_value() || scanned.id == *attrs.id);
  if (is_envelope) {
    e.id.assign(scanned.id);
    e.type.assign(scanned.type);
    if (scanned.timestamp_not_string) {
      return absl::InvalidArgumentError("JSON envelope \"timestamp\" is not a string");
    }
    if (scanned.has_timestamp) HERALD_RETURN_IF_ERROR(ReadTime(scanned.timestamp, e.time));
    e.payload.assign(scanned.payload);  // byte-exact
    if (scanned.payload_is_string) e.content_type = "text/plain";
  } else if (attrs.id.has_value() && attrs.type.has_value()) {
    // CloudEvents binary mode: the value is the payload. A JSON payload is
    // checked here, within the limits, as EncodeRecord checks it.
    e.id = std::string(*attrs.id);
    e.type = std::string(*attrs.type);
    if (attrs.content_type.has_value()) {
      e.content_type = std::string(*attrs.content_type);
    } else if (attrs.datacontenttype.has_value()) {
      e.content_type = std::string(*attrs.datacontenttype);
      if (IsStructuredContentType(e.content_type)) {
        return StructuredDataContentTypeError(herald::StrCat("CloudEvents binary record on ", topic));
      }
    }
    if (IsJsonContentType(e.content_type) && !(scanned.ok() && scanned.max_depth <= kMaxJsonDepth)) {
      if (absl::Status valid = json::Validate(value); !valid.ok()) {
        return absl::InvalidArgumentError(herald::StrCat("CloudEvents binary record on ", topic, " (content type \"",
                                                         e.content_type, "\"): ", valid.message()));
      }
    }
    e.payload.assign(value);
    if (attrs.time.has_value()) HERALD_RETURN_IF_ERROR(ReadTime(*attrs.time, e.time));
  } else if (parsed && scanned.has_specversion) {
    HERALD_ASSIGN_OR_RETURN(e, DecodeStructured(topic, key, value, headers));
    return absl::OkStatus();
  } else if (!value.empty() && value.front() == '{' && !scanned.ok()) {
    return absl::InvalidArgumentError(
        herald::StrCat("record on ", topic, " is not a JSON envelope: ", scanned.parsed.message()));
  } else {
    return absl::InvalidArgumentError(
        herald::StrCat("record on ", topic,
                       " is neither a JSON envelope {\"id\",\"type\",\"timestamp\",\"payload\"} nor a "
                       "CloudEvent (no ce_id/ce_type headers)"));
  }
  if (e.id.empty() || e.type.empty()) {
    // Nothing can deduplicate or route it: dead-lettered, never skipped.
    std::string_view what = e.id.empty() ? "id" : "type";
    return absl::InvalidArgumentError(
        herald::StrCat("record on ", topic, " has an empty ", what,
                       is_envelope ? std::string(" in its JSON envelope") : herald::StrCat(" (header ce_", what, ")"),
                       ": it can be neither deduplicated nor routed"));
  }
  if (attrs.bad_name.has_value()) {
    return absl::InvalidArgumentError(herald::StrCat("record on ", topic, ": header \"", *attrs.bad_name,
                                                     "\" does not name a CloudEvents attribute (ce_ then lowercase "
                                                     "letters a-z and digits)"));
  }
  if (attrs.source.has_value()) e.source.assign(*attrs.source);
  if (attrs.schemaversion.has_value()) {
    int version = 0;
    if (!absl::SimpleAtoi(ToAbsl(*attrs.schemaversion), &version) || version < 1) {
      return absl::InvalidArgumentError(
          herald::StrCat("ce_schemaversion \"", *attrs.schemaversion, "\" is not a positive integer"));
    }
    e.schema_version = version;
  }
  if (attrs.subject.has_value()) e.subject.assign(*attrs.subject);
  if (attrs.dataschema.has_value()) e.dataschema.assign(*attrs.dataschema);
  e.extensions = std::move(attrs.extensions);
  CopyAppHeaders(headers, e);
  ApplyMapped(std::move(attrs.mapped), e);
  return absl::OkStatus();
}

bool UnwrapJsonEnvelope(Envelope& e) {
  if (!IsJsonContentType(e.content_type)) return false;
  size_t first = e.payload.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || e.payload[first] != '{') return false;
  // Most rows are bare payloads: skip the scan unless the member names are
  // there as Go and JSONB write them (unescaped).
  if (e.payload.find("\"timestamp\"") == std::string::npos || e.payload.find("\"payload\"") == std::string::npos) {
    return false;
  }
  ScannedEnvelope scanned;
  ScanEnvelope(e.payload, scanned);
  if (!scanned.ok() || !scanned.is_object || scanned.members != 4 || !scanned.has_id || scanned.id.empty() ||
      !scanned.has_type || scanned.type != e.type || !scanned.has_timestamp || !scanned.has_payload) {
    return false;
  }
  absl::StatusOr<absl::Time> time = json::internal::ParseTime(scanned.timestamp);
  if (!time.ok()) return false;
  e.id = std::move(scanned.id);
  e.time = *time;
  e.payload = std::move(scanned.payload);
  e.content_type = scanned.payload_is_string ? "text/plain" : "application/json";
  return true;
}

}  // namespace herald
