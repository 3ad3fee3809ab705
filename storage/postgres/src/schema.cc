#include "schema.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "herald/core/outbox.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"

namespace herald::postgres {

std::string QuoteIdentifier(std::string_view name) { return StrCat("\"", name, "\""); }

int64_t AdvisoryLockKey(std::string_view text) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return static_cast<int64_t>(hash);
}

// Microseconds since the epoch of a timestamptz column, exact (extract
// returns numeric).
#define HERALD_PG_MICROS(col) "(extract(epoch from " col ") * 1000000)::int8"

const char kRecordColumns[] =
    "seq, event_id, event_type, topic, event_key, headers::text, event_payload::text, content_type, source, "
    "schema_version, " HERALD_PG_MICROS("occurred_at") ", attempts, last_error, " HERALD_PG_MICROS("created_at");

OutboxSql BuildOutboxSql(const PostgresOptions& options) {
  OutboxSql sql;
  sql.schema = QuoteIdentifier(options.schema);
  sql.table = StrCat(sql.schema, ".", QuoteIdentifier(options.table));
  sql.inbox = StrCat(sql.schema, ".", QuoteIdentifier(options.inbox_table));
  sql.table_literal = sql.table;
  sql.inbox_literal = sql.inbox;
  const std::string& t = sql.table;
  const std::string now = "coalesce($2::timestamptz, now())";

  sql.insert = {"herald_insert",
                StrCat("INSERT INTO ", t,
                       " (event_id, event_type, topic, event_key, headers, event_payload, content_type, source, "
                       "schema_version, occurred_at, created_at, available_at) VALUES ($1, $2, $3, $4, $5::jsonb, "
                       "$6, $7, $8, $9::int, $10::timestamptz, coalesce($11::timestamptz, now()), "
                       "coalesce($11::timestamptz, now()))")};
  std::string pending = StrCat("SELECT ", kRecordColumns, " FROM ", t,
                               " o WHERE o.published_at IS NULL AND o.parked_at IS NULL AND o.available_at <= ", now,
                               " AND (o.event_key IS NULL OR NOT EXISTS (SELECT 1 FROM ", t,
                               " p WHERE p.event_key = o.event_key AND p.seq < o.seq AND p.published_at IS NULL"
                               // Served by the small "waiting" index of migration 2: only rows that
                               // failed (or were written to wait) can be not ready.
                               " AND (p.parked_at IS NOT NULL OR p.available_at > p.created_at)"
                               " AND (p.parked_at IS NOT NULL OR p.available_at > ",
                               now, ")))");
  sql.fetch_pending = {"herald_fetch_pending", StrCat(pending, " ORDER BY o.seq LIMIT $1::int")};
  sql.fetch_pending_shard = {"herald_fetch_pending_shard",
                             StrCat(pending,
                                    " AND mod(abs(hashtext(coalesce(o.event_key, ''))::bigint), $3::int) = $4::int"
                                    " ORDER BY o.seq LIMIT $1::int")};
  sql.mark_published = {"herald_mark_published", StrCat("UPDATE ", t, " SET published_at = ", now,
                                                        " WHERE seq = ANY($1::bigint[]) AND published_at IS NULL")};
  // Retention zero: the row goes in the statement that would have marked
  // it. Only pending rows: a skipped row stays for the purge, as recorded.
  sql.delete_published = {"herald_delete_published",
                          StrCat("DELETE FROM ", t, " WHERE seq = ANY($1::bigint[]) AND published_at IS NULL")};
  sql.mark_failed = {"herald_mark_failed",
                     StrCat("UPDATE ", t,
                            " SET attempts = attempts + 1, last_error = $2, available_at = $3::timestamptz, "
                            "parked_at = CASE WHEN $4::bool THEN coalesce($5::timestamptz, now()) ELSE NULL END "
                            "WHERE seq = $1::int8")};
  sql.retry_parked = {"herald_retry_parked",
                      StrCat("UPDATE ", t, " SET parked_at = NULL, attempts = 0, available_at = ", now,
                             " WHERE parked_at IS NOT NULL AND published_at IS NULL"
                             " AND ($1::bigint[] IS NULL OR seq = ANY($1::bigint[]))")};
  // A skip: the row leaves the pending set as a published row would (so it
  // no longer holds back its key, and is purged with published rows), keeps
  // parked_at (a delivered row never has both), and its last_error gets the
  // skip note ($3, OutboxSkipNote with an empty previous error) in front.
  sql.skip_parked = {"herald_skip_parked",
                     StrCat("UPDATE ", t,
                            " SET published_at = $2::timestamptz, last_error = $3 || coalesce(last_error, '')"
                            " WHERE parked_at IS NOT NULL AND published_at IS NULL AND seq = ANY($1::bigint[])")};
  sql.assign_key = {"herald_assign_key",
                    StrCat("UPDATE ", t,
                           " SET event_key = $2 WHERE seq = ANY($1::bigint[]) AND published_at IS NULL"
                           " AND (event_key IS NULL OR event_key = '')")};
  sql.keys_with_earlier = {"herald_keys_with_earlier",
                           StrCat("SELECT DISTINCT p->>0 FROM jsonb_array_elements($1::jsonb) p WHERE EXISTS "
                                  "(SELECT 1 FROM ", t,
                                  " o WHERE o.event_key = p->>0 AND o.seq < (p->>1)::int8 AND o.published_at IS NULL"
                                  " AND NOT (o.seq = ANY($2::bigint[])))")};
  // Oldest published first, in the order of the published index
  // (migration 3), so a purge reads only the rows it deletes.
  sql.purge_published = {"herald_purge_published",
                         StrCat("DELETE FROM ", t, " WHERE seq IN (SELECT seq FROM ", t,
                                " WHERE published_at IS NOT NULL AND published_at < $1::timestamptz"
                                " ORDER BY published_at LIMIT $2::int)")};
  sql.stats = {"herald_stats",
               StrCat("SELECT count(*) FILTER (WHERE parked_at IS NULL), count(*) FILTER (WHERE parked_at IS NOT "
                      "NULL), coalesce((extract(epoch from (coalesce($1::timestamptz, now()) - min(created_at) "
                      "FILTER (WHERE parked_at IS NULL))) * 1000000)::int8, 0) FROM ",
                      t, " WHERE published_at IS NULL")};
  sql.list_parked = {"herald_list_parked",
                     StrCat("SELECT ", kRecordColumns, " FROM ", t,
                            " WHERE parked_at IS NOT NULL AND published_at IS NULL ORDER BY seq LIMIT $1::int")};
  sql.inbox_insert = {"herald_inbox_insert",
                      StrCat("INSERT INTO ", sql.inbox,
                             " (consumer, event_id, processed_at) VALUES ($1, $2, coalesce($3::timestamptz, "
                             "now())) ON CONFLICT DO NOTHING")};
  sql.inbox_purge = {"herald_inbox_purge", StrCat("DELETE FROM ", sql.inbox,
                                                  " WHERE (consumer, event_id) IN (SELECT consumer, event_id FROM ",
                                                  sql.inbox, " WHERE processed_at < $1::timestamptz LIMIT $2::int)")};
  return sql;
}

