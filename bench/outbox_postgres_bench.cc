// outbox_postgres_bench: the PostgreSQL outbox against its baselines, in one
// run, on one server.
//
// 1. Append cost. A business transaction (BEGIN, one business INSERT, one
//    event row, COMMIT) through herald (PostgresOutboxStore::BeginTransaction
//    + Append) against the same transaction on a plain libpq connection with
//    a plain prepared INSERT of the same bytes into a table with no extra
//    indexes. Every round runs the variants back to back, in an order
//    rotated from round to round, so all see the same server state.
//    Target: ratio <= 1.15. A third variant inserts the same row with raw SQL
//    into herald's own outbox table (contract_sql): it splits the cost into
//    what the table contract costs (identity, unique event_id, two partial
//    indexes, the NOTIFY trigger) and what herald's code adds
//    (herald_vs_contract_sql). A fourth is the business transaction alone
//    (BEGIN, the business INSERT, COMMIT; no event row, business_alone):
//    what the application pays anyway, so that herald_vs_business_alone is
//    what the outbox adds to it.
//    With --writers (default 1,4), the whole measurement runs once per
//    writers count W: each round's transactions of a variant are split
//    between W threads committing at once, each with its own business rows:
//    one libpq connection per thread for the raw SQL variants, and for
//    herald one PostgresOutboxStore shared by the threads (it is
//    thread-safe; its pool holds a connection per writer). Concurrent
//    commits share WAL flushes (group commit), so W > 1 shows how each
//    variant scales. Times per transaction are then wall time over all W
//    threads' commits (the inverse of the throughput, *_tx_per_s), not one
//    commit's latency.
//    The outbox table's NOTIFY trigger (herald and contract_sql) weighs
//    on W > 1: PostgreSQL takes one global lock in a notifying
//    transaction's pre-commit and holds it to the transaction's end, so
//    those commits flush the WAL one after another instead of together.
//    With the trigger disabled (a local experiment on 2026-12-02, 4
//    writers, 4,000 transactions) herald went from ~1,300 to ~2,600 tx/s,
//    the plain INSERT staying at ~2,400-3,500.
// 2. Relay throughput: rows already committed, relayed by OutboxRelay::RunOnce
//    (claim, publish, mark, purge) to an in-process bus that acknowledges at
//    once. Target: >= 15,000 events/s. Measured once, after the append runs.
//
// The server comes from HERALD_BENCH_PG_DSN or HERALD_TEST_PG_DSN
// (scripts/pg-up.sh); the benchmark works in a schema of its own and drops
// it. Prints one JSON object per writers count (key "writers"), in the order
// of --writers; the relay figures are in the first. Build in Release. Usage:
//   outbox_postgres_bench [--transactions=N] [--writers=1,4] [--relay_events=N]
//                         [--async_commit=1]
// --async_commit=1 runs both sides with synchronous_commit=off, which takes
// the WAL flush out of the comparison (the CPU cost alone).
#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
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
#include "herald/postgres/postgres_outbox_store.h"

ABSL_FLAG(int64_t, transactions, 10000, "transactions per variant");
ABSL_FLAG(std::vector<std::string>, writers, std::vector<std::string>({"1", "4"}),
          "writers counts: concurrent writer threads sharing each variant's transactions");
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

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::string Number(double x, const char* format) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, x);
  return buffer;
}

// {"min":..,"median":..,"max":..,"rounds":..} (bench/table.py reads it).
std::string Spread(const std::vector<double>& v, const char* format = "%.3f") {
  return absl::StrCat(
      "{\"min\":", Number(*std::min_element(v.begin(), v.end()), format), ",\"median\":", Number(Median(v), format),
      ",\"max\":", Number(*std::max_element(v.begin(), v.end()), format), ",\"rounds\":", v.size(), "}");
}

enum Variant { kPlain, kContract, kHerald, kBusinessAlone };
constexpr int kVariants = 4;

// herald's pooled connections with bench_business prepared; shared by the
// writer threads (a pooled connection serves one transaction at a time).
class HeraldPrepared {
 public:
  explicit HeraldPrepared(std::string business_sql) : business_sql_(std::move(business_sql)) {}
  void Ensure(PGconn* conn) {
    absl::MutexLock lock(&mu_);
    if (prepared_.insert(conn).second) Prepare(conn, "bench_business", business_sql_);
  }

