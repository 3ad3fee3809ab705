#include "herald/kafka/kafka_bus.h"

#include <utility>

#include "group_consumer.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "kafka_config.h"
#include "kafka_producer.h"

namespace herald::kafka {

absl::StatusOr<std::unique_ptr<KafkaBus>> KafkaBus::Create(KafkaBusOptions options) {
  // Validate the consumer options now, so a bad one fails here and not at
  // Start (the group name is a placeholder).
  absl::StatusOr<ConfPtr> consumer_conf = BuildConsumerConf(options, "herald-validate");
  if (!consumer_conf.ok()) return consumer_conf.status();
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<KafkaProducer> producer, KafkaProducer::Create(options));
  return std::unique_ptr<KafkaBus>(new KafkaBus(std::move(options), std::move(producer)));
}

KafkaBus::KafkaBus(KafkaBusOptions options, std::unique_ptr<KafkaProducer> producer)
    : Bus(options.defaults), options_(std::move(options)), producer_(std::move(producer)) {}

KafkaBus::~KafkaBus() {
  Stop(absl::ZeroDuration()).IgnoreError();
  std::vector<std::unique_ptr<GroupConsumer>> consumers;
  {
    MutexLock lock(mu_);
    consumers.swap(consumers_);
  }
  consumers.clear();  // joins worker threads (they may still publish dead letters)
  producer_.reset();
}

void KafkaBus::PublishAsync(Envelope envelope, PublishCallback done) {
  absl::StatusOr<Record> record = EncodeRecord(envelope, options_.wire_mode);
  if (!record.ok()) {
    done(record.status());
    return;
  }
  producer_->Produce(envelope.topic, *std::move(record), std::move(done));
}

absl::Status KafkaBus::AddSubscription(Subscription subscription) {
  if (subscription.topics.empty()) return absl::InvalidArgumentError("AddSubscription: no topics");
  for (const std::string& topic : subscription.topics) {
    if (topic.empty()) return absl::InvalidArgumentError("AddSubscription: empty topic name");
  }
  if (subscription.group.empty()) return absl::InvalidArgumentError("AddSubscription: consumer group is empty");
  if (!subscription.handler) return absl::InvalidArgumentError("AddSubscription: handler is empty");
  MutexLock lock(mu_);
  if (stopped_) return absl::FailedPreconditionError("AddSubscription: the Kafka bus is stopped");
  if (!started_) {
    pending_.push_back(std::move(subscription));
    return absl::OkStatus();
  }
  return StartConsumer(subscription);
}

absl::Status KafkaBus::StartConsumer(const Subscription& subscription) {
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<GroupConsumer> consumer,
                          GroupConsumer::Create(options_, subscription, *producer_));
  HERALD_RETURN_IF_ERROR(consumer->Start());
  consumers_.push_back(std::move(consumer));
  return absl::OkStatus();
}

absl::Status KafkaBus::Start() {
  MutexLock lock(mu_);
  if (stopped_) return absl::FailedPreconditionError("Start: the Kafka bus is stopped; create a new one");
  if (started_) return absl::OkStatus();
  for (const Subscription& subscription : pending_) HERALD_RETURN_IF_ERROR(StartConsumer(subscription));
  pending_.clear();
  started_ = true;
  return absl::OkStatus();
}

absl::Status KafkaBus::Stop(absl::Duration drain_deadline) {
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
  if (result.ok() && !flushed.ok()) result = flushed;
  return result;
}

absl::Status KafkaBus::Flush(absl::Duration timeout) { return producer_->Flush(timeout); }

KafkaBusStats KafkaBus::KafkaStats() const {
  KafkaBusStats stats;
  producer_->AddStats(stats);
  MutexLock lock(mu_);
  for (const auto& c : consumers_) c->AddStats(stats);
  return stats;
}

}  // namespace herald::kafka
