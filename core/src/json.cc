#include "herald/core/strings.h"
#include "herald/core/json.h"

#include "rapidjson/error/en.h"
#include "rapidjson/reader.h"

namespace herald::json {
namespace internal {

absl::Status TypeError(std::string_view path, std::string_view expected) {
  return absl::InvalidArgumentError(herald::StrCat("JSON member \"", path, "\" must be ", expected));
}

bool WriteRawJson(Writer& w, const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  if (d.HasParseError()) {
    w.Null();
    return false;
  }
  return d.Accept(w);
}

absl::Status ReadRawJson(const rapidjson::Value& v, std::string& text) {
  text = Serialize(v);
  return absl::OkStatus();
}

std::string FormatTime(absl::Time t) {
  // RFC 3339 with an explicit offset and sub-second digits as needed, which
  // Go's time.RFC3339Nano reads.
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*S%Ez", t, absl::UTCTimeZone());
}

absl::StatusOr<absl::Time> ParseTime(std::string_view text) {
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, std::string(text), &t, &err)) return t;
  return absl::InvalidArgumentError(herald::StrCat("not an RFC 3339 time: \"", text, "\": ", err));
}

}  // namespace internal

absl::Status Parse(std::string_view text, rapidjson::Document& document) {
  document.Parse(text.data(), text.size());
  if (document.HasParseError()) {
    return absl::InvalidArgumentError(herald::StrCat("not valid JSON at offset ", document.GetErrorOffset(), ": ",
                                                   rapidjson::GetParseError_En(document.GetParseError())));
  }
  return absl::OkStatus();
}

std::string Serialize(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace herald::json
