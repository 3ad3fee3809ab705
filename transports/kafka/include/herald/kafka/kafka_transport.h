// herald/kafka/kafka_transport.h: the Apache Kafka transport (librdkafka).
//
// KafkaTransport is a herald::Transport on librdkafka: an idempotent producer
// with asynchronous delivery reports, and one consumer-group member per
// subscription, with at-least-once commits, ordering per partition and
// parallelism across partitions. Policy (decoding, retries, dead letters) is
// the Bus's: the transport hands each record's bytes to it and does what the
// verdict says.
//
//   herald::kafka::KafkaTransportOptions options;
//   options.brokers = brokers;                                    // "host1:9092,host2:9092"
//   options.client_id = "customer-service";
//   options.properties["socket.keepalive.enable"] = "true";      // anything librdkafka takes
//   absl::StatusOr<std::unique_ptr<herald::kafka::KafkaTransport>> kafka =
//       herald::kafka::KafkaTransport::Create(options);
//   if (!kafka.ok()) return kafka.status();   // a bad option is a clear error here
//   herald::Bus bus(*std::move(kafka), {.source = "customer-service"});
//   HERALD_RETURN_IF_ERROR(bus.Subscribe<CustomerEvent>("event-reader", handler));
//   HERALD_RETURN_IF_ERROR(bus.Start());
//   WaitForShutdownSignal();                  // the service runs
//   herald::kafka::KafkaTransportStats stats = bus.transport<herald::kafka::KafkaTransport>().Stats();
//
// Wire format: herald::EncodeRecord / DecodeRecord (herald/core/wire.h); by
// default value = the JSON envelope {"id","type","timestamp","payload"},
// key = envelope.key, CloudEvents binary-mode headers; another WireMode per
// topic with `wire_mode_by_topic`. Producers use partitioner=murmur2_random,
// so a key lands on the same partition as from the Java client or kafka-go's
// Murmur2Balancer.
//
// Consumption (one librdkafka consumer per subscription, group id =
// TransportSubscription::group):
// - A poll thread serves the group (rebalances, errors, commits) and never
//   runs handlers; each assigned partition has a worker thread that takes
//   its records in batches straight from the partition's librdkafka queue
//   and hands them to the Bus in offset order. Partitions are handled in
//   parallel.
// - Commits are at-least-once: enable.auto.commit=false and herald commits,
//   every `commit_interval`, on revoke and on Stop, for each partition the
//   offset after the last record the Bus acknowledged (handled, skipped or
//   dead-lettered). A record is never committed before it is handled.
// - Verdict kRetry pauses the partition (rd_kafka_pause_partitions), waits
//   the delay on the partition's worker and redelivers with attempt + 1;
//   other partitions keep flowing.
// - Rebalances use the eager protocol by default
//   (partition.assignment.strategy=range,roundrobin). On revoke, dispatching
//   of the revoked partitions stops, in-flight handlers get up to
//   `rebalance_drain_timeout`, finished offsets are committed and buffered
//   records are dropped (the next owner reads them from the committed
//   offset). cooperative-sticky (via `consumer_properties`) is supported:
//   then only the listed partitions are revoked.
//
// Thread-safety: every method may be called from any thread, concurrently.
// The Bus's handler runs on the partition worker threads.
#ifndef HERALD_KAFKA_KAFKA_TRANSPORT_H_
#define HERALD_KAFKA_KAFKA_TRANSPORT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "herald/core/log.h"
#include "herald/core/mutex.h"
#include "herald/core/transport.h"
#include "herald/core/wire.h"

namespace herald::kafka {

struct KafkaTransportOptions {
  // ---- Connection ----

  // bootstrap.servers: "host:port[,host:port...]". Required.
  std::string brokers;
  // client.id of the producer and the consumers. Default: "herald".
  std::string client_id = "herald";

  // ---- Producer ----

