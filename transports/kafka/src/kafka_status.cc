#include "kafka_status.h"

#include <string>

#include "herald/core/strings.h"
#include "herald/core/transport.h"

namespace herald::kafka {
namespace {

std::string Describe(rd_kafka_resp_err_t err, std::string_view context) {
  return herald::StrCat(context, ": ", rd_kafka_err2str(err), " (", rd_kafka_err2name(err), ")");
}

}  // namespace

absl::Status KafkaErrorToStatus(rd_kafka_resp_err_t err, std::string_view context) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
  const std::string what = Describe(err, context);
  switch (err) {
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
      return absl::ResourceExhaustedError(herald::StrCat(
          what, ". Hint: the producer's local queue is full; publish slower, raise "
                "queue.buffering.max.messages / queue.buffering.max.kbytes, or check that the broker is reachable"));

    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
      // Marked, so that the dispatcher cuts a dead letter down to fit.
      return RecordTooLargeError(herald::StrCat(
          what,
          ". Hint: set KafkaTransportOptions.max_message_bytes to the broker's message.max.bytes and the "
          "topic's max.message.bytes (broker side), or make the event smaller"));

    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
      return absl::DeadlineExceededError(herald::StrCat(
          what, ". Hint: no broker acknowledged the record within delivery_timeout (delivery.timeout.ms); "
                "check that the brokers are up and reachable"));
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
      return absl::DeadlineExceededError(herald::StrCat(what, ". Hint: the broker did not answer in time; retry"));

    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__NODE_UPDATE:
    case RD_KAFKA_RESP_ERR__RETRY:
    case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_REPLICA_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
    case RD_KAFKA_RESP_ERR_FETCH_SESSION_ID_NOT_FOUND:
    case RD_KAFKA_RESP_ERR_INVALID_FETCH_SESSION_EPOCH:
    case RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_PREFERRED_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED:
      return absl::UnavailableError(
          herald::StrCat(what, ". Hint: the cluster is unreachable or moving leadership; this is transient, retry"));

    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__DESTROY:
      return absl::AbortedError(herald::StrCat(
          what, ". Hint: the bus was stopped or destroyed before the record was delivered; publish it again"));

    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
      return absl::NotFoundError(herald::StrCat(
          what, ". Hint: create the topic, or enable auto.create.topics.enable on the brokers"));

    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_DELEGATION_TOKEN_AUTHORIZATION_FAILED:
      return absl::PermissionDeniedError(
          herald::StrCat(what, ". Hint: grant this principal the ACLs it needs (Write/Read on the topic, Read on "
                               "the group, IdempotentWrite on the cluster for an idempotent producer)"));

    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM:
    case RD_KAFKA_RESP_ERR_ILLEGAL_SASL_STATE:
    case RD_KAFKA_RESP_ERR__SSL:
      return absl::UnauthenticatedError(herald::StrCat(
          what, ". Hint: check security.protocol, sasl.mechanism, sasl.username / sasl.password and the TLS "
                "certificates in KafkaTransportOptions::properties"));

    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER:
    case RD_KAFKA_RESP_ERR_DUPLICATE_SEQUENCE_NUMBER:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    case RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR__GAPLESS_GUARANTEE:
    case RD_KAFKA_RESP_ERR__INCONSISTENT:
      return absl::InternalError(herald::StrCat(
          what, ". Hint: the idempotent producer hit a fatal error and can no longer guarantee order and no "
                "duplicates; destroy this bus and create a new one"));

    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
    case RD_KAFKA_RESP_ERR__BAD_MSG:
      return absl::InvalidArgumentError(
          herald::StrCat(what, ". Hint: the request or configuration is invalid; fix it, retrying will not help"));

    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
    case RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID:
    case RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST:
      return absl::AbortedError(herald::StrCat(
          what, ". Hint: the consumer group rebalanced; the records are redelivered to the new owner"));

    case RD_KAFKA_RESP_ERR__STATE:
    case RD_KAFKA_RESP_ERR__NOT_IMPLEMENTED:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
      return absl::FailedPreconditionError(
          herald::StrCat(what, ". Hint: the client or broker is not in a state (or version) that allows this"));

    default:
      return absl::UnknownError(what);
  }
}

absl::Status KafkaErrorToStatus(const rd_kafka_error_t* error, std::string_view context) {
  if (error == nullptr) return absl::OkStatus();
  rd_kafka_resp_err_t code = rd_kafka_error_code(error);
  if (rd_kafka_error_is_fatal(error)) {
    return absl::InternalError(herald::StrCat(context, ": fatal: ", rd_kafka_error_string(error), " (",
                                              rd_kafka_error_name(error),
                                              "). Hint: destroy this bus and create a new one"));
  }
  absl::Status mapped = KafkaErrorToStatus(code, herald::StrCat(context, ": ", rd_kafka_error_string(error)));
  if (rd_kafka_error_is_retriable(error) && !mapped.ok() && mapped.code() != absl::StatusCode::kUnavailable &&
      mapped.code() != absl::StatusCode::kDeadlineExceeded && mapped.code() != absl::StatusCode::kResourceExhausted &&
      mapped.code() != absl::StatusCode::kAborted) {
    return absl::UnavailableError(mapped.message());
  }
  return mapped;
}

}  // namespace herald::kafka
