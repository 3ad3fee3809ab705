#include "config_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "toml++/toml.h"

namespace herald::tools {
namespace {

// One value the file gives a flag, and where.
struct Setting {
  std::string key;  // as the reader sees it: "relay.batch", "kafka-property.security.protocol"
  int64_t line = 0;
};

// Every long flag name (without "--") of every command of the program
// `command` belongs to.
void CollectFlags(const CLI::App& app, std::set<std::string>& out) {
  for (const CLI::Option* option : app.get_options()) {
    for (const std::string& name : option->get_lnames()) out.insert(name);
  }
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) CollectFlags(*sub, out);
}

const CLI::App& Root(const CLI::App& app) {
  const CLI::App* root = &app;
  while (root->get_parent() != nullptr) root = root->get_parent();
  return *root;
}

std::string TypeName(const toml::node& node) {
  std::ostringstream out;
  out << node.type();
  return out.str();
}

// The text of a scalar as a flag takes it, or nullopt for a table, array
// or date.
std::optional<std::string> ScalarText(const toml::node& node) {
  if (const auto* s = node.as_string()) return s->get();
  if (const auto* i = node.as_integer()) return std::to_string(i->get());
  if (const auto* b = node.as_boolean()) return std::string(b->get() ? "true" : "false");
  if (const auto* f = node.as_floating_point()) {
    std::ostringstream out;
    out << f->get();
    return out.str();
  }
  return std::nullopt;
}

// Flattens a KEY=VALUE table: dotted keys and nested tables join with '.'.
absl::Status FlattenEntries(const toml::table& table, const std::string& prefix, const std::string& shown,
                            const std::string& path, std::vector<std::pair<Setting, std::string>>& out) {
  for (const auto& [key, node] : table) {
    const std::string name = prefix.empty() ? std::string(key.str()) : StrCat(prefix, ".", key.str());
    const std::string display = StrCat(shown, ".", key.str());
    const int64_t line = key.source().begin.line;
    if (const toml::table* inner = node.as_table()) {
      HERALD_RETURN_IF_ERROR(FlattenEntries(*inner, name, display, path, out));
      continue;
    }
    std::optional<std::string> text = ScalarText(node);
    if (!text) {
      return absl::InvalidArgumentError(
          StrCat(path, ":", line, ": ", display, ": want a string, number or true/false, not ", TypeName(node)));
    }
    out.push_back({Setting{display, line}, *std::move(text)});
  }
  return absl::OkStatus();
}

class Applier {
 public:
  Applier(const std::string& path, CLI::App& command, const ConfigFileOptions& options)
      : path_(path), command_(command), options_(options) {
    CollectFlags(Root(command), all_flags_);
  }

  // One key of the file: `name` the flag, `node` its value.
  absl::Status Apply(const std::string& name, const std::string& shown, int64_t line, const toml::node& node) {
    if (name == "config" || name == "help" || name == "check-config") {
      return Error(line, shown, StrCat("--", name, " is not a key of the config file"));
    }
    CLI::Option* option = command_.get_option_no_throw("--" + name);
    if (option == nullptr) {
      if (all_flags_.count(name)) return absl::OkStatus();  // a flag of another herald command
      return Error(line, shown, StrCat("no herald command has a flag --", name));
    }
    // The type name, without the validators' descriptions CLI11 appends
    // after ':' ("INT:INT>=1").
    std::string type = option->get_type_name();
    type = type.substr(0, type.find(':'));
    if (type.find('=') != std::string::npos) return ApplyTable(name, shown, line, node, *option);
    if (option->count() > 0) return absl::OkStatus();  // the command line wins
    std::vector<std::string> values;
    if (option->get_expected_min() == 0) {
      const toml::value<bool>* b = node.as_boolean();
      if (b == nullptr) return Error(line, shown, StrCat("want true or false, not ", TypeName(node)));
      values.push_back(option->get_flag_value(name, b->get() ? "true" : "false"));
    } else if (option->get_items_expected_max() > 1) {
      if (const toml::array* array = node.as_array()) {
        for (const toml::node& item : *array) {
          if (!item.is_string()) {
            return Error(item.source().begin.line, shown,
                         StrCat("want an array of strings, not one holding a ", TypeName(item)));
          }
          values.push_back(*item.value<std::string>());
        }
      } else if (node.is_string()) {
        values.push_back(*node.value<std::string>());
      } else {
        return Error(line, shown, StrCat("want a string or an array of strings, not ", TypeName(node)));
      }
    } else if (absl::StartsWith(type, "INT") || absl::StartsWith(type, "UINT")) {
      if (!node.is_integer()) return Error(line, shown, StrCat("want a whole number, not ", TypeName(node)));
      values.push_back(std::to_string(*node.value<int64_t>()));
    } else if (absl::StartsWith(type, "FLOAT")) {
      if (!node.is_number()) return Error(line, shown, StrCat("want a number, not ", TypeName(node)));
      values.push_back(*ScalarText(node));
    } else {
      if (!node.is_string()) return Error(line, shown, StrCat("want a string, not ", TypeName(node)));
      values.push_back(*node.value<std::string>());
    }
    return Set(*option, values, line, shown);
  }

