#include "herald/testing/fake_clock.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace herald::testing {
namespace {

TEST(FakeClock, StartsAtNewYear2026ByDefault) {
  FakeClock clock;
  EXPECT_EQ(clock.Now(), absl::FromCivil(absl::CivilSecond(2026, 1, 1, 0, 0, 0), absl::UTCTimeZone()));
  EXPECT_EQ(clock.Now(), FakeClock::DefaultStart());
}

TEST(FakeClock, StartsAtGivenTime) {
  absl::Time start = absl::FromUnixMillis(123456789);
  FakeClock clock(start);
  EXPECT_EQ(clock.Now(), start);
}

TEST(FakeClock, DoesNotMoveByItself) {
  FakeClock clock;
  absl::Time t = clock.Now();
  absl::SleepFor(absl::Milliseconds(2));
  EXPECT_EQ(clock.Now(), t);
}

TEST(FakeClock, AdvanceAndSetMoveTime) {
  FakeClock clock;
  absl::Time start = clock.Now();
  clock.Advance(absl::Seconds(90));
  EXPECT_EQ(clock.Now(), start + absl::Seconds(90));
  clock.Advance(absl::Seconds(-30));
  EXPECT_EQ(clock.Now(), start + absl::Seconds(60));
  clock.Set(absl::UnixEpoch());
  EXPECT_EQ(clock.Now(), absl::UnixEpoch());
}

TEST(FakeClock, SleepForAdvancesAtOnceAndIgnoresNonPositive) {
  FakeClock clock;
  absl::Time start = clock.Now();
  absl::Time wall = absl::Now();
  clock.SleepFor(absl::Hours(1));
  EXPECT_LT(absl::Now() - wall, absl::Minutes(1));  // did not really sleep an hour
  EXPECT_EQ(clock.Now(), start + absl::Hours(1));
  clock.SleepFor(absl::ZeroDuration());
  clock.SleepFor(absl::Seconds(-5));
  EXPECT_EQ(clock.Now(), start + absl::Hours(1));
  EXPECT_EQ(clock.total_slept(), absl::Hours(1));
}

TEST(FakeClock, UsableThroughClockInterface) {
  FakeClock fake;
  const Clock& clock = fake;
  clock.SleepFor(absl::Milliseconds(250));
  EXPECT_EQ(clock.Now(), FakeClock::DefaultStart() + absl::Milliseconds(250));
}

TEST(FakeClock, ConcurrentAdvancesAllCount) {
  FakeClock clock;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        clock.Advance(absl::Milliseconds(1));
        (void)clock.Now();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(clock.Now(), FakeClock::DefaultStart() + absl::Seconds(4));
}

}  // namespace
}  // namespace herald::testing
