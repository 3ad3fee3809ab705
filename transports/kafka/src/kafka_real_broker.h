// Real-broker test setup (label kafka; tests only): reads
// HERALD_TEST_KAFKA_BROKERS and fails every test of the binary, with a clear
// message, when it is not set.
#ifndef HERALD_KAFKA_SRC_KAFKA_REAL_BROKER_H_
#define HERALD_KAFKA_SRC_KAFKA_REAL_BROKER_H_

#include <cstdlib>
#include <string>

#include "gtest/gtest.h"
#include "herald/kafka/kafka_transport.h"

namespace herald::kafka::test {

inline std::string RealBrokers() {
  const char* brokers = std::getenv("HERALD_TEST_KAFKA_BROKERS");
  return brokers != nullptr ? brokers : "";
}

class RequireRealBroker : public ::testing::Environment {
 public:
  void SetUp() override {
    if (RealBrokers().empty()) {
      FAIL() << "HERALD_TEST_KAFKA_BROKERS is not set. These tests (label `kafka`) need a real broker: run "
                "scripts/kafka-up.sh and `eval \"$(scripts/servers-env.sh)\"`, or run only `ctest -L unit` / "
                "`ctest -L kafka-mock`.";
    }
  }
};

// Options for a KafkaTransport on the real broker: fast commits. Consumers rely on
// the default metadata_refresh_interval to notice topics created after they
// subscribed (tests subscribe before anything is published).
inline KafkaTransportOptions RealBrokerOptions(const std::string& client_id) {
  KafkaTransportOptions options;
  options.brokers = RealBrokers();
  options.client_id = client_id;
  options.linger = absl::Milliseconds(2);
  options.commit_interval = absl::Milliseconds(200);
  options.session_timeout = absl::Seconds(10);
  return options;
}

}  // namespace herald::kafka::test

#endif  // HERALD_KAFKA_SRC_KAFKA_REAL_BROKER_H_
