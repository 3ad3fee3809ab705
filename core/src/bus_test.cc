#include "herald/core/bus.h"

#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/testing/event_matchers.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/fake_clock.h"
#include "herald/testing/mocks.h"
#include "herald/testing/recording_handler.h"
#include "herald/testing/sample_events.h"
#include "herald/testing/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::FakeTransport;
using ::herald::testing::FakeClock;
using ::herald::testing::HasHeader;
using ::herald::testing::HasType;
using ::herald::testing::IsOk;
using ::herald::testing::MockTransport;
using ::herald::testing::RecordingHandler;
using ::herald::testing::RecordingRawHandler;
using ::herald::testing::StatusIs;
using ::testing::_;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::Return;
using ::testing::SizeIs;

using ::herald::testing::CustomerEvent;

struct ProductEvent {
  std::string product_id;
  static constexpr std::string_view kType = "product.created";
  static constexpr std::string_view kTopic = "customer-events";  // shares the topic on purpose
  static constexpr auto JsonFields() { return json::Fields(json::Field("product_id", &ProductEvent::product_id)); }
};

TEST(Bus, PublishBlocksUntilTheCallbackRunsOnAnotherThread) {
  auto owned = std::make_unique<MockTransport>();
  MockTransport& mock = *owned;
  std::thread completer;
  EXPECT_CALL(mock, Publish(_, _)).WillOnce([&](Envelope e, PublishCallback done) {
    completer = std::thread([e, done = std::move(done)]() mutable {
      absl::SleepFor(absl::Milliseconds(20));
      done(DeliveryReport{e.topic, 1, 99});
    });
  });
  Bus bus(std::move(owned));
  absl::StatusOr<DeliveryReport> r = bus.PublishRaw("t", "x", "{}");
  completer.join();
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->offset, 99);
}

TEST(Bus, TypedPublishStampsBusDefaults) {
  FakeClock clock;
  Bus bus(std::make_unique<FakeTransport>(), BusOptions{.source = "customer-service", .clock = &clock});
  FakeTransport& fake = bus.transport<FakeTransport>();
  ASSERT_THAT(bus.Publish(CustomerEvent{CustomerEvent::Type::kDeleted, "c1"}), IsOk());
  ASSERT_THAT(bus.Publish(CustomerEvent{}, {.source = "override", .topic = "elsewhere"}), IsOk());
  std::vector<Envelope> all = fake.published();
  ASSERT_THAT(all, SizeIs(2));
  EXPECT_EQ(all[0].source, "customer-service");
  EXPECT_EQ(all[0].time, clock.Now());
  EXPECT_EQ(all[0].type, "customer.deleted");
  EXPECT_EQ(all[0].key, "c1");
  EXPECT_EQ(all[1].source, "override");
  EXPECT_EQ(all[1].topic, "elsewhere");
}

TEST(Bus, TypedPublishAsyncReportsThroughTheCallback) {
  Bus bus(std::make_unique<FakeTransport>());
  absl::StatusOr<DeliveryReport> got = absl::UnknownError("not called");
  bus.PublishAsync(CustomerEvent{}, {}, [&](absl::StatusOr<DeliveryReport> r) { got = std::move(r); });
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->topic, "customer-events");
}

TEST(Bus, FireAndForgetFailuresAreCountedAndTheLatestIsKept) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  EXPECT_EQ(bus.publish_failures(), 0);
  EXPECT_THAT(bus.last_publish_error(), IsOk());
  fake.FailNextPublishes(2, absl::UnavailableError("broker down"));
  bus.PublishAsync(CustomerEvent{});
  bus.PublishAsync(CustomerEvent{CustomerEvent::Type::kDeleted, "c1"});
  bus.PublishAsync(CustomerEvent{});  // delivered
  EXPECT_EQ(bus.publish_failures(), 2);
  EXPECT_THAT(bus.last_publish_error(), StatusIs(absl::StatusCode::kUnavailable, ::testing::HasSubstr("broker down")));
  EXPECT_THAT(fake.published(), ::testing::SizeIs(1));
}

TEST(Bus, WithoutAClockTheBusUsesTheSystemClock) {
  Bus bus(std::make_unique<FakeTransport>(), BusOptions{.clock = nullptr});
  const absl::Time before = absl::Now();
  ASSERT_THAT(bus.PublishRaw("t", "x", "{}"), IsOk());
  ASSERT_THAT(bus.transport<FakeTransport>().published(), ::testing::SizeIs(1));
  EXPECT_GE(bus.transport<FakeTransport>().published()[0].time, before);
}

