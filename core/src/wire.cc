#include "herald/core/wire.h"

#include <algorithm>
#include <charconv>

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
constexpr std::string_view kContentType = "content-type";
constexpr std::string_view kStructuredContentType = "application/cloudevents+json";

bool IsReserved(std::string_view name) {
  return absl::StartsWithIgnoreCase(ToAbsl(name), "ce_") || absl::EqualsIgnoreCase(ToAbsl(name), ToAbsl(kContentType));
}

bool IsJsonContentType(std::string_view ct) {
  return ct.empty() || absl::StartsWithIgnoreCase(ToAbsl(ct), "application/json") ||
         absl::EndsWithIgnoreCase(ToAbsl(ct), "+json");
}

void Key(json::Writer& w, std::string_view k) { w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size())); }
void WriteString(json::Writer& w, std::string_view v) { w.String(v.data(), static_cast<rapidjson::SizeType>(v.size())); }

absl::Status WritePayload(json::Writer& w, const Envelope& e) {
  if (IsJsonContentType(e.content_type)) {
    if (absl::Status valid = json::Validate(e.payload); !valid.ok()) {
      return absl::InvalidArgumentError(herald::StrCat("payload of \"", e.type, "\" event ", e.id, " (content type \"",
                                                       e.content_type, "\") is not accepted as JSON: ", valid.message(),
                                                       "; fix the payload, set content_type or use WireMode::kBinary"));
    }
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
// any other JSON value). No DOM is built.
struct ScannedEnvelope {
  absl::Status parsed = absl::InvalidArgumentError("not scanned");  // of the whole value
  bool is_object = false;
  bool has_specversion = false;
  int members = 0;  // top-level members, repeats included
  std::optional<std::string> id, type, timestamp;
  bool timestamp_not_string = false;
  bool has_payload = false;
  bool payload_is_string = false;
  std::string payload;  // the string's text, or the raw JSON bytes
  int max_depth = 0;    // of the whole value
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
    member_ = k == "id" ? kId : k == "type" ? kType : k == "timestamp" ? kTimestamp : k == "payload" ? kPayload : kOther;
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
        case kId:
          if (s != nullptr) out_.id.emplace(s, n);
          break;
        case kType:
          if (s != nullptr) out_.type.emplace(s, n);
          break;
        case kTimestamp:
          if (s != nullptr) {
            out_.timestamp.emplace(s, n);
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

ScannedEnvelope ScanEnvelope(std::string_view text) {
  ScannedEnvelope out;
  rapidjson::MemoryStream stream(text.data(), text.size());
  EnvelopeScanner scanner(stream, text, out);
  out.parsed = json::ParseSax(stream, scanner, /*envelope_levels=*/1);
  return out;
}

absl::Status ReadTime(std::string_view text, absl::Time& out) {
  absl::StatusOr<absl::Time> t = json::internal::ParseTime(text);
  if (!t.ok()) return t.status();
  out = *t;
  return absl::OkStatus();
}

void CopyAppHeaders(const Headers& in, Envelope& e) {
  for (const auto& [k, v] : in) {
    if (!IsReserved(k)) e.headers.emplace_back(k, v);
  }
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
    return it == d.MemberEnd() ? nullptr : &it->value;
  };
  const rapidjson::Value* id = get("id");
  const rapidjson::Value* type = get("type");
  if (id == nullptr || !id->IsString() || type == nullptr || !type->IsString()) {
    return absl::InvalidArgumentError("CloudEvents structured record lacks string \"id\" and \"type\"");
  }
  e.id = ReadString(*id);
  e.type = ReadString(*type);
  if (const auto* s = get("source"); s != nullptr && s->IsString()) e.source = ReadString(*s);
  if (const auto* t = get("time"); t != nullptr && t->IsString()) {
    HERALD_RETURN_IF_ERROR(ReadTime(ReadString(*t), e.time));
  }
  if (const auto* v = get("schemaversion"); v != nullptr) {
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
  if (const auto* ct = get("datacontenttype"); ct != nullptr && ct->IsString()) e.content_type = ReadString(*ct);
  if (const auto* data = get("data"); data == nullptr) {
    // An event without data: a JSON null, so that it re-encodes in every mode
    // (an empty payload is not JSON).
    if (IsJsonContentType(e.content_type)) e.payload = "null";
  } else {
    if (data->IsString() && !IsJsonContentType(e.content_type)) {
      e.payload = ReadString(*data);
    } else if (std::optional<std::string_view> raw = RawMember(value, "data")) {
      e.payload = std::string(*raw);  // byte-exact
    } else {
      e.payload = json::Serialize(*data);
    }
  }
  CopyAppHeaders(headers, e);
  return e;
}

}  // namespace

namespace {
absl::StatusOr<std::string> EncodeJsonEnvelopeAt(const Envelope& e, std::string_view time) {
  rapidjson::StringBuffer buffer(nullptr, 96 + e.id.size() + e.type.size() + e.payload.size());
  json::Writer w(buffer);
  w.StartObject();
  Key(w, "id");
  WriteString(w, e.id);
  Key(w, "type");
  WriteString(w, e.type);
  Key(w, "timestamp");
  WriteString(w, time);
  Key(w, "payload");
  HERALD_RETURN_IF_ERROR(WritePayload(w, e));
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}
}  // namespace

absl::StatusOr<std::string> EncodeJsonEnvelope(const Envelope& e) {
  return EncodeJsonEnvelopeAt(e, json::internal::FormatTime(e.time));
}

absl::StatusOr<Record> EncodeRecord(const Envelope& e, WireMode mode) {
  if (e.id.empty() || e.type.empty()) {
    return absl::InvalidArgumentError("envelope needs an id and a type to go on the wire");
  }
  Record r;
  r.key = e.key;
  std::string time = json::internal::FormatTime(e.time);
  switch (mode) {
    case WireMode::kJsonEnvelope:
    case WireMode::kBinary: {
      if (mode == WireMode::kJsonEnvelope) {
        HERALD_ASSIGN_OR_RETURN(r.value, EncodeJsonEnvelopeAt(e, time));
      } else {
        r.value = e.payload;
      }
      r.headers.reserve(7 + e.headers.size());
      r.headers.emplace_back(kSpecVersion, "1.0");
      r.headers.emplace_back(kCeId, e.id);
      r.headers.emplace_back(kCeSource, e.source.empty() ? std::string("herald") : e.source);
      r.headers.emplace_back(kCeType, e.type);
      r.headers.emplace_back(kCeTime, std::move(time));
      r.headers.emplace_back(kContentType, mode == WireMode::kJsonEnvelope ? std::string("application/json")
                                                                           : e.content_type);
      if (e.schema_version != 1) r.headers.emplace_back(kCeSchemaVersion, herald::StrCat(e.schema_version));
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
      if (e.schema_version != 1) {
        Key(w, "schemaversion");
        w.Int(e.schema_version);
      }
      Key(w, "datacontenttype");
      WriteString(w, e.content_type);
      Key(w, "data");
      HERALD_RETURN_IF_ERROR(WritePayload(w, e));
      w.EndObject();
      r.value.assign(buffer.GetString(), buffer.GetSize());
      r.headers.emplace_back(kContentType, kStructuredContentType);
      break;
    }
  }
  for (const auto& [k, v] : e.headers) {
    if (!IsReserved(k)) r.headers.emplace_back(k, v);
  }
  return r;
}

absl::StatusOr<Envelope> DecodeRecord(std::string_view topic, std::string_view key, std::string_view value,
                                      const Headers& headers) {
  std::optional<std::string_view> content_type = FindHeader(headers, kContentType);
  if (content_type.has_value() && absl::StartsWithIgnoreCase(ToAbsl(*content_type), ToAbsl(kStructuredContentType))) {
    return DecodeStructured(topic, key, value, headers);
  }
  std::optional<std::string_view> ce_id = FindHeader(headers, kCeId);
  std::optional<std::string_view> ce_type = FindHeader(headers, kCeType);

  Envelope e;
  e.topic = std::string(topic);
  e.key = std::string(key);

  // A JSON envelope value {"id","type","timestamp","payload"}? One SAX pass.
  ScannedEnvelope scanned;
  if (!value.empty() && value.front() == '{') scanned = ScanEnvelope(value);
  bool parsed = scanned.parsed.ok() && scanned.is_object;
  bool is_envelope = parsed && scanned.id.has_value() && scanned.type.has_value() && scanned.has_payload &&
                     (!ce_id.has_value() || *scanned.id == *ce_id);
  if (is_envelope) {
    e.id = std::move(*scanned.id);
    e.type = std::move(*scanned.type);
    if (scanned.timestamp_not_string) {
      return absl::InvalidArgumentError("JSON envelope \"timestamp\" is not a string");
    }
    if (scanned.timestamp.has_value()) HERALD_RETURN_IF_ERROR(ReadTime(*scanned.timestamp, e.time));
    e.payload = std::move(scanned.payload);  // byte-exact
    if (scanned.payload_is_string) e.content_type = "text/plain";
  } else if (ce_id.has_value() && ce_type.has_value()) {
    // CloudEvents binary mode: the value is the payload. A JSON payload is
    // checked here, within the limits, as EncodeRecord checks it.
    e.id = std::string(*ce_id);
    e.type = std::string(*ce_type);
    e.content_type = content_type.has_value() ? std::string(*content_type) : std::string("application/json");
    if (IsJsonContentType(e.content_type) && !(scanned.parsed.ok() && scanned.max_depth <= kMaxJsonDepth)) {
      if (absl::Status valid = json::Validate(value); !valid.ok()) {
        return absl::InvalidArgumentError(herald::StrCat("CloudEvents binary record on ", topic, " (content type \"",
                                                         e.content_type, "\"): ", valid.message()));
      }
    }
    e.payload = std::string(value);
    if (auto t = FindHeader(headers, kCeTime)) HERALD_RETURN_IF_ERROR(ReadTime(*t, e.time));
  } else if (parsed && scanned.has_specversion) {
    return DecodeStructured(topic, key, value, headers);
  } else if (!value.empty() && value.front() == '{' && !scanned.parsed.ok()) {
    return absl::InvalidArgumentError(
        herald::StrCat("record on ", topic, " is not a JSON envelope: ", scanned.parsed.message()));
  } else {
    return absl::InvalidArgumentError(herald::StrCat(
        "record on ", topic, " is neither a JSON envelope {\"id\",\"type\",\"timestamp\",\"payload\"} nor a "
        "CloudEvent (no ce_id/ce_type headers)"));
  }
  if (auto s = FindHeader(headers, kCeSource)) e.source = std::string(*s);
  if (auto v = FindHeader(headers, kCeSchemaVersion)) {
    int version = 0;
    if (!absl::SimpleAtoi(ToAbsl(*v), &version) || version < 1) {
      return absl::InvalidArgumentError(herald::StrCat("ce_schemaversion \"", *v, "\" is not a positive integer"));
    }
    e.schema_version = version;
  }
  CopyAppHeaders(headers, e);
  return e;
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
  ScannedEnvelope scanned = ScanEnvelope(e.payload);
  if (!scanned.parsed.ok() || !scanned.is_object || scanned.members != 4 || !scanned.id.has_value() ||
      scanned.id->empty() || scanned.type != e.type || !scanned.timestamp.has_value() || !scanned.has_payload) {
    return false;
  }
  absl::StatusOr<absl::Time> time = json::internal::ParseTime(*scanned.timestamp);
  if (!time.ok()) return false;
  e.id = std::move(*scanned.id);
  e.time = *time;
  e.payload = std::move(scanned.payload);
  e.content_type = scanned.payload_is_string ? "text/plain" : "application/json";
  return true;
}

}  // namespace herald
