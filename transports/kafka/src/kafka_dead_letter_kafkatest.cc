// Dead letters on a real broker (HERALD_TEST_KAFKA_BROKERS; label kafka):
// a record near the size limit whose dead letter is larger than it, a dead
// letter larger than its topic accepts, and herald reading its own dead
// letters (raw bytes, empty values, every header) without dead-lettering
// them again.
#include <librdkafka/rdkafka.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/core/delivery_policy.h"
#include "herald/core/mutex.h"
#include "herald/kafka/kafka_transport.h"
#include "herald/testing/status_matchers.h"
#include "kafka_real_broker.h"
#include "kafka_test_support.h"
#include "rdkafka_handles.h"

namespace herald::kafka {
namespace {

using ::herald::kafka::test::OrderPlaced;
using ::herald::kafka::test::PlainRecord;
using ::herald::kafka::test::UniqueName;
using ::herald::kafka::test::WaitUntil;
using ::herald::testing::IsOk;
using ::testing::HasSubstr;

// Partitions of a topic the test broker creates on first use (num.partitions
// in scripts/lib/kafka.sh); dead-letter topics are created so.
constexpr int kAutoCreatedPartitions = 4;

const auto* const kRequireBroker = ::testing::AddGlobalTestEnvironment(new test::RequireRealBroker);

std::unique_ptr<Bus> MakeBus(const std::string& client_id) {
  absl::StatusOr<std::unique_ptr<KafkaTransport>> transport =
      KafkaTransport::Create(test::RealBrokerOptions(client_id));
  EXPECT_THAT(transport, IsOk());
  return transport.ok() ? std::make_unique<Bus>(*std::move(transport)) : nullptr;
}

// Produces one record as another producer would: any value (an empty value
// stays a non-null empty value), any headers. The producer's
// message.max.bytes is librdkafka's default (1000000).
void ProducePlain(const std::string& topic, std::string_view key, std::string_view value, const Headers& headers) {
  char errstr[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", test::RealBrokers().c_str(), errstr, sizeof(errstr));
  HandlePtr rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)));
  ASSERT_NE(rk, nullptr) << errstr;
  rd_kafka_headers_t* hdrs = rd_kafka_headers_new(headers.size());
  for (const auto& [name, v] : headers) {
    rd_kafka_header_add(hdrs, name.data(), static_cast<ssize_t>(name.size()), v.data(), static_cast<ssize_t>(v.size()));
  }
  static const char kEmpty[1] = {0};
  rd_kafka_resp_err_t err = rd_kafka_producev(
      rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
      RD_KAFKA_V_VALUE(value.empty() ? const_cast<char*>(kEmpty) : const_cast<char*>(value.data()), value.size()),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) rd_kafka_headers_destroy(hdrs);
  ASSERT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(err);
  ASSERT_EQ(rd_kafka_flush(rk.get(), 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

// Creates `topic` (one partition) with topic-level `config`, through the
// admin API.
void CreateTopic(const std::string& topic, const std::vector<std::pair<std::string, std::string>>& config) {
  char errstr[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", test::RealBrokers().c_str(), errstr, sizeof(errstr));
  HandlePtr rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)));
  ASSERT_NE(rk, nullptr) << errstr;
  rd_kafka_NewTopic_t* new_topic = rd_kafka_NewTopic_new(topic.c_str(), 1, 1, errstr, sizeof(errstr));
  ASSERT_NE(new_topic, nullptr) << errstr;
  for (const auto& [name, value] : config) {
    ASSERT_EQ(rd_kafka_NewTopic_set_config(new_topic, name.c_str(), value.c_str()), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk.get());
  rd_kafka_CreateTopics(rk.get(), &new_topic, 1, nullptr, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, 30000);
  ASSERT_NE(event, nullptr) << "CreateTopics timed out";
  const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(event);
  ASSERT_NE(result, nullptr) << rd_kafka_event_error_string(event);
  size_t count = 0;
  const rd_kafka_topic_result_t** topics = rd_kafka_CreateTopics_result_topics(result, &count);
  ASSERT_EQ(count, 1u);
  EXPECT_EQ(rd_kafka_topic_result_error(topics[0]), RD_KAFKA_RESP_ERR_NO_ERROR)
      << rd_kafka_topic_result_error_string(topics[0]);
  rd_kafka_event_destroy(event);
  rd_kafka_queue_destroy(queue);
  rd_kafka_NewTopic_destroy(new_topic);
}

// A typed subscription on `topic` that records the good events and fails
// permanently on those with seq < 0.
struct Reader {
  Mutex mu;
  std::vector<OrderPlaced> handled;

  absl::Status Subscribe(Bus& bus, const std::string& topic) {
    SubscribeOptions sub;
    sub.topics = {topic};
    return bus.Subscribe<OrderPlaced>(
        UniqueName("readers"),
        [this](const OrderPlaced& e) {
          if (e.seq < 0) return absl::InvalidArgumentError("negative seq is refused");
          MutexLock lock(mu);
          handled.push_back(e);
          return absl::OkStatus();
        },
        sub);
  }
  bool Handled(int64_t seq) {
    MutexLock lock(mu);
    for (const OrderPlaced& e : handled) {
      if (e.seq == seq) return true;
    }
    return false;
  }
};

TEST(KafkaDeadLetters, RecordNearTheSizeLimitIsDeadLetteredWholeAndThePartitionMovesOn) {
  const std::string topic = UniqueName("near-limit");
  // Undecodable, and as large as a producer with librdkafka's default
  // message.max.bytes (1000000) sends: its dead letter, with herald's
  // headers added, is over that default.
  const std::string value = "[" + std::string(999'700, ' ');
  CreateTopic(topic, {});
  ProducePlain(topic, "big", value, {{"x-app", "kept"}});
  std::unique_ptr<Bus> publisher = MakeBus("near-limit-publisher");
  EnvelopeOptions eo;
  eo.topic = topic;
  ASSERT_THAT(publisher->Publish(OrderPlaced{"big", 1}, eo), IsOk());  // same key: the same partition, after it

  std::unique_ptr<Bus> bus = MakeBus("near-limit-reader");
  Reader reader;
  ASSERT_THAT(reader.Subscribe(*bus, topic), IsOk());
  ASSERT_THAT(bus->Start(), IsOk());
  ASSERT_TRUE(WaitUntil([&] { return reader.Handled(1); }, absl::Seconds(90)))
      << "the partition is stuck behind the large record; last error: "
      << bus->transport<KafkaTransport>().Stats().last_error;
  EXPECT_THAT(bus->Stop(absl::Seconds(10)), IsOk());
  std::vector<Bus::SubscriptionStats> stats = bus->Stats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].undecodable, 1);
  EXPECT_EQ(stats[0].dead_letters_cut, 0);

  std::vector<PlainRecord> dead =
      test::ReadWithPlainConsumer(test::RealBrokers(), topic + ".dlq", kAutoCreatedPartitions, 1);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].value.size(), value.size());
  EXPECT_TRUE(dead[0].value == value);
  EXPECT_EQ(dead[0].key, "big");
  EXPECT_EQ(FindHeader(dead[0].headers, "x-app"), "kept");
  EXPECT_THAT(std::string(FindHeader(dead[0].headers, kDlqReasonHeader).value_or("")), HasSubstr("undecodable"));
  EXPECT_EQ(FindHeader(dead[0].headers, kDlqTopicHeader), topic);
  EXPECT_EQ(FindHeader(dead[0].headers, kDlqPartitionHeader), "0");
  EXPECT_EQ(FindHeader(dead[0].headers, kDlqOffsetHeader), "0");
  EXPECT_FALSE(FindHeader(dead[0].headers, kDlqDroppedHeader).has_value());
}

