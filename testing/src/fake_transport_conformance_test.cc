// Runs the public Transport conformance suite against FakeTransport. The
// transports of one test are clients of one FakeCluster (the suite's "one
// Kafka cluster"); new groups read from the earliest record, as the suite
// assumes (auto.offset.reset = earliest). FakeTransport delivers inside the
// calls themselves, so run_pending is not needed.
#include <map>
#include <memory>
#include <string>

#include "herald/core/mutex.h"
#include "herald/testing/transport_conformance.h"
#include "herald/testing/fake_transport.h"

namespace herald::testing {
namespace {

// The cluster of the test whose buses use `prefix`, made on first use and
// kept while one of its buses lives.
std::shared_ptr<FakeCluster> ClusterFor(const std::string& prefix) {
  static Mutex* const mu = new Mutex;
  static auto* const clusters = new std::map<std::string, std::weak_ptr<FakeCluster>>;
  MutexLock lock(*mu);
  std::erase_if(*clusters, [](const auto& entry) { return entry.second.expired(); });
  std::shared_ptr<FakeCluster> cluster = (*clusters)[prefix].lock();
  if (cluster == nullptr) {
    cluster = std::make_shared<FakeCluster>();
    (*clusters)[prefix] = cluster;
  }
  return cluster;
}

constexpr size_t kMaxRecordBytes = 64 * 1024;

TransportFactory FakeTransportFactory() {
  TransportFactory factory;
  factory.name = "FakeTransport";
  factory.make = [](const std::string& prefix) -> std::unique_ptr<Transport> {
    FakeTransportOptions options;
    options.cluster = ClusterFor(prefix);
    options.auto_offset_reset = AutoOffsetReset::kEarliest;
    auto transport = std::make_unique<FakeTransport>(std::move(options));
    // A record size limit, as a Kafka topic has, so that the suite can make
    // a publish fail.
    transport->SetPublishHook([](const Envelope& e) {
      return e.payload.size() > kMaxRecordBytes ? RecordTooLargeError("FakeTransport: over the test's size limit")
                                                : absl::OkStatus();
    });
    return transport;
  };
  factory.delivery_timeout = absl::Seconds(30);
  factory.max_record_bytes = kMaxRecordBytes;
  return factory;
}

INSTANTIATE_TEST_SUITE_P(FakeTransport, TransportConformanceTest, ::testing::Values(FakeTransportFactory()), TransportFactoryName);

}  // namespace
}  // namespace herald::testing
