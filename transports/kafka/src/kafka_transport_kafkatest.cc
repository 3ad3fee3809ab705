// KafkaTransport against a real broker (HERALD_TEST_KAFKA_BROKERS; label kafka):
// the documented wire format as a plain librdkafka client sees it, records
// written by other producers (a Go service's bare JSON envelope), and a
// broker restart mid-stream (HERALD_TEST_KAFKA_CTL).
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/json.h"
#include "herald/core/mutex.h"
#include "herald/core/bus.h"
#include "herald/kafka/kafka_transport.h"
#include "herald/testing/status_matchers.h"
#include "kafka_real_broker.h"
#include "kafka_test_support.h"
#include "rapidjson/document.h"

namespace herald::kafka {
namespace {

using ::herald::kafka::test::OrderPlaced;
using ::herald::kafka::test::PlainRecord;
using ::herald::kafka::test::UniqueName;
using ::herald::kafka::test::WaitUntil;
using ::herald::testing::IsOk;
using ::testing::ElementsAre;

const auto* const kRequireBroker = ::testing::AddGlobalTestEnvironment(new test::RequireRealBroker);

std::unique_ptr<Bus> MakeBus(const std::string& client_id) {
  absl::StatusOr<std::unique_ptr<KafkaTransport>> transport = KafkaTransport::Create(test::RealBrokerOptions(client_id));
  EXPECT_THAT(transport, IsOk());
  return transport.ok() ? std::make_unique<Bus>(*std::move(transport)) : nullptr;
}

// Waits until every consumer of `bus` has partitions (bounded).
void WaitAssigned(Bus& bus) {
  const absl::Time t0 = absl::Now();
  bool assigned = static_cast<bool>(WaitUntil(
      [&] {
        KafkaTransportStats s = bus.transport<KafkaTransport>().Stats();
        return s.consumers > 0 && s.consumers_joined == s.consumers;
      },
      absl::Seconds(60)));
  std::cerr << "[ info ] partitions assigned: " << assigned << " after " << absl::Now() - t0 << "\n";
}

TEST(KafkaTransportRealBroker, PlainConsumerSeesTheDocumentedWireFormat) {
  std::unique_ptr<Bus> bus = MakeBus("wire-format");
  const std::string topic = UniqueName("wire");
  EnvelopeOptions eo;
  eo.topic = topic;
  eo.source = "order-service";
  eo.headers = {{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
                {"correlation-id", "req-7"}};
  OrderPlaced event{"order-42", 3};
  absl::StatusOr<DeliveryReport> report = bus->Publish(event, eo);
  ASSERT_THAT(report, IsOk());

  std::vector<PlainRecord> records =
      test::ReadWithPlainConsumer(test::RealBrokers(), topic, report->partition + 1, 1, absl::Seconds(30));
  ASSERT_EQ(records.size(), 1u);
  const PlainRecord& r = records[0];
  EXPECT_EQ(r.key, "order-42");
  EXPECT_EQ(r.offset, report->offset);

  rapidjson::Document value;
  ASSERT_FALSE(value.Parse(r.value.data(), r.value.size()).HasParseError()) << r.value;
  ASSERT_TRUE(value.IsObject());
  std::vector<std::string> members;
  for (auto it = value.MemberBegin(); it != value.MemberEnd(); ++it) members.emplace_back(it->name.GetString());
  EXPECT_THAT(members, ElementsAre("id", "type", "timestamp", "payload")) << r.value;
  EXPECT_STREQ(value["type"].GetString(), "order.placed");
  EXPECT_EQ(value["payload"]["order_id"].GetString(), std::string("order-42"));
  EXPECT_EQ(value["payload"]["seq"].GetInt64(), 3);
  const std::string timestamp = value["timestamp"].GetString();
  EXPECT_TRUE(timestamp.find('+') != std::string::npos || timestamp.back() == 'Z') << timestamp;

  std::vector<std::string> names;
  for (const auto& [name, v] : r.headers) names.push_back(name);
  EXPECT_THAT(names, ElementsAre("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type",
                                 "ce_partitionkey", "ce_traceparent", "traceparent", "correlation-id"));
  EXPECT_EQ(FindHeader(r.headers, "ce_specversion"), "1.0");
  EXPECT_EQ(FindHeader(r.headers, "ce_id"), std::string(value["id"].GetString()));
  EXPECT_EQ(FindHeader(r.headers, "ce_source"), "order-service");
  EXPECT_EQ(FindHeader(r.headers, "ce_type"), "order.placed");
  EXPECT_EQ(FindHeader(r.headers, "content-type"), "application/json");
  EXPECT_EQ(FindHeader(r.headers, "correlation-id"), "req-7");
}

TEST(KafkaTransportRealBroker, TypedHandlerReadsABareJsonEnvelopeFromAnotherProducer) {
  const std::string topic = UniqueName("go-service");
  const std::string go_record =
      R"({"id":"0190b3f4-7c1e-7000-8000-000000000001","type":"order.placed",)"
      R"("timestamp":"2026-11-27T07:01:29.123+00:00","payload":{"order_id":"go-1","seq":5}})";
  ASSERT_TRUE(test::ProduceWithPlainProducer(test::RealBrokers(), topic, "go-1", go_record));

  std::unique_ptr<Bus> bus = MakeBus("go-reader");
  Mutex mu;
  std::vector<std::pair<OrderPlaced, Message>> got;
  SubscribeOptions sub;
  sub.topics = {topic};
  ASSERT_THAT(bus->Subscribe<OrderPlaced>(
                  UniqueName("go-readers"),
                  [&](const OrderPlaced& e, const Message& m) {
                    MutexLock lock(mu);
                    got.emplace_back(e, m);
                    return absl::OkStatus();
                  },
                  sub),
              IsOk());
  ASSERT_THAT(bus->Start(), IsOk());
  ASSERT_TRUE(WaitUntil([&] {
    MutexLock lock(mu);
    return !got.empty();
  }));
  EXPECT_THAT(bus->Stop(absl::Seconds(10)), IsOk());
  MutexLock lock(mu);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first.order_id, "go-1");
  EXPECT_EQ(got[0].first.seq, 5);
  EXPECT_EQ(got[0].second.envelope.id, "0190b3f4-7c1e-7000-8000-000000000001");
  EXPECT_EQ(got[0].second.envelope.key, "go-1");
  EXPECT_EQ(got[0].second.envelope.time, absl::FromUnixMillis(1795762889123));
}

TEST(KafkaTransportRealBroker, ANewMemberOfTheGroupResumesAfterTheCommittedOffset) {
  const std::string topic = UniqueName("resume");
  const std::string group = UniqueName("resume-readers");
  std::unique_ptr<Bus> publisher = MakeBus("resume-publisher");
  EnvelopeOptions eo;
  eo.topic = topic;
  for (int i = 0; i < 10; ++i) ASSERT_THAT(publisher->Publish(OrderPlaced{"k", i}, eo), IsOk());
  SubscribeOptions sub;
  sub.topics = {topic};
  for (int round = 0; round < 2; ++round) {
    Mutex mu;
    std::vector<Message> got;
    std::unique_ptr<Bus> bus = MakeBus("resume-reader");
    ASSERT_THAT(bus->Subscribe<OrderPlaced>(
                    group,
                    [&](const OrderPlaced& e, const Message& m) {
                      MutexLock lock(mu);
                      got.push_back(m);
                      return absl::OkStatus();
                    },
                    sub),
                IsOk());
    ASSERT_THAT(bus->Start(), IsOk());
    if (round == 1) {
      ASSERT_THAT(publisher->Publish(OrderPlaced{"k", 10}, eo), IsOk());
    }
    const size_t want = round == 0 ? 10 : 1;
    ASSERT_TRUE(WaitUntil([&] {
      MutexLock lock(mu);
      return got.size() >= want;
    }));
    EXPECT_THAT(bus->Stop(absl::Seconds(10)), IsOk());
    KafkaTransportStats stats = bus->transport<KafkaTransport>().Stats();
    EXPECT_EQ(stats.commit_failures, 0) << stats.last_error;
    MutexLock lock(mu);
    ASSERT_EQ(got.size(), want);
    EXPECT_EQ(got.front().offset, round == 0 ? 0 : 10);
  }
}

TEST(KafkaTransportRealBroker, NothingLostAndPerKeyOrderKeptAcrossABrokerRestart) {
  const char* ctl = std::getenv("HERALD_TEST_KAFKA_CTL");
  ASSERT_TRUE(ctl != nullptr && *ctl != '\0')
      << "HERALD_TEST_KAFKA_CTL is not set: it must name a command taking stop|start that bounces the broker "
         "of HERALD_TEST_KAFKA_BROKERS (scripts/kafka-ctl.sh)";
  constexpr int kKeys = 8;
  constexpr int kEvents = 400;
  const std::string topic = UniqueName("restart");
  std::unique_ptr<Bus> bus = MakeBus("restart");
  Mutex mu;
  std::vector<OrderPlaced> received;
  std::set<int64_t> distinct;
  SubscribeOptions sub;
  sub.topics = {topic};
  ASSERT_THAT(bus->Subscribe<OrderPlaced>(
                  UniqueName("restart-readers"),
                  [&](const OrderPlaced& e) {
                    MutexLock lock(mu);
                    received.push_back(e);
                    distinct.insert(e.seq);
                    return absl::OkStatus();
                  },
                  sub),
              IsOk());
  ASSERT_THAT(bus->Start(), IsOk());
  WaitAssigned(*bus);

  std::atomic<int> ok{0}, failed{0};
  EnvelopeOptions eo;
  eo.topic = topic;
  auto publish = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      bus->PublishAsync(
          OrderPlaced{herald::StrCat("key-", i % kKeys), i}, eo,
          [&](absl::StatusOr<DeliveryReport> r) { (r.ok() ? ok : failed).fetch_add(1); });
      absl::SleepFor(absl::Milliseconds(2));  // a stream, not a burst
    }
  };
  publish(0, kEvents / 2);
  ASSERT_TRUE(WaitUntil([&] {
    MutexLock lock(mu);
    return distinct.size() >= kEvents / 4;
  }));
  ASSERT_EQ(std::system(herald::StrCat(ctl, " stop").c_str()), 0);
  // Published while the broker is down: these wait in the producer.
  std::thread during([&] { publish(kEvents / 2, kEvents * 3 / 4); });
  during.join();
  ASSERT_EQ(std::system(herald::StrCat(ctl, " start").c_str()), 0);
  publish(kEvents * 3 / 4, kEvents);

