#include "herald/core/envelope.h"

#include "absl/strings/str_cat.h"
#include "herald/core/json.h"
#include "herald/core/strings.h"

namespace herald {

std::optional<std::string_view> FindHeader(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (k == name) return std::string_view(v);
  }
  return std::nullopt;
}

void SetHeader(Headers& headers, std::string_view name, std::string_view value) {
  bool placed = false;
  for (auto it = headers.begin(); it != headers.end();) {
    if (it->first == name) {
      if (!placed) {
        it->second = std::string(value);
        placed = true;
        ++it;
      } else {
        it = headers.erase(it);
      }
    } else {
      ++it;
    }
  }
  if (!placed) headers.emplace_back(std::string(name), std::string(value));
}

std::string DebugString(const Envelope& e) {
  std::string out = herald::StrCat("Envelope{type=", e.type, " id=", e.id, " topic=", e.topic, " key=", e.key,
                                   " time=", json::internal::FormatTime(e.time));
  if (!e.subject.empty()) herald::StrAppend(&out, " subject=", e.subject);
  if (!e.dataschema.empty()) herald::StrAppend(&out, " dataschema=", e.dataschema);
  for (const auto& [name, value] : e.extensions) herald::StrAppend(&out, " ", name, "=", value);
  herald::StrAppend(&out, " headers=", e.headers.size(), " payload=", e.payload.size(), "B}");
  return out;
}

std::ostream& operator<<(std::ostream& os, const Envelope& envelope) { return os << DebugString(envelope); }

}  // namespace herald
