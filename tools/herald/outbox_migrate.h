// `herald outbox migrate`: create herald's PostgreSQL tables, or adopt an
// existing outbox table, as an explicit step (--dry-run prints the DDL).
#ifndef HERALD_TOOLS_HERALD_OUTBOX_MIGRATE_H_
#define HERALD_TOOLS_HERALD_OUTBOX_MIGRATE_H_

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace herald::tools {

class OutboxMigrateCommand {
 public:
  // Registers the subcommand under `outbox`; `outbox` must outlive this.
  explicit OutboxMigrateCommand(CLI::App& outbox);

  bool parsed() const { return command_->parsed(); }
  // Plans, prints the plan (--dry-run: and stops), runs it with progress on
  // stderr.
  absl::Status Run() const;

 private:
  CLI::App* command_;
  bool postgres_ = false;
  std::string postgres_env_ = "HERALD_PG_DSN";
  std::string schema_ = "herald";
  std::string table_ = "outbox";
  bool dry_run_ = false;
  int batch_ = 10000;
  std::string lock_timeout_ = "5s";
};

}  // namespace herald::tools

#endif  // HERALD_TOOLS_HERALD_OUTBOX_MIGRATE_H_
