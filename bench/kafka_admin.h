// kafka_admin.h: what the Kafka benchmarks need besides herald: the broker
// address from the environment and topics made up front (so every run
// starts on empty partitions of a known count).
#ifndef HERALD_BENCH_KAFKA_ADMIN_H_
#define HERALD_BENCH_KAFKA_ADMIN_H_

#include <librdkafka/rdkafka.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace herald_bench {

// HERALD_TEST_KAFKA_BROKERS, or "" when unset.
inline std::string KafkaBrokers() {
  const char* b = std::getenv("HERALD_TEST_KAFKA_BROKERS");
  return b != nullptr ? b : "";
}

// Creates `topic` with `partitions` partitions (replication 1) and the topic
// `configs` (e.g. retention.bytes), and waits for it. False with a message
// on stderr when the broker refuses.
inline bool CreateKafkaTopic(const std::string& topic, int partitions,
                             const std::map<std::string, std::string>& configs = {}) {
  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", KafkaBrokers().c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err)) != RD_KAFKA_CONF_OK) {
    std::fprintf(stderr, "bench: %s\n", err);
    rd_kafka_conf_destroy(conf);
    return false;
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (rk == nullptr) {
    std::fprintf(stderr, "bench: admin client: %s\n", err);
    return false;
  }
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, err, sizeof(err));
  for (const auto& [name, value] : configs) rd_kafka_NewTopic_set_config(nt, name.c_str(), value.c_str());
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &nt, 1, nullptr, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
  const rd_kafka_CreateTopics_result_t* res = ev != nullptr ? rd_kafka_event_CreateTopics_result(ev) : nullptr;
  bool ok = false;
  if (res != nullptr) {
    size_t n = 0;
    const rd_kafka_topic_result_t** topics = rd_kafka_CreateTopics_result_topics(res, &n);
    ok = n == 1 && rd_kafka_topic_result_error(topics[0]) == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (!ok && n == 1) {
      std::fprintf(stderr, "bench: create %s: %s\n", topic.c_str(), rd_kafka_topic_result_error_string(topics[0]));
    }
  }
  if (ev != nullptr) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_destroy(rk);
  // Let the new topic's leader be known before the first produce.
  if (ok) absl::SleepFor(absl::Milliseconds(200));
  return ok;
}

}  // namespace herald_bench

#endif  // HERALD_BENCH_KAFKA_ADMIN_H_
