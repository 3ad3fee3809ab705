#include "kafka_config.h"

#include <cstdint>
#include <cstdio>
#include <map>
#include <utility>
#include <vector>

#include "herald/core/status.h"
#include "herald/core/strings.h"

namespace herald::kafka {
namespace {

std::string Millis(absl::Duration d) { return herald::StrCat(absl::ToInt64Milliseconds(d)); }

// linger.ms is a float property: a sub-millisecond linger is kept (to the
// microsecond), where Millis would round 500us down to no linger at all.
std::string FractionalMillis(absl::Duration d) {
  const int64_t us = absl::ToInt64Microseconds(d);
  if (us % 1000 == 0) return herald::StrCat(us / 1000);
  char text[32];
  std::snprintf(text, sizeof(text), "%.3f", static_cast<double>(us) / 1000.0);
  std::string out = text;
  out.erase(out.find_last_not_of('0') + 1);  // "0.500" -> "0.5"
  return out;
}

class ConfBuilder {
 public:
  explicit ConfBuilder(const KafkaTransportOptions& options) : options_(options), conf_(rd_kafka_conf_new()) {}

  // Sets one property; the first error is kept.
  void Set(std::string_view name, std::string_view value, std::string_view origin) {
    if (!status_.ok()) return;
    char errstr[512] = {0};
    std::string n(name), v(value);
    if (rd_kafka_conf_set(conf_.get(), n.c_str(), v.c_str(), errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
      std::string reason = RedactSecrets(options_, errstr);
      if (!value.empty()) reason = RedactSecretValues({{std::string(name), std::string(value)}}, std::move(reason));
      status_ = absl::InvalidArgumentError(herald::StrCat("KafkaTransportOptions: cannot set librdkafka property \"",
                                                          name, "\" (from ", origin, "): ", reason));
    }
  }
  void SetAll(const std::map<std::string, std::string>& properties, std::string_view origin) {
    for (const auto& [name, value] : properties) Set(name, value, origin);
  }

  absl::StatusOr<ConfPtr> Finish() {
    if (!status_.ok()) return status_;
    return std::move(conf_);
  }

 private:
  const KafkaTransportOptions& options_;
  ConfPtr conf_;
  absl::Status status_;
};

absl::Status ValidateCommon(const KafkaTransportOptions& options) {
  if (options.brokers.empty() && options.properties.count("bootstrap.servers") == 0) {
    return absl::InvalidArgumentError(
        "KafkaTransportOptions.brokers is empty: set it to \"host:port[,host:port...]\" (bootstrap.servers)");
  }
  return absl::OkStatus();
}

void SetCommon(ConfBuilder& b, const KafkaTransportOptions& options) {
  if (!options.brokers.empty()) b.Set("bootstrap.servers", options.brokers, "KafkaTransportOptions.brokers");
  b.Set("client.id", options.client_id, "KafkaTransportOptions.client_id");
}

}  // namespace

std::string RedactSecrets(const KafkaTransportOptions& options, std::string text) {
  for (const auto* map : {&options.properties, &options.producer_properties, &options.consumer_properties}) {
    text = RedactSecretValues(*map, std::move(text));
  }
  return text;
}

absl::StatusOr<ConfPtr> BuildProducerConf(const KafkaTransportOptions& options) {
  HERALD_RETURN_IF_ERROR(ValidateCommon(options));
  if (options.queue_full_wait < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("KafkaTransportOptions.queue_full_wait must not be negative");
  }
  ConfBuilder b(options);
  SetCommon(b, options);
  b.Set("acks", options.acks, "KafkaTransportOptions.acks");
  b.Set("enable.idempotence", options.enable_idempotence ? "true" : "false",
        "KafkaTransportOptions.enable_idempotence");
  b.Set("linger.ms", FractionalMillis(options.linger), "KafkaTransportOptions.linger");
  b.Set("batch.size", herald::StrCat(options.batch_size_bytes), "KafkaTransportOptions.batch_size_bytes");
  b.Set("delivery.timeout.ms", Millis(options.delivery_timeout), "KafkaTransportOptions.delivery_timeout");
  b.Set("compression.type", options.compression, "KafkaTransportOptions.compression");
  b.Set("message.max.bytes", herald::StrCat(options.max_message_bytes), "KafkaTransportOptions.max_message_bytes");
  // Keys land on the partition the Java client and kafka-go's
  // Murmur2Balancer choose; records without a key are spread at random.
  b.Set("partitioner", "murmur2_random", "herald (fixed)");
  b.SetAll(options.properties, "KafkaTransportOptions.properties");
  b.SetAll(options.producer_properties, "KafkaTransportOptions.producer_properties");
  return b.Finish();
}

absl::StatusOr<ConfPtr> BuildConsumerConf(const KafkaTransportOptions& options, std::string_view group) {
  HERALD_RETURN_IF_ERROR(ValidateCommon(options));
  if (group.empty()) return absl::InvalidArgumentError("consumer group is empty");
  if (options.commit_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("KafkaTransportOptions.commit_interval must be positive");
  }
  if (options.metadata_refresh_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("KafkaTransportOptions.metadata_refresh_interval must be positive");
  }
  if (options.max_buffered_records_per_partition < 1) {
    return absl::InvalidArgumentError("KafkaTransportOptions.max_buffered_records_per_partition must be at least 1");
  }
  ConfBuilder b(options);
  SetCommon(b, options);
  b.Set("group.id", group, "Subscription.group");
  // herald commits itself, only offsets whose handlers finished.
  b.Set("enable.auto.commit", "false", "herald (at-least-once)");
  b.Set("enable.auto.offset.store", "false", "herald (at-least-once)");
  b.Set("auto.offset.reset", options.auto_offset_reset, "KafkaTransportOptions.auto_offset_reset");
  b.Set("session.timeout.ms", Millis(options.session_timeout), "KafkaTransportOptions.session_timeout");
  b.Set("max.poll.interval.ms", Millis(options.max_poll_interval), "KafkaTransportOptions.max_poll_interval");
  b.Set("partition.assignment.strategy", "range,roundrobin", "herald (eager rebalancing)");
  b.Set("enable.partition.eof", "false", "herald");
  // Each partition's worker consumes the partition's own queue; librdkafka
  // stops fetching a partition whose queue holds this many records.
  b.Set("queued.min.messages", herald::StrCat(options.max_buffered_records_per_partition),
        "KafkaTransportOptions.max_buffered_records_per_partition");
  b.Set("topic.metadata.refresh.interval.ms", Millis(options.metadata_refresh_interval),
        "KafkaTransportOptions.metadata_refresh_interval");
  b.SetAll(options.properties, "KafkaTransportOptions.properties");
  b.SetAll(options.consumer_properties, "KafkaTransportOptions.consumer_properties");
  return b.Finish();
}

absl::StatusOr<ConfPtr> BuildReaderConf(const KafkaTransportOptions& options, std::string_view group) {
  HERALD_RETURN_IF_ERROR(ValidateCommon(options));
  ConfBuilder b(options);
  SetCommon(b, options);
  b.Set("group.id", group, "herald (reader: assign() only, never joined)");
  b.Set("enable.partition.eof", "false", "herald");
  b.Set("topic.metadata.refresh.interval.ms", Millis(options.metadata_refresh_interval),
        "KafkaTransportOptions.metadata_refresh_interval");
  b.SetAll(options.properties, "KafkaTransportOptions.properties");
  b.SetAll(options.consumer_properties, "KafkaTransportOptions.consumer_properties");
  // A reader never writes to the cluster: no commits, whatever the maps say.
  b.Set("enable.auto.commit", "false", "herald (read-only)");
  b.Set("enable.auto.offset.store", "false", "herald (read-only)");
  return b.Finish();
}

std::string ConfValue(const rd_kafka_conf_t* conf, const char* name) {
  size_t size = 0;
  if (rd_kafka_conf_get(conf, name, nullptr, &size) != RD_KAFKA_CONF_OK) return "";
  std::vector<char> buffer(size + 1, '\0');
  if (rd_kafka_conf_get(conf, name, buffer.data(), &size) != RD_KAFKA_CONF_OK) return "";
  return std::string(buffer.data());
}

}  // namespace herald::kafka
