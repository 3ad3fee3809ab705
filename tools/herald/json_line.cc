#include "json_line.h"

#include "absl/strings/escaping.h"
#include "herald/core/strings.h"

namespace herald::tools {

bool IsUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > text.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

JsonLine::JsonLine() : writer_(buffer_) { writer_.StartObject(); }

void JsonLine::Key(std::string_view name) { writer_.Key(name.data(), static_cast<rapidjson::SizeType>(name.size())); }

JsonLine& JsonLine::String(std::string_view name, std::string_view value) {
  Key(name);
  const std::string text = IsUtf8(value) ? std::string(value) : absl::CHexEscape(ToAbsl(value));
  writer_.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  return *this;
}

JsonLine& JsonLine::Int(std::string_view name, int64_t value) {
  Key(name);
  writer_.Int64(value);
  return *this;
}

JsonLine& JsonLine::Double(std::string_view name, double value) {
  Key(name);
  writer_.Double(value);
  return *this;
}

JsonLine& JsonLine::Bool(std::string_view name, bool value) {
  Key(name);
  writer_.Bool(value);
  return *this;
}

std::string JsonLine::Finish() {
  writer_.EndObject();
  return std::string(buffer_.GetString(), buffer_.GetSize());
}

}  // namespace herald::tools
