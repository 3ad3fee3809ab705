// bench_flags.h: what the benchmarks' list flags (--sizes 100,1024,
// --rates 500,1000, --writers 1,4) have in common, on top of Abseil's flags:
// a std::vector<std::string> flag read as positive numbers.
#ifndef HERALD_BENCH_BENCH_FLAGS_H_
#define HERALD_BENCH_BENCH_FLAGS_H_

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"

namespace herald_bench {

// The numbers of list flag --`flag` of `program`; prints what is wrong and
// exits with status 2 (a usage error) on an item that is not a number >= 1.
// An empty list gives an empty vector: the caller decides what that means.
inline std::vector<int> PositiveInts(const char* program, const char* flag, const std::vector<std::string>& items) {
  std::vector<int> out;
  for (const std::string& item : items) {
    int v = 0;
    if (!absl::SimpleAtoi(item, &v) || v < 1) {
      std::fprintf(stderr, "%s: --%s: \"%s\" is not a positive number\n", program, flag, item.c_str());
      std::exit(2);
    }
    out.push_back(v);
  }
  return out;
}

}  // namespace herald_bench

#endif  // HERALD_BENCH_BENCH_FLAGS_H_
