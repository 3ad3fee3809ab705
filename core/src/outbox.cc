#include "herald/core/outbox.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "herald/core/json.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/core/wire.h"
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

namespace {

void WritePair(rapidjson::Writer<rapidjson::StringBuffer>& writer, std::string_view name, std::string_view value) {
  writer.StartArray();
  writer.String(name.data(), static_cast<rapidjson::SizeType>(name.size()));
  writer.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  writer.EndArray();
}

}  // namespace

absl::StatusOr<std::string> EncodeOutboxHeaders(const Envelope& envelope) {
  HERALD_RETURN_IF_ERROR(CheckCloudEventsExtensions(envelope));
  const bool any_header = std::any_of(envelope.headers.begin(), envelope.headers.end(),
                                      [](const auto& header) { return !IsCloudEventsHeaderName(header.first); });
  if (!any_header && envelope.subject.empty() && envelope.dataschema.empty() && envelope.extensions.empty()) {
    return std::string();
  }
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartArray();
  if (!envelope.subject.empty()) WritePair(writer, kCeSubjectHeader, envelope.subject);
  if (!envelope.dataschema.empty()) WritePair(writer, kCeDataSchemaHeader, envelope.dataschema);
  for (const auto& [name, value] : envelope.extensions) WritePair(writer, herald::StrCat(kCeHeaderPrefix, name), value);
  for (const auto& [name, value] : envelope.headers) {
    if (!IsCloudEventsHeaderName(name)) WritePair(writer, name, value);  // the envelope's fields win
  }
  writer.EndArray();
  return std::string(buffer.GetString(), buffer.GetSize());
}

absl::Status DecodeOutboxHeaders(std::string_view column, Envelope& envelope) {
  Headers headers;
  std::optional<std::string> subject, dataschema;
  Extensions extensions;
  if (!column.empty()) {
    rapidjson::Document document;
    if (absl::Status parsed = json::Parse(column, document); !parsed.ok()) {
      return absl::InvalidArgumentError(herald::StrCat("headers column is not JSON: ", parsed.message()));
    }
    if (!document.IsNull() && !document.IsArray()) {
      return absl::InvalidArgumentError("headers column is not a JSON array of [name, value] pairs");
    }
    if (document.IsArray()) {
      for (const rapidjson::Value& pair : document.GetArray()) {
        if (!pair.IsArray() || pair.Size() != 2 || !pair[0].IsString() || !pair[1].IsString()) {
          return absl::InvalidArgumentError(
              "headers column holds an element that is not a [name, value] pair of strings");
        }
        std::string name(pair[0].GetString(), pair[0].GetStringLength());
        std::string value(pair[1].GetString(), pair[1].GetStringLength());
        if (!IsCloudEventsHeaderName(name)) {
          headers.emplace_back(std::move(name), std::move(value));
          continue;
        }
        if (!absl::StartsWith(ToAbsl(name), ToAbsl(kCeHeaderPrefix))) {
          return absl::InvalidArgumentError(herald::StrCat(
              "headers column entry \"", absl::CHexEscape(name.substr(0, 80)),
              "\" starts with a reserved prefix not in lowercase: CloudEvents attributes are written as \"",
              kCeHeaderPrefix, "<attribute>\", all lowercase"));
        }
        std::optional<std::string>* slot = name == kCeSubjectHeader      ? &subject
                                           : name == kCeDataSchemaHeader ? &dataschema
                                                                         : nullptr;
        if (slot != nullptr) {
          if (slot->has_value()) {
            return absl::InvalidArgumentError(herald::StrCat("headers column entry \"", name, "\" appears twice"));
          }
          slot->emplace(std::move(value));
          continue;
        }
        extensions.emplace_back(name.substr(kCeHeaderPrefix.size()), std::move(value));
      }
    }
  }
  if (!extensions.empty()) {
    // The extension rule of the wire, checked on an envelope that names the
    // event in the message.
    Envelope probe;
    probe.id = envelope.id;
    probe.type = envelope.type;
    probe.extensions = std::move(extensions);
    if (absl::Status checked = CheckCloudEventsExtensions(probe); !checked.ok()) {
      return absl::InvalidArgumentError(herald::StrCat("headers column: ", checked.message()));
    }
    extensions = std::move(probe.extensions);
  }
  envelope.headers = std::move(headers);
  envelope.subject = subject.has_value() ? *std::move(subject) : std::string();
  envelope.dataschema = dataschema.has_value() ? *std::move(dataschema) : std::string();
  envelope.extensions = std::move(extensions);
  return absl::OkStatus();
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
