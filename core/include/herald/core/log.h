// herald/core/log.h: the one sink herald writes its log through, and the
// sinks it ships: text lines and JSON lines on a stream.
//
//   herald::StreamLogSink log(stderr, {.format = herald::LogFormat::kJson, .min_level = herald::LogLevel::kInfo});
//   herald::Bus bus(std::move(transport), {.log = &log});
//   herald::OutboxRelay relay(store, bus, {.log = &log});
//
// Give the same sink to the transport and the store as well
// (herald::kafka::KafkaTransportOptions::log, which also carries librdkafka's
// own log, and herald::postgres::PostgresOptions::log).
//
// Every component (the relay, the Bus and its dispatchers, the Kafka
// transport with librdkafka's own log and error callbacks, the PostgreSQL
// store) reports what happens to it through the LogSink it is given, as a
// LogRecord: a level, the component ("relay", "bus", "kafka", "postgres"), a
// message that says what happened, and key-value fields (topic, group,
// partition, id, error). Without one (the default), DefaultLogSink() is
// used: warnings and errors as text lines on stderr, which is where
// librdkafka writes its own log by default. What is logged at which level is
// listed in docs/operations.md ("Logging"); events that happen once per
// record (a publish, a handled event) are logged at kDebug only.
//
// Secrets are redacted before a record reaches the sink (the values of
// secret librdkafka properties, herald::kafka::IsSecretProperty; PostgreSQL
// passwords in connection strings, herald::postgres::RedactConnectionString):
// a sink never sees them.
//
// Thread-safety: LogSink::Write and LogSink::Enabled are called from any
// thread, concurrently (librdkafka's threads included); every sink must
// allow it. StreamLogSink writes each record as one whole line.
#ifndef HERALD_CORE_LOG_H_
#define HERALD_CORE_LOG_H_

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "herald/core/mutex.h"

namespace herald {

// Ordered by severity: a sink with min_level kInfo writes kInfo, kWarning
// and kError.
enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// "debug", "info", "warning", "error".
std::string_view LogLevelName(LogLevel level);
// The level named by LogLevelName (also "warn"); nullopt for anything else.
std::optional<LogLevel> ParseLogLevel(std::string_view name);

// Key-value context of one record, in order, e.g. {"topic", "orders"}.
using LogFields = std::vector<std::pair<std::string, std::string>>;

// One thing that happened. The views are valid during LogSink::Write only.
struct LogRecord {
  absl::Time time;
  LogLevel level = LogLevel::kInfo;
  std::string_view component;  // "relay", "bus", "kafka", "postgres", ...
  std::string_view message;
  const LogFields* fields = nullptr;  // never null when passed to Write
};

class LogSink {
 public:
  virtual ~LogSink() = default;
  // Whether a record at `level` would be written. Callers check it first,
  // so a filtered record costs no formatting.
  virtual bool Enabled(LogLevel level) const = 0;
  // Writes `record` (its level is Enabled). Must not throw, must not call
  // back into herald.
  virtual void Write(const LogRecord& record) = 0;
};

enum class LogFormat {
  // One line per record:
  //   2026-12-01T18:55:00.123Z INFO relay: became leader shard=0 shards=1
  // Field values with spaces, quotes, '=' or control characters are quoted
  // and escaped like JSON strings.
  kText,
  // One JSON object per line (written with RapidJSON):
  //   {"time":"2026-12-01T18:55:00.123Z","level":"info","component":"relay",
  //    "message":"became leader","shard":"0","shards":"1"}
  // Fields come after "message", all values strings; a field named like one
  // of the four fixed keys is written with a "field." prefix.
  kJson,
};

struct StreamLogOptions {
  // Default: LogFormat::kText.
  LogFormat format = LogFormat::kText;
  // Records below this level are dropped. Default: LogLevel::kInfo.
  LogLevel min_level = LogLevel::kInfo;
};

// Writes records as text or JSON lines to a FILE*, one fwrite and one fflush
// per record, under a lock (lines of concurrent writers never mix).
class StreamLogSink final : public LogSink {
 public:
  // `out` (stderr, stdout, a file) must outlive the sink; it is not closed.
  StreamLogSink(std::FILE* out, StreamLogOptions options = {});
  bool Enabled(LogLevel level) const override { return level >= options_.min_level; }
  void Write(const LogRecord& record) override;

  // The line Write would write for `record` (with its '\n'), for tests.
  static std::string Format(const LogRecord& record, LogFormat format);

 private:
  Mutex mu_;
  std::FILE* const out_ ABSL_PT_GUARDED_BY(mu_);
  const StreamLogOptions options_;
};

// Warnings and errors as text lines on stderr. Lives for the whole program.
LogSink& DefaultLogSink();

// `sink`, or DefaultLogSink() when it is null.
inline LogSink& LogSinkOrDefault(LogSink* sink) { return sink != nullptr ? *sink : DefaultLogSink(); }

// Writes one record now to `sink` if it is Enabled for `level`.
void Log(LogSink& sink, LogLevel level, std::string_view component, std::string_view message,
         const LogFields& fields = {});

}  // namespace herald

#endif  // HERALD_CORE_LOG_H_
