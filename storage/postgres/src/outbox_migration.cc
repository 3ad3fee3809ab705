#include "herald/postgres/outbox_migration.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_join.h"
#include "connection.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "schema.h"

namespace herald::postgres {

namespace {

using Step = OutboxMigrationStep;

constexpr char kBriefExclusive[] =
    "ACCESS EXCLUSIVE for milliseconds (catalog only: no rewrite, no scan); waits at most lock_timeout for it";
constexpr char kConcurrentLocks[] =
    "SHARE UPDATE EXCLUSIVE while it builds: reads and writes go on (it waits for older transactions)";

// The partial indexes of the table contract, by name suffix.
std::string PartialIndexSql(const PostgresOptions& options, const OutboxSql& sql, std::string_view name) {
  const std::string& t = sql.table;
  const std::string prefix = StrCat("CREATE INDEX CONCURRENTLY IF NOT EXISTS ", QuoteIdentifier(name), " ON ", t);
  if (name.ends_with("_key_waiting_idx")) {
    return StrCat(prefix,
                  " (event_key, seq) WHERE published_at IS NULL AND (parked_at IS NOT NULL OR available_at > "
                  "created_at);\n");
  }
  if (name.ends_with("_key_pending_idx")) return StrCat(prefix, " (event_key, seq) WHERE published_at IS NULL;\n");
  if (name.ends_with("_published_idx")) return PublishedIndexSql(options, sql, /*concurrently=*/true);
  return StrCat(prefix, " (seq) WHERE published_at IS NULL;\n");
}

std::string Literal(const std::string& quoted_name) { return StrCat("'", quoted_name, "'"); }

// What a NOT NULL column of an existing row is filled with.
std::string FillExpression(std::string_view column, const std::string& seq_sequence, int64_t tuples_per_block) {
  if (column == "seq") {
    // The row's place in the table (block * tuples per block + line): the
    // table's physical order, which is insertion order for an append-only
    // outbox, and below the sequence's MINVALUE (set from the table's size
    // when the column was added), so every row written since comes after.
    // A row found elsewhere (moved by an update since) takes the next value.
    const std::string place =
        StrCat("((ctid::text::point)[0]::int8 * ", tuples_per_block, " + (ctid::text::point)[1]::int8)");
    return StrCat("CASE WHEN ", place, " < (SELECT seqmin FROM pg_sequence WHERE seqrelid = ", Literal(seq_sequence),
                  "::regclass) THEN ", place, " ELSE nextval(", Literal(seq_sequence), "::regclass) END");
  }
  if (column == "event_id") return "gen_random_uuid()::text";
  if (column == "occurred_at" || column == "available_at") return "created_at, now()";
  if (column == "created_at") return "now()";
  if (column == "content_type") return "'application/json'";
  if (column == "schema_version") return "1";
  return "0";  // attempts
}

std::string DefaultExpression(std::string_view column, const std::string& seq_sequence) {
  if (column == "seq") return StrCat("nextval(", Literal(seq_sequence), "::regclass)");
  if (column == "event_id") return "gen_random_uuid()::text";
  if (column == "content_type") return "'application/json'";
  if (column == "schema_version") return "1";
  if (column == "attempts") return "0";
  return "now()";
}

std::string ColumnDefinition(std::string_view column) {
  if (column == "seq") return "BIGINT";
  if (column == "headers") return "JSONB";
  if (column == "content_type") return "TEXT NOT NULL DEFAULT 'application/json'";
  if (column == "schema_version") return "INT NOT NULL DEFAULT 1";
  if (column == "attempts") return "INT NOT NULL DEFAULT 0";
  if (column.ends_with("_at")) return "TIMESTAMPTZ";
  return "TEXT";
}

std::string CheckName(std::string_view column) { return StrCat("herald_", column, "_not_null"); }

absl::StatusOr<OutboxMigrationPlan> Plan(Connection& c, const PostgresOptions& options, const OutboxSql& sql) {
  OutboxMigrationPlan plan;
  plan.table = sql.table;
  HERALD_ASSIGN_OR_RETURN(TableInspection in, InspectTables(c, sql, options));
  if (!in.exists) {
    plan.mode = OutboxMigrationPlan::Mode::kCreate;
    plan.steps.push_back({Step::Kind::kTransaction,
                          "create herald's schema, outbox and inbox tables, indexes and notify trigger",
                          "ACCESS EXCLUSIVE on the new tables only", CreateSchemaSql(options, sql), ""});
    return plan;
  }
  if (!in.incompatible.empty()) {
    return absl::FailedPreconditionError(
        StrCat("cannot adopt ", sql.table, ": ", absl::StrJoin(in.incompatible, "; ")));
  }
  if (in.adopted() && in.trigger && in.inbox_exists && in.missing_optional_indexes.empty()) return plan;
  if (PQserverVersion(c.get()) < 120000) {
    return absl::FailedPreconditionError(
        "adopting a table without rewriting it needs PostgreSQL 12 or later (constant defaults without a rewrite, "
        "SET NOT NULL proven by a validated CHECK)");
  }
  plan.mode = OutboxMigrationPlan::Mode::kAdopt;
  HERALD_ASSIGN_OR_RETURN(ResultPtr block,
                          ExecParams(c.get(), "SELECT current_setting('block_size')::int8", {}, "read block_size"));
  // MaxHeapTuplesPerPage: (block size - page header) / (tuple header + line pointer).
  const int64_t tuples_per_block = (std::atoll(PQgetvalue(block.get(), 0, 0)) - 24) / 28;
  const std::string seq_sequence = SeqSequenceName(options, sql);
  const std::string& t = sql.table;

  // 1. Columns and defaults for new rows.
  if (!in.missing_columns.empty() || !in.missing_defaults.empty()) {
    std::string text;
    if (!in.missing_columns.empty()) {
      std::vector<std::string> adds;
      for (const std::string& column : in.missing_columns) {
        adds.push_back(StrCat("ADD COLUMN IF NOT EXISTS ", column, " ", ColumnDefinition(column)));
      }
      text = StrCat("ALTER TABLE ", t, " ", absl::StrJoin(adds, ", "), ";\n");
    }
    std::vector<std::string> defaults;
    for (const std::string& column : in.missing_defaults) {
      if (column == "seq") {
        StrAppend(&text, "CREATE SEQUENCE IF NOT EXISTS ", seq_sequence, " AS bigint OWNED BY ", t, ".seq;\n",
                  // Rows written from now on are numbered after every row the
                  // table holds now (see the backfill).
                  "DO $herald$ DECLARE first_new int8 := (pg_relation_size(", Literal(t),
                  ") / current_setting('block_size')::int8 + 1) * ", tuples_per_block,
                  " + 1; BEGIN EXECUTE format('ALTER SEQUENCE %s MINVALUE %s START WITH %s RESTART WITH %s', ",
                  Literal(seq_sequence), ", first_new, first_new, first_new); END $herald$;\n");
      }
      defaults.push_back(StrCat("ALTER COLUMN ", column, " SET DEFAULT ", DefaultExpression(column, seq_sequence)));
    }
    if (!defaults.empty()) StrAppend(&text, "ALTER TABLE ", t, " ", absl::StrJoin(defaults, ", "), ";\n");
    plan.steps.push_back({Step::Kind::kTransaction,
                          StrCat("add herald's columns (nullable, or NOT NULL with a constant default) and the "
                                 "defaults new rows take; the 3-column INSERT keeps working"),
                          kBriefExclusive, text, ""});
  }

  // 2. Existing rows.
  if (!in.nullable.empty()) {
    std::vector<std::string> sets, nulls;
    for (const std::string& column : in.nullable) {
      sets.push_back(
          StrCat(column, " = coalesce(", column, ", ", FillExpression(column, seq_sequence, tuples_per_block), ")"));
      nulls.push_back(StrCat(column, " IS NULL"));
    }
    const std::string update =
        StrCat("UPDATE ", t, " SET ", absl::StrJoin(sets, ", "), " WHERE (", absl::StrJoin(nulls, " OR "), ")");
    plan.steps.push_back({Step::Kind::kBackfill,
                          StrCat("fill ", absl::StrJoin(in.nullable, ", "),
                                 " of existing rows in batches (one transaction per range of blocks [$1, $2)): seq "
                                 "in the table's order, occurred_at and available_at = the row's created_at"),
                          "ROW EXCLUSIVE (as any UPDATE) and the row locks of one batch; readers and writers go on",
                          StrCat(update, " AND ctid >= $1::tid AND ctid < $2::tid;\n"), StrCat(update, ";\n")});
  }

  // 3. Indexes, concurrently; an interrupted build left an INVALID index.
  for (const std::string& name : in.invalid_indexes) {
    plan.steps.push_back(
        {Step::Kind::kConcurrently, StrCat("drop the invalid index ", name, " (interrupted build)"), kConcurrentLocks,
         StrCat("DROP INDEX CONCURRENTLY IF EXISTS ", sql.schema, ".", QuoteIdentifier(name), ";\n"), ""});
  }
  for (const auto& [unique, column] :
       {std::pair<bool, const char*>{in.seq_unique, "seq"}, {in.event_id_unique, "event_id"}}) {
    if (unique) continue;
    plan.steps.push_back(
        {Step::Kind::kConcurrently, StrCat("unique index on ", column), kConcurrentLocks,
         StrCat("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ",
                IndexName(options.table, StrCat("_", column, "_key")), " ON ", t, " (", column, ");\n"),
         ""});
  }
  std::vector<std::string> partial = in.missing_indexes;
  partial.insert(partial.end(), in.missing_optional_indexes.begin(), in.missing_optional_indexes.end());
  for (const std::string& name : in.invalid_indexes) {
    if (name.ends_with("_idx")) partial.push_back(name);
  }
  for (const std::string& name : partial) {
    plan.steps.push_back(
        {Step::Kind::kConcurrently,
         StrCat("index ", name,
                name.ends_with("_published_idx") ? " of the published rows (the purge)" : " of the pending rows"),
         kConcurrentLocks, PartialIndexSql(options, sql, name), ""});
  }

  // 4. NOT NULL without a scan under an exclusive lock.
  std::vector<std::string> add_checks, validate, set_not_null, drop_checks;
  for (const std::string& column : in.nullable) {
    const std::string name = CheckName(column);
    auto found = std::find_if(in.not_null_checks.begin(), in.not_null_checks.end(),
                              [&](const auto& check) { return check.first == name; });
    if (found == in.not_null_checks.end()) {
      add_checks.push_back(StrCat("ADD CONSTRAINT ", name, " CHECK (", column, " IS NOT NULL) NOT VALID"));
      validate.push_back(StrCat("VALIDATE CONSTRAINT ", name));
      drop_checks.push_back(StrCat("DROP CONSTRAINT ", name));
    } else if (!found->second) {
      validate.push_back(StrCat("VALIDATE CONSTRAINT ", name));
    }
    set_not_null.push_back(StrCat("ALTER COLUMN ", column, " SET NOT NULL"));
  }
  for (const auto& [name, validated] : in.not_null_checks) drop_checks.push_back(StrCat("DROP CONSTRAINT ", name));
  set_not_null.insert(set_not_null.end(), drop_checks.begin(), drop_checks.end());
  if (!add_checks.empty()) {
    plan.steps.push_back({Step::Kind::kTransaction, "NOT NULL checks, not yet validated (no scan)", kBriefExclusive,
                          StrCat("ALTER TABLE ", t, " ", absl::StrJoin(add_checks, ", "), ";\n"), ""});
  }
  if (!validate.empty()) {
    plan.steps.push_back({Step::Kind::kTransaction, "validate the NOT NULL checks (scans the table)",
                          "SHARE UPDATE EXCLUSIVE while it scans: reads and writes go on",
                          StrCat("ALTER TABLE ", t, " ", absl::StrJoin(validate, ", "), ";\n"), ""});
  }
  if (!set_not_null.empty()) {
    plan.steps.push_back(
        {Step::Kind::kTransaction, "SET NOT NULL, proven by the validated checks (no scan), and drop the checks",
         kBriefExclusive, StrCat("ALTER TABLE ", t, " ", absl::StrJoin(set_not_null, ", "), ";\n"), ""});
  }

  // 5. Wake-up trigger, inbox, versions.
  std::string finish = CreateInboxSql(options, sql);
  if (!in.trigger) finish += CreateTriggerSql(options, sql);
  finish += RecordSchemaVersionsSql(sql);
  plan.steps.push_back({Step::Kind::kTransaction, "notify trigger, inbox table, schema versions",
                        "SHARE ROW EXCLUSIVE for milliseconds (CREATE TRIGGER); waits at most lock_timeout for it",
                        finish, ""});
  return plan;
}

struct Session {
  OutboxSql sql;
  std::unique_ptr<Connection> connection;
};

absl::StatusOr<Session> Connect(PostgresOptions& options) {
  HERALD_ASSIGN_OR_RETURN(ConnectSettings settings, PrepareOptions(options));
  settings.statement_timeout = absl::ZeroDuration();  // backfills and index builds take as long as they take
  Session session;
  session.sql = BuildOutboxSql(options);
  HERALD_ASSIGN_OR_RETURN(session.connection, Connection::Open(settings, "connect for the outbox migration"));
  return session;
}

absl::Status InTransaction(Connection& c, const std::string& setup, const std::string& text, std::string_view what) {
  HERALD_RETURN_IF_ERROR(c.Exec("BEGIN", what));
  absl::Status status = c.Exec(setup, what);
  if (status.ok()) status = c.Exec(text, what);
  if (!status.ok()) {
    (void)c.Exec("ROLLBACK", what);
    return status;
  }
  return c.Exec("COMMIT", what);
}

int64_t AffectedRows(const PGresult* r) {
  const char* text = PQcmdTuples(const_cast<PGresult*>(r));
  return text == nullptr || *text == '\0' ? 0 : std::atoll(text);
}

absl::Status Backfill(Connection& c, const OutboxSql& sql, const Step& step, const OutboxMigrationOptions& migration,
                      OutboxMigrationProgress& progress) {
  const char* params[] = {sql.table_literal.c_str()};
  HERALD_ASSIGN_OR_RETURN(
      ResultPtr size,
      ExecParams(c.get(),
                 "SELECT pg_relation_size($1::regclass) / current_setting('block_size')::int8, reltuples::int8, "
                 "relpages::int8, (current_setting('block_size')::int8 - 24) / 28 FROM pg_class WHERE oid = "
                 "$1::regclass",
                 params, "measure the outbox table"));
  const int64_t blocks = std::atoll(PQgetvalue(size.get(), 0, 0));
  const int64_t tuples = std::atoll(PQgetvalue(size.get(), 0, 1));
  const int64_t pages = std::atoll(PQgetvalue(size.get(), 0, 2));
  const int64_t rows_per_block =
      tuples > 0 && pages > 0 ? std::max<int64_t>(1, tuples / pages) : std::atoll(PQgetvalue(size.get(), 0, 3));
  const int64_t per_batch = std::max<int64_t>(1, migration.batch_size / rows_per_block);
  progress.batches = (blocks + per_batch - 1) / per_batch + 1;
  for (int64_t first = 0; first < blocks; first += per_batch) {
    const std::string from = StrCat("(", first, ",0)"), to = StrCat("(", std::min(blocks, first + per_batch), ",0)");
    const char* range[] = {from.c_str(), to.c_str()};
    HERALD_ASSIGN_OR_RETURN(ResultPtr done, ExecParams(c.get(), step.sql, range, "backfill a batch"));
    progress.rows += AffectedRows(done.get());
    ++progress.batch;
    if (migration.on_progress) migration.on_progress(progress);
  }
  HERALD_ASSIGN_OR_RETURN(ResultPtr rest, ExecParams(c.get(), step.final_sql, {}, "backfill the rest"));
  progress.rows += AffectedRows(rest.get());
  progress.batch = progress.batches;
  return absl::OkStatus();
}

int64_t LockTimeoutMillis(absl::Duration timeout) { return std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout)); }

}  // namespace

