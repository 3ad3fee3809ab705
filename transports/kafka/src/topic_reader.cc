#include "herald/kafka/topic_reader.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/time/clock.h"
#include "error_log.h"
#include "herald/core/config.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "kafka_config.h"
#include "kafka_status.h"
#include "rdkafka_handles.h"

namespace herald::kafka {

struct KafkaTopicReader::Handle {
  explicit Handle(const KafkaTransportOptions& options) : errors(options) {}
  ErrorLog errors;  // librdkafka's error callback writes here
  HandlePtr rk;
};

namespace {

int Millis(absl::Duration d) {
  return static_cast<int>(std::clamp<int64_t>(absl::ToInt64Milliseconds(d), 0, 24 * 3600 * 1000));
}

void OnError(rd_kafka_t*, int err, const char* reason, void* opaque) {
  static_cast<ErrorLog*>(opaque)->Record(
      herald::StrCat(rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)), ": ", reason != nullptr ? reason : ""),
      LogLevel::kInfo);
}

// The bootstrap servers the reader uses, for errors: `properties` win over
// `brokers`, as in the configuration.
std::string BootstrapServers(const KafkaTransportOptions& connection) {
  auto it = connection.properties.find("bootstrap.servers");
  return it != connection.properties.end() ? it->second : connection.brokers;
}

// Metadata of the whole cluster (it creates no topic, unlike asking for one).
absl::StatusOr<const rd_kafka_metadata_t*> FetchMetadata(rd_kafka_t* rk, absl::Time deadline,
                                                         const KafkaTransportOptions& connection,
                                                         const ErrorLog& errors, absl::Duration timeout) {
  const rd_kafka_metadata_t* metadata = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &metadata, Millis(deadline - absl::Now()));
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return metadata;
  rd_kafka_poll(rk, 0);  // serves the error callback
  std::string last = errors.last();
  return absl::UnavailableError(herald::StrCat("no Kafka broker at ", BootstrapServers(connection), " answered within ",
                                               absl::FormatDuration(timeout), " (", rd_kafka_err2name(err),
                                               last.empty() ? "" : herald::StrCat("; last error: ", last),
                                               "). Hint: check the address and that the brokers are up"));
}

void ReadHeaders(const rd_kafka_message_t& message, Headers& out) {
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(&message, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR || headers == nullptr) return;
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
    out.emplace_back(name, value != nullptr ? std::string(static_cast<const char*>(value), size) : std::string());
  }
}

}  // namespace

KafkaTopicReader::KafkaTopicReader(std::unique_ptr<Handle> handle, int partition_count)
    : handle_(std::move(handle)), partition_count_(partition_count) {}

KafkaTopicReader::~KafkaTopicReader() {
  if (handle_ != nullptr && handle_->rk != nullptr) {
    // No group to leave: this only stops fetching.
    rd_kafka_consumer_close(handle_->rk.get());
  }
}

