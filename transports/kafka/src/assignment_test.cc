// Unit tests: a rebalance's assignment change reports librdkafka's refusal.
// A consumer handle that never reaches a broker is enough: librdkafka
// applies (and checks) assignments locally.
#include <string>

#include "assignment.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/testing/status_matchers.h"
#include "rdkafka_handles.h"

namespace herald::kafka {
namespace {

using ::herald::testing::IsOk;
using ::testing::HasSubstr;
using ::testing::Not;

HandlePtr OfflineConsumer() {
  ConfPtr conf(rd_kafka_conf_new());
  char err[512];
  EXPECT_EQ(rd_kafka_conf_set(conf.get(), "group.id", "assignment-unit-test", err, sizeof(err)), RD_KAFKA_CONF_OK);
  EXPECT_EQ(rd_kafka_conf_set(conf.get(), "log_level", "0", err, sizeof(err)), RD_KAFKA_CONF_OK);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), err, sizeof(err));
  EXPECT_NE(rk, nullptr) << err;
  if (rk != nullptr) static_cast<void>(conf.release());  // owned by rk now
  return HandlePtr(rk);
}

PartitionListPtr Partitions(int n) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(n));
  for (int i = 0; i < n; ++i) rd_kafka_topic_partition_list_add(list.get(), "orders", i);
  return list;
}

int AssignedCount(rd_kafka_t* rk) {
  rd_kafka_topic_partition_list_t* raw = nullptr;
  if (rd_kafka_assignment(rk, &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return -1;
  PartitionListPtr assigned(raw);
  return assigned->cnt;
}

TEST(ApplyRebalance, CooperativeAddsAndRemovesAndReportsRefusals) {
  HandlePtr rk = OfflineConsumer();
  ASSERT_NE(rk, nullptr);
  PartitionListPtr two = Partitions(2);
  EXPECT_THAT(ApplyRebalance(rk.get(), AssignmentChange::kAssign, /*cooperative=*/true, two.get()), IsOk());
  EXPECT_EQ(AssignedCount(rk.get()), 2);

  absl::Status twice = ApplyRebalance(rk.get(), AssignmentChange::kAssign, /*cooperative=*/true, two.get());
  EXPECT_THAT(twice, Not(IsOk())) << "a partition assigned twice is refused";
  EXPECT_THAT(std::string(twice.message()), HasSubstr("incremental assign"));

  EXPECT_THAT(ApplyRebalance(rk.get(), AssignmentChange::kRevoke, /*cooperative=*/true, two.get()), IsOk());
  EXPECT_EQ(AssignedCount(rk.get()), 0);
  absl::Status unassigned = ApplyRebalance(rk.get(), AssignmentChange::kRevoke, /*cooperative=*/true, two.get());
  EXPECT_THAT(unassigned, Not(IsOk())) << "revoking what is not assigned is refused";
  EXPECT_THAT(std::string(unassigned.message()), HasSubstr("incremental unassign"));
}

TEST(ApplyRebalance, EagerSetsAndClearsTheWholeAssignment) {
  HandlePtr rk = OfflineConsumer();
  ASSERT_NE(rk, nullptr);
  PartitionListPtr three = Partitions(3);
  EXPECT_THAT(ApplyRebalance(rk.get(), AssignmentChange::kAssign, /*cooperative=*/false, three.get()), IsOk());
  EXPECT_EQ(AssignedCount(rk.get()), 3);
  PartitionListPtr one = Partitions(1);
  EXPECT_THAT(ApplyRebalance(rk.get(), AssignmentChange::kRevoke, /*cooperative=*/false, one.get()), IsOk());
  EXPECT_EQ(AssignedCount(rk.get()), 0) << "the eager protocol revokes everything";
}

}  // namespace
}  // namespace herald::kafka
