#include "herald/core/metrics.h"

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/strings.h"

namespace herald {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

TEST(MetricsRegistry, ExportsCountersAndGaugesInThePrometheusTextFormat) {
  MetricsRegistry metrics;
  metrics.GetCounter("herald_test_events_total", "Events seen.", {{"topic", "orders"}}).Add();
  metrics.GetCounter("herald_test_events_total", "Events seen.", {{"topic", "orders"}}).Add(2);
  metrics.GetCounter("herald_test_events_total", "Events seen.", {{"topic", "a \"quoted\"\\ topic\n"}}).Add(0.5);
  metrics.GetCounter("herald_test_events_total", "Events seen.", {{"topic", "orders"}}).Add(-5);  // ignored
  Gauge& gauge = metrics.GetGauge("herald_test_pending_rows", "Rows\\pending\nnow.");
  gauge.Set(7);
  gauge.Add(-2);
  EXPECT_EQ(metrics.ExportPrometheusText(),
            "# HELP herald_test_events_total Events seen.\n"
            "# TYPE herald_test_events_total counter\n"
            "herald_test_events_total{topic=\"a \\\"quoted\\\"\\\\ topic\\n\"} 0.5\n"
            "herald_test_events_total{topic=\"orders\"} 3\n"
            "# HELP herald_test_pending_rows Rows\\\\pending\\nnow.\n"
            "# TYPE herald_test_pending_rows gauge\n"
            "herald_test_pending_rows 5\n");
  EXPECT_EQ(metrics.Value("herald_test_events_total", {{"topic", "orders"}}), 3);
  EXPECT_EQ(metrics.Value("herald_test_pending_rows"), 5);
  EXPECT_EQ(metrics.Value("herald_test_nothing"), 0);
  EXPECT_THAT(metrics.errors(), IsEmpty());
}

TEST(MetricsRegistry, HistogramBucketsAreCumulativeWithSumAndCount) {
  MetricsRegistry metrics;
  const double buckets[] = {0.125, 1};
  Histogram& h = metrics.GetHistogram("herald_test_seconds", "Latency.", buckets, {{"group", "g"}});
  h.Observe(0.0625);
  h.Observe(0.125);  // le is inclusive
  h.Observe(0.5);
  h.Observe(20);
  h.Observe(std::nan(""));  // ignored
  EXPECT_EQ(metrics.ExportPrometheusText(),
            "# HELP herald_test_seconds Latency.\n"
            "# TYPE herald_test_seconds histogram\n"
            "herald_test_seconds_bucket{group=\"g\",le=\"0.125\"} 2\n"
            "herald_test_seconds_bucket{group=\"g\",le=\"1\"} 3\n"
            "herald_test_seconds_bucket{group=\"g\",le=\"+Inf\"} 4\n"
            "herald_test_seconds_sum{group=\"g\"} 20.6875\n"
            "herald_test_seconds_count{group=\"g\"} 4\n");
}

TEST(MetricsRegistry, LatencyBucketsIncreaseFromHalfAMillisecondToTenSeconds) {
  absl::Span<const double> b = LatencyBuckets();
  ASSERT_THAT(b, SizeIs(14));
  EXPECT_EQ(b.front(), 0.0005);
  EXPECT_EQ(b.back(), 10);
  for (size_t i = 1; i < b.size(); ++i) EXPECT_LT(b[i - 1], b[i]);
}

TEST(MetricsRegistry, RefusedMetricsRecordNothingAndSayWhy) {
  MetricsRegistry metrics;
  metrics.GetCounter("9starts_with_a_digit", "x").Add();
  metrics.GetCounter("herald_ok_total", "x", {{"__reserved", "v"}}).Add();
  metrics.GetCounter("herald_ok_total", "x", {{"a", "1"}, {"a", "2"}}).Add();
  metrics.GetCounter("herald_ok_total", "x", {{"topic", "t"}}).Add();
  metrics.GetGauge("herald_ok_total", "x", {{"topic", "t"}}).Set(9);   // another kind
  metrics.GetCounter("herald_ok_total", "x", {{"group", "g"}}).Add();  // other label names
  const double unordered[] = {1, 0.5};
  metrics.GetHistogram("herald_bad_seconds", "x", unordered).Observe(1);
  const double fine[] = {1};
  metrics.GetHistogram("herald_le_seconds", "x", fine, {{"le", "1"}}).Observe(1);
  const std::string text = metrics.ExportPrometheusText();
  EXPECT_EQ(text,
            "# HELP herald_ok_total x\n"
            "# TYPE herald_ok_total counter\n"
            "herald_ok_total{topic=\"t\"} 1\n");
  std::vector<std::string> errors = metrics.errors();
  ASSERT_THAT(errors, SizeIs(7));
  EXPECT_THAT(errors[0], HasSubstr("9starts_with_a_digit"));
  EXPECT_THAT(errors[1], HasSubstr("__reserved"));
  EXPECT_THAT(errors[2], HasSubstr("appears twice"));
  EXPECT_THAT(errors[3], HasSubstr("is a counter, not a gauge"));
  EXPECT_THAT(errors[4], HasSubstr("other label names"));
  EXPECT_THAT(errors[5], HasSubstr("buckets must increase"));
  EXPECT_THAT(errors[6], HasSubstr("le"));
}

TEST(MetricsRegistry, CollectorsAddGaugesAtEachExportUntilTheirRegistrationGoes) {
  MetricsRegistry metrics;
  metrics.GetCounter("herald_b_total", "b").Add();
  int calls = 0;
  std::unique_ptr<Metrics::Registration> registration = metrics.AddCollector([&](std::vector<GaugeSample>& out) {
    ++calls;
    out.push_back({"herald_a_lag", "Lag.", {{"partition", "0"}}, 4});
    out.push_back({"herald_a_lag", "Lag.", {{"partition", "1"}}, 0.25});
    out.push_back({"herald_b_total", "clash", {}, 1});  // the name of a registered metric
    out.push_back({"herald_c", "mixed", {{"x", "1"}}, 1});
    out.push_back({"herald_c", "mixed", {{"y", "1"}}, 2});  // other label names: left out
  });
  EXPECT_EQ(metrics.ExportPrometheusText(),
            "# HELP herald_a_lag Lag.\n"
            "# TYPE herald_a_lag gauge\n"
            "herald_a_lag{partition=\"0\"} 4\n"
            "herald_a_lag{partition=\"1\"} 0.25\n"
            "# HELP herald_b_total b\n"
            "# TYPE herald_b_total counter\n"
            "herald_b_total 1\n"
            "# HELP herald_c mixed\n"
            "# TYPE herald_c gauge\n"
            "herald_c{x=\"1\"} 1\n");
  EXPECT_EQ(calls, 1);
  EXPECT_THAT(metrics.errors(), SizeIs(2));
  registration.reset();
  EXPECT_THAT(metrics.ExportPrometheusText(), Not(HasSubstr("herald_a_lag")));
  EXPECT_EQ(calls, 1);
}

TEST(MetricsRegistry, ConcurrentUpdatesAreAllCounted) {
  MetricsRegistry metrics;
  constexpr int kThreads = 4, kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        metrics.GetCounter("herald_c_total", "c", {{"topic", i % 2 == 0 ? "even" : "odd"}}).Add();
        metrics.GetHistogram("herald_h_seconds", "h", LatencyBuckets()).Observe(0.001);
        if (i % 1000 == 0) metrics.ExportPrometheusText();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(metrics.Value("herald_c_total", {{"topic", "even"}}) + metrics.Value("herald_c_total", {{"topic", "odd"}}),
            kThreads * kPerThread);
  EXPECT_THAT(metrics.ExportPrometheusText(),
              HasSubstr(herald::StrCat("herald_h_seconds_count ", kThreads * kPerThread, "\n")));
}

}  // namespace
}  // namespace herald
