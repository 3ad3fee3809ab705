// `--config FILE`: one TOML file that gives a `herald` command the flags it
// does not get on its command line (docs/cli.md, "The config file").
//
//   # herald.toml
//   [store]
//   sqlite = "/var/lib/herald/outbox.db"
//   [relay]
//   batch = 500
//   shutdown-timeout = "20s"
//   [kafka-property]                # -X, one entry per librdkafka property
//   "security.protocol" = "SASL_SSL"
//   [kafka-secret-env]              # a secret comes from the environment
//   "sasl.password" = "HERALD_KAFKA_PASSWORD"
//
//   herald::tools::AddConfigOption(relay, {});   // any time before parse
//   app.parse(argc, argv);                       // applies the file
//
// The mapping is generic: a key is the long name of a flag without "--"
// (`batch` sets --batch), so a flag added to a command later is a key of the
// file with no code here. The sections [store], [bus], [relay], [metrics]
// and [logging] only group keys for the reader (any flag may be in any of
// them, or at the top). A table named after a flag that takes KEY=VALUE
// values (type name containing '=': -X's long name --kafka-property,
// --kafka-secret-env, --key-from) gives one KEY=VALUE value per entry; keys
// of such a table may be dotted or quoted ("security.protocol").
//
// Types follow the flag: a flag without value (--drain) takes true/false, a
// whole-number flag an integer, a repeatable flag an array of strings (or
// one string), every other flag a string ("5s" for a duration).
//
// A flag given on the command line wins over the file (for a KEY=VALUE
// table: per KEY). A key that is a flag of another herald command only (one
// file serves relay, tail and dlq) is ignored by this one. Everything else
// is refused, before the command does anything, with ONE line naming
// FILE:LINE and the key (a CLI::ParseError, so exit code 2): a file that
// cannot be read or is not TOML, an unknown section, a key that is no flag
// of any herald command, --config itself or --help, a value of the wrong
// type, a value the flag's own check refuses, and an entry `table_checks`
// refuses (the Kafka properties: a secret is never taken from the file).
#ifndef HERALD_TOOLS_HERALD_CONFIG_FILE_H_
#define HERALD_TOOLS_HERALD_CONFIG_FILE_H_

#include <functional>
#include <map>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace herald::tools {

// The sections that group keys; a key's section does not change its meaning.
inline constexpr const char* kConfigSections[] = {"store", "bus", "relay", "metrics", "logging"};

struct ConfigFileOptions {
  // Checks of the entries of a KEY=VALUE table, by flag name without "--"
  // (e.g. "kafka-property"): called with each entry's KEY and VALUE before it
  // is applied; an error is reported with FILE:LINE and the key. Its message
  // must not hold the value when the value may be a secret.
  // Default: none.
  std::map<std::string, std::function<absl::Status(const std::string& key, const std::string& value)>> table_checks;
};

// Adds `--config FILE` to `command`: while `command` is parsed, the file's
// keys set the flags of `command` that its command line did not give. The
// whole file is read and checked when the option's callback runs (before
// CLI11 checks required flags, so the file may give them). `command` must
// outlive the parse.
CLI::Option* AddConfigOption(CLI::App* command, ConfigFileOptions options);

// What AddConfigOption's callback does: applies the file at `path` to
// `command` (parsed or being parsed). kInvalidArgument, one line naming
// FILE:LINE and the key, for the errors above; `command` may have been
// changed in part then.
absl::Status ApplyConfigFile(const std::string& path, CLI::App& command, const ConfigFileOptions& options);

}  // namespace herald::tools

#endif  // HERALD_TOOLS_HERALD_CONFIG_FILE_H_
