#include "herald/core/event.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/message.h"
#include "herald/testing/event_matchers.h"
#include "herald/testing/fake_clock.h"
#include "herald/testing/sample_events.h"
#include "herald/testing/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::FakeClock;
using ::herald::testing::HasHeader;
using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

// The seed's event: one struct, several type names chosen by an enum.
using ::herald::testing::CustomerEvent;

// One type per struct, with a schema version.
struct OrderPlaced {
  std::string order_id;
  int64_t amount_cents = 0;
  static constexpr std::string_view kType = "order.placed";
  static constexpr std::string_view kTopic = "order-events";
  static constexpr int kSchemaVersion = 2;
  std::string_view key() const { return order_id; }
  static constexpr auto JsonFields() {
    return json::Fields(json::Field("order_id", &OrderPlaced::order_id),
                        json::Field("amount_cents", &OrderPlaced::amount_cents));
  }
};

// No key(), no version.
struct Heartbeat {
  int64_t n = 0;
  static constexpr std::string_view kType = "heartbeat";
  static constexpr std::string_view kTopic = "heartbeats";
  static constexpr auto JsonFields() { return json::Fields(json::Field("n", &Heartbeat::n)); }
};

static_assert(Event<CustomerEvent>);
static_assert(Event<OrderPlaced>);
static_assert(Event<Heartbeat>);
// Note: Event<int> is satisfied too (EventTraits<T>'s primary template declares
// every function with a concrete return type), so misuse fails later, inside
// MakeEnvelope, instead of at the concept; see the report.

TEST(EventTraits, MultiTypeEventSelectsTypeNameByEnum) {
  using Traits = EventTraits<CustomerEvent>;
  EXPECT_THAT(Traits::TypeNames(), ElementsAre("customer.created", "customer.updated", "customer.deleted"));
  EXPECT_EQ(Traits::TypeName({CustomerEvent::Type::kUpdated, "c"}), "customer.updated");
  EXPECT_EQ(Traits::Topic(), "customer-events");
  EXPECT_EQ(Traits::Key({CustomerEvent::Type::kUpdated, "c9"}), "c9");
  EXPECT_EQ(Traits::SchemaVersion(), 1);
  CustomerEvent e;
  EXPECT_TRUE(Traits::SetTypeName(e, "customer.deleted"));
  EXPECT_EQ(e.type, CustomerEvent::Type::kDeleted);
  EXPECT_FALSE(Traits::SetTypeName(e, "customer.merged"));
  EXPECT_EQ(e.type, CustomerEvent::Type::kDeleted);
}

TEST(EventTraits, SingleTypeEvent) {
  using Traits = EventTraits<OrderPlaced>;
  EXPECT_THAT(Traits::TypeNames(), ElementsAre("order.placed"));
  EXPECT_EQ(Traits::SchemaVersion(), 2);
  OrderPlaced o;
  EXPECT_TRUE(Traits::SetTypeName(o, "order.placed"));
  EXPECT_FALSE(Traits::SetTypeName(o, "order.cancelled"));
  EXPECT_EQ(EventTraits<Heartbeat>::Key({}), "");
}

TEST(MakeEnvelope, FillsEveryFieldFromEventAndClock) {
  FakeClock clock;
  CustomerEvent event{CustomerEvent::Type::kUpdated, "cust-42", CustomerEvent::Details{{"note", "moved"}}};
  Envelope e = MakeEnvelope(event, {.clock = &clock, .source = "customer-service"});
  EXPECT_TRUE(IsUuidV7(e.id)) << e.id;
  EXPECT_EQ(e.time, clock.Now());
  EXPECT_EQ(e.type, "customer.updated");
  EXPECT_EQ(e.topic, "customer-events");
  EXPECT_EQ(e.key, "cust-42");
  EXPECT_EQ(e.source, "customer-service");
  EXPECT_EQ(e.schema_version, 1);
  EXPECT_EQ(e.content_type, "application/json");
  EXPECT_EQ(e.payload, R"({"customer_id":"cust-42","details":{"note":"moved"}})");  // the enum is not in the payload
  EXPECT_TRUE(e.headers.empty());
}

TEST(MakeEnvelope, DefaultsAndOverrides) {
  FakeClock clock;
  Envelope e = MakeEnvelope(OrderPlaced{"o-1", 500},
                            {.clock = &clock, .topic = "orders-v2", .headers = {{"x-tenant", "acme"}}});
  EXPECT_EQ(e.source, "herald");
  EXPECT_EQ(e.topic, "orders-v2");
  EXPECT_EQ(e.schema_version, 2);
  EXPECT_THAT(e.headers, ElementsAre(Pair("x-tenant", "acme")));
  Envelope h = MakeEnvelope(Heartbeat{1}, {.clock = &clock});
  EXPECT_EQ(h.key, "");
}

