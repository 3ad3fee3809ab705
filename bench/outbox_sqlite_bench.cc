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
//    showing what event id uniqueness costs.
//    Every round runs the four variants back to back, in an order rotated
//    from round to round, so that each sees the same disk, cache and
//    neighbours (the machine may be shared and noisy). Each variant is timed
//    in wall-clock time and in CPU time of the process (user + system: what
//    the transaction costs, without the waits for a core or for the fsync of
//    a WAL checkpoint), and its WAL frames per commit are counted (a WAL hook
//    on every connection; each frame is one page written). Ratios are the
//    median, min and max of the per-round ratios.
// 2. Relay throughput: rows already committed (200-byte payloads, 1,000
//    keys), drained by the store's bare claim-mark-purge loop (no publishing)
//    and by OutboxRelay::RunOnce (claim, publish, mark, purge) to a bus that
//    acknowledges at once, for batch sizes 500, 1000, 2000 and 5000, with
//    the rows marked then purged (RelayOptions::retention of 1 ns) and
//    deleted at mark (retention zero: OutboxStore::DeletePublished),
//    alternating. purge_batch is the batch size, so that each
//    round leaves nothing to purge later. Target (issue 11, to Kafka):
//    >= 100,000 events/s.
//
// Prints one JSON object. Build in Release. Usage:
//   outbox_sqlite_bench [--transactions=N] [--rounds=N] [--relay_events=N]
//                       [--relay_rounds=N] [--dir=DIR]
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
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "acking_transport.h"
#include "herald/core/bus.h"
#include "herald/core/relay.h"
#include "herald/core/uuid.h"
#include "herald/sqlite/sqlite_outbox_store.h"

ABSL_FLAG(int64_t, transactions, 20000, "transactions per variant and round");
ABSL_FLAG(int, rounds, 10, "rounds; the variants' order rotates per round");
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

// WAL frames written by commits, charged to the variant running: a WAL hook
// on every connection of the benchmark. It checkpoints as SQLite's default
// hook does (every 1000 frames), which it replaces.
struct WalCount {
  int variant = 0;
  int last_frames = 0;
  int64_t frames[4] = {0, 0, 0, 0};
};
WalCount wal_count;

