// herald/core/config.h: a service's topics and identity from configuration.
//
// As in the seed services, a service writes to one topic and reads from a
// list of topics; these are configuration, not code:
//
//   HERALD_ASSIGN_OR_RETURN(herald::ServiceConfig config, herald::ServiceConfig::FromEnv());
//   // HERALD_SERVICE_NAME=customer-service
//   // HERALD_WRITE_TOPIC=customer-events
//   // HERALD_READ_TOPICS=customer-events,product-events
//   // HERALD_CONSUMER_GROUP=event-reader   (default: the service name)
//
// FromFile reads the same keys from a `KEY=value` file (# comments, blank
// lines allowed); environment variables override file values in FromFileAndEnv.
// Topic names are validated as Kafka topic names ([A-Za-z0-9._-], 1..249
// characters); errors are kInvalidArgument naming the key.
#ifndef HERALD_CORE_CONFIG_H_
#define HERALD_CORE_CONFIG_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace herald {

struct ServiceConfig {
  // CloudEvents source and default consumer group. Required.
  std::string service_name;
  // Where this service publishes. Required.
  std::string write_topic;
  // What this service consumes. May be empty for a pure producer.
  std::vector<std::string> read_topics;
  // Consumer group. Default: service_name.
  std::string consumer_group;

  // From HERALD_SERVICE_NAME, HERALD_WRITE_TOPIC, HERALD_READ_TOPICS (comma
  // separated) and HERALD_CONSUMER_GROUP.
  static absl::StatusOr<ServiceConfig> FromEnv();
  // From a KEY=value file with the same keys. kNotFound when it is missing.
  static absl::StatusOr<ServiceConfig> FromFile(const std::string& path);
  // From `values` (the keys above); used by FromEnv and FromFile.
  static absl::StatusOr<ServiceConfig> FromMap(const std::map<std::string, std::string>& values);

  // kInvalidArgument when a field is missing or a topic name is invalid.
  absl::Status Validate() const;
};

// kInvalidArgument unless `topic` is a legal Kafka topic name.
absl::Status ValidateTopicName(std::string_view topic);

}  // namespace herald

#endif  // HERALD_CORE_CONFIG_H_
