// The crash tests' counting, on made-up deliveries: a checker that cannot
// see a lost, reordered or duplicated event would make the crash tests pass
// whatever the relay does.
#include "crash_harness.h"

#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace herald::crash {
namespace {

Delivery At(int32_t partition, int64_t offset, const std::string& key, int64_t n, absl::Time produced) {
  Delivery d;
  d.partition = partition;
  d.offset = offset;
  d.record_key = key;
  d.key = key;
  d.n = n;
  d.id = key + "#" + std::to_string(n);
  d.produced = produced;
  d.read = produced;
  return d;
}

std::map<std::string, Committed> CommittedFor(const std::string& key, int64_t count) {
  std::map<std::string, Committed> out;
  for (int64_t n = 0; n < count; ++n) out[key + "#" + std::to_string(n)] = Committed{key, n};
  return out;
}

const absl::Time t0 = absl::FromUnixSeconds(1000);

TEST(CountRelayRun, CleanRunCountsNothingWrong) {
  std::vector<Delivery> d = {At(0, 0, "a", 0, t0), At(0, 1, "a", 1, t0 + absl::Seconds(1)),
                             At(0, 2, "a", 2, t0 + absl::Seconds(2))};
  RelayCount c = CountRelayRun(d, CommittedFor("a", 3), {});
  EXPECT_EQ(c.records, 3);
  EXPECT_EQ(c.distinct, 3);
  EXPECT_EQ(c.lost, 0);
  EXPECT_EQ(c.duplicates, 0);
  EXPECT_EQ(c.order_violations, 0);
  EXPECT_EQ(c.unexpected, 0);
  EXPECT_EQ(c.longest_gap, absl::Seconds(1));
}

TEST(CountRelayRun, RepublishedBatchIsDuplicatesNotViolations) {
  // 0 1 2 delivered, the relay killed before marking 1 and 2: 1 2 again, then 3.
  std::vector<Delivery> d = {At(0, 0, "a", 0, t0), At(0, 1, "a", 1, t0), At(0, 2, "a", 2, t0),
                             At(0, 3, "a", 1, t0), At(0, 4, "a", 2, t0), At(0, 5, "a", 3, t0)};
  RelayCount c = CountRelayRun(d, CommittedFor("a", 4), {});
  EXPECT_EQ(c.duplicates, 2);
  EXPECT_EQ(c.order_violations, 0);
  EXPECT_EQ(c.lost, 0);
}

TEST(CountRelayRun, SeesLossReorderAndStrangers) {
  // 1 first delivered before 0; 3 never delivered; a record nobody committed.
  std::vector<Delivery> d = {At(0, 0, "a", 1, t0), At(0, 1, "a", 0, t0), At(0, 2, "a", 2, t0), At(0, 3, "b", 0, t0)};
  RelayCount c = CountRelayRun(d, CommittedFor("a", 4), {});
  EXPECT_EQ(c.order_violations, 1);
  EXPECT_EQ(c.lost, 1);
  EXPECT_EQ(c.unexpected, 1);
  EXPECT_FALSE(c.first_problem.empty());
}

TEST(CountRelayRun, SeesWrongKeysAndSplitPartitions) {
  std::vector<Delivery> d = {At(0, 0, "a", 0, t0), At(1, 0, "a", 1, t0)};
  d[0].record_key = "";  // the key_from did not give the row its key
  RelayCount c = CountRelayRun(d, CommittedFor("a", 2), {});
  EXPECT_GE(c.key_mismatches, 1);
}

TEST(CountRelayRun, GapsOverlappingAnExcludedWindowAreCountedApart) {
  std::vector<Delivery> d = {At(0, 0, "a", 0, t0), At(0, 1, "a", 1, t0 + absl::Seconds(2)),
                             At(0, 2, "a", 2, t0 + absl::Seconds(22))};
  RelayCount c = CountRelayRun(d, CommittedFor("a", 3), {{t0 + absl::Seconds(5), t0 + absl::Seconds(15)}});
  EXPECT_EQ(c.longest_gap, absl::Seconds(2));
  EXPECT_EQ(c.longest_excluded_gap, absl::Seconds(20));
  ASSERT_EQ(c.recovery.size(), 1u);
  EXPECT_EQ(c.recovery[0], absl::Seconds(7));  // read at 22 s, the window ended at 15 s
}

TEST(Payload, RoundTrips) {
  std::string key;
  int64_t n = 0;
  ASSERT_TRUE(ParsePayload(Payload("key-07", 1234), &key, &n));
  EXPECT_EQ(key, "key-07");
  EXPECT_EQ(n, 1234);
  EXPECT_FALSE(ParsePayload("{\"k\":\"a\",\"n\":}", &key, &n));
  EXPECT_FALSE(ParsePayload("[]", &key, &n));
}

}  // namespace
}  // namespace herald::crash
