// Relay throughput and commit-to-handler latency, SQLite or PostgreSQL to the
// in-process bus, beside a baseline in the same run: the store's own claim
// and mark statements in a loop, with no publishing.
//
//   relay_bench --store=sqlite [--events=20000] [--batch=500] [--retention_s=0]
//   relay_bench --store=postgres            (DSN from HERALD_TEST_PG_DSN)
//
// --retention_s: RelayOptions::retention of the relay. Zero (the default)
// deletes rows as they are marked (OutboxStore::DeletePublished), and the
// baseline does the same; otherwise both mark the rows (MarkPublished) and
// keep them. The baseline purges after each mark, as RunOnce does.
//
// Prints one JSON object: events/s of the relay (claim, publish, wait for
// delivery, mark, purge, typed handler) and of the baseline, their ratio, and
// commit-to-handler p50/p99 with the store's wake-up on and with polling only.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "herald/core/relay.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/inmemory/inmemory_transport.h"
#include "herald/core/mutex.h"
#ifdef HERALD_BENCH_WITH_SQLITE
#include "herald/sqlite/sqlite_outbox_store.h"
#endif
#ifdef HERALD_BENCH_WITH_POSTGRES
#include "herald/postgres/postgres_outbox_store.h"
#endif

namespace {

struct BenchEvent {
  std::string id;
  std::string body;
  int64_t committed_us = 0;
  static constexpr std::string_view kType = "bench.relayed";
  static constexpr std::string_view kTopic = "relay-bench";
  std::string_view key() const { return id; }
  static constexpr auto JsonFields() {
    return herald::json::Fields(herald::json::Field("id", &BenchEvent::id), herald::json::Field("body", &BenchEvent::body),
                                herald::json::Field("committed_us", &BenchEvent::committed_us));
  }
};

std::string flag_store = "sqlite";
int flag_events = 20000;
int flag_batch = 500;
int flag_retention_s = 0;
int flag_latency_events = 300;
std::filesystem::path temp_dir;
int store_counter = 0;

absl::StatusOr<std::unique_ptr<herald::OutboxStore>> OpenStore() {
  ++store_counter;
#ifdef HERALD_BENCH_WITH_SQLITE
  if (flag_store == "sqlite") {
    herald::sqlite::SqliteOptions options;
    options.path = (temp_dir / herald::StrCat("bench-", store_counter, ".db")).string();
    HERALD_ASSIGN_OR_RETURN(auto store, herald::sqlite::SqliteOutboxStore::Open(options));
    return std::unique_ptr<herald::OutboxStore>(std::move(store));
  }
#endif
#ifdef HERALD_BENCH_WITH_POSTGRES
  if (flag_store == "postgres") {
    const char* dsn = std::getenv("HERALD_TEST_PG_DSN");
    if (dsn == nullptr) return absl::FailedPreconditionError("set HERALD_TEST_PG_DSN (scripts/pg-up.sh)");
    herald::postgres::PostgresOptions options;
    options.conninfo = dsn;
    options.schema = herald::StrCat("relay_bench_", getpid(), "_", store_counter);
    HERALD_ASSIGN_OR_RETURN(auto store, herald::postgres::PostgresOutboxStore::Open(options));
    return std::unique_ptr<herald::OutboxStore>(std::move(store));
  }
#endif
  return absl::InvalidArgumentError("unknown or unbuilt --store " + flag_store);
}

BenchEvent MakeEvent(int i) {
  return BenchEvent{herald::StrCat("entity-", i % 64), std::string(160, 'x'), 0};
}

absl::Status Fill(herald::OutboxStore& store, int n) {
  for (int i = 0; i < n;) {
    HERALD_ASSIGN_OR_RETURN(auto tx, store.Begin());
    for (int j = 0; j < 100 && i < n; ++j, ++i) HERALD_RETURN_IF_ERROR(store.Append(*tx, MakeEvent(i)));
    HERALD_RETURN_IF_ERROR(tx->Commit());
  }
  return absl::OkStatus();
}

// Baseline: claim and mark in a loop, nothing published.
absl::StatusOr<double> Baseline() {
  HERALD_ASSIGN_OR_RETURN(auto store, OpenStore());
  HERALD_RETURN_IF_ERROR(Fill(*store, flag_events));
  absl::Time start = absl::Now();
  int done = 0;
  while (true) {
    HERALD_ASSIGN_OR_RETURN(auto rows, store->FetchPendingBatch({.limit = flag_batch}));
    if (rows.empty()) break;
    std::vector<int64_t> seqs;
    seqs.reserve(rows.size());
    for (const auto& r : rows) seqs.push_back(r.sequence);
    // The statements of OutboxRelay::RunOnce with this retention: the mark
    // (a delete when kept for no time), then the purge.
    HERALD_RETURN_IF_ERROR(flag_retention_s == 0 ? store->DeletePublished(seqs) : store->MarkPublished(seqs));
    HERALD_RETURN_IF_ERROR(store->PurgePublished(absl::Now() - absl::Seconds(flag_retention_s), 1000).status());
    done += static_cast<int>(rows.size());
  }
  if (done != flag_events) return absl::InternalError("baseline lost rows");
  return done / absl::ToDoubleSeconds(absl::Now() - start);
}

// The relay into typed handlers on the in-process bus.
absl::StatusOr<double> Relay() {
  HERALD_ASSIGN_OR_RETURN(auto store, OpenStore());
  HERALD_RETURN_IF_ERROR(Fill(*store, flag_events));
  herald::Bus bus(std::make_unique<herald::inmemory::InMemoryTransport>());
  std::atomic<int> handled{0};
  HERALD_RETURN_IF_ERROR(bus.Subscribe<BenchEvent>("bench", [&](const BenchEvent&) {
    handled.fetch_add(1, std::memory_order_relaxed);
    return absl::OkStatus();
  }));
  HERALD_RETURN_IF_ERROR(bus.Start());
  herald::RelayOptions options;
  options.batch_size = flag_batch;
  options.retention = absl::Seconds(flag_retention_s);
  herald::OutboxRelay relay(*store, bus, options);
  absl::Time start = absl::Now();
  HERALD_RETURN_IF_ERROR(relay.Start());
  while (handled.load() < flag_events) absl::SleepFor(absl::Microseconds(200));
  double rate = flag_events / absl::ToDoubleSeconds(absl::Now() - start);
  relay.Stop();
  HERALD_RETURN_IF_ERROR(bus.Stop(absl::Seconds(10)));
  return rate;
}

struct Latency {
  double p50_ms = 0, p99_ms = 0;
};

// Commit one event at a time; measure commit to typed handler.
absl::StatusOr<Latency> CommitToHandler(bool wake_up) {
  HERALD_ASSIGN_OR_RETURN(auto store, OpenStore());
  herald::Bus bus(std::make_unique<herald::inmemory::InMemoryTransport>());
  herald::Mutex mu;
  std::vector<double> latencies;
  HERALD_RETURN_IF_ERROR(bus.Subscribe<BenchEvent>("bench", [&](const BenchEvent& e) {
    double ms = (absl::ToUnixMicros(absl::Now()) - e.committed_us) / 1000.0;
    herald::MutexLock lock(mu);
    latencies.push_back(ms);
    return absl::OkStatus();
  }));
  HERALD_RETURN_IF_ERROR(bus.Start());
  herald::RelayOptions options;
  options.wake_up = wake_up;
  herald::OutboxRelay relay(*store, bus, options);
  HERALD_RETURN_IF_ERROR(relay.Start());
  absl::SleepFor(absl::Milliseconds(200));  // the relay takes its lease
  int n = wake_up ? flag_latency_events : std::max(20, flag_latency_events / 10);
  for (int i = 0; i < n; ++i) {
    BenchEvent e = MakeEvent(i);
    HERALD_ASSIGN_OR_RETURN(auto tx, store->Begin());
    // The time is taken just before commit; the commit itself is counted.
    e.committed_us = absl::ToUnixMicros(absl::Now());
    HERALD_RETURN_IF_ERROR(store->Append(*tx, e));
    HERALD_RETURN_IF_ERROR(tx->Commit());
    absl::SleepFor(absl::Milliseconds(wake_up ? 5 : 37));
  }
  for (int i = 0; i < 3000; ++i) {
    {
      herald::MutexLock lock(mu);
      if (static_cast<int>(latencies.size()) >= n) break;
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
  relay.Stop();
  HERALD_RETURN_IF_ERROR(bus.Stop(absl::Seconds(10)));
  herald::MutexLock lock(mu);
  if (static_cast<int>(latencies.size()) < n) return absl::InternalError("latency run lost events");
  std::sort(latencies.begin(), latencies.end());
  return Latency{latencies[latencies.size() / 2], latencies[latencies.size() * 99 / 100]};
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--store=", 0) == 0) flag_store = a.substr(8);
    if (a.rfind("--events=", 0) == 0) flag_events = std::atoi(a.c_str() + 9);
    if (a.rfind("--batch=", 0) == 0) flag_batch = std::atoi(a.c_str() + 8);
    if (a.rfind("--retention_s=", 0) == 0) flag_retention_s = std::atoi(a.c_str() + 14);
    if (a.rfind("--latency_events=", 0) == 0) flag_latency_events = std::atoi(a.c_str() + 17);
  }
  temp_dir = std::filesystem::temp_directory_path() / herald::StrCat("herald-relay-bench-", getpid());
  std::filesystem::create_directories(temp_dir);
  std::fprintf(stderr, "relay_bench: %s, %d events, batch %d, retention %d s\n", flag_store.c_str(), flag_events,
               flag_batch, flag_retention_s);
  absl::StatusOr<double> baseline = Baseline();
  absl::StatusOr<double> relay = Relay();
  absl::StatusOr<Latency> woken = CommitToHandler(true);
  absl::StatusOr<Latency> polled = CommitToHandler(false);
  std::filesystem::remove_all(temp_dir);
  for (const absl::Status& s : {baseline.status(), relay.status(), woken.status(), polled.status()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "relay_bench: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  std::printf(
      "{\"benchmark\":\"relay\",\"store\":\"%s\",\"events\":%d,\"batch\":%d,\"retention_s\":%d,"
      "\"relay_events_per_s\":%.0f,\"baseline_claim_mark_events_per_s\":%.0f,\"ratio_relay_over_baseline\":%.2f,"
      "\"wakeup_p50_ms\":%.2f,\"wakeup_p99_ms\":%.2f,\"polling_1s_p50_ms\":%.1f,\"polling_1s_p99_ms\":%.1f}\n",
      flag_store.c_str(), flag_events, flag_batch, flag_retention_s, *relay, *baseline, *relay / *baseline,
      woken->p50_ms, woken->p99_ms, polled->p50_ms, polled->p99_ms);
  return 0;
}
