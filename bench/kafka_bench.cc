// kafka_bench: KafkaBus against plain librdkafka on the same broker, in one
// run, with the same message size, acks, idempotence and batching.
//
//   HERALD_TEST_KAFKA_BROKERS=127.0.0.1:9092 kafka_bench [--quick]
//
// Prints one JSON object per line:
//   publish    KafkaBus::PublishAsync (typed envelope -> EncodeRecord ->
//              producev, delivery report -> callback) vs rd_kafka_producev of
//              the same pre-encoded key/value/headers; events/s until every
//              delivery report arrived. Target ratio >= 0.9.
//   consume    typed handler through Bus::Subscribe (DecodeRecord, dispatcher,
//              per-partition workers, at-least-once commits) vs a plain
//              rd_kafka_consumer_poll loop (auto commit); events/s from the
//              first record to the last. Target ratio >= 0.7.
//   idempotence KafkaBus publish with enable_idempotence=false vs true.
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "herald/core/json.h"
#include "herald/core/strings.h"
#include "herald/core/wire.h"
#include "herald/kafka/kafka_bus.h"

namespace {

struct BenchEvent {
  std::string id;
  std::string data;
  static constexpr std::string_view kType = "bench.event";
  static constexpr std::string_view kTopic = "bench";
  std::string_view key() const { return id; }
  static constexpr auto JsonFields() {
    return herald::json::Fields(herald::json::Field("id", &BenchEvent::id), herald::json::Field("data", &BenchEvent::data));
  }
};

std::string Brokers() {
  const char* b = std::getenv("HERALD_TEST_KAFKA_BROKERS");
  return b != nullptr ? b : "";
}

std::string UniqueTopic(const char* what) {
  static int n = 0;
  return herald::StrCat("bench-", what, "-", absl::ToUnixMillis(absl::Now()), "-", n++);
}

// An event whose record value is about `size` bytes.
BenchEvent MakeEvent(int i, size_t size) {
  BenchEvent e;
  e.id = herald::StrCat("key-", i % 64);
  const size_t overhead = 150;  // envelope JSON around the payload
  e.data.assign(size > overhead ? size - overhead : 1, 'x');
  return e;
}

herald::kafka::KafkaBusOptions BusOptions(bool idempotence) {
  herald::kafka::KafkaBusOptions o;
  o.brokers = Brokers();
  o.client_id = "herald-bench";
  o.enable_idempotence = idempotence;
  o.properties["log_level"] = "3";
  o.consumer_properties["topic.metadata.refresh.interval.ms"] = "1000";
  return o;
}

void SetCommon(rd_kafka_conf_t* conf, const herald::kafka::KafkaBusOptions& o) {
  char err[256];
  rd_kafka_conf_set(conf, "bootstrap.servers", o.brokers.c_str(), err, sizeof(err));
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
}

// ---- publish ----

double PublishWithBus(int count, size_t size, bool idempotence, const std::string& topic) {
  auto bus = *herald::kafka::KafkaBus::Create(BusOptions(idempotence));
  std::atomic<int> done{0}, failed{0};
  herald::EnvelopeOptions eo;
  eo.topic = topic;
  std::vector<BenchEvent> events;
  for (int i = 0; i < 64; ++i) events.push_back(MakeEvent(i, size));
  // Warm up: metadata, producer id.
  (void)bus->Publish(events[0], eo);
  const absl::Time t0 = absl::Now();
  for (int i = 0; i < count; ++i) {
    bus->PublishAsync(
        events[i % 64], [&](absl::StatusOr<herald::DeliveryReport> r) { (r.ok() ? done : failed).fetch_add(1); },
        eo);
  }
  (void)bus->Flush(absl::Seconds(120));
  const absl::Duration elapsed = absl::Now() - t0;
  if (failed.load() != 0) std::fprintf(stderr, "kafka_bench: %d bus publishes failed\n", failed.load());
  (void)bus->Stop(absl::Seconds(10));
  return count / absl::ToDoubleSeconds(elapsed);
}

std::atomic<int> plain_delivered{0};
void PlainDeliveryReport(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) plain_delivered.fetch_add(1, std::memory_order_relaxed);
}

double PublishWithPlainProducer(int count, size_t size, const std::string& topic) {
  herald::kafka::KafkaBusOptions o = BusOptions(true);
  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  SetCommon(conf, o);
  rd_kafka_conf_set(conf, "acks", "all", err, sizeof(err));
  rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err));
  rd_kafka_conf_set(conf, "linger.ms", herald::StrCat(absl::ToInt64Milliseconds(o.linger)).c_str(), err, sizeof(err));
  rd_kafka_conf_set(conf, "batch.size", herald::StrCat(o.batch_size_bytes).c_str(), err, sizeof(err));
  rd_kafka_conf_set(conf, "partitioner", "murmur2_random", err, sizeof(err));
  rd_kafka_conf_set_dr_msg_cb(conf, PlainDeliveryReport);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  // The same bytes KafkaBus sends, encoded once up front.
  std::vector<herald::Record> records;
  for (int i = 0; i < 64; ++i) {
    herald::EnvelopeOptions eo;
    eo.topic = topic;
    records.push_back(*herald::EncodeRecord(herald::MakeEnvelope(MakeEvent(i, size), eo)));
  }
  std::atomic<bool> stop{false};
  std::thread poller([&] {
    while (!stop.load()) rd_kafka_poll(rk, 100);
  });
  auto produce = [&](const herald::Record& r) {
    while (true) {
      rd_kafka_headers_t* h = rd_kafka_headers_new(r.headers.size());
      for (const auto& [k, v] : r.headers) rd_kafka_header_add(h, k.data(), k.size(), v.data(), v.size());
      rd_kafka_resp_err_t e = rd_kafka_producev(
          rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(r.key.data(), r.key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
      if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return;
      rd_kafka_headers_destroy(h);
      if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) return;
      absl::SleepFor(absl::Milliseconds(2));
    }
  };
  produce(records[0]);
  rd_kafka_flush(rk, 30000);
  plain_delivered = 0;
  const absl::Time t0 = absl::Now();
  for (int i = 0; i < count; ++i) produce(records[i % 64]);
  rd_kafka_flush(rk, 120000);
  const absl::Duration elapsed = absl::Now() - t0;
  stop = true;
  poller.join();
  if (plain_delivered.load() != count) std::fprintf(stderr, "kafka_bench: plain delivered %d of %d\n", plain_delivered.load(), count);
  rd_kafka_destroy(rk);
  return count / absl::ToDoubleSeconds(elapsed);
}

