// The last error the Kafka transport's clients reported (private): the
// producer, every consumer and librdkafka's error callbacks write here, and
// KafkaTransport::Stats() reads it.
#ifndef HERALD_KAFKA_SRC_ERROR_LOG_H_
#define HERALD_KAFKA_SRC_ERROR_LOG_H_

#include <string>
#include <utility>

#include "herald/core/mutex.h"
#include "herald/kafka/kafka_transport.h"
#include "kafka_config.h"

namespace herald::kafka {

// Thread-safe.
class ErrorLog {
 public:
  // Keeps a copy of `options` to redact their secrets from every error.
  explicit ErrorLog(KafkaTransportOptions options) : options_(std::move(options)) {}

  // Keeps `error`, with secrets redacted (RedactSecrets).
  void Record(std::string error) {
    error = RedactSecrets(options_, std::move(error));
    MutexLock lock(mu_);
    last_ = std::move(error);
  }
  // `text` with the secrets of the options redacted (RedactSecrets).
  std::string Redact(std::string text) const { return RedactSecrets(options_, std::move(text)); }
  std::string last() const {
    MutexLock lock(mu_);
    return last_;
  }

 private:
  const KafkaTransportOptions options_;
  mutable Mutex mu_;
  std::string last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald::kafka

#endif  // HERALD_KAFKA_SRC_ERROR_LOG_H_
