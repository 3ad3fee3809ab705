#include "herald/core/uuid.h"

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace herald {
namespace {

uint64_t HexPrefix(const std::string& id) {
  // 48-bit unix_ts_ms: the first 12 hex digits (8 + 4 after the dash).
  std::string hex = id.substr(0, 8) + id.substr(9, 4);
  uint64_t ms = 0;
  EXPECT_TRUE(absl::SimpleHexAtoi(hex, &ms)) << id;
  return ms;
}

TEST(Uuid, CanonicalFormWithVersionAndVariant) {
  std::string id = NewUuidV7(absl::Now());
  ASSERT_EQ(id.size(), 36u);
  EXPECT_EQ(id[8], '-');
  EXPECT_EQ(id[13], '-');
  EXPECT_EQ(id[18], '-');
  EXPECT_EQ(id[23], '-');
  EXPECT_EQ(id[14], '7') << id;
  EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
  for (char c : id) EXPECT_TRUE(c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << id;
  EXPECT_TRUE(IsUuidV7(id));
}

TEST(Uuid, EmbedsTheUnixMilliseconds) {
  absl::Time t = absl::FromUnixMillis(2000000000123);  // later than any id made so far in this process
  std::string id = NewUuidV7(t);
  EXPECT_EQ(HexPrefix(id), 2000000000123u);
}

TEST(Uuid, StrictlyIncreasingWithinOneMillisecond) {
  absl::Time t = absl::FromUnixMillis(2100000000000);
  std::string previous = NewUuidV7(t);
  for (int i = 0; i < 10000; ++i) {  // more than the 4096 counter values of one ms
    std::string id = NewUuidV7(t);
    ASSERT_LT(previous, id) << i;
    ASSERT_TRUE(IsUuidV7(id)) << id;
    previous = id;
  }
}

TEST(Uuid, NeverGoesBackwardWhenTheClockDoes) {
  std::string late = NewUuidV7(absl::FromUnixMillis(2200000000000));
  std::string early = NewUuidV7(absl::FromUnixMillis(1000));
  EXPECT_LT(late, early);
}

TEST(Uuid, BeforeEpochIsClampedNotCrashing) { EXPECT_TRUE(IsUuidV7(NewUuidV7(absl::InfinitePast()))); }

TEST(Uuid, UniqueAndIncreasingPerThreadUnderConcurrency) {
  constexpr int kThreads = 8, kPerThread = 5000;
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&ids, t] {
      ids[t].reserve(kPerThread);
      for (int i = 0; i < kPerThread; ++i) ids[t].push_back(NewUuidV7(absl::Now()));
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& v : ids) {
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
    for (size_t i = 1; i < v.size(); ++i) ASSERT_LT(v[i - 1], v[i]);
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST(IsUuidV7, RejectsOtherShapes) {
  EXPECT_TRUE(IsUuidV7("0190a6f2-3c1e-7b3a-9f4e-2b8c1d0e5a77"));
  EXPECT_TRUE(IsUuidV7("0190a6f2-3c1e-7b3a-bf4e-2b8c1d0e5a77"));
  EXPECT_FALSE(IsUuidV7(""));
  EXPECT_FALSE(IsUuidV7("0190a6f2-3c1e-4b3a-9f4e-2b8c1d0e5a77"));   // version 4
  EXPECT_FALSE(IsUuidV7("0190a6f2-3c1e-7b3a-cf4e-2b8c1d0e5a77"));   // variant 110
  EXPECT_FALSE(IsUuidV7("0190A6F2-3C1E-7B3A-9F4E-2B8C1D0E5A77"));   // uppercase
  EXPECT_FALSE(IsUuidV7("0190a6f2-3c1e-7b3a-9f4e-2b8c1d0e5a7"));    // short
  EXPECT_FALSE(IsUuidV7("0190a6f2-3c1e-7b3a-9f4e-2b8c1d0e5a777"));  // long
  EXPECT_FALSE(IsUuidV7("0190a6f2_3c1e-7b3a-9f4e-2b8c1d0e5a77"));   // separator
  EXPECT_FALSE(IsUuidV7("0190a6f23c1e7b3a9f4e2b8c1d0e5a77"));       // no dashes
  EXPECT_FALSE(IsUuidV7("0190a6g2-3c1e-7b3a-9f4e-2b8c1d0e5a77"));   // non-hex
}

}  // namespace
}  // namespace herald