  // acks: "all" (every in-sync replica), "1" or "0". Default: "all".
  std::string acks = "all";
  // enable.idempotence: no duplicates or reordering from producer retries.
  // Requires acks=all. Default: true.
  bool enable_idempotence = true;
  // linger.ms: how long to wait to fill a batch (fractions of a millisecond
  // are kept). Every record waits up to this long before it is sent, and the
  // outbox relay pays it about twice (a round waits for its acks before the
  // next claim): with 5 ms (librdkafka's default) its commit-to-handler p50
  // was 12-17 ms idle, with 1 ms 3-5 ms. Under load batches fill anyway
  // while requests are in flight; docs/kafka.md gives the measured
  // throughput cost. Default: 1 ms.
  absl::Duration linger = absl::Milliseconds(1);
  // batch.size in bytes. Default: 1000000 (librdkafka's default).
  int batch_size_bytes = 1000000;
  // delivery.timeout.ms (message.timeout.ms): how long a publish may wait
  // for the broker (retries and broker outages included) before its
  // completion reports kDeadlineExceeded. Default: 120 s (the Java client's).
  absl::Duration delivery_timeout = absl::Seconds(120);
  // message.max.bytes of the producer: the largest record it sends (key,
  // value, headers and framing). Match it to the broker's message.max.bytes
  // and the topics' max.message.bytes: a record over the producer's limit
  // fails at once, one over the broker's fails at delivery; both are
  // RecordTooLargeError (transport.h). A dead letter that does not fit is
  // written without its value (delivery_policy.h), so an original just under
  // the limit never stalls its partition. Default: 1048588, the broker's own
  // default (librdkafka's 1000000 is smaller, so a dead letter of a record
  // near 1 MB, which gains headers, would not fit).
  int max_message_bytes = 1048588;
  // compression.type: "none", "gzip", "snappy", "lz4" or "zstd".
  // Default: "none".
  std::string compression = "none";
  // How envelopes are laid out in records (herald/core/wire.h).
  // Default: WireMode::kJsonEnvelope.
  WireMode wire_mode = WireMode::kJsonEnvelope;
  // The layout for particular topics, overriding `wire_mode` there: e.g.
  // WireMode::kBinary for a topic whose consumers are CloudEvents SDKs (they
  // then get the payload as their `data`, not the whole JSON envelope).
  // Dead letters go by their own topic's entry. Consumers need no setting:
  // they read every mode. Default: empty.
  std::map<std::string, WireMode, std::less<>> wire_mode_by_topic;
  // When librdkafka's local queue is full, PublishAsync waits up to this
  // long for room, then reports kResourceExhausted. Default: 10 s.
  absl::Duration queue_full_wait = absl::Seconds(10);

  // ---- Consumers ----

  // session.timeout.ms. Default: 45 s.
  absl::Duration session_timeout = absl::Seconds(45);
  // max.poll.interval.ms. herald's poll thread never runs handlers, so this
  // bounds only the poll loop itself. Default: 300 s.
  absl::Duration max_poll_interval = absl::Seconds(300);
  // auto.offset.reset for a group with no committed offset: "earliest" or
  // "latest". Default: "earliest".
  std::string auto_offset_reset = "earliest";
  // How often finished offsets are committed (asynchronously). They are also
  // committed on revoke and on Stop. Default: 1 s.
  absl::Duration commit_interval = absl::Seconds(1);
  // Records prefetched per partition (librdkafka's queued.min.messages):
  // fetching of a partition stops while its queue holds this many records
  // the worker has not taken yet, and goes on as the worker drains it
  // (librdkafka's queued.max.messages.kbytes caps the bytes as well).
  // librdkafka before 2.4 looks at a full partition again only after up to
  // 1 s (it is not woken when the queue drains), so a partition whose
  // handler is faster than this many records a second idles for the rest
  // of that second; keep it at least a second of the handler's throughput.
  // Default: 100000 (librdkafka's own default).
  int max_buffered_records_per_partition = 100000;
  // How long a revoke waits for the in-flight handlers of the revoked
  // partitions. Default: 10 s.
  absl::Duration rebalance_drain_timeout = absl::Seconds(10);
  // topic.metadata.refresh.interval.ms of the consumers. A consumer
  // subscribed to a topic that does not exist yet joins it (and a new
  // partition is assigned) only after the next metadata refresh, so this
  // bounds that delay. librdkafka's own default is 5 min. Default: 10 s.
  absl::Duration metadata_refresh_interval = absl::Seconds(10);

