// kafka_bench: herald's KafkaTransport against librdkafka baselines that do
// the same work, on the same broker, in one run, with the same records,
// settings, key distribution (64 keys) and message counts.
//
//   HERALD_TEST_KAFKA_BROKERS=127.0.0.1:9092 kafka_bench [--quick] [--rounds N]
//       [--sizes 100,1024,10240] [--consume_partitions 1,6] [--consume_processes 1,2,4,6]
//       [--publish_partitions 4] [--publish_threads 64]
//       [--only_publish | --only_async | --only_consume]
// (Abseil flags: --name value or --name=value; --help lists them.)
//
// Prints the settings, then one JSON object per line; every figure is
// {"min","median","max","rounds"} over N rounds, variants take turns going
// first, and each ratio is taken round by round before its spread
// (bench_stats.h).
//   kafka_publish  per record size (the record value is about that size):
//     raw_prebuilt        rd_kafka_producev of herald's own records (key,
//                         value and ce_* headers, encoded once up front,
//                         RD_KAFKA_MSG_F_COPY): librdkafka's limit.
//     raw_hand_work       rd_kafka_producev doing herald's per-event work by
//                         hand: a UUIDv7, the time in RFC 3339, the same JSON
//                         envelope written with RapidJSON's Writer, the same
//                         seven headers. Checked byte for byte against
//                         herald::EncodeRecord before the run.
//     herald_async        Bus::PublishAsync of a typed event.
//     herald_blocking     Bus::Publish (waits for the broker's ack) from
//                         --publish_threads threads.
//   All producers: the same acks (all), idempotence, linger, batch size,
//   delivery timeout, compression and partitioner; topics made up front with
//   --publish_partitions partitions. events/s until every delivery report.
//   Targets: herald_async >= 0.9x raw_hand_work and >= 0.5x raw_prebuilt.
//   kafka_consume  per record size and partition count, the same topic read
//   from the earliest offset in a fresh group by:
//     raw_touch_nothing   an rd_kafka_consumer_poll loop that only counts
//                         (offsets stored and committed automatically).
//     raw_parse_at_least_once  the same loop reading every header, parsing
//                         the value with RapidJSON into the same struct
//                         (envelope fields and payload), storing each offset
//                         after processing (enable.auto.offset.store=false).
//     herald_typed        Bus::Subscribe<T> with a typed handler.
//   events/s from the first record to the last. Targets: herald_typed >=
//   0.9x raw_parse_at_least_once and >= 0.7x raw_touch_nothing.
//   Each also gives the client's CPU microseconds per event (*_cpu_us:
//   getrusage of this process over the run, every thread, the broker being
//   another process) and their ratios: the per-event work, which a loaded
//   machine disturbs far less than events/s.
//   kafka_consume_processes  per --consume_processes count P (at the smallest
//   size): P processes of this program (run again in a child mode) in one
//   consumer group read one topic of 6 partitions, each process being
//     raw_parse_at_least_once  the parsing baseline above, or
//     herald_typed        Bus::Subscribe<T>.
//   The topic is filled inside a Kafka transaction that stays open until the
//   group is Stable with all 6 partitions assigned (both consumers read
//   committed records only), so the records appear at once to a group that
//   has joined: events/s from the first record any process gets to the last
//   one any process gets. Beside it: the join, spawn to Stable (*_join_ms,
//   not in the measured time); the time between the first and the last
//   process's first record (*_start_skew_ms, inside it); the group's CPU
//   per event (*_cpu_us, each process from its first record to the stop);
//   the cores the whole machine kept busy meanwhile (*_busy_cores, from
//   /proc/stat) and, when the broker's process is known (--broker_pid), the
//   cores the broker used (*_broker_cores). *_redelivered counts records
//   delivered more than once over all rounds (0 expected: the group does
//   not rebalance while it reads).
//   kafka_idempotence  herald_async with enable_idempotence off and on (100 B).
//   --only_publish skips the consume and idempotence runs; --only_async runs
//   herald_async alone (for a profile: perf record -g kafka_bench --only_async).
//   --only_consume runs no publish or idempotence rounds (the publish lines
//   are printed with none).
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench_flags.h"
#include "bench_stats.h"
#include "herald/core/bus.h"
#include "herald/core/json.h"
#include "herald/core/strings.h"
#include "herald/core/wire.h"
#include "herald/kafka/kafka_transport.h"
#include "kafka_admin.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace {

using herald_bench::Ratios;
using herald_bench::SpreadJson;

struct BenchEvent {
  std::string id;
  std::string data;
  static constexpr std::string_view kType = "bench.event";
  static constexpr std::string_view kTopic = "bench";
  std::string_view key() const { return id; }
  static constexpr auto JsonFields() {
    return herald::json::Fields(herald::json::Field("id", &BenchEvent::id),
                                herald::json::Field("data", &BenchEvent::data));
  }
};

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
  o.brokers = herald_bench::KafkaBrokers();
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

struct RdKafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using RdKafka = std::unique_ptr<rd_kafka_t, RdKafkaDeleter>;

// A producer with exactly the settings KafkaTransport gives its producer
// (and a transactional.id when `transactional_id` is not empty).
RdKafka NewPlainProducer(void (*delivery_report)(rd_kafka_t*, const rd_kafka_message_t*, void*),
                         const std::string& transactional_id = "") {
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
  if (!transactional_id.empty()) {
    Set(conf, "transactional.id", transactional_id);
    Set(conf, "transaction.timeout.ms", "300000");
  }
  if (delivery_report != nullptr) rd_kafka_conf_set_dr_msg_cb(conf, delivery_report);
  RdKafka rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err)));
  if (!rk) {
    std::fprintf(stderr, "kafka_bench: producer: %s\n", err);
    std::exit(2);
  }
  return rk;
}

// Creates `topic` with `partitions` partitions (replication 1) and waits
// (kafka_admin.h); exits on failure.
void CreateTopic(const std::string& topic, int partitions) {
  if (!herald_bench::CreateKafkaTopic(topic, partitions)) std::exit(2);
}

void PrintSettings(const herald::kafka::KafkaTransportOptions& o, int rounds, int publish_partitions,
                   int publish_threads) {
  std::printf(
      "{\"bench\":\"kafka_settings\",\"acks\":\"%s\",\"enable_idempotence\":%s,\"linger_ms\":%s,\"batch_size\":%d,"
      "\"delivery_timeout_ms\":%s,\"compression\":\"%s\",\"partitioner\":\"murmur2_random\",\"keys\":64,"
      "\"publish_partitions\":%d,\"publish_threads\":%d,"
      "\"commit_interval_ms\":%s,\"session_timeout_ms\":%s,\"assignment\":\"range,roundrobin\","
      "\"metadata_refresh_ms\":%s,\"auto_offset_reset\":\"%s\",\"rounds\":%d,\"statistic\":\"min/median/max\"}\n",
      o.acks.c_str(), o.enable_idempotence ? "true" : "false", Ms(o.linger).c_str(), o.batch_size_bytes,
      Ms(o.delivery_timeout).c_str(), o.compression.c_str(), publish_partitions, publish_threads,
      Ms(o.commit_interval).c_str(), Ms(o.session_timeout).c_str(), Ms(o.metadata_refresh_interval).c_str(),
      o.auto_offset_reset.c_str(), rounds);
  std::fflush(stdout);
}

