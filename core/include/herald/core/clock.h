// herald/core/clock.h: the source of time for ids, timestamps and backoff.
//
// Everything in herald that reads the time takes a `const Clock&`, so tests
// can substitute herald::testing::FakeClock and step time by hand.
//
// Thread-safe: implementations must allow concurrent calls.
#ifndef HERALD_CORE_CLOCK_H_
#define HERALD_CORE_CLOCK_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace herald {

class Clock {
 public:
  virtual ~Clock() = default;
  // The current time.
  virtual absl::Time Now() const = 0;
  // Blocks the calling thread for `d` of this clock's time. A fake clock may
  // return at once after advancing itself.
  virtual void SleepFor(absl::Duration d) const = 0;
};

// The process-wide wall clock (absl::Now / absl::SleepFor). Never destroyed.
const Clock& SystemClock();

}  // namespace herald

#endif  // HERALD_CORE_CLOCK_H_
