#include "outbox_migrate.h"

#include <cstdlib>
#include <iostream>

#include "absl/time/time.h"
#include "flags.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#ifdef HERALD_CLI_WITH_POSTGRES
#include "herald/postgres/outbox_migration.h"
#endif

namespace herald::tools {

OutboxMigrateCommand::OutboxMigrateCommand(CLI::App& outbox) {
  command_ = outbox.add_subcommand(
      "migrate",
      "PostgreSQL: create herald's tables, or adopt an existing outbox table (e.g. a Go service's) without "
      "rewriting it; --dry-run prints the DDL");
  command_->add_flag("--postgres", postgres_, "the PostgreSQL outbox (DSN from --postgres-env); the default");
  command_->add_option("--postgres-env", postgres_env_, "environment variable holding the PostgreSQL DSN")
      ->capture_default_str();
  command_->add_option("--schema", schema_, "PostgreSQL schema of the outbox")->capture_default_str();
  command_->add_option("--table", table_, "outbox table")->capture_default_str();
  command_->add_flag("--dry-run", dry_run_, "print the DDL and the locks of each step; change nothing");
  command_->add_option("--batch", batch_, "rows per backfill transaction")
      ->capture_default_str()
      ->check(AtLeast(1));
  command_
      ->add_option("--lock-timeout", lock_timeout_,
                   "how long a step waits for a brief exclusive lock before giving up (rerun to resume)")
      ->capture_default_str()
      ->check(DurationValidator(DurationFloor::kPositive));
}

absl::Status OutboxMigrateCommand::Run() const {
#ifdef HERALD_CLI_WITH_POSTGRES
  const char* dsn = std::getenv(postgres_env_.c_str());
  if (dsn == nullptr) {
    return absl::InvalidArgumentError(StrCat("environment variable ", postgres_env_,
                                             " is not set: put the PostgreSQL DSN there, or name another variable "
                                             "with --postgres-env"));
  }
  herald::postgres::PostgresOptions options;
  options.conninfo = dsn;
  options.schema = schema_;
  options.table = table_;
  herald::postgres::OutboxMigrationOptions migration;
  migration.batch_size = batch_;
  if (!absl::ParseDuration(lock_timeout_, &migration.lock_timeout)) {
    return absl::InvalidArgumentError(StrCat("--lock-timeout: not a duration: ", lock_timeout_, " (e.g. 5s)"));
  }
  using Plan = herald::postgres::OutboxMigrationPlan;
  if (dry_run_) {
    HERALD_ASSIGN_OR_RETURN(Plan plan, herald::postgres::PlanOutboxMigration(options));
    std::cout << plan.Script(migration.lock_timeout);
    std::cerr << (plan.mode == Plan::Mode::kUpToDate ? "migrate: nothing to do" : "migrate: dry run, nothing changed")
              << std::endl;
    return absl::OkStatus();
  }
  migration.on_progress = [](const herald::postgres::OutboxMigrationProgress& p) {
    if (p.current == nullptr) return;
    if (p.current->kind == herald::postgres::OutboxMigrationStep::Kind::kBackfill && p.batch > 0 && !p.finished) {
      std::cerr << "migrate: step " << p.step << "/" << p.steps << ": backfilled batch " << p.batch << "/" << p.batches
                << " (" << p.rows << " rows)" << std::endl;
    } else if (p.finished) {
      std::cerr << "migrate: step " << p.step << "/" << p.steps << " done"
                << (p.batches > 0 ? StrCat(": ", p.rows, " rows backfilled in ", p.batches, " batches") : "")
                << std::endl;
    } else {
      std::cerr << "migrate: step " << p.step << "/" << p.steps << ": " << p.current->description << std::endl;
    }
  };
  HERALD_ASSIGN_OR_RETURN(Plan plan, herald::postgres::MigrateOutbox(options, migration));
  if (plan.mode == Plan::Mode::kUpToDate) {
    std::cout << "outbox " << plan.table << " already meets herald's table contract: nothing to do" << std::endl;
  } else {
    std::cout << "outbox " << plan.table << (plan.mode == Plan::Mode::kCreate ? " created" : " adopted") << " ("
              << plan.steps.size() << " steps)" << std::endl;
  }
  return absl::OkStatus();
#else
  return absl::UnimplementedError("this herald was built without PostgreSQL (HERALD_WITH_POSTGRES=OFF)");
#endif
}

}  // namespace herald::tools