std::string OutboxMigrationPlan::Script(absl::Duration lock_timeout) const {
  const std::string set_lock_timeout =
      StrCat("SET LOCAL lock_timeout = ", LockTimeoutMillis(lock_timeout), ";  -- milliseconds\n");
  if (mode == Mode::kUpToDate) return StrCat("-- ", table, " already meets herald's table contract: nothing to do\n");
  std::string text = StrCat("-- herald outbox migrate: ", mode == Mode::kCreate ? "create " : "adopt ", table, ", ",
                            steps.size(), " step", steps.size() == 1 ? "" : "s", "\n");
  int n = 0;
  for (const Step& step : steps) {
    StrAppend(&text, "\n-- step ", ++n, "/", steps.size(), ": ", step.description, "\n-- locks: ", step.locks, "\n");
    switch (step.kind) {
      case Step::Kind::kTransaction:
        StrAppend(&text, "BEGIN;\n", set_lock_timeout, step.sql, "COMMIT;\n");
        break;
      case Step::Kind::kConcurrently:
        StrAppend(&text, "-- outside a transaction\n", step.sql);
        break;
      case Step::Kind::kBackfill:
        StrAppend(&text, "-- for each range of blocks [$1, $2) of about --batch rows, one transaction:\n", step.sql,
                  "-- then once, for rows that moved behind the batches meanwhile:\n", step.final_sql);
        break;
    }
  }
  return text;
}

