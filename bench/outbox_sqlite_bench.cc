// outbox_sqlite_bench: the SQLite outbox against its baselines, in one run.
//
// 1. Append cost. A business transaction (BEGIN IMMEDIATE, one business
//    INSERT, one event row, COMMIT) through herald (SqliteOutboxStore::
//    BeginTransaction + Append) against the same transaction on a plain
//    connection with a plain INSERT of the same bytes into a table with no
//    extra indexes. Target: ratio <= 1.15. A third variant inserts the same
//    row with raw SQL into a table with the outbox's own schema
//    (contract_sql): it splits the cost into what the table contract costs
//    in SQLite (the UNIQUE event_id index: one more B-tree page written to
//    the WAL per commit) and what herald's code adds on top
//    (herald_vs_contract_sql). A fourth does the same without the UNIQUE
//    index (no_unique_sql): the floor of any schema with a rowid sequence,
//    showing what event id uniqueness costs. A fifth is the business
//    transaction alone (BEGIN IMMEDIATE, the business INSERT, COMMIT; no
//    event row, business_alone): what the application pays anyway, so that
//    herald_vs_business_alone is what the outbox adds to it.
//    Every round runs the five variants back to back, in an order rotated
//    from round to round, so that each sees the same disk, cache and
//    neighbours (the machine may be shared and noisy). Each variant is timed
//    in wall-clock time and in CPU time of the process (user + system: what
//    the transaction costs, without the waits for a core or for the fsync of
//    a WAL checkpoint), and its WAL frames per commit are counted (a WAL hook
//    on every connection; each frame is one page written). Ratios are the
//    median, min and max of the per-round ratios.
//    With --writers (default 1,4), the whole measurement runs once per
//    writers count W: each round's transactions of a variant are split
//    between W threads committing at once, each with its own business rows
//    and its own handle: one plain connection per thread for the raw SQL
//    variants, and for herald one SqliteOutboxStore shared by the threads
//    (it is thread-safe and lends each transaction a pooled connection). The
//    W writers serialize on the database's single write lock: the raw SQL
//    threads wait in SQLite's busy handler (busy_timeout, which sleeps and
//    retries), herald's queue at the store's in-process writer gate first.
//    Times per transaction are then wall time over all W threads' commits
//    (the inverse of the throughput, *_tx_per_s), not one commit's latency;
//    CPU time is the whole process's. WAL frames are approximate for W > 1
//    (commits and their WAL hooks interleave).
// 2. Relay throughput: rows already committed (200-byte payloads, 1,000
//    keys), drained by the store's bare claim-mark-purge loop (no publishing)
//    and by OutboxRelay::RunOnce (claim, publish, mark, purge) to a bus that
//    acknowledges at once, for batch sizes 500, 1000, 2000 and 5000, with
//    the rows marked then purged (RelayOptions::retention of 1 ns) and
//    deleted at mark (retention zero: OutboxStore::DeletePublished),
//    alternating. purge_batch is the batch size, so that each
//    round leaves nothing to purge later. Target (issue 11, to Kafka):
//    >= 100,000 events/s. Measured once, after the append runs.
//
// Prints one JSON object per writers count (key "writers"), in the order of
// --writers; the relay figures are in the first. Build in Release. Usage:
//   outbox_sqlite_bench [--transactions=N] [--rounds=N] [--writers=1,4]
//                       [--relay_events=N] [--relay_rounds=N] [--dir=DIR]
#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "acking_transport.h"
#include "bench_flags.h"
#include "bench_writers.h"
#include "herald/core/bus.h"
#include "herald/core/relay.h"
#include "herald/core/uuid.h"
#include "herald/sqlite/sqlite_outbox_store.h"

ABSL_FLAG(int64_t, transactions, 20000, "transactions per variant and round");
ABSL_FLAG(int, rounds, 10, "rounds; the variants' order rotates per round");
ABSL_FLAG(std::vector<std::string>, writers, std::vector<std::string>({"1", "4"}),
          "writers counts: concurrent writer threads sharing each variant's transactions");
