// Uses every component of an installed herald, without servers:
//   core + inmemory  a typed event published on the in-process bus reaches
//                    a typed handler
//   sqlite + testing a SQLite outbox store (temporary file) on a FakeClock
//                    opens and reports an empty outbox
//   kafka            KafkaTransport::Create validates its options (connects lazily)
//   postgres         PostgresOutboxStore::Open rejects a bad table name
//                    before it connects
//   prometheus       a MetricsServer refuses an address that is not HOST:PORT
//   otlp             a JsonLinesTracer writes one span as one line
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "herald/core/bus.h"
#include "herald/inmemory/inmemory_transport.h"
#include "herald/kafka/kafka_transport.h"
#include "herald/otlp/json_lines_tracer.h"
#include "herald/postgres/postgres_outbox_store.h"
#include "herald/prometheus/metrics_server.h"
#include "herald/sqlite/sqlite_outbox_store.h"
#include "herald/testing/fake_clock.h"

namespace {

struct Ping {
  std::string id;
  static constexpr std::string_view kType = "ping.sent";
  static constexpr std::string_view kTopic = "pings";
  std::string_view key() const { return id; }
  static constexpr auto JsonFields() { return herald::json::Fields(herald::json::Field("id", &Ping::id)); }
};

bool Check(bool ok, const std::string& what) {
  if (!ok) std::cerr << "install consumer: " << what << "\n";
  return ok;
}

bool InMemory() {
  herald::Bus bus(std::make_unique<herald::inmemory::InMemoryTransport>());
  std::atomic<int> received{0};
  absl::Status s = bus.Subscribe<Ping>("consumer", [&](const Ping& p) {
    if (p.id == "p-1") received.fetch_add(1);
    return absl::OkStatus();
  });
  if (!Check(s.ok() && bus.Start().ok() && bus.Publish(Ping{"p-1"}).ok(), "inmemory: setup failed")) return false;
  s = bus.transport<herald::inmemory::InMemoryTransport>().Drain(absl::Seconds(5));
  (void)bus.Stop(absl::Seconds(5));
  if (!Check(s.ok(), "inmemory: Drain failed: " + std::string(s.message()))) return false;
  return Check(received.load() == 1, "inmemory: the handler did not receive the event");
}

bool SqliteOnFakeClock() {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("herald-install-consumer-" + std::to_string(static_cast<long>(getpid())));
  std::filesystem::create_directories(dir);
  bool ok = false;
  {
    herald::testing::FakeClock clock;
    herald::sqlite::SqliteOptions options;
    options.path = (dir / "outbox.db").string();
    options.clock = &clock;
    absl::StatusOr<std::unique_ptr<herald::sqlite::SqliteOutboxStore>> store =
        herald::sqlite::SqliteOutboxStore::Open(options);
    if (Check(store.ok(), "sqlite: Open failed: " + std::string(store.status().message()))) {
      absl::StatusOr<herald::OutboxStats> stats = (*store)->Stats();
      ok = Check(stats.ok() && stats->pending == 0, "sqlite: a new outbox is not empty");
    }
  }
  std::filesystem::remove_all(dir);
  return ok;
}

bool Kafka() {
  herald::kafka::KafkaTransportOptions missing;  // brokers is required
  absl::StatusOr<std::unique_ptr<herald::kafka::KafkaTransport>> transport =
      herald::kafka::KafkaTransport::Create(missing);
  return Check(transport.status().code() == absl::StatusCode::kInvalidArgument,
               "kafka: Create without brokers did not fail with kInvalidArgument");
}

bool Postgres() {
  herald::postgres::PostgresOptions options;
  options.table = "not a table name";
  absl::StatusOr<std::unique_ptr<herald::postgres::PostgresOutboxStore>> store =
      herald::postgres::PostgresOutboxStore::Open(options);
  return Check(store.status().code() == absl::StatusCode::kInvalidArgument,
               "postgres: Open with a bad table name did not fail with kInvalidArgument");
}

bool Prometheus() {
  herald::MetricsRegistry metrics;
  herald::prometheus::MetricsServerOptions options;
  options.address = "no port";
  return Check(
      herald::prometheus::MetricsServer::Start(metrics, options).status().code() == absl::StatusCode::kInvalidArgument,
      "prometheus: a bad address did not fail with kInvalidArgument");
}

bool Otlp() {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("herald-consumer-spans-" + std::to_string(getpid()) + ".jsonl"))
          .string();
  bool ok = false;
  {
    absl::StatusOr<std::unique_ptr<herald::otlp::JsonLinesTracer>> tracer =
        herald::otlp::JsonLinesTracer::Open({.path = path, .service_name = "install-consumer"});
    if (!Check(tracer.ok(), "otlp: JsonLinesTracer::Open failed")) return false;
    (*tracer)->StartSpan({.name = "consumer check"})->End(absl::OkStatus());
    ok = Check((*tracer)->spans_written() == 1 && (*tracer)->write_error().ok(), "otlp: the span was not written");
  }
  std::filesystem::remove(path);
  return ok;
}

}  // namespace

int main() {
  bool ok = InMemory();
  ok = SqliteOnFakeClock() && ok;
  ok = Kafka() && ok;
  ok = Postgres() && ok;
  ok = Prometheus() && ok;
  ok = Otlp() && ok;
  if (!ok) return 1;
  std::cout << "install consumer: find_package(herald COMPONENTS core inmemory kafka postgres sqlite testing "
               "prometheus otlp) "
               "works; each component answered\n";
  return 0;
}
