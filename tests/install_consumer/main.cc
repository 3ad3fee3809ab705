// Uses every component of an installed herald, without servers:
//   core + inmemory  a typed event published on the in-process bus reaches
//                    a typed handler
//   sqlite + testing a SQLite outbox store (temporary file) on a FakeClock
//                    opens and reports an empty outbox
//   kafka            KafkaBus::Create validates its options (connects lazily)
//   postgres         PostgresOutboxStore::Open rejects a bad table name
//                    before it connects
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "herald/core/bus.h"
#include "herald/inmemory/inmemory_bus.h"
#include "herald/kafka/kafka_bus.h"
#include "herald/postgres/postgres_outbox_store.h"
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
  herald::InMemoryBus bus;
  std::atomic<int> received{0};
  absl::Status s = bus.Subscribe<Ping>("consumer", [&](const Ping& p) {
    if (p.id == "p-1") received.fetch_add(1);
    return absl::OkStatus();
  });
  if (!Check(s.ok() && bus.Start().ok() && bus.Publish(Ping{"p-1"}).ok(), "inmemory: setup failed")) return false;
  for (int i = 0; i < 500 && received.load() == 0; ++i) absl::SleepFor(absl::Milliseconds(10));
  (void)bus.Stop(absl::Seconds(5));
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
  herald::kafka::KafkaBusOptions missing;  // brokers is required
  absl::StatusOr<std::unique_ptr<herald::kafka::KafkaBus>> bus = herald::kafka::KafkaBus::Create(missing);
  return Check(bus.status().code() == absl::StatusCode::kInvalidArgument,
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

}  // namespace

int main() {
  bool ok = InMemory();
  ok = SqliteOnFakeClock() && ok;
  ok = Kafka() && ok;
  ok = Postgres() && ok;
  if (!ok) return 1;
  std::cout << "install consumer: find_package(herald COMPONENTS core inmemory kafka postgres sqlite testing) "
               "works; each component answered\n";
  return 0;
}