ABSL_FLAG(int64_t, relay_events, 50000, "rows per relay run");
ABSL_FLAG(int, relay_rounds, 3, "relay runs");
ABSL_FLAG(std::string, dir, "", "directory of the database files; default $TMPDIR, else /tmp");

namespace {

void Check(bool ok, std::string_view what) {
  if (!ok) {
    std::fprintf(stderr, "outbox_sqlite_bench: %.*s\n", static_cast<int>(what.size()), what.data());
    std::exit(1);
  }
}
void Check(const absl::Status& status, std::string_view what) {
  if (!status.ok()) {
    std::fprintf(stderr, "outbox_sqlite_bench: %.*s: %s\n", static_cast<int>(what.size()), what.data(),
                 status.ToString().c_str());
    std::exit(1);
  }
}
// The value of `result`, or exit like Check.
template <typename T>
T CheckValue(absl::StatusOr<T> result, std::string_view what) {
  Check(result.status(), what);
  return *std::move(result);
}

void Exec(sqlite3* db, const char* sql) { Check(sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK, sql); }

sqlite3_stmt* Prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  Check(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK, sql);
  return stmt;
}

void Step(sqlite3_stmt* stmt) {
  Check(sqlite3_step(stmt) == SQLITE_DONE, "step");
  sqlite3_reset(stmt);
}

constexpr char kBusinessInsert[] = "INSERT INTO orders (id, customer, amount_cents) VALUES (?1, ?2, ?3)";

void InsertBusinessRow(sqlite3_stmt* stmt, int64_t id) {
  sqlite3_bind_int64(stmt, 1, id);
  sqlite3_bind_text(stmt, 2, "customer-42", -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 3, 1999);
  Step(stmt);
}

herald::Envelope MakeEvent(int64_t n) {
  herald::Envelope e;
  e.time = absl::Now();
  e.id = herald::NewUuidV7(e.time);
  e.type = "order.placed";
  e.topic = "order-events";
  e.key = absl::StrCat("order-", n % 1000);
  e.source = "orders-service";
  e.payload = absl::StrCat(R"({"order_id":"order-)", n % 1000,
                           R"(","customer_id":"customer-42","amount_cents":1999,"currency":"EUR","items":3})");
  return e;
}

// CPU time of the process (user + system), in seconds.
double CpuSeconds() {
  timespec ts = {};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// {"min":..,"median":..,"max":..,"rounds":..} (bench/table.py reads it).
std::string Spread(const std::vector<double>& v, const char* format = "%.3f") {
  auto number = [&](double x) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, format, x);
    return std::string(buffer);
  };
  return absl::StrCat("{\"min\":", number(*std::min_element(v.begin(), v.end())), ",\"median\":", number(Median(v)),
                      ",\"max\":", number(*std::max_element(v.begin(), v.end())), ",\"rounds\":", v.size(), "}");
}

// The append variants, in the order of their WAL frame counters.
enum Variant { kPlain, kContract, kNoUnique, kHerald, kBusinessAlone };
constexpr int kVariants = 5;

// WAL frames written by commits, charged to the variant running: a WAL hook
// on every connection of the benchmark. It checkpoints as SQLite's default
// hook does (every 1000 frames), which it replaces. With several writers
// the hooks of interleaved commits make the count approximate.
struct WalCount {
  absl::Mutex mu;
  int variant ABSL_GUARDED_BY(mu) = 0;
  int last_frames ABSL_GUARDED_BY(mu) = 0;
  int64_t frames[kVariants] ABSL_GUARDED_BY(mu) = {};
};
WalCount wal_count;

int CountWalFrames(void*, sqlite3* db, const char* schema, int frames) {
  bool checkpoint = false;
  {
    absl::MutexLock lock(&wal_count.mu);
    // After a checkpoint the WAL starts again from its first frame.
    wal_count.frames[wal_count.variant] += frames >= wal_count.last_frames ? frames - wal_count.last_frames : frames;
    wal_count.last_frames = frames;
    checkpoint = frames >= 1000;
  }
  if (checkpoint) sqlite3_wal_checkpoint(db, schema);
  return SQLITE_OK;
}

