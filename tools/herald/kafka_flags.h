// The librdkafka properties of a `herald` command that talks to Kafka:
// `--kafka-config FILE` (a librdkafka properties file, as kcat's -F takes),
// then `--kafka-secret-env PROPERTY=VAR` (a secret property read from an
// environment variable), then `-X key=value` flags (long name
// --kafka-property), repeatable, as kcat takes them, which override both.
// Every property is checked against librdkafka before the command does
// anything; a bad one is a one-line kInvalidArgument error (exit code
// kExitUsage) naming the flag or FILE:LINE and the key, never a secret value.
//
//   absl::StatusOr<std::map<std::string, std::string>> properties =
//       KafkaProperties("/etc/herald/kafka.properties", {"-X", ...values of -X...});
//   options.properties = *properties;
#ifndef HERALD_TOOLS_HERALD_KAFKA_FLAGS_H_
#define HERALD_TOOLS_HERALD_KAFKA_FLAGS_H_

#include <map>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"

namespace herald::tools {

// The properties of `config_file` (none when empty) overridden by
// `x_flags` (each "key=value"). kInvalidArgument, naming the key (and the
// file's path and line for the file), for: a file that cannot be read or
// has a bad line (herald::kafka::ReadPropertiesFile); a flag without '=' or
// without a key, or a key given twice with -X; an unknown property or a
// value librdkafka refuses; a secret property (herald::kafka::IsSecretProperty)
// given with -X: the command line is visible to every user of the machine
// (ps, /proc), so secrets come from the file only.
//
// `secret_env` (each "property=VAR", from --kafka-secret-env) sets each
// property to the value of environment variable VAR: kInvalidArgument
// naming the flag, property and variable (never the value) for a flag
// without '=', a VAR that is not set, an unknown property or a value
// librdkafka refuses.
absl::StatusOr<std::map<std::string, std::string>> KafkaProperties(const std::string& config_file,
                                                                   const std::vector<std::string>& x_flags,
                                                                   const std::vector<std::string>& secret_env = {});

// The check of a [kafka-property] entry of a --config file
// (ConfigFileOptions::table_checks): kInvalidArgument for a secret property
// (a config file is read by many; secrets come from --kafka-secret-env or
// the --kafka-config file), an unknown property or a value librdkafka
// refuses. The value of a secret property is never shown.
absl::Status CheckKafkaPropertyFromConfig(const std::string& key, const std::string& value);

// The check of a [kafka-secret-env] entry: `key` is a known librdkafka
// property and `var` a possible environment variable name (letters, digits,
// '_', not starting with a digit). Whether it is set is checked when the
// properties are read (KafkaProperties).
absl::Status CheckKafkaSecretEnvFromConfig(const std::string& key, const std::string& var);

// Flags -X, --kafka-config and --kafka-secret-env of a command;
// Properties() reads them.
struct KafkaConfigFlags {
  std::vector<std::string> x_flags;
  std::string config_file;
  std::vector<std::string> secret_env;

  void Add(CLI::App* app);
  bool empty() const { return x_flags.empty() && config_file.empty() && secret_env.empty(); }
  absl::StatusOr<std::map<std::string, std::string>> Properties() const {
    return KafkaProperties(config_file, x_flags, secret_env);
  }
};

}  // namespace herald::tools

#endif  // HERALD_TOOLS_HERALD_KAFKA_FLAGS_H_
