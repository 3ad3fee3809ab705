// herald/testing/transport_conformance.h: the conformance suite every
// herald::Transport must pass, ours (in-process, Kafka, the fake) or a user's.
//
// Each test drives the transport through a real herald::Bus, as applications
// do (a few call the Transport interface directly, where that is what they
// check). The suite is a gtest value-parameterised fixture: instantiate it
// with one TransportFactory per configuration, in exactly ONE .cc file of a
// test binary (the tests are defined in this header). The in-process
// transport's instantiation (transports/inmemory/src/inmemory_conformance_test.cc):
//
//   #include "herald/testing/transport_conformance.h"
//
//   TransportFactory InMemoryFactory(bool deterministic) {
//     // All transports of one test must see the same topics: one broker.
//     // Kafka's default record size limit, so that the suite can make a
//     // publish fail.
//     static auto* const broker =
//         new std::shared_ptr<InMemoryBroker>(*InMemoryBroker::Create({.max_record_bytes = 1048588}));
//     TransportFactory factory;
//     factory.name = deterministic ? "InMemoryDeterministic" : "InMemoryThreaded";
//     factory.make = [deterministic](const std::string&) -> std::unique_ptr<Transport> {
//       InMemoryTransportOptions options;
//       options.broker = *broker;
//       options.deterministic = deterministic;
//       return std::make_unique<InMemoryTransport>(options);
//     };
//     if (deterministic) {
//       factory.run_pending = [](Transport& transport) { static_cast<InMemoryTransport&>(transport).RunPending(); };
//     }
//     factory.delivery_timeout = absl::Seconds(30);
//     factory.max_record_bytes = 1048588;
//     return factory;
//   }
//
//   INSTANTIATE_TEST_SUITE_P(InMemory, TransportConformanceTest,
//                            ::testing::Values(InMemoryFactory(false), InMemoryFactory(true)),
//                            herald::testing::TransportFactoryName);
//
// What it assumes is Kafka's contract and no more: topics are created on
// first use; each consumer group receives every event at least once; order is
// kept per key; a new consumer group reads from the earliest retained record
// (auto.offset.reset=earliest); a group's committed offsets outlive the
// transport that committed them, so a new one joining the group resumes
// where it stopped. Every test uses topic and group names made unique by a
// per-test prefix, subscribes and starts before it publishes, and waits
// generously (TransportFactory::delivery_timeout) for deliveries.
#ifndef HERALD_TESTING_TRANSPORT_CONFORMANCE_H_
#define HERALD_TESTING_TRANSPORT_CONFORMANCE_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/core/dispatcher.h"
#include "herald/core/transport.h"
#include "herald/core/envelope.h"
#include "herald/core/event.h"
#include "herald/core/json.h"
#include "herald/core/message.h"
#include "herald/core/mutex.h"
#include "herald/core/uuid.h"
#include "herald/testing/status_matchers.h"

namespace herald::testing {

// How the suite makes and drives the buses under test.
struct TransportFactory {
  // Shown in test names; letters, digits and '_' only.
  std::string name;
  // A new transport. Every transport made during one test (same
  // `unique_prefix`) must share topics, groups and committed offsets, as
  // clients of one Kafka cluster do. The prefix may be used to tag client
  // ids; the suite already prefixes every topic and group name with it.
  std::function<std::unique_ptr<Transport>(const std::string& unique_prefix)> make;
  // For transports that deliver only when told (deterministic mode):
  // delivers what is pending on the calling thread. The suite calls it on
  // every transport it made while it waits. Empty for transports with their
  // own threads.
  std::function<void(Transport&)> run_pending;
  // Called after Start() of a subscribing transport, before the test
  // publishes: returns when it has its partitions assigned. Default: nothing.
  std::function<void(Transport&)> wait_until_assigned;
  // How long a test waits for deliveries. Default: 60 s.
  absl::Duration delivery_timeout = absl::Seconds(60);
  // Initial retry backoff of the redelivery tests. Default: 20 ms.
  absl::Duration retry_backoff = absl::Milliseconds(20);
  // The transport's record size limit in bytes (Kafka: max_message_bytes),
  // over which a publish fails with RecordTooLargeError: the failure the
  // ordered-failure test provokes. 0: the transport has no limit, and that
  // test is skipped saying so. Default: 0.
  int64_t max_record_bytes = 0;
};

// gtest prints parameters; a factory prints as its name.
inline void PrintTo(const TransportFactory& factory, std::ostream* os) { *os << factory.name; }
// For INSTANTIATE_TEST_SUITE_P's last argument.
std::string TransportFactoryName(const ::testing::TestParamInfo<TransportFactory>& info);

namespace internal {

// The suite's typed event.
struct ConformanceEvent {
  std::string entity;
  int64_t sequence = 0;
  std::string note;
  static constexpr std::string_view kType = "herald.conformance.recorded";
  static constexpr std::string_view kTopic = "herald.conformance";
  std::string_view key() const { return entity; }
  static constexpr auto JsonFields() {
    return json::Fields(json::Field("entity", &ConformanceEvent::entity),
                        json::Field("sequence", &ConformanceEvent::sequence),
                        json::Field("note", &ConformanceEvent::note));
  }
};

// Records every message handed to its handlers. Thread-safe. Hold it in a
// shared_ptr: handlers keep it alive after the test body returns.
class MessageCollector : public std::enable_shared_from_this<MessageCollector> {
 public:
  // A Handler that records and returns OK.
  Handler Record();
  // A typed handler for ConformanceEvent that records and returns OK.
  std::function<absl::Status(const ConformanceEvent&, const Message&)> RecordTyped();
  void Add(const Message& message);

