#include "kafka_producer.h"

#include <cstdlib>
#include <string_view>
#include <utility>

#include "absl/time/clock.h"
#include "herald/core/strings.h"
#include "kafka_config.h"
#include "kafka_status.h"

namespace herald::kafka {
namespace {

// How long after a refused connection (KafkaProducer::OnError) newly queued
// records fail at once too: librdkafka reports an identical error again only
// after 30 s.
constexpr absl::Duration kConnectionErrorWindow = absl::Seconds(30);

// What to check when the brokers refuse the connection with `err`.
std::string ConnectionErrorHint(rd_kafka_resp_err_t err, const char* reason) {
  if (err == RD_KAFKA_RESP_ERR__SSL) {
    return "Hint: check ssl.ca.location (the CA that signed the brokers' certificates) and that the broker "
           "addresses match the names in their certificates";
  }
  std::string hint = "Hint: check sasl.mechanisms, sasl.username and sasl.password";
  // librdkafka before 2.6.1 repeats the client nonce in its SCRAM final
  // message; Kafka 4.x brokers refuse that as invalid credentials.
  if (reason != nullptr && std::string_view(reason).find("SCRAM") != std::string_view::npos &&
      rd_kafka_version() < 0x020601ff) {
    hint += herald::StrCat("; this librdkafka (", rd_kafka_version_str(),
                           ") cannot authenticate with SCRAM to Kafka 4.x brokers (fixed in librdkafka 2.6.1): "
                           "upgrade librdkafka, or use another mechanism with those brokers");
  }
  return hint;
}

}  // namespace

bool DeliveryConfirmed(int64_t offset, bool acks_report_offsets) { return !acks_report_offsets || offset >= 0; }

// One per record in librdkafka's hands (the message opaque): the callback,
// and the value bytes, which librdkafka references without copying them
// (msgflags 0) until the delivery report.
struct KafkaProducer::Pending {
  KafkaProducer* producer;
  PublishCallback done;
  std::string value;
};

absl::StatusOr<std::unique_ptr<KafkaProducer>> KafkaProducer::Create(const KafkaTransportOptions& options,
                                                                     ErrorLog& errors) {
  absl::StatusOr<ConfPtr> conf = BuildProducerConf(options);
  if (!conf.ok()) return conf.status();
  std::unique_ptr<KafkaProducer> producer(new KafkaProducer(options, errors));
  rd_kafka_conf_set_opaque(conf->get(), producer.get());
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &KafkaProducer::OnDelivery);
  rd_kafka_conf_set_error_cb(conf->get(), &KafkaProducer::OnError);
  rd_kafka_conf_set_log_cb(conf->get(), [](const rd_kafka_t* rk, int level, const char* facility, const char* text) {
    static_cast<KafkaProducer*>(rd_kafka_opaque(rk))->errors_.Librdkafka(rk, level, facility, text);
  });
  // The bound the relay derives its waits from: read back, so that a
  // pass-through property that overrides delivery_timeout counts.
  producer->delivery_timeout_ = options.delivery_timeout;
  char ms_text[32] = {0};
  size_t size = sizeof(ms_text);
  rd_kafka_conf_res_t got = rd_kafka_conf_get(conf->get(), "message.timeout.ms", ms_text, &size);
  if (rd_kafka_topic_conf_t* topic_conf = rd_kafka_conf_get_default_topic_conf(conf->get());
      got != RD_KAFKA_CONF_OK && topic_conf != nullptr) {
    size = sizeof(ms_text);
    got = rd_kafka_topic_conf_get(topic_conf, "message.timeout.ms", ms_text, &size);
  }
  if (got == RD_KAFKA_CONF_OK) {
    const long long ms = std::atoll(ms_text);
    producer->delivery_timeout_ = ms == 0 ? absl::InfiniteDuration() : absl::Milliseconds(ms);
  }
  if (rd_kafka_topic_conf_t* topic_conf = rd_kafka_conf_get_default_topic_conf(conf->get()); topic_conf != nullptr) {
    char acks[16] = {0};
    size = sizeof(acks);
    if (rd_kafka_topic_conf_get(topic_conf, "request.required.acks", acks, &size) == RD_KAFKA_CONF_OK) {
      producer->acks_report_offsets_ = std::atoi(acks) != 0;
    }
  }
  char errstr[512] = {0};
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), errstr, sizeof(errstr));
  if (rk == nullptr) {
    return absl::InvalidArgumentError(
        herald::StrCat("KafkaTransport: cannot create the producer: ", RedactSecrets(options, errstr)));
  }
  static_cast<void>(conf->release());  // rd_kafka_new owns it now
  producer->rk_.reset(rk);
  producer->poll_thread_ = std::thread([p = producer.get()] { p->PollLoop(); });
  return producer;
}