 private:
  const std::string business_sql_;
  absl::Mutex mu_;
  std::set<PGconn*> prepared_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int64_t transactions = absl::GetFlag(FLAGS_transactions);
  const int64_t relay_events = absl::GetFlag(FLAGS_relay_events);
  const bool async_commit = absl::GetFlag(FLAGS_async_commit);
  const std::vector<int> writers_counts =
      herald_bench::PositiveInts("outbox_postgres_bench", "writers", absl::GetFlag(FLAGS_writers));
  Check(!writers_counts.empty(), "--writers is empty");
  const int max_writers = *std::max_element(writers_counts.begin(), writers_counts.end());
  const char* env = std::getenv("HERALD_BENCH_PG_DSN");
  if (env == nullptr || *env == '\0') env = std::getenv("HERALD_TEST_PG_DSN");
  Check(env != nullptr && *env != '\0', "set HERALD_BENCH_PG_DSN or HERALD_TEST_PG_DSN (scripts/pg-up.sh)");
  std::string dsn = env;
  if (async_commit) dsn += " options='-c synchronous_commit=off'";
  const std::string schema = absl::StrCat("bench_", getpid());

  herald::postgres::PostgresOptions options;
  options.conninfo = dsn;
  options.schema = schema;
  options.pool_size = std::max(2, max_writers);  // a pooled connection per writer
  std::unique_ptr<herald::postgres::PostgresOutboxStore> opened =
      CheckValue(herald::postgres::PostgresOutboxStore::Open(options), "open the store");
  herald::postgres::PostgresOutboxStore& store = *opened;

  // The baselines' connections (one per writer thread), same server, same
  // settings; the first also creates the tables.
  using Conn = std::unique_ptr<PGconn, decltype(&PQfinish)>;
  std::vector<Conn> plain;
  for (int w = 0; w < max_writers; ++w) {
    plain.emplace_back(PQconnectdb(dsn.c_str()), &PQfinish);
    Check(PQstatus(plain.back().get()) == CONNECTION_OK, "connect the baseline");
    PQsetNoticeProcessor(
        plain.back().get(), [](void*, const char*) {}, nullptr);
  }
  const std::string orders = absl::StrCat("\"", schema, "\".orders");
  const std::string plain_events = absl::StrCat("\"", schema, "\".plain_events");
  Exec(plain[0].get(),
       absl::StrCat("CREATE TABLE ", orders, " (id BIGINT PRIMARY KEY, customer TEXT, amount_cents BIGINT)"));
  Exec(plain[0].get(), absl::StrCat("CREATE TABLE ", plain_events,
                                    " (id TEXT, event_type TEXT, topic TEXT, event_key TEXT, source TEXT, payload "
                                    "TEXT, occurred_at TIMESTAMPTZ)"));
  const std::string business_sql =
      absl::StrCat("INSERT INTO ", orders, " (id, customer, amount_cents) VALUES ($1, $2, $3)");
  for (Conn& conn : plain) {
    Prepare(conn.get(), "bench_business", business_sql);
    Prepare(conn.get(), "bench_plain_event",
            absl::StrCat("INSERT INTO ", plain_events,
                         " (id, event_type, topic, event_key, source, payload, occurred_at) VALUES ($1, $2, $3, $4, "
                         "$5, $6, $7)"));
    Prepare(conn.get(), "bench_contract_event",
            absl::StrCat("INSERT INTO ", store.qualified_table(),
                         " (event_id, event_type, topic, event_key, event_payload, source, occurred_at) VALUES ($1, "
                         "$2, $3, $4, $5, $6, $7)"));
  }
  HeraldPrepared herald_prepared(business_sql);

  // Each writer's own business rows (ids 2^40 apart).
  std::vector<int64_t> next_order(max_writers);
  for (int w = 0; w < max_writers; ++w) next_order[w] = (int64_t{1} << 40) * w + 1;
  // `count` transactions of variant `v` by writer `w`.
  auto run = [&](int v, int w, int64_t count) {
    PGconn* conn = plain[w].get();
    for (int64_t i = 0; i < count; ++i) {
      const int64_t order = next_order[w]++;
      if (v == kBusinessAlone) {
        Exec(conn, "BEGIN");
        InsertBusinessRow(conn, order);
        Exec(conn, "COMMIT");
        continue;
      }
      herald::Envelope e = MakeEvent(order);
      if (v == kPlain || v == kContract) {
        const std::string time = Timestamp(e.time);
        Exec(conn, "BEGIN");
        InsertBusinessRow(conn, order);
        Run(conn, v == kPlain ? "bench_plain_event" : "bench_contract_event",
            v == kPlain ? std::vector<const char*>{e.id.c_str(), e.type.c_str(), e.topic.c_str(), e.key.c_str(),
                                                   e.source.c_str(), e.payload.c_str(), time.c_str()}
                        : std::vector<const char*>{e.id.c_str(), e.type.c_str(), e.topic.c_str(), e.key.c_str(),
                                                   e.payload.c_str(), e.source.c_str(), time.c_str()});
        Exec(conn, "COMMIT");
      } else {
        auto tx = CheckValue(store.BeginTransaction(), "begin");
        herald_prepared.Ensure(tx->conn());
        InsertBusinessRow(tx->conn(), order);
        Check(store.Append(*tx, e), "append");
        Check(tx->Commit(), "commit");
      }
    }
  };

