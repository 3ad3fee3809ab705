// KafkaTopicReader on librdkafka's mock cluster: where reading starts, what
// Open reports for a missing topic, a bad name or no broker. (That reading
// leaves no group and no commit behind is checked against the real broker,
// tools/herald/tail_kafkatest.cc: the mock cluster cannot list groups.)
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/kafka/topic_reader.h"
#include "herald/testing/status_matchers.h"
#include "kafka_test_support.h"

namespace herald::kafka {
namespace {

using ::herald::kafka::test::MockCluster;
using ::herald::kafka::test::ProduceWithPlainProducer;
using ::herald::kafka::test::UniqueName;
using ::herald::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

KafkaTransportOptions Connection(const std::string& brokers) {
  KafkaTransportOptions options;
  options.brokers = brokers;
  options.client_id = "herald-reader-test";
  options.properties["log_level"] = "2";  // some tests provoke connection errors on purpose
  return options;
}

// Values read until `count` arrived or `timeout` passed.
std::vector<std::string> ReadValues(KafkaTopicReader& reader, size_t count, absl::Duration timeout) {
  std::vector<std::string> values;
  const absl::Time deadline = absl::Now() + timeout;
  while (values.size() < count && absl::Now() < deadline) {
    absl::StatusOr<std::optional<TopicRecord>> next = reader.Next(absl::Milliseconds(100));
    if (next.ok() && next->has_value()) values.push_back((*next)->record.value);
  }
  return values;
}

TEST(KafkaTopicReaderMock, StartsAtTheEndByDefault) {
  MockCluster cluster;
  const std::string topic = UniqueName("reader-end");
  cluster.CreateTopic(topic, 2);
  ASSERT_TRUE(ProduceWithPlainProducer(cluster.bootstraps(), topic, "a", "old-1"));
  ASSERT_TRUE(ProduceWithPlainProducer(cluster.bootstraps(), topic, "b", "old-2"));
  TopicReaderOptions options;
  options.topics = {topic};
  absl::StatusOr<std::unique_ptr<KafkaTopicReader>> reader =
      KafkaTopicReader::Open(Connection(cluster.bootstraps()), options);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->partition_count(), 2);
  ASSERT_TRUE(ProduceWithPlainProducer(cluster.bootstraps(), topic, "a", "new-1"));
  ASSERT_TRUE(ProduceWithPlainProducer(cluster.bootstraps(), topic, "b", "new-2"));
  // Whatever else might come would come within these 3 s.
  EXPECT_THAT(ReadValues(**reader, 3, absl::Seconds(3)), UnorderedElementsAre("new-1", "new-2"));
}

TEST(KafkaTopicReaderMock, FromTheBeginningReadsWhatIsThere) {
  MockCluster cluster;
  const std::string topic = UniqueName("reader-begin");
  cluster.CreateTopic(topic, 1);
  ASSERT_TRUE(ProduceWithPlainProducer(cluster.bootstraps(), topic, "a", "old-1"));
  ASSERT_TRUE(ProduceWithPlainProducer(cluster.bootstraps(), topic, "a", "old-2"));
  TopicReaderOptions options;
  options.topics = {topic};
  options.start = TopicReaderOptions::Start::kBeginning;
  absl::StatusOr<std::unique_ptr<KafkaTopicReader>> reader =
      KafkaTopicReader::Open(Connection(cluster.bootstraps()), options);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_THAT(ReadValues(**reader, 2, absl::Seconds(10)), ElementsAre("old-1", "old-2"));
}

TEST(KafkaTopicReaderMock, MissingTopicIsNotFound) {
  MockCluster cluster;
  TopicReaderOptions options;
  options.topics = {UniqueName("reader-missing")};
  EXPECT_THAT(KafkaTopicReader::Open(Connection(cluster.bootstraps()), options).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("does not exist")));
}

TEST(KafkaTopicReaderMock, InvalidTopicNameIsInvalidArgument) {
  MockCluster cluster;
  TopicReaderOptions options;
  options.topics = {"no such/topic"};
  EXPECT_THAT(KafkaTopicReader::Open(Connection(cluster.bootstraps()), options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(KafkaTopicReaderMock, NoBrokerIsUnavailableWithinTheTimeout) {
  // A loopback port that was free a moment ago.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  const std::string brokers = herald::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  TopicReaderOptions options;
  options.topics = {"customer-events"};
  options.connect_timeout = absl::Seconds(1);
  const absl::Time start = absl::Now();
  EXPECT_THAT(KafkaTopicReader::Open(Connection(brokers), options).status(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("answered within 1s")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
}

}  // namespace
}  // namespace herald::kafka
