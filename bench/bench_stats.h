// bench_stats.h: the statistics every benchmark prints the same way, so
// scripts/bench-table.py can read them all: a figure measured over several
// rounds becomes {"min":..,"median":..,"max":..,"rounds":[..]}, and a ratio
// is taken round by round (both figures of a ratio come from the same
// round, which the machine's noise moves together) before its spread.
#ifndef HERALD_BENCH_BENCH_STATS_H_
#define HERALD_BENCH_BENCH_STATS_H_

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace herald_bench {

struct Spread {
  double min = 0, median = 0, max = 0;
};

inline Spread SpreadOf(std::vector<double> v) {
  Spread s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  s.min = v.front();
  s.max = v.back();
  s.median = n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return s;
}

inline std::string Number(double x, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, x);
  return buffer;
}

// {"min":..,"median":..,"max":..,"rounds":[..]} with `digits` decimals.
inline std::string SpreadJson(const std::vector<double>& v, int digits) {
  const Spread s = SpreadOf(v);
  std::string rounds;
  for (size_t i = 0; i < v.size(); ++i) rounds += (i == 0 ? "" : ",") + Number(v[i], digits);
  return "{\"min\":" + Number(s.min, digits) + ",\"median\":" + Number(s.median, digits) +
         ",\"max\":" + Number(s.max, digits) + ",\"rounds\":[" + rounds + "]}";
}

// a[i] / b[i] for each round both have (0 where b[i] is 0).
inline std::vector<double> Ratios(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> r;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) r.push_back(b[i] > 0 ? a[i] / b[i] : 0);
  return r;
}

}  // namespace herald_bench

#endif  // HERALD_BENCH_BENCH_STATS_H_
