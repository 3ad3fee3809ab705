#include "kafka_flags.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#ifdef HERALD_CLI_WITH_KAFKA
#include "herald/kafka/properties.h"
#endif

namespace herald::tools {

absl::StatusOr<std::map<std::string, std::string>> KafkaProperties(const std::string& config_file,
                                                                   const std::vector<std::string>& x_flags) {
  std::map<std::string, std::string> out;
#ifndef HERALD_CLI_WITH_KAFKA
  if (!config_file.empty() || !x_flags.empty()) {
    return absl::InvalidArgumentError(
        "-X and --kafka-config: this herald was built without Kafka (HERALD_WITH_KAFKA=OFF)");
  }
#else
  if (!config_file.empty()) {
    absl::StatusOr<std::map<std::string, herald::kafka::PropertyFromFile>> file =
        herald::kafka::ReadPropertiesFile(config_file);
    if (!file.ok()) {
      // A file that cannot be read is a command-line mistake too.
      return absl::InvalidArgumentError(herald::StrCat("--kafka-config: ", file.status().message()));
    }
    for (auto& [name, property] : *file) out[name] = std::move(property.value);
  }
  std::map<std::string, std::string> seen;
  for (const std::string& flag : x_flags) {
    const size_t eq = flag.find('=');
    // Only the key is ever quoted: the value may be a secret.
    const std::string key(absl::StripAsciiWhitespace(flag.substr(0, eq)));
    if (eq == std::string::npos) {
      return absl::InvalidArgumentError("-X: want -X key=value (a librdkafka property); one -X has no '='");
    }
    if (key.empty()) return absl::InvalidArgumentError("-X: want -X key=value; one -X has no key before '='");
    std::string value(absl::StripAsciiWhitespace(flag.substr(eq + 1)));
    if (herald::kafka::IsSecretProperty(key)) {
      return absl::InvalidArgumentError(
          herald::StrCat("-X ", key,
                         ": a secret is never taken from the command line (every user of the machine can read it "
                         "there); put it in the --kafka-config file"));
    }
    if (!seen.emplace(key, value).second) {
      return absl::InvalidArgumentError(herald::StrCat("-X ", key, " is given twice"));
    }
    absl::Status checked = herald::kafka::CheckProperty(key, value);
    if (!checked.ok()) return absl::InvalidArgumentError(herald::StrCat("-X: ", checked.message()));
    out[key] = std::move(value);
  }
#endif
  return out;
}

void KafkaConfigFlags::Add(CLI::App* app) {
  app->add_option("-X", x_flags,
                  "KEY=VALUE: a librdkafka property (security.protocol=SASL_SSL, ...), as kcat takes it; "
                  "repeatable; overrides --kafka-config. Secrets (passwords, keys) go in the --kafka-config file, "
                  "never on the command line")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);
  app->add_option("--kafka-config", config_file,
                  "librdkafka properties file: key=value lines, # comments (as kcat -F takes it); -X overrides it")
      ->type_name("FILE");
}

}  // namespace herald::tools
