#include "herald/core/outbox.h"

#include <string>

#include "absl/strings/escaping.h"
#include "herald/core/json.h"
#include "herald/core/strings.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace herald {

bool IsValidSqlIdentifier(std::string_view name) {
  auto is_start = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
  if (name.empty() || name.size() > 63 || !is_start(name[0])) return false;
  for (char c : name.substr(1)) {
    if (!is_start(c) && !(c >= '0' && c <= '9')) return false;
  }
  return true;
}

absl::Status CheckSqlIdentifier(std::string_view option, std::string_view name) {
  if (IsValidSqlIdentifier(name)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      herald::StrCat(option, " \"", absl::CHexEscape(std::string(name.substr(0, 80))),
                     "\" is not a valid SQL identifier: use 1 to 63 of [A-Za-z0-9_], not starting with a digit"));
}

std::string EncodeOutboxHeaders(const Headers& headers) {
  if (headers.empty()) return {};
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartArray();
  for (const auto& [name, value] : headers) {
    writer.StartArray();
    writer.String(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    writer.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
    writer.EndArray();
  }
  writer.EndArray();
  return std::string(buffer.GetString(), buffer.GetSize());
}

absl::StatusOr<Headers> DecodeOutboxHeaders(std::string_view text) {
  Headers headers;
  if (text.empty()) return headers;
  rapidjson::Document document;
  if (absl::Status parsed = json::Parse(text, document); !parsed.ok()) {
    return absl::InvalidArgumentError(herald::StrCat("headers column is not JSON: ", parsed.message()));
  }
  if (document.IsNull()) return headers;
  if (!document.IsArray()) {
    return absl::InvalidArgumentError("headers column is not a JSON array of [name, value] pairs");
  }
  for (const rapidjson::Value& pair : document.GetArray()) {
    if (!pair.IsArray() || pair.Size() != 2 || !pair[0].IsString() || !pair[1].IsString()) {
      return absl::InvalidArgumentError("headers column holds an element that is not a [name, value] pair of strings");
    }
    headers.emplace_back(std::string(pair[0].GetString(), pair[0].GetStringLength()),
                         std::string(pair[1].GetString(), pair[1].GetStringLength()));
  }
  return headers;
}

absl::Status CheckOutboxSchemaVersion(int schema_version) {
  if (schema_version >= 1) return absl::OkStatus();
  return absl::InvalidArgumentError(herald::StrCat(
      "schema_version ", schema_version,
      " is not a valid event schema version: versions start at 1, and herald's consumers reject a record whose "
      "ce_schemaversion is not a positive integer. Hint: fix the row's schema_version, then retry it "
      "(herald outbox retry), or skip it (herald outbox skip)"));
}

std::string OutboxSkipNote(absl::Time at, std::string_view reason, std::string_view previous_error) {
  return herald::StrCat("skipped by operator at ", absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", at, absl::UTCTimeZone()),
                        ": ", reason, "; last error: ", previous_error);
}

std::string EncodeKeyPositions(absl::Span<const KeyPosition> positions) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartArray();
  for (const KeyPosition& position : positions) {
    writer.StartArray();
    writer.String(position.key.data(), static_cast<rapidjson::SizeType>(position.key.size()));
    writer.Int64(position.sequence);
    writer.EndArray();
  }
  writer.EndArray();
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace herald
