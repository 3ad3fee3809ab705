// bench_writers.h: what --writers means in the outbox append benchmarks:
// a variant's transactions of one round split between W writer threads.
#ifndef HERALD_BENCH_BENCH_WRITERS_H_
#define HERALD_BENCH_BENCH_WRITERS_H_

#include <cstdint>
#include <thread>
#include <vector>

namespace herald_bench {

// Runs run(w, per_writer) for each writer w in [0, writers), each on a
// thread of its own, and returns when all have finished; one writer runs on
// the calling thread (no thread is started for it).
template <typename Run>
void RunWriters(int writers, int64_t per_writer, const Run& run) {
  if (writers == 1) {
    run(0, per_writer);
    return;
  }
  std::vector<std::thread> threads;
  threads.reserve(writers);
  for (int w = 0; w < writers; ++w) threads.emplace_back([&run, w, per_writer] { run(w, per_writer); });
  for (std::thread& t : threads) t.join();
}

}  // namespace herald_bench

#endif  // HERALD_BENCH_BENCH_WRITERS_H_