TEST(KafkaDeadLetters, DeadLetterOverTheDeadLetterTopicsLimitIsWrittenWithoutItsValue) {
  const std::string topic = UniqueName("over-dlq-limit");
  // The dead-letter topic accepts less than the source topic: the broker
  // refuses the whole dead letter (MESSAGE_TOO_LARGE at delivery).
  CreateTopic(topic, {});
  CreateTopic(topic + ".dlq", {{"max.message.bytes", "100000"}});
  const std::string value = "{" + std::string(300'000, 'x');
  ProducePlain(topic, "k", value, {{"x-app", "kept"}, {"ce_subject", "s-1"}});
  std::unique_ptr<Bus> publisher = MakeBus("over-dlq-limit-publisher");
  EnvelopeOptions eo;
  eo.topic = topic;
  ASSERT_THAT(publisher->Publish(OrderPlaced{"k", 2}, eo), IsOk());

  std::unique_ptr<Bus> bus = MakeBus("over-dlq-limit-reader");
  Reader reader;
  ASSERT_THAT(reader.Subscribe(*bus, topic), IsOk());
  ASSERT_THAT(bus->Start(), IsOk());
  ASSERT_TRUE(WaitUntil([&] { return reader.Handled(2); }, absl::Seconds(90)))
      << "the partition is stuck behind the record; last error: "
      << bus->transport<KafkaTransport>().Stats().last_error;
  EXPECT_THAT(bus->Stop(absl::Seconds(10)), IsOk());
  std::vector<Bus::SubscriptionStats> stats = bus->Stats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].dead_lettered, 1);
  EXPECT_EQ(stats[0].dead_letters_cut, 1);

  std::vector<PlainRecord> dead = test::ReadWithPlainConsumer(test::RealBrokers(), topic + ".dlq", 1, 1);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].value, "");
  EXPECT_EQ(dead[0].key, "k");
  EXPECT_EQ(FindHeader(dead[0].headers, "x-app"), "kept");
  EXPECT_EQ(FindHeader(dead[0].headers, "ce_subject"), "s-1");
  EXPECT_EQ(FindHeader(dead[0].headers, kDlqDroppedHeader), "value");
  EXPECT_EQ(FindHeader(dead[0].headers, kDlqValueSizeHeader), herald::StrCat(value.size()));
  EXPECT_THAT(std::string(FindHeader(dead[0].headers, kDlqReasonHeader).value_or("")), HasSubstr("undecodable"));
  EXPECT_EQ(FindHeader(dead[0].headers, kDlqTopicHeader), topic);
  EXPECT_EQ(FindHeader(dead[0].headers, kDlqOffsetHeader), "0");
}

