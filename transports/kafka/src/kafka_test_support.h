// Helpers shared by the kafka-mock and kafka tests (private; tests only).
#ifndef HERALD_KAFKA_SRC_KAFKA_TEST_SUPPORT_H_
#define HERALD_KAFKA_SRC_KAFKA_TEST_SUPPORT_H_

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "herald/core/envelope.h"
#include "herald/core/json.h"
#include "herald/core/strings.h"
#include "herald/testing/eventually.h"
#include "rdkafka_handles.h"

namespace herald::kafka::test {

// A typed event for the tests.
struct OrderPlaced {
  std::string order_id;
  int64_t seq = 0;
  static constexpr std::string_view kType = "order.placed";
  static constexpr std::string_view kTopic = "orders";
  std::string_view key() const { return order_id; }
  static constexpr auto JsonFields() {
    return herald::json::Fields(herald::json::Field("order_id", &OrderPlaced::order_id),
                                herald::json::Field("seq", &OrderPlaced::seq));
  }
};

// A name no other test (or earlier run against the same broker) uses.
inline std::string UniqueName(std::string_view prefix) {
  static std::atomic<int> counter{0};
  return herald::StrCat(prefix, "-", getpid(), "-", absl::ToUnixMillis(absl::Now()) % 100000000, "-", counter++);
}

// Polls `done` until it is true or `timeout` passes (herald::testing's one
// Eventually, with the longer wait a broker needs).
inline ::testing::AssertionResult WaitUntil(const std::function<bool()>& done,
                                            absl::Duration timeout = absl::Seconds(60)) {
  return herald::testing::Eventually(done, timeout);
}

// librdkafka's in-process mock cluster (kafka-mock tests).
class MockCluster {
 public:
  explicit MockCluster(int brokers = 1) {
    char errstr[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
    handle_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)));
    cluster_ = rd_kafka_mock_cluster_new(handle_.get(), brokers);
  }
  ~MockCluster() {
    rd_kafka_mock_cluster_destroy(cluster_);
    handle_.reset();
  }
  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;

  std::string bootstraps() const { return rd_kafka_mock_cluster_bootstraps(cluster_); }
  rd_kafka_mock_cluster_t* get() const { return cluster_; }
  void CreateTopic(const std::string& topic, int partitions) {
    rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1);
  }

 private:
  HandlePtr handle_;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
};

// One record as read by a plain librdkafka consumer.
struct PlainRecord {
  int32_t partition = -1;
  int64_t offset = -1;
  bool has_key = false;
  std::string key;
  std::string value;
  // A null value (a tombstone), as opposed to an empty one.
  bool value_is_null = false;
  Headers headers;
};

// Reads `count` records of `topic` (partitions 0..partitions-1, from the
// beginning) with a plain librdkafka consumer, or what came within `timeout`.
inline std::vector<PlainRecord> ReadWithPlainConsumer(const std::string& brokers, const std::string& topic,
                                                      int partitions, size_t count,
                                                      absl::Duration timeout = absl::Seconds(30)) {
  char errstr[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), errstr, sizeof(errstr));
  rd_kafka_conf_set(conf, "group.id", UniqueName("plain-reader").c_str(), errstr, sizeof(errstr));
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
  HandlePtr rk(rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr)));
  rd_kafka_poll_set_consumer(rk.get());
  PartitionListPtr list(rd_kafka_topic_partition_list_new(partitions));
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(rk.get(), list.get());
  std::vector<PlainRecord> out;
  const absl::Time give_up = absl::Now() + timeout;
  while (out.size() < count && absl::Now() < give_up) {
    MessagePtr m(rd_kafka_consumer_poll(rk.get(), 100));
    if (m == nullptr || m->err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    PlainRecord r;
    r.partition = m->partition;
    r.offset = m->offset;
    r.has_key = m->key != nullptr;
    if (m->key != nullptr) r.key.assign(static_cast<const char*>(m->key), m->key_len);
    r.value_is_null = m->payload == nullptr;
    if (m->payload != nullptr) r.value.assign(static_cast<const char*>(m->payload), m->len);
    rd_kafka_headers_t* headers = nullptr;
    if (rd_kafka_message_headers(m.get(), &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* name;
      const void* value;
      size_t size;
      for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
        r.headers.emplace_back(name, value != nullptr ? std::string(static_cast<const char*>(value), size) : "");
      }
    }
    out.push_back(std::move(r));
  }
  rd_kafka_consumer_close(rk.get());
  return out;
}

// Produces `value` (no headers) with a plain librdkafka producer, as a
// service in another language would. Returns false on failure.
inline bool ProduceWithPlainProducer(const std::string& brokers, const std::string& topic, std::string_view key,
                                     std::string_view value) {
  char errstr[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), errstr, sizeof(errstr));
  HandlePtr rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)));
  rd_kafka_resp_err_t err =
      rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                        RD_KAFKA_V_KEY(key.empty() ? nullptr : const_cast<char*>(key.data()), key.size()),
                        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return false;
  return rd_kafka_flush(rk.get(), 30000) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

// Produces one record as any client could write it: `value` std::nullopt is
// a null value (a tombstone), headers are written as given (empty values
// included). Returns false on failure.
inline bool ProduceRawRecord(const std::string& brokers, const std::string& topic, std::string_view key,
                             const std::optional<std::string>& value, const Headers& headers) {
  char errstr[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), errstr, sizeof(errstr));
  rd_kafka_conf_set(conf, "message.max.bytes", "2000000", errstr, sizeof(errstr));
  HandlePtr rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)));
  rd_kafka_headers_t* hdrs = rd_kafka_headers_new(headers.size());
  for (const auto& [name, v] : headers)
    rd_kafka_header_add(hdrs, name.data(), static_cast<ssize_t>(name.size()), v.data(), static_cast<ssize_t>(v.size()));
  rd_kafka_resp_err_t err =
      rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                        RD_KAFKA_V_KEY(key.empty() ? nullptr : const_cast<char*>(key.data()), key.size()),
                        RD_KAFKA_V_VALUE(value.has_value() ? const_cast<char*>(value->data()) : nullptr,
                                         value.has_value() ? value->size() : 0),
                        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(hdrs);
    return false;
  }
  return rd_kafka_flush(rk.get(), 30000) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

// Creates `topic` with `partitions` partitions (replication factor: the
// broker's default) through the Admin API. Returns false on failure.
inline bool CreateTopicOnBroker(const std::string& brokers, const std::string& topic, int partitions) {
  char errstr[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), errstr, sizeof(errstr));
  HandlePtr rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)));
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, -1, errstr, sizeof(errstr));
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk.get());
  rd_kafka_CreateTopics(rk.get(), &nt, 1, nullptr, queue);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, 30000);
  bool ok = false;
  if (ev != nullptr) {
    const rd_kafka_CreateTopics_result_t* res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t** results = res != nullptr ? rd_kafka_CreateTopics_result_topics(res, &n) : nullptr;
    ok = rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR_NO_ERROR && n == 1 &&
         rd_kafka_topic_result_error(results[0]) == RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_event_destroy(ev);
  }
  rd_kafka_queue_destroy(queue);
  rd_kafka_NewTopic_destroy(nt);
  return ok;
}

}  // namespace herald::kafka::test

#endif  // HERALD_KAFKA_SRC_KAFKA_TEST_SUPPORT_H_