 private:
  absl::Status Error(int64_t line, const std::string& shown, const std::string& what) const {
    return absl::InvalidArgumentError(StrCat(path_, ":", line, ": ", shown, ": ", what));
  }

  // Adds `values` to `option` and runs its checks and callback, naming the
  // key in an error.
  absl::Status Set(CLI::Option& option, const std::vector<std::string>& values, int64_t line,
                   const std::string& shown) {
    try {
      option.add_result(values);
      option.run_callback();
    } catch (const CLI::Error& e) {
      std::string what = e.what();
      // CLI11 starts with the flag's name; the key says it already.
      for (const std::string& name : option.get_lnames()) {
        if (absl::StartsWith(what, "--" + name + ": ")) what = what.substr(name.size() + 4);
      }
      return Error(line, shown, what);
    }
    return absl::OkStatus();
  }

  // A table for a KEY=VALUE flag: each entry is one value, unless the
  // command line gives that KEY.
  absl::Status ApplyTable(const std::string& name, const std::string& shown, int64_t line, const toml::node& node,
                          CLI::Option& option) {
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      return Error(
          line, shown,
          StrCat("want a table of KEY = VALUE entries ([", shown, "] with one line per entry), not ", TypeName(node)));
    }
    std::vector<std::pair<Setting, std::string>> entries;
    HERALD_RETURN_IF_ERROR(FlattenEntries(*table, "", shown, path_, entries));
    std::set<std::string> on_command_line;
    for (const std::string& given : option.results()) on_command_line.insert(given.substr(0, given.find('=')));
    // Values the command line gave are checked first, so that an error in
    // one of them is not blamed on the file.
    if (option.count() > 0 && !option.get_callback_run()) option.run_callback();
    const auto check = options_.table_checks.find(name);
    for (const auto& [setting, value] : entries) {
      const std::string key = setting.key.substr(shown.size() + 1);
      if (on_command_line.count(key)) continue;
      if (check != options_.table_checks.end()) {
        absl::Status checked = check->second(key, value);
        if (!checked.ok()) return Error(setting.line, setting.key, std::string(checked.message()));
      }
      HERALD_RETURN_IF_ERROR(Set(option, {StrCat(key, "=", value)}, setting.line, setting.key));
    }
    return absl::OkStatus();
  }

  const std::string& path_;
  CLI::App& command_;
  const ConfigFileOptions& options_;
  std::set<std::string> all_flags_;
};

bool IsSection(std::string_view name) {
  for (const char* section : kConfigSections) {
    if (name == section) return true;
  }
  return false;
}

}  // namespace

absl::Status ApplyConfigFile(const std::string& path, CLI::App& command, const ConfigFileOptions& options) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(StrCat("--config ", path, ": cannot read it: ", std::strerror(errno)));
  std::stringstream text;
  text << in.rdbuf();
  toml::table file;
  try {
    file = toml::parse(text.str(), path);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(StrCat(path, ":", e.source().begin.line, ": not TOML: ", e.description()));
  }
  Applier applier(path, command, options);
  for (const auto& [key, node] : file) {
    const std::string name(key.str());
    const int64_t line = key.source().begin.line;
    if (IsSection(name)) {
      const toml::table* section = node.as_table();
      if (section == nullptr) {
        return absl::InvalidArgumentError(
            StrCat(path, ":", line, ": ", name, ": a section ([", name, "]), not a ", TypeName(node)));
      }
      for (const auto& [inner_key, inner] : *section) {
        const std::string inner_name(inner_key.str());
        HERALD_RETURN_IF_ERROR(
            applier.Apply(inner_name, StrCat(name, ".", inner_name), inner_key.source().begin.line, inner));
      }
      continue;
    }
    if (node.is_table() && command.get_option_no_throw("--" + name) == nullptr && !name.empty()) {
      // Not a section; a table for a KEY=VALUE flag of another command is
      // ignored like any other key of another command.
      std::set<std::string> flags;
      CollectFlags(Root(command), flags);
      if (flags.count(name) == 0) {
        std::string sections;
        for (const char* section : kConfigSections) sections += StrCat(sections.empty() ? "" : ", ", "[", section, "]");
        return absl::InvalidArgumentError(
            StrCat(path, ":", line, ": [", name, "]: not a section (", sections, ") nor a flag taking KEY=VALUE"));
      }
    }
    HERALD_RETURN_IF_ERROR(applier.Apply(name, name, line, node));
  }
  return absl::OkStatus();
}

CLI::Option* AddConfigOption(CLI::App* command, ConfigFileOptions options) {
  return command
      ->add_option_function<std::string>(
          "--config",
          [command, options = std::move(options)](const std::string& path) {
            absl::Status applied = ApplyConfigFile(path, *command, options);
            if (!applied.ok()) throw CLI::ConfigError(std::string(applied.message()));
          },
          "TOML file of this command's flags (keys named after the flags, e.g. batch = 500 for --batch; "
          "sections [store] [bus] [relay] [metrics] [logging]); flags on the command line override it. "
          "Secrets never go in it: see docs/cli.md")
      ->type_name("FILE");
}

}  // namespace herald::tools