std::string IndexName(std::string_view table, std::string_view suffix) {
  size_t room = 63 - suffix.size();
  return QuoteIdentifier(StrCat(table.substr(0, room), suffix));
}

namespace {

struct Migration {
  int version;
  std::string sql;
};

// Append-only: a new schema change is a new entry with the next version,
// and the same change for an adopted table in outbox_migration.cc. Every
// statement is idempotent (IF NOT EXISTS) and only ever runs when the outbox
// table is absent (Open) or from `herald outbox migrate`, so a second outbox
// table in an already migrated schema gets created by running the list
// again. Migration 1 once also added missing columns to an existing table,
// implicitly and with volatile defaults (a table rewrite); adopting a table
// is now the explicit `herald outbox migrate`.
std::vector<Migration> Migrations(const PostgresOptions& options, const OutboxSql& sql) {
  const std::string& t = sql.table;
  std::vector<Migration> list;
  list.push_back(
      {1, StrCat("CREATE TABLE IF NOT EXISTS ", t,
                 " (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                 " event_id TEXT NOT NULL UNIQUE DEFAULT gen_random_uuid()::text,"
                 " event_type TEXT NOT NULL, topic TEXT NOT NULL, event_key TEXT NULL, headers JSONB NULL,"
                 " event_payload TEXT NOT NULL, content_type TEXT NOT NULL DEFAULT 'application/json',"
                 " source TEXT NULL, schema_version INT NOT NULL DEFAULT 1,"
                 " occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(), created_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
                 " available_at TIMESTAMPTZ NOT NULL DEFAULT now(), published_at TIMESTAMPTZ NULL,"
                 " parked_at TIMESTAMPTZ NULL, attempts INT NOT NULL DEFAULT 0, last_error TEXT NULL);\n",
                 "CREATE INDEX IF NOT EXISTS ", IndexName(options.table, "_pending_idx"), " ON ", t,
                 " (seq) WHERE published_at IS NULL;\n", "CREATE INDEX IF NOT EXISTS ",
                 IndexName(options.table, "_key_pending_idx"), " ON ", t,
                 " (event_key, seq) WHERE published_at IS NULL;\n",
                 // The wake-up: one NOTIFY per inserting statement, delivered at
                 // commit; the channel is the trigger's argument.
                 "CREATE OR REPLACE FUNCTION ", sql.schema,
                 ".herald_notify() RETURNS trigger LANGUAGE plpgsql AS $herald$ BEGIN PERFORM "
                 "pg_notify(TG_ARGV[0], ''); RETURN NULL; END $herald$;\n",
                 CreateInboxSql(options, sql))});
  // The claim's order check looks for earlier rows of the same key that are
  // not ready (parked, or waiting for a retry). Only rows that failed, or
  // were written with a later available_at, can be so: this index holds just
  // those, so the check stays cheap however many rows are pending (the
  // (event_key, seq) index also holds published rows until vacuum).
  list.push_back({2, StrCat("CREATE INDEX IF NOT EXISTS ", IndexName(options.table, "_key_waiting_idx"), " ON ", t,
                            " (event_key, seq) WHERE published_at IS NULL AND"
                            " (parked_at IS NOT NULL OR available_at > created_at);\n")});
  // The purge finds the published rows through this index instead of
  // walking the whole table (every pending row) in seq order: without it a
  // purge that finds little to delete costs a scan of the outbox. Optional
  // on a table from before it: Open accepts the table without it (the
  // purge is slower), `herald outbox migrate` adds it.
  list.push_back({3, PublishedIndexSql(options, sql, /*concurrently=*/false)});
  return list;
}

}  // namespace

