// What production runs on: a three-node KRaft cluster (replication factor 3,
// min.insync.replicas=2; scripts/kafka-cluster.sh). The PostgreSQL outbox
// relay publishes a stream of keyed events while a consumer group handles
// them, and the leader of the topic's first partition is SIGKILLed mid-stream
// (leader election, ISR shrink) and started again later. Afterwards: every
// committed event was handled, and each key's events were first handled in
// commit order. Prints the counts.
//
// Needs HERALD_TEST_KAFKA_CLUSTER_BROKERS, HERALD_TEST_KAFKA_CLUSTER_CTL and
// HERALD_TEST_PG_DSN; `make test` sets them (label kafka-cluster).
#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "herald/core/mutex.h"
#include "herald/core/relay.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/kafka/kafka_transport.h"
#include "herald/postgres/postgres_outbox_store.h"
#include "herald/testing/eventually.h"
#include "herald/testing/status_matchers.h"

namespace {

using herald::testing::IsOk;

struct Moved {
  std::string key;
  int64_t n = 0;
  static constexpr std::string_view kType = "cluster.moved";
  static constexpr std::string_view kTopic = "cluster";
  static constexpr auto JsonFields() {
    return herald::json::Fields(herald::json::Field("key", &Moved::key), herald::json::Field("n", &Moved::n));
  }
};

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

// The node id of the leader of `topic`'s partition 0 and the topic's
// replication factor, from the cluster's metadata; {-1, 0} until known.
std::pair<int32_t, int> LeaderOfPartitionZero(const std::string& brokers, const std::string& topic) {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), error, sizeof(error));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error));
  if (rk == nullptr) return {-1, 0};
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  std::pair<int32_t, int> found{-1, 0};
  if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (int t = 0; t < md->topic_cnt; ++t) {
      for (int p = 0; p < md->topics[t].partition_cnt; ++p) {
        const rd_kafka_metadata_partition_t& part = md->topics[t].partitions[p];
        if (part.id == 0 && part.err == RD_KAFKA_RESP_ERR_NO_ERROR) found = {part.leader, part.replica_cnt};
      }
    }
    rd_kafka_metadata_destroy(md);
  }
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
  return found;
}

