// End to end: the outbox relay (SQLite and PostgreSQL) publishing through a
// real Kafka broker to typed handlers in another consumer group, with the
// broker restarted mid-stream. Afterwards: every committed event was handled,
// with the CloudEvents subject, dataschema and extensions it was appended
// with (they travel in the outbox's headers column, then as ce_ headers),
// and each key's events were first handled in commit order.
//
// Needs HERALD_TEST_KAFKA_BROKERS and HERALD_TEST_KAFKA_CTL (and for the
// PostgreSQL case HERALD_TEST_PG_DSN); `make test` sets them.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/mutex.h"
#include "herald/core/relay.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/kafka/kafka_transport.h"
#include "herald/postgres/postgres_outbox_store.h"
#include "herald/sqlite/sqlite_outbox_store.h"
#include "herald/testing/eventually.h"
#include "herald/testing/status_matchers.h"

namespace {

using herald::testing::IsOk;

struct Moved {
  std::string key;
  int64_t n = 0;
  static constexpr std::string_view kType = "e2e.moved";
  static constexpr std::string_view kTopic = "e2e";
  static constexpr auto JsonFields() {
    return herald::json::Fields(herald::json::Field("key", &Moved::key), herald::json::Field("n", &Moved::n));
  }
};

constexpr std::string_view kDataSchema = "https://schemas.example.com/e2e/moved/v1.json";

// Two extensions, one of them per event, so a mix-up between rows shows.
herald::Extensions MovedExtensions(int64_t n) { return {{"region", "eu-1"}, {"moveseq", herald::StrCat(n)}}; }

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

class OutboxKafkaEndToEnd : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    brokers_ = Env("HERALD_TEST_KAFKA_BROKERS");
    ctl_ = Env("HERALD_TEST_KAFKA_CTL");
    ASSERT_FALSE(brokers_.empty()) << "HERALD_TEST_KAFKA_BROKERS is not set: run `make test` or scripts/kafka-up.sh";
    ASSERT_FALSE(ctl_.empty()) << "HERALD_TEST_KAFKA_CTL is not set (scripts/kafka-ctl.sh)";
    unique_ = herald::StrCat("e2e_", GetParam(), "_", getpid(), "_", absl::ToUnixSeconds(absl::Now()));
    dir_ = std::filesystem::temp_directory_path() / unique_;
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  absl::StatusOr<std::unique_ptr<herald::OutboxStore>> OpenStore() {
    if (GetParam() == "sqlite") {
      HERALD_ASSIGN_OR_RETURN(auto store, herald::sqlite::SqliteOutboxStore::Open({.path = (dir_ / "o.db").string()}));
      return std::unique_ptr<herald::OutboxStore>(std::move(store));
    }
    std::string dsn = Env("HERALD_TEST_PG_DSN");
    if (dsn.empty()) return absl::FailedPreconditionError("HERALD_TEST_PG_DSN is not set: run `make test`");
    herald::postgres::PostgresOptions options;
    options.conninfo = dsn;
    options.schema = unique_;
    HERALD_ASSIGN_OR_RETURN(auto store, herald::postgres::PostgresOutboxStore::Open(options));
    return std::unique_ptr<herald::OutboxStore>(std::move(store));
  }

  std::string brokers_, ctl_, unique_;
  std::filesystem::path dir_;
};

