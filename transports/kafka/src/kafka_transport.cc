#include "herald/kafka/kafka_transport.h"

#include <utility>

#include "error_log.h"
#include "group_consumer.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "kafka_config.h"
#include "kafka_producer.h"

namespace herald::kafka {

absl::StatusOr<std::unique_ptr<KafkaTransport>> KafkaTransport::Create(KafkaTransportOptions options) {
  // Validate the consumer options now, so a bad one fails here and not at
  // Start (the group name is a placeholder).
  absl::StatusOr<ConfPtr> consumer_conf = BuildConsumerConf(options, "herald-validate");
  if (!consumer_conf.ok()) return consumer_conf.status();
  auto errors = std::make_unique<ErrorLog>(options);
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<KafkaProducer> producer, KafkaProducer::Create(options, *errors));
  return std::unique_ptr<KafkaTransport>(
      new KafkaTransport(std::move(options), std::move(errors), std::move(producer)));
}

KafkaTransport::KafkaTransport(KafkaTransportOptions options, std::unique_ptr<ErrorLog> errors,
                               std::unique_ptr<KafkaProducer> producer)
    : options_(std::move(options)), errors_(std::move(errors)), producer_(std::move(producer)) {}

KafkaTransport::~KafkaTransport() {
  metrics_registration_.reset();
  Stop(absl::ZeroDuration()).IgnoreError();
  std::vector<std::unique_ptr<GroupConsumer>> consumers;
  {
    MutexLock lock(mu_);
    consumers.swap(consumers_);
  }
  consumers.clear();  // joins worker threads (they may still publish dead letters)
  producer_.reset();
}

void KafkaTransport::Publish(Envelope envelope, PublishCallback done) {
  if (!done) done = [](absl::StatusOr<DeliveryReport>) {};
  WireMode mode = options_.wire_mode;
  if (!options_.wire_mode_by_topic.empty()) {
    auto by_topic = options_.wire_mode_by_topic.find(envelope.topic);
    if (by_topic != options_.wire_mode_by_topic.end()) mode = by_topic->second;
  }
  producer_->Produce(envelope, mode, std::move(done));
}

void KafkaTransport::PublishRecord(std::string topic, Record record, PublishCallback done) {
  if (!done) done = [](absl::StatusOr<DeliveryReport>) {};
  producer_->Produce(topic, std::move(record), std::move(done));
}

absl::Status KafkaTransport::Subscribe(TransportSubscription subscription) {
  HERALD_RETURN_IF_ERROR(ValidateSubscription(subscription));
  MutexLock lock(mu_);
  if (stopped_) return absl::FailedPreconditionError("KafkaTransport::Subscribe: the transport is stopped");
  if (!started_) {
    pending_.push_back(std::move(subscription));
    return absl::OkStatus();
  }
  return StartConsumer(subscription);
}

absl::Status KafkaTransport::StartConsumer(const TransportSubscription& subscription) {
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<GroupConsumer> consumer,
                          GroupConsumer::Create(options_, subscription, *errors_));
  HERALD_RETURN_IF_ERROR(consumer->Start());
  consumers_.push_back(std::move(consumer));
  return absl::OkStatus();
}

absl::Status KafkaTransport::Start() {
  MutexLock lock(mu_);
  if (stopped_) return absl::FailedPreconditionError("KafkaTransport::Start: the transport is stopped; create a new one");
  if (started_) return absl::OkStatus();
  for (const TransportSubscription& subscription : pending_) HERALD_RETURN_IF_ERROR(StartConsumer(subscription));
  pending_.clear();
  started_ = true;
  return absl::OkStatus();
}

absl::Status KafkaTransport::Stop(absl::Duration drain_deadline) {
  const absl::Time deadline = absl::Now() + drain_deadline;
  std::vector<GroupConsumer*> consumers;
  {
    MutexLock lock(mu_);
    if (stopped_) return absl::OkStatus();
    stopped_ = true;
    for (const auto& c : consumers_) consumers.push_back(c.get());
  }
  absl::Status result;
  // Consumers first: their handlers may still publish (dead letters, events).
  for (GroupConsumer* c : consumers) {
    absl::Status s = c->Stop(deadline);
    if (result.ok() && !s.ok()) result = s;
  }
  producer_->Close();
  absl::Status flushed = producer_->Flush(std::max(deadline - absl::Now(), absl::ZeroDuration()));
  // The deadline holds for publishes too: what is still undelivered is given
  // up now (callbacks report kAborted), so no one waits on it past Stop.
  if (!flushed.ok()) producer_->Purge();
  if (result.ok() && !flushed.ok()) result = flushed;
  return result;
}

absl::Status KafkaTransport::Flush(absl::Duration timeout) { return producer_->Flush(timeout); }

absl::Duration KafkaTransport::DeliveryTimeout() const { return producer_->delivery_timeout(); }

void KafkaTransport::AbandonPublishes() { producer_->Purge(); }

void KafkaTransport::ReportMetricsTo(Metrics& metrics) {
  metrics_registration_ = metrics.AddCollector([this](std::vector<GaugeSample>& samples) {
    const KafkaTransportStats stats = Stats();
    const MetricLabels client = {{"client_id", options_.client_id}};
    samples.push_back({"herald_kafka_producer_queue_records",
                       "Publishes handed to librdkafka whose outcome is not known yet.", client,
                       static_cast<double>(stats.in_flight)});
    samples.push_back({"herald_kafka_rebalances_total", "Partition assignments and revocations of the consumers.",
                       client, static_cast<double>(stats.rebalances), /*counter=*/true});
    samples.push_back({"herald_kafka_commit_failures_total", "Offset commits that failed (they are retried).", client,
                       static_cast<double>(stats.commit_failures), /*counter=*/true});
    samples.push_back({"herald_kafka_consumers", "Consumer groups subscribed and started.", client,
                       static_cast<double>(stats.consumers)});
    samples.push_back({"herald_kafka_consumers_joined", "Of those, the ones that joined their group.", client,
                       static_cast<double>(stats.consumers_joined)});
    for (const KafkaTransportStats::Partition& p : stats.partitions) {
      if (p.lag < 0) continue;
      samples.push_back({"herald_kafka_consumer_lag_records",
                         "Records of an assigned partition not yet handled: high watermark minus the next offset to "
                         "commit.",
                         {{"group", p.group}, {"topic", p.topic}, {"partition", herald::StrCat(p.partition)}},
                         static_cast<double>(p.lag)});
    }
  });
}

KafkaTransportStats KafkaTransport::Stats() const {
  KafkaTransportStats stats;
  producer_->AddStats(stats);
  stats.last_error = errors_->last();
  MutexLock lock(mu_);
  for (const auto& c : consumers_) c->AddStats(stats);
  return stats;
}

}  // namespace herald::kafka
