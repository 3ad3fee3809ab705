#include "herald/kafka/properties.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "rdkafka_handles.h"

namespace herald::kafka {
namespace {

constexpr std::string_view kRedacted = "[redacted]";

}  // namespace

bool IsSecretProperty(std::string_view name) {
  const std::string lower = absl::AsciiStrToLower(ToAbsl(name));
  return absl::StrContains(lower, "password") || absl::StrContains(lower, "passphrase") ||
         absl::StrContains(lower, "secret") || absl::EndsWith(lower, "key.pem") || lower == "ssl_key" ||
         absl::StartsWith(lower, "ssl_key.") || lower == "sasl.oauthbearer.config";
}

std::string RedactSecretValues(const std::map<std::string, std::string>& properties, std::string text) {
  for (const auto& [name, value] : properties) {
    if (IsSecretProperty(name) && !value.empty()) {
      text = absl::StrReplaceAll(text, {{value, ToAbsl(kRedacted)}});
    }
  }
  return text;
}

absl::Status CheckProperty(std::string_view name, std::string_view value) {
  ConfPtr conf(rd_kafka_conf_new());
  char errstr[512] = {0};
  const std::string n(name), v(value);
  if (rd_kafka_conf_set(conf.get(), n.c_str(), v.c_str(), errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK) {
    return absl::OkStatus();
  }
  std::string reason = errstr;
  if (IsSecretProperty(name) && !value.empty()) {
    reason = absl::StrReplaceAll(reason, {{ToAbsl(value), ToAbsl(kRedacted)}});
  }
  return absl::InvalidArgumentError(herald::StrCat("librdkafka property \"", name, "\": ", reason));
}

absl::StatusOr<std::map<std::string, PropertyFromFile>> ParseProperties(std::string_view text,
                                                                        std::string_view origin) {
  std::map<std::string, PropertyFromFile> out;
  int number = 0;
  for (absl::string_view raw : absl::StrSplit(ToAbsl(text), '\n')) {
    ++number;
    const absl::string_view line = absl::StripAsciiWhitespace(raw);  // also a CRLF's '\r'
    if (line.empty() || line.front() == '#') continue;
    const size_t eq = line.find('=');
    // Only the key is ever quoted: the value may be a secret.
    const absl::string_view key = absl::StripAsciiWhitespace(line.substr(0, eq));
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          herald::StrCat(origin, ":", number, ": want key=value (a librdkafka property), this line has no '='"));
    }
    if (key.empty()) {
      return absl::InvalidArgumentError(herald::StrCat(origin, ":", number, ": the line has no key before '='"));
    }
    if (line.back() == '\\') {
      return absl::InvalidArgumentError(
          herald::StrCat(origin, ":", number, ": \"", key,
                         "\": the line ends in a backslash; line continuations are not supported, write the "
                         "value on one line"));
    }
    PropertyFromFile property{std::string(absl::StripAsciiWhitespace(line.substr(eq + 1))), number};
    auto [it, added] = out.emplace(std::string(key), std::move(property));
    if (!added) {
      return absl::InvalidArgumentError(
          herald::StrCat(origin, ":", number, ": \"", key, "\" is set twice (first on line ", it->second.line, ")"));
    }
  }
  return out;
}

absl::StatusOr<std::map<std::string, PropertyFromFile>> ReadPropertiesFile(const std::string& path) {
  errno = 0;
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    const int error = errno;
    std::string why = herald::StrCat("cannot read the librdkafka properties file ", path, ": ", std::strerror(error));
    return error == EACCES ? absl::PermissionDeniedError(why) : absl::NotFoundError(why);
  }
  std::stringstream text;
  text << file.rdbuf();
  if (file.bad()) return absl::DataLossError(herald::StrCat("error reading ", path));
  HERALD_ASSIGN_OR_RETURN(auto properties, ParseProperties(text.str(), path));
  for (const auto& [name, property] : properties) {
    absl::Status checked = CheckProperty(name, property.value);
    if (!checked.ok()) {
      return absl::InvalidArgumentError(herald::StrCat(path, ":", property.line, ": ", checked.message()));
    }
  }
  return properties;
}

}  // namespace herald::kafka
