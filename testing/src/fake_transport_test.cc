#include "herald/testing/fake_transport.h"

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/core/dispatcher.h"
#include "herald/core/mutex.h"
#include "herald/core/strings.h"
#include "herald/testing/event_matchers.h"
#include "herald/testing/fake_clock.h"
#include "herald/testing/recording_handler.h"
#include "herald/testing/sample_events.h"
#include "herald/testing/status_matchers.h"

namespace herald::testing {
namespace {

// A transport subscription whose handler sees decoded messages (for tests of
// the transport itself).
TransportSubscription MessageSubscription(std::vector<std::string> topics, std::string group,
                                          std::function<Verdict(const Message&)> handler) {
  TransportSubscription s;
  s.topics = std::move(topics);
  s.group = std::move(group);
  if (handler) {
    s.handler = [handler = std::move(handler)](const ReceivedRecord& record) {
      absl::StatusOr<Message> message = DecodeReceivedRecord(record);
      EXPECT_TRUE(message.ok()) << message.status();
      return message.ok() ? handler(*message) : Verdict::Ack();
    };
  }
  return s;
}


using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

using ::herald::testing::CustomerEvent;

struct Ping {
  int n = 0;
  static constexpr std::string_view kType = "ping";
  static constexpr std::string_view kTopic = "pings";
  static constexpr auto JsonFields() { return json::Fields(json::Field("n", &Ping::n)); }
};

Envelope Raw(std::string topic, std::string type = "t", std::string key = "") {
  Envelope e;
  e.id = NewUuidV7(absl::Now());
  e.topic = std::move(topic);
  e.type = std::move(type);
  e.key = std::move(key);
  e.payload = "{}";
  return e;
}

TEST(FakeTransport, RecordsPublishesWithOffsetsPerTopic) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  absl::StatusOr<DeliveryReport> a = bus.Publish(Raw("a"));
  absl::StatusOr<DeliveryReport> b = bus.Publish(Raw("b"));
  absl::StatusOr<DeliveryReport> a2 = bus.Publish(Raw("a"));
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(a2, IsOk());
  EXPECT_EQ(a->topic, "a");
  EXPECT_EQ(a->partition, 0);
  EXPECT_EQ(a->offset, 0);
  EXPECT_EQ(b->offset, 0);
  EXPECT_EQ(a2->offset, 1);
  EXPECT_THAT(fake.published(), ElementsAre(HasTopic("a"), HasTopic("b"), HasTopic("a")));
  EXPECT_THAT(fake.published("a"), SizeIs(2));
  EXPECT_THAT(fake.published("none"), IsEmpty());
}

TEST(FakeTransport, PublishedEventsDecodesTypedEventsOfTheTopic) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  ASSERT_THAT(bus.Publish(CustomerEvent{CustomerEvent::Type::kCreated, "c1", CustomerEvent::Details{{"note", "new"}}}), IsOk());
  ASSERT_THAT(bus.Publish(Ping{3}), IsOk());
  ASSERT_THAT(bus.PublishRaw("customer-events", "customer.merged", "{}"), IsOk());  // not a CustomerEvent type
  ASSERT_THAT(bus.Publish(CustomerEvent{CustomerEvent::Type::kDeleted, "c1"}), IsOk());
  std::vector<CustomerEvent> events = fake.PublishedEvents<CustomerEvent>();
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_EQ(events[0].type, CustomerEvent::Type::kCreated);
  EXPECT_EQ(events[0].details, (CustomerEvent::Details{{"note", "new"}}));
  EXPECT_EQ(events[1].type, CustomerEvent::Type::kDeleted);
  ASSERT_THAT(fake.PublishedEvents<Ping>(), SizeIs(1));
  EXPECT_EQ(fake.PublishedEvents<Ping>()[0].n, 3);
}

TEST(FakeTransport, PublishedEventsReportsUndecodableEnvelopes) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  ASSERT_THAT(bus.PublishRaw("pings", "ping", R"({"n":"not a number"})"), IsOk());
  std::vector<Ping> pings;
  EXPECT_NONFATAL_FAILURE(pings = fake.PublishedEvents<Ping>(), "cannot decode");
  EXPECT_THAT(pings, IsEmpty());
}