  std::vector<Message> messages() const;
  int64_t size() const;
  // Distinct envelope ids seen.
  std::set<std::string> ids() const;
  int64_t distinct() const;

 private:
  mutable Mutex mu_;
  std::vector<Message> messages_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> ids_ ABSL_GUARDED_BY(mu_);
};

// Counts PublishAsync outcomes. Thread-safe; hold it in a shared_ptr.
class PublishTracker : public std::enable_shared_from_this<PublishTracker> {
 public:
  // A callback for one publish of the event with id `id`.
  PublishCallback Callback(std::string id);
  int64_t completed() const;
  int64_t failed() const;
  // Ids of the events reported OK.
  std::set<std::string> ok_ids() const;

 private:
  mutable Mutex mu_;
  int64_t completed_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t failed_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::string> ok_ids_ ABSL_GUARDED_BY(mu_);
};

}  // namespace internal

class TransportConformanceTest : public ::testing::TestWithParam<TransportFactory> {
 protected:
  using TestEvent = internal::ConformanceEvent;

  void SetUp() override;
  // Stops every bus the test made, newest first.
  void TearDown() override;

  // A new Bus over a new transport from the factory, owned by the fixture.
  Bus& MakeBus();
  // Start(), then the factory's wait_until_assigned.
  absl::Status StartAndWait(Bus& bus);
  // A topic / group name unique to this test.
  std::string Topic(std::string_view name) const;
  std::string Group(std::string_view name) const;
  // Waits up to the factory's delivery_timeout for `done()`, running pending
  // deliveries of deterministic buses meanwhile.
  bool WaitUntil(const std::function<bool()>& done);
  // Envelope of a ConformanceEvent on `topic`.
  Envelope MakeEvent(const std::string& topic, std::string entity, int64_t sequence, std::string note = "");
  // Subscribe options with fast retries.
  SubscribeOptions Options(const std::string& group, const std::string& topic) const;

  const TransportFactory& factory() const { return GetParam(); }
  const std::string& prefix() const { return prefix_; }

 private:
  std::string prefix_;
  Mutex buses_mu_;
  std::vector<std::unique_ptr<Bus>> buses_ ABSL_GUARDED_BY(buses_mu_);
};

// ------------------------------------------------------------------ tests ---
// Defined here so that they link into the test binary that instantiates the
// suite; testing/src/transport_conformance.cc sees only the fixture.
#ifndef HERALD_TESTING_TRANSPORT_CONFORMANCE_FIXTURE_ONLY_

TEST_P(TransportConformanceTest, DeliversEnvelopeIntact) {
  Bus& bus = MakeBus();
  auto received = std::make_shared<internal::MessageCollector>();
  const std::string topic = Topic("intact");
  ASSERT_THAT(bus.Subscribe(Options(Group("reader"), topic), received->Record()), IsOk());
  ASSERT_THAT(StartAndWait(bus), IsOk());

  Envelope sent;
  sent.time = absl::FromUnixMicros(1732690889123456);
  sent.id = NewUuidV7(sent.time);
  sent.type = "herald.conformance.intact";
  sent.topic = topic;
  sent.key = "entity-42";
  sent.source = "conformance-suite";
  sent.headers = {{"x-conf-zeta", "1"}, {"x-conf-alpha", "two"}, {"x-conf-mid", "3 three"}};
  sent.payload = R"({"name":"Zo\u00eb","n":42,"nested":{"a":[1,2,3]}})";
  absl::StatusOr<DeliveryReport> report = bus.Publish(sent);
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report->topic, topic);
  EXPECT_GE(report->partition, 0);
  EXPECT_GE(report->offset, 0);

