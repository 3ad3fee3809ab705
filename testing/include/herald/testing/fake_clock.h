// herald/testing/fake_clock.h: a herald::Clock that moves only when told.
//
// Hand its address to the `clock` of BusOptions, EnvelopeOptions,
// RelayOptions or InMemoryTransportOptions, or the clock itself to
// InMemoryOutboxStore (which takes a `const herald::Clock&`), and step time
// by hand,
// so tests about timestamps, backoff and retention need no sleeping:
//
//   herald::testing::FakeClock clock;                 // 2026-01-01T00:00:00Z
//   herald::Envelope e = herald::MakeEnvelope(event, {.clock = &clock});
//   EXPECT_EQ(e.time, clock.Now());
//   clock.Advance(absl::Minutes(5));
//
// SleepFor(d) does not block: it advances the clock by `d` (negative and zero
// durations are ignored) and returns at once, so code that sleeps on the
// clock runs instantly in tests.
//
// Thread-safe: every method may be called concurrently.
#ifndef HERALD_TESTING_FAKE_CLOCK_H_
#define HERALD_TESTING_FAKE_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "herald/core/clock.h"
#include "herald/core/mutex.h"

namespace herald::testing {

class FakeClock : public herald::Clock {
 public:
  // 2026-01-01T00:00:00Z, the default start time.
  static absl::Time DefaultStart();

  // Starts at DefaultStart().
  FakeClock();
  // Starts at `start`.
  explicit FakeClock(absl::Time start);

  // The current fake time.
  absl::Time Now() const override;
  // Advances the clock by `d` (if positive) and returns at once.
  void SleepFor(absl::Duration d) const override;

  // Moves the clock forward by `d` (backward when `d` is negative).
  void Advance(absl::Duration d);
  // Sets the time to `t`, forward or backward.
  void Set(absl::Time t);
  // The sum of every duration passed to SleepFor so far.
  absl::Duration total_slept() const;

 private:
  mutable Mutex mu_;
  mutable absl::Time now_ ABSL_GUARDED_BY(mu_);
  mutable absl::Duration slept_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
};

}  // namespace herald::testing

#endif  // HERALD_TESTING_FAKE_CLOCK_H_