TEST(FakeTransport, DeliversSynchronouslyToEachGroupOnce) {
  Bus bus(std::make_unique<FakeTransport>());
  RecordingHandler<CustomerEvent> reader, auditor, other_topic;
  ASSERT_THAT(bus.Subscribe<CustomerEvent>("reader", reader), IsOk());
  ASSERT_THAT(bus.Subscribe<CustomerEvent>("auditor", auditor), IsOk());
  ASSERT_THAT(bus.Subscribe<CustomerEvent>("other", other_topic, {.topics = {"elsewhere"}}), IsOk());
  ASSERT_THAT(bus.Publish(CustomerEvent{CustomerEvent::Type::kUpdated, "c7", CustomerEvent::Details{{"note", "x"}}}),
              IsOk());
  // Handled inside Publish: no waiting needed.
  ASSERT_EQ(reader.count(), 1);
  ASSERT_EQ(auditor.count(), 1);
  EXPECT_EQ(other_topic.count(), 0);
  EXPECT_EQ(reader.events()[0].customer_id, "c7");
  Message m = reader.messages()[0];
  EXPECT_EQ(m.topic, "customer-events");
  EXPECT_EQ(m.group, "reader");
  EXPECT_EQ(m.attempt, 1);
  EXPECT_EQ(m.offset, 0);
  EXPECT_EQ(auditor.messages()[0].group, "auditor");
}

TEST(FakeTransport, SharesAGroupRoundRobin) {
  Bus bus(std::make_unique<FakeTransport>());
  RecordingHandler<Ping> first, second;
  ASSERT_THAT(bus.Subscribe<Ping>("workers", first), IsOk());
  ASSERT_THAT(bus.Subscribe<Ping>("workers", second), IsOk());
  for (int i = 0; i < 4; ++i) ASSERT_THAT(bus.Publish(Ping{i}), IsOk());
  ASSERT_EQ(first.count(), 2);
  ASSERT_EQ(second.count(), 2);
  EXPECT_EQ(first.events()[0].n, 0);
  EXPECT_EQ(second.events()[0].n, 1);
  EXPECT_EQ(first.events()[1].n, 2);
}

TEST(FakeTransport, DeliversBeforeStartAndRefusesAfterStop) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  RecordingHandler<Ping> seen;
  ASSERT_THAT(bus.Subscribe<Ping>("g", seen), IsOk());
  ASSERT_THAT(bus.Publish(Ping{1}), IsOk());
  EXPECT_EQ(seen.count(), 1);
  EXPECT_THAT(bus.Start(), IsOk());
  EXPECT_THAT(bus.Flush(absl::Seconds(1)), IsOk());
  EXPECT_THAT(bus.Stop(absl::Seconds(1)), IsOk());
  EXPECT_THAT(bus.Publish(Ping{2}), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(seen.count(), 1);
  EXPECT_THAT(fake.published(), SizeIs(1));
  EXPECT_THAT(bus.Start(), IsOk());
  EXPECT_THAT(bus.Publish(Ping{3}), IsOk());
  EXPECT_EQ(seen.count(), 2);
}