  ASSERT_TRUE(WaitUntil([&] { return received->size() >= 1; }));
  Message got = received->messages().front();
  EXPECT_EQ(got.envelope.id, sent.id);
  EXPECT_EQ(got.envelope.type, sent.type);
  EXPECT_EQ(got.envelope.topic, topic);
  EXPECT_EQ(got.envelope.key, sent.key);
  EXPECT_EQ(got.envelope.source, sent.source);
  EXPECT_EQ(absl::ToUnixMicros(got.envelope.time), absl::ToUnixMicros(sent.time));
  EXPECT_EQ(got.envelope.payload, sent.payload);
  Headers app_headers;
  for (const auto& h : got.envelope.headers) {
    if (h.first.rfind("x-conf-", 0) == 0) app_headers.push_back(h);
  }
  EXPECT_EQ(app_headers, sent.headers);
  EXPECT_EQ(got.topic, topic);
  EXPECT_EQ(got.group, Group("reader"));
  EXPECT_EQ(got.partition, report->partition);
  EXPECT_EQ(got.offset, report->offset);
  EXPECT_EQ(got.attempt, 1);
}

TEST_P(TransportConformanceTest, DeliversTypedEvents) {
  Bus& bus = MakeBus();
  auto received = std::make_shared<internal::MessageCollector>();
  auto events = std::make_shared<std::vector<TestEvent>>();
  auto events_mu = std::make_shared<Mutex>();
  const std::string topic = Topic("typed");
  SubscribeOptions options = Options("", topic);
  ASSERT_THAT(bus.Subscribe<TestEvent>(
                  Group("reader"),
                  [received, events, events_mu](const TestEvent& e, const Message& m) {
                    {
                      MutexLock lock(*events_mu);
                      events->push_back(e);
                    }
                    received->Add(m);
                    return absl::OkStatus();
                  },
                  options),
              IsOk());
  ASSERT_THAT(StartAndWait(bus), IsOk());
  ASSERT_THAT(bus.Publish(TestEvent{"order-7", 7, "typed \"quoted\" note"}, EnvelopeOptions{.topic = topic}), IsOk());
  ASSERT_TRUE(WaitUntil([&] { return received->size() >= 1; }));
  MutexLock lock(*events_mu);
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ(events->front().entity, "order-7");
  EXPECT_EQ(events->front().sequence, 7);
  EXPECT_EQ(events->front().note, "typed \"quoted\" note");
  EXPECT_EQ(received->messages().front().envelope.key, "order-7");
  EXPECT_EQ(received->messages().front().envelope.type, TestEvent::kType);
}

TEST_P(TransportConformanceTest, KeepsManyTopicsApart) {
  constexpr int kTopics = 6;
  constexpr int kPerTopic = 25;
  Bus& bus = MakeBus();
  std::vector<std::shared_ptr<internal::MessageCollector>> received;
  std::vector<std::string> topics;
  for (int t = 0; t < kTopics; ++t) {
    topics.push_back(Topic(herald::StrCat("topic", t)));
    received.push_back(std::make_shared<internal::MessageCollector>());
    ASSERT_THAT(bus.Subscribe(Options(Group("reader"), topics[t]), received[t]->Record()), IsOk());
  }
  ASSERT_THAT(StartAndWait(bus), IsOk());
  auto published = std::make_shared<internal::PublishTracker>();
  for (int i = 0; i < kPerTopic; ++i) {
    for (int t = 0; t < kTopics; ++t) {
      Envelope e = MakeEvent(topics[t], herald::StrCat("entity-", i % 5), i);
      std::string id = e.id;
      bus.PublishAsync(std::move(e), published->Callback(id));
    }
  }
  ASSERT_TRUE(WaitUntil([&] { return published->completed() == kTopics * kPerTopic; }));
  EXPECT_EQ(published->failed(), 0);
  ASSERT_TRUE(WaitUntil([&] {
    for (const auto& r : received) {
      if (r->distinct() < kPerTopic) return false;
    }
    return true;
  }));
  for (int t = 0; t < kTopics; ++t) {
    EXPECT_EQ(received[t]->distinct(), kPerTopic) << topics[t];
    for (const Message& m : received[t]->messages()) {
      EXPECT_EQ(m.topic, topics[t]);
      EXPECT_EQ(m.envelope.topic, topics[t]);
    }
  }
}

