// herald/kafka/topic_reader.h: reads Kafka topics without touching them.
//
// KafkaTopicReader is for tools (`herald tail`, inspecting dead letters):
// it assigns itself every partition of the topics, joins no consumer group,
// commits no offset and produces nothing, so reading leaves no trace on the
// cluster. It only hands out records; decoding them is the caller's
// (herald::DecodeRecord).
//
//   herald::kafka::KafkaTransportOptions connection;
//   connection.brokers = brokers;   // "host1:9092,host2:9092"
//   herald::kafka::TopicReaderOptions options;
//   options.topics = {"customer-events"};
//   HERALD_ASSIGN_OR_RETURN(auto reader, herald::kafka::KafkaTopicReader::Open(connection, options));
//   while (running) {
//     HERALD_ASSIGN_OR_RETURN(std::optional<herald::kafka::TopicRecord> r, reader->Next(absl::Milliseconds(200)));
//     if (r) Print(*r);
//   }
//
// Thread-safety: not thread-safe; use one reader from one thread.
#ifndef HERALD_KAFKA_TOPIC_READER_H_
#define HERALD_KAFKA_TOPIC_READER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "herald/core/wire.h"
#include "herald/kafka/kafka_transport.h"

namespace herald::kafka {

struct TopicReaderOptions {
  // Topics to read; at least one. Required.
  std::vector<std::string> topics;
  enum class Start {
    kEnd,        // only records written after Open returns
    kBeginning,  // every record the topics still hold
  };
  // Where reading starts in every partition. Default: kEnd.
  Start start = Start::kEnd;
  // How long Open waits for the cluster to answer (metadata, end offsets).
  // Default: 5 s.
  absl::Duration connect_timeout = absl::Seconds(5);
};

// One record as it is on the wire.
struct TopicRecord {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  Record record;  // key, value (empty for a null value), headers in order
};

class KafkaTopicReader {
 public:
  // Connects with `connection` (brokers, client_id, `properties` and
  // `consumer_properties`, secrets redacted in errors; its producer and
  // group options are not used), checks the topics and positions every
  // partition at `options.start`. Blocks up to `options.connect_timeout`.
  // Errors: kInvalidArgument for an invalid topic name or option;
  // kUnavailable when no broker answers in time (with librdkafka's last
  // error); kNotFound for a topic the cluster does not have; librdkafka's
  // mapped error for a topic it refuses (authorization, ...).
  static absl::StatusOr<std::unique_ptr<KafkaTopicReader>> Open(const KafkaTransportOptions& connection,
                                                                TopicReaderOptions options);
  ~KafkaTopicReader();
  KafkaTopicReader(const KafkaTopicReader&) = delete;
  KafkaTopicReader& operator=(const KafkaTopicReader&) = delete;

  // The next record, in offset order per partition; waits up to `timeout`
  // and returns nullopt when none arrived. A consumer error (a broker gone,
  // a topic deleted) is returned as its mapped status; the reader goes on,
  // so the caller may call again.
  absl::StatusOr<std::optional<TopicRecord>> Next(absl::Duration timeout);

  // Partitions assigned by Open, over all topics.
  int partition_count() const { return partition_count_; }

 private:
  struct Handle;
  explicit KafkaTopicReader(std::unique_ptr<Handle> handle, int partition_count);

  std::unique_ptr<Handle> handle_;
  int partition_count_ = 0;
};

}  // namespace herald::kafka

#endif  // HERALD_KAFKA_TOPIC_READER_H_