// Fills `store` with `n` committed rows, 1,000 per transaction.
void Fill(herald::sqlite::SqliteOutboxStore& store, int64_t n) {
  for (int64_t i = 0; i < n; i += 1000) {
    auto tx = CheckValue(store.BeginTransaction(), "begin");
    for (int64_t j = i; j < i + 1000 && j < n; ++j) Check(store.Append(*tx, MakeEvent(j)), "append");
    Check(tx->Commit(), "commit");
  }
}

// Rows per second of wall-clock time and per second of the process's CPU
// time (steadier on a shared machine).
struct Rate {
  double wall = 0;
  double cpu = 0;
};

// The store's own statements in a loop, nothing published: claim, mark
// (or delete at mark), purge.
Rate BareLoop(herald::sqlite::SqliteOutboxStore& store, int64_t n, int batch, bool delete_at_mark) {
  Fill(store, n);
  absl::Time start = absl::Now();
  const double cpu_start = CpuSeconds();
  int64_t done = 0;
  while (true) {
    std::vector<herald::OutboxRecord> rows = CheckValue(store.FetchPendingBatch({.limit = batch}), "claim");
    if (rows.empty()) break;
    std::vector<int64_t> sequences;
    sequences.reserve(rows.size());
    for (const herald::OutboxRecord& r : rows) sequences.push_back(r.sequence);
    Check(delete_at_mark ? store.DeletePublished(sequences) : store.MarkPublished(sequences), "mark");
    Check(store.PurgePublished(absl::Now(), batch).status(), "purge");
    done += static_cast<int64_t>(rows.size());
  }
  Check(done == n, "the bare loop lost rows");
  return Rate{static_cast<double>(done) / absl::ToDoubleSeconds(absl::Now() - start),
              static_cast<double>(done) / (CpuSeconds() - cpu_start)};
}

// OutboxRelay::RunOnce to a bus that acknowledges at once; with
// `delete_at_mark` the relay's default retention (zero), otherwise 1 ns
// (marked, then purged in the same round).
Rate RelayLoop(herald::sqlite::SqliteOutboxStore& store, int64_t n, int batch, bool delete_at_mark) {
  Fill(store, n);
  herald::Bus bus(std::make_unique<herald::bench::AckingTransport>());
  auto& acked = bus.transport<herald::bench::AckingTransport>();
  herald::RelayOptions relay_options;
  relay_options.batch_size = batch;
  relay_options.purge_batch = batch;
  relay_options.retention = delete_at_mark ? absl::ZeroDuration() : absl::Nanoseconds(1);
  herald::OutboxRelay relay(store, bus, relay_options);
  absl::Time start = absl::Now();
  const double cpu_start = CpuSeconds();
  while (CheckValue(relay.RunOnce(), "relay") > 0) {
  }
  const double cpu_seconds = CpuSeconds() - cpu_start;
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  Check(acked.published() == n, "the relay lost rows");
  return Rate{static_cast<double>(n) / seconds, static_cast<double>(n) / cpu_seconds};
}

// One writer thread's own connection and statements for the raw SQL
// variants (business rows, plain events, contract and no-unique tables).
struct Writer {
  sqlite3* db = nullptr;
  sqlite3_stmt* begin = nullptr;
  sqlite3_stmt* commit = nullptr;
  sqlite3_stmt* business = nullptr;
  sqlite3_stmt* plain_event = nullptr;
  sqlite3_stmt* contract_event = nullptr;
  sqlite3_stmt* no_unique_event = nullptr;
  int64_t next_order = 0;  // its own business rows' ids