// ---- consume ----

void Fill(const std::string& topic, int count, size_t size) {
  auto bus = *herald::kafka::KafkaBus::Create(BusOptions(true));
  herald::EnvelopeOptions eo;
  eo.topic = topic;
  for (int i = 0; i < count; ++i) bus->PublishAsync(MakeEvent(i, size), [](absl::StatusOr<herald::DeliveryReport>) {}, eo);
  (void)bus->Flush(absl::Seconds(120));
  (void)bus->Stop(absl::Seconds(10));
}

double ConsumeWithBus(const std::string& topic, int count) {
  herald::kafka::KafkaBusOptions options = BusOptions(true);
  if (const char* b = std::getenv("KAFKA_BENCH_BUFFER")) options.max_buffered_records_per_partition = std::atoi(b);
  auto bus = *herald::kafka::KafkaBus::Create(options);
  std::atomic<int> n{0};
  std::atomic<int64_t> first_ns{0}, last_ns{0};
  herald::SubscribeOptions so;
  so.topics = {topic};
  (void)bus->Subscribe<BenchEvent>(UniqueTopic("bench-bus-group"), [&](const BenchEvent& e) {
    int64_t now = absl::GetCurrentTimeNanos();
    int64_t zero = 0;
    first_ns.compare_exchange_strong(zero, now);
    if (n.fetch_add(1) + 1 == count) last_ns = now;
    return absl::OkStatus();
  }, so);
  (void)bus->Start();
  const absl::Time give_up = absl::Now() + absl::Seconds(180);
  while (n.load() < count && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  (void)bus->Stop(absl::Seconds(10));
  if (n.load() < count) return 0;
  return (count - 1) / ((last_ns - first_ns) / 1e9);
}

double ConsumeWithPlainConsumer(const std::string& topic, int count) {
  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  SetCommon(conf, BusOptions(true));
  rd_kafka_conf_set(conf, "group.id", UniqueTopic("bench-plain-group").c_str(), err, sizeof(err));
  rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof(err));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  int n = 0;
  absl::Time first, last;
  const absl::Time give_up = absl::Now() + absl::Seconds(180);
  size_t bytes = 0;
  while (n < count && absl::Now() < give_up) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (n == 0) first = absl::Now();
      bytes += m->len;
      if (++n == count) last = absl::Now();
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  if (n < count) return 0;
  return (count - 1) / absl::ToDoubleSeconds(last - first);
}

void Print(const char* what, size_t size, double sdk, double baseline, const char* sdk_name, const char* base_name) {
  std::printf(
      "{\"bench\":\"%s\",\"message_bytes\":%zu,\"%s_per_s\":%.0f,\"%s_per_s\":%.0f,\"ratio\":%.3f}\n", what, size,
      sdk_name, sdk, base_name, baseline, baseline > 0 ? sdk / baseline : 0.0);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (Brokers().empty()) {
    std::fprintf(stderr, "kafka_bench: HERALD_TEST_KAFKA_BROKERS is not set (run scripts/kafka-up.sh and "
                         "eval \"$(scripts/servers-env.sh)\")\n");
    return 1;
  }
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  for (size_t size : {size_t{100}, size_t{1024}}) {
    const int publish_count = quick ? 20000 : (size == 100 ? 200000 : 100000);
    const int consume_count = quick ? 20000 : (size == 100 ? 200000 : 100000);
    // Baseline and SDK alternate, best of two each.
    double plain = 0, bus = 0;
    for (int round = 0; round < 2; ++round) {
      plain = std::max(plain, PublishWithPlainProducer(publish_count, size, UniqueTopic("plain")));
      bus = std::max(bus, PublishWithBus(publish_count, size, true, UniqueTopic("bus")));
    }
    Print("publish", size, bus, plain, "kafkabus", "plain_librdkafka");

    double idem_off = PublishWithBus(publish_count, size, false, UniqueTopic("noidem"));
    Print("idempotence", size, idem_off, bus, "idempotence_off", "idempotence_on");

    const std::string topic = UniqueTopic("consume");
    Fill(topic, consume_count, size);
    double plain_c = 0, bus_c = 0;
    for (int round = 0; round < 2; ++round) {
      plain_c = std::max(plain_c, ConsumeWithPlainConsumer(topic, consume_count));
      bus_c = std::max(bus_c, ConsumeWithBus(topic, consume_count));
    }
    Print("consume", size, bus_c, plain_c, "kafkabus_typed_handler", "plain_librdkafka");
  }
  return 0;
}
