// Unit tests: when a record librdkafka reports delivered counts as written
// (DeliveryConfirmed). kafka_new_topic_kafkatest shows the case on a broker.
#include "kafka_producer.h"

#include <librdkafka/rdkafka.h>

#include "gtest/gtest.h"

namespace herald::kafka {
namespace {

TEST(DeliveryConfirmed, ARecordWithItsOffsetIsWritten) {
  EXPECT_TRUE(DeliveryConfirmed(0, /*acks_report_offsets=*/true));
  EXPECT_TRUE(DeliveryConfirmed(123456789, /*acks_report_offsets=*/true));
}

TEST(DeliveryConfirmed, ARecordWithoutAnOffsetIsNotProvenWritten) {
  // librdkafka's implicit ack: the record's own request failed, a later
  // batch of the partition succeeded, and the record has no offset.
  EXPECT_FALSE(DeliveryConfirmed(RD_KAFKA_OFFSET_INVALID, /*acks_report_offsets=*/true));
  EXPECT_FALSE(DeliveryConfirmed(-1, /*acks_report_offsets=*/true));
}

TEST(DeliveryConfirmed, WithAcksZeroNoRecordHasAnOffsetAndNoneIsRefused) {
  // acks=0: the broker answers nothing, librdkafka reports every record
  // delivered once sent; that is what the user asked for.
  EXPECT_TRUE(DeliveryConfirmed(RD_KAFKA_OFFSET_INVALID, /*acks_report_offsets=*/false));
}

}  // namespace
}  // namespace herald::kafka