  // ---- Pass-through ----

  // Any librdkafka property (TLS, SASL, ...), applied to the producer and
  // the consumers after the typed options above (so they win). The values
  // of secret properties (IsSecretProperty in herald/kafka/properties.h:
  // passwords, secrets, inline private keys) never appear in errors or
  // logs. ReadPropertiesFile reads them from a librdkafka properties file.
  std::map<std::string, std::string> properties;
  // Applied to the producer only, after `properties`.
  std::map<std::string, std::string> producer_properties;
  // Applied to the consumers only, after `properties`.
  std::map<std::string, std::string> consumer_properties;

  // ---- Logging ----

  // Where the transport logs (herald/core/log.h), component "kafka":
  // librdkafka's own log (its log_cb, levels mapped from syslog: 0-3 error,
  // 4 warning, 5-6 info, 7 debug, which librdkafka writes only for the
  // contexts named in its `debug` property), every error the transport
  // records (warning: failed commits, consumer errors, failed rebalances),
  // rebalances and librdkafka's error callback (info: a broker that does
  // not answer is retried by librdkafka and reported in the failing call's
  // Status; a FATAL producer error is an error).
  // The values of secret properties are redacted from every record. Given
  // here and not through the Bus because librdkafka takes its log callback
  // before the clients exist; pass the sink the Bus gets in BusOptions::log.
  // Must outlive the transport (and every KafkaTopicReader opened with
  // these options). Default: none, and then herald::DefaultLogSink()
  // (warnings and errors on stderr, as librdkafka logs by default).
  LogSink* log = nullptr;
};

// Counters and consumer lag; a snapshot.
struct KafkaTransportStats {
  // Producer.
  int64_t published = 0;         // records accepted by librdkafka
  int64_t delivered = 0;         // delivery reports with success
  int64_t publish_failed = 0;    // failed before or after being accepted
  int64_t queue_full_waits = 0;  // times a publish waited for queue room
  int64_t in_flight = 0;         // accepted, outcome not yet known
  // Consumers.
  int64_t received = 0;           // records fetched
  int64_t handled = 0;            // records finished (acked)
  int64_t redelivered = 0;        // retry redeliveries (attempt > 1)
  int64_t dropped_on_revoke = 0;  // buffered records left to the next owner
  int64_t commits = 0;            // commit requests sent
  int64_t commit_failures = 0;
  int64_t rebalances = 0;                 // assign and revoke events
  int64_t consumers = 0;                  // one per subscription, once started
  int64_t consumers_joined = 0;           // of those, how many joined their group (first assignment, maybe empty)
  int64_t consumers_with_partitions = 0;  // of those, how many have partitions assigned
  // The last error librdkafka reported through its error callback, if any.
  std::string last_error;

  struct Partition {
    std::string group;
    std::string topic;
    int32_t partition = 0;
    // Offset after the last finished record (what the next commit sends),
    // or -1 before the first record.
    int64_t next_commit = -1;
    // High watermark as last seen by the fetcher, or -1 when unknown.
    int64_t high_watermark = -1;
    // high_watermark - next_commit, or -1 when either is unknown.
    int64_t lag = -1;
    int64_t buffered = 0;  // records waiting for the worker
    bool paused = false;
  };
  std::vector<Partition> partitions;
};

class KafkaProducer;
class GroupConsumer;

class ErrorLog;

class KafkaTransport final : public Transport {
 public:
  // Builds the producer (consumers are made per subscription). Connects
  // lazily: a broker that is not up yet is not an error here.
  // kInvalidArgument for a missing or bad option, with librdkafka's reason
  // (secrets redacted).
  static absl::StatusOr<std::unique_ptr<KafkaTransport>> Create(KafkaTransportOptions options);

  // Stops with a zero drain deadline if Stop was not called, then waits for
  // handlers still running (it never abandons a running handler's thread).
  ~KafkaTransport() override;

