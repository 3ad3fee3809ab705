// outbox_postgres_bench: the PostgreSQL outbox against its baselines, in one
// run, on one server.
//
// 1. Append cost. A business transaction (BEGIN, one business INSERT, one
//    event row, COMMIT) through herald (PostgresOutboxStore::BeginTransaction
//    + Append) against the same transaction on a plain libpq connection with
//    a plain prepared INSERT of the same bytes into a table with no extra
//    indexes. Rounds alternate so both see the same server state.
//    Target: ratio <= 1.15. A third variant inserts the same row with raw SQL
//    into herald's own outbox table (contract_sql): it splits the cost into
//    what the table contract costs (identity, unique event_id, two partial
//    indexes, the NOTIFY trigger) and what herald's code adds
//    (herald_vs_contract_sql).
// 2. Relay throughput: rows already committed, relayed by OutboxRelay::RunOnce
//    (claim, publish, mark, purge) to an in-process bus that acknowledges at
//    once. Target: >= 15,000 events/s.
//
// The server comes from HERALD_BENCH_PG_DSN or HERALD_TEST_PG_DSN
// (scripts/pg-up.sh); the benchmark works in a schema of its own and drops
// it. Prints one JSON object. Build in Release. Usage:
//   outbox_postgres_bench [--transactions=N] [--relay_events=N] [--async_commit=1]
// --async_commit=1 runs both sides with synchronous_commit=off, which takes
// the WAL flush out of the comparison (the CPU cost alone).
#include <libpq-fe.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "acking_transport.h"
#include "herald/core/bus.h"
#include "herald/core/relay.h"
#include "herald/core/uuid.h"
#include "herald/postgres/postgres_outbox_store.h"

ABSL_FLAG(int64_t, transactions, 10000, "transactions per variant");
ABSL_FLAG(int64_t, relay_events, 100000, "rows for the relay run");
ABSL_FLAG(bool, async_commit, false, "synchronous_commit=off on the benchmark's connections");