TEST(Bus, PublishRawValidatesAndFillsTheEnvelope) {
  FakeClock clock;
  Bus bus(std::make_unique<FakeTransport>(), BusOptions{.source = "seed", .clock = &clock});
  FakeTransport& fake = bus.transport<FakeTransport>();
  EXPECT_THAT(bus.PublishRaw("", "x", "{}"), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("topic")));
  EXPECT_THAT(bus.PublishRaw("t", "", "{}"), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("type")));
  EXPECT_THAT(fake.published(), SizeIs(0));
  ASSERT_THAT(bus.PublishRaw("t", "customer.created", R"({"a":1})", "k1"), IsOk());
  Envelope e = fake.published()[0];
  EXPECT_TRUE(IsUuidV7(e.id));
  EXPECT_EQ(e.time, clock.Now());
  EXPECT_EQ(e.type, "customer.created");
  EXPECT_EQ(e.topic, "t");
  EXPECT_EQ(e.key, "k1");
  EXPECT_EQ(e.source, "seed");
  EXPECT_EQ(e.payload, R"({"a":1})");
}

TEST(Bus, PublishRawFromAHandlerCarriesCorrelation) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  ASSERT_THAT(bus.Subscribe({.group = "g", .topics = {"in"}},
                            [&](const Message&) { return bus.PublishRaw("out", "y", "{}").status(); }),
              IsOk());
  ASSERT_THAT(bus.PublishRaw("in", "x", "{}"), IsOk());
  std::vector<Envelope> in = fake.published("in");
  ASSERT_THAT(fake.published("out"), ElementsAre(HasHeader("correlation-id", in[0].id)));
}

TEST(Bus, SubscribeValidates) {
  Bus bus(std::make_unique<FakeTransport>());
  Handler ok = [](const Message&) { return absl::OkStatus(); };
  EXPECT_THAT(bus.Subscribe({.group = "", .topics = {"t"}}, ok), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bus.Subscribe({.group = "g"}, ok), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bus.Subscribe({.group = "g", .topics = {"t"}}, nullptr), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bus.Subscribe({.group = "g", .topics = {"t"}, .retry = {.max_attempts = 0}}, ok),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("max_attempts")));
  EXPECT_THAT(bus.Subscribe<CustomerEvent>("", [](const CustomerEvent&) { return absl::OkStatus(); }),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bus.Stats(), SizeIs(0));
}

TEST(Bus, SubscribePropagatesTransportRefusal) {
  auto mock = std::make_unique<MockTransport>();
  EXPECT_CALL(*mock, Subscribe(_)).WillOnce(Return(absl::FailedPreconditionError("stopped")));
  Bus bus(std::move(mock));
  EXPECT_THAT(bus.Subscribe({.group = "g", .topics = {"t"}}, [](const Message&) { return absl::OkStatus(); }),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(bus.Stats(), SizeIs(0));
}

TEST(Bus, TypedSubscribeUsesTheEventTopicAndSkipsOtherTypes) {
  auto mock = std::make_unique<MockTransport>();
  EXPECT_CALL(*mock, Subscribe(AllOf(Field(&TransportSubscription::topics, ElementsAre("customer-events")),
                                     Field(&TransportSubscription::group, "reader"))))
      .WillOnce(Return(absl::OkStatus()));
  Bus mocked(std::move(mock));
  EXPECT_THAT(mocked.Subscribe<CustomerEvent>("reader", [](const CustomerEvent&) { return absl::OkStatus(); }), IsOk());

  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  RecordingHandler<CustomerEvent> customers;
  RecordingHandler<ProductEvent> products;
  ASSERT_THAT(bus.Subscribe<CustomerEvent>("reader", customers), IsOk());
  ASSERT_THAT(bus.Subscribe<ProductEvent>("catalog", products), IsOk());
  ASSERT_THAT(bus.Publish(CustomerEvent{CustomerEvent::Type::kUpdated, "c1"}), IsOk());
  ASSERT_THAT(bus.Publish(ProductEvent{"p1"}), IsOk());
  EXPECT_EQ(customers.count(), 1);
  EXPECT_EQ(products.count(), 1);
  EXPECT_THAT(fake.published("customer-events.dlq"), SizeIs(0));
  std::vector<Bus::SubscriptionStats> stats = bus.Stats();
  ASSERT_THAT(stats, SizeIs(2));
  EXPECT_EQ(stats[0].group, "reader");
  EXPECT_THAT(stats[0].topics, ElementsAre("customer-events"));
  EXPECT_EQ(stats[0].handled, 1);
  EXPECT_EQ(stats[0].skipped, 1);
  EXPECT_EQ(stats[1].handled, 1);
  EXPECT_EQ(stats[1].skipped, 1);
}

TEST(Bus, TypedSubscribeOnExplicitTopics) {
  Bus bus(std::make_unique<FakeTransport>());
  RecordingHandler<CustomerEvent> seen;
  ASSERT_THAT(bus.Subscribe<CustomerEvent>("g", seen, {.topics = {"legacy-customers"}}), IsOk());
  ASSERT_THAT(bus.Publish(CustomerEvent{}, {.topic = "legacy-customers"}), IsOk());
  ASSERT_THAT(bus.Publish(CustomerEvent{}), IsOk());
  EXPECT_EQ(seen.count(), 1);
}

TEST(Bus, StatsCountEveryOutcome) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  RecordingRawHandler raw;
  raw.FailWith([](const Message& m) -> absl::Status {
    if (m.envelope.type == "flaky" && m.attempt == 1) return absl::UnavailableError("once");
    if (m.envelope.type == "poison") return absl::InvalidArgumentError("never");
    return absl::OkStatus();
  });
  ASSERT_THAT(bus.Subscribe({.group = "g", .topics = {"t"}, .accepted_types = {"ok", "flaky", "poison"}}, raw.handler()),
              IsOk());
  for (const char* type : {"ok", "flaky", "poison", "unknown"}) ASSERT_THAT(bus.PublishRaw("t", type, "{}"), IsOk());
  std::vector<Bus::SubscriptionStats> stats = bus.Stats();
  ASSERT_THAT(stats, SizeIs(1));
  EXPECT_EQ(stats[0].handled, 2);        // ok, flaky on attempt 2
  EXPECT_EQ(stats[0].retried, 1);        // flaky once
  EXPECT_EQ(stats[0].dead_lettered, 2);  // poison, unknown (not skipped: raw subscription)
  EXPECT_EQ(stats[0].failed, 3);         // flaky, poison, unknown
  EXPECT_EQ(stats[0].skipped, 0);
  EXPECT_THAT(fake.published("t.dlq"), ElementsAre(HasType("poison"), HasType("unknown")));
}

