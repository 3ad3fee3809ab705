// Runs the public Bus conformance suite against InMemoryBus, threaded and
// deterministic. Every bus of one binary shares one broker, as every client of
// a test run shares one Kafka cluster; topic names are unique per test.
#include <memory>
#include <string>

#include "herald/inmemory/inmemory_bus.h"
#include "herald/testing/bus_conformance.h"

namespace herald {
namespace {

using testing::BusConformanceTest;
using testing::BusFactory;

BusFactory InMemoryFactory(bool deterministic) {
  static auto* const broker = new std::shared_ptr<InMemoryBroker>(std::make_shared<InMemoryBroker>());
  BusFactory factory;
  factory.name = deterministic ? "InMemoryDeterministic" : "InMemoryThreaded";
  factory.make = [deterministic](const std::string&) -> std::unique_ptr<Bus> {
    InMemoryBusOptions options;
    options.broker = *broker;
    options.deterministic = deterministic;
    return std::make_unique<InMemoryBus>(options);
  };
  if (deterministic) {
    factory.run_pending = [](Bus& bus) { static_cast<InMemoryBus&>(bus).RunPending(); };
  }
  factory.delivery_timeout = absl::Seconds(30);
  return factory;
}

INSTANTIATE_TEST_SUITE_P(InMemory, BusConformanceTest, ::testing::Values(InMemoryFactory(false), InMemoryFactory(true)),
                         testing::BusFactoryName);

}  // namespace
}  // namespace herald
