// kafka_bench: KafkaTransport against plain librdkafka on the same broker, in one
// run, with the same records, settings and message counts.
//
//   HERALD_TEST_KAFKA_BROKERS=127.0.0.1:9092 kafka_bench [--quick] [--rounds N]
//
// Prints the settings, then one JSON object per line (the median of N rounds;
// SDK and baseline alternate within each round):
//   publish    KafkaTransport::PublishAsync of a typed event (MakeEnvelope ->
//              EncodeRecord -> producev, delivery report -> callback) vs
//              rd_kafka_producev of the same records (key, value bytes and the
//              ce_* headers, encoded once up front, RD_KAFKA_MSG_F_COPY since
//              the baseline reuses its buffers), a delivery-report callback and
//              a poll thread; events/s until every delivery report arrived.
//              Same acks, idempotence, linger, batch size, delivery timeout,
//              compression and partitioner. Target ratio >= 0.9.
//   consume    a typed handler through Bus::Subscribe<T> (DecodeRecord, the
//              dispatcher, JSON decoding of T, per-partition workers,
//              at-least-once commits) vs a plain rd_kafka_consumer_poll loop
//              that is at-least-once too: enable.auto.offset.store=false,
//              rd_kafka_offsets_store after processing each record, commits
//              asynchronously by auto commit every commit_interval. Both read
//              the same topic from the earliest offset in a fresh group; both
//              have the same fetch/session/assignment settings; events/s from
//              the first record to the last. Target ratio >= 0.7.
//   idempotence KafkaTransport publish with enable_idempotence=false vs true (median).
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
#include "herald/core/bus.h"
#include "herald/core/json.h"
#include "herald/core/strings.h"
#include "herald/core/wire.h"
#include "herald/kafka/kafka_transport.h"

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