std::string PublishedIndexSql(const PostgresOptions& options, const OutboxSql& sql, bool concurrently) {
  return StrCat("CREATE INDEX ", concurrently ? "CONCURRENTLY " : "", "IF NOT EXISTS ",
                IndexName(options.table, "_published_idx"), " ON ", sql.table,
                " (published_at) WHERE published_at IS NOT NULL;\n");
}

namespace {

std::string VersionsTable(const OutboxSql& sql) { return StrCat(sql.schema, ".herald_schema_migrations"); }

std::string RecordVersionsSql(const OutboxSql& sql) {
  std::string text = StrCat("CREATE TABLE IF NOT EXISTS ", VersionsTable(sql),
                            " (version INT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now());\nINSERT INTO ",
                            VersionsTable(sql), " (version) VALUES ");
  for (int v = 1; v <= LatestSchemaVersion(); ++v) StrAppend(&text, v > 1 ? ", (" : "(", v, ")");
  text += " ON CONFLICT DO NOTHING;\n";
  return text;
}

// One column of the table contract.
struct ContractColumn {
  const char* name;
  // The type herald adds; empty: the column must already exist (an outbox
  // without it is not an outbox).
  const char* add_type;
  // Accepted types of an existing column (format_type), comma separated;
  // a trailing '*' accepts any suffix ("character varying*").
  const char* accepted;
  bool not_null;
  // The constant default herald adds with the column (no rewrite); empty
  // when the column is added nullable.
  const char* constant_default;
  // The default new rows need (nullptr: none); set after adding the column.
  const char* volatile_default;
};

constexpr ContractColumn kContract[] = {
    {"seq", "BIGINT", "bigint", true, "", "nextval"},
    {"event_id", "TEXT", "text,character varying*", true, "", "gen_random_uuid()::text"},
    {"event_type", "", "text,character varying*", false, "", nullptr},
    {"topic", "", "text,character varying*", false, "", nullptr},
    {"event_key", "TEXT", "text,character varying*", false, "", nullptr},
    {"headers", "JSONB", "jsonb", false, "", nullptr},
    {"event_payload", "", "text,character varying*,jsonb,json", false, "", nullptr},
    {"content_type", "TEXT", "text,character varying*", true, "'application/json'", nullptr},
    {"source", "TEXT", "text,character varying*", false, "", nullptr},
    {"schema_version", "INT", "integer,bigint", true, "1", nullptr},
    {"occurred_at", "TIMESTAMPTZ", "timestamp with time zone", true, "", "now()"},
    {"created_at", "TIMESTAMPTZ", "timestamp with time zone", true, "", "now()"},
    {"available_at", "TIMESTAMPTZ", "timestamp with time zone", true, "", "now()"},
    {"published_at", "TIMESTAMPTZ", "timestamp with time zone", false, "", nullptr},
    {"parked_at", "TIMESTAMPTZ", "timestamp with time zone", false, "", nullptr},
    {"attempts", "INT", "integer,bigint", true, "0", nullptr},
    {"last_error", "TEXT", "text,character varying*", false, "", nullptr},
};

bool TypeAccepted(std::string_view accepted, std::string_view type) {
  while (!accepted.empty()) {
    const size_t comma = std::min(accepted.find(','), accepted.size());
    const std::string_view option = accepted.substr(0, comma);
    if (option.ends_with('*') ? type.starts_with(option.substr(0, option.size() - 1)) : type == option) return true;
    accepted.remove_prefix(std::min(comma + 1, accepted.size()));
  }
  return false;
}

std::string Join(const std::vector<std::string>& items) { return absl::StrJoin(items, ", "); }

absl::Status PrepareSchemaInTransaction(Connection& c, const PostgresOptions& options, const OutboxSql& sql) {
  const std::string lock_key = std::to_string(SchemaLockKey(options));
  const char* lock_params[] = {lock_key.c_str()};
  HERALD_RETURN_IF_ERROR(
      ExecParams(c.get(), "SELECT pg_advisory_xact_lock($1::int8)", lock_params, "lock for migrations").status());
  HERALD_ASSIGN_OR_RETURN(TableInspection inspection, InspectTables(c, sql, options));
  if (!inspection.exists) {
    if (!options.create_schema) {
      return absl::FailedPreconditionError(
          StrCat("outbox table ", sql.table,
                 " does not exist and PostgresOptions.create_schema is false: create it with `herald outbox "
                 "migrate --postgres --schema ",
                 options.schema, " --table ", options.table, "`, or open with create_schema = true"));
    }
    return c.Exec(CreateSchemaSql(options, sql), "create the outbox schema");
  }
  if (!inspection.adopted()) return NotAdoptedError(options, sql, inspection);
  if (!options.create_schema) return absl::OkStatus();
  if (!inspection.inbox_exists) {
    HERALD_RETURN_IF_ERROR(c.Exec(CreateInboxSql(options, sql), "create the inbox table"));
  }
  // The trigger carries the channel; replace it only when the channel
  // changed (CREATE TRIGGER takes a brief SHARE ROW EXCLUSIVE lock).
  const char* trigger_params[] = {sql.table_literal.c_str(), options.notify_channel.c_str()};
  HERALD_ASSIGN_OR_RETURN(
      ResultPtr trigger,
      ExecParams(c.get(),
                 "SELECT 1 FROM pg_trigger WHERE tgrelid = $1::regclass AND tgname = 'herald_notify' AND "
                 "tgargs = convert_to($2, 'UTF8') || '\\x00'::bytea",
                 trigger_params, "look for notify trigger"));
  if (PQntuples(trigger.get()) == 0) {
    HERALD_RETURN_IF_ERROR(c.Exec(CreateTriggerSql(options, sql), "install notify trigger"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ConnectSettings> PrepareOptions(PostgresOptions& options) {
  for (const auto& [field, value] : {std::pair<const char*, const std::string*>{"schema", &options.schema},
                                     {"table", &options.table},
                                     {"inbox_table", &options.inbox_table}}) {
    HERALD_RETURN_IF_ERROR(CheckSqlIdentifier(StrCat("PostgresOptions.", field), *value));
  }
  if (options.table == options.inbox_table) {
    return absl::InvalidArgumentError("PostgresOptions.table and inbox_table must differ");
  }
  if (options.notify_channel.empty()) {
    options.notify_channel = StrCat(options.schema, "_", options.table).substr(0, 63);
  } else {
    HERALD_RETURN_IF_ERROR(CheckSqlIdentifier("PostgresOptions.notify_channel", options.notify_channel));
  }
  if (options.pool_size < 1) return absl::InvalidArgumentError("PostgresOptions.pool_size must be at least 1");
  ConnectSettings settings;
  settings.conninfo = options.conninfo;
  settings.connect_timeout_seconds =
      std::to_string(std::max<int64_t>(2, absl::ToInt64Seconds(absl::Ceil(options.connect_timeout, absl::Seconds(1)))));
  settings.statement_timeout = options.statement_timeout;
  settings.log = options.log;
  HERALD_RETURN_IF_ERROR(ParseConnInfo(settings));
  return settings;
}

bool TableInspection::adopted() const {
  return exists && missing_columns.empty() && incompatible.empty() && missing_defaults.empty() && nullable.empty() &&
         not_null_checks.empty() && missing_indexes.empty() && invalid_indexes.empty() && seq_unique && event_id_unique;
}

std::string TableInspection::Summary() const {
  std::vector<std::string> parts;
  if (!incompatible.empty()) parts.push_back(StrCat("incompatible: ", absl::StrJoin(incompatible, "; ")));
  if (!missing_columns.empty()) parts.push_back(StrCat("missing columns ", Join(missing_columns)));
  if (!missing_defaults.empty()) parts.push_back(StrCat("no default for ", Join(missing_defaults)));
  if (!nullable.empty()) parts.push_back(StrCat("not yet NOT NULL: ", Join(nullable)));
  if (!seq_unique) parts.push_back("no unique index on seq");
  if (!event_id_unique) parts.push_back("no unique index on event_id");
  if (!missing_indexes.empty()) parts.push_back(StrCat("missing indexes ", Join(missing_indexes)));
  if (!invalid_indexes.empty()) parts.push_back(StrCat("invalid indexes ", Join(invalid_indexes)));
  if (!not_null_checks.empty()) parts.push_back("an interrupted migration's NOT NULL checks");
  return absl::StrJoin(parts, "; ");
}

std::string SeqSequenceName(const PostgresOptions& options, const OutboxSql& sql) {
  return StrCat(sql.schema, ".", IndexName(options.table, "_seq_seq"));
}

absl::StatusOr<TableInspection> InspectTables(Connection& c, const OutboxSql& sql, const PostgresOptions& options) {
  TableInspection in;
  const std::string seq_name = SeqSequenceName(options, sql);
  const char* exists_params[] = {sql.table_literal.c_str(), sql.inbox_literal.c_str(), seq_name.c_str()};
  HERALD_ASSIGN_OR_RETURN(
      ResultPtr exists,
      ExecParams(c.get(),
                 "SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL, to_regclass($3) IS NOT NULL, "
                 "EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = 'herald_notify')",
                 exists_params, "look for the outbox tables"));
  auto flag = [](const PGresult* r, int row, int col) { return std::string_view(PQgetvalue(r, row, col)) == "t"; };
  in.exists = flag(exists.get(), 0, 0);
  in.inbox_exists = flag(exists.get(), 0, 1);
  in.seq_sequence = flag(exists.get(), 0, 2);
  in.trigger = flag(exists.get(), 0, 3);
  if (!in.exists) return in;

  const char* table_params[] = {sql.table_literal.c_str()};
  HERALD_ASSIGN_OR_RETURN(
      ResultPtr columns,
      ExecParams(c.get(),
                 "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
                 "a.attidentity <> '' OR a.attgenerated <> '' OR d.adbin IS NOT NULL "
                 "FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
                 "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
                 table_params, "read the outbox columns"));
  struct Existing {
    std::string type;
    bool not_null;
    bool has_default;
  };
  absl::flat_hash_map<std::string, Existing> existing;
  for (int i = 0; i < PQntuples(columns.get()); ++i) {
    existing[PQgetvalue(columns.get(), i, 0)] = {PQgetvalue(columns.get(), i, 1), flag(columns.get(), i, 2),
                                                 flag(columns.get(), i, 3)};
  }
  absl::flat_hash_set<std::string> contract_names;
  for (const ContractColumn& col : kContract) {
    contract_names.insert(col.name);
    auto it = existing.find(col.name);
    if (it == existing.end()) {
      if (*col.add_type == '\0') {
        in.incompatible.push_back(StrCat("no column ", col.name, " (not an outbox table?)"));
        continue;
      }
      in.missing_columns.push_back(col.name);
      if (col.volatile_default != nullptr) in.missing_defaults.push_back(col.name);
      if (col.not_null && *col.constant_default == '\0') in.nullable.push_back(col.name);
      continue;
    }
    const Existing& e = it->second;
    if (!TypeAccepted(col.accepted, e.type)) {
      in.incompatible.push_back(StrCat("column ", col.name, " is ", e.type, ", herald needs ",
                                       absl::StrReplaceAll(col.accepted, {{",", " or "}, {"*", ""}}),
                                       " (changing a column's type rewrites the table: do it yourself)"));
      continue;
    }
    if ((col.volatile_default != nullptr || *col.constant_default != '\0') && !e.has_default) {
      in.missing_defaults.push_back(col.name);
    }
    if (col.not_null && !e.not_null) in.nullable.push_back(col.name);
  }
  // seq: only the sequence herald adds can fill existing rows in order.
  if (existing.contains("seq") && !existing["seq"].has_default) {
    in.incompatible.push_back("column seq exists without a default: give it one (a sequence) yourself, or rename it");
  }
  for (const auto& [name, e] : existing) {
    if (!contract_names.contains(name) && e.not_null && !e.has_default) {
      in.incompatible.push_back(StrCat("column ", name,
                                       " is NOT NULL without a default: herald's INSERT does not fill it (give it a "
                                       "default or drop NOT NULL)"));
    }
  }
  std::sort(in.incompatible.begin(), in.incompatible.end());

  HERALD_ASSIGN_OR_RETURN(
      ResultPtr indexes,
      ExecParams(c.get(),
                 "SELECT c.relname, i.indisvalid, i.indisunique AND i.indnatts = 1 AND i.indpred IS NULL AND "
                 "i.indexprs IS NULL, (SELECT attname FROM pg_attribute WHERE attrelid = i.indrelid AND attnum = "
                 "i.indkey[0]) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                 "WHERE i.indrelid = to_regclass($1)",
                 table_params, "read the outbox indexes"));
  absl::flat_hash_map<std::string, bool> index_valid;
  for (int i = 0; i < PQntuples(indexes.get()); ++i) {
    const std::string name = PQgetvalue(indexes.get(), i, 0);
    const bool valid = flag(indexes.get(), i, 1);
    index_valid[name] = valid;
    if (valid && flag(indexes.get(), i, 2)) {
      const std::string_view column = PQgetvalue(indexes.get(), i, 3);
      if (column == "seq") in.seq_unique = true;
      if (column == "event_id") in.event_id_unique = true;
    }
  }
  auto unquote = [](const std::string& quoted) { return quoted.substr(1, quoted.size() - 2); };
  for (const char* suffix : {"_seq_key", "_event_id_key"}) {
    const std::string name = unquote(IndexName(options.table, suffix));
    auto it = index_valid.find(name);
    if (it != index_valid.end() && !it->second) in.invalid_indexes.push_back(name);
  }
  for (const char* suffix : {"_pending_idx", "_key_pending_idx", "_key_waiting_idx", "_published_idx"}) {
    const std::string name = unquote(IndexName(options.table, suffix));
    const bool optional = std::string_view(suffix) == "_published_idx";
    auto it = index_valid.find(name);
    if (it == index_valid.end()) {
      (optional ? in.missing_optional_indexes : in.missing_indexes).push_back(name);
    } else if (!it->second) {
      in.invalid_indexes.push_back(name);
    }
  }

  HERALD_ASSIGN_OR_RETURN(ResultPtr checks,
                          ExecParams(c.get(),
                                     "SELECT conname, convalidated FROM pg_constraint WHERE conrelid = "
                                     "to_regclass($1) AND contype = 'c' AND conname LIKE 'herald\\_%\\_not\\_null' "
                                     "ORDER BY conname",
                                     table_params, "read the outbox constraints"));
  for (int i = 0; i < PQntuples(checks.get()); ++i) {
    in.not_null_checks.emplace_back(PQgetvalue(checks.get(), i, 0), flag(checks.get(), i, 1));
  }
  return in;
}

std::string CreateInboxSql(const PostgresOptions& options, const OutboxSql& sql) {
  return StrCat("CREATE TABLE IF NOT EXISTS ", sql.inbox,
                " (consumer TEXT NOT NULL, event_id TEXT NOT NULL, processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
                " PRIMARY KEY (consumer, event_id));\n",
                "CREATE INDEX IF NOT EXISTS ", IndexName(options.inbox_table, "_processed_idx"), " ON ", sql.inbox,
                " (processed_at);\n");
}

std::string CreateTriggerSql(const PostgresOptions& options, const OutboxSql& sql) {
  return StrCat("CREATE OR REPLACE FUNCTION ", sql.schema,
                ".herald_notify() RETURNS trigger LANGUAGE plpgsql AS $herald$ BEGIN PERFORM "
                "pg_notify(TG_ARGV[0], ''); RETURN NULL; END $herald$;\n",
                "DROP TRIGGER IF EXISTS herald_notify ON ", sql.table,
                ";\nCREATE TRIGGER herald_notify AFTER INSERT ON ", sql.table, " FOR EACH STATEMENT EXECUTE FUNCTION ",
                sql.schema, ".herald_notify('", options.notify_channel, "');\n");
}

std::string CreateSchemaSql(const PostgresOptions& options, const OutboxSql& sql) {
  std::string text = StrCat("CREATE SCHEMA IF NOT EXISTS ", sql.schema, ";\n");
  for (const Migration& m : Migrations(options, sql)) text += m.sql;
  text += RecordVersionsSql(sql);
  text += CreateTriggerSql(options, sql);
  return text;
}

std::string RecordSchemaVersionsSql(const OutboxSql& sql) { return RecordVersionsSql(sql); }

absl::Status NotAdoptedError(const PostgresOptions& options, const OutboxSql& sql, const TableInspection& inspection) {
  return absl::FailedPreconditionError(
      StrCat("outbox table ", sql.table, " exists but does not meet herald's table contract (", inspection.Summary(),
             "). herald does not alter an existing table when it opens it: adopt it explicitly with `herald outbox "
             "migrate --postgres --schema ",
             options.schema, " --table ", options.table,
             " --dry-run` (prints the DDL), then the same without --dry-run (no table rewrite; docs/outbox.md, "
             "\"Adopting an existing table\")"));
}

absl::Status PrepareSchema(Connection& connection, const PostgresOptions& options, const OutboxSql& sql) {
  HERALD_RETURN_IF_ERROR(connection.Exec("BEGIN", "begin migrations"));
  absl::Status status = PrepareSchemaInTransaction(connection, options, sql);
  if (!status.ok()) {
    (void)connection.Exec("ROLLBACK", "roll back migrations");
    return status;
  }
  return connection.Exec("COMMIT", "commit migrations");
}

int64_t SchemaLockKey(const PostgresOptions& options) {
  return AdvisoryLockKey(StrCat("herald-migrations:", options.schema));
}

int LatestSchemaVersion() { return 3; }

}  // namespace herald::postgres
