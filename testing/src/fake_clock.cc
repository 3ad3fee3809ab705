#include "herald/testing/fake_clock.h"

namespace herald::testing {

absl::Time FakeClock::DefaultStart() { return absl::FromUnixSeconds(1767225600); }  // 2026-01-01T00:00:00Z

FakeClock::FakeClock() : FakeClock(DefaultStart()) {}

FakeClock::FakeClock(absl::Time start) : now_(start) {}

absl::Time FakeClock::Now() const {
  MutexLock lock(mu_);
  return now_;
}

void FakeClock::SleepFor(absl::Duration d) const {
  if (d <= absl::ZeroDuration()) return;
  MutexLock lock(mu_);
  now_ += d;
  slept_ += d;
}

void FakeClock::Advance(absl::Duration d) {
  MutexLock lock(mu_);
  now_ += d;
}

void FakeClock::Set(absl::Time t) {
  MutexLock lock(mu_);
  now_ = t;
}

absl::Duration FakeClock::total_slept() const {
  MutexLock lock(mu_);
  return slept_;
}

}  // namespace herald::testing