namespace {

void Check(bool ok, std::string_view what) {
  if (!ok) {
    std::fprintf(stderr, "outbox_postgres_bench: %.*s\n", static_cast<int>(what.size()), what.data());
    std::exit(1);
  }
}
void Check(const absl::Status& status, std::string_view what) {
  if (!status.ok()) {
    std::fprintf(stderr, "outbox_postgres_bench: %.*s: %s\n", static_cast<int>(what.size()), what.data(),
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
void CheckResult(PGconn* conn, PGresult* r, std::string_view what) {
  const ExecStatusType s = PQresultStatus(r);
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
    std::fprintf(stderr, "outbox_postgres_bench: %.*s: %s\n", static_cast<int>(what.size()), what.data(),
                 PQerrorMessage(conn));
    std::exit(1);
  }
  PQclear(r);
}
void Exec(PGconn* conn, const std::string& sql) { CheckResult(conn, PQexec(conn, sql.c_str()), sql); }
void Prepare(PGconn* conn, const char* name, const std::string& sql) {
  CheckResult(conn, PQprepare(conn, name, sql.c_str(), 0, nullptr), sql);
}
void Run(PGconn* conn, const char* name, const std::vector<const char*>& params) {
  CheckResult(conn, PQexecPrepared(conn, name, static_cast<int>(params.size()), params.data(), nullptr, nullptr, 0),
              name);
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

std::string Timestamp(absl::Time t) { return absl::FormatTime("%Y-%m-%d %H:%M:%E6S+00", t, absl::UTCTimeZone()); }

void InsertBusinessRow(PGconn* conn, int64_t id) {
  const std::string text = std::to_string(id);
  Run(conn, "bench_business", {text.c_str(), "customer-42", "1999"});
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int64_t transactions = absl::GetFlag(FLAGS_transactions);
  const int64_t relay_events = absl::GetFlag(FLAGS_relay_events);
  const bool async_commit = absl::GetFlag(FLAGS_async_commit);
  const char* env = std::getenv("HERALD_BENCH_PG_DSN");
  if (env == nullptr || *env == '\0') env = std::getenv("HERALD_TEST_PG_DSN");
  Check(env != nullptr && *env != '\0', "set HERALD_BENCH_PG_DSN or HERALD_TEST_PG_DSN (scripts/pg-up.sh)");
  std::string dsn = env;
  if (async_commit) dsn += " options='-c synchronous_commit=off'";
  const std::string schema = absl::StrCat("bench_", getpid());

  herald::postgres::PostgresOptions options;
  options.conninfo = dsn;
  options.schema = schema;
  options.pool_size = 2;
  std::unique_ptr<herald::postgres::PostgresOutboxStore> opened =
      CheckValue(herald::postgres::PostgresOutboxStore::Open(options), "open the store");
  herald::postgres::PostgresOutboxStore& store = *opened;

  // The baseline's own connection, same server, same settings.
  std::unique_ptr<PGconn, decltype(&PQfinish)> plain(PQconnectdb(dsn.c_str()), &PQfinish);
  Check(PQstatus(plain.get()) == CONNECTION_OK, "connect the baseline");
  PQsetNoticeProcessor(
      plain.get(), [](void*, const char*) {}, nullptr);
  const std::string orders = absl::StrCat("\"", schema, "\".orders");
  const std::string plain_events = absl::StrCat("\"", schema, "\".plain_events");
  Exec(plain.get(),
       absl::StrCat("CREATE TABLE ", orders, " (id BIGINT PRIMARY KEY, customer TEXT, amount_cents BIGINT)"));
  Exec(plain.get(), absl::StrCat("CREATE TABLE ", plain_events,
                                 " (id TEXT, event_type TEXT, topic TEXT, event_key TEXT, source TEXT, payload TEXT, "
                                 "occurred_at TIMESTAMPTZ)"));
  const std::string business_sql =
      absl::StrCat("INSERT INTO ", orders, " (id, customer, amount_cents) VALUES ($1, $2, $3)");
  Prepare(plain.get(), "bench_business", business_sql);
  Prepare(plain.get(), "bench_plain_event",
          absl::StrCat("INSERT INTO ", plain_events,
                       " (id, event_type, topic, event_key, source, payload, occurred_at) VALUES ($1, $2, $3, $4, "
                       "$5, $6, $7)"));
  Prepare(plain.get(), "bench_contract_event",
          absl::StrCat("INSERT INTO ", store.qualified_table(),
                       " (event_id, event_type, topic, event_key, event_payload, source, occurred_at) VALUES ($1, "
                       "$2, $3, $4, $5, $6, $7)"));
  std::set<PGconn*> herald_prepared;  // herald's pooled connections with bench_business prepared

  int64_t next_order = 1;
  absl::Duration plain_time, contract_time, herald_time;
  const int rounds = 10;
  for (int round = 0; round < rounds + 1; ++round) {  // round 0 warms up
    const int64_t n = transactions / rounds;
    for (int variant = 0; variant < 3; ++variant) {
      absl::Time start = absl::Now();
      for (int64_t i = 0; i < n; ++i) {
        herald::Envelope e = MakeEvent(next_order);
        if (variant < 2) {
          const std::string time = Timestamp(e.time);
          Exec(plain.get(), "BEGIN");
          InsertBusinessRow(plain.get(), next_order++);
          Run(plain.get(), variant == 0 ? "bench_plain_event" : "bench_contract_event",
              variant == 0 ? std::vector<const char*>{e.id.c_str(), e.type.c_str(), e.topic.c_str(), e.key.c_str(),
                                                      e.source.c_str(), e.payload.c_str(), time.c_str()}
                           : std::vector<const char*>{e.id.c_str(), e.type.c_str(), e.topic.c_str(), e.key.c_str(),
                                                      e.payload.c_str(), e.source.c_str(), time.c_str()});
          Exec(plain.get(), "COMMIT");
        } else {
          auto tx = CheckValue(store.BeginTransaction(), "begin");
          PGconn* conn = tx->conn();
          if (herald_prepared.insert(conn).second) Prepare(conn, "bench_business", business_sql);
          InsertBusinessRow(conn, next_order++);
          Check(store.Append(*tx, e), "append");
          Check(tx->Commit(), "commit");
        }
      }
      const absl::Duration took = absl::Now() - start;
      if (round == 0) continue;
      (variant == 0 ? plain_time : variant == 1 ? contract_time : herald_time) += took;
    }
  }
  const int64_t measured = transactions / rounds * rounds;
  const double plain_us = absl::ToDoubleMicroseconds(plain_time) / static_cast<double>(measured);
  const double contract_us = absl::ToDoubleMicroseconds(contract_time) / static_cast<double>(measured);
  const double herald_us = absl::ToDoubleMicroseconds(herald_time) / static_cast<double>(measured);

  // Drain what the append benchmark left, then measure the relay alone.
  herald::Bus bus(std::make_unique<herald::bench::AckingTransport>());
  auto& acked = bus.transport<herald::bench::AckingTransport>();
  herald::RelayOptions relay_options;
  relay_options.batch_size = 500;
  relay_options.purge_batch = 5000;
  herald::OutboxRelay relay(store, bus, relay_options);
  for (;;) {
    absl::StatusOr<int> n = relay.RunOnce();
    Check(n.status(), "drain");
    if (*n == 0) break;
  }
  for (int64_t i = 0; i < relay_events; i += 1000) {
    auto tx = CheckValue(store.BeginTransaction(), "begin");
    for (int64_t j = i; j < i + 1000 && j < relay_events; ++j) Check(store.Append(*tx, MakeEvent(j)), "append");
    Check(tx->Commit(), "commit");
  }
  Exec(plain.get(), absl::StrCat("VACUUM ANALYZE ", store.qualified_table()));
  const int64_t before = acked.published();
  const absl::Time start = absl::Now();
  for (;;) {
    absl::StatusOr<int> n = relay.RunOnce();
    Check(n.status(), "relay");
    if (*n == 0) break;
  }
  const absl::Duration relay_time = absl::Now() - start;
  const int64_t relayed = acked.published() - before;
  const double relay_rate = static_cast<double>(relayed) / absl::ToDoubleSeconds(relay_time);

  std::printf(
      "{\"benchmark\":\"outbox_postgres\",\"synchronous_commit\":\"%s\",\"transactions\":%lld,"
      "\"plain_insert_tx_us\":%.2f,\"contract_sql_tx_us\":%.2f,\"outbox_append_tx_us\":%.2f,"
      "\"append_ratio\":%.3f,\"append_ratio_target\":1.15,\"herald_vs_contract_sql\":%.3f,"
      "\"relay_events\":%lld,\"relay_events_per_s\":%.0f,\"relay_target_per_s\":15000}\n",
      async_commit ? "off" : "on", static_cast<long long>(measured), plain_us, contract_us, herald_us,
      herald_us / plain_us, herald_us / contract_us, static_cast<long long>(relayed), relay_rate);

  opened.reset();
  Exec(plain.get(), absl::StrCat("DROP SCHEMA \"", schema, "\" CASCADE"));
  return 0;
}