// ---- herald's per-event work, by hand (baseline raw_hand_work) ----

// A UUIDv7 as RFC 9562 method 1 makes it (48-bit milliseconds, a 12-bit
// counter within the millisecond, 62 random bits), in its 36-character form.
class HandUuid {
 public:
  std::string Next(absl::Time now) {
    const uint64_t ms = static_cast<uint64_t>(absl::ToUnixMillis(now));
    counter_ = ms == last_ms_ ? (counter_ + 1) & 0xfff : 0;
    last_ms_ = ms;
    uint8_t b[16];
    for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(ms >> (40 - 8 * i));
    b[6] = static_cast<uint8_t>(0x70 | (counter_ >> 8));
    b[7] = static_cast<uint8_t>(counter_);
    const uint64_t r = Random();
    for (int i = 0; i < 8; ++i) b[8 + i] = static_cast<uint8_t>(r >> (56 - 8 * i));
    b[8] = static_cast<uint8_t>(0x80 | (b[8] & 0x3f));
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(36, '-');
    int o = 0;
    for (int i = 0; i < 16; ++i) {
      if (i == 4 || i == 6 || i == 8 || i == 10) ++o;
      out[o++] = kHex[b[i] >> 4];
      out[o++] = kHex[b[i] & 15];
    }
    return out;
  }

 private:
  uint64_t Random() {  // xorshift64*
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545F4914F6CDD1DULL;
  }
  uint64_t state_ = 0x9E3779B97F4A7C15ULL ^ static_cast<uint64_t>(absl::GetCurrentTimeNanos());
  uint64_t last_ms_ = 0;
  uint32_t counter_ = 0;
};

void PutDigits(std::string& out, int64_t v, int width) {
  char buf[16];
  for (int i = width - 1; i >= 0; --i, v /= 10) buf[i] = static_cast<char>('0' + v % 10);
  out.append(buf, static_cast<size_t>(width));
}

// RFC 3339 in UTC with the fraction's trailing zeros dropped.
std::string HandTime(absl::Time t) {
  const int64_t secs = absl::ToUnixSeconds(t);
  const int64_t nanos = absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(secs));
  const int64_t days = secs / 86400, rem = secs % 86400;
  // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
  const int64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2);
  std::string out;
  out.reserve(32);
  PutDigits(out, year, 4);
  out += '-';
  PutDigits(out, month, 2);
  out += '-';
  PutDigits(out, day, 2);
  out += 'T';
  PutDigits(out, rem / 3600, 2);
  out += ':';
  PutDigits(out, rem / 60 % 60, 2);
  out += ':';
  PutDigits(out, rem % 60, 2);
  if (nanos > 0) {
    out += '.';
    PutDigits(out, nanos, 9);
    while (out.back() == '0') out.pop_back();
  }
  out += 'Z';
  return out;
}

// The record herald writes for `e` (JSON envelope mode), made by hand.
struct HandRecord {
  std::string value;
  std::vector<std::pair<std::string_view, std::string>> headers;
};

HandRecord MakeHandRecord(const BenchEvent& e, std::string id, std::string time) {
  HandRecord r;
  rapidjson::StringBuffer buffer(nullptr, 128 + e.data.size());
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("id", 2);
  w.String(id.data(), static_cast<rapidjson::SizeType>(id.size()));
  w.Key("type", 4);
  w.String(BenchEvent::kType.data(), static_cast<rapidjson::SizeType>(BenchEvent::kType.size()));
  w.Key("timestamp", 9);
  w.String(time.data(), static_cast<rapidjson::SizeType>(time.size()));
  w.Key("payload", 7);
  w.StartObject();
  w.Key("id", 2);
  w.String(e.id.data(), static_cast<rapidjson::SizeType>(e.id.size()));
  w.Key("data", 4);
  w.String(e.data.data(), static_cast<rapidjson::SizeType>(e.data.size()));
  w.EndObject();
  w.EndObject();
  r.value.assign(buffer.GetString(), buffer.GetSize());
  r.headers.reserve(7);
  r.headers.emplace_back("ce_specversion", "1.0");
  r.headers.emplace_back("ce_id", std::move(id));
  r.headers.emplace_back("ce_source", "herald");
  r.headers.emplace_back("ce_type", std::string(BenchEvent::kType));
  r.headers.emplace_back("ce_time", std::move(time));
  r.headers.emplace_back("content-type", "application/json");
  r.headers.emplace_back("ce_partitionkey", e.id);
  return r;
}

// The hand-made record must be the one herald writes, byte for byte (same id
// and time given to both), or the baseline would not do the same work.
bool CheckHandRecord(size_t size) {
  const BenchEvent e = MakeEvent(7, size);
  herald::EnvelopeOptions eo;
  eo.topic = "check";
  const herald::Envelope envelope = herald::MakeEnvelope(e, eo);
  absl::StatusOr<herald::Record> herald_record = herald::EncodeRecord(envelope);
  const HandRecord hand = MakeHandRecord(e, envelope.id, HandTime(envelope.time));
  bool same = herald_record.ok() && herald_record->key == e.id && herald_record->value == hand.value &&
              herald_record->headers.size() == hand.headers.size();
  for (size_t i = 0; same && i < hand.headers.size(); ++i) {
    same = herald_record->headers[i].first == hand.headers[i].first &&
           herald_record->headers[i].second == hand.headers[i].second;
  }
  HandUuid uuid;
  same = same && herald::IsUuidV7(uuid.Next(absl::Now()));
  if (!same) {
    std::fprintf(stderr, "kafka_bench: the hand-made record differs from herald's:\n  herald %s\n  hand   %s\n",
                 herald_record.ok() ? herald_record->value.c_str() : "(error)", hand.value.c_str());
    if (herald_record.ok()) {
      for (const auto& [k, v] : herald_record->headers)
        std::fprintf(stderr, "  herald header %s=%s\n", k.c_str(), v.c_str());
    }
  }
  return same;
}

// ---- publish ----

// CPU seconds this process has used so far (user + system, every thread:
// the caller's, librdkafka's and the delivery-report thread's). The broker
// runs in its own process, so the difference over a run divided by the
// records is the client's per-event cost, which a loaded machine moves much
// less than it moves events/s.
double ProcessCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Set by each publish run for its caller (the Rounds() variants return one
// double; the CPU figure of the same run is kept beside it).
double last_cpu_us_per_event = 0;

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
  const double cpu0 = ProcessCpuSeconds();
  const absl::Time t0 = absl::Now();
  for (int i = 0; i < count; ++i) {
    bus->PublishAsync(events[i % 64], eo,
                      [&](absl::StatusOr<herald::DeliveryReport> r) { (r.ok() ? done : failed).fetch_add(1); });
  }
  (void)bus->Flush(absl::Seconds(120));
  const absl::Duration elapsed = absl::Now() - t0;
  last_cpu_us_per_event = (ProcessCpuSeconds() - cpu0) * 1e6 / count;
  if (failed.load() != 0) std::fprintf(stderr, "kafka_bench: %d bus publishes failed\n", failed.load());
  (void)bus->Stop(absl::Seconds(10));
  return count / absl::ToDoubleSeconds(elapsed);
}

