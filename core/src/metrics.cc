#include "herald/core/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "absl/strings/str_format.h"
#include "herald/core/strings.h"

namespace herald {

namespace {

enum FamilyType { kCounterType = 0, kGaugeType = 1, kHistogramType = 2 };
constexpr const char* kTypeNames[] = {"counter", "gauge", "histogram"};
constexpr size_t kMaxErrors = 20;

constexpr double kLatencyBuckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

class CounterImpl final : public Counter {
 public:
  void Add(double amount) override {
    if (amount > 0) value_.fetch_add(amount, std::memory_order_relaxed);
  }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class GaugeImpl final : public Gauge {
 public:
  void Set(double value) override { value_.store(value, std::memory_order_relaxed); }
  void Add(double amount) override { value_.fetch_add(amount, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class HistogramImpl final : public Histogram {
 public:
  explicit HistogramImpl(const std::vector<double>& bounds)
      : bounds_(bounds), counts_(new std::atomic<uint64_t>[bounds.size() + 1]) {
    for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
  }
  void Observe(double value) override {
    if (std::isnan(value)) return;
    // Bucket i counts values <= bounds_[i]; the last one is +Inf.
    const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
  }
  const std::vector<double>& bounds() const { return bounds_; }
  uint64_t bucket(size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  const std::vector<double>& bounds_;  // the family's
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

// What a refused metric records to: nothing.
class NoopCounter final : public Counter {
 public:
  void Add(double) override {}
};
class NoopGauge final : public Gauge {
 public:
  void Set(double) override {}
  void Add(double) override {}
};
class NoopHistogram final : public Histogram {
 public:
  void Observe(double) override {}
};

bool IsNameStart(char c, bool colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

bool IsValidName(std::string_view name, bool colon) {
  if (name.empty() || !IsNameStart(name[0], colon)) return false;
  for (char c : name.substr(1)) {
    if (!IsNameStart(c, colon) && !(c >= '0' && c <= '9')) return false;
  }
  return true;
}

// Why `labels` cannot be a metric's labels; empty when they can.
std::string CheckLabels(const MetricLabels& labels, bool histogram) {
  for (size_t i = 0; i < labels.size(); ++i) {
    const std::string& name = labels[i].first;
    if (!IsValidName(name, /*colon=*/false) || name.rfind("__", 0) == 0) {
      return herald::StrCat("label name \"", name, "\" is not [a-zA-Z_][a-zA-Z0-9_]* (or starts with __)");
    }
    if (histogram && name == "le") return "a histogram cannot have a label named le";
    for (size_t j = 0; j < i; ++j) {
      if (labels[j].first == name) return herald::StrCat("label \"", name, "\" appears twice");
    }
  }
  return {};
}

std::vector<std::string> LabelNames(const MetricLabels& labels) {
  std::vector<std::string> names;
  names.reserve(labels.size());
  for (const auto& [name, value] : labels) names.push_back(name);
  return names;
}

std::vector<std::string> LabelValues(const MetricLabels& labels) {
  std::vector<std::string> values;
  values.reserve(labels.size());
  for (const auto& [name, value] : labels) values.push_back(value);
  return values;
}

std::string Escape(std::string_view text, bool quotes) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quotes && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) return herald::StrCat(static_cast<int64_t>(value));
  return absl::StrFormat("%.17g", value);
}

// `{a="1",b="2"}` (with `extra` appended, e.g. le), or "" without labels.
std::string FormatLabels(const std::vector<std::string>& names, const std::vector<std::string>& values,
                         std::string_view extra_name = "", std::string_view extra_value = "") {
  if (names.empty() && extra_name.empty()) return {};
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    herald::StrAppend(&out, names[i], "=\"", Escape(values[i], /*quotes=*/true), "\"");
  }
  if (!extra_name.empty()) {
    if (!names.empty()) out += ',';
    herald::StrAppend(&out, extra_name, "=\"", extra_value, "\"");
  }
  out += '}';
  return out;
}

std::string FamilyHeader(std::string_view name, std::string_view help, int type) {
  return herald::StrCat("# HELP ", name, " ", Escape(help, /*quotes=*/false), "\n# TYPE ", name, " ", kTypeNames[type],
                        "\n");
}

}  // namespace

absl::Span<const double> LatencyBuckets() { return kLatencyBuckets; }

struct MetricsRegistry::Family {
  int type = kCounterType;
  std::string help;
  std::vector<std::string> label_names;
  std::vector<double> buckets;
  // Keyed by label values, in label_names' order.
  std::map<std::vector<std::string>, std::unique_ptr<CounterImpl>> counters;
  std::map<std::vector<std::string>, std::unique_ptr<GaugeImpl>> gauges;
  std::map<std::vector<std::string>, std::unique_ptr<HistogramImpl>> histograms;
};

struct MetricsRegistry::Collector {
  std::function<void(std::vector<GaugeSample>&)> collect;
};

class MetricsRegistry::CollectorRegistration final : public Metrics::Registration {
 public:
  CollectorRegistration(MetricsRegistry* registry, std::unique_ptr<Collector> collector)
      : registry_(registry), collector_(std::move(collector)) {}
  ~CollectorRegistration() override {
    MutexLock lock(registry_->collectors_mu_);
    std::erase(registry_->collectors_, collector_.get());
  }

 private:
  MetricsRegistry* registry_;
  std::unique_ptr<Collector> collector_;
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

void MetricsRegistry::NoteError(std::string error) const {
  if (errors_.size() < kMaxErrors) errors_.push_back(std::move(error));
}

MetricsRegistry::Family* MetricsRegistry::FindOrAddFamily(std::string_view name, std::string_view help, int type,
                                                          const MetricLabels& labels,
                                                          absl::Span<const double> buckets) {
  if (!IsValidName(name, /*colon=*/true)) {
    NoteError(herald::StrCat("metric name \"", name, "\" is not [a-zA-Z_:][a-zA-Z0-9_:]*"));
    return nullptr;
  }
  if (std::string why = CheckLabels(labels, type == kHistogramType); !why.empty()) {
    NoteError(herald::StrCat("metric ", name, ": ", why));
    return nullptr;
  }
  auto it = families_.find(name);
  if (it == families_.end()) {
    if (type == kHistogramType) {
      for (size_t i = 0; i < buckets.size(); ++i) {
        if (std::isnan(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1])) {
          NoteError(herald::StrCat("histogram ", name, ": buckets must increase"));
          return nullptr;
        }
      }
    }
    auto family = std::make_unique<Family>();
    family->type = type;
    family->help = std::string(help);
    family->label_names = LabelNames(labels);
    family->buckets.assign(buckets.begin(), buckets.end());
    if (!family->buckets.empty() && std::isinf(family->buckets.back())) family->buckets.pop_back();
    it = families_.emplace(std::string(name), std::move(family)).first;
  }
  Family* family = it->second.get();
  if (family->type != type) {
    NoteError(herald::StrCat("metric ", name, " is a ", kTypeNames[family->type], ", not a ", kTypeNames[type]));
    return nullptr;
  }
  if (family->label_names != LabelNames(labels)) {
    NoteError(herald::StrCat("metric ", name, " was made with other label names"));
    return nullptr;
  }
  return family;
}

Counter& MetricsRegistry::GetCounter(std::string_view name, std::string_view help, const MetricLabels& labels) {
  static NoopCounter* const noop = new NoopCounter;
  MutexLock lock(mu_);
  Family* family = FindOrAddFamily(name, help, kCounterType, labels, {});
  if (family == nullptr) return *noop;
  std::unique_ptr<CounterImpl>& metric = family->counters[LabelValues(labels)];
  if (metric == nullptr) metric = std::make_unique<CounterImpl>();
  return *metric;
}

Gauge& MetricsRegistry::GetGauge(std::string_view name, std::string_view help, const MetricLabels& labels) {
  static NoopGauge* const noop = new NoopGauge;
  MutexLock lock(mu_);
  Family* family = FindOrAddFamily(name, help, kGaugeType, labels, {});
  if (family == nullptr) return *noop;
  std::unique_ptr<GaugeImpl>& metric = family->gauges[LabelValues(labels)];
  if (metric == nullptr) metric = std::make_unique<GaugeImpl>();
  return *metric;
}

Histogram& MetricsRegistry::GetHistogram(std::string_view name, std::string_view help, absl::Span<const double> buckets,
                                         const MetricLabels& labels) {
  static NoopHistogram* const noop = new NoopHistogram;
  MutexLock lock(mu_);
  Family* family = FindOrAddFamily(name, help, kHistogramType, labels, buckets);
  if (family == nullptr) return *noop;
  std::unique_ptr<HistogramImpl>& metric = family->histograms[LabelValues(labels)];
  if (metric == nullptr) metric = std::make_unique<HistogramImpl>(family->buckets);
  return *metric;
}

std::unique_ptr<Metrics::Registration> MetricsRegistry::AddCollector(
    std::function<void(std::vector<GaugeSample>& samples)> collect) {
  auto collector = std::make_unique<Collector>();
  collector->collect = std::move(collect);
  {
    MutexLock lock(collectors_mu_);
    collectors_.push_back(collector.get());
  }
  return std::make_unique<CollectorRegistration>(this, std::move(collector));
}

std::string MetricsRegistry::ExportPrometheusText() const {
  std::vector<GaugeSample> samples;
  {
    MutexLock lock(collectors_mu_);
    for (Collector* collector : collectors_) collector->collect(samples);
  }
  // Each family's text, by name.
  std::map<std::string, std::string, std::less<>> blocks;
  MutexLock lock(mu_);
  for (const auto& [name, family] : families_) {
    std::string& out = blocks[name];
    out = FamilyHeader(name, family->help, family->type);
    for (const auto& [values, counter] : family->counters) {
      herald::StrAppend(&out, name, FormatLabels(family->label_names, values), " ", FormatValue(counter->value()),
                        "\n");
    }
    for (const auto& [values, gauge] : family->gauges) {
      herald::StrAppend(&out, name, FormatLabels(family->label_names, values), " ", FormatValue(gauge->value()), "\n");
    }
    for (const auto& [values, histogram] : family->histograms) {
      uint64_t cumulative = 0;
      for (size_t i = 0; i <= histogram->bounds().size(); ++i) {
        cumulative += histogram->bucket(i);
        const std::string le = i < histogram->bounds().size() ? FormatValue(histogram->bounds()[i]) : "+Inf";
        herald::StrAppend(&out, name, "_bucket", FormatLabels(family->label_names, values, "le", le), " ", cumulative,
                          "\n");
      }
      herald::StrAppend(&out, name, "_sum", FormatLabels(family->label_names, values), " ",
                        FormatValue(histogram->sum()), "\n");
      herald::StrAppend(&out, name, "_count", FormatLabels(family->label_names, values), " ", histogram->count(), "\n");
    }
  }
  // Collected gauges, grouped by name; the first sample's help and label
  // names are the family's.
  std::map<std::string, std::vector<const GaugeSample*>, std::less<>> collected;
  for (const GaugeSample& sample : samples) collected[sample.name].push_back(&sample);
  for (const auto& [name, group] : collected) {
    if (families_.contains(name)) {
      NoteError(herald::StrCat("collected gauge ", name, " has the name of a registered metric"));
      continue;
    }
    if (!IsValidName(name, /*colon=*/true)) {
      NoteError(herald::StrCat("collected gauge name \"", name, "\" is not [a-zA-Z_:][a-zA-Z0-9_:]*"));
      continue;
    }
    const std::vector<std::string> label_names = LabelNames(group.front()->labels);
    std::string out = FamilyHeader(name, group.front()->help, group.front()->counter ? kCounterType : kGaugeType);
    for (const GaugeSample* sample : group) {
      if (LabelNames(sample->labels) != label_names || !CheckLabels(sample->labels, false).empty()) {
        NoteError(herald::StrCat("collected gauge ", name, ": a sample with other or invalid label names"));
        continue;
      }
      herald::StrAppend(&out, name, FormatLabels(label_names, LabelValues(sample->labels)), " ",
                        FormatValue(sample->value), "\n");
    }
    blocks[name] = std::move(out);
  }
  std::string text;
  for (const auto& [name, block] : blocks) text += block;
  return text;
}

std::vector<std::string> MetricsRegistry::errors() const {
  MutexLock lock(mu_);
  return errors_;
}

double MetricsRegistry::Value(std::string_view name, const MetricLabels& labels) const {
  MutexLock lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  const std::vector<std::string> values = LabelValues(labels);
  if (auto c = it->second->counters.find(values); c != it->second->counters.end()) return c->second->value();
  if (auto g = it->second->gauges.find(values); g != it->second->gauges.end()) return g->second->value();
  return 0;
}

}  // namespace herald
