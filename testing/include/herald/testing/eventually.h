// herald/testing/eventually.h: wait in a test until a condition holds,
// instead of sleeping for a fixed time or hand-writing a deadline loop.
//
//   ASSERT_TRUE(herald::testing::Eventually([&] { return fake.published().size() == 3; }));
//
//   EXPECT_TRUE(Eventually([&] { return !relay.Stats().leader; }, absl::Seconds(30)))
//       << "the relay never noticed the outage";
//
// Eventually calls `condition` on the calling thread, first at once and then
// every `poll` of real time, until it returns true (AssertionSuccess) or
// `timeout` has passed; the condition is checked once more at the deadline.
// On timeout the AssertionFailure says how long it waited and how many times
// it checked; add what was expected with `<<`. The condition must be cheap
// and safe to call from the test thread (take the locks it needs).
//
// Thread-safety: a pure function; `condition` runs only on the caller.
#ifndef HERALD_TESTING_EVENTUALLY_H_
#define HERALD_TESTING_EVENTUALLY_H_

#include <algorithm>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace herald::testing {

// How long Eventually waits by default: long enough for a loaded CI machine
// (a condition that holds returns at once, so a generous bound costs nothing).
inline constexpr absl::Duration kEventuallyTimeout = absl::Seconds(30);
// How often Eventually checks by default.
inline constexpr absl::Duration kEventuallyPoll = absl::Milliseconds(5);

template <typename Condition>
::testing::AssertionResult Eventually(Condition&& condition, absl::Duration timeout = kEventuallyTimeout,
                                      absl::Duration poll = kEventuallyPoll) {
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + timeout;
  int64_t checks = 0;
  while (true) {
    ++checks;
    if (condition()) return ::testing::AssertionSuccess();
    const absl::Time now = absl::Now();
    if (now >= deadline) break;
    absl::SleepFor(std::min(poll, deadline - now));
  }
  return ::testing::AssertionFailure() << "the condition was still false after "
                                       << absl::FormatDuration(absl::Now() - start) << " (timeout "
                                       << absl::FormatDuration(timeout) << ", checked " << checks << " times)";
}

}  // namespace herald::testing

#endif  // HERALD_TESTING_EVENTUALLY_H_