TEST(MakeEnvelope, IdsIncreaseAndTimesFollowTheClock) {
  FakeClock clock;
  Envelope a = MakeEnvelope(Heartbeat{1}, {.clock = &clock});
  clock.Advance(absl::Seconds(1));
  Envelope b = MakeEnvelope(Heartbeat{2}, {.clock = &clock});
  EXPECT_LT(a.id, b.id);
  EXPECT_EQ(b.time - a.time, absl::Seconds(1));
}

TEST(DecodeEvent, RoundTripsEachTypeName) {
  for (auto type : {CustomerEvent::Type::kCreated, CustomerEvent::Type::kUpdated, CustomerEvent::Type::kDeleted}) {
    CustomerEvent event{type, "c1", CustomerEvent::Details{{"note", "d"}}};
    absl::StatusOr<CustomerEvent> back = DecodeEvent<CustomerEvent>(MakeEnvelope(event));
    ASSERT_THAT(back, IsOk());
    EXPECT_EQ(back->type, type);
    EXPECT_EQ(back->customer_id, "c1");
    EXPECT_EQ(back->details, (CustomerEvent::Details{{"note", "d"}}));
  }
  absl::StatusOr<OrderPlaced> order = DecodeEvent<OrderPlaced>(MakeEnvelope(OrderPlaced{"o", 7}));
  ASSERT_THAT(order, IsOk());
  EXPECT_EQ(order->amount_cents, 7);
}

TEST(DecodeEvent, WrongTypeNameIsInvalidArgument) {
  Envelope e = MakeEnvelope(CustomerEvent{CustomerEvent::Type::kCreated, "c1"});
  e.type = "customer.merged";
  EXPECT_THAT(DecodeEvent<CustomerEvent>(e),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("customer.merged")));
  // Another struct's envelope: not one of Heartbeat's types.
  EXPECT_THAT(DecodeEvent<Heartbeat>(MakeEnvelope(CustomerEvent{})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("customer.created")));
}

TEST(DecodeEvent, SchemaVersionMismatchIsFailedPrecondition) {
  Envelope e = MakeEnvelope(OrderPlaced{"o", 1});
  e.schema_version = 1;
  EXPECT_THAT(DecodeEvent<OrderPlaced>(e), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("upcaster")));
  e.schema_version = 3;
  EXPECT_THAT(DecodeEvent<OrderPlaced>(e), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(DecodeEvent, BadPayloadIsInvalidArgumentNamingTheMember) {
  Envelope e = MakeEnvelope(OrderPlaced{"o", 1});
  e.payload = R"({"order_id":"o","amount_cents":"lots"})";
  EXPECT_THAT(DecodeEvent<OrderPlaced>(e), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("amount_cents")));
  e.payload = "{not json";
  EXPECT_THAT(DecodeEvent<OrderPlaced>(e), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("offset")));
  e.payload = "";
  EXPECT_THAT(DecodeEvent<OrderPlaced>(e), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(PropagateContext, NothingOutsideAHandler) {
  Headers h;
  PropagateContext(h);
  EXPECT_TRUE(h.empty());
}

TEST(PropagateContext, CopiesCorrelationAndTraceFromCurrentMessage) {
  Message m;
  m.envelope.id = "handled-id";
  m.envelope.headers = {{"correlation-id", "req-7"}, {"traceparent", "00-trace-span-01"}, {"tracestate", "a=b"},
                        {"x-other", "not copied"}};
  internal::ScopedCurrentMessage scope(&m);
  ASSERT_EQ(CurrentMessage(), &m);
  Envelope e = MakeEnvelope(Heartbeat{1});
  EXPECT_THAT(e.headers, ElementsAre(Pair("correlation-id", "req-7"), Pair("traceparent", "00-trace-span-01"),
                                     Pair("tracestate", "a=b")));
}

TEST(PropagateContext, KeepsExplicitHeadersAndCorrelatesWithHandledId) {
  Message m;
  m.envelope.id = "handled-id";
  m.envelope.headers = {{"traceparent", "00-trace-span-01"}};
  internal::ScopedCurrentMessage scope(&m);
  Headers h = {{"traceparent", "mine"}};
  PropagateContext(h);
  EXPECT_THAT(h, ElementsAre(Pair("traceparent", "mine"), Pair("correlation-id", "handled-id")));
}

TEST(PropagateContext, ScopesNestAndRestore) {
  Message outer, inner;
  outer.envelope.id = "outer";
  inner.envelope.id = "inner";
  {
    internal::ScopedCurrentMessage a(&outer);
    {
      internal::ScopedCurrentMessage b(&inner);
      EXPECT_EQ(CurrentMessage(), &inner);
    }
    EXPECT_EQ(CurrentMessage(), &outer);
    EXPECT_THAT(MakeEnvelope(Heartbeat{}), HasHeader("correlation-id", "outer"));
  }
  EXPECT_EQ(CurrentMessage(), nullptr);
}

}  // namespace
}  // namespace herald
