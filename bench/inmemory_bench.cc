// inmemory_bench: the in-process bus against a plain queue, in one run.
//
// SDK:      bus.PublishAsync(typed event) -> Bus over InMemoryTransport -> dispatcher ->
//           typed handler (decodes the JSON payload) on a delivery thread.
// Baseline: the same event encoded to the same JSON bytes, pushed through a
//           bounded mutex+condvar ring buffer to one consumer thread that
//           decodes the bytes and calls a function. A second, raw baseline
//           hands pre-encoded bytes to a function with no codec at all.
//
// The SDK runs twice per round, alternating which goes first: without
// metrics (BusOptions::metrics null, the default) and with a
// herald::MetricsRegistry, so "zero cost when no metrics are configured" is
// a ratio measured in one run. With --previous_bench=PATH (an inmemory_bench
// built from a herald revision that had no metrics at all; old or new
// output format) that binary runs as a third variant in every round and its
// SDK figure is set against metrics-off.
//
// Prints one JSON object per line: per variant the throughput (events/s)
// min/median/max over the rounds, unloaded publish-to-handler latency
// p50/p99 (one event in flight at a time, from the last round), the ratios
// (per round, then min/median/max), and resident memory sampled over the
// SDK's first long run (flat memory under sustained load).
//
//   inmemory_bench                     # 1M events per throughput run, 5 rounds
//   inmemory_bench --events=10000000   # the full 10M check
//   inmemory_bench --latency_events=20000 --partitions=4 --rounds=5
//   inmemory_bench --previous_bench=build-old/bench/inmemory_bench
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench_stats.h"
#include "herald/core/bus.h"
#include "herald/core/json.h"
#include "herald/core/metrics.h"
#include "herald/core/mutex.h"
#include "herald/core/strings.h"
#include "herald/inmemory/inmemory_transport.h"

ABSL_FLAG(int64_t, events, 1000000, "events per throughput run");
ABSL_FLAG(int64_t, latency_events, 20000, "events for the latency run (one in flight), last round only");
ABSL_FLAG(int, partitions, 4, "partitions of the in-process topic");
ABSL_FLAG(int, rounds, 5, "rounds; min/median/max over them");
ABSL_FLAG(std::string, previous_bench, "", "an inmemory_bench of an older revision, run as a third variant");
ABSL_FLAG(bool, sdk_only, false, "herald with metrics off only (profiling); ratios are then meaningless");

namespace {

struct OrderPlaced {
  std::string order_id;
  std::string customer_id;
  int64_t amount_cents = 0;
  std::string currency;
  std::string sku;
  int64_t quantity = 0;
  std::string note;
  static constexpr std::string_view kType = "bench.order.placed";
  static constexpr std::string_view kTopic = "bench-orders";
  std::string_view key() const { return customer_id; }
  static constexpr auto JsonFields() {
    return herald::json::Fields(
        herald::json::Field("order_id", &OrderPlaced::order_id),
        herald::json::Field("customer_id", &OrderPlaced::customer_id),
        herald::json::Field("amount_cents", &OrderPlaced::amount_cents),
        herald::json::Field("currency", &OrderPlaced::currency), herald::json::Field("sku", &OrderPlaced::sku),
        herald::json::Field("quantity", &OrderPlaced::quantity), herald::json::Field("note", &OrderPlaced::note));
  }
};

OrderPlaced MakeOrder(int64_t i) {
  char order[32], customer[32];
  std::snprintf(order, sizeof order, "order-%010lld", static_cast<long long>(i));
  std::snprintf(customer, sizeof customer, "customer-%06lld", static_cast<long long>(i % 1000));
  return OrderPlaced{order,
                     customer,
                     1000 + i % 100000,
                     "EUR",
                     "SKU-ABCDEFGH-1234",
                     1 + i % 5,
                     "leave at the door, ring twice; fragile glassware inside, handle with care"};
}

int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t index = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[index];
}

// Consumed count with a wake-up for one-at-a-time latency runs.
struct Progress {
  std::atomic<int64_t> handled{0};
  herald::Mutex mu;
  herald::CondVar cv;
  std::atomic<bool> notify{false};
  void Done() {
    handled.fetch_add(1, std::memory_order_release);
    if (notify.load(std::memory_order_relaxed)) {
      herald::MutexLock lock(mu);
      cv.NotifyAll();
    }
  }
  void WaitFor(int64_t n) {
    if (notify.load()) {
      herald::MutexLock lock(mu);
      cv.Wait(mu, [&] { return handled.load(std::memory_order_acquire) >= n; });
      return;
    }
    while (handled.load(std::memory_order_acquire) < n) absl::SleepFor(absl::Microseconds(200));
  }
};

// ------------------------------------------------------------ baseline ---

