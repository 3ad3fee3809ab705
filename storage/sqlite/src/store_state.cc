#include "store_state.h"

#include <algorithm>
#include <map>
#include <utility>

#include "herald/core/outbox.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/sqlite/sqlite_status.h"

namespace herald::sqlite::internal {
namespace {

// A random RFC 9562 version 4 UUID in SQL, for rows inserted without an id.
constexpr std::string_view kSqlRandomUuid =
    "(lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))))";

constexpr std::string_view kRecordColumns =
    "seq, event_id, event_type, topic, event_key, headers, event_payload, content_type, source, "
    "schema_version, occurred_at, created_at, attempts, last_error";

}  // namespace

absl::Status ValidateIdentifier(std::string_view what, std::string_view name) {
  if (!IsValidSqlIdentifier(name)) {
    return absl::InvalidArgumentError(herald::StrCat(
        "SqliteOptions.", what, " \"", name.substr(0, 80),
        "\" is not a valid table name: use 1 to 63 of [A-Za-z0-9_], not starting with a digit"));
  }
  return absl::OkStatus();
}

std::string Quote(std::string_view name) { return herald::StrCat("\"", name, "\""); }

SqlTexts BuildSqlTexts(const SqliteOptions& options) {
  const std::string t = Quote(options.outbox_table);
  const std::string inbox = Quote(options.inbox_table);
  const std::string lease = Quote(options.lease_table);
  SqlTexts sql;
  auto set = [&](Sql id, std::string text) { sql[static_cast<int>(id)] = std::move(text); };
  set(Sql::kBegin, "BEGIN IMMEDIATE");
  set(Sql::kCommit, "COMMIT");
  set(Sql::kRollback, "ROLLBACK");
  set(Sql::kAppend, herald::StrCat("INSERT INTO ", t,
                                   " (event_id, event_type, topic, event_key, headers, event_payload, content_type, "
                                   "source, schema_version, occurred_at, created_at, available_at) "
                                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)"));
  // Rows that failed or were parked ("held" rows): the only rows that can
  // hold back their key. Fresh rows (attempts 0, not parked) are not in the
  // held index, so an append pays for no index but event_id's.
  const std::string held = "published_at IS NULL AND (attempts > 0 OR parked_at IS NOT NULL)";
  // The first unpublished row at or after the low-water mark ?1 (every row
  // before it is published), else one past the last row.
  set(Sql::kLowWater, herald::StrCat("SELECT COALESCE((SELECT seq FROM ", t,
                                     " WHERE seq >= ?1 AND published_at IS NULL ORDER BY seq LIMIT 1),"
                                     " (SELECT MAX(seq) + 1 FROM ", t, "), ?1)"));
  // A key is held back from its first held row that is parked or waiting
  // for its retry time; rows before it, and rows of other keys, go in
  // sequence order.
  set(Sql::kClaim,
      herald::StrCat("WITH blocked(event_key, first_seq) AS MATERIALIZED ("
                     " SELECT event_key, MIN(seq) FROM ", t, " WHERE ", held,
                     " AND (parked_at IS NOT NULL OR available_at > ?1)"
                     " AND event_key IS NOT NULL AND event_key <> '' GROUP BY event_key) "
                     "SELECT ", kRecordColumns, " FROM ", t, " AS o"
                     " WHERE o.seq >= ?3 AND o.published_at IS NULL AND o.parked_at IS NULL AND o.available_at <= ?1"
                     " AND NOT EXISTS (SELECT 1 FROM blocked AS b WHERE b.event_key = o.event_key AND b.first_seq < o.seq)"
                     " ORDER BY o.seq LIMIT ?2"));
  set(Sql::kMarkPublished, herald::StrCat("UPDATE ", t, " SET published_at = ?1"
                                          " WHERE seq IN (SELECT value FROM json_each(?2)) AND published_at IS NULL"));
  set(Sql::kMarkFailed, herald::StrCat("UPDATE ", t,
                                       " SET attempts = attempts + 1, last_error = ?2, available_at = ?3,"
                                       " parked_at = CASE WHEN ?4 THEN ?5 ELSE NULL END"
                                       " WHERE seq = ?1 AND published_at IS NULL"));
  set(Sql::kRetryParked, herald::StrCat("UPDATE ", t, " SET parked_at = NULL, attempts = 0, available_at = ?1"
                                        " WHERE ", held, " AND parked_at IS NOT NULL"
                                        " AND (?2 IS NULL OR seq IN (SELECT value FROM json_each(?2)))"));
  // Never the row with the highest seq: seq is a plain INTEGER PRIMARY KEY
  // (no AUTOINCREMENT, whose sqlite_sequence update is one more page written
  // per append), so SQLite gives a new row MAX(seq) + 1, and deleting the
  // last row would hand its seq (and those below it) out again, under the
  // relays' low-water marks. The kept row is deleted by a later purge once a
  // newer row exists.
  set(Sql::kPurgePublished, herald::StrCat("DELETE FROM ", t, " WHERE seq IN (SELECT seq FROM ", t,
                                           " WHERE published_at IS NOT NULL AND published_at < ?1"
                                           " AND seq < (SELECT MAX(seq) FROM ", t, ")"
                                           " ORDER BY published_at LIMIT ?2)"));
  set(Sql::kStats, herald::StrCat("SELECT COUNT(*) FILTER (WHERE parked_at IS NULL),"
                                  " COUNT(*) FILTER (WHERE parked_at IS NOT NULL),"
                                  " MIN(created_at) FILTER (WHERE parked_at IS NULL)"
                                  " FROM ", t, " WHERE seq >= ?1 AND published_at IS NULL"));
  set(Sql::kListParked, herald::StrCat("SELECT ", kRecordColumns, " FROM ", t, " INDEXED BY ",
                                       Quote(options.outbox_table + "_held"), " WHERE ", held,
                                       " AND parked_at IS NOT NULL ORDER BY seq LIMIT ?1"));
  set(Sql::kLeaseAcquire, herald::StrCat("INSERT INTO ", lease, " (name, owner, expires_at) VALUES (?1, ?2, ?3)"
                                         " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,"
                                         " expires_at = excluded.expires_at WHERE ", lease, ".expires_at <= ?4 OR ",
                                         lease, ".owner = excluded.owner"));
  set(Sql::kLeaseRenew, herald::StrCat("UPDATE ", lease, " SET expires_at = ?3 WHERE name = ?1 AND owner = ?2"));
  set(Sql::kLeaseRelease, herald::StrCat("DELETE FROM ", lease, " WHERE name = ?1 AND owner = ?2"));
  set(Sql::kInboxInsert, herald::StrCat("INSERT INTO ", inbox, " (consumer, event_id, processed_at) VALUES (?1, ?2, ?3)"
                                        " ON CONFLICT DO NOTHING"));
  set(Sql::kInboxPurge, herald::StrCat("DELETE FROM ", inbox, " WHERE (consumer, event_id) IN (SELECT consumer, event_id FROM ",
                                       inbox, " WHERE processed_at < ?1 LIMIT ?2)"));
  return sql;
}

std::vector<Migration> Migrations(const SqliteOptions& options) {
  const std::string t = Quote(options.outbox_table);
  const std::string& n = options.outbox_table;
  std::vector<Migration> migrations;
  migrations.push_back(Migration{
      1,
      {
          herald::StrCat("CREATE TABLE IF NOT EXISTS ", t, " ("
                         // No AUTOINCREMENT: see kPurgePublished.
                         "seq INTEGER PRIMARY KEY, "
                         "event_id TEXT NOT NULL UNIQUE DEFAULT ", kSqlRandomUuid, ", "
                         "event_type TEXT NOT NULL, "
                         "topic TEXT NOT NULL, "
                         "event_key TEXT NULL, "
                         "headers TEXT NULL, "
                         "event_payload TEXT NOT NULL, "
                         "content_type TEXT NOT NULL DEFAULT 'application/json', "
                         "source TEXT NULL, "
                         "schema_version INTEGER NOT NULL DEFAULT 1, "
                         "occurred_at INTEGER NOT NULL DEFAULT ", kSqlNowMicros, ", "
                         "created_at INTEGER NOT NULL DEFAULT ", kSqlNowMicros, ", "
                         "available_at INTEGER NOT NULL DEFAULT ", kSqlNowMicros, ", "
                         "published_at INTEGER NULL, "
                         "parked_at INTEGER NULL, "
                         "attempts INTEGER NOT NULL DEFAULT 0, "
                         "last_error TEXT NULL)"),
          // Held rows (failed or parked): blocked keys, ListParked. Fresh rows
          // are not in it, so appends do not pay for it. Pending rows are
          // found by rowid from a low-water mark instead of a pending index
          // (every index on fresh rows is a page written per commit).
          herald::StrCat("CREATE INDEX IF NOT EXISTS ", Quote(n + "_held"), " ON ", t,
                         " (event_key, seq) WHERE published_at IS NULL AND (attempts > 0 OR parked_at IS NOT NULL)"),
          // Published rows, oldest first, for bounded purges (a row enters it
          // when marked, not when appended).
          herald::StrCat("CREATE INDEX IF NOT EXISTS ", Quote(n + "_published"), " ON ", t,
                         " (published_at) WHERE published_at IS NOT NULL"),
          herald::StrCat("CREATE TABLE IF NOT EXISTS ", Quote(options.inbox_table), " ("
                         "consumer TEXT NOT NULL, "
                         "event_id TEXT NOT NULL, "
                         "processed_at INTEGER NOT NULL DEFAULT ", kSqlNowMicros, ", "
                         "PRIMARY KEY (consumer, event_id)) WITHOUT ROWID"),
          herald::StrCat("CREATE INDEX IF NOT EXISTS ", Quote(options.inbox_table + "_processed_at"), " ON ",
                         Quote(options.inbox_table), " (processed_at)"),
          herald::StrCat("CREATE TABLE IF NOT EXISTS ", Quote(options.lease_table), " ("
                         "name TEXT PRIMARY KEY, "
                         "owner TEXT NOT NULL, "
                         "expires_at INTEGER NOT NULL)"),
      }});
  return migrations;
}

namespace {

absl::Status Exec(sqlite3* db, const std::string& sql, std::string_view operation) {
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  sqlite3_free(error);
  return SqliteStatus(rc, operation, db);
}

absl::Status MigrateInTransaction(sqlite3* db, const SqliteOptions& options, int64_t now_micros) {
  const std::string migrations_table = Quote(options.migrations_table);
  HERALD_RETURN_IF_ERROR(Exec(db,
                              herald::StrCat("CREATE TABLE IF NOT EXISTS ", migrations_table,
                                             " (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"),
                              "create the migrations table"));
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, herald::StrCat("SELECT COALESCE(MAX(version), 0) FROM ", migrations_table).c_str(),
                              -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(rc, "read the schema version", db);
  rc = sqlite3_step(stmt);
  int64_t current = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
  sqlite3_finalize(stmt);
  if (rc != SQLITE_ROW) return SqliteStatus(rc, "read the schema version", db);

  std::vector<Migration> migrations = Migrations(options);
  if (current > migrations.back().version) {
    return absl::FailedPreconditionError(herald::StrCat(
        "the outbox schema in ", options.path, " is at version ", current, ", newer than this build of herald knows (",
        migrations.back().version, "); upgrade herald"));
  }
  for (const Migration& m : migrations) {
    if (m.version <= current) continue;
    for (const std::string& statement : m.statements) {
      HERALD_RETURN_IF_ERROR(Exec(db, statement, herald::StrCat("migration ", m.version)));
    }
    HERALD_RETURN_IF_ERROR(Exec(db,
                                herald::StrCat("INSERT INTO ", migrations_table, " (version, applied_at) VALUES (",
                                               m.version, ", ", now_micros, ")"),
                                "record a migration"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Migrate(sqlite3* db, const SqliteOptions& options, int64_t now_micros) {
  HERALD_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE", "begin the migrations"));
  absl::Status status = MigrateInTransaction(db, options, now_micros);
  if (status.ok()) status = Exec(db, "COMMIT", "commit the migrations");
  if (!status.ok()) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  return status;
}

// ---- Connection ----

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const SqliteOptions& options, const SqlTexts* sql) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(options.path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteStatus(rc, herald::StrCat("open \"", options.path, "\""), db);
    sqlite3_close_v2(db);
    return status;
  }
  std::unique_ptr<Connection> connection(new Connection(db, sql));
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, static_cast<int>(absl::ToInt64Milliseconds(options.busy_timeout)));
  HERALD_RETURN_IF_ERROR(Exec(db,
                              herald::StrCat("PRAGMA synchronous = ", options.synchronous,
                                             "; PRAGMA secure_delete = ", options.secure_delete),
                              "set the connection's pragmas"));
  return connection;
}

Connection::~Connection() {
  for (sqlite3_stmt* stmt : statements_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

absl::StatusOr<sqlite3_stmt*> Connection::Get(Sql id) {
  sqlite3_stmt*& stmt = statements_[static_cast<int>(id)];
  if (stmt == nullptr) {
    const std::string& text = (*sql_)[static_cast<int>(id)];
    int rc = sqlite3_prepare_v3(db_, text.c_str(), static_cast<int>(text.size()) + 1, SQLITE_PREPARE_PERSISTENT,
                                &stmt, nullptr);
    if (rc != SQLITE_OK) {
      stmt = nullptr;
      return SqliteStatus(rc, "prepare a statement", db_);
    }
  }
  return stmt;
}

absl::Status Connection::Run(Sql id, std::string_view operation) {
  HERALD_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Get(id));
  int rc = sqlite3_step(stmt);
  sqlite3_reset(stmt);
  return SqliteStatus(rc, operation, db_);
}

// ---- WakeSignal and the process-wide registry ----

void WakeSignal::Notify() {
  MutexLock lock(mu_);
  ++generation_;
  cv_.NotifyAll();
}

void WakeSignal::Wait(absl::Duration timeout) {
  MutexLock lock(mu_);
  if (generation_ == seen_) {
    uint64_t entered = generation_;
    cv_.WaitFor(mu_, timeout, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return generation_ != entered; });
  }
  seen_ = generation_;
}

namespace {

struct WakeRegistry {
  Mutex mu;
  std::multimap<std::string, std::shared_ptr<WakeSignal>> signals ABSL_GUARDED_BY(mu);
};

WakeRegistry& Registry() {
  static WakeRegistry* registry = new WakeRegistry;  // never destroyed: hooks may run at exit
  return *registry;
}

}  // namespace

void RegisterWakeSignal(const std::string& file, std::shared_ptr<WakeSignal> signal) {
  WakeRegistry& r = Registry();
  MutexLock lock(r.mu);
  r.signals.emplace(file, std::move(signal));
}

void UnregisterWakeSignal(const std::string& file, const WakeSignal* signal) {
  WakeRegistry& r = Registry();
  MutexLock lock(r.mu);
  auto [begin, end] = r.signals.equal_range(file);
  for (auto it = begin; it != end; ++it) {
    if (it->second.get() == signal) {
      r.signals.erase(it);
      return;
    }
  }
}

void NotifyWakeSignals(const std::string& file) {
  std::vector<std::shared_ptr<WakeSignal>> to_wake;
  {
    WakeRegistry& r = Registry();
    MutexLock lock(r.mu);
    auto [begin, end] = r.signals.equal_range(file);
    for (auto it = begin; it != end; ++it) to_wake.push_back(it->second);
  }
  for (const auto& signal : to_wake) signal->Notify();
}

int WakeOnWalCommit(void*, sqlite3* db, const char* schema, int pages) {
  const char* file = sqlite3_db_filename(db, schema);
  if (file != nullptr && *file != '\0') NotifyWakeSignals(file);
  // What SQLite's default hook (sqlite3_wal_autocheckpoint(db, 1000)) does.
  if (pages >= 1000) sqlite3_wal_checkpoint(db, schema);
  return SQLITE_OK;
}

// ---- StoreState ----

StoreState::~StoreState() {
  if (!file.empty()) UnregisterWakeSignal(file, wake.get());
}

absl::StatusOr<Connection*> StoreState::Acquire() {
  {
    MutexLock lock(pool_mu_);
    if (!idle_.empty()) {
      Connection* c = idle_.back().release();
      idle_.pop_back();
      return c;
    }
  }
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<Connection> c, Connection::Open(options, &sql));
  return c.release();
}

void StoreState::Return(Connection* connection) {
  std::unique_ptr<Connection> c(connection);
  if (sqlite3_get_autocommit(c->db()) == 0 && !c->Run(Sql::kRollback, "roll back").ok()) return;  // closed
  MutexLock lock(pool_mu_);
  if (static_cast<int>(idle_.size()) < std::max(1, options.idle_connections)) idle_.push_back(std::move(c));
}

absl::Status StoreState::EnterWriter() {
  MutexLock lock(gate_mu_);
  bool free = gate_cv_.WaitFor(gate_mu_, options.busy_timeout,
                               [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(gate_mu_) { return !writer_; });
  if (!free) {
    return absl::UnavailableError(herald::StrCat(
        "sqlite: another write transaction of this process held the database for more than busy_timeout (",
        absl::FormatDuration(options.busy_timeout),
        "). Hint: keep transactions short, do not begin a second transaction on a thread that holds one, or raise "
        "SqliteOptions.busy_timeout."));
  }
  writer_ = true;
  return absl::OkStatus();
}

void StoreState::LeaveWriter() {
  MutexLock lock(gate_mu_);
  writer_ = false;
  gate_cv_.NotifyOne();
}

}  // namespace herald::sqlite::internal