  // One JSON object's append figures per writers count.
  std::vector<std::string> append_json;
  const int rounds = 10;
  for (const int writers : writers_counts) {
    absl::Duration total[kVariants];
    std::vector<double> per_s[kVariants], herald_ratios, herald_vs_business_ratios;
    // Each round's transactions of a variant, split evenly between the writers.
    const int64_t per_writer = std::max<int64_t>(1, transactions / rounds / writers);
    const int64_t n = per_writer * writers;
    for (int round = 0; round < rounds + 1; ++round) {  // round 0 warms up
      absl::Duration took[kVariants];
      for (int k = 0; k < kVariants; ++k) {
        const int v = (round + k) % kVariants;  // rotated: no variant always runs first
        const absl::Time start = absl::Now();
        herald_bench::RunWriters(writers, per_writer, [&](int w, int64_t count) { run(v, w, count); });
        took[v] = absl::Now() - start;
      }
      if (round == 0) continue;
      for (int v = 0; v < kVariants; ++v) {
        total[v] += took[v];
        per_s[v].push_back(static_cast<double>(n) / absl::ToDoubleSeconds(took[v]));
      }
      herald_ratios.push_back(absl::FDivDuration(took[kHerald], took[kPlain]));
      herald_vs_business_ratios.push_back(absl::FDivDuration(took[kHerald], took[kBusinessAlone]));
    }
    const int64_t measured = n * rounds;
    double us[kVariants];
    for (int v = 0; v < kVariants; ++v) us[v] = absl::ToDoubleMicroseconds(total[v]) / static_cast<double>(measured);
    append_json.push_back(absl::StrCat(
        "{\"benchmark\":\"outbox_postgres\",\"writers\":", writers, ",\"synchronous_commit\":\"",
        async_commit ? "off" : "on", "\",\"transactions\":", measured, ",\"plain_insert_tx_us\":",
        Number(us[kPlain], "%.2f"), ",\"contract_sql_tx_us\":", Number(us[kContract], "%.2f"),
        ",\"outbox_append_tx_us\":", Number(us[kHerald], "%.2f"),
        ",\"append_ratio\":", Number(us[kHerald] / us[kPlain], "%.3f"), ",\"append_ratio_target\":1.15",
        ",\"herald_vs_contract_sql\":", Number(us[kHerald] / us[kContract], "%.3f"),
        ",\"business_alone_tx_us\":", Number(us[kBusinessAlone], "%.2f"),
        ",\"herald_vs_business_alone_ratio\":", Number(us[kHerald] / us[kBusinessAlone], "%.3f"),
        ",\"plain_vs_business_alone_ratio\":", Number(us[kPlain] / us[kBusinessAlone], "%.3f"),
        ",\"append_round_ratio\":", Spread(herald_ratios), ",\"herald_vs_business_alone_round_ratio\":",
        Spread(herald_vs_business_ratios), ",\"business_alone_tx_per_s\":", Spread(per_s[kBusinessAlone], "%.0f"),
        ",\"plain_insert_tx_per_s\":", Spread(per_s[kPlain], "%.0f"), ",\"contract_sql_tx_per_s\":",
        Spread(per_s[kContract], "%.0f"), ",\"outbox_append_tx_per_s\":", Spread(per_s[kHerald], "%.0f")));
  }

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
  Exec(plain[0].get(), absl::StrCat("VACUUM ANALYZE ", store.qualified_table()));
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

  for (size_t i = 0; i < append_json.size(); ++i) {
    // The relay figures go with the first object.
    const std::string relay_part =
        i == 0 ? absl::StrCat(",\"relay_events\":", relayed, ",\"relay_events_per_s\":", Number(relay_rate, "%.0f"),
                              ",\"relay_target_per_s\":15000")
               : "";
    std::printf("%s%s}\n", append_json[i].c_str(), relay_part.c_str());
  }

  opened.reset();
  Exec(plain[0].get(), absl::StrCat("DROP SCHEMA \"", schema, "\" CASCADE"));
  return 0;
}