// A plain bounded queue: mutex + condvars around a ring buffer.
template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : ring_(capacity) {}
  void Push(T item) {
    herald::MutexLock lock(mu_);
    if (size_ == ring_.size()) {
      ++push_waiters_;
      not_full_.Wait(mu_, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return size_ < ring_.size(); });
      --push_waiters_;
    }
    ring_[(head_ + size_) % ring_.size()] = std::move(item);
    ++size_;
    if (pop_waiters_ > 0) not_empty_.NotifyOne();
  }
  bool Pop(T& out) {
    herald::MutexLock lock(mu_);
    if (size_ == 0) {
      ++pop_waiters_;
      not_empty_.Wait(mu_, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return size_ > 0 || closed_; });
      --pop_waiters_;
      if (size_ == 0) return false;
    }
    out = std::move(ring_[head_]);
    head_ = (head_ + 1) % ring_.size();
    --size_;
    if (push_waiters_ > 0) not_full_.NotifyOne();
    return true;
  }
  void Close() {
    herald::MutexLock lock(mu_);
    closed_ = true;
    not_empty_.NotifyAll();
  }

 private:
  herald::Mutex mu_;
  herald::CondVar not_empty_, not_full_;
  std::vector<T> ring_;
  size_t head_ = 0, size_ = 0;
  int push_waiters_ = 0, pop_waiters_ = 0;
  bool closed_ = false;
};

struct QueueItem {
  std::string bytes;
  absl::Time sent;
};

struct RunResult {
  double events_per_second = 0;
  double p50_us = 0, p99_us = 0;
};

// encode = true: the producer encodes each event and the consumer decodes
// it (the same codec work the SDK does); false: pre-encoded bytes, no codec.
RunResult RunBaseline(int64_t events, int64_t latency_events, bool codec) {
  RunResult result;
  const std::string pre_encoded = herald::json::Encode(MakeOrder(1));
  auto run = [&](int64_t n, bool one_at_a_time, std::vector<double>* latencies) {
    BoundedQueue<QueueItem> queue(40000);
    Progress progress;
    progress.notify = one_at_a_time;
    std::atomic<int64_t> sink{0};
    std::function<void(const OrderPlaced&)> user_function = [&](const OrderPlaced& e) {
      sink.fetch_add(e.amount_cents, std::memory_order_relaxed);
    };
    std::function<void(std::string_view)> raw_function = [&](std::string_view bytes) {
      sink.fetch_add(static_cast<int64_t>(bytes.size()), std::memory_order_relaxed);
    };
    std::thread consumer([&] {
      QueueItem item;
      while (queue.Pop(item)) {
        if (codec) {
          absl::StatusOr<OrderPlaced> e = herald::json::Decode<OrderPlaced>(item.bytes);
          if (e.ok()) user_function(*e);
        } else {
          raw_function(item.bytes);
        }
        if (latencies != nullptr) latencies->push_back(absl::ToDoubleMicroseconds(absl::Now() - item.sent));
        progress.Done();
      }
    });
    const absl::Time start = absl::Now();
    for (int64_t i = 0; i < n; ++i) {
      QueueItem item;
      item.sent = absl::Now();
      item.bytes = codec ? herald::json::Encode(MakeOrder(i)) : pre_encoded;
      queue.Push(std::move(item));
      if (one_at_a_time) progress.WaitFor(i + 1);
    }
    progress.WaitFor(n);
    const absl::Duration elapsed = absl::Now() - start;
    queue.Close();
    consumer.join();
    return static_cast<double>(n) / absl::ToDoubleSeconds(elapsed);
  };
  result.events_per_second = run(events, false, nullptr);
  std::vector<double> latencies;
  latencies.reserve(latency_events);
  if (latency_events > 0) run(latency_events, true, &latencies);
  result.p50_us = Percentile(latencies, 0.50);
  result.p99_us = Percentile(latencies, 0.99);
  return result;
}

// ----------------------------------------------------------------- SDK ---

struct SdkResult : RunResult {
  int64_t rss_before = 0, rss_after = 0, rss_max = 0;
  std::vector<int64_t> rss_samples;
  int64_t publish_failures = 0;
};