TEST_P(TransportConformanceTest, ConcurrentPublishersAndSubscribersLoseNothing) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 250;
  Bus& bus = MakeBus();
  const std::string topic = Topic("concurrent");
  auto received = std::make_shared<internal::MessageCollector>();
  for (int s = 0; s < 3; ++s) {
    ASSERT_THAT(bus.Subscribe(Options(Group("workers"), topic), received->Record()), IsOk());
  }
  ASSERT_THAT(StartAndWait(bus), IsOk());
  auto published = std::make_shared<internal::PublishTracker>();
  std::vector<std::thread> publishers;
  for (int t = 0; t < kThreads; ++t) {
    publishers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Envelope e = MakeEvent(topic, herald::StrCat("entity-", t, "-", i % 16), i);
        std::string id = e.id;
        bus.PublishAsync(std::move(e), published->Callback(id));
      }
    });
  }
  for (std::thread& t : publishers) t.join();
  ASSERT_TRUE(WaitUntil([&] { return published->completed() == kThreads * kPerThread; }));
  EXPECT_EQ(published->failed(), 0);
  ASSERT_TRUE(WaitUntil([&] { return received->distinct() >= kThreads * kPerThread; }))
      << "received " << received->distinct() << " of " << kThreads * kPerThread;
  EXPECT_EQ(received->ids(), published->ok_ids());
}

TEST_P(TransportConformanceTest, RedeliversAfterRetryableFailure) {
  Bus& bus = MakeBus();
  const std::string topic = Topic("retry");
  auto attempts = std::make_shared<internal::MessageCollector>();
  auto handled = std::make_shared<internal::MessageCollector>();
  SubscribeOptions options = Options(Group("reader"), topic);
  ASSERT_THAT(bus.Subscribe(options,
                            [attempts, handled](const Message& m) -> absl::Status {
                              attempts->Add(m);
                              if (m.attempt < 3) return absl::UnavailableError("downstream is down");
                              handled->Add(m);
                              return absl::OkStatus();
                            }),
              IsOk());
  ASSERT_THAT(StartAndWait(bus), IsOk());
  Envelope e = MakeEvent(topic, "entity-1", 1);
  ASSERT_THAT(bus.Publish(e), IsOk());
  ASSERT_TRUE(WaitUntil([&] { return handled->size() >= 1; }));
  std::vector<int> seen;
  for (const Message& m : attempts->messages()) {
    EXPECT_EQ(m.envelope.id, e.id);
    seen.push_back(m.attempt);
  }
  EXPECT_THAT(seen, ::testing::ElementsAre(1, 2, 3));
  std::vector<Bus::SubscriptionStats> stats = bus.Stats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].handled, 1);
  EXPECT_EQ(stats[0].retried, 2);
}