TEST(KafkaClusterFailover, PartitionLeaderKilledMidStreamLosesNothingAndKeepsKeyOrder) {
  const std::string brokers = Env("HERALD_TEST_KAFKA_CLUSTER_BROKERS");
  const std::string ctl = Env("HERALD_TEST_KAFKA_CLUSTER_CTL");
  const std::string dsn = Env("HERALD_TEST_PG_DSN");
  ASSERT_FALSE(brokers.empty()) << "HERALD_TEST_KAFKA_CLUSTER_BROKERS is not set: run `make test` or "
                                   "scripts/kafka-cluster.sh up";
  ASSERT_FALSE(ctl.empty()) << "HERALD_TEST_KAFKA_CLUSTER_CTL is not set (scripts/kafka-cluster.sh)";
  ASSERT_FALSE(dsn.empty()) << "HERALD_TEST_PG_DSN is not set: run `make test` or scripts/pg-up.sh";
  const absl::Time t0 = absl::Now();
  const std::string unique = herald::StrCat("cluster_", getpid(), "_", absl::ToUnixSeconds(t0));
  const std::string topic = herald::StrCat("cluster-", unique);

  herald::postgres::PostgresOptions pg;
  pg.conninfo = dsn;
  pg.schema = unique;
  auto store = herald::postgres::PostgresOutboxStore::Open(pg);
  ASSERT_THAT(store, IsOk());

  herald::kafka::KafkaTransportOptions options;
  options.brokers = brokers;
  options.client_id = unique;
  auto publisher = herald::kafka::KafkaTransport::Create(options);
  ASSERT_THAT(publisher, IsOk());
  herald::Bus publisher_bus(*std::move(publisher));
  herald::RelayOptions relay_options;
  relay_options.batch_size = 200;
  relay_options.retry.max_attempts = 1000;  // an election may fail a publish: keep trying
  relay_options.retry.max_backoff = absl::Seconds(1);
  herald::OutboxRelay relay(**store, publisher_bus, relay_options);

  auto consumer = herald::kafka::KafkaTransport::Create(options);
  ASSERT_THAT(consumer, IsOk());
  herald::Bus consumer_bus(*std::move(consumer));
  herald::Mutex mu;
  std::map<std::string, std::vector<int64_t>> handled;  // key -> n in handling order
  std::set<std::string> ids;
  int64_t deliveries = 0;
  herald::SubscribeOptions sub;
  sub.group = herald::StrCat(unique, "-reader");
  sub.topics = {topic};
  ASSERT_THAT(consumer_bus.Subscribe(sub,
                                     [&](const herald::Message& m) -> absl::Status {
                                       absl::StatusOr<Moved> e = herald::DecodeEvent<Moved>(m.envelope);
                                       if (!e.ok()) return e.status();
                                       herald::MutexLock lock(mu);
                                       handled[e->key].push_back(e->n);
                                       ids.insert(m.envelope.id);
                                       ++deliveries;
                                       return absl::OkStatus();
                                     }),
              IsOk());
  ASSERT_THAT(consumer_bus.Start(), IsOk());
  ASSERT_THAT(relay.Start(), IsOk());

  // About 2,000 events/s for 10 s, in transactions of 10, on 20 keys.
  constexpr int kKeys = 20, kEvents = 20000, kPerTx = 10;
  std::atomic<bool> writer_failed{false};
  std::atomic<int> written{0};
  std::thread writer([&] {
    std::map<int, int64_t> n;
    for (int i = 0; i < kEvents; i += kPerTx) {
      auto tx = (*store)->Begin();
      if (!tx.ok()) {
        writer_failed = true;
        return;
      }
      for (int j = 0; j < kPerTx; ++j) {
        int k = (i + j) % kKeys;
        herald::Envelope e = herald::MakeEnvelope(Moved{herald::StrCat("k", k), n[k]++}, {.topic = topic});
        e.key = herald::StrCat("k", k);
        if (!(*store)->Append(**tx, e).ok()) writer_failed = true;
      }
      if (!(*tx)->Commit().ok()) writer_failed = true;
      written += kPerTx;
      absl::SleepFor(absl::Milliseconds(5));
    }
  });

  // Once a quarter is handled, kill the leader of partition 0 (SIGKILL).
  auto handled_count = [&] {
    herald::MutexLock lock(mu);
    return static_cast<int>(ids.size());
  };
  ASSERT_TRUE(herald::testing::Eventually([&] { return handled_count() >= kEvents / 4; }, absl::Seconds(120)));
  // (Plain variables, not a structured binding: the lambdas below capture it.)
  const std::pair<int32_t, int> leadership = LeaderOfPartitionZero(brokers, topic);
  const int32_t leader = leadership.first;
  const int replicas = leadership.second;
  ASSERT_GE(leader, 1) << "no leader for partition 0 of " << topic;
  EXPECT_EQ(replicas, 3) << "topics are created with replication factor 3";
  const int handled_at_kill = handled_count();
  const int written_at_kill = written.load();
  ASSERT_EQ(std::system(herald::StrCat(ctl, " kill ", leader, " >/dev/null 2>&1").c_str()), 0)
      << "kafka-cluster.sh kill failed";
  const absl::Time killed_at = absl::Now();
  // The stream goes on with two nodes (ISR 2 = min.insync.replicas).
  int32_t new_leader = -1;
  EXPECT_TRUE(herald::testing::Eventually(
      [&] {
        new_leader = LeaderOfPartitionZero(brokers, topic).first;
        return new_leader >= 1 && new_leader != leader;
      },
      absl::Seconds(60), absl::Milliseconds(250)))
      << "no new leader elected";
  const absl::Duration election = absl::Now() - killed_at;
  EXPECT_TRUE(
      herald::testing::Eventually([&] { return handled_count() >= handled_at_kill + kEvents / 8; }, absl::Seconds(120)))
      << "nothing handled after the leader was killed";
  const int handled_with_two = handled_count();
  ASSERT_EQ(std::system(herald::StrCat(ctl, " start ", leader, " >/dev/null 2>&1").c_str()), 0)
      << "kafka-cluster.sh start failed";
  writer.join();
  ASSERT_FALSE(writer_failed.load());

  EXPECT_TRUE(herald::testing::Eventually([&] { return handled_count() >= kEvents; }, absl::Seconds(180),
                                          absl::Milliseconds(100)));
  relay.Stop();
  EXPECT_THAT(consumer_bus.Stop(absl::Seconds(10)), IsOk());
  EXPECT_THAT(publisher_bus.Stop(absl::Seconds(10)), IsOk());

  herald::MutexLock lock(mu);
  EXPECT_EQ(static_cast<int>(ids.size()), kEvents) << "every committed event is handled";
  int order_violations = 0;
  for (const auto& [key, values] : handled) {
    std::set<int64_t> seen;
    int64_t next = 0;
    for (int64_t v : values) {
      if (!seen.insert(v).second) continue;
      if (v != next) ++order_violations;
      next = v + 1;
    }
  }
  EXPECT_EQ(order_violations, 0) << "a key's events were first handled out of commit order";
  std::cout << "[cluster] 3 nodes, RF 3, min.insync.replicas 2: " << kEvents << " events on " << kKeys
            << " keys; leader node " << leader << " of partition 0 SIGKILLed at " << written_at_kill << " written / "
            << handled_at_kill << " handled, node " << new_leader << " elected in " << election << ", "
            << handled_with_two - handled_at_kill << " handled on two nodes, node " << leader << " restarted; handled "
            << ids.size() << ", lost " << kEvents - static_cast<int>(ids.size()) << ", order violations "
            << order_violations << ", duplicates " << deliveries - static_cast<int64_t>(ids.size()) << ", "
            << absl::Now() - t0 << "\n";
}

}  // namespace