// Bus::Publish, which returns when the broker acknowledged the record, from
// `threads` threads sharing one bus (as a request-per-thread service would).
double PublishBlockingWithBus(int count, size_t size, int threads, const std::string& topic) {
  auto bus = std::make_unique<herald::Bus>(*herald::kafka::KafkaTransport::Create(BusOptions(true)));
  herald::EnvelopeOptions eo;
  eo.topic = topic;
  std::vector<BenchEvent> events;
  for (int i = 0; i < 64; ++i) events.push_back(MakeEvent(i, size));
  (void)bus->Publish(events[0], eo);
  std::atomic<int> next{0}, failed{0};
  const absl::Time t0 = absl::Now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (int i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
        if (!bus->Publish(events[i % 64], eo).ok()) failed.fetch_add(1);
      }
    });
  }
  for (std::thread& w : workers) w.join();
  const absl::Duration elapsed = absl::Now() - t0;
  if (failed.load() != 0) std::fprintf(stderr, "kafka_bench: %d blocking publishes failed\n", failed.load());
  (void)bus->Stop(absl::Seconds(10));
  return count / absl::ToDoubleSeconds(elapsed);
}

std::atomic<int> plain_delivered{0};
void PlainDeliveryReport(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) plain_delivered.fetch_add(1, std::memory_order_relaxed);
}

// Produces one record, waiting while librdkafka's queue is full. Takes
// ownership of `h`.
void Produce(rd_kafka_t* rk, const std::string& topic, std::string_view key, std::string_view value,
             rd_kafka_headers_t* h) {
  while (true) {
    rd_kafka_resp_err_t e =
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
                          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_headers_destroy(h);
      return;
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
}

// hand_work = false: herald's records encoded once up front (raw_prebuilt);
// true: each record made by hand per event (raw_hand_work).
double PublishWithPlainProducer(int count, size_t size, const std::string& topic, bool hand_work) {
  RdKafka producer = NewPlainProducer(PlainDeliveryReport);
  rd_kafka_t* rk = producer.get();
  std::vector<herald::Record> records;
  std::vector<BenchEvent> events;
  for (int i = 0; i < 64; ++i) {
    herald::EnvelopeOptions eo;
    eo.topic = topic;
    events.push_back(MakeEvent(i, size));
    records.push_back(*herald::EncodeRecord(herald::MakeEnvelope(events.back(), eo)));
  }
  std::atomic<bool> stop{false};
  std::thread poller([&] {
    while (!stop.load()) rd_kafka_poll(rk, 100);
  });
  auto produce_prebuilt = [&](const herald::Record& r) {
    rd_kafka_headers_t* h = rd_kafka_headers_new(r.headers.size());
    for (const auto& [k, v] : r.headers) {
      rd_kafka_header_add(h, k.data(), static_cast<ssize_t>(k.size()), v.data(), static_cast<ssize_t>(v.size()));
    }
    Produce(rk, topic, r.key, r.value, h);
  };
  HandUuid uuid;
  auto produce_by_hand = [&](const BenchEvent& source) {
    const BenchEvent e = source;  // the typed event a caller hands over
    const absl::Time now = absl::Now();
    HandRecord r = MakeHandRecord(e, uuid.Next(now), HandTime(now));
    rd_kafka_headers_t* h = rd_kafka_headers_new(r.headers.size());
    for (const auto& [k, v] : r.headers) {
      rd_kafka_header_add(h, k.data(), static_cast<ssize_t>(k.size()), v.data(), static_cast<ssize_t>(v.size()));
    }
    Produce(rk, topic, e.id, r.value, h);
  };
  produce_prebuilt(records[0]);
  rd_kafka_flush(rk, 30000);
  plain_delivered = 0;
  const double cpu0 = ProcessCpuSeconds();
  const absl::Time t0 = absl::Now();
  if (hand_work) {
    for (int i = 0; i < count; ++i) produce_by_hand(events[i % 64]);
  } else {
    for (int i = 0; i < count; ++i) produce_prebuilt(records[i % 64]);
  }
  rd_kafka_flush(rk, 120000);
  const absl::Duration elapsed = absl::Now() - t0;
  last_cpu_us_per_event = (ProcessCpuSeconds() - cpu0) * 1e6 / count;
  stop = true;
  poller.join();
  if (plain_delivered.load() != count) {
    std::fprintf(stderr, "kafka_bench: plain delivered %d of %d\n", plain_delivered.load(), count);
  }
  return count / absl::ToDoubleSeconds(elapsed);
}

// ---- consume ----

void Fill(const std::string& topic, int count, size_t size) {
  auto bus = std::make_unique<herald::Bus>(*herald::kafka::KafkaTransport::Create(BusOptions(true)));
  herald::EnvelopeOptions eo;
  eo.topic = topic;
  for (int i = 0; i < count; ++i) {
    bus->PublishAsync(MakeEvent(i, size), eo, [](absl::StatusOr<herald::DeliveryReport>) {});
  }
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
  (void)bus->Subscribe<BenchEvent>(
      UniqueName("bus-group"),
      [&](const BenchEvent& e) {
        int64_t now = absl::GetCurrentTimeNanos();
        int64_t zero = 0;
        first_ns.compare_exchange_strong(zero, now);
        bytes.fetch_add(e.data.size(), std::memory_order_relaxed);
        if (n.fetch_add(1) + 1 == count) last_ns = now;
        return absl::OkStatus();
      },
      so);
  (void)bus->Start();
  const absl::Time give_up = absl::Now() + absl::Seconds(180);
  while (n.load() < count && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  (void)bus->Stop(absl::Seconds(10));
  if (n.load() < count) return 0;
  return (count - 1) / (static_cast<double>(last_ns - first_ns) / 1e9);
}

// What the parsing baseline fills per record: the envelope's fields, the
// headers and the typed payload, as herald's Message and T hold them.
struct ParsedRecord {
  std::string id, type, timestamp;
  std::vector<std::pair<std::string, std::string>> headers;
  BenchEvent event;
};

std::string StringMember(const rapidjson::Value& object, const char* name) {
  auto it = object.FindMember(name);
  if (it == object.MemberEnd() || !it->value.IsString()) return "";
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

bool Parse(const rd_kafka_message_t* m, ParsedRecord& out) {
  out.headers.clear();
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name;
    const void* value;
    size_t size;
    for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
      out.headers.emplace_back(name, std::string(static_cast<const char*>(value), size));
    }
  }
  rapidjson::Document d;
  d.Parse(static_cast<const char*>(m->payload), m->len);
  if (d.HasParseError() || !d.IsObject()) return false;
  out.id = StringMember(d, "id");
  out.type = StringMember(d, "type");
  out.timestamp = StringMember(d, "timestamp");
  auto payload = d.FindMember("payload");
  if (payload == d.MemberEnd() || !payload->value.IsObject()) return false;
  out.event.id = StringMember(payload->value, "id");
  out.event.data = StringMember(payload->value, "data");
  return !out.id.empty() && !out.event.id.empty();
}

// A consumer in a fresh or given group with the settings KafkaTransport
// gives its consumer, subscribed to `topic`. parse = false:
// raw_touch_nothing's offset handling; true: raw_parse_at_least_once's.
RdKafka NewPlainConsumer(const std::string& topic, const std::string& group, bool parse) {
  const herald::kafka::KafkaTransportOptions o = BusOptions(true);
  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  SetCommon(conf, o);
  Set(conf, "group.id", group);
  Set(conf, "auto.offset.reset", o.auto_offset_reset);
  Set(conf, "session.timeout.ms", Ms(o.session_timeout));
  Set(conf, "max.poll.interval.ms", Ms(o.max_poll_interval));
  Set(conf, "partition.assignment.strategy", "range,roundrobin");
  Set(conf, "enable.partition.eof", "false");
  Set(conf, "topic.metadata.refresh.interval.ms", Ms(o.metadata_refresh_interval));
  // At-least-once (parse): an offset is stored only after its record was
  // processed; stored offsets are committed asynchronously every
  // commit_interval. Touch-nothing leaves offset storing to librdkafka.
  Set(conf, "enable.auto.offset.store", parse ? "false" : "true");
  Set(conf, "enable.auto.commit", "true");
  Set(conf, "auto.commit.interval.ms", Ms(o.commit_interval));
  RdKafka consumer(rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err)));
  if (!consumer) {
    std::fprintf(stderr, "kafka_bench: consumer: %s\n", err);
    std::exit(2);
  }
  rd_kafka_t* rk = consumer.get();
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  return consumer;
}

