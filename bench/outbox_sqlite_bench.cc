// outbox_sqlite_bench: the SQLite outbox against its baselines, in one run.
//
// 1. Append cost. A business transaction (BEGIN IMMEDIATE, one business
//    INSERT, one event row, COMMIT) through herald (SqliteOutboxStore::
//    BeginTransaction + Append) against the same transaction on a plain
//    connection with a plain INSERT of the same bytes into a table with no
//    extra indexes. Rounds alternate so both see the same disk and cache.
//    Target: ratio <= 1.15. A third variant inserts the same row with raw SQL
//    into a table with the outbox's own schema (contract_sql): it splits the
//    cost into what the table contract costs in SQLite (the UNIQUE event_id
//    index: one more B-tree page written to the WAL per commit) and what
//    herald's code adds on top (herald_vs_contract_sql). A fourth does the
//    same without the UNIQUE index (no_unique_sql): the floor of any schema
//    with a rowid sequence, showing what event id uniqueness costs.
//    Every round times the four variants back to back (the machine may be
//    shared and noisy); the ratios are given over all rounds and as the
//    median, min and max of the per-round ratios.
// 2. Relay throughput: rows already committed, relayed by OutboxRelay::RunOnce
//    (claim, publish, mark, purge) to a bus that acknowledges at once.
//    Target: >= 30,000 events/s.
//
// Prints one JSON object. Build in Release. Usage:
//   outbox_sqlite_bench [--transactions=N] [--relay_events=N] [--dir=DIR]
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "acking_transport.h"
#include "herald/core/bus.h"
#include "herald/core/relay.h"
#include "herald/core/uuid.h"
#include "herald/sqlite/sqlite_outbox_store.h"

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

void Exec(sqlite3* db, const char* sql) {
  Check(sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK, sql);
}

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


int64_t Flag(int argc, char** argv, std::string_view name, int64_t fallback) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.size() > name.size() + 3 && arg.substr(0, 2) == "--" && arg.substr(2, name.size()) == name &&
        arg[2 + name.size()] == '=') {
      return std::atoll(argv[i] + 3 + name.size());
    }
  }
  return fallback;
}

