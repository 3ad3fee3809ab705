// Relay throughput and commit-to-handler latency, SQLite or PostgreSQL to the
// in-process bus or to a real Kafka broker, beside a baseline in the same
// run: the store's own claim and mark statements in a loop, with no
// publishing (the store's limit).
//
//   relay_bench --store=sqlite [--events=20000] [--batch=500] [--retention_s=0]
//   relay_bench --store=postgres            (DSN from HERALD_TEST_PG_DSN)
//   relay_bench --store=postgres --bus=kafka --shards=4
//                                           (broker from HERALD_TEST_KAFKA_BROKERS)
//
// --retention_s: RelayOptions::retention of the relay. Zero (the default)
// deletes rows as they are marked (OutboxStore::DeletePublished), and the
// baseline does the same; otherwise both mark the rows (MarkPublished) and
// keep them. The baseline purges after each mark, as RunOnce does.
//
// --bus: inmemory (typed handler on the in-process bus) or kafka
// (KafkaTransport, acks=all, idempotent; a fresh topic of --partitions
// partitions per run, nothing consumes it).
//
// --shards (PostgreSQL): N OutboxRelay instances in this process, relay i
// with shard i of N, each with its own store (its own connections) and,
// for Kafka, its own producer, as N relay processes would have; they drain
// one table together. The rows carry --keys distinct keys.
//
// A run ends when every row is delivered (handled, or acknowledged by the
// broker) and marked; events/s counts from Start to then. Prints one JSON
// object: events/s of the relay and of the baseline and their ratio, and,
// for one relay on the in-process bus, commit-to-handler p50/p99 with the
// store's wake-up on and with polling only (kafka_latency_bench measures
// them through the broker).
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "herald/core/mutex.h"
#include "herald/core/relay.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/inmemory/inmemory_transport.h"
#ifdef HERALD_BENCH_WITH_SQLITE
#include "herald/sqlite/sqlite_outbox_store.h"
#endif
#ifdef HERALD_BENCH_WITH_POSTGRES
#include "herald/postgres/postgres_outbox_store.h"
#endif
#ifdef HERALD_BENCH_WITH_KAFKA
#include "herald/kafka/kafka_transport.h"
#include "kafka_admin.h"
#endif

ABSL_FLAG(std::string, store, "sqlite", "outbox store: sqlite or postgres (DSN from HERALD_TEST_PG_DSN)");
ABSL_FLAG(std::string, bus, "inmemory",
          "where the relay publishes: inmemory (typed handler on the in-process bus) or kafka "
          "(HERALD_TEST_KAFKA_BROKERS)");
ABSL_FLAG(int, events, 20000, "rows in the outbox at the start of each throughput run");
ABSL_FLAG(int, batch, 500, "RelayOptions::batch_size, and the baseline's claim limit");
ABSL_FLAG(int, retention_s, 0, "RelayOptions::retention in seconds: 0 deletes rows as they are marked");
ABSL_FLAG(int, shards, 1, "relays in this process, relay i serving shard i of N (N > 1: PostgreSQL only)");
ABSL_FLAG(int, keys, 64, "distinct keys of the rows (at least 64 keeps every shard busy)");
ABSL_FLAG(int, partitions, 6, "partitions of the fresh Kafka topic (--bus=kafka)");
ABSL_FLAG(double, linger_ms, -1,
          "KafkaTransportOptions::linger in ms for --bus=kafka (fractions allowed); negative: herald's default");
ABSL_FLAG(int, latency_events, 300, "events of the commit-to-handler run (in-process bus, one relay)");