// with_metrics: the bus reports to a MetricsRegistry (one per run, as a
// service would have one per process); otherwise BusOptions::metrics stays
// null, the default.
SdkResult RunSdk(int64_t events, int64_t latency_events, int partitions, bool with_metrics, bool sample_memory) {
  SdkResult result;
  auto run = [&](int64_t n, bool one_at_a_time, std::vector<double>* latencies, bool sample_rss) {
    herald::inmemory::InMemoryTransportOptions options;
    options.broker = *herald::inmemory::InMemoryBroker::Create({.partitions = partitions});
    herald::MetricsRegistry registry;
    herald::BusOptions bus_options;
    if (with_metrics) bus_options.metrics = &registry;
    herald::Bus bus(std::make_unique<herald::inmemory::InMemoryTransport>(options), bus_options);
    Progress progress;
    progress.notify = one_at_a_time;
    herald::Mutex latencies_mu;
    std::atomic<int64_t> sink{0};
    absl::Status s = bus.Subscribe<OrderPlaced>("bench", [&](const OrderPlaced& e, const herald::Message& m) {
      sink.fetch_add(e.amount_cents, std::memory_order_relaxed);
      if (latencies != nullptr) {
        herald::MutexLock lock(latencies_mu);
        latencies->push_back(absl::ToDoubleMicroseconds(absl::Now() - m.envelope.time));
      }
      progress.Done();
      return absl::OkStatus();
    });
    if (!s.ok() || !bus.Start().ok()) {
      std::fprintf(stderr, "subscribe/start failed: %s\n", s.ToString().c_str());
      std::exit(1);
    }
    std::atomic<int64_t> failures{0};
    if (sample_rss) result.rss_before = ResidentBytes();
    const int64_t sample_every = std::max<int64_t>(1, n / 10);
    const absl::Time start = absl::Now();
    for (int64_t i = 0; i < n; ++i) {
      bus.PublishAsync(MakeOrder(i), {}, [&](absl::StatusOr<herald::DeliveryReport> r) {
        if (!r.ok()) failures.fetch_add(1, std::memory_order_relaxed);
      });
      if (one_at_a_time) progress.WaitFor(i + 1);
      if (sample_rss && (i + 1) % sample_every == 0) {
        int64_t rss = ResidentBytes();
        result.rss_samples.push_back(rss);
        result.rss_max = std::max(result.rss_max, rss);
      }
    }
    progress.WaitFor(n - failures.load());
    const absl::Duration elapsed = absl::Now() - start;
    if (sample_rss) result.rss_after = ResidentBytes();
    result.publish_failures += failures.load();
    (void)bus.Stop(absl::Seconds(10));
    return static_cast<double>(n) / absl::ToDoubleSeconds(elapsed);
  };
  result.events_per_second = run(events, false, nullptr, sample_memory);
  std::vector<double> latencies;
  latencies.reserve(latency_events);
  if (latency_events > 0) run(latency_events, true, &latencies, false);
  result.p50_us = Percentile(latencies, 0.50);
  result.p99_us = Percentile(latencies, 0.99);
  return result;
}