// parse = false: raw_touch_nothing; true: raw_parse_at_least_once.
double ConsumeWithPlainConsumer(const std::string& topic, int count, bool parse) {
  RdKafka consumer = NewPlainConsumer(topic, UniqueName("plain-group"), parse);
  rd_kafka_t* rk = consumer.get();
  int n = 0, bad = 0;
  absl::Time first, last;
  const absl::Time give_up = absl::Now() + absl::Seconds(180);
  ParsedRecord parsed;
  size_t sink = 0;
  while (n < count && absl::Now() < give_up) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (n == 0) first = absl::Now();
      if (parse) {
        if (Parse(m, parsed)) {
          sink += parsed.event.data.size();  // the "handler"
        } else {
          ++bad;
        }
        rd_kafka_offset_store(m->rkt, m->partition, m->offset);  // after processing
      }
      if (++n == count) last = absl::Now();
    }
    rd_kafka_message_destroy(m);
  }
  if (bad != 0) std::fprintf(stderr, "kafka_bench: %d records did not parse (sink %zu)\n", bad, sink);
  rd_kafka_commit(rk, nullptr, 0);
  rd_kafka_consumer_close(rk);
  if (n < count) return 0;
  return (count - 1) / absl::ToDoubleSeconds(last - first);
}

// ---- consume in several processes of one group (--consume_processes) ----
//
// The topic (kProcessPartitions partitions) is filled inside one Kafka
// transaction that stays open while the P processes join the group: both
// consumers read committed records only (librdkafka's default isolation,
// which KafkaTransport keeps), so nobody reads anything until the group is
// Stable with every partition assigned. Committing the transaction then
// makes all records visible at once, as a pre-filled topic would be to a
// group that had already joined. The join (spawn to Stable) is measured
// separately; events/s runs from the first record any process gets to the
// last record any process gets.

constexpr int kProcessPartitions = 6;

// A child's counters, written by its consumer threads.
struct ChildCounters {
  std::atomic<int64_t> records{0}, first_ns{0}, last_ns{0}, first_cpu_us{-1};
};

int64_t CpuMicros() { return static_cast<int64_t>(ProcessCpuSeconds() * 1e6); }

// What each child does per record besides its handler's work (the same for
// herald and the raw consumer): a clock read and three atomics.
void NoteRecord(ChildCounters& c) {
  const int64_t now = absl::GetCurrentTimeNanos();
  int64_t zero = 0;
  if (c.first_ns.compare_exchange_strong(zero, now)) c.first_cpu_us = CpuMicros();
  int64_t last = c.last_ns.load(std::memory_order_relaxed);
  while (last < now && !c.last_ns.compare_exchange_weak(last, now, std::memory_order_relaxed)) {
  }
  c.records.fetch_add(1, std::memory_order_relaxed);
}

void WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t w = write(fd, text.data() + done, text.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    done += static_cast<size_t>(w);
  }
}

// The child mode (--child_consume=herald|raw_parse): one member of `group`
// reading `topic`. While it runs it writes "p <records> <first_ns>
// <last_ns>" to stdout whenever its count moved (every 10 ms at most); it
// stops when its stdin closes and ends with "f <records> <first_ns>
// <last_ns> <cpu_us>", cpu_us being this process's CPU from its first record
// to the stop request.
int RunChild(const std::string& mode, const std::string& topic, const std::string& group) {
  ChildCounters c;
  std::atomic<bool> stop{false};
  std::thread watcher([&] {
    char buffer[64];
    while (true) {
      const ssize_t r = read(0, buffer, sizeof buffer);
      if (r == 0 || (r < 0 && errno != EINTR)) break;
    }
    stop = true;
  });
  std::thread reporter([&] {
    int64_t sent = -1;
    while (!stop.load()) {
      const int64_t n = c.records.load();
      if (n != sent) {
        WriteAll(1, herald::StrCat("p ", n, " ", c.first_ns.load(), " ", c.last_ns.load(), "\n"));
        sent = n;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
  });
  int64_t stop_cpu_us = 0;
  std::atomic<size_t> sink{0};
  if (mode == "herald") {
    auto bus = std::make_unique<herald::Bus>(*herald::kafka::KafkaTransport::Create(BusOptions(true)));
    herald::SubscribeOptions so;
    so.topics = {topic};
    const absl::Status subscribed = bus->Subscribe<BenchEvent>(
        group,
        [&](const BenchEvent& e) {
          sink.fetch_add(e.data.size(), std::memory_order_relaxed);
          NoteRecord(c);
          return absl::OkStatus();
        },
        so);
    const absl::Status started = subscribed.ok() ? bus->Start() : subscribed;
    if (!started.ok()) std::fprintf(stderr, "kafka_bench child: %s\n", started.ToString().c_str());
    while (!stop.load()) absl::SleepFor(absl::Milliseconds(5));
    stop_cpu_us = CpuMicros();
    (void)bus->Stop(absl::Seconds(10));
  } else {
    RdKafka consumer = NewPlainConsumer(topic, group, true);
    rd_kafka_t* rk = consumer.get();
    ParsedRecord parsed;
    int bad = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 50);
      if (m == nullptr) continue;
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (Parse(m, parsed)) {
          sink.fetch_add(parsed.event.data.size(), std::memory_order_relaxed);  // the "handler"
        } else {
          ++bad;
        }
        rd_kafka_offset_store(m->rkt, m->partition, m->offset);  // after processing
        NoteRecord(c);
      }
      rd_kafka_message_destroy(m);
    }
    stop_cpu_us = CpuMicros();
    if (bad != 0) std::fprintf(stderr, "kafka_bench child: %d records did not parse\n", bad);
    rd_kafka_commit(rk, nullptr, 0);
    rd_kafka_consumer_close(rk);
  }
  reporter.join();
  watcher.join();
  const int64_t first_cpu_us = c.first_cpu_us.load();
  WriteAll(1, herald::StrCat("f ", c.records.load(), " ", c.first_ns.load(), " ", c.last_ns.load(), " ",
                             first_cpu_us >= 0 ? stop_cpu_us - first_cpu_us : 0, "\n"));
  return 0;
}

