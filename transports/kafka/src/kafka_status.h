// The one mapping from librdkafka errors to absl::Status (private).
//
// Retryable codes (herald::IsRetryable): kUnavailable for broker/network
// trouble, kDeadlineExceeded for timeouts, kResourceExhausted for a full
// local queue, kAborted for publishes purged at shutdown. Permanent:
// kInvalidArgument (too large, bad config), kNotFound (unknown topic),
// kPermissionDenied / kUnauthenticated (ACLs, SASL/TLS), kInternal (fatal
// idempotent-producer errors: recreate the transport). Messages carry a hint.
#ifndef HERALD_KAFKA_SRC_KAFKA_STATUS_H_
#define HERALD_KAFKA_SRC_KAFKA_STATUS_H_

#include <librdkafka/rdkafka.h>

#include <string_view>

#include "absl/status/status.h"

namespace herald::kafka {

// `context` says what was being done, e.g. "publish to orders".
absl::Status KafkaErrorToStatus(rd_kafka_resp_err_t err, std::string_view context);

// The same for an rd_kafka_error_t (fatal -> kInternal, retriable ->
// kUnavailable unless the code says better). Does not take ownership.
absl::Status KafkaErrorToStatus(const rd_kafka_error_t* error, std::string_view context);

}  // namespace herald::kafka

#endif  // HERALD_KAFKA_SRC_KAFKA_STATUS_H_
