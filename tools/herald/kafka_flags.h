// The librdkafka properties of a `herald` command that talks to Kafka:
// `--kafka-config FILE` (a librdkafka properties file, as kcat's -F takes),
// then `-X key=value` flags, repeatable, as kcat takes them, which override
// the file. Every property is checked against librdkafka before the command
// does anything; a bad one is a one-line kInvalidArgument error (exit code
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
absl::StatusOr<std::map<std::string, std::string>> KafkaProperties(const std::string& config_file,
                                                                   const std::vector<std::string>& x_flags);

// Flags -X and --kafka-config of a command; Properties() reads them.
struct KafkaConfigFlags {
  std::vector<std::string> x_flags;
  std::string config_file;

  void Add(CLI::App* app);
  bool empty() const { return x_flags.empty() && config_file.empty(); }
  absl::StatusOr<std::map<std::string, std::string>> Properties() const {
    return KafkaProperties(config_file, x_flags);
  }
};

}  // namespace herald::tools

#endif  // HERALD_TOOLS_HERALD_KAFKA_FLAGS_H_