TEST(FakeTransport, SubscribeValidates) {
  Bus bus(std::make_unique<FakeTransport>());
  std::function<Verdict(const Message&)> ok = [](const Message&) { return Verdict::Ack(); };
  EXPECT_THAT(bus.transport().Subscribe(MessageSubscription({}, "g", ok)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bus.transport().Subscribe(MessageSubscription({""}, "g", ok)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bus.transport().Subscribe(MessageSubscription({"t"}, "", ok)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bus.transport().Subscribe(MessageSubscription({"t"}, "g", nullptr)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bus.transport().Subscribe(MessageSubscription({"t"}, "g", ok)), IsOk());
}

TEST(FakeTransport, RedeliversOnRetryRecordingDelaysAndAdvancingTheClock) {
  FakeClock clock;
  Bus bus(std::make_unique<FakeTransport>(FakeTransportOptions{.clock_to_advance = &clock}), BusOptions{.clock = &clock});
  FakeTransport& fake = bus.transport<FakeTransport>();
  std::vector<int> attempts;
  ASSERT_THAT(bus.transport().Subscribe(MessageSubscription({"t"}, "g",
                                   [&](const Message& m) {
                                     attempts.push_back(m.attempt);
                                     return m.attempt < 3 ? Verdict::RetryAfter(absl::Seconds(m.attempt))
                                                          : Verdict::Ack();
                                   })),
              IsOk());
  absl::Time before = clock.Now();
  ASSERT_THAT(bus.Publish(Raw("t")), IsOk());
  EXPECT_THAT(attempts, ElementsAre(1, 2, 3));
  EXPECT_THAT(fake.retry_delays(), ElementsAre(absl::Seconds(1), absl::Seconds(2)));
  EXPECT_EQ(clock.Now(), before + absl::Seconds(3));
  EXPECT_EQ(fake.delivery_count(), 3);
}

TEST(FakeTransport, GivesUpAfterMaxDeliveries) {
  Bus bus(std::make_unique<FakeTransport>(FakeTransportOptions{.max_deliveries = 4}));
  FakeTransport& fake = bus.transport<FakeTransport>();
  int calls = 0;
  ASSERT_THAT(bus.transport().Subscribe(MessageSubscription({"t"}, "g",
                                   [&](const Message&) {
                                     ++calls;
                                     return Verdict::RetryAfter(absl::Milliseconds(1));
                                   })),
              IsOk());
  ASSERT_THAT(bus.Publish(Raw("t")), IsOk());
  EXPECT_EQ(calls, 4);
  ASSERT_THAT(fake.abandoned(), SizeIs(1));
  EXPECT_EQ(fake.abandoned()[0].attempt, 4);
  EXPECT_EQ(fake.abandoned()[0].group, "g");
}

TEST(FakeTransport, DispatcherRetriesThenDeadLettersInsidePublish) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  RecordingHandler<Ping> seen;
  seen.FailWith([](const Ping&) { return absl::UnavailableError("db down"); });
  RecordingRawHandler dlq;
  ASSERT_THAT(bus.Subscribe<Ping>("g", seen, {.retry = {.max_attempts = 3}}), IsOk());
  ASSERT_THAT(bus.Subscribe({.group = "dlq-reader", .topics = {"pings.dlq"}}, dlq.handler()), IsOk());
  ASSERT_THAT(bus.Publish(Ping{5}), IsOk());
  EXPECT_EQ(seen.count(), 3);
  EXPECT_THAT(fake.retry_delays(), SizeIs(2));
  ASSERT_THAT(fake.published("pings.dlq"), SizeIs(1));
  EXPECT_THAT(fake.published("pings.dlq")[0], HasHeader("herald-dlq-attempts", "3"));
  ASSERT_EQ(dlq.count(), 1);
  EXPECT_THAT(dlq.messages()[0], HasHeader("herald-dlq-code", "UNAVAILABLE"));
}

TEST(FakeTransport, FailNextPublishesRejectsThenRecovers) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  RecordingHandler<Ping> seen;
  ASSERT_THAT(bus.Subscribe<Ping>("g", seen), IsOk());
  fake.FailNextPublishes(2, absl::UnavailableError("broker down"));
  EXPECT_THAT(bus.Publish(Ping{1}), StatusIs(absl::StatusCode::kUnavailable, "broker down"));
  EXPECT_THAT(bus.Publish(Ping{2}), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(bus.Publish(Ping{3}), IsOk());
  EXPECT_THAT(fake.published(), SizeIs(1));
  EXPECT_EQ(seen.count(), 1);
  EXPECT_EQ(seen.events()[0].n, 3);
}

TEST(FakeTransport, FailPublishesToOneTopicUntilCleared) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  fake.FailPublishesTo("pings", absl::ResourceExhaustedError("queue full"));
  EXPECT_THAT(bus.Publish(Ping{1}), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(bus.Publish(Raw("other")), IsOk());
  fake.FailPublishesTo("pings", absl::OkStatus());
  EXPECT_THAT(bus.Publish(Ping{1}), IsOk());
}

TEST(FakeTransport, PublishHookSeesEnvelopesAndCanReject) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  std::vector<std::string> seen_types;
  fake.SetPublishHook([&](const Envelope& e) {
    seen_types.push_back(e.type);
    return e.key == "bad" ? absl::InvalidArgumentError("bad key") : absl::OkStatus();
  });
  EXPECT_THAT(bus.Publish(Raw("t", "a", "good")), IsOk());
  EXPECT_THAT(bus.Publish(Raw("t", "b", "bad")), StatusIs(absl::StatusCode::kInvalidArgument, "bad key"));
  EXPECT_THAT(seen_types, ElementsAre("a", "b"));
  EXPECT_THAT(fake.published(), ElementsAre(HasType("a")));
  fake.SetPublishHook(nullptr);
  EXPECT_THAT(bus.Publish(Raw("t", "b", "bad")), IsOk());
}

TEST(FakeTransport, PublishAsyncCallsDoneBeforeReturning) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  bool called = false;
  bus.PublishAsync(Raw("t"), [&](absl::StatusOr<DeliveryReport> r) {
    EXPECT_THAT(r, IsOk());
    called = true;
  });
  EXPECT_TRUE(called);
  bool failed = false;
  fake.FailNextPublishes(1, absl::AbortedError("x"));
  bus.PublishAsync(Raw("t"), [&](absl::StatusOr<DeliveryReport> r) {
    EXPECT_THAT(r, StatusIs(absl::StatusCode::kAborted));
    failed = true;
  });
  EXPECT_TRUE(failed);
}

TEST(FakeTransport, RejectsEnvelopeWithoutTopic) {
  Bus bus(std::make_unique<FakeTransport>());
  EXPECT_THAT(bus.Publish(Raw("")), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(FakeTransport, HandlerMayPublishQueueAndDrainKeepsOrder) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  std::vector<std::string> log;
  ASSERT_THAT(bus.transport().Subscribe(MessageSubscription({"a"}, "g",
                                   [&](const Message& m) {
                                     log.push_back("a:start");
                                     EXPECT_THAT(bus.Publish(Raw("b")), IsOk());
                                     log.push_back("a:end");
                                     return Verdict::Ack();
                                   })),
              IsOk());
  ASSERT_THAT(bus.transport().Subscribe(MessageSubscription({"b"}, "g",
                                   [&](const Message&) {
                                     log.push_back("b");
                                     return Verdict::Ack();
                                   })),
              IsOk());
  ASSERT_THAT(bus.Publish(Raw("a")), IsOk());
  // b is handled after a's handler returns, still within the outer Publish.
  EXPECT_THAT(log, ElementsAre("a:start", "a:end", "b"));
  EXPECT_THAT(fake.published(), ElementsAre(HasTopic("a"), HasTopic("b")));
}

TEST(FakeTransport, TypedHandlerPublishingPropagatesCorrelation) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  RecordingHandler<Ping> pongs;
  ASSERT_THAT(bus.Subscribe<Ping>("g",
                                  [&](const Ping& p) -> absl::Status {
                                    if (p.n > 0) return bus.Publish(Ping{p.n - 1}).status();
                                    return absl::OkStatus();
                                  }),
              IsOk());
  ASSERT_THAT(bus.Subscribe<Ping>("watcher", pongs), IsOk());
  ASSERT_THAT(bus.Publish(Ping{3}), IsOk());
  ASSERT_EQ(pongs.count(), 4);
  std::vector<Envelope> all = fake.published("pings");
  ASSERT_THAT(all, SizeIs(4));
  EXPECT_FALSE(FindHeader(all[0].headers, kCorrelationIdHeader).has_value());
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_THAT(all[i], HasHeader("correlation-id", all[0].id)) << i;
  }
}

