// Unit tests: the librdkafka error -> absl::Status table.
#include "kafka_status.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/status.h"
#include "herald/core/transport.h"
#include "herald/testing/status_matchers.h"

namespace herald::kafka {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

struct Row {
  rd_kafka_resp_err_t err;
  absl::StatusCode code;
  bool retryable;
};

class KafkaErrorToStatusTable : public ::testing::TestWithParam<Row> {};

TEST_P(KafkaErrorToStatusTable, MapsCodeAndRetryability) {
  const Row& row = GetParam();
  absl::Status s = KafkaErrorToStatus(row.err, "publish to orders");
  EXPECT_EQ(s.code(), row.code) << rd_kafka_err2name(row.err) << ": " << s;
  EXPECT_EQ(IsRetryable(s), row.retryable) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("publish to orders"));
  EXPECT_THAT(std::string(s.message()), HasSubstr(rd_kafka_err2name(row.err)));
}

INSTANTIATE_TEST_SUITE_P(
    Codes, KafkaErrorToStatusTable,
    ::testing::Values(Row{RD_KAFKA_RESP_ERR__QUEUE_FULL, absl::StatusCode::kResourceExhausted, true},
                      Row{RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, absl::StatusCode::kInvalidArgument, false},
                      Row{RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, absl::StatusCode::kDeadlineExceeded, true},
                      Row{RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, absl::StatusCode::kDeadlineExceeded, true},
                      Row{RD_KAFKA_RESP_ERR__TRANSPORT, absl::StatusCode::kUnavailable, true},
                      Row{RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, absl::StatusCode::kUnavailable, true},
                      Row{RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, absl::StatusCode::kUnavailable, true},
                      Row{RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, absl::StatusCode::kUnavailable, true},
                      Row{RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, absl::StatusCode::kNotFound, false},
                      Row{RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, absl::StatusCode::kNotFound, false},
                      Row{RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, absl::StatusCode::kPermissionDenied, false},
                      Row{RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED, absl::StatusCode::kPermissionDenied, false},
                      Row{RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED, absl::StatusCode::kUnauthenticated, false},
                      Row{RD_KAFKA_RESP_ERR__AUTHENTICATION, absl::StatusCode::kUnauthenticated, false},
                      Row{RD_KAFKA_RESP_ERR__FATAL, absl::StatusCode::kInternal, false},
                      Row{RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, absl::StatusCode::kInternal, false},
                      Row{RD_KAFKA_RESP_ERR_PRODUCER_FENCED, absl::StatusCode::kInternal, false},
                      Row{RD_KAFKA_RESP_ERR__PURGE_QUEUE, absl::StatusCode::kAborted, true},
                      Row{RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION, absl::StatusCode::kAborted, true},
                      Row{RD_KAFKA_RESP_ERR__INVALID_ARG, absl::StatusCode::kInvalidArgument, false},
                      Row{RD_KAFKA_RESP_ERR__STATE, absl::StatusCode::kFailedPrecondition, false}));

TEST(KafkaErrorToStatus, NoErrorIsOk) { EXPECT_THAT(KafkaErrorToStatus(RD_KAFKA_RESP_ERR_NO_ERROR, "x"), IsOk()); }

TEST(KafkaErrorToStatus, MessageTooLargeHintsAtMessageMaxBytesAndIsMarkedTooLarge) {
  for (rd_kafka_resp_err_t err : {RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE}) {
    absl::Status status = KafkaErrorToStatus(err, "publish");
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument,
                                 AllOf(HasSubstr("max_message_bytes"), HasSubstr("message.max.bytes"))));
    // What makes the dispatcher cut a dead letter down instead of retrying it for ever.
    EXPECT_TRUE(IsRecordTooLarge(status)) << status;
  }
  EXPECT_FALSE(IsRecordTooLarge(KafkaErrorToStatus(RD_KAFKA_RESP_ERR_INVALID_MSG, "publish")));
}

TEST(KafkaErrorToStatus, UnknownTopicHintsAtCreatingIt) {
  EXPECT_THAT(KafkaErrorToStatus(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, "publish"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("auto.create.topics.enable")));
}

TEST(KafkaErrorToStatus, FatalErrorObjectIsInternal) {
  rd_kafka_error_t* error = rd_kafka_error_new(RD_KAFKA_RESP_ERR__FATAL, "fenced");
  // rd_kafka_error_new makes non-fatal errors; the code alone maps to kInternal.
  EXPECT_THAT(KafkaErrorToStatus(error, "publish"), StatusIs(absl::StatusCode::kInternal, HasSubstr("fenced")));
  rd_kafka_error_destroy(error);
}

TEST(KafkaErrorToStatus, UnlistedCodeIsUnknownAndPermanent) {
  absl::Status s = KafkaErrorToStatus(RD_KAFKA_RESP_ERR_INVALID_TXN_STATE, "commit");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnknown);
  EXPECT_FALSE(IsRetryable(s));
}

}  // namespace
}  // namespace herald::kafka