absl::StatusOr<OutboxMigrationPlan> PlanOutboxMigration(PostgresOptions options) {
  HERALD_ASSIGN_OR_RETURN(Session session, Connect(options));
  return Plan(*session.connection, options, session.sql);
}

absl::StatusOr<OutboxMigrationPlan> MigrateOutbox(PostgresOptions options, const OutboxMigrationOptions& migration) {
  if (migration.batch_size < 1) return absl::InvalidArgumentError("OutboxMigrationOptions.batch_size must be >= 1");
  HERALD_ASSIGN_OR_RETURN(Session session, Connect(options));
  Connection& c = *session.connection;
  const std::string key = std::to_string(AdvisoryLockKey(StrCat("herald-adopt:", session.sql.table)));
  const char* key_params[] = {key.c_str()};
  HERALD_ASSIGN_OR_RETURN(
      ResultPtr locked, ExecParams(c.get(), "SELECT pg_try_advisory_lock($1::int8)", key_params, "lock the migration"));
  if (std::string_view(PQgetvalue(locked.get(), 0, 0)) != "t") {
    return absl::UnavailableError(
        StrCat("another `herald outbox migrate` of ", session.sql.table, " is running; wait for it"));
  }
  HERALD_ASSIGN_OR_RETURN(OutboxMigrationPlan plan, Plan(c, options, session.sql));
  const std::string schema_lock = std::to_string(SchemaLockKey(options));
  const std::string setup = StrCat("SET LOCAL lock_timeout = ", LockTimeoutMillis(migration.lock_timeout),
                                   "; SELECT pg_advisory_xact_lock(", schema_lock, ")");
  OutboxMigrationProgress progress;
  progress.steps = static_cast<int>(plan.steps.size());
  for (const Step& step : plan.steps) {
    progress = {.step = progress.step + 1, .steps = progress.steps, .current = &step};
    if (migration.on_progress) migration.on_progress(progress);
    const std::string what = StrCat("migration step ", progress.step, " (", step.description, ")");
    switch (step.kind) {
      case Step::Kind::kTransaction:
        HERALD_RETURN_IF_ERROR(InTransaction(c, setup, step.sql, what));
        break;
      case Step::Kind::kConcurrently:
        HERALD_RETURN_IF_ERROR(c.Exec(step.sql, what));
        break;
      case Step::Kind::kBackfill:
        HERALD_RETURN_IF_ERROR(Backfill(c, session.sql, step, migration, progress));
        break;
    }
    progress.finished = true;
    if (migration.on_progress) migration.on_progress(progress);
  }
  return plan;
}

}  // namespace herald::postgres
