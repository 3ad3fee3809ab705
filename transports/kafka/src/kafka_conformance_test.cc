// The public Bus conformance suite against KafkaBus on a real broker
// (HERALD_TEST_KAFKA_BROKERS; label kafka).
#include <memory>
#include <string>

#include "herald/kafka/kafka_bus.h"
#include "herald/testing/bus_conformance.h"
#include "kafka_real_broker.h"
#include "kafka_test_support.h"

namespace herald::kafka {
namespace {

using ::herald::testing::BusConformanceTest;
using ::herald::testing::BusFactory;

const auto* const kRequireBroker = ::testing::AddGlobalTestEnvironment(new test::RequireRealBroker);

BusFactory KafkaFactory() {
  BusFactory factory;
  factory.name = "Kafka";
  factory.make = [](const std::string& prefix) -> std::unique_ptr<Bus> {
    absl::StatusOr<std::unique_ptr<KafkaBus>> bus = KafkaBus::Create(test::RealBrokerOptions(prefix));
    if (!bus.ok()) {
      ADD_FAILURE() << bus.status();
      return nullptr;
    }
    return *std::move(bus);
  };
  // No wait_until_assigned: librdkafka joins a group only once a subscribed
  // topic exists, and the suite's topics appear on first publish. Consumers
  // read them from the earliest offset when they do
  // (auto.offset.reset=earliest; within the default metadata_refresh_interval).
  factory.delivery_timeout = absl::Seconds(90);
  return factory;
}

INSTANTIATE_TEST_SUITE_P(Kafka, BusConformanceTest, ::testing::Values(KafkaFactory()),
                         ::herald::testing::BusFactoryName);

}  // namespace
}  // namespace herald::kafka