// This executable, which the parent runs again in child mode.
std::string SelfPath() {
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : std::string();
}

// The parent's end of one child: its stdin (closed to stop it) and stdout
// (its report lines), and the last figures it reported.
struct Child {
  pid_t pid = -1;
  int to_child = -1, from_child = -1;
  std::string pending;
  int64_t records = 0, first_ns = 0, last_ns = 0, cpu_us = 0;
  bool finished = false;
};

bool SpawnChild(const std::vector<std::string>& args, Child& child) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) return false;
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return false;
  }
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {  // only async-signal-safe calls until exec
    dup2(in[0], 0);
    dup2(out[1], 1);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  if (pid < 0) {
    close(in[1]);
    close(out[0]);
    return false;
  }
  child.pid = pid;
  child.to_child = in[1];
  child.from_child = out[0];
  return true;
}

// Reads what `child` wrote so far and takes in its complete lines; false at
// the end of its output.
bool ReadChild(Child& child) {
  char buffer[4096];
  const ssize_t r = read(child.from_child, buffer, sizeof buffer);
  if (r < 0 && errno == EINTR) return true;
  if (r <= 0) return false;
  child.pending.append(buffer, static_cast<size_t>(r));
  for (size_t eol; (eol = child.pending.find('\n')) != std::string::npos; child.pending.erase(0, eol + 1)) {
    const std::string line = child.pending.substr(0, eol);
    long long n = 0, first = 0, last = 0, cpu = 0;
    if (std::sscanf(line.c_str(), "p %lld %lld %lld", &n, &first, &last) == 3) {
      child.records = n, child.first_ns = first, child.last_ns = last;
    } else if (std::sscanf(line.c_str(), "f %lld %lld %lld %lld", &n, &first, &last, &cpu) == 4) {
      child.records = n, child.first_ns = first, child.last_ns = last, child.cpu_us = cpu;
      child.finished = true;
    }
  }
  return true;
}

// Waits until `group` is Stable with `members` members that hold all
// `partitions` partitions between them (each at least one when there are no
// more members than partitions).
bool WaitForGroup(rd_kafka_t* rk, const std::string& group, int members, int partitions, absl::Duration timeout) {
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  const char* groups[] = {group.c_str()};
  const absl::Time give_up = absl::Now() + timeout;
  bool ready = false;
  while (!ready && absl::Now() < give_up) {
    rd_kafka_DescribeConsumerGroups(rk, groups, 1, nullptr, q);
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 10000);
    const rd_kafka_DescribeConsumerGroups_result_t* res =
        ev != nullptr ? rd_kafka_event_DescribeConsumerGroups_result(ev) : nullptr;
    size_t n = 0;
    const rd_kafka_ConsumerGroupDescription_t** g =
        res != nullptr ? rd_kafka_DescribeConsumerGroups_result_groups(res, &n) : nullptr;
    if (n == 1 && rd_kafka_ConsumerGroupDescription_error(g[0]) == nullptr &&
        rd_kafka_ConsumerGroupDescription_state(g[0]) == RD_KAFKA_CONSUMER_GROUP_STATE_STABLE &&
        rd_kafka_ConsumerGroupDescription_member_count(g[0]) == static_cast<size_t>(members)) {
      int assigned = 0;
      bool each = true;
      for (int i = 0; i < members; ++i) {
        const rd_kafka_MemberDescription_t* m = rd_kafka_ConsumerGroupDescription_member(g[0], i);
        const rd_kafka_topic_partition_list_t* parts =
            rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(m));
        const int count = parts != nullptr ? parts->cnt : 0;
        assigned += count;
        each = each && count > 0;
      }
      ready = assigned == partitions && (each || members > partitions);
    }
    if (ev != nullptr) rd_kafka_event_destroy(ev);
    if (!ready) absl::SleepFor(absl::Milliseconds(20));
  }
  rd_kafka_queue_destroy(q);
  return ready;
}

// Busy and total jiffies of the whole machine (/proc/stat), to tell whether
// a run had the CPUs to itself and used them all.
struct MachineCpu {
  double busy = 0, total = 0;
};
MachineCpu ReadMachineCpu() {
  MachineCpu out;
  FILE* f = std::fopen("/proc/stat", "r");
  if (f == nullptr) return out;
  unsigned long long v[8] = {};
  if (std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                  &v[7]) == 8) {
    for (unsigned long long x : v) out.total += static_cast<double>(x);
    out.busy = out.total - static_cast<double>(v[3] + v[4]);  // minus idle and iowait
  }
  std::fclose(f);
  return out;
}

