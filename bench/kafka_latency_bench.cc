// kafka_latency_bench: commit-to-handler latency through a real Kafka broker,
// with the relay's wake-up on:
//   outbox append + commit (SQLite or PostgreSQL) -> OutboxRelay (woken by
//   the store) -> KafkaTransport producer -> broker -> KafkaTransport
//   consumer -> Bus::Subscribe<T> handler.
// The event carries the time taken just before its transaction's commit (the
// commit is counted); the handler, in the same process and on the same
// clock, takes the difference.
//
//   HERALD_TEST_KAFKA_BROKERS=... [HERALD_TEST_PG_DSN=...] kafka_latency_bench
//       --store=sqlite|postgres [--idle_events=500] [--rates=500,1000,2000,5000,10000]
//       [--seconds=10] [--partitions=4]
//
// Prints one JSON object per line:
//   kafka_latency          the idle figure: events committed one at a time,
//                          5 ms apart (one transaction each).
//   kafka_latency_load     per offered load: a writer commits, every
//                          millisecond, one transaction holding the events
//                          due by then (more per transaction when commits
//                          fall behind), for --seconds; achieved rate too.
// Each with p50/p90/p99/max in ms. Targets: p50 < 10 ms, p99 < 50 ms.
// Settings are herald's defaults (relay batch 500, producer linger 5 ms,
// acks=all, idempotence), on a topic of --partitions partitions, 64 keys.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "herald/core/bus.h"
#include "herald/core/mutex.h"
#include "herald/core/relay.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/kafka/kafka_transport.h"
#include "kafka_admin.h"
#ifdef HERALD_BENCH_WITH_SQLITE
#include "herald/sqlite/sqlite_outbox_store.h"
#endif
#ifdef HERALD_BENCH_WITH_POSTGRES
#include "herald/postgres/postgres_outbox_store.h"
#endif

namespace {

struct LatencyEvent {
  std::string id;
  int64_t committed_us = 0;
  std::string body;
  static constexpr std::string_view kType = "bench.latency";
  static constexpr std::string_view kTopic = "latency-bench";
  std::string_view key() const { return id; }
  static constexpr auto JsonFields() {
    return herald::json::Fields(herald::json::Field("id", &LatencyEvent::id),
                                herald::json::Field("committed_us", &LatencyEvent::committed_us),
                                herald::json::Field("body", &LatencyEvent::body));
  }
};

std::string flag_store = "sqlite";
int flag_idle_events = 500;
std::vector<int> flag_rates = {500, 1000, 2000, 5000, 10000};
double flag_seconds = 10;
int flag_partitions = 4;

std::vector<int> IntList(const std::string& text) {
  std::vector<int> out;
  for (size_t pos = 0; pos < text.size();) {
    out.push_back(std::atoi(text.c_str() + pos));
    pos = text.find(',', pos);
    if (pos == std::string::npos) break;
    ++pos;
  }
  return out;
}

absl::StatusOr<std::unique_ptr<herald::OutboxStore>> OpenStore(const std::filesystem::path& dir) {
#ifdef HERALD_BENCH_WITH_SQLITE
  if (flag_store == "sqlite") {
    herald::sqlite::SqliteOptions options;
    options.path = (dir / "latency.db").string();
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
    options.schema = herald::StrCat("kafka_latency_bench_", getpid());
    HERALD_ASSIGN_OR_RETURN(auto store, herald::postgres::PostgresOutboxStore::Open(options));
    return std::unique_ptr<herald::OutboxStore>(std::move(store));
  }
#endif
  return absl::InvalidArgumentError("unknown or unbuilt --store " + flag_store);
}

herald::kafka::KafkaTransportOptions TransportOptions(const char* client) {
  herald::kafka::KafkaTransportOptions o;
  o.brokers = herald_bench::KafkaBrokers();
  o.client_id = client;
  o.properties["log_level"] = "3";
  return o;
}

// What the handler saw: latencies in ms, in arrival order.
class Latencies {
 public:
  void Add(double ms) {
    herald::MutexLock lock(mu_);
    ms_.push_back(ms);
  }
  size_t size() const {
    herald::MutexLock lock(mu_);
    return ms_.size();
  }
  std::vector<double> TakeAll() {
    herald::MutexLock lock(mu_);
    std::vector<double> out;
    out.swap(ms_);
    return out;
  }

 private:
  mutable herald::Mutex mu_;
  std::vector<double> ms_ ABSL_GUARDED_BY(mu_);
};

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t i = std::min(sorted.size() - 1, static_cast<size_t>(p * static_cast<double>(sorted.size())));
  return sorted[i];
}

std::string PercentilesJson(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  char out[256];
  std::snprintf(out, sizeof(out), "\"p50_ms\":%.2f,\"p90_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f",
                Percentile(ms, 0.5), Percentile(ms, 0.9), Percentile(ms, 0.99), ms.empty() ? 0.0 : ms.back());
  return out;
}

// Commits `count` events in one transaction.
absl::Status CommitEvents(herald::OutboxStore& store, const std::string& topic, int first, int count) {
  herald::EnvelopeOptions eo;
  eo.topic = topic;
  HERALD_ASSIGN_OR_RETURN(auto tx, store.Begin());
  // One stamp for the transaction, read before its appends and commit
  // (both are counted).
  const int64_t now_us = absl::ToUnixMicros(absl::Now());
  for (int i = 0; i < count; ++i) {
    LatencyEvent e{herald::StrCat("key-", (first + i) % 64), now_us, std::string(100, 'x')};
    HERALD_RETURN_IF_ERROR(store.Append(*tx, e, eo));
  }
  return tx->Commit();
}