// Runs another inmemory_bench (--previous_bench) for one round and returns
// its SDK throughput, or a negative number when it failed. Understands the
// multi-line format ("sdk": {"events_per_second": N}) of the revisions before
// this one and the line format of this one ("herald_metrics_off_per_s").
double RunPrevious(const std::string& binary, int64_t events, int partitions) {
  const std::string command =
      herald::StrCat("'", binary, "' --events=", events, " --latency_events=1000 --partitions=", partitions,
                     " --rounds=1 2>/dev/null");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  std::string out;
  std::array<char, 4096> buffer;
  size_t got;
  while ((got = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) out.append(buffer.data(), got);
  if (pclose(pipe) != 0) return -1;
  for (const char* key : {"\"sdk\": {\"events_per_second\": ", "\"herald_metrics_off_per_s\":{\"min\":"}) {
    size_t at = out.find(key);
    if (at != std::string::npos) return std::atof(out.c_str() + at + std::strlen(key));
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  using herald_bench::Ratios;
  using herald_bench::SpreadJson;
  absl::ParseCommandLine(argc, argv);
  const int64_t events = absl::GetFlag(FLAGS_events);
  const int64_t latency_events = absl::GetFlag(FLAGS_latency_events);
  const int partitions = std::max(1, absl::GetFlag(FLAGS_partitions));
  const int rounds = std::max(1, absl::GetFlag(FLAGS_rounds));
  const std::string previous = absl::GetFlag(FLAGS_previous_bench);
  const bool sdk_only = absl::GetFlag(FLAGS_sdk_only);
  const size_t payload_bytes = herald::json::Encode(MakeOrder(1)).size();

  std::vector<double> codec, raw, off, on, prev;
  RunResult codec_latency, raw_latency;
  SdkResult off_last, on_last, off_first;
  for (int round = 0; round < rounds; ++round) {
    // Latencies from the last round only (warm caches, one set per variant).
    const int64_t lat = round == rounds - 1 ? latency_events : 0;
    const bool last = round == rounds - 1;
    RunResult c = sdk_only ? RunResult{} : RunBaseline(events, lat, true);
    RunResult r = sdk_only ? RunResult{} : RunBaseline(events, lat, false);
    codec.push_back(c.events_per_second);
    raw.push_back(r.events_per_second);
    if (last) codec_latency = c, raw_latency = r;
    // Alternate which of metrics off/on goes first, so neither always gets
    // the warmer (or the quieter) machine.
    SdkResult a, b;
    if (round % 2 == 0) {
      a = RunSdk(events, lat, partitions, false, round == 0);
      if (!sdk_only) b = RunSdk(events, lat, partitions, true, false);
    } else {
      if (!sdk_only) b = RunSdk(events, lat, partitions, true, false);
      a = RunSdk(events, lat, partitions, false, false);
    }
    if (round == 0) off_first = a;
    off.push_back(a.events_per_second);
    on.push_back(b.events_per_second);
    if (last) off_last = a, on_last = b;
    if (!previous.empty()) {
      const double p = RunPrevious(previous, events, partitions);
      if (p < 0) {
        std::fprintf(stderr, "inmemory_bench: --previous_bench=%s failed\n", previous.c_str());
        return 1;
      }
      prev.push_back(p);
    }
    std::fprintf(stderr, "inmemory_bench: round %d/%d: metrics off %.0f/s, on %.0f/s%s\n", round + 1, rounds,
                 a.events_per_second, b.events_per_second,
                 prev.empty() ? "" : herald::StrCat(", previous ", static_cast<int64_t>(prev.back()), "/s").c_str());
  }

  std::string samples;
  for (size_t i = 0; i < off_first.rss_samples.size(); ++i) {
    herald::StrAppend(&samples, i == 0 ? "" : ",", off_first.rss_samples[i] / 1024);
  }
  std::printf(
      "{\"bench\":\"inmemory_bus\",\"events\":%lld,\"latency_events\":%lld,\"partitions\":%d,\"payload_bytes\":%zu,"
      "\"rounds\":%d,\"statistic\":\"min/median/max over rounds\"}\n",
      static_cast<long long>(events), static_cast<long long>(latency_events), partitions, payload_bytes, rounds);
  std::printf(
      "{\"bench\":\"inmemory_bus_throughput\",\"herald_metrics_off_per_s\":%s,\"herald_metrics_on_per_s\":%s,"
      "\"baseline_queue_with_codec_per_s\":%s,\"baseline_queue_raw_bytes_per_s\":%s%s%s}\n",
      SpreadJson(off, 0).c_str(), SpreadJson(on, 0).c_str(), SpreadJson(codec, 0).c_str(), SpreadJson(raw, 0).c_str(),
      prev.empty() ? "" : ",\"previous_no_metrics_per_s\":", prev.empty() ? "" : SpreadJson(prev, 0).c_str());
  std::printf("{\"bench\":\"inmemory_bus_metrics_cost\",\"ratio_metrics_on_over_off\":%s%s%s}\n",
              SpreadJson(Ratios(on, off), 3).c_str(), prev.empty() ? "" : ",\"ratio_metrics_off_over_previous\":",
              prev.empty() ? "" : SpreadJson(Ratios(off, prev), 3).c_str());
  std::printf(
      "{\"bench\":\"inmemory_bus_vs_queue\",\"ratio_baseline_with_codec_over_herald\":%s,"
      "\"ratio_baseline_raw_over_herald\":%s,\"target_ratio_max\":2.0}\n",
      SpreadJson(Ratios(codec, off), 3).c_str(), SpreadJson(Ratios(raw, off), 3).c_str());
  std::printf(
      "{\"bench\":\"inmemory_bus_latency\",\"herald_metrics_off\":{\"p50_us\":%.1f,\"p99_us\":%.1f},"
      "\"herald_metrics_on\":{\"p50_us\":%.1f,\"p99_us\":%.1f},"
      "\"baseline_queue_with_codec\":{\"p50_us\":%.1f,\"p99_us\":%.1f},"
      "\"baseline_queue_raw_bytes\":{\"p50_us\":%.1f,\"p99_us\":%.1f}}\n",
      off_last.p50_us, off_last.p99_us, on_last.p50_us, on_last.p99_us, codec_latency.p50_us, codec_latency.p99_us,
      raw_latency.p50_us, raw_latency.p99_us);
  std::printf(
      "{\"bench\":\"inmemory_bus_memory\",\"publish_failures\":%lld,\"rss_kib\":{\"before\":%lld,\"after\":%lld,"
      "\"max\":%lld,\"samples_every_10_percent\":[%s]}}\n",
      static_cast<long long>(off_first.publish_failures) + off_last.publish_failures,
      static_cast<long long>(off_first.rss_before) / 1024, static_cast<long long>(off_first.rss_after) / 1024,
      static_cast<long long>(off_first.rss_max) / 1024, samples.c_str());
  return 0;
}
