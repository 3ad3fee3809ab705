// The public Transport conformance suite against KafkaTransport on a real broker
// (HERALD_TEST_KAFKA_BROKERS; label kafka).
#include <memory>
#include <string>

#include "herald/kafka/kafka_transport.h"
#include "herald/testing/transport_conformance.h"
#include "kafka_real_broker.h"
#include "kafka_test_support.h"

namespace herald::kafka {
namespace {

using ::herald::testing::TransportConformanceTest;
using ::herald::testing::TransportFactory;

const auto* const kRequireBroker = ::testing::AddGlobalTestEnvironment(new test::RequireRealBroker);

TransportFactory KafkaFactory() {
  TransportFactory factory;
  factory.name = "Kafka";
  factory.make = [](const std::string& prefix) -> std::unique_ptr<Transport> {
    absl::StatusOr<std::unique_ptr<KafkaTransport>> transport = KafkaTransport::Create(test::RealBrokerOptions(prefix));
    if (!transport.ok()) {
      ADD_FAILURE() << transport.status();
      return nullptr;
    }
    return *std::move(transport);
  };
  // No wait_until_assigned: librdkafka joins a group only once a subscribed
  // topic exists, and the suite's topics appear on first publish. Consumers
  // read them from the earliest offset when they do
  // (auto.offset.reset=earliest; within the default metadata_refresh_interval).
  factory.delivery_timeout = absl::Seconds(90);
  factory.max_record_bytes = KafkaTransportOptions{}.max_message_bytes;
  return factory;
}

INSTANTIATE_TEST_SUITE_P(Kafka, TransportConformanceTest, ::testing::Values(KafkaFactory()),
                         ::herald::testing::TransportFactoryName);

}  // namespace
}  // namespace herald::kafka
