// Real-broker test setup (label kafka; tests only): reads
// HERALD_TEST_KAFKA_BROKERS and fails every test of the binary, with a clear
// message, when it is not set; and the broker's SASL_SSL listener
// (HERALD_TEST_KAFKA_SASL_SSL_BROKERS and friends, RealSaslSslBroker).
#ifndef HERALD_KAFKA_SRC_KAFKA_REAL_BROKER_H_
#define HERALD_KAFKA_SRC_KAFKA_REAL_BROKER_H_

#include <cstdlib>
#include <fstream>
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

// The broker's SASL_SSL listener (scripts/kafka-up.sh): SCRAM-SHA-512 over
// TLS, with the CA that signed the broker's certificate and one that did
// not. The password is read from the file the scripts made for this run.
struct SaslSslBroker {
  std::string brokers;
  std::string ca_file;
  std::string untrusted_ca_file;
  std::string mechanism;
  std::string user;
  std::string password;
};

inline std::string EnvOrEmpty(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// Fails the calling test, naming what is missing, when the listener is not
// configured.
inline SaslSslBroker RealSaslSslBroker() {
  SaslSslBroker b;
  b.brokers = EnvOrEmpty("HERALD_TEST_KAFKA_SASL_SSL_BROKERS");
  b.ca_file = EnvOrEmpty("HERALD_TEST_KAFKA_CA_FILE");
  b.untrusted_ca_file = EnvOrEmpty("HERALD_TEST_KAFKA_UNTRUSTED_CA_FILE");
  b.mechanism = EnvOrEmpty("HERALD_TEST_KAFKA_SASL_MECHANISM");
  b.user = EnvOrEmpty("HERALD_TEST_KAFKA_SASL_USER");
  const std::string password_file = EnvOrEmpty("HERALD_TEST_KAFKA_SASL_PASSWORD_FILE");
  if (b.brokers.empty() || b.ca_file.empty() || b.untrusted_ca_file.empty() || b.mechanism.empty() || b.user.empty() ||
      password_file.empty()) {
    ADD_FAILURE() << "HERALD_TEST_KAFKA_SASL_SSL_BROKERS, _CA_FILE, _UNTRUSTED_CA_FILE, _SASL_MECHANISM, _SASL_USER "
                     "and _SASL_PASSWORD_FILE must be set: run scripts/kafka-up.sh (its broker has a SASL_SSL "
                     "listener) and `eval \"$(scripts/servers-env.sh)\"`.";
    return b;
  }
  std::ifstream in(password_file);
  std::getline(in, b.password);
  if (b.password.empty()) ADD_FAILURE() << "no password in HERALD_TEST_KAFKA_SASL_PASSWORD_FILE";
  return b;
}

// Options for a KafkaTransport on the SASL_SSL listener with `password` and
// `ca_file` (the right ones unless a test says otherwise).
inline KafkaTransportOptions SaslSslOptions(const SaslSslBroker& broker, const std::string& client_id,
                                            const std::string& password, const std::string& ca_file) {
  KafkaTransportOptions options = RealBrokerOptions(client_id);
  options.brokers = broker.brokers;
  options.properties["security.protocol"] = "SASL_SSL";
  options.properties["sasl.mechanisms"] = broker.mechanism;
  options.properties["sasl.username"] = broker.user;
  options.properties["sasl.password"] = password;
  options.properties["ssl.ca.location"] = ca_file;
  return options;
}

}  // namespace herald::kafka::test

#endif  // HERALD_KAFKA_SRC_KAFKA_REAL_BROKER_H_