KafkaProducer::~KafkaProducer() {
  Close();
  if (rk_ != nullptr) {
    // Undelivered records get their callbacks (kAborted) before destroy.
    rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  }
  stop_polling_.store(true);
  if (poll_thread_.joinable()) poll_thread_.join();
  if (rk_ != nullptr) {
    rd_kafka_flush(rk_.get(), 5000);
    rd_kafka_poll(rk_.get(), 0);
    rk_.reset();
  }
}

void KafkaProducer::PollLoop() {
  while (!stop_polling_.load(std::memory_order_relaxed)) {
    rd_kafka_poll(rk_.get(), 100);
    const bool refused = connection_error_pending_.exchange(false) ||
                         (absl::GetCurrentTimeNanos() < connection_error_until_.load(std::memory_order_relaxed) &&
                          delivered_.load(std::memory_order_relaxed) == 0 && rd_kafka_outq_len(rk_.get()) > 0);
    if (refused) FailQueuedForConnectionError();
  }
}

void KafkaProducer::FailQueuedForConnectionError() {
  {
    MutexLock lock(connection_error_mu_);
    purge_reason_ = connection_error_;
  }
  // Records not sent yet (none can be, the connection being refused) get
  // their delivery reports now, served at once by the poll below.
  rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE);
  rd_kafka_poll(rk_.get(), 0);
  MutexLock lock(connection_error_mu_);
  purge_reason_.clear();
}

void KafkaProducer::Produce(const Envelope& envelope, WireMode mode, PublishCallback done) {
  // The headers go from the envelope straight into librdkafka's list (which
  // copies them), with no Record in between.
  rd_kafka_headers_t* headers = rd_kafka_headers_new(8 + envelope.headers.size() + envelope.extensions.size());
  absl::StatusOr<std::string> value =
      EncodeRecordValue(envelope, mode, [headers](std::string_view name, std::string_view text) {
        rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), text.data(),
                            static_cast<ssize_t>(text.size()));
      });
  if (!value.ok()) {
    rd_kafka_headers_destroy(headers);
    done(value.status());
    return;
  }
  ProduceEncoded(envelope.topic, envelope.key, *std::move(value), headers, std::move(done));
}

void KafkaProducer::Produce(const std::string& topic, Record record, PublishCallback done) {
  rd_kafka_headers_t* headers = rd_kafka_headers_new(record.headers.size());
  for (const auto& [name, value] : record.headers) {
    rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                        static_cast<ssize_t>(value.size()));
  }
  ProduceEncoded(topic, record.key, std::move(record.value), headers, std::move(done));
}

void KafkaProducer::ProduceEncoded(const std::string& topic, std::string_view key, std::string value,
                                   rd_kafka_headers_t* headers, PublishCallback done) {
  if (closed()) {
    rd_kafka_headers_destroy(headers);
    failed_.fetch_add(1, std::memory_order_relaxed);
    done(absl::FailedPreconditionError(
        herald::StrCat("publish to ", topic, ": the Kafka bus is stopped; publish before Stop()")));
    return;
  }
  if (topic.empty()) {
    rd_kafka_headers_destroy(headers);
    failed_.fetch_add(1, std::memory_order_relaxed);
    done(absl::InvalidArgumentError("publish: the envelope has no topic"));
    return;
  }
  // The value moves into the per-record context and is handed to librdkafka
  // by reference (no copy); it is freed with the context after the delivery
  // report. Key and headers are copied by librdkafka.
  auto* pending = new Pending{this, std::move(done), std::move(value)};
  absl::Time give_up = absl::InfinitePast();
  bool waited = false;
  rd_kafka_resp_err_t err;
  while (true) {
    err = rd_kafka_producev(rk_.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                            RD_KAFKA_V_KEY(key.empty() ? nullptr : const_cast<char*>(key.data()), key.size()),
                            // Never a null pointer: an empty value is written as an empty value
                            // (a null one would be a tombstone, which a compacted topic deletes).
                            RD_KAFKA_V_VALUE(pending->value.data(), pending->value.size()), RD_KAFKA_V_MSGFLAGS(0),
                            RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(pending), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;  // librdkafka owns `headers` now
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || closed()) break;
    const absl::Time now = absl::Now();
    if (!waited) give_up = now + options_.queue_full_wait;  // the clock is read only once the queue is full
    if (now >= give_up) break;
    if (!waited) queue_full_waits_.fetch_add(1, std::memory_order_relaxed);
    waited = true;
    // The poll thread serves delivery reports and so makes room.
    absl::SleepFor(absl::Milliseconds(2));
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(headers);
    failed_.fetch_add(1, std::memory_order_relaxed);
    PublishCallback callback = std::move(pending->done);
    delete pending;
    callback(KafkaErrorToStatus(err, herald::StrCat("publish to ", topic)));
    return;
  }
  published_.fetch_add(1, std::memory_order_relaxed);
  in_flight_.fetch_add(1, std::memory_order_relaxed);
}

