// herald/core/mutex.h: an annotated mutex for herald's concurrent code.
//
// herald uses this instead of absl::Mutex because Debian's Abseil is not
// built with ThreadSanitizer, so TSan cannot see absl::Mutex's
// happens-before edges and would report false races. herald::Mutex wraps
// std::mutex (which TSan intercepts) and keeps Abseil's thread-safety
// annotations, so `ABSL_GUARDED_BY(mu_)` is still checked by clang's
// -Wthread-safety.
//
//   class Counter {
//    public:
//     void Add() {
//       herald::MutexLock lock(mu_);
//       ++count_;
//     }
//
//    private:
//     herald::Mutex mu_;
//     int count_ ABSL_GUARDED_BY(mu_) = 0;
//   };
//
// Thread-safe, as a mutex is.
#ifndef HERALD_CORE_MUTEX_H_
#define HERALD_CORE_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace herald {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  // Tells the analysis that the calling thread holds the mutex, where it
  // cannot see that itself (code called back by one that holds it). Checks
  // nothing at run time: std::mutex does not know its owner.
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {}
  // The wrapped mutex, for CondVar. Locking it directly bypasses the analysis.
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_.Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_.Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

// A condition variable used with a held herald::Mutex.
//
// The predicate runs with `mu` held, but is called from inside the standard
// library, where the analysis does not follow. Say so on the lambda, so its
// body is checked against the mutex (a lambda given no annotation is
// analysed as if it held nothing, and its guarded reads are errors):
//
//   cv_.Wait(mu_, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return ready_; });
class CondVar {
 public:
  // Waits until `pred()` is true. `mu` must be held; it is held on return.
  template <typename Pred>
  void Wait(Mutex& mu, Pred pred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu.native(), std::adopt_lock);
    cv_.wait(lock, pred);
    lock.release();
  }
  // Waits until `pred()` is true or `timeout` passes; returns pred().
  template <typename Pred>
  bool WaitFor(Mutex& mu, absl::Duration timeout, Pred pred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu.native(), std::adopt_lock);
    bool result = cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout < absl::ZeroDuration() ? absl::ZeroDuration() : timeout), pred);
    lock.release();
    return result;
  }
  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace herald

#endif  // HERALD_CORE_MUTEX_H_
