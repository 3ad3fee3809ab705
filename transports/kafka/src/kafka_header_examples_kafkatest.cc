// The code example of herald/kafka/kafka_transport.h, compiled and run
// against the real broker (label kafka; see scripts/check-header-examples.py
// and core/src/core_header_examples_test.cc).
#include <atomic>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/core/status.h"
#include "herald/kafka/kafka_transport.h"
#include "herald/kafka/topic_reader.h"
#include "herald/testing/eventually.h"
#include "herald/testing/recording_handler.h"
#include "herald/testing/sample_events.h"
#include "herald/testing/status_matchers.h"
#include "kafka_real_broker.h"
#include "kafka_test_support.h"

namespace snippets {

// The example's event, on a topic of its own (the group is the example's
// "event-reader", so no other test may read this topic with it).
struct CustomerEvent {
  std::string customer_id;
  static constexpr std::string_view kType = "customer.created";
  static constexpr std::string_view kTopic = "header-example-customers";
  std::string_view key() const { return customer_id; }
  static constexpr auto JsonFields() {
    return herald::json::Fields(herald::json::Field("customer_id", &CustomerEvent::customer_id));
  }
};

absl::StatusOr<herald::kafka::KafkaTransportStats> KafkaExample(
    const std::string& brokers, herald::testing::RecordingHandler<CustomerEvent> handler) {
  // One event for the example's consumer to find (a new group reads from
  // the earliest record), published by another client.
  {
    herald::kafka::KafkaTransportOptions producer_options;
    producer_options.brokers = brokers;
    HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::kafka::KafkaTransport> producer,
                            herald::kafka::KafkaTransport::Create(producer_options));
    herald::Bus producer_bus(std::move(producer));
    HERALD_RETURN_IF_ERROR(producer_bus.Publish(CustomerEvent{.customer_id = "cust-1"}).status());
  }
  // Here the service runs until the handler has seen it.
  auto WaitForShutdownSignal = [&] { EXPECT_TRUE(handler.WaitForCount(1, absl::Seconds(60))); };

  herald::kafka::KafkaTransportOptions options;
  options.brokers = brokers;  // "host1:9092,host2:9092"
  options.client_id = "customer-service";
  options.properties["socket.keepalive.enable"] = "true";  // anything librdkafka takes
  absl::StatusOr<std::unique_ptr<herald::kafka::KafkaTransport>> kafka = herald::kafka::KafkaTransport::Create(options);
  if (!kafka.ok()) return kafka.status();  // a bad option is a clear error here
  herald::Bus bus(*std::move(kafka), {.source = "customer-service"});
  HERALD_RETURN_IF_ERROR(bus.Subscribe<CustomerEvent>("event-reader", handler));
  HERALD_RETURN_IF_ERROR(bus.Start());
  WaitForShutdownSignal();  // the service runs
  herald::kafka::KafkaTransportStats stats = bus.transport<herald::kafka::KafkaTransport>().Stats();
  HERALD_RETURN_IF_ERROR(bus.Stop(absl::Seconds(10)));
  return stats;
}

// topic_reader.h: prints what arrives on customer-events until one record
// came. Another thread publishes one every second until then (the reader
// starts at the end, so a record published before it is open is not seen).
absl::StatusOr<int> ReaderExample(const std::string& brokers) {
  std::atomic<int> printed{0};
  std::atomic<bool> running{true};
  auto Print = [&](const herald::kafka::TopicRecord& r) {
    std::cout << r.topic << "/" << r.partition << "@" << r.offset << " " << r.record.value << "\n";
    ++printed;
    running = false;
  };
  {
    // The topic exists before the reader opens (Open refuses a missing one).
    herald::kafka::KafkaTransportOptions producer_options;
    producer_options.brokers = brokers;
    HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::kafka::KafkaTransport> producer,
                            herald::kafka::KafkaTransport::Create(producer_options));
    herald::Bus bus(std::move(producer));
    HERALD_RETURN_IF_ERROR(bus.Publish(herald::testing::CustomerEvent{.customer_id = "cust-0"}).status());
  }
  std::thread publisher([&brokers, &running] {
    herald::kafka::KafkaTransportOptions producer_options;
    producer_options.brokers = brokers;
    auto producer = herald::kafka::KafkaTransport::Create(producer_options);
    if (!producer.ok()) return;
    herald::Bus bus(*std::move(producer));
    for (int i = 0; i < 60 && running; ++i) {
      absl::SleepFor(absl::Seconds(1));
      EXPECT_THAT(bus.Publish(herald::testing::CustomerEvent{.customer_id = "cust-7"}), herald::testing::IsOk());
    }
  });
  auto join = absl::MakeCleanup([&] { publisher.join(); });

  herald::kafka::KafkaTransportOptions connection;
  connection.brokers = brokers;  // "host1:9092,host2:9092"
  herald::kafka::TopicReaderOptions options;
  options.topics = {"customer-events"};
  HERALD_ASSIGN_OR_RETURN(auto reader, herald::kafka::KafkaTopicReader::Open(connection, options));
  while (running) {
    HERALD_ASSIGN_OR_RETURN(std::optional<herald::kafka::TopicRecord> r, reader->Next(absl::Milliseconds(200)));
    if (r) Print(*r);
  }
  return printed.load();
}

namespace {

const auto* const kRequireBroker = ::testing::AddGlobalTestEnvironment(new herald::kafka::test::RequireRealBroker);

TEST(KafkaHeaderExamples, CreateSubscribeStartAndStats) {
  herald::testing::RecordingHandler<CustomerEvent> seen;
  absl::StatusOr<herald::kafka::KafkaTransportStats> stats = KafkaExample(herald::kafka::test::RealBrokers(), seen);
  ASSERT_THAT(stats, herald::testing::IsOk());
  EXPECT_EQ(stats->consumers, 1);
  // At least the one published here (an earlier run against the same broker
  // may have left one unread).
  EXPECT_GE(seen.count(), 1);
}

TEST(KafkaHeaderExamples, TopicReaderStartsAtTheEnd) {
  EXPECT_THAT(ReaderExample(herald::kafka::test::RealBrokers()), herald::testing::IsOkAndHolds(1));
}

TEST(KafkaHeaderExamples, ABadOptionIsAClearError) {
  herald::kafka::KafkaTransportOptions options;
  options.brokers = herald::kafka::test::RealBrokers();
  options.properties["no.such.property"] = "1";
  EXPECT_THAT(herald::kafka::KafkaTransport::Create(options),
              herald::testing::StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("no.such.property")));
}

}  // namespace
}  // namespace snippets