// Waits until `latencies` holds `want` entries, up to `limit`.
bool AwaitHandled(const Latencies& latencies, size_t want, absl::Duration limit) {
  const absl::Time give_up = absl::Now() + limit;
  while (latencies.size() < want) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

absl::Status Run() {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / herald::StrCat("herald-kafka-latency-bench-", getpid());
  std::filesystem::create_directories(dir);
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::OutboxStore> store, OpenStore(dir));
  const std::string topic = herald::StrCat("latency-", flag_store, "-", absl::ToUnixMillis(absl::Now()));
  if (!herald_bench::CreateKafkaTopic(topic, flag_partitions)) return absl::UnavailableError("cannot create topic");

  Latencies latencies;
  HERALD_ASSIGN_OR_RETURN(auto consumer_transport,
                          herald::kafka::KafkaTransport::Create(TransportOptions("latency-consumer")));
  herald::Bus consumer(std::move(consumer_transport));
  herald::SubscribeOptions so;
  so.topics = {topic};
  HERALD_RETURN_IF_ERROR(consumer.Subscribe<LatencyEvent>(
      herald::StrCat("latency-bench-", getpid()),
      [&](const LatencyEvent& e) {
        latencies.Add(static_cast<double>(absl::ToUnixMicros(absl::Now()) - e.committed_us) / 1000.0);
        return absl::OkStatus();
      },
      so));
  HERALD_RETURN_IF_ERROR(consumer.Start());

  HERALD_ASSIGN_OR_RETURN(auto producer_transport,
                          herald::kafka::KafkaTransport::Create(TransportOptions("latency-relay")));
  herald::Bus producer(std::move(producer_transport));
  herald::RelayOptions relay_options;  // wake_up is on by default
  herald::OutboxRelay relay(*store, producer, relay_options);
  HERALD_RETURN_IF_ERROR(relay.Start());

  // Warm-up: the consumer joins its group and the producer learns the
  // partitions' leaders before anything is measured.
  int next = 0;
  for (int i = 0; i < 64; ++i) HERALD_RETURN_IF_ERROR(CommitEvents(*store, topic, next++, 1));
  if (!AwaitHandled(latencies, 64, absl::Seconds(60))) return absl::DeadlineExceededError("warm-up lost events");
  latencies.TakeAll();

  // Idle: one event per transaction, 5 ms apart.
  for (int i = 0; i < flag_idle_events; ++i) {
    HERALD_RETURN_IF_ERROR(CommitEvents(*store, topic, next++, 1));
    absl::SleepFor(absl::Milliseconds(5));
  }
  if (!AwaitHandled(latencies, static_cast<size_t>(flag_idle_events), absl::Seconds(60))) {
    return absl::DeadlineExceededError("idle run lost events");
  }
  std::printf(
      "{\"bench\":\"kafka_latency\",\"store\":\"%s\",\"events\":%d,\"spacing_ms\":5,\"partitions\":%d,"
      "\"relay_batch\":%d,\"wake_up\":true,%s,\"target\":\"p50 < 10 ms, p99 < 50 ms\"}\n",
      flag_store.c_str(), flag_idle_events, flag_partitions, relay_options.batch_size,
      PercentilesJson(latencies.TakeAll()).c_str());
  std::fflush(stdout);

  for (int rate : flag_rates) {
    const int total = static_cast<int>(rate * flag_seconds);
    const absl::Time start = absl::Now();
    int written = 0, transactions = 0;
    while (written < total) {
      const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
      const int due = std::min(total, static_cast<int>(elapsed * rate));
      if (due > written) {
        HERALD_RETURN_IF_ERROR(CommitEvents(*store, topic, next, due - written));
        next += due - written;
        written = due;
        ++transactions;
      }
      absl::SleepFor(absl::Milliseconds(1));
    }
    const double write_seconds = absl::ToDoubleSeconds(absl::Now() - start);
    if (!AwaitHandled(latencies, static_cast<size_t>(total), absl::Seconds(120))) {
      return absl::DeadlineExceededError(herald::StrCat("load ", rate, "/s lost events"));
    }
    const double all_seconds = absl::ToDoubleSeconds(absl::Now() - start);
    std::printf(
        "{\"bench\":\"kafka_latency_load\",\"store\":\"%s\",\"offered_per_s\":%d,\"events\":%d,"
        "\"transactions\":%d,\"committed_per_s\":%.0f,\"handled_per_s\":%.0f,\"partitions\":%d,%s}\n",
        flag_store.c_str(), rate, total, transactions, total / write_seconds, total / all_seconds, flag_partitions,
        PercentilesJson(latencies.TakeAll()).c_str());
    std::fflush(stdout);
  }
  relay.Stop();
  (void)producer.Stop(absl::Seconds(10));
  (void)consumer.Stop(absl::Seconds(10));
  store.reset();
  std::filesystem::remove_all(dir);
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      const size_t n = std::strlen(name);
      return a.compare(0, n, name) == 0 ? a.c_str() + n : nullptr;
    };
    if (const char* v = value("--store=")) {
      flag_store = v;
    } else if (const char* v = value("--idle_events=")) {
      flag_idle_events = std::max(1, std::atoi(v));
    } else if (const char* v = value("--rates=")) {
      flag_rates = IntList(v);
    } else if (const char* v = value("--seconds=")) {
      flag_seconds = std::max(0.1, std::atof(v));
    } else if (const char* v = value("--partitions=")) {
      flag_partitions = std::max(1, std::atoi(v));
    } else {
      std::fprintf(stderr, "kafka_latency_bench: unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (herald_bench::KafkaBrokers().empty()) {
    std::fprintf(stderr, "kafka_latency_bench: HERALD_TEST_KAFKA_BROKERS is not set\n");
    return 1;
  }
  absl::Status s = Run();
  if (!s.ok()) {
    std::fprintf(stderr, "kafka_latency_bench: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
