// rss_bench: resident memory of a relay and of a consumer over a long run,
// each in a process of its own (as they run in production), sampled as
// events go through:
//   this process (the writer) appends --events rows to the outbox in
//   transactions of 1000, keeping at most --backlog rows pending;
//   a relay process (OutboxRelay -> KafkaTransport, herald's defaults)
//   drains them to a topic of --partitions partitions;
//   a consumer process (Bus::Subscribe<T>, herald's defaults) reads them.
//
//   HERALD_TEST_KAFKA_BROKERS=... [HERALD_TEST_PG_DSN=...] rss_bench
//       --store=postgres|sqlite [--events=10000000] [--samples=40] [--backlog=200000]
//
// Prints one object per process: {"bench":"rss","role":"relay"|"consumer",
// "events":N,"curve":[[events done, RSS MiB], ...], "rss_at_10pct_mib",
// "rss_last_mib", "rss_max_mib", "growth_after_10pct_mib", "flat"}; flat is
// growth after the first 10% of the events below 5 MiB or 5%, whichever is
// larger (the first 10% fill librdkafka's and the allocator's buffers).
// The topic keeps at most 64 MiB per partition on the broker's disk.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench_stats.h"
#include "herald/core/bus.h"
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

extern char** environ;

ABSL_FLAG(std::string, store, "postgres", "sqlite or postgres");
ABSL_FLAG(int64_t, events, 10'000'000, "events through the relay and the consumer");
ABSL_FLAG(int, samples, 40, "RSS samples per process over the run");
ABSL_FLAG(int64_t, backlog, 200'000, "most rows the writer keeps pending");
ABSL_FLAG(int, partitions, 4, "partitions of the topic");
// Set by the driver for the processes it starts.
ABSL_FLAG(std::string, role, "driver", "driver, relay or consumer (internal)");
ABSL_FLAG(std::string, topic, "", "the topic (internal)");
ABSL_FLAG(std::string, where, "", "the SQLite file or PostgreSQL schema (internal)");
ABSL_FLAG(std::string, out, "", "where a child writes its samples (internal)");

namespace {

struct RssEvent {
  std::string id;
  int64_t n = 0;
  std::string body;
  static constexpr std::string_view kType = "bench.rss";
  static constexpr std::string_view kTopic = "rss-bench";
  std::string_view key() const { return id; }
  static constexpr auto JsonFields() {
    return herald::json::Fields(herald::json::Field("id", &RssEvent::id), herald::json::Field("n", &RssEvent::n),
                                herald::json::Field("body", &RssEvent::body));
  }
};

// The flags' values, read once in main; the driver sets flag_topic and
// flag_where before it starts the child processes.
std::string flag_role, flag_store, flag_topic, flag_where, flag_out;
int64_t flag_events = 0, flag_backlog = 0;
int flag_samples = 0, flag_partitions = 0;

double RssMiB() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

absl::StatusOr<std::unique_ptr<herald::OutboxStore>> OpenStore() {
#ifdef HERALD_BENCH_WITH_SQLITE
  if (flag_store == "sqlite") {
    herald::sqlite::SqliteOptions options;
    options.path = flag_where;
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
    options.schema = flag_where;
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

// Samples RSS at `done()` = 0 and every events/samples events until all
// are done, writing "events mib" lines to flag_out.
// Polls `done` every `every` until it reaches --events.
void SampleUntilDone(const std::function<int64_t()>& done, absl::Duration every) {
  std::ofstream out(flag_out);
  const int64_t step = std::max<int64_t>(1, flag_events / flag_samples);
  int64_t next = 0;
  int64_t last = -1;
  absl::Time last_progress = absl::Now();
  while (true) {
    const int64_t n = done();
    if (n != last) last_progress = absl::Now();
    last = n;
    if (n >= next || n >= flag_events) {
      out << n << " " << RssMiB() << "\n" << std::flush;
      next = (n / step + 1) * step;
    }
    if (n >= flag_events) break;
    if (absl::Now() - last_progress > absl::Minutes(3)) {
      std::fprintf(stderr, "rss_bench %s: stuck at %lld events\n", flag_role.c_str(), static_cast<long long>(n));
      break;
    }
    absl::SleepFor(every);
  }
}

absl::Status RunRelay() {
  HERALD_ASSIGN_OR_RETURN(auto store, OpenStore());
  HERALD_ASSIGN_OR_RETURN(auto transport, herald::kafka::KafkaTransport::Create(TransportOptions("rss-relay")));
  herald::Bus bus(std::move(transport));
  herald::RelayOptions options;
  // SQLite's wake-up is in-process; the writer is another process here.
  if (flag_store == "sqlite") options.poll_interval = absl::Milliseconds(50);
  herald::OutboxRelay relay(*store, bus, options);
  HERALD_RETURN_IF_ERROR(relay.Start());
  // OutboxRelay::Stats() also counts the outbox (on PostgreSQL a scan of the
  // whole table): once a second, not at the consumer's 20 ms pace.
  SampleUntilDone([&] { return relay.Stats().published; }, absl::Seconds(1));
  relay.Stop();
  return bus.Stop(absl::Seconds(10));
}

absl::Status RunConsumer() {
  HERALD_ASSIGN_OR_RETURN(auto transport, herald::kafka::KafkaTransport::Create(TransportOptions("rss-consumer")));
  herald::Bus bus(std::move(transport));
  std::atomic<int64_t> handled{0};
  herald::SubscribeOptions so;
  so.topics = {flag_topic};
  HERALD_RETURN_IF_ERROR(bus.Subscribe<RssEvent>(
      herald::StrCat("rss-bench-", getpid()),
      [&](const RssEvent& e) {
        handled.fetch_add(1, std::memory_order_relaxed);
        return e.body.empty() ? absl::InvalidArgumentError("empty body") : absl::OkStatus();
      },
      so));
  HERALD_RETURN_IF_ERROR(bus.Start());
  SampleUntilDone([&] { return handled.load(std::memory_order_relaxed); }, absl::Milliseconds(20));
  return bus.Stop(absl::Seconds(10));
}

pid_t Spawn(const char* role, const std::string& out) {
  std::vector<std::string> args = {"rss_bench",
                                   herald::StrCat("--role=", role),
                                   "--store=" + flag_store,
                                   "--topic=" + flag_topic,
                                   "--where=" + flag_where,
                                   "--out=" + out,
                                   herald::StrCat("--events=", flag_events),
                                   herald::StrCat("--samples=", flag_samples)};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ) != 0) return -1;
  return pid;
}

std::vector<std::pair<int64_t, double>> ReadCurve(const std::string& path) {
  std::vector<std::pair<int64_t, double>> curve;
  std::ifstream in(path);
  int64_t n = 0;
  double mib = 0;
  while (in >> n >> mib) curve.emplace_back(n, mib);
  return curve;
}

void PrintCurve(const char* role, const std::vector<std::pair<int64_t, double>>& curve) {
  std::string points;
  double at_10 = 0, max = 0;
  for (const auto& [n, mib] : curve) {
    herald::StrAppend(&points, points.empty() ? "" : ",", "[", n, ",", herald_bench::Number(mib, 1), "]");
    if (at_10 == 0 && n >= flag_events / 10) at_10 = mib;
    max = std::max(max, mib);
  }
  const double last = curve.empty() ? 0 : curve.back().second;
  const double growth = last - at_10;
  const bool complete = !curve.empty() && curve.back().first >= flag_events;
  const bool flat = complete && growth < std::max(5.0, 0.05 * at_10);
  std::printf(
      "{\"bench\":\"rss\",\"role\":\"%s\",\"store\":\"%s\",\"events\":%lld,\"complete\":%s,\"partitions\":%d,"
      "\"curve\":[%s],\"rss_at_10pct_mib\":%.1f,\"rss_last_mib\":%.1f,\"rss_max_mib\":%.1f,"
      "\"growth_after_10pct_mib\":%.1f,\"flat\":%s}\n",
      role, flag_store.c_str(), static_cast<long long>(flag_events), complete ? "true" : "false", flag_partitions,
      points.c_str(), at_10, last, max, growth, flat ? "true" : "false");
  std::fflush(stdout);
}

absl::Status RunDriver() {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / herald::StrCat("herald-rss-bench-", getpid());
  std::filesystem::create_directories(dir);
  flag_where = flag_store == "sqlite" ? (dir / "rss.db").string() : herald::StrCat("rss_bench_", getpid());
  flag_topic = herald::StrCat("rss-", flag_store, "-", absl::ToUnixMillis(absl::Now()));
  // Old segments are deleted as the run goes (10 M records would be ~4 GB).
  if (!herald_bench::CreateKafkaTopic(flag_topic, flag_partitions,
                                      {{"retention.bytes", "67108864"}, {"segment.bytes", "16777216"}})) {
    return absl::UnavailableError("cannot create the topic");
  }
  HERALD_ASSIGN_OR_RETURN(auto store, OpenStore());  // creates the schema or file first
  const std::string relay_out = (dir / "relay.txt").string(), consumer_out = (dir / "consumer.txt").string();
  const pid_t relay = Spawn("relay", relay_out);
  const pid_t consumer = Spawn("consumer", consumer_out);
  if (relay < 0 || consumer < 0) return absl::InternalError("cannot start the child processes");
  std::fprintf(stderr, "rss_bench: %s, %lld events, relay pid %d, consumer pid %d\n", flag_store.c_str(),
               static_cast<long long>(flag_events), relay, consumer);
  herald::EnvelopeOptions eo;
  eo.topic = flag_topic;
  const std::string body(100, 'x');
  // The backlog is counted (OutboxStore::Stats, a scan of the table) every
  // 20 transactions, not before each one.
  int64_t written_at_check = -flag_backlog;
  for (int64_t written = 0; written < flag_events;) {
    if (written - written_at_check >= 20'000) {
      HERALD_ASSIGN_OR_RETURN(herald::OutboxStats stats, store->Stats());
      if (stats.pending > flag_backlog) {
        absl::SleepFor(absl::Milliseconds(200));
        continue;
      }
      written_at_check = written;
    }
    HERALD_ASSIGN_OR_RETURN(auto tx, store->Begin());
    for (int i = 0; i < 1000 && written < flag_events; ++i, ++written) {
      HERALD_RETURN_IF_ERROR(store->Append(*tx, RssEvent{herald::StrCat("key-", written % 64), written, body}, eo));
    }
    HERALD_RETURN_IF_ERROR(tx->Commit());
  }
  int status = 0;
  waitpid(relay, &status, 0);
  waitpid(consumer, &status, 0);
  PrintCurve("relay", ReadCurve(relay_out));
  PrintCurve("consumer", ReadCurve(consumer_out));
  store.reset();
  std::filesystem::remove_all(dir);
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  flag_role = absl::GetFlag(FLAGS_role);
  flag_store = absl::GetFlag(FLAGS_store);
  flag_topic = absl::GetFlag(FLAGS_topic);
  flag_where = absl::GetFlag(FLAGS_where);
  flag_out = absl::GetFlag(FLAGS_out);
  flag_events = std::max<int64_t>(1, absl::GetFlag(FLAGS_events));
  flag_samples = std::max(2, absl::GetFlag(FLAGS_samples));
  flag_backlog = std::max<int64_t>(1000, absl::GetFlag(FLAGS_backlog));
  flag_partitions = std::max(1, absl::GetFlag(FLAGS_partitions));
  if (herald_bench::KafkaBrokers().empty()) {
    std::fprintf(stderr, "rss_bench: HERALD_TEST_KAFKA_BROKERS is not set\n");
    return 1;
  }
  const absl::Status s = flag_role == "relay" ? RunRelay() : flag_role == "consumer" ? RunConsumer() : RunDriver();
  if (!s.ok()) {
    std::fprintf(stderr, "rss_bench %s: %s\n", flag_role.c_str(), s.ToString().c_str());
    return 1;
  }
  return 0;
}
