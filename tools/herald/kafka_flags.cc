#include "kafka_flags.h"

#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#ifdef HERALD_CLI_WITH_KAFKA
#include "herald/kafka/properties.h"
#endif

namespace herald::tools {

namespace {

bool IsEnvName(const std::string& name) {
  if (name.empty() || absl::ascii_isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

}  // namespace

absl::Status CheckKafkaSecretEnvFromConfig(const std::string& key, const std::string& var) {
  if (!IsEnvName(var)) {
    return absl::InvalidArgumentError(
        herald::StrCat("\"", var, "\" is not an environment variable name (letters, digits and _)"));
  }
#ifdef HERALD_CLI_WITH_KAFKA
  // A placeholder value: only the name is checked here.
  absl::Status known = herald::kafka::CheckProperty(key, "");
  if (!known.ok() && absl::StrContains(known.message(), "No such configuration property")) return known;
#endif
  return absl::OkStatus();
}

absl::Status CheckKafkaPropertyFromConfig(const std::string& key, const std::string& value) {
#ifdef HERALD_CLI_WITH_KAFKA
  if (herald::kafka::IsSecretProperty(key)) {
    return absl::InvalidArgumentError(
        "a secret is never taken from the config file: name the environment variable that holds it in "
        "[kafka-secret-env] (or put it in the --kafka-config file, mode 0600)");
  }
  return herald::kafka::CheckProperty(key, value);
#else
  (void)key;
  (void)value;
  return absl::InvalidArgumentError("this herald was built without Kafka (HERALD_WITH_KAFKA=OFF)");
#endif
}

absl::StatusOr<std::map<std::string, std::string>> KafkaProperties(const std::string& config_file,
                                                                   const std::vector<std::string>& x_flags,
                                                                   const std::vector<std::string>& secret_env) {
  std::map<std::string, std::string> out;
#ifndef HERALD_CLI_WITH_KAFKA
  if (!config_file.empty() || !x_flags.empty() || !secret_env.empty()) {
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
  for (const std::string& flag : secret_env) {
    const size_t eq = flag.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          "--kafka-secret-env: want PROPERTY=VARIABLE (e.g. sasl.password=HERALD_KAFKA_PASSWORD)");
    }
    const std::string key(absl::StripAsciiWhitespace(flag.substr(0, eq)));
    const std::string var(absl::StripAsciiWhitespace(flag.substr(eq + 1)));
    const char* value = IsEnvName(var) ? std::getenv(var.c_str()) : nullptr;
    if (value == nullptr) {
      return absl::InvalidArgumentError(
          herald::StrCat("--kafka-secret-env ", key, "=", var, ": environment variable ", var, " is not set"));
    }
    absl::Status checked = herald::kafka::CheckProperty(key, value);
    if (!checked.ok()) {
      return absl::InvalidArgumentError(herald::StrCat("--kafka-secret-env ", key, "=", var, ": ", checked.message()));
    }
    out[key] = value;
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
                         "there); name its environment variable with --kafka-secret-env, or put it in the --kafka-config file"));
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
  app->add_option("-X,--kafka-property", x_flags,
                  "KEY=VALUE: a librdkafka property (security.protocol=SASL_SSL, ...), as kcat takes it; "
                  "repeatable; overrides --kafka-config. Secrets (passwords, keys) never go on the command line: "
                  "use --kafka-secret-env or the --kafka-config file")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);
  app->add_option("--kafka-config", config_file,
                  "librdkafka properties file: key=value lines, # comments (as kcat -F takes it); -X overrides it")
      ->type_name("FILE");
  app->add_option("--kafka-secret-env", secret_env,
                  "PROPERTY=VARIABLE: set a secret librdkafka property (sasl.password, ...) from an environment "
                  "variable; repeatable; -X overrides it")
      ->type_name("PROPERTY=VARIABLE")
      ->allow_extra_args(false);
}

}  // namespace herald::tools
