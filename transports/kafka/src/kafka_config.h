// Builds librdkafka configurations from KafkaTransportOptions (private).
//
// Pure functions, testable without a broker: read the result back with
// rd_kafka_conf_get. Typed options are applied first, then `properties`,
// then the producer/consumer specific maps, so the pass-through wins.
// Errors name the property and librdkafka's reason; the value of a secret
// property (IsSecretProperty, herald/kafka/properties.h) is never shown.
#ifndef HERALD_KAFKA_SRC_KAFKA_CONFIG_H_
#define HERALD_KAFKA_SRC_KAFKA_CONFIG_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "herald/kafka/kafka_transport.h"
#include "herald/kafka/properties.h"
#include "rdkafka_handles.h"

namespace herald::kafka {

// Replaces every secret value of `options` (in `properties`,
// `producer_properties` and `consumer_properties`) found in `text` by
// "[redacted]" (RedactSecretValues of each map).
std::string RedactSecrets(const KafkaTransportOptions& options, std::string text);

// The producer configuration (no callbacks set).
absl::StatusOr<ConfPtr> BuildProducerConf(const KafkaTransportOptions& options);

// The configuration of the consumer for `group` (no callbacks set).
absl::StatusOr<ConfPtr> BuildConsumerConf(const KafkaTransportOptions& options, std::string_view group);

// The configuration of a read-only consumer (KafkaTopicReader, no callbacks
// set): `group` is only a name for librdkafka's assign(), never joined
// (nothing is ever committed, so the broker keeps no trace of it); no
// commits, no offset store; `properties` and `consumer_properties` apply,
// but commits stay off whatever they say.
absl::StatusOr<ConfPtr> BuildReaderConf(const KafkaTransportOptions& options, std::string_view group);

// rd_kafka_conf_get as a string ("" when unknown); for tests and logs.
std::string ConfValue(const rd_kafka_conf_t* conf, const char* name);

}  // namespace herald::kafka

#endif  // HERALD_KAFKA_SRC_KAFKA_CONFIG_H_