TEST(KafkaDeadLetters, HeraldReadsItsOwnDeadLettersAsTheyAreAndNeverDeadLettersThem) {
  const std::string topic = UniqueName("own-dlq");
  const Headers app_headers = {{"x-app", "kept"}, {"ce_tenant", "acme"}};
  CreateTopic(topic, {});
  // 0: an empty value (undecodable).
  ProducePlain(topic, "k", "", app_headers);
  // 1: an event the handler refuses for good, with CloudEvents attributes
  // and extensions herald's envelope does not model.
  std::unique_ptr<Bus> publisher = MakeBus("own-dlq-publisher");
  EnvelopeOptions eo;
  eo.topic = topic;
  eo.headers = {{"x-app", "kept"}};
  ASSERT_THAT(publisher->Publish(OrderPlaced{"k", 0}, eo), IsOk());  // 1: a good one first, to learn the format
  {
    std::vector<PlainRecord> written = test::ReadWithPlainConsumer(test::RealBrokers(), topic, 1, 2);
    ASSERT_EQ(written.size(), 2u);
    EXPECT_FALSE(written[0].value_is_null);
    Headers refused_headers = written[1].headers;
    refused_headers.emplace_back("ce_subject", "orders/k");
    refused_headers.emplace_back("ce_dataschema", "https://schemas.example/order/1");
    refused_headers.emplace_back("ce_tenant", "acme");
    std::string refused = written[1].value;
    const size_t seq = refused.find("\"seq\":0");
    ASSERT_NE(seq, std::string::npos) << refused;
    refused.replace(seq, 7, "\"seq\":-1");
    ProducePlain(topic, "k", refused, refused_headers);  // 2: refused by the handler
  }
  ASSERT_THAT(publisher->Publish(OrderPlaced{"k", 3}, eo), IsOk());  // 3: good

  std::unique_ptr<Bus> bus = MakeBus("own-dlq-reader");
  Reader reader;
  ASSERT_THAT(reader.Subscribe(*bus, topic), IsOk());
  ASSERT_THAT(bus->Start(), IsOk());
  ASSERT_TRUE(WaitUntil([&] { return reader.Handled(3); }, absl::Seconds(90)));
  EXPECT_THAT(bus->Stop(absl::Seconds(10)), IsOk());

  // As a plain consumer sees the dead letters: the empty value is empty, not
  // a null tombstone; every header of the refused event is there.
  std::vector<PlainRecord> raw =
      test::ReadWithPlainConsumer(test::RealBrokers(), topic + ".dlq", kAutoCreatedPartitions, 2);
  ASSERT_EQ(raw.size(), 2u);
  EXPECT_FALSE(raw[0].value_is_null) << "an empty value became a tombstone";
  EXPECT_EQ(raw[0].value, "");
  EXPECT_EQ(FindHeader(raw[0].headers, "x-app"), "kept");
  EXPECT_EQ(FindHeader(raw[0].headers, "ce_tenant"), "acme");
  for (std::string_view name : {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type", "x-app",
                                "ce_subject", "ce_dataschema", "ce_tenant"}) {
    EXPECT_TRUE(FindHeader(raw[1].headers, name).has_value()) << name << " was lost";
  }
  EXPECT_EQ(FindHeader(raw[1].headers, "ce_subject"), "orders/k");
  EXPECT_EQ(FindHeader(raw[1].headers, "ce_dataschema"), "https://schemas.example/order/1");
  EXPECT_EQ(FindHeader(raw[1].headers, kDlqReasonHeader), "negative seq is refused");

  // A herald subscriber of the dead-letter topic gets both as they are.
  std::unique_ptr<Bus> dlq_bus = MakeBus("own-dlq-dlq-reader");
  Mutex mu;
  std::vector<DeadLetter> letters;
  ASSERT_THAT(dlq_bus->SubscribeDeadLetters({.group = UniqueName("dlq-readers"), .topics = {topic + ".dlq"}},
                                            [&](const DeadLetter& d) {
                                              MutexLock lock(mu);
                                              letters.push_back(d);
                                              return absl::OkStatus();
                                            }),
              IsOk());
  ASSERT_THAT(dlq_bus->Start(), IsOk());
  ASSERT_TRUE(WaitUntil([&] {
    MutexLock lock(mu);
    return letters.size() >= 2;
  }));
  EXPECT_THAT(dlq_bus->Stop(absl::Seconds(10)), IsOk());
  std::vector<Bus::SubscriptionStats> stats = dlq_bus->Stats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].handled, 2);
  EXPECT_EQ(stats[0].dead_lettered, 0);
  EXPECT_EQ(dlq_bus->transport<KafkaTransport>().Stats().published, 0) << "it wrote to " << topic << ".dlq.dlq";

  MutexLock lock(mu);
  ASSERT_EQ(letters.size(), 2u);
  const DeadLetter& empty = letters[0];
  EXPECT_EQ(empty.topic, topic + ".dlq");
  EXPECT_EQ(empty.original_topic, topic);
  EXPECT_EQ(empty.original_partition, 0);
  EXPECT_EQ(empty.original_offset, 0);
  EXPECT_EQ(empty.code, absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.reason, HasSubstr("undecodable"));
  EXPECT_EQ(empty.attempts, 1);
  EXPECT_EQ(empty.record.value, "");
  EXPECT_EQ(empty.OriginalHeaders(), app_headers);
  EXPECT_THAT(empty.Decode(), ::herald::testing::StatusIs(absl::StatusCode::kInvalidArgument));

  const DeadLetter& refused = letters[1];
  EXPECT_EQ(refused.original_offset, 2);
  EXPECT_EQ(refused.reason, "negative seq is refused");
  EXPECT_EQ(FindHeader(refused.OriginalHeaders(), "ce_subject"), "orders/k");
  absl::StatusOr<OrderPlaced> order = refused.As<OrderPlaced>();
  ASSERT_THAT(order, IsOk());
  EXPECT_EQ(order->order_id, "k");
  EXPECT_EQ(order->seq, -1);
}

}  // namespace
}  // namespace herald::kafka
