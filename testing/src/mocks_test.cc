#include "herald/testing/mocks.h"

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/core/relay.h"
#include "herald/testing/event_matchers.h"
#include "herald/testing/status_matchers.h"

namespace herald::testing {
namespace {

using ::testing::_;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::Return;

struct Ping {
  int n = 0;
  static constexpr std::string_view kType = "ping";
  static constexpr std::string_view kTopic = "pings";
  static constexpr auto JsonFields() { return json::Fields(json::Field("n", &Ping::n)); }
};

TEST(MockTransport, TheBusPublishesThroughTheMockedTransport) {
  auto mock = std::make_unique<MockTransport>();
  EXPECT_CALL(*mock, Publish(HasType("ping"), _)).WillOnce([](Envelope e, PublishCallback done) {
    EXPECT_EQ(e.payload, R"({"n":4})");
    done(DeliveryReport{e.topic, 2, 17});
  });
  Bus bus(std::move(mock));
  absl::StatusOr<DeliveryReport> report = bus.Publish(Ping{4});
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report->partition, 2);
  EXPECT_EQ(report->offset, 17);
}

TEST(MockTransport, PublishReportsTheMockedFailure) {
  auto mock = std::make_unique<MockTransport>();
  EXPECT_CALL(*mock, Publish(_, _)).WillOnce([](Envelope, PublishCallback done) {
    done(absl::UnavailableError("broker down"));
  });
  Bus bus(std::move(mock));
  EXPECT_THAT(bus.PublishRaw("t", "x", "{}"), StatusIs(absl::StatusCode::kUnavailable));
}

TEST(MockTransport, BusSubscribeAttachesToTheTransport) {
  auto mock = std::make_unique<MockTransport>();
  EXPECT_CALL(*mock, Subscribe(Field(&TransportSubscription::group, "g"))).WillOnce(Return(absl::OkStatus()));
  EXPECT_CALL(*mock, Subscribe(Field(&TransportSubscription::group, "g2")))
      .WillOnce(Return(absl::UnavailableError("no broker")));
  Bus bus(std::move(mock));
  EXPECT_THAT(bus.Subscribe<Ping>("g", [](const Ping&) { return absl::OkStatus(); }), IsOk());
  EXPECT_THAT(bus.Subscribe<Ping>("g2", [](const Ping&) { return absl::OkStatus(); }),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(bus.Stats(), ::testing::SizeIs(1));  // only the accepted subscription counts
}

TEST(MockTransport, LifecycleGoesToTheTransport) {
  auto mock = std::make_unique<MockTransport>();
  EXPECT_CALL(*mock, Start()).WillOnce(Return(absl::OkStatus()));
  EXPECT_CALL(*mock, Flush(absl::Seconds(1))).WillOnce(Return(absl::OkStatus()));
  EXPECT_CALL(*mock, Stop(absl::Seconds(2))).WillOnce(Return(absl::DeadlineExceededError("abandoned")));
  Bus bus(std::move(mock));
  EXPECT_THAT(bus.Start(), IsOk());
  EXPECT_THAT(bus.Flush(absl::Seconds(1)), IsOk());
  EXPECT_THAT(bus.Stop(absl::Seconds(2)), StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST(MockEventHandler, WorksAsATypedHandler) {
  auto handler = std::make_shared<MockEventHandler<Ping>>();
  EXPECT_CALL(*handler, Handle(Field(&Ping::n, 5), _)).WillOnce(Return(absl::InvalidArgumentError("no")));
  Handler typed = TypedHandler<Ping>(std::shared_ptr<EventHandler<Ping>>(handler));
  Message m;
  m.envelope.type = "ping";
  m.envelope.payload = R"({"n":5})";
  EXPECT_THAT(typed(m), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(MockOutboxStore, RelayRoundTalksToTheStore) {
  MockOutboxStore store;
  auto transport = std::make_unique<MockTransport>();
  MockTransport& mock = *transport;
  OutboxRecord row;
  row.sequence = 42;
  row.envelope.id = "id";
  row.envelope.type = "ping";
  row.envelope.topic = "pings";
  row.envelope.payload = "{}";
  EXPECT_CALL(store, FetchPendingBatch(Field(&PendingBatchOptions::limit, 10)))
      .WillOnce(Return(std::vector<OutboxRecord>{row}));
  EXPECT_CALL(mock, Publish(HasType("ping"), _)).WillOnce([](Envelope e, PublishCallback done) {
    done(DeliveryReport{e.topic, 0, 0});
  });
  Bus bus(std::move(transport));
  EXPECT_CALL(store, MarkPublished(ElementsAre(42))).WillOnce(Return(absl::OkStatus()));
  EXPECT_CALL(store, PurgePublished(_, _)).WillOnce(Return(0));
  OutboxRelay relay(store, bus, {.batch_size = 10});
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(1));
}

TEST(MockOutboxStore, TypedAppendStaysVisible) {
  MockOutboxStore store;
  MockTransaction tx;
  EXPECT_CALL(store, Append(_, HasType("ping"))).WillOnce(Return(absl::OkStatus()));
  EXPECT_THAT(store.Append(tx, Ping{1}), IsOk());
}

TEST(MockTransactionAndLease, AreMockable) {
  MockTransaction tx;
  EXPECT_CALL(tx, Commit()).WillOnce(Return(absl::AbortedError("serialization failure")));
  EXPECT_CALL(tx, Rollback()).WillOnce(Return(absl::OkStatus()));
  EXPECT_THAT(tx.Commit(), StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(tx.Rollback(), IsOk());
  MockLease lease;
  EXPECT_CALL(lease, Check()).WillOnce(Return(absl::OkStatus())).WillOnce(Return(absl::AbortedError("lost")));
  EXPECT_THAT(lease.Check(), IsOk());
  EXPECT_THAT(lease.Check(), StatusIs(absl::StatusCode::kAborted));
}

TEST(MockInbox, IsMockable) {
  MockInbox inbox;
  MockTransaction tx;
  EXPECT_CALL(inbox, MarkProcessed(_, "reader", "e1")).WillOnce(Return(true)).WillOnce(Return(false));
  EXPECT_CALL(inbox, Begin()).WillOnce([] { return std::unique_ptr<Transaction>(new MockTransaction()); });
  EXPECT_THAT(inbox.MarkProcessed(tx, "reader", "e1"), IsOkAndHolds(true));
  EXPECT_THAT(inbox.MarkProcessed(tx, "reader", "e1"), IsOkAndHolds(false));
  EXPECT_THAT(inbox.Begin(), IsOk());
}

TEST(MockClock, DrivesMakeEnvelope) {
  MockClock clock;
  absl::Time t = absl::FromUnixSeconds(1800000000);
  EXPECT_CALL(clock, Now()).WillRepeatedly(Return(t));
  Envelope e = MakeEnvelope(Ping{1}, {.clock = &clock});
  EXPECT_EQ(e.time, t);
  EXPECT_CALL(clock, SleepFor(absl::Seconds(3)));
  static_cast<const Clock&>(clock).SleepFor(absl::Seconds(3));
}

}  // namespace
}  // namespace herald::testing