std::string UniqueName(const char* what) {
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

// The one source of settings: the bus gets these options, the baselines the
// same values as librdkafka properties (Ms() and the fields below).
herald::kafka::KafkaTransportOptions BusOptions(bool idempotence) {
  herald::kafka::KafkaTransportOptions o;
  o.brokers = Brokers();
  o.client_id = "herald-bench";
  o.enable_idempotence = idempotence;
  o.properties["log_level"] = "3";
  return o;
}

std::string Ms(absl::Duration d) { return herald::StrCat(absl::ToInt64Milliseconds(d)); }

void Set(rd_kafka_conf_t* conf, const char* name, const std::string& value) {
  char err[256];
  if (rd_kafka_conf_set(conf, name, value.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
    std::fprintf(stderr, "kafka_bench: %s=%s: %s\n", name, value.c_str(), err);
    std::exit(2);
  }
}

void SetCommon(rd_kafka_conf_t* conf, const herald::kafka::KafkaTransportOptions& o) {
  Set(conf, "bootstrap.servers", o.brokers);
  Set(conf, "client.id", o.client_id);
  Set(conf, "log_level", "3");
}

void PrintSettings(const herald::kafka::KafkaTransportOptions& o, int rounds) {
  std::printf(
      "{\"settings\":{\"acks\":\"%s\",\"enable_idempotence\":%s,\"linger_ms\":%s,\"batch_size\":%d,"
      "\"delivery_timeout_ms\":%s,\"compression\":\"%s\",\"partitioner\":\"murmur2_random\","
      "\"commit_interval_ms\":%s,\"session_timeout_ms\":%s,\"assignment\":\"range,roundrobin\","
      "\"metadata_refresh_ms\":%s,\"auto_offset_reset\":\"%s\",\"rounds\":%d,\"statistic\":\"median\"}}\n",
      o.acks.c_str(), o.enable_idempotence ? "true" : "false", Ms(o.linger).c_str(), o.batch_size_bytes,
      Ms(o.delivery_timeout).c_str(), o.compression.c_str(), Ms(o.commit_interval).c_str(),
      Ms(o.session_timeout).c_str(), Ms(o.metadata_refresh_interval).c_str(), o.auto_offset_reset.c_str(), rounds);
  std::fflush(stdout);
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// ---- publish ----

double PublishWithBus(int count, size_t size, bool idempotence, const std::string& topic) {
  auto bus = std::make_unique<herald::Bus>(*herald::kafka::KafkaTransport::Create(BusOptions(idempotence)));
  std::atomic<int> done{0}, failed{0};
  herald::EnvelopeOptions eo;
  eo.topic = topic;
  std::vector<BenchEvent> events;
  events.reserve(64);
  for (int i = 0; i < 64; ++i) events.push_back(MakeEvent(i, size));
  // Warm up: metadata, producer id.
  (void)bus->Publish(events[0], eo);
  const absl::Time t0 = absl::Now();
  for (int i = 0; i < count; ++i) {
    bus->PublishAsync(
        events[i % 64], eo, [&](absl::StatusOr<herald::DeliveryReport> r) { (r.ok() ? done : failed).fetch_add(1); });
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
  const herald::kafka::KafkaTransportOptions o = BusOptions(true);
  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  SetCommon(conf, o);
  Set(conf, "acks", o.acks);
  Set(conf, "enable.idempotence", o.enable_idempotence ? "true" : "false");
  Set(conf, "linger.ms", Ms(o.linger));
  Set(conf, "batch.size", herald::StrCat(o.batch_size_bytes));
  Set(conf, "delivery.timeout.ms", Ms(o.delivery_timeout));
  Set(conf, "compression.type", o.compression);
  Set(conf, "partitioner", "murmur2_random");
  rd_kafka_conf_set_dr_msg_cb(conf, PlainDeliveryReport);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  // The same records KafkaTransport sends (key, value bytes, ce_* headers), encoded
  // once up front.
  std::vector<herald::Record> records;
  for (int i = 0; i < 64; ++i) {
    herald::EnvelopeOptions eo;
    eo.topic = topic;
    eo.source = "herald";
    records.push_back(*herald::EncodeRecord(herald::MakeEnvelope(MakeEvent(i, size), eo)));
  }
  std::atomic<bool> stop{false};
  std::thread poller([&] {
    while (!stop.load()) rd_kafka_poll(rk, 100);
  });
  auto produce = [&](const herald::Record& r) {
    rd_kafka_headers_t* h = rd_kafka_headers_new(r.headers.size());
    for (const auto& [k, v] : r.headers) {
      rd_kafka_header_add(h, k.data(), static_cast<ssize_t>(k.size()), v.data(), static_cast<ssize_t>(v.size()));
    }
    while (true) {
      rd_kafka_resp_err_t e = rd_kafka_producev(
          rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(r.key.data(), r.key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
      if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return;
      if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_headers_destroy(h);
        return;
      }
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
  auto bus = std::make_unique<herald::Bus>(*herald::kafka::KafkaTransport::Create(BusOptions(true)));
  herald::EnvelopeOptions eo;
  eo.topic = topic;
  for (int i = 0; i < count; ++i) bus->PublishAsync(MakeEvent(i, size), eo, [](absl::StatusOr<herald::DeliveryReport>) {});
  (void)bus->Flush(absl::Seconds(120));
  (void)bus->Stop(absl::Seconds(10));
}

double ConsumeWithBus(const std::string& topic, int count) {
  herald::kafka::KafkaTransportOptions options = BusOptions(true);
  if (const char* b = std::getenv("KAFKA_BENCH_BUFFER")) options.max_buffered_records_per_partition = std::atoi(b);
  auto bus = std::make_unique<herald::Bus>(*herald::kafka::KafkaTransport::Create(options));
  std::atomic<int> n{0};
  std::atomic<int64_t> first_ns{0}, last_ns{0};
  std::atomic<size_t> bytes{0};
  herald::SubscribeOptions so;
  so.topics = {topic};
  (void)bus->Subscribe<BenchEvent>(UniqueName("bus-group"), [&](const BenchEvent& e) {
    int64_t now = absl::GetCurrentTimeNanos();
    int64_t zero = 0;
    first_ns.compare_exchange_strong(zero, now);
    bytes.fetch_add(e.data.size(), std::memory_order_relaxed);
    if (n.fetch_add(1) + 1 == count) last_ns = now;
    return absl::OkStatus();
  }, so);
  (void)bus->Start();
  const absl::Time give_up = absl::Now() + absl::Seconds(180);
  while (n.load() < count && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  (void)bus->Stop(absl::Seconds(10));
  if (n.load() < count) return 0;
  return (count - 1) / (static_cast<double>(last_ns - first_ns) / 1e9);
}

double ConsumeWithPlainConsumer(const std::string& topic, int count) {
  const herald::kafka::KafkaTransportOptions o = BusOptions(true);
  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  SetCommon(conf, o);
  Set(conf, "group.id", UniqueName("plain-group"));
  Set(conf, "auto.offset.reset", o.auto_offset_reset);
  Set(conf, "session.timeout.ms", Ms(o.session_timeout));
  Set(conf, "max.poll.interval.ms", Ms(o.max_poll_interval));
  Set(conf, "partition.assignment.strategy", "range,roundrobin");
  Set(conf, "enable.partition.eof", "false");
  Set(conf, "topic.metadata.refresh.interval.ms", Ms(o.metadata_refresh_interval));
  // At-least-once: an offset is stored only after its record was processed;
  // stored offsets are committed asynchronously every commit_interval.
  Set(conf, "enable.auto.offset.store", "false");
  Set(conf, "enable.auto.commit", "true");
  Set(conf, "auto.commit.interval.ms", Ms(o.commit_interval));
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
      bytes += m->len;  // "processing"
      rd_kafka_offset_store(m->rkt, m->partition, m->offset);  // after processing
      if (++n == count) last = absl::Now();
    }
    rd_kafka_message_destroy(m);
  }
  (void)bytes;  // the "processing" result: nothing to do with it
  rd_kafka_commit(rk, nullptr, 0);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  if (n < count) return 0;
  return (count - 1) / absl::ToDoubleSeconds(last - first);
}

void Print(const char* what, size_t size, int count, const std::vector<double>& sdk,
           const std::vector<double>& baseline, const char* sdk_name, const char* base_name) {
  const double s = Median(sdk), b = Median(baseline);
  std::string rounds;
  for (size_t i = 0; i < sdk.size(); ++i) {
    herald::StrAppend(&rounds, i == 0 ? "" : ",", "[", static_cast<int64_t>(sdk[i]), ",",
                      static_cast<int64_t>(i < baseline.size() ? baseline[i] : 0), "]");
  }
  std::printf(
      "{\"bench\":\"%s\",\"message_bytes\":%zu,\"messages\":%d,\"%s_per_s\":%.0f,\"%s_per_s\":%.0f,"
      "\"ratio\":%.3f,\"rounds\":[%s]}\n",
      what, size, count, sdk_name, s, base_name, b, b > 0 ? s / b : 0.0, rounds.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (Brokers().empty()) {
    std::fprintf(stderr, "kafka_bench: HERALD_TEST_KAFKA_BROKERS is not set (run scripts/kafka-up.sh and "
                         "eval \"$(scripts/servers-env.sh)\")\n");
    return 1;
  }
  bool quick = false;
  int rounds = 5;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
      rounds = 3;
    } else if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    }
  }
  PrintSettings(BusOptions(true), rounds);
  for (size_t size : {size_t{100}, size_t{1024}}) {
    const int publish_count = quick ? 20000 : (size == 100 ? 200000 : 100000);
    const int consume_count = quick ? 20000 : (size == 100 ? 200000 : 100000);
    std::vector<double> plain, bus, idem_off;
    for (int round = 0; round < rounds; ++round) {
      // Alternate which goes first, so neither always gets the warmer broker.
      if (round % 2 == 0) {
        plain.push_back(PublishWithPlainProducer(publish_count, size, UniqueName("plain")));
        bus.push_back(PublishWithBus(publish_count, size, true, UniqueName("bus")));
      } else {
        bus.push_back(PublishWithBus(publish_count, size, true, UniqueName("bus")));
        plain.push_back(PublishWithPlainProducer(publish_count, size, UniqueName("plain")));
      }
    }
    Print("publish", size, publish_count, bus, plain, "kafkabus", "plain_librdkafka");

    for (int round = 0; round < std::max(1, rounds / 2); ++round) {
      idem_off.push_back(PublishWithBus(publish_count, size, false, UniqueName("noidem")));
    }
    Print("idempotence", size, publish_count, idem_off, bus, "idempotence_off", "idempotence_on");

    const std::string topic = UniqueName("consume");
    Fill(topic, consume_count, size);
    std::vector<double> plain_c, bus_c;
    for (int round = 0; round < rounds; ++round) {
      if (round % 2 == 0) {
        plain_c.push_back(ConsumeWithPlainConsumer(topic, consume_count));
        bus_c.push_back(ConsumeWithBus(topic, consume_count));
      } else {
        bus_c.push_back(ConsumeWithBus(topic, consume_count));
        plain_c.push_back(ConsumeWithPlainConsumer(topic, consume_count));
      }
    }
    Print("consume", size, consume_count, bus_c, plain_c, "kafkabus_typed_handler", "plain_librdkafka_at_least_once");
  }
  return 0;
}
