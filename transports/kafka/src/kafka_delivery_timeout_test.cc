// The bound the relay derives its waits from (Transport::DeliveryTimeout) is
// the producer's delivery.timeout.ms as librdkafka applies it, including a
// pass-through property that overrides the typed option.
#include <memory>

#include "gtest/gtest.h"
#include "herald/core/relay.h"
#include "herald/kafka/kafka_transport.h"
#include "herald/testing/status_matchers.h"

namespace herald::kafka {
namespace {

using ::herald::testing::IsOk;

KafkaTransportOptions Offline() {
  KafkaTransportOptions options;
  options.brokers = "127.0.0.1:9";  // never contacted: nothing is published
  return options;
}

TEST(KafkaDeliveryTimeout, IsTheProducersEffectiveDeliveryTimeout) {
  KafkaTransportOptions options = Offline();
  absl::StatusOr<std::unique_ptr<KafkaTransport>> transport = KafkaTransport::Create(options);
  ASSERT_THAT(transport, IsOk());
  EXPECT_EQ((*transport)->DeliveryTimeout(), absl::Seconds(120)) << "the documented default";

  options.delivery_timeout = absl::Seconds(30);
  transport = KafkaTransport::Create(options);
  ASSERT_THAT(transport, IsOk());
  EXPECT_EQ((*transport)->DeliveryTimeout(), absl::Seconds(30));

  options.producer_properties["message.timeout.ms"] = "45000";
  transport = KafkaTransport::Create(options);
  ASSERT_THAT(transport, IsOk());
  EXPECT_EQ((*transport)->DeliveryTimeout(), absl::Seconds(45)) << "the pass-through property wins, as in librdkafka";

  options.producer_properties["message.timeout.ms"] = "0";
  transport = KafkaTransport::Create(options);
  ASSERT_THAT(transport, IsOk());
  EXPECT_EQ((*transport)->DeliveryTimeout(), absl::InfiniteDuration());
}

// The relay over Kafka never gives up before librdkafka does.
TEST(KafkaDeliveryTimeout, TheRelayWaitsLongerThanTheProducer) {
  absl::StatusOr<std::unique_ptr<KafkaTransport>> transport = KafkaTransport::Create(Offline());
  ASSERT_THAT(transport, IsOk());
  RelayOptions options;  // publish_timeout 30 s: not the bound over Kafka
  RelayTimeouts t = DeriveRelayTimeouts(options, (*transport)->DeliveryTimeout());
  EXPECT_EQ(t.delivery, absl::Seconds(120));
  EXPECT_GT(t.batch_wait, absl::Seconds(120));
}

}  // namespace
}  // namespace herald::kafka
