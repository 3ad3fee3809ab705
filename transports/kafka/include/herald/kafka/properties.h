// herald/kafka/properties.h: librdkafka properties from outside the program,
// and which of them are secrets.
//
// KafkaTransportOptions::properties passes any librdkafka property through.
// These functions let a program take them from a file in the format that
// librdkafka and kcat users already keep (`key=value` lines, `#` comments),
// check each one against librdkafka before anything connects, and know which
// values must never be shown.
//
//   // path: e.g. /etc/herald/kafka.properties
//   HERALD_ASSIGN_OR_RETURN(auto file, herald::kafka::ReadPropertiesFile(path));
//   for (const auto& [name, property] : file) options.properties[name] = property.value;
//
// IsSecretProperty is the one place that decides what is secret: every error
// and log line of the Kafka transport, its topic reader and the `herald`
// program redacts the values of those properties.
//
// Thread-safety: every function may be called from any thread.
#ifndef HERALD_KAFKA_PROPERTIES_H_
#define HERALD_KAFKA_PROPERTIES_H_

#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace herald::kafka {

// True for librdkafka property names whose values are secrets and must
// never be shown: any name containing "password", "passphrase" or "secret"
// (sasl.password, ssl.key.password, ssl.keystore.password,
// sasl.oauthbearer.client.secret, ...), private keys given inline
// (ssl.key.pem, ssl_key, ssl_key.pem and any other name ending in "key.pem")
// and sasl.oauthbearer.config (it may hold a client secret). Case does not
// matter.
bool IsSecretProperty(std::string_view name);

// Replaces, in `text`, every non-empty value of a secret property of
// `properties` by "[redacted]".
std::string RedactSecretValues(const std::map<std::string, std::string>& properties, std::string text);

// Checks one property as librdkafka takes it (rd_kafka_conf_set on a fresh
// configuration): kInvalidArgument naming the property for an unknown name
// or a value librdkafka refuses, with librdkafka's reason (the value of a
// secret property is never shown). A property that librdkafka checks only
// when a client is created (a file that does not exist, a combination of
// settings) passes here and fails at KafkaTransport::Create.
absl::Status CheckProperty(std::string_view name, std::string_view value);

// One property read from a file, and where.
struct PropertyFromFile {
  std::string value;
  int line = 0;  // 1-based
};

// Parses the text of a librdkafka properties file: one `key=value` per line
// (split at the first '='; whitespace around the key and the value is
// dropped), blank lines and lines starting with '#' ignored, CRLF line ends
// accepted. kInvalidArgument naming `origin`:LINE (and the key, never a
// value) for a line without '=' or with an empty key, a key given twice, or
// a line ending in a backslash (Java's line continuations are not
// supported). Names and values are not checked against librdkafka here.
absl::StatusOr<std::map<std::string, PropertyFromFile>> ParseProperties(std::string_view text, std::string_view origin);

// Reads and parses the file at `path` (ParseProperties, errors naming
// `path`:LINE), then checks every property with CheckProperty: the first
// unknown property or refused value is kInvalidArgument naming `path`:LINE
// and the key. kNotFound / kPermissionDenied when the file cannot be read.
absl::StatusOr<std::map<std::string, PropertyFromFile>> ReadPropertiesFile(const std::string& path);

}  // namespace herald::kafka

#endif  // HERALD_KAFKA_PROPERTIES_H_
