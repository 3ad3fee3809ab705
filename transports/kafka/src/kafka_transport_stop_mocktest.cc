// KafkaTransport::Stop's deadline holds for publishes: with the broker down,
// the publishes still undelivered at the deadline are given up (kAborted),
// so a caller waiting on them (the relay) is released by then.
#include <atomic>
#include <memory>

#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/kafka/kafka_transport.h"
#include "herald/testing/status_matchers.h"
#include "kafka_test_support.h"

namespace herald::kafka {
namespace {

using ::herald::kafka::test::MockCluster;
using ::herald::kafka::test::OrderPlaced;
using ::herald::kafka::test::UniqueName;
using ::herald::kafka::test::WaitUntil;
using ::herald::testing::StatusIs;

TEST(KafkaTransportStopMock, UndeliveredPublishesAreGivenUpAtTheDeadline) {
  MockCluster cluster;
  const std::string topic = UniqueName("stop-deadline");
  cluster.CreateTopic(topic, 1);
  KafkaTransportOptions options;
  options.brokers = cluster.bootstraps();
  options.client_id = "herald-stop-test";
  options.linger = absl::Milliseconds(1);
  options.delivery_timeout = absl::Seconds(120);  // far beyond the deadline
  options.properties["log_level"] = "2";          // the outage is on purpose
  absl::StatusOr<std::unique_ptr<KafkaTransport>> transport = KafkaTransport::Create(options);
  ASSERT_TRUE(transport.ok()) << transport.status();
  Bus bus(*std::move(transport));
  rd_kafka_mock_broker_set_down(cluster.get(), 1);

  std::atomic<int> aborted{0}, other{0};
  EnvelopeOptions eo;
  eo.topic = topic;
  for (int i = 0; i < 5; ++i) {
    bus.PublishAsync(OrderPlaced{"k", i}, eo, [&](absl::StatusOr<DeliveryReport> r) {
      (r.status().code() == absl::StatusCode::kAborted ? aborted : other).fetch_add(1);
    });
  }
  const absl::Time start = absl::Now();
  EXPECT_THAT(bus.Stop(absl::Seconds(1)), StatusIs(absl::StatusCode::kDeadlineExceeded));
  // Every callback has its outcome right after the deadline, not after
  // delivery_timeout (or only when the transport is destroyed).
  ASSERT_TRUE(WaitUntil([&] { return aborted.load() + other.load() == 5; }, absl::Seconds(3)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
  EXPECT_EQ(aborted.load(), 5);
  EXPECT_EQ(other.load(), 0);
}

TEST(KafkaTransportStopMock, AbandonPublishesGivesUpUndeliveredOnesAndKeepsPublishing) {
  MockCluster cluster;
  const std::string topic = UniqueName("abandon-publishes");
  cluster.CreateTopic(topic, 1);
  KafkaTransportOptions options;
  options.brokers = cluster.bootstraps();
  options.client_id = "herald-stop-test";
  options.linger = absl::Milliseconds(1);
  options.properties["log_level"] = "2";  // the outage is on purpose
  absl::StatusOr<std::unique_ptr<KafkaTransport>> created = KafkaTransport::Create(options);
  ASSERT_TRUE(created.ok()) << created.status();
  KafkaTransport& transport = **created;
  Bus bus(*std::move(created));
  rd_kafka_mock_broker_set_down(cluster.get(), 1);
  std::atomic<int> aborted{0}, other{0};
  EnvelopeOptions eo;
  eo.topic = topic;
  for (int i = 0; i < 5; ++i) {
    bus.PublishAsync(OrderPlaced{"k", i}, eo, [&](absl::StatusOr<DeliveryReport> r) {
      (r.status().code() == absl::StatusCode::kAborted ? aborted : other).fetch_add(1);
    });
  }
  transport.AbandonPublishes();
  ASSERT_TRUE(WaitUntil([&] { return aborted.load() + other.load() == 5; }, absl::Seconds(3)));
  EXPECT_EQ(aborted.load(), 5);
  // The bus is still open: a later publish is delivered once the broker is back.
  rd_kafka_mock_broker_set_up(cluster.get(), 1);
  EXPECT_TRUE(bus.Publish(OrderPlaced{"k", 5}, eo).ok());
}

}  // namespace
}  // namespace herald::kafka