TEST_P(TransportConformanceTest, TransportRedeliversOnRetryVerdict) {
  // The transport primitive: a kRetry verdict redelivers the same record with
  // attempt + 1 and holds back the records after it.
  Bus& bus = MakeBus();
  const std::string topic = Topic("verdict");
  auto seen = std::make_shared<internal::MessageCollector>();
  Envelope first = MakeEvent(topic, "held", 1);
  Envelope second = MakeEvent(topic, "held", 2);
  TransportSubscription subscription;
  subscription.topics = {topic};
  subscription.group = Group("raw");
  subscription.handler = [seen, retried_id = first.id](const ReceivedRecord& r) {
    absl::StatusOr<Message> m = DecodeReceivedRecord(r);
    if (!m.ok()) {
      ADD_FAILURE() << "undecodable record: " << m.status();
      return Verdict::Ack();
    }
    seen->Add(*m);
    if (m->envelope.id == retried_id && m->attempt == 1) return Verdict::RetryAfter(absl::Milliseconds(10));
    return Verdict::Ack();
  };
  ASSERT_THAT(bus.transport().Subscribe(std::move(subscription)), IsOk());
  ASSERT_THAT(StartAndWait(bus), IsOk());
  ASSERT_THAT(bus.Publish(first), IsOk());
  ASSERT_THAT(bus.Publish(second), IsOk());
  ASSERT_TRUE(WaitUntil([&] { return seen->size() >= 3; }));
  std::vector<Message> messages = seen->messages();
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0].envelope.id, first.id);
  EXPECT_EQ(messages[0].attempt, 1);
  EXPECT_EQ(messages[1].envelope.id, first.id);
  EXPECT_EQ(messages[1].attempt, 2);
  EXPECT_EQ(messages[1].offset, messages[0].offset);
  EXPECT_EQ(messages[2].envelope.id, second.id);
  EXPECT_EQ(messages[2].attempt, 1);
}

TEST_P(TransportConformanceTest, DeadLettersPermanentFailure) {
  Bus& bus = MakeBus();
  const std::string topic = Topic("orders");
  auto dead = std::make_shared<internal::MessageCollector>();
  ASSERT_THAT(bus.Subscribe(Options(Group("dlq-reader"), topic + ".dlq"), dead->Record()), IsOk());
  ASSERT_THAT(bus.Subscribe(Options(Group("reader"), topic),
                            [](const Message&) { return absl::InvalidArgumentError("order total is negative"); }),
              IsOk());
  ASSERT_THAT(StartAndWait(bus), IsOk());
  Envelope e = MakeEvent(topic, "order-9", 9);
  absl::StatusOr<DeliveryReport> report = bus.Publish(e);
  ASSERT_THAT(report, IsOk());
  ASSERT_TRUE(WaitUntil([&] { return dead->size() >= 1; }));
  const Message letter = dead->messages().front();
  EXPECT_EQ(letter.topic, topic + ".dlq");
  EXPECT_EQ(letter.envelope.id, e.id);
  EXPECT_EQ(letter.envelope.type, e.type);
  EXPECT_EQ(letter.envelope.key, e.key);
  EXPECT_EQ(letter.envelope.payload, e.payload);
  const Headers& h = letter.envelope.headers;
  EXPECT_THAT(FindHeader(h, kDlqReasonHeader), ::testing::Optional(::testing::HasSubstr("order total is negative")));
  EXPECT_EQ(FindHeader(h, kDlqCodeHeader), "INVALID_ARGUMENT");
  EXPECT_EQ(FindHeader(h, kDlqAttemptsHeader), "1");
  EXPECT_EQ(FindHeader(h, kDlqTopicHeader), topic);
  EXPECT_EQ(FindHeader(h, kDlqGroupHeader), Group("reader"));
  EXPECT_EQ(FindHeader(h, kDlqPartitionHeader), herald::StrCat(report->partition));
  EXPECT_EQ(FindHeader(h, kDlqOffsetHeader), herald::StrCat(report->offset));
}

TEST_P(TransportConformanceTest, DeadLettersWhenRetriesRunOut) {
  Bus& bus = MakeBus();
  const std::string topic = Topic("flaky");
  auto dead = std::make_shared<internal::MessageCollector>();
  auto attempts = std::make_shared<std::atomic<int>>(0);
  ASSERT_THAT(bus.Subscribe(Options(Group("dlq-reader"), topic + ".dlq"), dead->Record()), IsOk());
  SubscribeOptions options = Options(Group("reader"), topic);
  options.retry.max_attempts = 3;
  ASSERT_THAT(bus.Subscribe(options,
                            [attempts](const Message&) {
                              attempts->fetch_add(1);
                              return absl::UnavailableError("still down");
                            }),
              IsOk());
  ASSERT_THAT(StartAndWait(bus), IsOk());
  Envelope e = MakeEvent(topic, "order-10", 10);
  ASSERT_THAT(bus.Publish(e), IsOk());
  ASSERT_TRUE(WaitUntil([&] { return dead->size() >= 1; }));
  EXPECT_EQ(attempts->load(), 3);
  const Message letter = dead->messages().front();
  EXPECT_EQ(letter.envelope.id, e.id);
  EXPECT_EQ(FindHeader(letter.envelope.headers, kDlqCodeHeader), "UNAVAILABLE");
  EXPECT_EQ(FindHeader(letter.envelope.headers, kDlqAttemptsHeader), "3");
}

