// herald/core/metrics.h: the one interface herald reports metrics through,
// and MetricsRegistry, the in-process implementation that renders them in
// the Prometheus text format.
//
//   herald::MetricsRegistry metrics;
//   herald::Bus bus(std::move(transport), {.metrics = &metrics});
//   herald::OutboxRelay relay(store, bus, {.metrics = &metrics});
//   HERALD_RETURN_IF_ERROR(relay.Start());
//   std::string page = metrics.ExportPrometheusText();  // what /metrics serves
//
// herald::prometheus::MetricsServer (herald/prometheus/metrics_server.h)
// serves that page, with /healthz and /readyz.
//
// The Bus (publishes, handler outcomes and latency), its transport (Kafka:
// consumer lag, rebalances, producer queue) and the relay (batches, rows,
// outbox pending rows and lag, leadership) report through the Metrics they
// are given; no component formats metrics itself. Without one (the default)
// nothing is measured and nothing costs. herald's metric names, labels and
// units are listed in docs/operations.md; they follow the Prometheus
// conventions (`_total` counters, base units such as `_seconds`).
//
// Thread-safety: every method of Metrics, Counter, Gauge and Histogram may be
// called from any thread, concurrently. Counter::Add, Gauge::Set/Add and
// Histogram::Observe take no lock.
#ifndef HERALD_CORE_METRICS_H_
#define HERALD_CORE_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/types/span.h"
#include "herald/core/mutex.h"

namespace herald {

// Label names and values of one metric, in order. Every metric of one name
// must use the same label names in the same order.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// Only goes up: events handled, rows relayed.
class Counter {
 public:
  virtual ~Counter() = default;
  // Adds `amount`; a negative amount is ignored.
  virtual void Add(double amount = 1) = 0;
};

// Goes up and down: rows pending, the leader flag.
class Gauge {
 public:
  virtual ~Gauge() = default;
  virtual void Set(double value) = 0;
  virtual void Add(double amount) = 0;
};

// Counts observations (latencies, in seconds) into buckets.
class Histogram {
 public:
  virtual ~Histogram() = default;
  virtual void Observe(double value) = 0;
};

// The buckets of herald's latency histograms, in seconds: 0.5 ms to 10 s.
absl::Span<const double> LatencyBuckets();

// One value a collector reports when metrics are exported (a gauge computed
// on demand, e.g. the outbox's pending rows or a partition's consumer lag,
// or a running total kept elsewhere, e.g. librdkafka's rebalance count).
struct GaugeSample {
  std::string name;
  std::string help;
  MetricLabels labels;
  double value = 0;
  // Exported as a counter (a total that only goes up) rather than a gauge.
  // The first sample of a name decides.
  bool counter = false;
};

class Metrics {
 public:
  // Ends a collector (Metrics::AddCollector) when destroyed: once the
  // destructor returns, the collector is not running and never runs again.
  class Registration {
   public:
    virtual ~Registration() = default;
  };

  virtual ~Metrics() = default;

  // The counter, gauge or histogram `name` with `labels`, made on first use
  // and the same object afterwards; it lives as long as this Metrics. Names
  // match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*. A
  // name or labels that break the rules, or a name already used for another
  // kind of metric or other label names, give a metric that records nothing
  // (MetricsRegistry::errors() says why): metrics never fail the program.
  virtual Counter& GetCounter(std::string_view name, std::string_view help, const MetricLabels& labels = {}) = 0;
  virtual Gauge& GetGauge(std::string_view name, std::string_view help, const MetricLabels& labels = {}) = 0;
  // `buckets`: upper bounds, increasing (+Inf is implied). The buckets of
  // the first call for a name are the name's.
  virtual Histogram& GetHistogram(std::string_view name, std::string_view help, absl::Span<const double> buckets,
                                  const MetricLabels& labels = {}) = 0;

  // Calls `collect` at each export (one call at a time) to add gauge samples
  // read from elsewhere, until the returned Registration is destroyed.
  // `collect` must not call back into this Metrics.
  [[nodiscard]] virtual std::unique_ptr<Registration> AddCollector(
      std::function<void(std::vector<GaugeSample>& samples)> collect) = 0;
};

// The in-process implementation: lock-free updates, and the Prometheus text
// exposition format (version 0.0.4) for /metrics.
class MetricsRegistry final : public Metrics {
 public:
  MetricsRegistry();
  ~MetricsRegistry() override;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  Counter& GetCounter(std::string_view name, std::string_view help, const MetricLabels& labels = {}) override;
  Gauge& GetGauge(std::string_view name, std::string_view help, const MetricLabels& labels = {}) override;
  Histogram& GetHistogram(std::string_view name, std::string_view help, absl::Span<const double> buckets,
                          const MetricLabels& labels = {}) override;
  [[nodiscard]] std::unique_ptr<Registration> AddCollector(
      std::function<void(std::vector<GaugeSample>& samples)> collect) override;

  // Every metric and every collector's samples in the Prometheus text
  // format, families sorted by name. A collector's sample that breaks the
  // naming rules, or reuses the name of a registered metric, is left out
  // (and noted in errors()).
  std::string ExportPrometheusText() const;

  // Why metrics were refused, at most the first 20 reasons.
  std::vector<std::string> errors() const;

  // The value of a counter or gauge, for tests: 0 when there is none.
  double Value(std::string_view name, const MetricLabels& labels = {}) const;

 private:
  struct Family;
  struct Collector;
  class CollectorRegistration;

  // The family `name` of `type`, made on first use; null (with an error
  // noted) when the name, the labels or the type do not fit.
  Family* FindOrAddFamily(std::string_view name, std::string_view help, int type, const MetricLabels& labels,
                          absl::Span<const double> buckets) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NoteError(std::string error) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  std::map<std::string, std::unique_ptr<Family>, std::less<>> families_ ABSL_GUARDED_BY(mu_);
  mutable std::vector<std::string> errors_ ABSL_GUARDED_BY(mu_);
  // Collectors run under their own lock, so that a Registration can wait for
  // a running export without holding mu_.
  mutable Mutex collectors_mu_;
  std::vector<Collector*> collectors_ ABSL_GUARDED_BY(collectors_mu_);
};

}  // namespace herald

#endif  // HERALD_CORE_METRICS_H_
