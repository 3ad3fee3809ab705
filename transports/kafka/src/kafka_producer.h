// The producer side of KafkaTransport (private): one rd_kafka_t, a poll thread
// serving delivery reports, bounded waiting on a full queue.
#ifndef HERALD_KAFKA_SRC_KAFKA_PRODUCER_H_
#define HERALD_KAFKA_SRC_KAFKA_PRODUCER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/statusor.h"
#include "error_log.h"
#include "herald/core/mutex.h"
#include "herald/core/transport.h"
#include "herald/core/wire.h"
#include "herald/kafka/kafka_transport.h"
#include "rdkafka_handles.h"

namespace herald::kafka {

// Whether a record librdkafka reports delivered at `offset` is known to be
// written: with acks other than 0 the broker answers every written batch
// with its offset, and a record without one (librdkafka's "implicit ack"
// after a failed request, see OnDelivery) is not proven written.
bool DeliveryConfirmed(int64_t offset, bool acks_report_offsets);

// Thread-safe. `errors` must outlive it.
class KafkaProducer {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaProducer>> Create(const KafkaTransportOptions& options, ErrorLog& errors);
  // Refuses new records, purges what is undelivered (their callbacks get
  // kAborted), stops the poll thread.
  ~KafkaProducer();

  // Produces `record` to `topic` (its value is handed to librdkafka without
  // a copy); `done` runs exactly once, on the poll thread (or at once, on
  // this thread, for an error before enqueueing). Blocks up to
  // queue_full_wait while librdkafka's queue is full.
  void Produce(const std::string& topic, Record record, PublishCallback done);
  // Encodes `envelope` in `mode` (EncodeRecordValue) and produces it to its
  // topic as above; an envelope that does not encode gets its error in
  // `done` at once, before anything else is checked.
  void Produce(const Envelope& envelope, WireMode mode, PublishCallback done);

  // New records fail with kFailedPrecondition from now on.
  void Close() { closed_.store(true); }
  bool closed() const { return closed_.load(); }

  // Gives up on every record not yet delivered: their callbacks run with
  // kAborted on the poll thread, promptly (rd_kafka_purge).
  void Purge();

  // rd_kafka_flush; kDeadlineExceeded when records are still pending.
  absl::Status Flush(absl::Duration timeout);

  void AddStats(KafkaTransportStats& stats) const;

  // message.timeout.ms as librdkafka applies it; infinite for 0.
  absl::Duration delivery_timeout() const { return delivery_timeout_; }

 private:
  struct Pending;
  KafkaProducer(const KafkaTransportOptions& options, ErrorLog& errors) : options_(options), errors_(errors) {}
  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* message, void* opaque);
  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  void PollLoop();
  // Produce's common part: takes ownership of `headers` (and of `value`,
  // handed to librdkafka without a copy).
  void ProduceEncoded(const std::string& topic, std::string_view key, std::string value, rd_kafka_headers_t* headers,
                      PublishCallback done);
  // On the poll thread: fails what waits in librdkafka's queues because the
  // brokers refused the connection (OnError), with that reason.
  void FailQueuedForConnectionError();

  const KafkaTransportOptions options_;
  ErrorLog& errors_;
  HandlePtr rk_;
  absl::Duration delivery_timeout_ = absl::InfiniteDuration();
  // Whether a delivered record comes with its offset: every acks setting
  // but 0 (read back from the configuration, as librdkafka applies it).
  bool acks_report_offsets_ = true;
  std::thread poll_thread_;
  std::atomic<bool> stop_polling_{false};
  std::atomic<bool> closed_{false};

  std::atomic<int64_t> published_{0};
  std::atomic<int64_t> delivered_{0};
  std::atomic<int64_t> failed_{0};
  std::atomic<int64_t> queue_full_waits_{0};
  std::atomic<int64_t> in_flight_{0};

  // A connection refused for a reason that waiting does not cure (SASL
  // authentication, TLS certificate) before anything was delivered: the
  // queued records fail at once with it (kUnavailable) instead of waiting
  // for the delivery timeout, and so do the records queued after it for
  // kConnectionErrorWindow (librdkafka reports the same error again only
  // after 30 s) or until a record is delivered. Set by OnError, served by
  // the poll thread.
  std::atomic<bool> connection_error_pending_{false};
  // Unix nanoseconds until which queued records fail with connection_error_.
  std::atomic<int64_t> connection_error_until_{0};
  mutable Mutex connection_error_mu_;
  // The reason given to the purged records' callbacks; empty otherwise.
  std::string connection_error_ ABSL_GUARDED_BY(connection_error_mu_);
  std::string purge_reason_ ABSL_GUARDED_BY(connection_error_mu_);
};

}  // namespace herald::kafka

#endif  // HERALD_KAFKA_SRC_KAFKA_PRODUCER_H_