namespace {

struct BenchEvent {
  std::string id;
  std::string body;
  int64_t committed_us = 0;
  static constexpr std::string_view kType = "bench.relayed";
  static constexpr std::string_view kTopic = "relay-bench";
  std::string_view key() const { return id; }
  static constexpr auto JsonFields() {
    return herald::json::Fields(herald::json::Field("id", &BenchEvent::id),
                                herald::json::Field("body", &BenchEvent::body),
                                herald::json::Field("committed_us", &BenchEvent::committed_us));
  }
};

// The flags, read once in main.
struct Settings {
  std::string store;
  std::string bus;
  int events = 0;
  int batch = 0;
  int retention_s = 0;
  int shards = 1;
  int keys = 64;
  int partitions = 6;
  int latency_events = 0;
};
Settings settings;
std::filesystem::path temp_dir;
int run_counter = 0;

// A fresh outbox per run: `name` picks the SQLite file or the PostgreSQL
// schema, so the stores of one run's shards open the same table.
absl::StatusOr<std::unique_ptr<herald::OutboxStore>> OpenStore(const std::string& name) {
#ifdef HERALD_BENCH_WITH_SQLITE
  if (settings.store == "sqlite") {
    herald::sqlite::SqliteOptions options;
    options.path = (temp_dir / herald::StrCat(name, ".db")).string();
    HERALD_ASSIGN_OR_RETURN(auto store, herald::sqlite::SqliteOutboxStore::Open(options));
    return std::unique_ptr<herald::OutboxStore>(std::move(store));
  }
#endif
#ifdef HERALD_BENCH_WITH_POSTGRES
  if (settings.store == "postgres") {
    const char* dsn = std::getenv("HERALD_TEST_PG_DSN");
    if (dsn == nullptr) return absl::FailedPreconditionError("set HERALD_TEST_PG_DSN (scripts/pg-up.sh)");
    herald::postgres::PostgresOptions options;
    options.conninfo = dsn;
    options.schema = herald::StrCat("relay_bench_", getpid(), "_", name);
    HERALD_ASSIGN_OR_RETURN(auto store, herald::postgres::PostgresOutboxStore::Open(options));
    return std::unique_ptr<herald::OutboxStore>(std::move(store));
  }
#endif
  return absl::InvalidArgumentError("unknown or unbuilt --store " + settings.store);
}

std::string NextRunName() { return herald::StrCat("run_", ++run_counter); }

BenchEvent MakeEvent(int i) {
  return BenchEvent{herald::StrCat("entity-", i % settings.keys), std::string(160, 'x'), 0};
}

absl::Status Fill(herald::OutboxStore& store, int n, const std::string& topic) {
  herald::EnvelopeOptions eo;
  eo.topic = topic;
  for (int i = 0; i < n;) {
    HERALD_ASSIGN_OR_RETURN(auto tx, store.Begin());
    for (int j = 0; j < 100 && i < n; ++j, ++i) HERALD_RETURN_IF_ERROR(store.Append(*tx, MakeEvent(i), eo));
    HERALD_RETURN_IF_ERROR(tx->Commit());
  }
  return absl::OkStatus();
}

// Baseline: claim and mark in a loop, nothing published.
absl::StatusOr<double> Baseline() {
  HERALD_ASSIGN_OR_RETURN(auto store, OpenStore(NextRunName()));
  HERALD_RETURN_IF_ERROR(Fill(*store, settings.events, std::string(BenchEvent::kTopic)));
  absl::Time start = absl::Now();
  int done = 0;
  while (true) {
    HERALD_ASSIGN_OR_RETURN(auto rows, store->FetchPendingBatch({.limit = settings.batch}));
    if (rows.empty()) break;
    std::vector<int64_t> seqs;
    seqs.reserve(rows.size());
    for (const auto& r : rows) seqs.push_back(r.sequence);
    // The statements of OutboxRelay::RunOnce with this retention: the mark
    // (a delete when kept for no time), then the purge.
    HERALD_RETURN_IF_ERROR(settings.retention_s == 0 ? store->DeletePublished(seqs) : store->MarkPublished(seqs));
    HERALD_RETURN_IF_ERROR(store->PurgePublished(absl::Now() - absl::Seconds(settings.retention_s), 1000).status());
    done += static_cast<int>(rows.size());
  }
  if (done != settings.events) return absl::InternalError("baseline lost rows");
  return done / absl::ToDoubleSeconds(absl::Now() - start);
}

// Forwards to a transport and counts the publishes it reports delivered, so
// a run knows when the broker has acknowledged every row.
class CountingTransport final : public herald::Transport {
 public:
  CountingTransport(std::unique_ptr<herald::Transport> inner, std::atomic<int64_t>& delivered)
      : inner_(std::move(inner)), delivered_(delivered) {}
  void Publish(herald::Envelope envelope, herald::PublishCallback done) override {
    inner_->Publish(std::move(envelope), Counted(std::move(done)));
  }
  void PublishRecord(std::string topic, herald::Record record, herald::PublishCallback done) override {
    inner_->PublishRecord(std::move(topic), std::move(record), Counted(std::move(done)));
  }
  absl::Status Subscribe(herald::TransportSubscription subscription) override {
    return inner_->Subscribe(std::move(subscription));
  }
  absl::Status Start() override { return inner_->Start(); }
  absl::Status Stop(absl::Duration drain_deadline) override { return inner_->Stop(drain_deadline); }
  absl::Status Flush(absl::Duration timeout) override { return inner_->Flush(timeout); }
  absl::Duration DeliveryTimeout() const override { return inner_->DeliveryTimeout(); }
  void ReportMetricsTo(herald::Metrics& metrics) override { inner_->ReportMetricsTo(metrics); }

