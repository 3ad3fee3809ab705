// Runs the public Transport conformance suite against InMemoryTransport,
// threaded and deterministic. Every transport of one binary shares one
// broker, as every client of a test run shares one Kafka cluster; topic names
// are unique per test.
#include <memory>
#include <string>

#include "herald/inmemory/inmemory_transport.h"
#include "herald/testing/transport_conformance.h"

namespace herald::inmemory {
namespace {

using herald::testing::TransportConformanceTest;
using herald::testing::TransportFactory;

TransportFactory InMemoryFactory(bool deterministic) {
  // All transports of one test must see the same topics: one broker.
  // Kafka's default record size limit, so that the suite can make a
  // publish fail.
  static auto* const broker =
      new std::shared_ptr<InMemoryBroker>(*InMemoryBroker::Create({.max_record_bytes = 1048588}));
  TransportFactory factory;
  factory.name = deterministic ? "InMemoryDeterministic" : "InMemoryThreaded";
  factory.make = [deterministic](const std::string&) -> std::unique_ptr<Transport> {
    InMemoryTransportOptions options;
    options.broker = *broker;
    options.deterministic = deterministic;
    return std::make_unique<InMemoryTransport>(options);
  };
  if (deterministic) {
    factory.run_pending = [](Transport& transport) { static_cast<InMemoryTransport&>(transport).RunPending(); };
  }
  factory.delivery_timeout = absl::Seconds(30);
  factory.max_record_bytes = 1048588;
  return factory;
}

INSTANTIATE_TEST_SUITE_P(InMemory, TransportConformanceTest,
                         ::testing::Values(InMemoryFactory(false), InMemoryFactory(true)),
                         herald::testing::TransportFactoryName);

}  // namespace
}  // namespace herald::inmemory