TEST_P(TransportConformanceTest, KeepsPerKeyOrderUnderConcurrency) {
  constexpr int kThreads = 4;
  constexpr int kKeysPerThread = 2;
  constexpr int kPerKey = 100;
  Bus& bus = MakeBus();
  const std::string topic = Topic("ordered");
  auto received = std::make_shared<internal::MessageCollector>();
  for (int s = 0; s < 2; ++s) {
    ASSERT_THAT(bus.Subscribe<TestEvent>(Group("reader"), received->RecordTyped(), Options("", topic)), IsOk());
  }
  ASSERT_THAT(StartAndWait(bus), IsOk());
  auto published = std::make_shared<internal::PublishTracker>();
  std::vector<std::thread> publishers;
  for (int t = 0; t < kThreads; ++t) {
    publishers.emplace_back([&, t] {
      for (int i = 0; i < kPerKey; ++i) {
        for (int k = 0; k < kKeysPerThread; ++k) {
          Envelope e = MakeEvent(topic, herald::StrCat("key-", t, "-", k), i);
          std::string id = e.id;
          bus.PublishAsync(std::move(e), published->Callback(id));
        }
      }
    });
  }
  for (std::thread& t : publishers) t.join();
  const int total = kThreads * kKeysPerThread * kPerKey;
  ASSERT_TRUE(WaitUntil([&] { return published->completed() == total; }));
  ASSERT_EQ(published->failed(), 0);
  ASSERT_TRUE(WaitUntil([&] { return received->distinct() >= total; }));
  // Per key, the first delivery of each event comes in publish order
  // (redeliveries may repeat an earlier event, never skip ahead).
  std::map<std::string, std::vector<int64_t>> first_seen;
  std::map<std::string, std::set<int64_t>> seen;
  for (const Message& m : received->messages()) {
    absl::StatusOr<TestEvent> e = DecodeEvent<TestEvent>(m.envelope);
    ASSERT_THAT(e, IsOk());
    if (seen[e->entity].insert(e->sequence).second) first_seen[e->entity].push_back(e->sequence);
  }
  ASSERT_EQ(first_seen.size(), static_cast<size_t>(kThreads * kKeysPerThread));
  for (const auto& [key, sequence] : first_seen) {
    ASSERT_EQ(sequence.size(), static_cast<size_t>(kPerKey)) << key;
    for (int i = 0; i < kPerKey; ++i) ASSERT_EQ(sequence[i], i) << key;
  }
}

// What the outbox relay relies on to keep a key in order when a publish
// fails (docs/semantics.md): a publish the transport refused (reported
// failed without writing it, as a record over the size limit is) is never
// delivered, and publishing the same event again, then the next ones of its
// key, each after the previous report, delivers them in that order. (A
// publish that timed out may have been written; the relay then publishes it
// again, a duplicate that at-least-once allows, still in order.)
TEST_P(TransportConformanceTest, FailedPublishIsNotDeliveredAndItsKeyStaysInOrder) {
  if (factory().max_record_bytes <= 0) {
    GTEST_SKIP() << "the factory sets no max_record_bytes, so the suite cannot make a publish fail";
  }
  Bus& bus = MakeBus();
  const std::string topic = Topic("failed-in-order");
  auto received = std::make_shared<internal::MessageCollector>();
  ASSERT_THAT(bus.Subscribe<TestEvent>(Group("reader"), received->RecordTyped(), Options("", topic)), IsOk());
  ASSERT_THAT(StartAndWait(bus), IsOk());

  ASSERT_THAT(bus.Publish(MakeEvent(topic, "entity-1", 0)), IsOk());
  // Over the size limit: refused, and reported so.
  Envelope too_large = MakeEvent(topic, "entity-1", 1, std::string(factory().max_record_bytes + 1, 'x'));
  absl::StatusOr<DeliveryReport> refused = bus.Publish(too_large);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(IsRecordTooLarge(refused.status())) << refused.status();
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  // The same event again (as the relay retries a row), then the next one.
  ASSERT_THAT(bus.Publish(MakeEvent(topic, "entity-1", 1, "again")), IsOk());
  ASSERT_THAT(bus.Publish(MakeEvent(topic, "entity-1", 2)), IsOk());

  ASSERT_TRUE(WaitUntil([&] { return received->distinct() >= 3; }));
  // Give a wrongly delivered refused record time to show up behind the rest.
  ASSERT_THAT(bus.Publish(MakeEvent(topic, "entity-1", 3)), IsOk());
  ASSERT_TRUE(WaitUntil([&] { return received->distinct() >= 4; }));
  std::vector<int64_t> first_deliveries;
  std::set<int64_t> seen;
  for (const Message& m : received->messages()) {
    EXPECT_NE(m.envelope.id, too_large.id) << "the refused publish was delivered";
    absl::StatusOr<TestEvent> e = DecodeEvent<TestEvent>(m.envelope);
    ASSERT_THAT(e, IsOk());
    EXPECT_LT(e->note.size(), 16u) << "the refused publish was delivered";
    if (seen.insert(e->sequence).second) first_deliveries.push_back(e->sequence);
  }
  EXPECT_THAT(first_deliveries, ::testing::ElementsAre(0, 1, 2, 3));
}

