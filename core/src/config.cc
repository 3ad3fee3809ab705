#include "herald/core/config.h"

#include <cstdlib>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"

namespace herald {
namespace {

constexpr const char* kKeys[] = {"HERALD_SERVICE_NAME", "HERALD_WRITE_TOPIC", "HERALD_READ_TOPICS",
                                 "HERALD_CONSUMER_GROUP"};

std::string Trim(std::string_view s) { return std::string(ToStd(absl::StripAsciiWhitespace(ToAbsl(s)))); }

}  // namespace

absl::Status ValidateTopicName(std::string_view topic) {
  if (topic.empty() || topic.size() > 249) {
    return absl::InvalidArgumentError(herald::StrCat("topic \"", topic, "\" must have 1 to 249 characters"));
  }
  if (topic == "." || topic == "..") return absl::InvalidArgumentError("topic may not be \".\" or \"..\"");
  for (char c : topic) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          herald::StrCat("topic \"", topic, "\" may contain only letters, digits, '.', '_' and '-'"));
    }
  }
  return absl::OkStatus();
}

absl::Status ServiceConfig::Validate() const {
  if (service_name.empty()) return absl::InvalidArgumentError("HERALD_SERVICE_NAME is not set");
  if (write_topic.empty()) return absl::InvalidArgumentError("HERALD_WRITE_TOPIC is not set");
  if (absl::Status s = ValidateTopicName(write_topic); !s.ok()) {
    return absl::InvalidArgumentError(herald::StrCat("HERALD_WRITE_TOPIC: ", ToStd(s.message())));
  }
  for (const std::string& t : read_topics) {
    if (absl::Status s = ValidateTopicName(t); !s.ok()) {
      return absl::InvalidArgumentError(herald::StrCat("HERALD_READ_TOPICS: ", ToStd(s.message())));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ServiceConfig> ServiceConfig::FromMap(const std::map<std::string, std::string>& values) {
  auto get = [&](const char* key) -> std::string {
    auto it = values.find(key);
    return it == values.end() ? std::string() : Trim(it->second);
  };
  ServiceConfig config;
  config.service_name = get("HERALD_SERVICE_NAME");
  config.write_topic = get("HERALD_WRITE_TOPIC");
  for (absl::string_view part : absl::StrSplit(get("HERALD_READ_TOPICS"), ',', absl::SkipWhitespace())) {
    config.read_topics.push_back(Trim(ToStd(part)));
  }
  config.consumer_group = get("HERALD_CONSUMER_GROUP");
  if (config.consumer_group.empty()) config.consumer_group = config.service_name;
  HERALD_RETURN_IF_ERROR(config.Validate());
  return config;
}

absl::StatusOr<ServiceConfig> ServiceConfig::FromEnv() {
  std::map<std::string, std::string> values;
  for (const char* key : kKeys) {
    if (const char* v = std::getenv(key); v != nullptr) values[key] = v;
  }
  return FromMap(values);
}

absl::StatusOr<ServiceConfig> ServiceConfig::FromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(herald::StrCat("cannot read service config file ", path));
  std::map<std::string, std::string> values;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::string trimmed = Trim(line);
    if (trimmed.empty() || trimmed[0] == '#') continue;
    size_t eq = trimmed.find('=');
    if (eq == std::string::npos) {
      return absl::InvalidArgumentError(herald::StrCat(path, ":", number, ": expected KEY=value"));
    }
    values[Trim(std::string_view(trimmed).substr(0, eq))] = Trim(std::string_view(trimmed).substr(eq + 1));
  }
  return FromMap(values);
}

}  // namespace herald