TEST(FakeTransport, ClearForgetsRecordsButKeepsSubscriptions) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  RecordingHandler<Ping> seen;
  ASSERT_THAT(bus.Subscribe<Ping>("g", seen), IsOk());
  ASSERT_THAT(bus.Publish(Ping{1}), IsOk());
  fake.Clear();
  EXPECT_THAT(fake.published(), IsEmpty());
  EXPECT_EQ(fake.delivery_count(), 0);
  ASSERT_THAT(bus.Publish(Ping{2}), IsOk());
  EXPECT_EQ(seen.count(), 2);
  EXPECT_THAT(fake.published(), SizeIs(1));
}

TEST(FakeTransport, ConcurrentPublishersAreAllRecordedAndDelivered) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  std::atomic<int> handled{0};
  ASSERT_THAT(bus.transport().Subscribe(MessageSubscription({"t"}, "g",
                                   [&](const Message& m) {
                                     // Handlers may publish while others publish concurrently.
                                     if (m.envelope.type == "first") {
                                       EXPECT_THAT(bus.Publish(Raw("t", "second")), IsOk());
                                     }
                                     handled.fetch_add(1);
                                     return Verdict::Ack();
                                   })),
              IsOk());
  constexpr int kThreads = 4, kPerThread = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) EXPECT_THAT(bus.Publish(Raw("t", "first")), IsOk());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(handled.load(), 2 * kThreads * kPerThread);
  std::vector<Envelope> all = fake.published("t");
  ASSERT_THAT(all, SizeIs(2 * kThreads * kPerThread));
}

