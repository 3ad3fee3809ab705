// ThreadSanitizer builds only: C11 <threads.h> on top of pthreads.
//
// Debian's librdkafka creates its threads and locks its mutexes through
// glibc's C11 thread functions (thrd_create, mtx_lock, cnd_wait, ...), which
// this toolchain's TSan runtime does not intercept: a librdkafka thread is
// unknown to TSan (an instrumented callback on it crashes the runtime), and
// the order its mutexes create is invisible (every hand-off through
// librdkafka would be reported as a race). Defined in the test executable,
// these win over glibc's for librdkafka and go through pthreads, which TSan
// intercepts. glibc's C11 types are its pthread types under another name
// (same size and layout; glibc implements them the same way).
//
// Creating and destroying a mutex or condition variable writes its memory.
// librdkafka hands such objects between its threads through atomic
// reference counts in its uninstrumented code, which TSan cannot see, so
// those writes would be reported against the next lock on another thread.
// They are made with TSan ignoring the memory access (the sync object is
// still created and tracked, so every lock and wait still orders threads).
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

// From the TSan runtime (this file is built only with -fsanitize=thread).
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);

_Static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t), "mtx_t is a pthread_mutex_t");
_Static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t), "cnd_t is a pthread_cond_t");
_Static_assert(sizeof(thrd_t) == sizeof(pthread_t), "thrd_t is a pthread_t");
_Static_assert(sizeof(once_flag) == sizeof(pthread_once_t), "once_flag is a pthread_once_t");

static int FromErrno(int err) {
  switch (err) {
    case 0:
      return thrd_success;
    case ENOMEM:
    case EAGAIN:
      return thrd_nomem;
    case ETIMEDOUT:
      return thrd_timedout;
    case EBUSY:
      return thrd_busy;
    default:
      return thrd_error;
  }
}

struct ThreadStart {
  thrd_start_t func;
  void* arg;
};

static void* RunThread(void* p) {
  struct ThreadStart start = *(struct ThreadStart*)p;
  free(p);
  return (void*)(intptr_t)start.func(start.arg);
}

int thrd_create(thrd_t* thr, thrd_start_t func, void* arg) {
  struct ThreadStart* start = malloc(sizeof(*start));
  if (start == NULL) return thrd_nomem;
  start->func = func;
  start->arg = arg;
  int err = pthread_create((pthread_t*)thr, NULL, RunThread, start);
  if (err != 0) free(start);
  return FromErrno(err);
}

int thrd_join(thrd_t thr, int* res) {
  void* result = NULL;
  int err = pthread_join((pthread_t)thr, &result);
  if (err == 0 && res != NULL) *res = (int)(intptr_t)result;
  return FromErrno(err);
}

int mtx_init(mtx_t* mutex, int type) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  if (type & mtx_recursive) pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  __tsan_ignore_thread_begin();
  int err = pthread_mutex_init((pthread_mutex_t*)mutex, &attr);
  __tsan_ignore_thread_end();
  pthread_mutexattr_destroy(&attr);
  return FromErrno(err);
}

int mtx_lock(mtx_t* mutex) { return FromErrno(pthread_mutex_lock((pthread_mutex_t*)mutex)); }
int mtx_trylock(mtx_t* mutex) { return FromErrno(pthread_mutex_trylock((pthread_mutex_t*)mutex)); }
int mtx_unlock(mtx_t* mutex) { return FromErrno(pthread_mutex_unlock((pthread_mutex_t*)mutex)); }
void mtx_destroy(mtx_t* mutex) {
  __tsan_ignore_thread_begin();
  pthread_mutex_destroy((pthread_mutex_t*)mutex);
  __tsan_ignore_thread_end();
}

int cnd_init(cnd_t* cond) {
  __tsan_ignore_thread_begin();
  int err = pthread_cond_init((pthread_cond_t*)cond, NULL);
  __tsan_ignore_thread_end();
  return FromErrno(err);
}
int cnd_signal(cnd_t* cond) { return FromErrno(pthread_cond_signal((pthread_cond_t*)cond)); }
int cnd_broadcast(cnd_t* cond) { return FromErrno(pthread_cond_broadcast((pthread_cond_t*)cond)); }
int cnd_wait(cnd_t* cond, mtx_t* mutex) {
  return FromErrno(pthread_cond_wait((pthread_cond_t*)cond, (pthread_mutex_t*)mutex));
}
int cnd_timedwait(cnd_t* restrict cond, mtx_t* restrict mutex, const struct timespec* restrict abstime) {
  return FromErrno(pthread_cond_timedwait((pthread_cond_t*)cond, (pthread_mutex_t*)mutex, abstime));
}
void cnd_destroy(cnd_t* cond) {
  __tsan_ignore_thread_begin();
  pthread_cond_destroy((pthread_cond_t*)cond);
  __tsan_ignore_thread_end();
}

void call_once(once_flag* flag, void (*func)(void)) { pthread_once((pthread_once_t*)flag, func); }