// CPU seconds process `pid` has used so far (user + system, /proc), or -1.
double PidCpuSeconds(int pid) {
  if (pid <= 0) return -1;
  FILE* f = std::fopen(herald::StrCat("/proc/", pid, "/stat").c_str(), "r");
  if (f == nullptr) return -1;
  char buffer[1024];
  const size_t n = std::fread(buffer, 1, sizeof(buffer) - 1, f);
  std::fclose(f);
  buffer[n] = '\0';
  // Fields after the command name (which may hold spaces): state is the 3rd
  // field, utime and stime the 14th and 15th.
  const char* p = std::strrchr(buffer, ')');
  unsigned long long utime = 0, stime = 0;
  if (p == nullptr ||
      std::sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2) {
    return -1;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The broker's process id: --broker_pid, else HERALD_KAFKA_PID from the
// kafka.env that scripts/servers-up.sh wrote into HERALD_SERVERS_DIR when
// that broker is HERALD_TEST_KAFKA_BROKERS; 0 when unknown.
int BrokerPid(int flag) {
  if (flag > 0) return flag;
  const char* dir = std::getenv("HERALD_SERVERS_DIR");
  if (dir == nullptr) return 0;
  FILE* f = std::fopen(herald::StrCat(dir, "/kafka.env").c_str(), "r");
  if (f == nullptr) return 0;
  int pid = 0;
  std::string port;
  char line[1024];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    std::string l(line);
    while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
    if (l.rfind("HERALD_KAFKA_PID=", 0) == 0) pid = std::atoi(l.c_str() + 17);
    if (l.rfind("HERALD_KAFKA_PORT=", 0) == 0) port = l.substr(18);
  }
  std::fclose(f);
  const std::string brokers = herald_bench::KafkaBrokers();
  return !port.empty() && brokers.find(":" + port) != std::string::npos ? pid : 0;
}
int broker_pid = 0;

bool TxnOk(rd_kafka_error_t* error, const char* what) {
  if (error == nullptr) return true;
  std::fprintf(stderr, "kafka_bench: %s: %s\n", what, rd_kafka_error_string(error));
  rd_kafka_error_destroy(error);
  return false;
}

// Side figures of the last ConsumeInProcesses run.
struct GroupRun {
  double join_ms = 0, cpu_us_per_event = 0, busy_cores = 0, broker_cores = -1, start_skew_ms = 0;
  int64_t delivered = 0;
};
GroupRun last_group_run;

// `processes` children of `mode` (herald or raw_parse) in one new group read
// `count` events of about `size` bytes from a new topic; events/s from the
// group's first record to its last, or 0 when they did not all arrive.
double ConsumeInProcesses(const std::string& mode, int processes, int count, size_t size) {
  last_group_run = {};
  const std::string topic = UniqueName("procs"), group = UniqueName("procs-group");
  CreateTopic(topic, kProcessPartitions);
  RdKafka producer = NewPlainProducer(nullptr, UniqueName("procs-fill"));
  rd_kafka_t* rk = producer.get();
  if (!TxnOk(rd_kafka_init_transactions(rk, 30000), "init_transactions") ||
      !TxnOk(rd_kafka_begin_transaction(rk), "begin_transaction")) {
    return 0;
  }
  herald::EnvelopeOptions eo;
  eo.topic = topic;
  for (int i = 0; i < count; ++i) {  // herald's records, as Fill() publishes them
    const herald::Record r = *herald::EncodeRecord(herald::MakeEnvelope(MakeEvent(i, size), eo));
    rd_kafka_headers_t* h = rd_kafka_headers_new(r.headers.size());
    for (const auto& [k, v] : r.headers) {
      rd_kafka_header_add(h, k.data(), static_cast<ssize_t>(k.size()), v.data(), static_cast<ssize_t>(v.size()));
    }
    while (true) {
      const rd_kafka_resp_err_t e =
          rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(r.key.data(), r.key.size()),
                            RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
      if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        std::fprintf(stderr, "kafka_bench: fill: %s\n", rd_kafka_err2str(e));
        rd_kafka_headers_destroy(h);
        return 0;
      }
      rd_kafka_poll(rk, 5);
    }
  }
  rd_kafka_flush(rk, 120000);

  static const std::string self = SelfPath();
  const absl::Time spawned = absl::Now();
  std::vector<Child> children(static_cast<size_t>(processes));
  bool ok = true;
  for (Child& child : children) {
    ok = ok && SpawnChild({self, "--child_consume=" + mode, "--child_topic=" + topic, "--child_group=" + group}, child);
  }
  ok = ok && WaitForGroup(rk, group, processes, kProcessPartitions, absl::Seconds(90));
  last_group_run.join_ms = absl::ToDoubleMilliseconds(absl::Now() - spawned);
  if (!ok) std::fprintf(stderr, "kafka_bench: %d %s processes did not make a stable group\n", processes, mode.c_str());
  const MachineCpu cpu0 = ReadMachineCpu();
  const double broker0 = PidCpuSeconds(broker_pid);
  const absl::Time window_start = absl::Now();
  ok = ok && TxnOk(rd_kafka_commit_transaction(rk, 60000), "commit_transaction");

  // Follow the children's counts until every record arrived.
  const absl::Time give_up = absl::Now() + absl::Seconds(180);
  auto total = [&] {
    int64_t sum = 0;
    for (const Child& child : children) sum += child.records;
    return sum;
  };
  std::vector<pollfd> fds;
  while (ok && total() < count && absl::Now() < give_up) {
    fds.clear();
    for (const Child& child : children) fds.push_back({child.from_child, POLLIN, 0});
    if (poll(fds.data(), fds.size(), 100) <= 0) continue;
    for (size_t i = 0; i < children.size(); ++i) {
      if (fds[i].revents != 0 && !ReadChild(children[i])) ok = false;  // a child ended early
    }
  }
  const MachineCpu cpu1 = ReadMachineCpu();
  const double broker1 = PidCpuSeconds(broker_pid);
  if (broker0 >= 0 && broker1 >= broker0) {
    last_group_run.broker_cores = (broker1 - broker0) / absl::ToDoubleSeconds(absl::Now() - window_start);
  }
  // Stop them all and take in their final lines.
  for (Child& child : children) {
    if (child.to_child >= 0) close(child.to_child);
  }
  int64_t cpu_us = 0, first = 0, last = 0, last_first = 0;
  for (Child& child : children) {
    if (child.from_child >= 0) {
      while (ReadChild(child)) {
      }
      close(child.from_child);
    }
    int status = 0;
    if (child.pid > 0) waitpid(child.pid, &status, 0);
    if (!child.finished) ok = false;
    cpu_us += child.cpu_us;
    if (child.first_ns != 0 && (first == 0 || child.first_ns < first)) first = child.first_ns;
    last = std::max(last, child.last_ns);
    last_first = std::max(last_first, child.first_ns);
  }
  const int64_t delivered = total();
  last_group_run.delivered = delivered;
  last_group_run.start_skew_ms = static_cast<double>(last_first - first) / 1e6;
  last_group_run.cpu_us_per_event = static_cast<double>(cpu_us) / count;
  if (cpu1.total > cpu0.total) {
    last_group_run.busy_cores =
        (cpu1.busy - cpu0.busy) / (cpu1.total - cpu0.total) * static_cast<double>(std::thread::hardware_concurrency());
  }
  if (delivered != count) {
    std::fprintf(stderr, "kafka_bench: %d %s processes delivered %lld records of %d\n", processes, mode.c_str(),
                 static_cast<long long>(delivered), count);
  }
  if (!ok || delivered < count || last <= first) return 0;
  return (count - 1) / (static_cast<double>(last - first) / 1e9);
}

// ---- rounds and output ----

// Runs every variant once per round, rotating which goes first.
std::vector<std::vector<double>> Rounds(int rounds, const std::vector<std::function<double()>>& variants) {
  std::vector<std::vector<double>> out(variants.size());
  for (int round = 0; round < rounds; ++round) {
    for (size_t k = 0; k < variants.size(); ++k) {
      const size_t v = (k + static_cast<size_t>(round)) % variants.size();
      out[v].push_back(variants[v]());
    }
  }
  return out;
}

}  // namespace