// ---- Shared cluster, consumer groups and retention ----

// A raw subscription that appends "<bus>:<offset>" for each delivery.
TransportSubscription Logging(std::string topic, std::string group, std::string name, std::vector<std::string>& log,
                              Mutex& log_mu) {
  return MessageSubscription({std::move(topic)}, std::move(group), [&log, &log_mu, name](const Message& m) {
    MutexLock lock(log_mu);
    log.push_back(herald::StrCat(name, ":", m.offset));
    return Verdict::Ack();
  });
}

TEST(FakeTransportCluster, BusesOfOneClusterShareTopicsAndOffsets) {
  auto cluster = std::make_shared<FakeCluster>();
  Bus producer(std::make_unique<FakeTransport>(FakeTransportOptions{.cluster = cluster}));
  FakeTransport& producer_fake = producer.transport<FakeTransport>();
  Bus consumer(std::make_unique<FakeTransport>(FakeTransportOptions{.cluster = cluster}));
  FakeTransport& consumer_fake = consumer.transport<FakeTransport>();
  EXPECT_EQ(producer_fake.cluster(), cluster);
  RecordingHandler<Ping> seen;
  ASSERT_THAT(consumer.Subscribe<Ping>("g", seen), IsOk());
  ASSERT_THAT(producer.Publish(Ping{1}), IsOk());
  absl::StatusOr<DeliveryReport> second = consumer.Publish(Ping{2});
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(second->offset, 1) << "offsets are the topic's, not the bus's";
  ASSERT_EQ(seen.count(), 2);
  EXPECT_EQ(seen.events()[0].n, 1);
  EXPECT_EQ(seen.messages()[1].offset, 1);
  // Each bus records what it published; the cluster holds every record.
  EXPECT_THAT(producer_fake.published(), SizeIs(1));
  EXPECT_THAT(consumer_fake.published(), SizeIs(1));
  EXPECT_THAT(cluster->records("pings"), SizeIs(2));
  EXPECT_EQ(cluster->committed_offset("g", "pings"), 2);
  EXPECT_EQ(cluster->lag("g", "pings"), 0);
  EXPECT_EQ(consumer_fake.delivery_count(), 2);
  EXPECT_EQ(producer_fake.delivery_count(), 0) << "deliveries count on the bus whose handler ran";
}

TEST(FakeTransportCluster, PrivateClustersAreSeparate) {
  Bus a(std::make_unique<FakeTransport>());
  FakeTransport& a_fake = a.transport<FakeTransport>();
  Bus b(std::make_unique<FakeTransport>());
  FakeTransport& b_fake = b.transport<FakeTransport>();
  EXPECT_NE(a_fake.cluster(), b_fake.cluster());
  RecordingHandler<Ping> seen;
  ASSERT_THAT(b.Subscribe<Ping>("g", seen), IsOk());
  ASSERT_THAT(a.Publish(Ping{1}), IsOk());
  EXPECT_EQ(seen.count(), 0);
  EXPECT_THAT(b_fake.cluster()->records("pings"), IsEmpty());
}

TEST(FakeTransportCluster, AGroupSharesWorkAcrossBusesAndEachGroupGetsEverything) {
  auto cluster = std::make_shared<FakeCluster>();
  Bus producer(std::make_unique<FakeTransport>(FakeTransportOptions{.cluster = cluster}));
  Bus worker1(std::make_unique<FakeTransport>(FakeTransportOptions{.cluster = cluster}));
  Bus worker2(std::make_unique<FakeTransport>(FakeTransportOptions{.cluster = cluster}));
  Bus auditor(std::make_unique<FakeTransport>(FakeTransportOptions{.cluster = cluster}));
  std::vector<std::string> log;
  Mutex log_mu;
  ASSERT_THAT(worker1.transport().Subscribe(Logging("t", "workers", "w1", log, log_mu)), IsOk());
  ASSERT_THAT(worker2.transport().Subscribe(Logging("t", "workers", "w2", log, log_mu)), IsOk());
  ASSERT_THAT(auditor.transport().Subscribe(Logging("t", "audit", "a", log, log_mu)), IsOk());
  for (int i = 0; i < 4; ++i) ASSERT_THAT(producer.Publish(Raw("t")), IsOk());
  MutexLock lock(log_mu);
  EXPECT_THAT(log, ElementsAre("w1:0", "a:0", "w2:1", "a:1", "w1:2", "a:2", "w2:3", "a:3"));
}