std::string DirFlag(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.substr(0, 6) == "--dir=") return std::string(arg.substr(6));
  }
  const char* tmp = std::getenv("TMPDIR");
  return (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t transactions = Flag(argc, argv, "transactions", 20000);
  const int64_t relay_events = Flag(argc, argv, "relay_events", 100000);
  const std::string dir = DirFlag(argc, argv);
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
  Exec(plain, "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, amount_cents INTEGER)");
  Exec(plain,
       "CREATE TABLE plain_events (id TEXT, event_type TEXT, topic TEXT, event_key TEXT, source TEXT, payload TEXT, "
       "occurred_at INTEGER)");
  sqlite3_stmt* plain_business = Prepare(plain, kBusinessInsert);
  sqlite3_stmt* plain_event = Prepare(
      plain, "INSERT INTO plain_events (id, event_type, topic, event_key, source, payload, occurred_at) "
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
    sqlite3_stmt* ddl = Prepare(plain, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'bench_raw_outbox'");
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
  sqlite3_stmt* no_unique_event = Prepare(
      plain, "INSERT INTO bench_no_unique (event_id, event_type, topic, event_key, headers, event_payload, "
             "content_type, source, schema_version, occurred_at, created_at, available_at) "
             "VALUES (?1, ?2, ?3, ?4, NULL, ?5, 'application/json', ?6, 1, ?7, ?8, ?8)");
  sqlite3_stmt* contract_event = Prepare(
      plain, "INSERT INTO bench_raw_outbox (event_id, event_type, topic, event_key, headers, event_payload, "
             "content_type, source, schema_version, occurred_at, created_at, available_at) "
             "VALUES (?1, ?2, ?3, ?4, NULL, ?5, 'application/json', ?6, 1, ?7, ?8, ?8)");

  // herald's business statement, prepared once per pooled connection.
  std::vector<std::pair<sqlite3*, sqlite3_stmt*>> herald_business;
  auto business_for = [&](sqlite3* db) {
    for (auto& [d, s] : herald_business) {
      if (d == db) return s;
    }
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

  int64_t next_order = 1;
  absl::Duration plain_time, contract_time, no_unique_time, herald_time;
  std::vector<double> round_ratios, round_contract_ratios, round_no_unique_ratios;
  const int rounds = 10;
  for (int round = 0; round < rounds + 1; ++round) {  // round 0 warms up
    const int64_t n = transactions / rounds;
    absl::Time start = absl::Now();
    for (int64_t i = 0; i < n; ++i) {
      herald::Envelope e = MakeEvent(next_order);
      Step(plain_begin);
      InsertBusinessRow(plain_business, next_order++);
      sqlite3_bind_text(plain_event, 1, e.id.data(), static_cast<int>(e.id.size()), SQLITE_STATIC);
      sqlite3_bind_text(plain_event, 2, e.type.data(), static_cast<int>(e.type.size()), SQLITE_STATIC);
      sqlite3_bind_text(plain_event, 3, e.topic.data(), static_cast<int>(e.topic.size()), SQLITE_STATIC);
      sqlite3_bind_text(plain_event, 4, e.key.data(), static_cast<int>(e.key.size()), SQLITE_STATIC);
      sqlite3_bind_text(plain_event, 5, e.source.data(), static_cast<int>(e.source.size()), SQLITE_STATIC);
      sqlite3_bind_text(plain_event, 6, e.payload.data(), static_cast<int>(e.payload.size()), SQLITE_STATIC);
      sqlite3_bind_int64(plain_event, 7, absl::ToUnixMicros(e.time));
      Step(plain_event);
      Step(plain_commit);
    }
    absl::Duration plain_round = absl::Now() - start;

    start = absl::Now();
    for (int64_t i = 0; i < n; ++i) raw_sql_transaction(contract_event, next_order++);
    absl::Duration contract_round = absl::Now() - start;

    start = absl::Now();
    for (int64_t i = 0; i < n; ++i) raw_sql_transaction(no_unique_event, next_order++);
    absl::Duration no_unique_round = absl::Now() - start;

    start = absl::Now();
    for (int64_t i = 0; i < n; ++i) {
      herald::Envelope e = MakeEvent(next_order);
      auto tx = CheckValue(store.BeginTransaction(), "begin");
      InsertBusinessRow(business_for(tx->db()), next_order++);
      Check(store.Append(*tx, e), "append");
      Check(tx->Commit(), "commit");
    }
    absl::Duration herald_round = absl::Now() - start;
    if (round > 0) {
      plain_time += plain_round;
      contract_time += contract_round;
      no_unique_time += no_unique_round;
      herald_time += herald_round;
      round_ratios.push_back(absl::FDivDuration(herald_round, plain_round));
      round_contract_ratios.push_back(absl::FDivDuration(contract_round, plain_round));
      round_no_unique_ratios.push_back(absl::FDivDuration(no_unique_round, plain_round));
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };
  const int64_t measured = transactions / rounds * rounds;
  const double plain_us = absl::ToDoubleMicroseconds(plain_time) / static_cast<double>(measured);
  const double herald_us = absl::ToDoubleMicroseconds(herald_time) / static_cast<double>(measured);
  const double contract_us = absl::ToDoubleMicroseconds(contract_time) / static_cast<double>(measured);
  const double no_unique_us = absl::ToDoubleMicroseconds(no_unique_time) / static_cast<double>(measured);

  // Drain what the append benchmark left, then measure the relay alone.
  herald::Bus bus(std::make_unique<herald::bench::AckingTransport>());
  auto& acked = bus.transport<herald::bench::AckingTransport>();
  herald::RelayOptions relay_options;
  relay_options.batch_size = 500;
  relay_options.purge_batch = 5000;
  herald::OutboxRelay relay(store, bus, relay_options);
  while (true) {
    absl::StatusOr<int> n = relay.RunOnce();
    Check(n.status(), "drain");
    if (*n == 0) break;
  }
  for (int64_t i = 0; i < relay_events; i += 1000) {
    auto tx = CheckValue(store.BeginTransaction(), "begin");
    for (int64_t j = i; j < i + 1000 && j < relay_events; ++j) Check(store.Append(*tx, MakeEvent(j)), "append");
    Check(tx->Commit(), "commit");
  }
  const int64_t before = acked.published();
  absl::Time start = absl::Now();
  while (true) {
    absl::StatusOr<int> n = relay.RunOnce();
    Check(n.status(), "relay");
    if (*n == 0) break;
  }
  const absl::Duration relay_time = absl::Now() - start;
  const int64_t relayed = acked.published() - before;
  const double relay_rate = static_cast<double>(relayed) / absl::ToDoubleSeconds(relay_time);

  std::printf(
      "{\"benchmark\":\"outbox_sqlite\",\"transactions\":%lld,\"plain_insert_tx_us\":%.2f,"
      "\"no_unique_sql_tx_us\":%.2f,\"contract_sql_tx_us\":%.2f,\"outbox_append_tx_us\":%.2f,"
      "\"append_ratio\":%.3f,\"append_ratio_round_median\":%.3f,\"append_ratio_round_min\":%.3f,"
      "\"append_ratio_round_max\":%.3f,\"append_ratio_target\":1.15,"
      "\"contract_sql_ratio_round_median\":%.3f,\"no_unique_sql_ratio_round_median\":%.3f,"
      "\"herald_vs_contract_sql\":%.3f,"
      "\"relay_events\":%lld,\"relay_events_per_s\":%.0f,\"relay_target_per_s\":30000}\n",
      static_cast<long long>(measured), plain_us, no_unique_us, contract_us, herald_us, herald_us / plain_us,
      median(round_ratios), *std::min_element(round_ratios.begin(), round_ratios.end()),
      *std::max_element(round_ratios.begin(), round_ratios.end()), median(round_contract_ratios),
      median(round_no_unique_ratios), herald_us / contract_us, static_cast<long long>(relayed), relay_rate);

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