ABSL_FLAG(bool, quick, false, "Fewer events (20,000 of 100 B instead of 200,000) and 3 rounds.");
ABSL_FLAG(int, rounds, 0, "Rounds per figure. Default: 5, or 3 with --quick.");
ABSL_FLAG(std::vector<std::string>, sizes, std::vector<std::string>({"100", "1024", "10240"}),
          "Event sizes in bytes (the record value is about that size).");
ABSL_FLAG(std::vector<std::string>, consume_partitions, std::vector<std::string>({"1", "6"}),
          "Partition counts of the one-process consume runs.");
ABSL_FLAG(std::vector<std::string>, consume_processes, {},
          "Consumer process counts of the group consume runs (6 partitions, smallest size). Default: none.");
ABSL_FLAG(int, publish_partitions, 4, "Partitions of the publish topics.");
ABSL_FLAG(int, publish_threads, 64, "Threads of the blocking publish run.");
ABSL_FLAG(bool, only_publish, false, "Skip the consume and idempotence runs.");
ABSL_FLAG(bool, only_async, false, "Run herald_async alone (for a profile).");
ABSL_FLAG(bool, only_consume, false, "Run no publish or idempotence rounds.");
ABSL_FLAG(int, broker_pid, 0,
          "The broker's process id, to report its CPU in the group consume runs. Default: HERALD_KAFKA_PID from "
          "$HERALD_SERVERS_DIR/kafka.env when that broker is HERALD_TEST_KAFKA_BROKERS.");
ABSL_FLAG(std::string, child_consume, "",
          "Internal (set by --consume_processes): run as one consumer of a group, herald or raw_parse.");