TEST(FakeTransportCluster, RetainsRecordsWhileAGroupHasNoLiveMemberAndDeliversOnResubscribe) {
  auto cluster = std::make_shared<FakeCluster>();
  Bus producer(std::make_unique<FakeTransport>(FakeTransportOptions{.cluster = cluster}));
  RecordingHandler<Ping> seen;
  auto first = std::make_unique<Bus>(std::make_unique<FakeTransport>(FakeTransportOptions{.cluster = cluster}));
  ASSERT_THAT(first->Subscribe<Ping>("reader", seen), IsOk());
  ASSERT_THAT(producer.Publish(Ping{0}), IsOk());
  ASSERT_EQ(seen.count(), 1);

  ASSERT_THAT(first->Stop(absl::Seconds(5)), IsOk());
  for (int i = 1; i <= 3; ++i) ASSERT_THAT(producer.Publish(Ping{i}), IsOk());
  EXPECT_EQ(seen.count(), 1) << "a stopped bus's subscriptions have left the group";
  EXPECT_EQ(cluster->committed_offset("reader", "pings"), 1);
  EXPECT_EQ(cluster->lag("reader", "pings"), 3);
  first.reset();

  // A new member of the group resumes at the committed offset, inside Subscribe.
  Bus second(std::make_unique<FakeTransport>(FakeTransportOptions{.cluster = cluster}));
  ASSERT_THAT(second.Subscribe<Ping>("reader", seen), IsOk());
  ASSERT_EQ(seen.count(), 4);
  std::vector<Ping> events = seen.events();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(events[i].n, i);
  EXPECT_EQ(seen.messages()[3].offset, 3);
  EXPECT_EQ(seen.messages()[3].group, "reader");
  EXPECT_EQ(seen.messages()[3].attempt, 1);
  EXPECT_EQ(cluster->lag("reader", "pings"), 0);
  // And then receives new records as they are published.
  ASSERT_THAT(producer.Publish(Ping{4}), IsOk());
  EXPECT_EQ(seen.count(), 5);
}

TEST(FakeTransportCluster, StartAfterStopDeliversWhatWasRetained) {
  auto cluster = std::make_shared<FakeCluster>();
  Bus producer(std::make_unique<FakeTransport>(FakeTransportOptions{.cluster = cluster}));
  Bus consumer(std::make_unique<FakeTransport>(FakeTransportOptions{.cluster = cluster}));
  RecordingHandler<Ping> seen;
  ASSERT_THAT(consumer.Subscribe<Ping>("g", seen), IsOk());
  ASSERT_THAT(consumer.Stop(absl::Seconds(1)), IsOk());
  ASSERT_THAT(producer.Publish(Ping{1}), IsOk());
  ASSERT_THAT(producer.Publish(Ping{2}), IsOk());
  EXPECT_EQ(seen.count(), 0);
  ASSERT_THAT(consumer.Start(), IsOk());
  ASSERT_EQ(seen.count(), 2);
  EXPECT_EQ(seen.events()[1].n, 2);
}

TEST(FakeTransportCluster, SubscriptionAddedToAStoppedBusWaitsForStart) {
  auto cluster = std::make_shared<FakeCluster>();
  Bus producer(std::make_unique<FakeTransport>(FakeTransportOptions{.cluster = cluster}));
  Bus consumer(std::make_unique<FakeTransport>(FakeTransportOptions{.cluster = cluster, .auto_offset_reset = AutoOffsetReset::kEarliest}));
  ASSERT_THAT(producer.Publish(Ping{1}), IsOk());
  ASSERT_THAT(consumer.Stop(absl::Seconds(1)), IsOk());
  RecordingHandler<Ping> seen;
  ASSERT_THAT(consumer.Subscribe<Ping>("g", seen), IsOk());
  EXPECT_EQ(seen.count(), 0);
  EXPECT_EQ(cluster->committed_offset("g", "pings"), -1) << "not joined yet";
  ASSERT_THAT(consumer.Start(), IsOk());
  EXPECT_EQ(seen.count(), 1);
}