  // Encodes with herald::EncodeRecord and produces with librdkafka (the
  // encoded value is handed over without a copy and freed after the
  // delivery report); `done`
  // runs on the producer's poll thread with the delivery report (partition,
  // offset) or the mapped error. Blocks up to `queue_full_wait` while the
  // local queue is full. While nothing has been delivered yet, a connection
  // the brokers refuse for a reason that waiting does not cure (SASL
  // authentication, an untrusted certificate) fails the queued publishes,
  // and those of the next 30 s, at once with kUnavailable, the reason and a
  // hint, instead of after `delivery_timeout`.
  void Publish(Envelope envelope, PublishCallback done) override;
  // Produces the record as it is (the Bus's dead letters: the record as read,
  // plus herald-dlq-* headers); an empty value stays an empty value.
  void PublishRecord(std::string topic, Record record, PublishCallback done) override;
  // Before Start: kept and started by Start. After Start: joins its group at
  // once. kInvalidArgument (ValidateSubscription); after Stop:
  // kFailedPrecondition.
  absl::Status Subscribe(TransportSubscription subscription) override;
  // Creates one consumer per subscription and subscribes to its topics.
  // kInvalidArgument when a consumer option is bad; kFailedPrecondition
  // after Stop.
  absl::Status Start() override;
  // Stops fetching, lets in-flight handlers finish until `drain_deadline`
  // (records buffered but not started are left uncommitted for the group),
  // commits finished offsets, leaves the groups (rd_kafka_consumer_close),
  // then flushes the producer for what remains of the deadline; publishes
  // still undelivered then are given up: their callbacks run at once with
  // kAborted (retryable: publish again), so nothing waits on them past the
  // deadline (e.g. a relay stopping with the brokers down).
  // kDeadlineExceeded when a handler was still running or a publish was
  // still undelivered at the deadline.
  absl::Status Stop(absl::Duration drain_deadline) override;
  // rd_kafka_flush: kDeadlineExceeded when publishes are still pending.
  absl::Status Flush(absl::Duration timeout) override;
  // The producer's effective delivery.timeout.ms (delivery_timeout, or what
  // `properties` / `producer_properties` set instead); infinite for 0.
  absl::Duration DeliveryTimeout() const override;
  // At each export: herald_kafka_consumer_lag_records{group,topic,partition}
  // per assigned partition (-1 lag, unknown, is left out),
  // herald_kafka_rebalances_total, herald_kafka_commit_failures_total,
  // herald_kafka_consumers_joined / _consumers (groups joined, of those
  // subscribed) and herald_kafka_producer_queue_records (publishes waiting
  // for their outcome), all read from Stats() (docs/operations.md).
  void ReportMetricsTo(Metrics& metrics) override;

  // Gives up every publish not delivered yet: their callbacks run at once
  // (on the producer's poll thread) with kAborted, which is retryable.
  // Unlike Stop, publishing goes on: for a bounded shutdown of something
  // that waits on its publishes and may still be publishing (herald relay's
  // --shutdown-timeout), which must not see "stopped" errors.
  void AbandonPublishes();

  // Producer and consumer counters, and lag per assigned partition. (The
  // handling counters, retries and dead letters included, are the Bus's:
  // Bus::Stats.)
  KafkaTransportStats Stats() const;

  const KafkaTransportOptions& options() const { return options_; }

 private:
  KafkaTransport(KafkaTransportOptions options, std::unique_ptr<ErrorLog> errors,
                 std::unique_ptr<KafkaProducer> producer);
  absl::Status StartConsumer(const TransportSubscription& subscription) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const KafkaTransportOptions options_;
  const std::unique_ptr<ErrorLog> errors_;
  std::unique_ptr<KafkaProducer> producer_;
  mutable Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<TransportSubscription> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<GroupConsumer>> consumers_ ABSL_GUARDED_BY(mu_);
  // Reset first by the destructor, so no export reads a consumer going away.
  std::unique_ptr<Metrics::Registration> metrics_registration_;
};

}  // namespace herald::kafka

#endif  // HERALD_KAFKA_KAFKA_TRANSPORT_H_