ABSL_FLAG(std::string, child_topic, "", "Internal: the topic of --child_consume.");
ABSL_FLAG(std::string, child_group, "", "Internal: the group of --child_consume.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("herald's Kafka publish and consume against librdkafka baselines");
  absl::ParseCommandLine(argc, argv);
  if (herald_bench::KafkaBrokers().empty()) {
    std::fprintf(stderr,
                 "kafka_bench: HERALD_TEST_KAFKA_BROKERS is not set (run scripts/kafka-up.sh and "
                 "eval \"$(scripts/servers-env.sh)\")\n");
    return 1;
  }
  if (const std::string mode = absl::GetFlag(FLAGS_child_consume); !mode.empty()) {
    if (mode != "herald" && mode != "raw_parse") {
      std::fprintf(stderr, "kafka_bench: --child_consume=%s: herald or raw_parse\n", mode.c_str());
      return 2;
    }
    return RunChild(mode, absl::GetFlag(FLAGS_child_topic), absl::GetFlag(FLAGS_child_group));
  }
  const bool quick = absl::GetFlag(FLAGS_quick);
  const bool only_async = absl::GetFlag(FLAGS_only_async);
  const bool only_publish = absl::GetFlag(FLAGS_only_publish) || only_async;
  const bool only_consume = absl::GetFlag(FLAGS_only_consume);
  const int rounds = absl::GetFlag(FLAGS_rounds) > 0 ? absl::GetFlag(FLAGS_rounds) : (quick ? 3 : 5);
  const int publish_partitions = std::max(1, absl::GetFlag(FLAGS_publish_partitions));
  const int publish_threads = std::max(1, absl::GetFlag(FLAGS_publish_threads));
  const std::vector<int> sizes = herald_bench::PositiveInts("kafka_bench", "sizes", absl::GetFlag(FLAGS_sizes));
  const std::vector<int> consume_partitions =
      herald_bench::PositiveInts("kafka_bench", "consume_partitions", absl::GetFlag(FLAGS_consume_partitions));
  const std::vector<int> consume_processes =
      herald_bench::PositiveInts("kafka_bench", "consume_processes", absl::GetFlag(FLAGS_consume_processes));
  if (sizes.empty()) {
    std::fprintf(stderr, "kafka_bench: --sizes is empty\n");
    return 2;
  }
  const int smallest_size = *std::min_element(sizes.begin(), sizes.end());
  broker_pid = BrokerPid(absl::GetFlag(FLAGS_broker_pid));
  for (int size : sizes) {
    if (!CheckHandRecord(static_cast<size_t>(size))) return 1;
  }
  PrintSettings(BusOptions(true), rounds, publish_partitions, publish_threads);
  auto topic = [&](const char* what) {
    std::string name = UniqueName(what);
    CreateTopic(name, publish_partitions);
    return name;
  };
  for (int size_int : sizes) {
    const size_t size = static_cast<size_t>(size_int);
    // Fewer records as they grow, so every size moves a few hundred MB at most.
    const int scale = size >= 102400 ? 50 : size >= 10240 ? 5 : (size >= 1024 ? 2 : 1);
    const int count = (quick ? 20000 : 200000) / scale;
    // Blocking publishes take a round trip each, spread over the threads.
    const int blocking_count = (quick ? 5000 : 50000) / scale;
    const herald::Record sample = *herald::EncodeRecord(herald::MakeEnvelope(MakeEvent(1, size)));
    size_t header_bytes = 0;
    for (const auto& [k, v] : sample.headers) header_bytes += k.size() + v.size();
    // Each publish variant's client CPU per event, round by round.
    std::vector<std::vector<double>> cpu(3);
    auto with_cpu = [&](size_t k, std::function<double()> f) -> std::function<double()> {
      return [&cpu, k, f] {
        const double r = f();
        cpu[k].push_back(last_cpu_us_per_event);
        return r;
      };
    };
    std::vector<std::function<double()>> variants = {
        with_cpu(0, [&] { return PublishWithPlainProducer(count, size, topic("prebuilt"), false); }),
        with_cpu(1, [&] { return PublishWithPlainProducer(count, size, topic("hand"), true); }),
        with_cpu(2, [&] { return PublishWithBus(count, size, true, topic("bus")); }),
        [&] { return PublishBlockingWithBus(blocking_count, size, publish_threads, topic("blocking")); }};
    if (only_async) variants = {variants[2]};
    const std::vector<std::vector<double>> p =
        only_async ? std::vector<std::vector<double>>{{}, {}, Rounds(rounds, variants)[0], {}}
                   : Rounds(only_consume ? 0 : rounds, variants);
    std::printf(
        "{\"bench\":\"kafka_publish\",\"message_bytes\":%zu,\"record_value_bytes\":%zu,\"record_header_bytes\":%zu,"
        "\"headers\":%zu,\"messages\":%d,\"blocking_messages\":%d,\"publish_threads\":%d,\"partitions\":%d,"
        "\"raw_prebuilt_per_s\":%s,\"raw_hand_work_per_s\":%s,\"herald_async_per_s\":%s,"
        "\"herald_blocking_per_s\":%s,\"ratio_herald_async_over_raw_hand_work\":%s,"
        "\"ratio_herald_async_over_raw_prebuilt\":%s,\"ratio_herald_blocking_over_raw_hand_work\":%s,"
        "\"ratio_raw_hand_work_over_raw_prebuilt\":%s,"
        "\"raw_prebuilt_cpu_us\":%s,\"raw_hand_work_cpu_us\":%s,\"herald_async_cpu_us\":%s,"
        "\"ratio_cpu_herald_async_over_raw_hand_work\":%s,\"ratio_cpu_raw_hand_work_over_raw_prebuilt\":%s,"
        "\"target\":\"herald_async >= 0.9x raw_hand_work, >= 0.5x raw_prebuilt\"}\n",
        size, sample.value.size(), header_bytes, sample.headers.size(), count, blocking_count, publish_threads,
        publish_partitions, SpreadJson(p[0], 0).c_str(), SpreadJson(p[1], 0).c_str(), SpreadJson(p[2], 0).c_str(),
        SpreadJson(p[3], 0).c_str(), SpreadJson(Ratios(p[2], p[1]), 3).c_str(),
        SpreadJson(Ratios(p[2], p[0]), 3).c_str(), SpreadJson(Ratios(p[3], p[1]), 3).c_str(),
        SpreadJson(Ratios(p[1], p[0]), 3).c_str(), SpreadJson(cpu[0], 2).c_str(), SpreadJson(cpu[1], 2).c_str(),
        SpreadJson(cpu[2], 2).c_str(), SpreadJson(Ratios(cpu[2], cpu[1]), 3).c_str(),
        SpreadJson(Ratios(cpu[1], cpu[0]), 3).c_str());
    std::fflush(stdout);
    if (only_publish) continue;

    if (size == 100 && !only_consume) {
      const std::vector<std::vector<double>> idem =
          Rounds(std::max(1, rounds / 2), {[&] { return PublishWithBus(count, size, false, topic("noidem")); },
                                           [&] { return PublishWithBus(count, size, true, topic("idem")); }});
      std::printf(
          "{\"bench\":\"kafka_idempotence\",\"message_bytes\":%zu,\"messages\":%d,"
          "\"herald_idempotence_off_per_s\":%s,\"herald_idempotence_on_per_s\":%s,\"ratio_off_over_on\":%s}\n",
          size, count, SpreadJson(idem[0], 0).c_str(), SpreadJson(idem[1], 0).c_str(),
          SpreadJson(Ratios(idem[0], idem[1]), 3).c_str());
      std::fflush(stdout);
    }

    for (int partitions : consume_partitions) {
      const std::string consume_topic = UniqueName("consume");
      CreateTopic(consume_topic, partitions);
      Fill(consume_topic, count, size);
      const std::vector<std::vector<double>> c =
          Rounds(rounds, {[&] { return ConsumeWithPlainConsumer(consume_topic, count, false); },
                          [&] { return ConsumeWithPlainConsumer(consume_topic, count, true); },
                          [&] { return ConsumeWithBus(consume_topic, count); }});
      std::printf(
          "{\"bench\":\"kafka_consume\",\"message_bytes\":%zu,\"messages\":%d,\"partitions\":%d,"
          "\"raw_touch_nothing_per_s\":%s,\"raw_parse_at_least_once_per_s\":%s,\"herald_typed_per_s\":%s,"
          "\"ratio_herald_typed_over_raw_parse\":%s,\"ratio_herald_typed_over_raw_touch_nothing\":%s,"
          "\"target\":\"herald_typed >= 0.9x raw_parse, >= 0.7x raw_touch_nothing\"}\n",
          size, count, partitions, SpreadJson(c[0], 0).c_str(), SpreadJson(c[1], 0).c_str(),
          SpreadJson(c[2], 0).c_str(), SpreadJson(Ratios(c[2], c[1]), 3).c_str(),
          SpreadJson(Ratios(c[2], c[0]), 3).c_str());
      std::fflush(stdout);
    }

    if (size_int != smallest_size) continue;
    for (int processes : consume_processes) {
      // Side figures of each variant, round by round (index 0 raw, 1 herald).
      std::vector<std::vector<double>> join(2), skew(2), cpu_us(2), busy(2), broker(2);
      int64_t surplus[2] = {0, 0};
      auto in_group = [&](size_t k, const char* mode) -> std::function<double()> {
        return [&, k, mode] {
          const double r = ConsumeInProcesses(mode, processes, count, size);
          join[k].push_back(last_group_run.join_ms);
          skew[k].push_back(last_group_run.start_skew_ms);
          cpu_us[k].push_back(last_group_run.cpu_us_per_event);
          busy[k].push_back(last_group_run.busy_cores);
          if (last_group_run.broker_cores >= 0) broker[k].push_back(last_group_run.broker_cores);
          surplus[k] += std::max<int64_t>(0, last_group_run.delivered - count);
          return r;
        };
      };
      const std::vector<std::vector<double>> g = Rounds(rounds, {in_group(0, "raw_parse"), in_group(1, "herald")});
      const std::string broker_json =
          broker[0].empty() && broker[1].empty()
              ? std::string()
              : herald::StrCat("\"raw_parse_broker_cores\":", SpreadJson(broker[0], 2),
                               ",\"herald_typed_broker_cores\":", SpreadJson(broker[1], 2), ",");
      std::printf(
          "{\"bench\":\"kafka_consume_processes\",\"message_bytes\":%zu,\"messages\":%d,\"partitions\":%d,"
          "\"processes\":%d,\"raw_parse_at_least_once_per_s\":%s,\"herald_typed_per_s\":%s,"
          "\"ratio_herald_typed_over_raw_parse\":%s,\"raw_parse_join_ms\":%s,\"herald_typed_join_ms\":%s,"
          "\"raw_parse_start_skew_ms\":%s,\"herald_typed_start_skew_ms\":%s,"
          "\"raw_parse_cpu_us\":%s,\"herald_typed_cpu_us\":%s,\"ratio_cpu_herald_typed_over_raw_parse\":%s,"
          "\"raw_parse_busy_cores\":%s,\"herald_typed_busy_cores\":%s,%s\"raw_parse_redelivered\":%lld,"
          "\"herald_typed_redelivered\":%lld,\"cores\":%u,"
          "\"measured\":\"first record to last across the group, once it is stable; join (spawn to stable) "
          "separately\"}\n",
          size, count, kProcessPartitions, processes, SpreadJson(g[0], 0).c_str(), SpreadJson(g[1], 0).c_str(),
          SpreadJson(Ratios(g[1], g[0]), 3).c_str(), SpreadJson(join[0], 0).c_str(), SpreadJson(join[1], 0).c_str(),
          SpreadJson(skew[0], 1).c_str(), SpreadJson(skew[1], 1).c_str(), SpreadJson(cpu_us[0], 2).c_str(),
          SpreadJson(cpu_us[1], 2).c_str(), SpreadJson(Ratios(cpu_us[1], cpu_us[0]), 3).c_str(),
          SpreadJson(busy[0], 2).c_str(), SpreadJson(busy[1], 2).c_str(), broker_json.c_str(),
          static_cast<long long>(surplus[0]), static_cast<long long>(surplus[1]), std::thread::hardware_concurrency());
      std::fflush(stdout);
    }
  }
  return 0;
}