absl::StatusOr<std::unique_ptr<KafkaTopicReader>> KafkaTopicReader::Open(const KafkaTransportOptions& connection,
                                                                         TopicReaderOptions options) {
  if (options.topics.empty()) return absl::InvalidArgumentError("TopicReaderOptions.topics is empty");
  for (const std::string& topic : options.topics) HERALD_RETURN_IF_ERROR(ValidateTopicName(topic));
  if (options.connect_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("TopicReaderOptions.connect_timeout must be positive");
  }
  const absl::Time deadline = absl::Now() + options.connect_timeout;
  // librdkafka's assign() wants a group id; a reader assigns its partitions
  // itself and never joins or commits, so the group never exists on the
  // brokers. Unique, so that it never meets a real group either.
  const std::string group = herald::StrCat("herald-reader-", getpid(), "-", absl::ToUnixNanos(absl::Now()), "-",
                                           absl::Uniform<uint32_t>(absl::BitGen()));
  HERALD_ASSIGN_OR_RETURN(ConfPtr conf, BuildReaderConf(connection, group));
  auto handle = std::make_unique<Handle>(connection);
  rd_kafka_conf_set_opaque(conf.get(), &handle->errors);
  rd_kafka_conf_set_error_cb(conf.get(), &OnError);
  rd_kafka_conf_set_log_cb(conf.get(), [](const rd_kafka_t* rk, int level, const char* facility, const char* text) {
    static_cast<const ErrorLog*>(rd_kafka_opaque(rk))->Librdkafka(rk, level, facility, text);
  });
  char errstr[512] = {0};
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), errstr, sizeof(errstr));
  if (rk == nullptr) {
    return absl::InvalidArgumentError(
        herald::StrCat("KafkaTopicReader: cannot create the consumer: ", RedactSecrets(connection, errstr)));
  }
  static_cast<void>(conf.release());  // rd_kafka_new owns it now
  handle->rk.reset(rk);
  rd_kafka_poll_set_consumer(rk);

  HERALD_ASSIGN_OR_RETURN(const rd_kafka_metadata_t* metadata,
                          FetchMetadata(rk, deadline, connection, handle->errors, options.connect_timeout));
  PartitionListPtr assignment(rd_kafka_topic_partition_list_new(0));
  absl::Status status;
  for (const std::string& topic : options.topics) {
    const rd_kafka_metadata_topic_t* found = nullptr;
    for (int i = 0; i < metadata->topic_cnt; ++i) {
      if (topic == metadata->topics[i].topic) found = &metadata->topics[i];
    }
    if (found == nullptr || found->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || found->partition_cnt == 0) {
      status =
          absl::NotFoundError(herald::StrCat("topic \"", topic, "\" does not exist on ", BootstrapServers(connection)));
      break;
    }
    if (found->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      status = KafkaErrorToStatus(found->err, herald::StrCat("read topic \"", topic, "\""));
      break;
    }
    for (int p = 0; p < found->partition_cnt; ++p) {
      rd_kafka_topic_partition_list_add(assignment.get(), topic.c_str(), found->partitions[p].id)->offset =
          RD_KAFKA_OFFSET_BEGINNING;
    }
  }
  rd_kafka_metadata_destroy(metadata);
  HERALD_RETURN_IF_ERROR(status);

  if (options.start == TopicReaderOptions::Start::kEnd) {
    // The end as of now, looked up here rather than left to the first fetch,
    // so that every record written after Open returns is read.
    for (int i = 0; i < assignment->cnt; ++i) {
      rd_kafka_topic_partition_t& p = assignment->elems[i];
      int64_t low = 0, high = 0;
      rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, p.topic, p.partition, &low, &high,
                                                                 std::max(1, Millis(deadline - absl::Now())));
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return KafkaErrorToStatus(err, herald::StrCat("find the end of ", p.topic, "[", p.partition, "]"));
      }
      p.offset = high;
    }
  }
  const int partitions = assignment->cnt;
  if (rd_kafka_resp_err_t err = rd_kafka_assign(rk, assignment.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaErrorToStatus(err, "assign the partitions");
  }
  return std::unique_ptr<KafkaTopicReader>(new KafkaTopicReader(std::move(handle), partitions));
}

absl::StatusOr<std::optional<TopicRecord>> KafkaTopicReader::Next(absl::Duration timeout) {
  MessagePtr message(rd_kafka_consumer_poll(handle_->rk.get(), Millis(timeout)));
  if (message == nullptr) return std::nullopt;
  const char* topic = message->rkt != nullptr ? rd_kafka_topic_name(message->rkt) : "";
  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaErrorToStatus(message->err,
                              handle_->errors.Redact(herald::StrCat("read ", topic, "[", message->partition,
                                                                    "]: ", rd_kafka_message_errstr(message.get()))));
  }
  TopicRecord out;
  out.topic = topic;
  out.partition = message->partition;
  out.offset = message->offset;
  if (message->key != nullptr) out.record.key.assign(static_cast<const char*>(message->key), message->key_len);
  if (message->payload != nullptr) out.record.value.assign(static_cast<const char*>(message->payload), message->len);
  ReadHeaders(*message, out.record.headers);
  return out;
}

}  // namespace herald::kafka
