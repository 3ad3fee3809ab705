// herald/testing/recording_log_sink.h: a LogSink that keeps every record,
// for tests that check what herald logs.
//
//   herald::testing::RecordingLogSink log;
//   herald::OutboxRelay relay(store, bus, {.log = &log});
//   EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(1));
//   EXPECT_FALSE(log.Find("relay", "batch relayed").empty());
//
// Thread-safe.
#ifndef HERALD_TESTING_RECORDING_LOG_SINK_H_
#define HERALD_TESTING_RECORDING_LOG_SINK_H_

#include <string>
#include <string_view>
#include <vector>

#include "herald/core/log.h"
#include "herald/core/mutex.h"

namespace herald::testing {

// One record as kept (LogRecord's views copied).
struct RecordedLog {
  LogLevel level = LogLevel::kInfo;
  std::string component;
  std::string message;
  LogFields fields;

  // The value of field `key`, or "" when there is none.
  std::string Field(std::string_view key) const {
    for (const auto& [k, v] : fields) {
      if (k == key) return v;
    }
    return "";
  }
};

class RecordingLogSink final : public LogSink {
 public:
  // Keeps records at `min_level` and above. Default: every record.
  explicit RecordingLogSink(LogLevel min_level = LogLevel::kDebug) : min_level_(min_level) {}

  bool Enabled(LogLevel level) const override { return level >= min_level_; }
  void Write(const LogRecord& record) override {
    RecordedLog kept{record.level, std::string(record.component), std::string(record.message),
                     record.fields != nullptr ? *record.fields : LogFields{}};
    MutexLock lock(mu_);
    records_.push_back(std::move(kept));
  }

  std::vector<RecordedLog> records() const {
    MutexLock lock(mu_);
    return records_;
  }
  // The records of `component` whose message contains `text`.
  std::vector<RecordedLog> Find(std::string_view component, std::string_view text) const {
    std::vector<RecordedLog> out;
    MutexLock lock(mu_);
    for (const RecordedLog& r : records_) {
      if (r.component == component && r.message.find(text) != std::string::npos) out.push_back(r);
    }
    return out;
  }

 private:
  const LogLevel min_level_;
  mutable Mutex mu_;
  std::vector<RecordedLog> records_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald::testing

#endif  // HERALD_TESTING_RECORDING_LOG_SINK_H_
