#include "herald/testing/eventually.h"

#include <atomic>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald::testing {
namespace {

using ::testing::HasSubstr;

TEST(Eventually, SucceedsAtOnceWhenTheConditionAlreadyHolds) {
  int checks = 0;
  const absl::Time start = absl::Now();
  EXPECT_TRUE(Eventually([&] {
    ++checks;
    return true;
  }));
  EXPECT_EQ(checks, 1);
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
}

TEST(Eventually, WaitsForAConditionThatAnotherThreadMakesTrue) {
  std::atomic<bool> done{false};
  std::thread setter([&] {
    absl::SleepFor(absl::Milliseconds(50));
    done.store(true);
  });
  EXPECT_TRUE(Eventually([&] { return done.load(); }, absl::Seconds(30)));
  setter.join();
}

TEST(Eventually, FailsAfterTheTimeoutSayingHowLongAndHowOften) {
  int checks = 0;
  const absl::Time start = absl::Now();
  ::testing::AssertionResult result = Eventually(
      [&] {
        ++checks;
        return false;
      },
      absl::Milliseconds(100), absl::Milliseconds(10));
  const absl::Duration waited = absl::Now() - start;
  EXPECT_FALSE(result);
  EXPECT_GE(waited, absl::Milliseconds(100));
  EXPECT_LT(waited, absl::Seconds(10));
  EXPECT_GE(checks, 2) << "checked at the start and again at the deadline";
  EXPECT_THAT(result.message(), HasSubstr("still false after"));
  EXPECT_THAT(result.message(), HasSubstr("timeout 100ms"));
}

}  // namespace
}  // namespace herald::testing
