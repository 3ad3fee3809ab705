// The last error the Kafka transport's clients reported (private): the
// producer, every consumer and librdkafka's error callbacks write here, and
// KafkaTransport::Stats() reads it. Also the transport's way to its log sink
// (KafkaTransportOptions::log): every error recorded here is logged as a
// warning, and librdkafka's own log (log_cb) goes through Librdkafka(), all
// with the secrets of the options redacted and component "kafka".
#ifndef HERALD_KAFKA_SRC_ERROR_LOG_H_
#define HERALD_KAFKA_SRC_ERROR_LOG_H_

#include <string>
#include <utility>

#include "herald/core/log.h"
#include "herald/core/mutex.h"
#include "herald/kafka/kafka_transport.h"
#include "kafka_config.h"

namespace herald::kafka {

// Thread-safe.
class ErrorLog {
 public:
  // Keeps a copy of `options` to redact their secrets from every error.
  explicit ErrorLog(KafkaTransportOptions options) : options_(std::move(options)) {}

  // Keeps `error`, with secrets redacted (RedactSecrets), and logs it at
  // `level`: a warning, but kInfo for what librdkafka's error callback
  // reports (a broker that does not answer, which librdkafka retries on its
  // own and herald reports in the failing call's Status).
  void Record(std::string error, LogLevel level = LogLevel::kWarning) {
    error = RedactSecrets(options_, std::move(error));
    herald::Log(sink_, level, "kafka", error);
    MutexLock lock(mu_);
    last_ = std::move(error);
  }
  // Logs `message` with `fields`, secrets redacted from both.
  void Log(LogLevel level, std::string message, LogFields fields = {}) const {
    if (!sink_.Enabled(level)) return;
    for (auto& field : fields) field.second = RedactSecrets(options_, std::move(field.second));
    herald::Log(sink_, level, "kafka", RedactSecrets(options_, std::move(message)), fields);
  }
  // One line of librdkafka's own log (rd_kafka_conf_set_log_cb), at its
  // syslog level: 0-3 error, 4 warning, 5-6 info, 7 (debug contexts) debug.
  void Librdkafka(const rd_kafka_t* rk, int level, const char* facility, const char* text) const {
    const LogLevel mapped = level <= 3   ? LogLevel::kError
                            : level == 4 ? LogLevel::kWarning
                            : level <= 6 ? LogLevel::kInfo
                                         : LogLevel::kDebug;
    if (!sink_.Enabled(mapped)) return;
    Log(mapped, text != nullptr ? text : "",
        {{"facility", facility != nullptr ? facility : ""}, {"client", rk != nullptr ? rd_kafka_name(rk) : ""}});
  }
  // `text` with the secrets of the options redacted (RedactSecrets).
  std::string Redact(std::string text) const { return RedactSecrets(options_, std::move(text)); }
  std::string last() const {
    MutexLock lock(mu_);
    return last_;
  }

 private:
  const KafkaTransportOptions options_;
  LogSink& sink_ = LogSinkOrDefault(options_.log);
  mutable Mutex mu_;
  std::string last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald::kafka

#endif  // HERALD_KAFKA_SRC_ERROR_LOG_H_