TEST_P(TransportConformanceTest, EachConsumerGroupReceivesEverything) {
  constexpr int kEvents = 100;
  Bus& bus = MakeBus();
  const std::string topic = Topic("fanout");
  auto billing = std::make_shared<internal::MessageCollector>();
  auto shipping = std::make_shared<internal::MessageCollector>();
  ASSERT_THAT(bus.Subscribe(Options(Group("billing"), topic), billing->Record()), IsOk());
  ASSERT_THAT(bus.Subscribe(Options(Group("shipping"), topic), shipping->Record()), IsOk());
  ASSERT_THAT(bus.Subscribe(Options(Group("shipping"), topic), shipping->Record()), IsOk());
  ASSERT_THAT(StartAndWait(bus), IsOk());
  auto published = std::make_shared<internal::PublishTracker>();
  for (int i = 0; i < kEvents; ++i) {
    Envelope e = MakeEvent(topic, herald::StrCat("entity-", i % 10), i);
    std::string id = e.id;
    bus.PublishAsync(std::move(e), published->Callback(id));
  }
  ASSERT_TRUE(WaitUntil([&] { return published->completed() == kEvents; }));
  ASSERT_TRUE(WaitUntil([&] { return billing->distinct() >= kEvents && shipping->distinct() >= kEvents; }));
  EXPECT_EQ(billing->ids(), published->ok_ids());
  EXPECT_EQ(shipping->ids(), published->ok_ids());
  for (const Message& m : billing->messages()) EXPECT_EQ(m.group, Group("billing"));
  for (const Message& m : shipping->messages()) EXPECT_EQ(m.group, Group("shipping"));
}

TEST_P(TransportConformanceTest, ResubscribingAfterStopLosesNothing) {
  constexpr int kBefore = 100;
  constexpr int kAfter = 100;
  const std::string topic = Topic("resume");
  const std::string group = Group("reader");
  auto received = std::make_shared<internal::MessageCollector>();

  Bus& first = MakeBus();
  SubscribeOptions options = Options(group, topic);
  ASSERT_THAT(first.Subscribe(options,
                              [received](const Message& m) {
                                received->Add(m);
                                absl::SleepFor(absl::Milliseconds(1));  // keep work in flight at Stop
                                return absl::OkStatus();
                              }),
              IsOk());
  ASSERT_THAT(StartAndWait(first), IsOk());
  Bus& publisher = MakeBus();
  ASSERT_THAT(publisher.Start(), IsOk());
  auto published = std::make_shared<internal::PublishTracker>();
  for (int i = 0; i < kBefore; ++i) {
    Envelope e = MakeEvent(topic, herald::StrCat("entity-", i % 8), i);
    std::string id = e.id;
    publisher.PublishAsync(std::move(e), published->Callback(id));
  }
  ASSERT_TRUE(WaitUntil([&] { return published->completed() == kBefore; }));
  ASSERT_TRUE(WaitUntil([&] { return received->distinct() >= 10; }));
  EXPECT_THAT(first.Stop(absl::Seconds(30)), IsOk());

  for (int i = kBefore; i < kBefore + kAfter; ++i) {
    Envelope e = MakeEvent(topic, herald::StrCat("entity-", i % 8), i);
    std::string id = e.id;
    publisher.PublishAsync(std::move(e), published->Callback(id));
  }
  ASSERT_TRUE(WaitUntil([&] { return published->completed() == kBefore + kAfter; }));
  EXPECT_EQ(published->failed(), 0);

  Bus& second = MakeBus();
  ASSERT_THAT(second.Subscribe(options, received->Record()), IsOk());
  ASSERT_THAT(StartAndWait(second), IsOk());
  ASSERT_TRUE(WaitUntil([&] { return received->distinct() >= kBefore + kAfter; }))
      << "received " << received->distinct() << " of " << kBefore + kAfter;
  EXPECT_EQ(received->ids(), published->ok_ids());
}

