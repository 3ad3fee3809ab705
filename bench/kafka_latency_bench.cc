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
//       [--seconds=10] [--partitions=4] [--linger=<herald's default>]
//
// (--rates= with nothing runs the idle figure only; --help lists the flags.)
//
// Prints one JSON object per line:
//   kafka_latency          the idle figure: events committed one at a time,
//                          5 ms apart (one transaction each).
//   kafka_latency_load     per offered load: a writer commits, every
//                          millisecond, one transaction holding the events
//                          due by then (more per transaction when commits
//                          fall behind), for --seconds; achieved rate too.
// Each with p50/p90/p99/max in ms of commit-to-handler, and commit_p50_ms /
// commit_p99_ms: how much of it the append and commit themselves took.
// Targets: p50 < 10 ms, p99 < 50 ms.
// Settings are herald's defaults (relay batch 500, the producer's linger
// from KafkaTransportOptions unless --linger says otherwise, acks=all,
// idempotence), on a topic of --partitions partitions, 64 keys.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench_flags.h"
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

}  // namespace

ABSL_FLAG(std::string, store, "sqlite", "outbox store: sqlite or postgres (DSN from HERALD_TEST_PG_DSN)");
ABSL_FLAG(int, idle_events, 500, "events of the idle figure, committed one at a time 5 ms apart (at least 1)");
ABSL_FLAG(std::vector<std::string>, rates, std::vector<std::string>({"500", "1000", "2000", "5000", "10000"}),
          "offered loads in events/s, comma-separated; empty: the idle figure only");
ABSL_FLAG(double, seconds, 10, "how long each offered load runs (at least 0.1)");
ABSL_FLAG(int, partitions, 4, "partitions of the topic (at least 1)");
ABSL_FLAG(absl::Duration, linger, herald::kafka::KafkaTransportOptions{}.linger,
          "the relay's producer linger (KafkaTransportOptions::linger); default: herald's default");

namespace {

// The flags, read and checked once in main.
std::string flag_store;
int flag_idle_events = 0;
std::vector<int> flag_rates;
double flag_seconds = 0;
int flag_partitions = 0;
absl::Duration flag_linger;

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
  o.linger = flag_linger;
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

// Commit-to-handler percentiles, and those of the commits themselves.
std::string PercentilesJson(std::vector<double> ms, std::vector<double> commit_ms) {
  std::sort(ms.begin(), ms.end());
  std::sort(commit_ms.begin(), commit_ms.end());
  char out[256];
  std::snprintf(out, sizeof(out),
                "\"p50_ms\":%.2f,\"p90_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f,\"commit_p50_ms\":%.2f,"
                "\"commit_p99_ms\":%.2f",
                Percentile(ms, 0.5), Percentile(ms, 0.9), Percentile(ms, 0.99), ms.empty() ? 0.0 : ms.back(),
                Percentile(commit_ms, 0.5), Percentile(commit_ms, 0.99));
  return out;
}

// Commits `count` events in one transaction; adds how long the appends and
// the commit took to `commit_ms`.
absl::Status CommitEvents(herald::OutboxStore& store, const std::string& topic, int first, int count,
                          std::vector<double>& commit_ms) {
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
  HERALD_RETURN_IF_ERROR(tx->Commit());
  commit_ms.push_back(static_cast<double>(absl::ToUnixMicros(absl::Now()) - now_us) / 1000.0);
  return absl::OkStatus();
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
  std::vector<double> commit_ms;
  for (int i = 0; i < 64; ++i) HERALD_RETURN_IF_ERROR(CommitEvents(*store, topic, next++, 1, commit_ms));
  if (!AwaitHandled(latencies, 64, absl::Seconds(60))) return absl::DeadlineExceededError("warm-up lost events");
  latencies.TakeAll();
  commit_ms.clear();

  // Idle: one event per transaction, 5 ms apart.
  for (int i = 0; i < flag_idle_events; ++i) {
    HERALD_RETURN_IF_ERROR(CommitEvents(*store, topic, next++, 1, commit_ms));
    absl::SleepFor(absl::Milliseconds(5));
  }
  if (!AwaitHandled(latencies, static_cast<size_t>(flag_idle_events), absl::Seconds(60))) {
    return absl::DeadlineExceededError("idle run lost events");
  }
  std::printf(
      "{\"bench\":\"kafka_latency\",\"store\":\"%s\",\"events\":%d,\"spacing_ms\":5,\"partitions\":%d,"
      "\"relay_batch\":%d,\"linger_ms\":%.1f,\"wake_up\":true,%s,\"target\":\"p50 < 10 ms, p99 < 50 ms\"}\n",
      flag_store.c_str(), flag_idle_events, flag_partitions, relay_options.batch_size,
      absl::ToDoubleMilliseconds(flag_linger), PercentilesJson(latencies.TakeAll(), std::move(commit_ms)).c_str());
  commit_ms.clear();
  std::fflush(stdout);

  for (int rate : flag_rates) {
    const int total = static_cast<int>(rate * flag_seconds);
    const absl::Time start = absl::Now();
    int written = 0, transactions = 0;
    while (written < total) {
      const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
      const int due = std::min(total, static_cast<int>(elapsed * rate));
      if (due > written) {
        HERALD_RETURN_IF_ERROR(CommitEvents(*store, topic, next, due - written, commit_ms));
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
        "\"transactions\":%d,\"committed_per_s\":%.0f,\"handled_per_s\":%.0f,\"partitions\":%d,"
        "\"linger_ms\":%.1f,%s}\n",
        flag_store.c_str(), rate, total, transactions, total / write_seconds, total / all_seconds, flag_partitions,
        absl::ToDoubleMilliseconds(flag_linger), PercentilesJson(latencies.TakeAll(), std::move(commit_ms)).c_str());
    commit_ms.clear();
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
  absl::SetProgramUsageMessage(
      "commit-to-handler latency through a real Kafka broker (HERALD_TEST_KAFKA_BROKERS), relay woken by the store");
  const std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    std::fprintf(stderr, "kafka_latency_bench: unexpected argument %s\n", positional[1]);
    return 2;
  }
  flag_store = absl::GetFlag(FLAGS_store);
  flag_idle_events = std::max(1, absl::GetFlag(FLAGS_idle_events));
  flag_rates = herald_bench::PositiveInts("kafka_latency_bench", "rates", absl::GetFlag(FLAGS_rates));
  flag_seconds = std::max(0.1, absl::GetFlag(FLAGS_seconds));
  flag_partitions = std::max(1, absl::GetFlag(FLAGS_partitions));
  flag_linger = absl::GetFlag(FLAGS_linger);
  if (flag_linger < absl::ZeroDuration()) {
    std::fprintf(stderr, "kafka_latency_bench: --linger must not be negative\n");
    return 2;
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