TEST(Bus, WithMetricsReportsPublishesAndEveryHandlerOutcomePerTopicAndGroup) {
  MetricsRegistry metrics;
  Bus bus(std::make_unique<FakeTransport>(), {.metrics = &metrics});
  FakeTransport& fake = bus.transport<FakeTransport>();
  RecordingRawHandler raw;
  raw.FailWith([](const Message& m) -> absl::Status {
    if (m.envelope.type == "flaky" && m.attempt == 1) return absl::UnavailableError("once");
    if (m.envelope.type == "poison") return absl::InvalidArgumentError("never");
    return absl::OkStatus();
  });
  ASSERT_THAT(bus.Subscribe({.group = "g", .topics = {"t"}, .accepted_types = {"ok", "flaky", "poison"}}, raw.handler()),
              IsOk());
  ASSERT_THAT(bus.Subscribe<CustomerEvent>("typed", [](const CustomerEvent&) { return absl::OkStatus(); },
                                           {.topics = {"t"}}),
              IsOk());
  for (const char* type : {"ok", "flaky", "poison", "unknown"}) ASSERT_THAT(bus.PublishRaw("t", type, "{}"), IsOk());
  fake.FailNextPublishes(1, absl::UnavailableError("broker down"));
  EXPECT_THAT(bus.PublishRaw("t", "ok", "{}"), StatusIs(absl::StatusCode::kUnavailable));

  const MetricLabels g = {{"topic", "t"}, {"group", "g"}};
  EXPECT_EQ(metrics.Value("herald_consumer_handled_total", g), 2);
  EXPECT_EQ(metrics.Value("herald_consumer_retries_total", g), 1);
  EXPECT_EQ(metrics.Value("herald_consumer_dead_letters_total", g), 2);
  EXPECT_EQ(metrics.Value("herald_consumer_skipped_total", g), 0);
  // The typed subscription takes customer events only: the four are skipped.
  EXPECT_EQ(metrics.Value("herald_consumer_skipped_total", {{"topic", "t"}, {"group", "typed"}}), 4);
  EXPECT_EQ(metrics.Value("herald_published_total", {{"topic", "t"}}), 4);
  EXPECT_EQ(metrics.Value("herald_publish_failures_total", {{"topic", "t"}}), 1);
  const std::string text = metrics.ExportPrometheusText();
  // Four handler calls in group g (ok, flaky twice, poison); "unknown" never
  // reaches the handler.
  EXPECT_THAT(text, ::testing::HasSubstr("herald_consumer_handler_duration_seconds_count{topic=\"t\",group=\"g\"} 4\n"));
  EXPECT_THAT(text, ::testing::HasSubstr("herald_publish_ack_duration_seconds_count{topic=\"t\"} 4\n"));
  EXPECT_THAT(metrics.errors(), ::testing::IsEmpty());
}

}  // namespace
}  // namespace herald