TEST_P(TransportConformanceTest, StoppedPublisherLosesNothingItAccepted) {
  constexpr int kEvents = 500;
  const std::string topic = Topic("publisher-stop");
  Bus& publisher = MakeBus();
  ASSERT_THAT(publisher.Start(), IsOk());
  auto published = std::make_shared<internal::PublishTracker>();
  for (int i = 0; i < kEvents; ++i) {
    Envelope e = MakeEvent(topic, herald::StrCat("entity-", i % 16), i);
    std::string id = e.id;
    publisher.PublishAsync(std::move(e), published->Callback(id));
  }
  EXPECT_THAT(publisher.Stop(absl::Seconds(60)), IsOk());
  // Stop delivered or failed everything accepted: every callback ran.
  EXPECT_EQ(published->completed(), kEvents);
  std::set<std::string> accepted = published->ok_ids();
  EXPECT_FALSE(accepted.empty());

  Bus& consumer = MakeBus();
  auto received = std::make_shared<internal::MessageCollector>();
  ASSERT_THAT(consumer.Subscribe(Options(Group("late-reader"), topic), received->Record()), IsOk());
  ASSERT_THAT(StartAndWait(consumer), IsOk());
  ASSERT_TRUE(WaitUntil([&] {
    std::set<std::string> ids = received->ids();
    return std::includes(ids.begin(), ids.end(), accepted.begin(), accepted.end());
  })) << "received " << received->distinct() << " of " << accepted.size();
}

TEST_P(TransportConformanceTest, PublishAfterStopFails) {
  Bus& bus = MakeBus();
  ASSERT_THAT(bus.Start(), IsOk());
  ASSERT_THAT(bus.Stop(absl::Seconds(10)), IsOk());
  EXPECT_THAT(bus.Publish(MakeEvent(Topic("closed"), "entity-1", 1)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(bus.Stop(absl::Seconds(1)), IsOk()) << "Stop is idempotent";
}

TEST_P(TransportConformanceTest, RejectsInvalidSubscriptions) {
  Bus& bus = MakeBus();
  auto ack = [](const ReceivedRecord&) { return Verdict::Ack(); };
  TransportSubscription no_topics;
  no_topics.group = Group("g");
  no_topics.handler = ack;
  EXPECT_THAT(bus.transport().Subscribe(no_topics), StatusIs(absl::StatusCode::kInvalidArgument));
  TransportSubscription empty_topic;
  empty_topic.topics = {""};
  empty_topic.group = Group("g");
  empty_topic.handler = ack;
  EXPECT_THAT(bus.transport().Subscribe(empty_topic), StatusIs(absl::StatusCode::kInvalidArgument));
  TransportSubscription no_group;
  no_group.topics = {Topic("t")};
  no_group.handler = ack;
  EXPECT_THAT(bus.transport().Subscribe(no_group), StatusIs(absl::StatusCode::kInvalidArgument));
  TransportSubscription no_handler;
  no_handler.topics = {Topic("t")};
  no_handler.group = Group("g");
  EXPECT_THAT(bus.transport().Subscribe(no_handler), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bus.Subscribe(SubscribeOptions{}, [](const Message&) { return absl::OkStatus(); }),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

#endif  // HERALD_TESTING_TRANSPORT_CONFORMANCE_FIXTURE_ONLY_

}  // namespace herald::testing

#endif  // HERALD_TESTING_TRANSPORT_CONFORMANCE_H_