  void Open(const std::string& path) {
    Check(sqlite3_open(path.c_str(), &db) == SQLITE_OK, "open a baseline connection");
    Exec(db, "PRAGMA synchronous = NORMAL");
    sqlite3_busy_timeout(db, 60000);
    sqlite3_wal_hook(db, &CountWalFrames, nullptr);
    begin = Prepare(db, "BEGIN IMMEDIATE");
    commit = Prepare(db, "COMMIT");
    business = Prepare(db, kBusinessInsert);
    plain_event = Prepare(db,
                          "INSERT INTO plain_events (id, event_type, topic, event_key, source, payload, occurred_at) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    contract_event =
        Prepare(db,
                "INSERT INTO bench_raw_outbox (event_id, event_type, topic, event_key, headers, event_payload, "
                "content_type, source, schema_version, occurred_at, created_at, available_at) "
                "VALUES (?1, ?2, ?3, ?4, NULL, ?5, 'application/json', ?6, 1, ?7, ?8, ?8)");
    no_unique_event =
        Prepare(db,
                "INSERT INTO bench_no_unique (event_id, event_type, topic, event_key, headers, event_payload, "
                "content_type, source, schema_version, occurred_at, created_at, available_at) "
                "VALUES (?1, ?2, ?3, ?4, NULL, ?5, 'application/json', ?6, 1, ?7, ?8, ?8)");
  }
  void Close() {
    for (sqlite3_stmt* stmt : {begin, commit, business, plain_event, contract_event, no_unique_event}) {
      sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
  }

  // The business transaction alone: no event row.
  void BusinessAlone() {
    Step(begin);
    InsertBusinessRow(business, next_order++);
    Step(commit);
  }
  // Business row + the event's bytes in a plain table.
  void Plain() {
    const int64_t order = next_order++;
    herald::Envelope e = MakeEvent(order);
    Step(begin);
    InsertBusinessRow(business, order);
    sqlite3_bind_text(plain_event, 1, e.id.data(), static_cast<int>(e.id.size()), SQLITE_STATIC);
    sqlite3_bind_text(plain_event, 2, e.type.data(), static_cast<int>(e.type.size()), SQLITE_STATIC);
    sqlite3_bind_text(plain_event, 3, e.topic.data(), static_cast<int>(e.topic.size()), SQLITE_STATIC);
    sqlite3_bind_text(plain_event, 4, e.key.data(), static_cast<int>(e.key.size()), SQLITE_STATIC);
    sqlite3_bind_text(plain_event, 5, e.source.data(), static_cast<int>(e.source.size()), SQLITE_STATIC);
    sqlite3_bind_text(plain_event, 6, e.payload.data(), static_cast<int>(e.payload.size()), SQLITE_STATIC);
    sqlite3_bind_int64(plain_event, 7, absl::ToUnixMicros(e.time));
    Step(plain_event);
    Step(commit);
  }
  // Business row + an outbox-shaped row with raw SQL (`event`: the contract
  // or the no-unique table).
  void RawSql(sqlite3_stmt* event) {
    const int64_t order = next_order++;
    herald::Envelope e = MakeEvent(order);
    Step(begin);
    InsertBusinessRow(business, order);
    sqlite3_bind_text(event, 1, e.id.data(), static_cast<int>(e.id.size()), SQLITE_STATIC);
    sqlite3_bind_text(event, 2, e.type.data(), static_cast<int>(e.type.size()), SQLITE_STATIC);
    sqlite3_bind_text(event, 3, e.topic.data(), static_cast<int>(e.topic.size()), SQLITE_STATIC);
    sqlite3_bind_text(event, 4, e.key.data(), static_cast<int>(e.key.size()), SQLITE_STATIC);
    sqlite3_bind_text(event, 5, e.payload.data(), static_cast<int>(e.payload.size()), SQLITE_STATIC);
    sqlite3_bind_text(event, 6, e.source.data(), static_cast<int>(e.source.size()), SQLITE_STATIC);
    sqlite3_bind_int64(event, 7, absl::ToUnixMicros(e.time));
    sqlite3_bind_int64(event, 8, absl::ToUnixMicros(absl::Now()));
    Step(event);
    Step(commit);
  }
};

// herald's business statement, prepared once per pooled connection (which
// also gets the WAL frame counter). Shared by the writer threads: a pooled
// connection serves one transaction, hence one thread, at a time.
class HeraldBusiness {
 public:
  sqlite3_stmt* For(sqlite3* db) {
    absl::MutexLock lock(&mu_);
    for (auto& [d, s] : statements_) {
      if (d == db) return s;
    }
    sqlite3_wal_hook(db, &CountWalFrames, nullptr);
    statements_.emplace_back(db, Prepare(db, kBusinessInsert));
    return statements_.back().second;
  }
  void FinalizeAll() {
    absl::MutexLock lock(&mu_);
    for (auto& [db, stmt] : statements_) sqlite3_finalize(stmt);
    statements_.clear();
  }

 private:
  absl::Mutex mu_;
  std::vector<std::pair<sqlite3*, sqlite3_stmt*>> statements_ ABSL_GUARDED_BY(mu_);
};

std::string Number(double x, const char* format = "%.2f") {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, x);
  return buffer;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int64_t transactions = absl::GetFlag(FLAGS_transactions);
  const int rounds = std::max(1, absl::GetFlag(FLAGS_rounds));
  const int64_t relay_events = absl::GetFlag(FLAGS_relay_events);
  const int relay_rounds = std::max(1, absl::GetFlag(FLAGS_relay_rounds));
  const std::vector<int> writers_counts =
      herald_bench::PositiveInts("outbox_sqlite_bench", "writers", absl::GetFlag(FLAGS_writers));
  Check(!writers_counts.empty(), "--writers is empty");
  const int max_writers = *std::max_element(writers_counts.begin(), writers_counts.end());
  std::string dir = absl::GetFlag(FLAGS_dir);
  if (dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    dir = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
  }
  const std::string path = absl::StrCat(dir, "/herald_outbox_sqlite_bench_", getpid(), ".db");

  herald::sqlite::SqliteOptions options;
  options.path = path;
  // One pooled connection per writer thread stays open (the business
  // statements prepared on it stay valid), and queued writers do not time out.
  options.idle_connections = std::max(4, max_writers + 1);
  options.busy_timeout = absl::Seconds(60);
  std::unique_ptr<herald::sqlite::SqliteOutboxStore> opened =
      CheckValue(herald::sqlite::SqliteOutboxStore::Open(options), "open the store");
  herald::sqlite::SqliteOutboxStore& store = *opened;

  // The baselines' tables, created on a connection of their own.
  sqlite3* setup = nullptr;
  Check(sqlite3_open(path.c_str(), &setup) == SQLITE_OK, "open the setup connection");
  sqlite3_busy_timeout(setup, 5000);
  Exec(setup, "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, amount_cents INTEGER)");
  Exec(setup,
       "CREATE TABLE plain_events (id TEXT, event_type TEXT, topic TEXT, event_key TEXT, source TEXT, payload TEXT, "
       "occurred_at INTEGER)");
  // The same schema as herald's outbox, written with raw SQL.
  {
    herald::sqlite::SqliteOptions raw_options = options;
    raw_options.outbox_table = "bench_raw_outbox";
    raw_options.inbox_table = "bench_raw_inbox";
    raw_options.lease_table = "bench_raw_leases";
    raw_options.migrations_table = "bench_raw_migrations";
    Check(herald::sqlite::SqliteOutboxStore::Open(raw_options).status(), "create the raw outbox table");
  }
  // The same table without the UNIQUE event_id index.
  {
    sqlite3_stmt* ddl =
        Prepare(setup, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'bench_raw_outbox'");
    Check(sqlite3_step(ddl) == SQLITE_ROW, "read the raw outbox table's schema");
    std::string sql = reinterpret_cast<const char*>(sqlite3_column_text(ddl, 0));
    sqlite3_finalize(ddl);
    for (auto [from, to] : {std::pair<std::string_view, std::string_view>{"\"bench_raw_outbox\"", "bench_no_unique"},
                            {"NOT NULL UNIQUE", "NOT NULL"}}) {
      size_t at = sql.find(from);
      Check(at != std::string::npos, "derive the no-unique table's schema");
      sql.replace(at, from.size(), to);
    }
    Exec(setup, sql.c_str());
  }
  sqlite3_close(setup);

  // Each writer thread's own connection and business rows (ids 2^40 apart).
  std::vector<Writer> raw_writers(max_writers);
  for (int w = 0; w < max_writers; ++w) {
    raw_writers[w].Open(path);
    raw_writers[w].next_order = (int64_t{1} << 40) * w + 1;
  }
  // herald's writers: the shared store, their own business rows.
  std::vector<int64_t> herald_next_order(max_writers);
  for (int w = 0; w < max_writers; ++w) herald_next_order[w] = (int64_t{1} << 40) * w + (int64_t{1} << 39);
  HeraldBusiness herald_business;

  auto herald_transaction = [&](int w) {
    const int64_t order = herald_next_order[w]++;
    herald::Envelope e = MakeEvent(order);
    auto tx = CheckValue(store.BeginTransaction(), "begin");
    InsertBusinessRow(herald_business.For(tx->db()), order);
    Check(store.Append(*tx, e), "append");
    Check(tx->Commit(), "commit");
  };
  // `count` transactions of variant `v` by writer `w`.
  auto run = [&](int v, int w, int64_t count) {
    Writer& raw = raw_writers[w];
    for (int64_t i = 0; i < count; ++i) {
      switch (v) {
        case kBusinessAlone:
          raw.BusinessAlone();
          break;
        case kPlain:
          raw.Plain();
          break;
        case kContract:
          raw.RawSql(raw.contract_event);
          break;
        case kNoUnique:
          raw.RawSql(raw.no_unique_event);
          break;
        default:
          herald_transaction(w);
      }
    }
  };

  // One JSON object's append figures per writers count.
  std::vector<std::string> append_json;
  for (const int writers : writers_counts) {
    {
      absl::MutexLock lock(&wal_count.mu);
      for (int64_t& frames : wal_count.frames) frames = 0;
    }
    double wall[kVariants] = {}, cpu[kVariants] = {};
    std::vector<double> herald_ratios, contract_ratios, no_unique_ratios, herald_cpu_ratios, contract_cpu_ratios,
        no_unique_cpu_ratios, herald_vs_contract_ratios, herald_vs_contract_cpu_ratios, herald_vs_business_ratios,
        herald_vs_business_cpu_ratios, plain_vs_business_ratios, plain_vs_business_cpu_ratios;
    std::vector<double> per_s[kVariants];
    // Each round's transactions of a variant, split evenly between the writers.
    const int64_t per_writer = std::max<int64_t>(1, transactions / rounds / writers);
    const int64_t n = per_writer * writers;
    for (int round = 0; round < rounds + 1; ++round) {  // round 0 warms up
      double round_wall[kVariants] = {}, round_cpu[kVariants] = {};
      for (int k = 0; k < kVariants; ++k) {
        const int v = (round + k) % kVariants;  // rotated: no variant always runs first
        {
          absl::MutexLock lock(&wal_count.mu);
          wal_count.variant = v;
        }
        absl::Time start = absl::Now();
        double cpu_start = CpuSeconds();
        herald_bench::RunWriters(writers, per_writer, [&](int w, int64_t count) { run(v, w, count); });
        round_cpu[v] = CpuSeconds() - cpu_start;
        round_wall[v] = absl::ToDoubleSeconds(absl::Now() - start);
      }
      if (round == 0) {
        absl::MutexLock lock(&wal_count.mu);
        for (int64_t& frames : wal_count.frames) frames = 0;
        continue;
      }
      for (int v = 0; v < kVariants; ++v) {
        wall[v] += round_wall[v];
        cpu[v] += round_cpu[v];
        per_s[v].push_back(static_cast<double>(n) / round_wall[v]);
      }
      herald_ratios.push_back(round_wall[kHerald] / round_wall[kPlain]);
      contract_ratios.push_back(round_wall[kContract] / round_wall[kPlain]);
      no_unique_ratios.push_back(round_wall[kNoUnique] / round_wall[kPlain]);
      herald_vs_contract_ratios.push_back(round_wall[kHerald] / round_wall[kContract]);
      herald_vs_business_ratios.push_back(round_wall[kHerald] / round_wall[kBusinessAlone]);
      plain_vs_business_ratios.push_back(round_wall[kPlain] / round_wall[kBusinessAlone]);
      herald_cpu_ratios.push_back(round_cpu[kHerald] / round_cpu[kPlain]);
      contract_cpu_ratios.push_back(round_cpu[kContract] / round_cpu[kPlain]);
      no_unique_cpu_ratios.push_back(round_cpu[kNoUnique] / round_cpu[kPlain]);
      herald_vs_contract_cpu_ratios.push_back(round_cpu[kHerald] / round_cpu[kContract]);
      herald_vs_business_cpu_ratios.push_back(round_cpu[kHerald] / round_cpu[kBusinessAlone]);
      plain_vs_business_cpu_ratios.push_back(round_cpu[kPlain] / round_cpu[kBusinessAlone]);
    }
    const double measured = static_cast<double>(n * rounds);
    auto us = [&](const double* total, int v) { return Number(total[v] * 1e6 / measured); };
    int64_t wal_frames[kVariants];
    {
      absl::MutexLock lock(&wal_count.mu);
      for (int v = 0; v < kVariants; ++v) wal_frames[v] = wal_count.frames[v];
    }
    auto frames = [&](int v) { return Number(static_cast<double>(wal_frames[v]) / measured); };
    append_json.push_back(absl::StrCat(
        "{\"benchmark\":\"outbox_sqlite\",\"writers\":", writers, ",\"transactions\":", n * rounds,
        ",\"rounds\":", rounds, ",\"plain_insert_tx_us\":", us(wall, kPlain),
        ",\"no_unique_sql_tx_us\":", us(wall, kNoUnique), ",\"contract_sql_tx_us\":", us(wall, kContract),
        ",\"outbox_append_tx_us\":", us(wall, kHerald), ",\"plain_insert_cpu_us\":", us(cpu, kPlain),
        ",\"no_unique_sql_cpu_us\":", us(cpu, kNoUnique), ",\"contract_sql_cpu_us\":", us(cpu, kContract),
        ",\"outbox_append_cpu_us\":", us(cpu, kHerald), ",\"wal_frames_per_tx\":{\"plain\":", frames(kPlain),
        ",\"no_unique_sql\":", frames(kNoUnique), ",\"contract_sql\":", frames(kContract),
        ",\"herald\":", frames(kHerald), ",\"business_alone\":", frames(kBusinessAlone), "}",
        ",\"append_ratio\":", Spread(herald_ratios), ",\"append_cpu_ratio\":", Spread(herald_cpu_ratios),
        ",\"append_ratio_target\":1.15", ",\"contract_sql_ratio\":", Spread(contract_ratios),
        ",\"contract_sql_cpu_ratio\":", Spread(contract_cpu_ratios), ",\"no_unique_sql_ratio\":",
        Spread(no_unique_ratios), ",\"no_unique_sql_cpu_ratio\":", Spread(no_unique_cpu_ratios),
        ",\"herald_vs_contract_sql_ratio\":", Spread(herald_vs_contract_ratios),
        ",\"herald_vs_contract_sql_cpu_ratio\":", Spread(herald_vs_contract_cpu_ratios),
        ",\"business_alone_tx_us\":", us(wall, kBusinessAlone), ",\"business_alone_cpu_us\":", us(cpu, kBusinessAlone),
        ",\"herald_vs_business_alone_ratio\":", Spread(herald_vs_business_ratios),
        ",\"herald_vs_business_alone_cpu_ratio\":", Spread(herald_vs_business_cpu_ratios),
        ",\"plain_vs_business_alone_ratio\":", Spread(plain_vs_business_ratios),
        ",\"plain_vs_business_alone_cpu_ratio\":", Spread(plain_vs_business_cpu_ratios),
        ",\"business_alone_tx_per_s\":", Spread(per_s[kBusinessAlone], "%.0f"), ",\"plain_insert_tx_per_s\":",
        Spread(per_s[kPlain], "%.0f"), ",\"no_unique_sql_tx_per_s\":", Spread(per_s[kNoUnique], "%.0f"),
        ",\"contract_sql_tx_per_s\":", Spread(per_s[kContract], "%.0f"),
        ",\"outbox_append_tx_per_s\":", Spread(per_s[kHerald], "%.0f")));
  }

  // Relay: batch-size curve, mark-then-purge against delete at mark.
  const int batches[] = {500, 1000, 2000, 5000};
  constexpr int kBatches = 4;
  // [batch][0: mark then purge, 1: delete at mark]
  std::vector<double> bare[kBatches][2], relayed[kBatches][2], bare_cpu[kBatches][2], relayed_cpu[kBatches][2];
  std::vector<double> bare_gain[kBatches], relay_gain[kBatches], relay_cpu_gain[kBatches];
  int store_counter = 0;
  for (int round = 0; round < relay_rounds; ++round) {
    for (int b = 0; b < kBatches; ++b) {
      Rate bare_rate[2], relay_rate[2];
      for (int k = 0; k < 2; ++k) {
        const int mode = (round + k) % 2;  // alternating which goes first
        herald::sqlite::SqliteOptions relay_store_options;
        relay_store_options.path =
            absl::StrCat(dir, "/herald_outbox_sqlite_bench_", getpid(), "_relay_", ++store_counter, ".db");
        {
          auto relay_store =
              CheckValue(herald::sqlite::SqliteOutboxStore::Open(relay_store_options), "open a relay store");
          bare_rate[mode] = BareLoop(*relay_store, relay_events, batches[b], /*delete_at_mark=*/mode == 1);
          relay_rate[mode] = RelayLoop(*relay_store, relay_events, batches[b], /*delete_at_mark=*/mode == 1);
        }
        for (const char* suffix : {"", "-wal", "-shm"}) std::remove((relay_store_options.path + suffix).c_str());
      }
      for (int mode = 0; mode < 2; ++mode) {
        bare[b][mode].push_back(bare_rate[mode].wall);
        relayed[b][mode].push_back(relay_rate[mode].wall);
        bare_cpu[b][mode].push_back(bare_rate[mode].cpu);
        relayed_cpu[b][mode].push_back(relay_rate[mode].cpu);
      }
      bare_gain[b].push_back(bare_rate[1].wall / bare_rate[0].wall);
      relay_gain[b].push_back(relay_rate[1].wall / relay_rate[0].wall);
      relay_cpu_gain[b].push_back(relay_rate[1].cpu / relay_rate[0].cpu);
    }
  }
  std::string relay_json;
  for (int b = 0; b < kBatches; ++b) {
    absl::StrAppend(&relay_json, b > 0 ? "," : "", "\"batch_", batches[b], "\":{",
                    "\"bare_claim_mark_purge_per_s\":", Spread(bare[b][0], "%.0f"),
                    ",\"bare_claim_delete_per_s\":", Spread(bare[b][1], "%.0f"),
                    ",\"relay_mark_purge_per_s\":", Spread(relayed[b][0], "%.0f"),
                    ",\"relay_delete_at_mark_per_s\":", Spread(relayed[b][1], "%.0f"),
                    ",\"bare_claim_mark_purge_per_cpu_s\":", Spread(bare_cpu[b][0], "%.0f"),
                    ",\"bare_claim_delete_per_cpu_s\":", Spread(bare_cpu[b][1], "%.0f"),
                    ",\"relay_mark_purge_per_cpu_s\":", Spread(relayed_cpu[b][0], "%.0f"),
                    ",\"relay_delete_at_mark_per_cpu_s\":", Spread(relayed_cpu[b][1], "%.0f"),
                    ",\"bare_delete_over_mark_ratio\":", Spread(bare_gain[b]),
                    ",\"relay_delete_over_mark_ratio\":", Spread(relay_gain[b]),
                    ",\"relay_delete_over_mark_cpu_ratio\":", Spread(relay_cpu_gain[b]), "}");
  }

  for (size_t i = 0; i < append_json.size(); ++i) {
    // The relay figures go with the first object.
    const std::string relay_part = i == 0 ? absl::StrCat(",\"relay_events\":", relay_events,
                                                         ",\"relay_target_per_s\":100000,\"relay\":{", relay_json, "}")
                                          : "";
    std::printf("%s%s}\n", append_json[i].c_str(), relay_part.c_str());
  }

  herald_business.FinalizeAll();
  for (Writer& w : raw_writers) w.Close();
  opened.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
  return 0;
}