TEST_P(OutboxKafkaEndToEnd, BrokerRestartMidStreamLosesNothingAndKeepsKeyOrder) {
  absl::StatusOr<std::unique_ptr<herald::OutboxStore>> store = OpenStore();
  ASSERT_THAT(store, IsOk());
  const std::string topic = herald::StrCat("e2e-", unique_);

  herald::kafka::KafkaTransportOptions options;
  options.brokers = brokers_;
  options.client_id = unique_;
  auto publisher = herald::kafka::KafkaTransport::Create(options);
  ASSERT_THAT(publisher, IsOk());
  herald::Bus publisher_bus(*std::move(publisher));
  herald::RelayOptions relay_options;
  relay_options.retry.max_attempts = 1000;  // the broker is down for a while: keep trying
  relay_options.retry.max_backoff = absl::Seconds(2);
  herald::OutboxRelay relay(**store, publisher_bus, relay_options);

  auto consumer = herald::kafka::KafkaTransport::Create(options);
  ASSERT_THAT(consumer, IsOk());
  herald::Bus consumer_bus(*std::move(consumer));
  herald::Mutex mu;
  std::map<std::string, std::vector<int64_t>> handled;  // key -> n in handling order
  std::set<std::string> ids;
  std::vector<std::string> attribute_mismatches;  // events whose attributes did not arrive as appended
  herald::SubscribeOptions sub;
  sub.group = herald::StrCat(unique_, "-reader");
  sub.topics = {topic};
  ASSERT_THAT(consumer_bus.Subscribe(sub,
                                     [&](const herald::Message& m) -> absl::Status {
                                       absl::StatusOr<Moved> e = herald::DecodeEvent<Moved>(m.envelope);
                                       if (!e.ok()) return e.status();
                                       herald::MutexLock lock(mu);
                                       if (m.envelope.subject != herald::StrCat("movers/", e->key) ||
                                           m.envelope.dataschema != kDataSchema ||
                                           m.envelope.extensions != MovedExtensions(e->n)) {
                                         attribute_mismatches.push_back(herald::DebugString(m.envelope));
                                       }
                                       handled[e->key].push_back(e->n);
                                       ids.insert(m.envelope.id);
                                       return absl::OkStatus();
                                     }),
              IsOk());
  ASSERT_THAT(consumer_bus.Start(), IsOk());
  ASSERT_THAT(relay.Start(), IsOk());

  constexpr int kKeys = 8, kEvents = 1200;
  std::atomic<bool> writer_failed{false};
  std::thread writer([&] {
    std::map<int, int64_t> n;
    for (int i = 0; i < kEvents; i += 4) {
      auto tx = (*store)->Begin();
      if (!tx.ok()) {
        writer_failed = true;
        return;
      }
      for (int j = 0; j < 4; ++j) {
        int k = (i + j) % kKeys;
        herald::Envelope e = herald::MakeEnvelope(Moved{herald::StrCat("k", k), n[k]}, {.topic = topic});
        e.key = herald::StrCat("k", k);
        e.subject = herald::StrCat("movers/", e.key);
        e.dataschema = std::string(kDataSchema);
        e.extensions = MovedExtensions(n[k]++);
        if (!(*store)->Append(**tx, e).ok()) writer_failed = true;
      }
      if (!(*tx)->Commit().ok()) writer_failed = true;
      absl::SleepFor(absl::Milliseconds(10));
    }
  });
  // Restart the broker while events flow: once the first ones are handled.
  ASSERT_TRUE(herald::testing::Eventually([&] {
    herald::MutexLock lock(mu);
    return ids.size() >= 50;
  }));
  ASSERT_EQ(std::system(herald::StrCat(ctl_, " restart >/dev/null 2>&1").c_str()), 0) << "kafka-ctl restart failed";
  writer.join();
  ASSERT_FALSE(writer_failed.load());

  EXPECT_TRUE(herald::testing::Eventually(
      [&] {
        herald::MutexLock lock(mu);
        return static_cast<int>(ids.size()) >= kEvents;
      },
      absl::Seconds(180), absl::Milliseconds(100)));
  relay.Stop();
  EXPECT_THAT(consumer_bus.Stop(absl::Seconds(10)), IsOk());
  EXPECT_THAT(publisher_bus.Stop(absl::Seconds(10)), IsOk());

  herald::MutexLock lock(mu);
  EXPECT_EQ(static_cast<int>(ids.size()), kEvents) << "every committed event is handled";
  EXPECT_THAT(attribute_mismatches, ::testing::IsEmpty()) << "subject, dataschema and extensions arrive as appended";
  for (const auto& [key, values] : handled) {
    std::set<int64_t> seen;
    int64_t next = 0;
    for (int64_t v : values) {
      if (seen.insert(v).second) {
        ASSERT_EQ(v, next) << "key " << key << " handled out of commit order";
        ++next;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, OutboxKafkaEndToEnd, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