int CountWalFrames(void*, sqlite3* db, const char* schema, int frames) {
  // After a checkpoint the WAL starts again from its first frame.
  wal_count.frames[wal_count.variant] += frames >= wal_count.last_frames ? frames - wal_count.last_frames : frames;
  wal_count.last_frames = frames;
  if (frames >= 1000) sqlite3_wal_checkpoint(db, schema);
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

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int64_t transactions = absl::GetFlag(FLAGS_transactions);
  const int rounds = std::max(1, absl::GetFlag(FLAGS_rounds));
  const int64_t relay_events = absl::GetFlag(FLAGS_relay_events);
  const int relay_rounds = std::max(1, absl::GetFlag(FLAGS_relay_rounds));
  std::string dir = absl::GetFlag(FLAGS_dir);
  if (dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    dir = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
  }
  const std::string path = absl::StrCat(dir, "/herald_outbox_sqlite_bench_", getpid(), ".db");

  herald::sqlite::SqliteOptions options;
  options.path = path;
  std::unique_ptr<herald::sqlite::SqliteOutboxStore> opened =
      CheckValue(herald::sqlite::SqliteOutboxStore::Open(options), "open the store");
  herald::sqlite::SqliteOutboxStore& store = *opened;

  // The baseline's own connection, same file, same pragmas.
  sqlite3* plain = nullptr;
  Check(sqlite3_open(path.c_str(), &plain) == SQLITE_OK, "open the baseline connection");
  Exec(plain, "PRAGMA synchronous = NORMAL");
  sqlite3_busy_timeout(plain, 5000);
  sqlite3_wal_hook(plain, &CountWalFrames, nullptr);
  Exec(plain, "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, amount_cents INTEGER)");
  Exec(plain,
       "CREATE TABLE plain_events (id TEXT, event_type TEXT, topic TEXT, event_key TEXT, source TEXT, payload TEXT, "
       "occurred_at INTEGER)");
  sqlite3_stmt* plain_business = Prepare(plain, kBusinessInsert);
  sqlite3_stmt* plain_event =
      Prepare(plain,
              "INSERT INTO plain_events (id, event_type, topic, event_key, source, payload, occurred_at) "
              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  sqlite3_stmt* plain_begin = Prepare(plain, "BEGIN IMMEDIATE");
  sqlite3_stmt* plain_commit = Prepare(plain, "COMMIT");

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
        Prepare(plain, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'bench_raw_outbox'");
    Check(sqlite3_step(ddl) == SQLITE_ROW, "read the raw outbox table's schema");
    std::string sql = reinterpret_cast<const char*>(sqlite3_column_text(ddl, 0));
    sqlite3_finalize(ddl);
    for (auto [from, to] : {std::pair<std::string_view, std::string_view>{"\"bench_raw_outbox\"", "bench_no_unique"},
                            {"NOT NULL UNIQUE", "NOT NULL"}}) {
      size_t at = sql.find(from);
      Check(at != std::string::npos, "derive the no-unique table's schema");
      sql.replace(at, from.size(), to);
    }
    Exec(plain, sql.c_str());
  }
  sqlite3_stmt* no_unique_event =
      Prepare(plain,
              "INSERT INTO bench_no_unique (event_id, event_type, topic, event_key, headers, event_payload, "
              "content_type, source, schema_version, occurred_at, created_at, available_at) "
              "VALUES (?1, ?2, ?3, ?4, NULL, ?5, 'application/json', ?6, 1, ?7, ?8, ?8)");
  sqlite3_stmt* contract_event =
      Prepare(plain,
              "INSERT INTO bench_raw_outbox (event_id, event_type, topic, event_key, headers, event_payload, "
              "content_type, source, schema_version, occurred_at, created_at, available_at) "
              "VALUES (?1, ?2, ?3, ?4, NULL, ?5, 'application/json', ?6, 1, ?7, ?8, ?8)");

  // herald's business statement, prepared once per pooled connection (which
  // also gets the WAL frame counter).
  std::vector<std::pair<sqlite3*, sqlite3_stmt*>> herald_business;
  auto business_for = [&](sqlite3* db) {
    for (auto& [d, s] : herald_business) {
      if (d == db) return s;
    }
    sqlite3_wal_hook(db, &CountWalFrames, nullptr);
    herald_business.emplace_back(db, Prepare(db, kBusinessInsert));
    return herald_business.back().second;
  };

  // One transaction with raw SQL: business row + `event` row.
  auto raw_sql_transaction = [&](sqlite3_stmt* event, int64_t order) {
    herald::Envelope e = MakeEvent(order);
    Step(plain_begin);
    InsertBusinessRow(plain_business, order);
    sqlite3_bind_text(event, 1, e.id.data(), static_cast<int>(e.id.size()), SQLITE_STATIC);
    sqlite3_bind_text(event, 2, e.type.data(), static_cast<int>(e.type.size()), SQLITE_STATIC);
    sqlite3_bind_text(event, 3, e.topic.data(), static_cast<int>(e.topic.size()), SQLITE_STATIC);
    sqlite3_bind_text(event, 4, e.key.data(), static_cast<int>(e.key.size()), SQLITE_STATIC);
    sqlite3_bind_text(event, 5, e.payload.data(), static_cast<int>(e.payload.size()), SQLITE_STATIC);
    sqlite3_bind_text(event, 6, e.source.data(), static_cast<int>(e.source.size()), SQLITE_STATIC);
    sqlite3_bind_int64(event, 7, absl::ToUnixMicros(e.time));
    sqlite3_bind_int64(event, 8, absl::ToUnixMicros(absl::Now()));
    Step(event);
    Step(plain_commit);
  };
  auto plain_transaction = [&](int64_t order) {
    herald::Envelope e = MakeEvent(order);
    Step(plain_begin);
    InsertBusinessRow(plain_business, order);
    sqlite3_bind_text(plain_event, 1, e.id.data(), static_cast<int>(e.id.size()), SQLITE_STATIC);
    sqlite3_bind_text(plain_event, 2, e.type.data(), static_cast<int>(e.type.size()), SQLITE_STATIC);
    sqlite3_bind_text(plain_event, 3, e.topic.data(), static_cast<int>(e.topic.size()), SQLITE_STATIC);
    sqlite3_bind_text(plain_event, 4, e.key.data(), static_cast<int>(e.key.size()), SQLITE_STATIC);
    sqlite3_bind_text(plain_event, 5, e.source.data(), static_cast<int>(e.source.size()), SQLITE_STATIC);
    sqlite3_bind_text(plain_event, 6, e.payload.data(), static_cast<int>(e.payload.size()), SQLITE_STATIC);
    sqlite3_bind_int64(plain_event, 7, absl::ToUnixMicros(e.time));
    Step(plain_event);
    Step(plain_commit);
  };
  auto herald_transaction = [&](int64_t order) {
    herald::Envelope e = MakeEvent(order);
    auto tx = CheckValue(store.BeginTransaction(), "begin");
    InsertBusinessRow(business_for(tx->db()), order);
    Check(store.Append(*tx, e), "append");
    Check(tx->Commit(), "commit");
  };

  enum Variant { kPlain, kContract, kNoUnique, kHerald };
  constexpr int kVariants = 4;
  int64_t next_order = 1;
  double wall[kVariants] = {}, cpu[kVariants] = {};
  std::vector<double> herald_ratios, contract_ratios, no_unique_ratios, herald_cpu_ratios, contract_cpu_ratios,
      no_unique_cpu_ratios, herald_vs_contract_ratios, herald_vs_contract_cpu_ratios;
  const int64_t n = std::max<int64_t>(1, transactions / rounds);
  for (int round = 0; round < rounds + 1; ++round) {  // round 0 warms up
    double round_wall[kVariants] = {}, round_cpu[kVariants] = {};
    for (int k = 0; k < kVariants; ++k) {
      const int v = (round + k) % kVariants;  // rotated: no variant always runs first
      wal_count.variant = v;
      absl::Time start = absl::Now();
      double cpu_start = CpuSeconds();
      for (int64_t i = 0; i < n; ++i) {
        switch (v) {
          case kPlain:
            plain_transaction(next_order++);
            break;
          case kContract:
            raw_sql_transaction(contract_event, next_order++);
            break;
          case kNoUnique:
            raw_sql_transaction(no_unique_event, next_order++);
            break;
          default:
            herald_transaction(next_order++);
        }
      }
      round_cpu[v] = CpuSeconds() - cpu_start;
      round_wall[v] = absl::ToDoubleSeconds(absl::Now() - start);
    }
    if (round == 0) {
      for (int64_t& frames : wal_count.frames) frames = 0;
      continue;
    }
    for (int v = 0; v < kVariants; ++v) {
      wall[v] += round_wall[v];
      cpu[v] += round_cpu[v];
    }
    herald_ratios.push_back(round_wall[kHerald] / round_wall[kPlain]);
    contract_ratios.push_back(round_wall[kContract] / round_wall[kPlain]);
    no_unique_ratios.push_back(round_wall[kNoUnique] / round_wall[kPlain]);
    herald_vs_contract_ratios.push_back(round_wall[kHerald] / round_wall[kContract]);
    herald_cpu_ratios.push_back(round_cpu[kHerald] / round_cpu[kPlain]);
    contract_cpu_ratios.push_back(round_cpu[kContract] / round_cpu[kPlain]);
    no_unique_cpu_ratios.push_back(round_cpu[kNoUnique] / round_cpu[kPlain]);
    herald_vs_contract_cpu_ratios.push_back(round_cpu[kHerald] / round_cpu[kContract]);
  }
  const double measured = static_cast<double>(n * rounds);
  auto us = [&](const double* total, int v) { return total[v] * 1e6 / measured; };
  auto frames = [&](int v) { return static_cast<double>(wal_count.frames[v]) / measured; };

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

  std::printf(
      "{\"benchmark\":\"outbox_sqlite\",\"transactions\":%lld,\"rounds\":%d,"
      "\"plain_insert_tx_us\":%.2f,\"no_unique_sql_tx_us\":%.2f,\"contract_sql_tx_us\":%.2f,"
      "\"outbox_append_tx_us\":%.2f,"
      "\"plain_insert_cpu_us\":%.2f,\"no_unique_sql_cpu_us\":%.2f,\"contract_sql_cpu_us\":%.2f,"
      "\"outbox_append_cpu_us\":%.2f,"
      "\"wal_frames_per_tx\":{\"plain\":%.2f,\"no_unique_sql\":%.2f,\"contract_sql\":%.2f,\"herald\":%.2f},"
      "\"append_ratio\":%s,\"append_cpu_ratio\":%s,\"append_ratio_target\":1.15,"
      "\"contract_sql_ratio\":%s,\"contract_sql_cpu_ratio\":%s,"
      "\"no_unique_sql_ratio\":%s,\"no_unique_sql_cpu_ratio\":%s,"
      "\"herald_vs_contract_sql_ratio\":%s,\"herald_vs_contract_sql_cpu_ratio\":%s,"
      "\"relay_events\":%lld,\"relay_target_per_s\":100000,\"relay\":{%s}}\n",
      static_cast<long long>(measured), rounds, us(wall, kPlain), us(wall, kNoUnique), us(wall, kContract),
      us(wall, kHerald), us(cpu, kPlain), us(cpu, kNoUnique), us(cpu, kContract), us(cpu, kHerald), frames(kPlain),
      frames(kNoUnique), frames(kContract), frames(kHerald), Spread(herald_ratios).c_str(),
      Spread(herald_cpu_ratios).c_str(), Spread(contract_ratios).c_str(), Spread(contract_cpu_ratios).c_str(),
      Spread(no_unique_ratios).c_str(), Spread(no_unique_cpu_ratios).c_str(), Spread(herald_vs_contract_ratios).c_str(),
      Spread(herald_vs_contract_cpu_ratios).c_str(), static_cast<long long>(relay_events), relay_json.c_str());

  for (auto& [db, stmt] : herald_business) sqlite3_finalize(stmt);
  sqlite3_finalize(plain_business);
  sqlite3_finalize(plain_event);
  sqlite3_finalize(contract_event);
  sqlite3_finalize(no_unique_event);
  sqlite3_finalize(plain_begin);
  sqlite3_finalize(plain_commit);
  sqlite3_close(plain);
  opened.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
  return 0;
}