void KafkaProducer::OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* message, void* opaque) {
  auto* pending = static_cast<Pending*>(message->_private);
  if (pending == nullptr) return;
  KafkaProducer* self = pending->producer;
  self->in_flight_.fetch_sub(1, std::memory_order_relaxed);
  const char* topic = message->rkt != nullptr ? rd_kafka_topic_name(message->rkt) : "";
  PublishCallback done = std::move(pending->done);
  delete pending;
  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    self->failed_.fetch_add(1, std::memory_order_relaxed);
    if (message->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE) {
      std::string reason;
      {
        MutexLock lock(self->connection_error_mu_);
        reason = self->purge_reason_;
      }
      if (!reason.empty()) {
        // Retryable: the record is fine, the connection is not (a relay keeps
        // the row pending and retries while the credentials are fixed).
        done(absl::UnavailableError(herald::StrCat("publish to ", topic,
                                                   ": not sent, the brokers refused the "
                                                   "connection: ",
                                                   reason)));
        return;
      }
    }
    done(KafkaErrorToStatus(message->err, herald::StrCat("publish to ", topic)));
    return;
  }
  if (!DeliveryConfirmed(message->offset, self->acks_report_offsets_)) {
    // librdkafka's idempotent producer acknowledges a record without an
    // offset when a later batch of the same partition succeeded ("implicit
    // ack"). That is sound only if the broker rejects a batch whose
    // predecessor is missing, and a broker that holds no state for this
    // producer id on the partition (a new producer, a new partition, a new
    // leader) accepts any sequence: the first request fails (e.g. "not
    // leader", right after a topic is created) while the second is written,
    // and the first is lost although reported delivered. Not proven
    // written, it is reported as a failure: publishing it again makes a
    // duplicate at worst, never a loss.
    self->failed_.fetch_add(1, std::memory_order_relaxed);
    const std::string text = herald::StrCat(
        "publish to ", topic, "[", message->partition,
        "]: not confirmed: librdkafka counted the record delivered without an offset, because a later batch "
        "of the partition succeeded after this one's request failed; Kafka may not have written it (publish it "
        "again: a duplicate at worst)");
    self->errors_.Record(text);
    done(absl::UnavailableError(text));
    return;
  }
  self->delivered_.fetch_add(1, std::memory_order_relaxed);
  DeliveryReport report;
  report.topic = topic;
  report.partition = message->partition;
  report.offset = message->offset;
  done(std::move(report));
}

void KafkaProducer::OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto* self = static_cast<KafkaProducer*>(opaque);
  std::string text = herald::StrCat("producer: ", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)), ": ",
                                    reason != nullptr ? reason : "");
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char fatal[512] = {0};
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
    text = herald::StrCat("producer: FATAL ", rd_kafka_err2name(orig), ": ", fatal,
                          " (publishes now fail; recreate the transport)");
  }
  if ((err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR__SSL) &&
      self->delivered_.load(std::memory_order_relaxed) == 0) {
    // A producer that never delivered cannot reach the cluster at all: fail
    // what it holds now. (Once it has delivered, a refused connection may be
    // one broker's passing trouble: the delivery timeout applies.)
    std::string why = self->errors_.Redact(
        herald::StrCat(rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)), ": ", reason != nullptr ? reason : "",
                       ". ", ConnectionErrorHint(static_cast<rd_kafka_resp_err_t>(err), reason)));
    {
      MutexLock lock(self->connection_error_mu_);
      self->connection_error_ = std::move(why);
    }
    self->connection_error_until_.store(absl::ToUnixNanos(absl::Now() + kConnectionErrorWindow));
    self->connection_error_pending_.store(true);
  }
  self->errors_.Record(std::move(text), err == RD_KAFKA_RESP_ERR__FATAL ? LogLevel::kError : LogLevel::kInfo);
}

void KafkaProducer::Purge() { rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT); }

absl::Status KafkaProducer::Flush(absl::Duration timeout) {
  int ms = static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(timeout)));
  rd_kafka_resp_err_t err = rd_kafka_flush(rk_.get(), ms);
  if (err == RD_KAFKA_RESP_ERR__TIMED_OUT) {
    return absl::DeadlineExceededError(
        herald::StrCat("KafkaTransport::Flush: ", rd_kafka_outq_len(rk_.get()), " records still undelivered after ",
                       absl::FormatDuration(timeout),
                       ". Hint: check that the brokers are reachable; they are delivered later "
                       "or fail after delivery_timeout"));
  }
  return KafkaErrorToStatus(err, "KafkaTransport::Flush");
}

void KafkaProducer::AddStats(KafkaTransportStats& stats) const {
  stats.published += published_.load(std::memory_order_relaxed);
  stats.delivered += delivered_.load(std::memory_order_relaxed);
  stats.publish_failed += failed_.load(std::memory_order_relaxed);
  stats.queue_full_waits += queue_full_waits_.load(std::memory_order_relaxed);
  stats.in_flight += in_flight_.load(std::memory_order_relaxed);
}

}  // namespace herald::kafka