  ASSERT_TRUE(WaitUntil([&] { return ok.load() + failed.load() == kEvents; }, absl::Seconds(150)))
      << ok.load() << " ok, " << failed.load() << " failed";
  EXPECT_EQ(failed.load(), 0);
  ASSERT_TRUE(WaitUntil(
      [&] {
        MutexLock lock(mu);
        return static_cast<int>(distinct.size()) >= kEvents;
      },
      absl::Seconds(150)));
  EXPECT_THAT(bus->Stop(absl::Seconds(10)), IsOk());
  KafkaTransportStats stats = bus->transport<KafkaTransport>().Stats();
  std::cerr << "[ info ] commits " << stats.commits << ", commit failures " << stats.commit_failures
            << ", rebalances " << stats.rebalances << ", last error: " << stats.last_error << "\n";
  MutexLock lock(mu);
  // Per key, first deliveries come in publish order (redeliveries may repeat).
  std::map<std::string, int64_t> last_first_seen;
  std::set<int64_t> seen;
  for (const OrderPlaced& e : received) {
    if (!seen.insert(e.seq).second) continue;
    auto it = last_first_seen.find(e.order_id);
    if (it != last_first_seen.end()) {
      EXPECT_GT(e.seq, it->second) << e.order_id;
    }
    last_first_seen[e.order_id] = e.seq;
  }
  EXPECT_EQ(static_cast<int>(seen.size()), kEvents);
  std::cerr << "[ info ] received " << received.size() << " deliveries of " << kEvents << " events\n";
}

}  // namespace
}  // namespace herald::kafka