TEST(FakeTransportCluster, ANewGroupStartsAtTheEndByDefault) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  ASSERT_THAT(bus.Publish(Ping{1}), IsOk());
  RecordingHandler<Ping> seen;
  ASSERT_THAT(bus.Subscribe<Ping>("late", seen), IsOk());
  EXPECT_EQ(seen.count(), 0);
  EXPECT_EQ(fake.cluster()->committed_offset("late", "pings"), 1);
  ASSERT_THAT(bus.Publish(Ping{2}), IsOk());
  ASSERT_EQ(seen.count(), 1);
  EXPECT_EQ(seen.events()[0].n, 2);
}

TEST(FakeTransportCluster, ANewGroupReadsEverythingWithEarliest) {
  Bus bus(std::make_unique<FakeTransport>(FakeTransportOptions{.auto_offset_reset = AutoOffsetReset::kEarliest}));
  ASSERT_THAT(bus.Publish(Ping{1}), IsOk());
  ASSERT_THAT(bus.Publish(Ping{2}), IsOk());
  RecordingHandler<Ping> seen;
  ASSERT_THAT(bus.Subscribe<Ping>("late", seen), IsOk());
  ASSERT_EQ(seen.count(), 2);
  EXPECT_EQ(seen.events()[0].n, 1);
  // A second member of a group that already joined does not rewind it.
  RecordingHandler<Ping> other;
  ASSERT_THAT(bus.Subscribe<Ping>("late", other), IsOk());
  EXPECT_EQ(other.count(), 0);
  EXPECT_EQ(seen.count(), 2);
}

TEST(FakeTransportCluster, CatchUpDeadLettersThroughTheSubscribersBus) {
  auto cluster = std::make_shared<FakeCluster>();
  Bus producer(std::make_unique<FakeTransport>(FakeTransportOptions{.cluster = cluster}));
  FakeTransport& producer_fake = producer.transport<FakeTransport>();
  Bus consumer(std::make_unique<FakeTransport>(FakeTransportOptions{.cluster = cluster, .auto_offset_reset = AutoOffsetReset::kEarliest}));
  FakeTransport& consumer_fake = consumer.transport<FakeTransport>();
  ASSERT_THAT(producer.Publish(Ping{1}), IsOk());
  RecordingRawHandler dlq;
  ASSERT_THAT(producer.Subscribe({.group = "dlq-reader", .topics = {"pings.dlq"}}, dlq.handler()), IsOk());
  ASSERT_THAT(consumer.Subscribe<Ping>("g", [](const Ping&) { return absl::InvalidArgumentError("bad ping"); }),
              IsOk());
  ASSERT_EQ(dlq.count(), 1);
  EXPECT_THAT(consumer_fake.published("pings.dlq"), SizeIs(1));
  EXPECT_THAT(producer_fake.published("pings.dlq"), IsEmpty());
}

TEST(FakeTransportCluster, HandlerPublishingDuringCatchUpKeepsOffsetOrder) {
  Bus bus(std::make_unique<FakeTransport>(FakeTransportOptions{.auto_offset_reset = AutoOffsetReset::kEarliest}));
  ASSERT_THAT(bus.Publish(Raw("t", "start")), IsOk());
  ASSERT_THAT(bus.Publish(Raw("t", "plain")), IsOk());
  std::vector<std::string> log;
  ASSERT_THAT(bus.transport().Subscribe(MessageSubscription({"t"}, "g",
                                   [&](const Message& m) {
                                     log.push_back(herald::StrCat(m.envelope.type, ":", m.offset));
                                     if (m.envelope.type == "start") {
                                       EXPECT_THAT(bus.Publish(Raw("t", "echo")), IsOk());
                                     }
                                     return Verdict::Ack();
                                   })),
              IsOk());
  EXPECT_THAT(log, ElementsAre("start:0", "plain:1", "echo:2"));
}

TEST(FakeTransportCluster, SubscribingInsideAHandlerQueuesTheCatchUp) {
  Bus bus(std::make_unique<FakeTransport>(FakeTransportOptions{.auto_offset_reset = AutoOffsetReset::kEarliest}));
  std::vector<std::string> log;
  ASSERT_THAT(bus.transport().Subscribe(MessageSubscription({"t"}, "first",
                                   [&](const Message& m) {
                                     log.push_back("first:start");
                                     EXPECT_THAT(bus.transport().Subscribe(MessageSubscription({"t"}, "second",
                                                                      [&](const Message&) {
                                                                        log.push_back("second");
                                                                        return Verdict::Ack();
                                                                      })),
                                                 IsOk());
                                     log.push_back("first:end");
                                     return Verdict::Ack();
                                   })),
              IsOk());
  ASSERT_THAT(bus.Publish(Raw("t")), IsOk());
  EXPECT_THAT(log, ElementsAre("first:start", "first:end", "second"));
}

