#include "herald/testing/drain.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/testing/event_matchers.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/fake_clock.h"
#include "herald/testing/in_memory_outbox_store.h"
#include "herald/testing/recording_handler.h"
#include "herald/testing/status_matchers.h"

namespace herald::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

struct OrderPlaced {
  std::string order_id;
  int64_t amount_cents = 0;
  static constexpr std::string_view kType = "order.placed";
  static constexpr std::string_view kTopic = "order-events";
  std::string_view key() const { return order_id; }
  static constexpr auto JsonFields() {
    return json::Fields(json::Field("order_id", &OrderPlaced::order_id),
                        json::Field("amount_cents", &OrderPlaced::amount_cents));
  }
};

void Write(InMemoryOutboxStore& store, std::vector<OrderPlaced> orders, const Clock& clock) {
  auto tx = store.Begin();
  ASSERT_THAT(tx, IsOk());
  for (const OrderPlaced& o : orders) ASSERT_THAT(store.Append(**tx, o, {.clock = &clock}), IsOk());
  ASSERT_THAT((*tx)->Commit(), IsOk());
}

TEST(DrainOutbox, PublishesEverythingCommittedInOrder) {
  FakeClock clock;
  InMemoryOutboxStore store(clock);
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  RecordingHandler<OrderPlaced> seen;
  ASSERT_THAT(bus.Subscribe<OrderPlaced>("billing", seen), IsOk());
  Write(store, {{"o1", 100}, {"o2", 200}}, clock);
  Write(store, {{"o1", 300}}, clock);
  EXPECT_THAT(DrainOutbox(store, bus, {.clock = &clock}), IsOkAndHolds(3));
  ASSERT_EQ(seen.count(), 3);
  EXPECT_EQ(seen.events()[2].amount_cents, 300);
  EXPECT_THAT(fake.published("order-events"), ElementsAre(HasKey("o1"), HasKey("o2"), HasKey("o1")));
  EXPECT_THAT(store.Pending(), IsEmpty());
  EXPECT_THAT(DrainOutbox(store, bus, {.clock = &clock}), IsOkAndHolds(0));
}

TEST(DrainOutbox, UsesSmallBatchesUntilDry) {
  InMemoryOutboxStore store;
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  std::vector<OrderPlaced> orders;
  for (int i = 0; i < 25; ++i) orders.push_back({"o" + std::to_string(i), i});
  Write(store, orders, SystemClock());
  EXPECT_THAT(DrainOutbox(store, bus, {.batch_size = 4}), IsOkAndHolds(25));
  EXPECT_THAT(fake.PublishedEvents<OrderPlaced>(), SizeIs(25));
}

TEST(DrainOutbox, RolledBackEventsAreNeverPublished) {
  InMemoryOutboxStore store;
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  {
    auto tx = store.Begin();
    ASSERT_THAT(store.Append(**tx, OrderPlaced{"o1", 1}), IsOk());
    ASSERT_THAT((*tx)->Rollback(), IsOk());
  }
  EXPECT_THAT(DrainOutbox(store, bus), IsOkAndHolds(0));
  EXPECT_THAT(fake.published(), IsEmpty());
}

TEST(DrainOutbox, FailedPublishStaysPendingAndHoldsBackItsKey) {
  FakeClock clock;
  InMemoryOutboxStore store(clock);
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  Write(store, {{"o1", 1}, {"o2", 2}, {"o1", 3}}, clock);
  fake.FailNextPublishes(1, absl::UnavailableError("broker down"));
  EXPECT_THAT(DrainOutbox(store, bus, {.clock = &clock}), IsOkAndHolds(1));  // o2 only
  // The first o1 was refused, so the second o1 was not sent at all.
  EXPECT_THAT(fake.published(), ElementsAre(HasKey("o2")));
  std::vector<OutboxRow> rows = store.Rows();
  EXPECT_FALSE(rows[0].published);
  EXPECT_EQ(rows[0].record.attempts, 1);
  EXPECT_THAT(rows[0].record.last_error, ::testing::HasSubstr("broker down"));
  EXPECT_TRUE(rows[1].published);
  EXPECT_FALSE(rows[2].published);  // behind a failed row of its key: not sent
  // Once the backoff passes, the rest goes in order.
  clock.Advance(absl::Minutes(5));
  fake.Clear();
  EXPECT_THAT(DrainOutbox(store, bus, {.clock = &clock}), IsOkAndHolds(2));
  EXPECT_THAT(fake.PublishedEvents<OrderPlaced>(), ElementsAre(::testing::Field(&OrderPlaced::amount_cents, 1),
                                                              ::testing::Field(&OrderPlaced::amount_cents, 3)));
}

TEST(DrainOutbox, StoreErrorIsReturned) {
  InMemoryOutboxStore store;
  Bus bus(std::make_unique<FakeTransport>());
  store.FailNextFetches(1, absl::UnavailableError("db down"));
  EXPECT_THAT(DrainOutbox(store, bus), StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace herald::testing