 private:
  herald::PublishCallback Counted(herald::PublishCallback done) {
    return [this, done = std::move(done)](absl::StatusOr<herald::DeliveryReport> report) mutable {
      if (report.ok()) delivered_.fetch_add(1, std::memory_order_relaxed);
      if (done) done(std::move(report));
    };
  }

  std::unique_ptr<herald::Transport> inner_;
  std::atomic<int64_t>& delivered_;
};

absl::StatusOr<std::unique_ptr<herald::Transport>> MakeTransport(int relay, std::atomic<int64_t>& delivered) {
  std::unique_ptr<herald::Transport> inner;
  if (settings.bus == "inmemory") {
    inner = std::make_unique<herald::inmemory::InMemoryTransport>();
  } else {
#ifdef HERALD_BENCH_WITH_KAFKA
    herald::kafka::KafkaTransportOptions o;
    o.brokers = herald_bench::KafkaBrokers();
    o.client_id = herald::StrCat("relay-bench-", relay);
    o.properties["log_level"] = "3";
    if (const double linger = absl::GetFlag(FLAGS_linger_ms); linger >= 0) {
      o.linger = absl::Microseconds(static_cast<int64_t>(linger * 1000));
    }
    HERALD_ASSIGN_OR_RETURN(inner, herald::kafka::KafkaTransport::Create(o));
#else
    return absl::InvalidArgumentError("relay_bench was built without Kafka");
#endif
  }
  return std::make_unique<CountingTransport>(std::move(inner), delivered);
}

// The relays (settings.shards of them) into typed handlers on the in-process
// bus, or to the broker; events/s from their Start until every row is
// delivered and marked.
absl::StatusOr<double> Relay() {
  const std::string name = NextRunName();
  std::vector<std::unique_ptr<herald::OutboxStore>> stores;
  for (int i = 0; i < settings.shards; ++i) {
    HERALD_ASSIGN_OR_RETURN(auto store, OpenStore(name));
    stores.push_back(std::move(store));
  }
  std::string topic(BenchEvent::kTopic);
  if (settings.bus == "kafka") {
    topic =
        herald::StrCat("relay-bench-", settings.store, "-", getpid(), "-", name, "-", absl::ToUnixMillis(absl::Now()));
#ifdef HERALD_BENCH_WITH_KAFKA
    if (!herald_bench::CreateKafkaTopic(topic, settings.partitions)) {
      return absl::UnavailableError("cannot create topic " + topic);
    }
#endif
  }
  HERALD_RETURN_IF_ERROR(Fill(*stores[0], settings.events, topic));

  // In-process: one bus, as the handler lives in this process. Kafka: one
  // producer per relay, as N relay processes would have.
  std::atomic<int64_t> delivered{0};
  std::atomic<int64_t> handled{0};
  std::vector<std::unique_ptr<herald::Bus>> buses;
  const int bus_count = settings.bus == "kafka" ? settings.shards : 1;
  for (int i = 0; i < bus_count; ++i) {
    HERALD_ASSIGN_OR_RETURN(auto transport, MakeTransport(i, delivered));
    buses.push_back(std::make_unique<herald::Bus>(std::move(transport)));
  }
  if (settings.bus == "inmemory") {
    HERALD_RETURN_IF_ERROR(buses[0]->Subscribe<BenchEvent>("bench", [&](const BenchEvent&) {
      handled.fetch_add(1, std::memory_order_relaxed);
      return absl::OkStatus();
    }));
  }
  for (auto& bus : buses) HERALD_RETURN_IF_ERROR(bus->Start());
  if (settings.bus == "kafka") {
    // Warm-up outside the timing: each producer learns the new topic's
    // partition leaders with one record, as a running relay's producer has.
    herald::EnvelopeOptions eo;
    eo.topic = topic;
    for (auto& bus : buses) HERALD_RETURN_IF_ERROR(bus->Publish(MakeEvent(0), eo).status());
    delivered.store(0);
  }

  std::vector<std::unique_ptr<herald::OutboxRelay>> relays;
  for (int i = 0; i < settings.shards; ++i) {
    herald::RelayOptions options;
    options.batch_size = settings.batch;
    options.retention = absl::Seconds(settings.retention_s);
    options.shard_count = settings.shards;
    options.shard = i;
    relays.push_back(std::make_unique<herald::OutboxRelay>(*stores[i], *buses[i % bus_count], options));
  }
  auto stop_all = [&] {
    for (auto& relay : relays) relay->Stop();
    for (auto& bus : buses) bus->Stop(absl::Seconds(10)).IgnoreError();
  };
  // What each relay reports, for a run that stops making progress.
  auto describe = [&] {
    std::string out;
    for (size_t i = 0; i < relays.size(); ++i) {
      herald::RelayStats s = relays[i]->Stats();
      herald::StrAppend(&out, " [shard ", i, ": published ", s.published, ", rounds ", s.rounds, ", failed ", s.failed,
                        ", leader ", s.leader ? "yes" : "no", ", pending ", s.outbox.pending, ", last_error ",
                        s.last_error.ToString(), "]");
    }
    return out;
  };

  const absl::Time start = absl::Now();
  for (auto& relay : relays) {
    absl::Status started = relay->Start();
    if (!started.ok()) {
      stop_all();
      return started;
    }
  }
  // Delivered: handled by the typed handler, or acknowledged by the broker.
  std::atomic<int64_t>& arrived = settings.bus == "inmemory" ? handled : delivered;
  int64_t last = -1;
  absl::Time last_progress = absl::Now();
  absl::Time first_arrival = absl::InfiniteFuture();
  while (arrived.load() < settings.events) {
    absl::SleepFor(absl::Microseconds(200));
    if (first_arrival == absl::InfiniteFuture() && arrived.load() > 0) first_arrival = absl::Now();
    if (arrived.load() != last) {
      last = arrived.load();
      last_progress = absl::Now();
    } else if (absl::Now() - last_progress > absl::Seconds(60)) {
      std::string why = herald::StrCat("relays stalled at ", last, " of ", settings.events, " delivered:", describe());
      stop_all();
      return absl::DeadlineExceededError(why);
    }
  }
  // Then marked: every relay has marked what it delivered.
  const absl::Time mark_deadline = absl::Now() + absl::Seconds(60);
  while (true) {
    int64_t published = 0;
    for (auto& relay : relays) published += relay->Stats().published;
    if (published >= settings.events) break;
    if (absl::Now() > mark_deadline) {
      std::string why = herald::StrCat("rows delivered but not marked:", describe());
      stop_all();
      return absl::DeadlineExceededError(why);
    }
    absl::SleepFor(absl::Microseconds(500));
  }
  const double rate = settings.events / absl::ToDoubleSeconds(absl::Now() - start);
  std::fprintf(stderr, "relay_bench: first row delivered %.1f ms after Start, all marked after %.1f ms\n",
               absl::ToDoubleMilliseconds(first_arrival - start), absl::ToDoubleMilliseconds(absl::Now() - start));
  stop_all();
  HERALD_ASSIGN_OR_RETURN(herald::OutboxStats left, stores[0]->Stats());
  if (left.pending != 0 || left.parked != 0) {
    return absl::InternalError(
        herald::StrCat("after the run: ", left.pending, " rows pending, ", left.parked, " parked"));
  }
  return rate;
}

struct Latency {
  double p50_ms = 0, p99_ms = 0;
};

// Commit one event at a time; measure commit to typed handler.
absl::StatusOr<Latency> CommitToHandler(bool wake_up) {
  HERALD_ASSIGN_OR_RETURN(auto store, OpenStore(NextRunName()));
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
  int n = wake_up ? settings.latency_events : std::max(20, settings.latency_events / 10);
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

absl::Status CheckSettings() {
  if (settings.bus != "inmemory" && settings.bus != "kafka") {
    return absl::InvalidArgumentError("--bus is inmemory or kafka, not " + settings.bus);
  }
#ifdef HERALD_BENCH_WITH_KAFKA
  if (settings.bus == "kafka" && herald_bench::KafkaBrokers().empty()) {
    return absl::FailedPreconditionError("--bus=kafka: set HERALD_TEST_KAFKA_BROKERS (scripts/servers-up.sh kafka)");
  }
#else
  if (settings.bus == "kafka") return absl::InvalidArgumentError("relay_bench was built without Kafka");
#endif
  if (settings.shards < 1) return absl::InvalidArgumentError("--shards must be at least 1");
  if (settings.shards > 1 && settings.store != "postgres") {
    return absl::InvalidArgumentError("--shards > 1 needs --store=postgres (SQLite runs one relay at a time)");
  }
  if (settings.events < 1 || settings.batch < 1 || settings.keys < 1 || settings.partitions < 1) {
    return absl::InvalidArgumentError("--events, --batch, --keys and --partitions must be positive");
  }
  if (settings.retention_s < 0) return absl::InvalidArgumentError("--retention_s must not be negative");
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "relay throughput (to the in-process bus or Kafka, 1 to N shards) against the store's claim-and-mark loop");
  absl::ParseCommandLine(argc, argv);
  settings.store = absl::GetFlag(FLAGS_store);
  settings.bus = absl::GetFlag(FLAGS_bus);
  settings.events = absl::GetFlag(FLAGS_events);
  settings.batch = absl::GetFlag(FLAGS_batch);
  settings.retention_s = absl::GetFlag(FLAGS_retention_s);
  settings.shards = absl::GetFlag(FLAGS_shards);
  settings.keys = absl::GetFlag(FLAGS_keys);
  settings.partitions = absl::GetFlag(FLAGS_partitions);
  settings.latency_events = absl::GetFlag(FLAGS_latency_events);
  if (absl::Status s = CheckSettings(); !s.ok()) {
    std::fprintf(stderr, "relay_bench: %s\n", s.ToString().c_str());
    return 2;
  }
  temp_dir = std::filesystem::temp_directory_path() / herald::StrCat("herald-relay-bench-", getpid());
  std::filesystem::create_directories(temp_dir);
  std::fprintf(stderr, "relay_bench: %s -> %s, %d shard(s), %d events, %d keys, batch %d, retention %d s\n",
               settings.store.c_str(), settings.bus.c_str(), settings.shards, settings.events, settings.keys,
               settings.batch, settings.retention_s);
  absl::StatusOr<double> baseline = Baseline();
  absl::StatusOr<double> relay = Relay();
  // Commit-to-handler latency: one relay to the in-process bus only
  // (kafka_latency_bench measures it through the broker).
  const bool latency = settings.bus == "inmemory" && settings.shards == 1;
  absl::StatusOr<Latency> woken = latency ? CommitToHandler(true) : Latency{};
  absl::StatusOr<Latency> polled = latency ? CommitToHandler(false) : Latency{};
  std::filesystem::remove_all(temp_dir);
  for (const absl::Status& s : {baseline.status(), relay.status(), woken.status(), polled.status()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "relay_bench: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  std::string latency_json;
  if (latency) {
    latency_json = herald::StrCat(",\"wakeup_p50_ms\":", absl::StrFormat("%.2f", woken->p50_ms),
                                  ",\"wakeup_p99_ms\":", absl::StrFormat("%.2f", woken->p99_ms),
                                  ",\"polling_1s_p50_ms\":", absl::StrFormat("%.1f", polled->p50_ms),
                                  ",\"polling_1s_p99_ms\":", absl::StrFormat("%.1f", polled->p99_ms));
  }
  std::string kafka_json;
  if (settings.bus == "kafka") kafka_json = herald::StrCat(",\"partitions\":", settings.partitions);
  std::printf(
      "{\"benchmark\":\"relay\",\"store\":\"%s\",\"bus\":\"%s\",\"shards\":%d,\"events\":%d,\"keys\":%d,"
      "\"batch\":%d,\"retention_s\":%d%s,"
      "\"relay_events_per_s\":%.0f,\"baseline_claim_mark_events_per_s\":%.0f,\"ratio_relay_over_baseline\":%.2f%s}\n",
      settings.store.c_str(), settings.bus.c_str(), settings.shards, settings.events, settings.keys, settings.batch,
      settings.retention_s, kafka_json.c_str(), *relay, *baseline, *relay / *baseline, latency_json.c_str());
  return 0;
}
