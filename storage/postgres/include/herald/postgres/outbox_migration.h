// herald/postgres/outbox_migration.h: creating herald's tables, or adopting
// an existing outbox table (say the seed's Go `outbox.outbox`), as an
// explicit, reviewable step: what `herald outbox migrate` runs.
//
//   HERALD_ASSIGN_OR_RETURN(auto plan, herald::postgres::PlanOutboxMigration(options));
//   std::cout << plan.Script();                      // what --dry-run prints
//   HERALD_ASSIGN_OR_RETURN(plan, herald::postgres::MigrateOutbox(options, {.batch_size = 10000}));
//
// Adoption never rewrites the table: columns are added nullable or with a
// constant default, existing rows are backfilled in bounded batches (one
// transaction each; occurred_at and available_at from the row's own
// created_at), indexes are built CONCURRENTLY, and NOT NULL is set through a
// validated CHECK so that no step scans under an exclusive lock. Each step
// and its locks are in docs/outbox.md ("Adopting an existing table"). Every
// step is idempotent: an interrupted migration resumes where it stopped, and
// a migrated table gives an empty plan.
//
// Thread-safety: the functions are thread-safe; two migrations of one table
// exclude each other (kUnavailable for the second).
#ifndef HERALD_POSTGRES_OUTBOX_MIGRATION_H_
#define HERALD_POSTGRES_OUTBOX_MIGRATION_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "herald/postgres/postgres_outbox_store.h"

namespace herald::postgres {

// One step of a migration.
struct OutboxMigrationStep {
  enum class Kind {
    kTransaction,   // `sql` runs in one transaction
    kConcurrently,  // `sql` runs outside a transaction (CREATE/DROP INDEX CONCURRENTLY)
    kBackfill,      // `sql` runs once per batch of blocks ($1, $2: first and end block), then once over the rest
  };
  Kind kind = Kind::kTransaction;
  std::string description;
  // The locks the step takes on the outbox table, and for how long.
  std::string locks;
  std::string sql;
  // kBackfill: run once after the batches, over the whole table, for rows
  // that moved behind the batches meanwhile (e.g. updated by another writer).
  std::string final_sql;
};

struct OutboxMigrationPlan {
  enum class Mode {
    kUpToDate,  // the table meets the contract: nothing to do
    kCreate,    // no outbox table: create herald's tables
    kAdopt,     // an existing table: add what it lacks
  };
  Mode mode = Mode::kUpToDate;
  // "schema"."table"
  std::string table;
  std::vector<OutboxMigrationStep> steps;

  // The plan as an SQL script with comments (each step's description and
  // locks), as `herald outbox migrate --dry-run` prints it, with the
  // lock_timeout MigrateOutbox would set.
  std::string Script(absl::Duration lock_timeout = absl::Seconds(5)) const;
};

// Where a running migration is, for progress output.
struct OutboxMigrationProgress {
  int step = 0;  // 1-based
  int steps = 0;
  const OutboxMigrationStep* current = nullptr;
  // For a backfill: batches done of the batches planned (the final sweep
  // over rows moved meanwhile counts as the last batch), and rows updated.
  int64_t batch = 0;
  int64_t batches = 0;
  int64_t rows = 0;
  bool finished = false;  // the step is done
};

struct OutboxMigrationOptions {
  // Rows updated per backfill transaction (approximate: a batch is a range
  // of table blocks sized from the table's rows per block). Default: 10000.
  int batch_size = 10000;
  // How long a step that needs an exclusive lock (catalog changes only)
  // waits for it before failing with kUnavailable, so that it never queues
  // the table's writers behind a long transaction; rerun to resume.
  // Default: 5 s.
  absl::Duration lock_timeout = absl::Seconds(5);
  // Called before and after each step and after each backfill batch.
  // Default: none.
  std::function<void(const OutboxMigrationProgress&)> on_progress;
};

// Reads the catalogs (nothing is changed) and returns what MigrateOutbox
// would run. kFailedPrecondition when an existing table cannot be adopted
// (a column of an incompatible type, a NOT NULL column herald's INSERT
// cannot fill), naming the column; kInvalidArgument for bad options;
// kUnavailable when the server cannot be reached.
absl::StatusOr<OutboxMigrationPlan> PlanOutboxMigration(PostgresOptions options);

// Plans again under a session advisory lock for this table and runs the
// plan, reporting progress. Returns the plan it ran (mode kUpToDate: nothing
// was needed). Statements run without statement_timeout. On error the steps
// already done stay done; run it again to resume.
absl::StatusOr<OutboxMigrationPlan> MigrateOutbox(PostgresOptions options,
                                                  const OutboxMigrationOptions& migration = {});

}  // namespace herald::postgres

#endif  // HERALD_POSTGRES_OUTBOX_MIGRATION_H_
