# herald_check_thread_safety_analysis()
#   Proves at configure time that clang's -Wthread-safety follows
#   herald::Mutex: a correctly locked snippet must compile, and each broken
#   one (guarded field touched without the lock, CondVar wait without the
#   lock) must fail. Without this, an annotation lost from mutex.h would
#   turn every ABSL_GUARDED_BY in the tree into a comment, silently.
function(herald_check_thread_safety_analysis)
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/herald_thread_safety_check)
  set(prelude [=[
#include "herald/core/mutex.h"
class Counter {
 public:
  void Add();
  int WaitPositive();
 private:
  herald::Mutex mu_;
  herald::CondVar cv_;
  int n_ ABSL_GUARDED_BY(mu_) = 0;
};
]=])
  set(good [=[
void Counter::Add() { herald::MutexLock lock(mu_); ++n_; cv_.NotifyAll(); }
int Counter::WaitPositive() {
  herald::MutexLock lock(mu_);
  cv_.Wait(mu_, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return n_ > 0; });
  return n_;
}
]=])
  set(unlocked_write [=[
void Counter::Add() { ++n_; }
int Counter::WaitPositive() { return 0; }
]=])
  set(wait_unlocked [=[
void Counter::Add() {}
int Counter::WaitPositive() {
  cv_.Wait(mu_, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return n_ > 0; });
  return 1;
}
]=])
  set(read_after_scope [=[
void Counter::Add() {}
int Counter::WaitPositive() {
  { herald::MutexLock lock(mu_); }
  return n_;
}
]=])
  set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
  foreach(case good unlocked_write wait_unlocked read_after_scope)
    file(WRITE ${dir}/${case}.cc "${prelude}${${case}}")
    try_compile(compiled ${dir}/${case} ${dir}/${case}.cc
      CMAKE_FLAGS "-DINCLUDE_DIRECTORIES=${PROJECT_SOURCE_DIR}/core/include"
      COMPILE_DEFINITIONS -std=c++20 -Wthread-safety -Werror
      OUTPUT_VARIABLE output)
    if(case STREQUAL "good" AND NOT compiled)
      message(FATAL_ERROR "thread-safety self-check: correctly locked code does not compile:\n${output}")
    elseif(NOT case STREQUAL "good" AND compiled)
      message(FATAL_ERROR "thread-safety self-check: clang accepted '${case}' (${dir}/${case}.cc): "
        "the analysis does not follow herald::Mutex; check the annotations in core/include/herald/core/mutex.h")
    elseif(NOT case STREQUAL "good" AND NOT output MATCHES "thread-safety")
      message(FATAL_ERROR "thread-safety self-check: '${case}' failed for another reason than the analysis:\n${output}")
    endif()
  endforeach()
  message(STATUS "thread-safety analysis follows herald::Mutex (4 self-checks)")
endfunction()