TEST(FakeTransportCluster, StopWaitsForHandlersRunningOnOtherThreads) {
  auto cluster = std::make_shared<FakeCluster>();
  Bus producer(std::make_unique<FakeTransport>(FakeTransportOptions{.cluster = cluster}));
  Bus consumer(std::make_unique<FakeTransport>(FakeTransportOptions{.cluster = cluster}));
  Mutex mu;
  CondVar changed;
  bool entered = false, release = false;
  ASSERT_THAT(consumer.transport().Subscribe(MessageSubscription({"t"}, "g",
                                        [&](const Message&) {
                                          MutexLock lock(mu);
                                          entered = true;
                                          changed.NotifyAll();
                                          changed.Wait(mu, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return release; });
                                          return Verdict::Ack();
                                        })),
              IsOk());
  std::thread publisher([&] { EXPECT_THAT(producer.Publish(Raw("t")), IsOk()); });
  {
    MutexLock lock(mu);
    ASSERT_TRUE(changed.WaitFor(mu, absl::Seconds(30), [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return entered; }));
  }
  EXPECT_THAT(consumer.Stop(absl::Milliseconds(10)), StatusIs(absl::StatusCode::kDeadlineExceeded));
  {
    MutexLock lock(mu);
    release = true;
    changed.NotifyAll();
  }
  EXPECT_THAT(consumer.Stop(absl::Seconds(30)), IsOk());
  publisher.join();
}

TEST(FakeTransportCluster, StopInsideOwnHandlerDoesNotWaitForItself) {
  Bus bus(std::make_unique<FakeTransport>());
  ASSERT_THAT(bus.transport().Subscribe(MessageSubscription({"t"}, "g",
                                   [&](const Message&) {
                                     EXPECT_THAT(bus.Stop(absl::Seconds(30)), IsOk());
                                     return Verdict::Ack();
                                   })),
              IsOk());
  ASSERT_THAT(bus.Publish(Raw("t")), IsOk());
  EXPECT_THAT(bus.Publish(Raw("t")), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(FakeTransportCluster, ConcurrentPublishesWhileTheGroupChangesMembersAreDeliveredExactlyOnce) {
  constexpr int kThreads = 4, kPerThread = 300;
  auto cluster = std::make_shared<FakeCluster>();
  Bus producer(std::make_unique<FakeTransport>(FakeTransportOptions{.cluster = cluster}));
  Mutex mu;
  std::map<std::string, int> deliveries;
  auto record = [&](const Message& m) {
    MutexLock lock(mu);
    ++deliveries[m.envelope.id];
    return Verdict::Ack();
  };
  auto first = std::make_unique<Bus>(std::make_unique<FakeTransport>(FakeTransportOptions{.cluster = cluster}));
  ASSERT_THAT(first->transport().Subscribe(MessageSubscription({"t"}, "g", record)), IsOk());
  std::atomic<int> published{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        EXPECT_THAT(producer.Publish(Raw("t")), IsOk());
        published.fetch_add(1);
      }
    });
  }
  // Change the group's members while the publishers run: stop, resubscribe on
  // new buses, and leave for a moment with no member at all.
  std::vector<std::unique_ptr<Bus>> later;
  for (int round = 0; round < 5; ++round) {
    EXPECT_THAT(first->Stop(absl::Seconds(30)), IsOk());
    first = std::make_unique<Bus>(std::make_unique<FakeTransport>(FakeTransportOptions{.cluster = cluster}));
    ASSERT_THAT(first->transport().Subscribe(MessageSubscription({"t"}, "g", record)), IsOk());
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(published.load(), kThreads * kPerThread);
  // Publishers delivered what they claimed before returning; the last
  // member caught up when it joined or receives the rest from the catch-up.
  EXPECT_EQ(cluster->lag("g", "t"), 0);
  MutexLock lock(mu);
  EXPECT_EQ(deliveries.size(), static_cast<size_t>(kThreads * kPerThread));
  for (const auto& [id, count] : deliveries) EXPECT_EQ(count, 1) << id;
}

}  // namespace
}  // namespace herald::testing
