// ToJson / FromJson: the seed's evt.ToJSON() and factory.FromJSON(data) for
// one whole event, checked against the bytes Go's json.Marshal writes.
#include "herald/core/event_json.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/testing/fake_clock.h"
#include "herald/testing/sample_events.h"
#include "herald/testing/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::CustomerEvent;
using ::herald::testing::FakeClock;
using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Optional;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

// json.Marshal of the seed's CustomerEvent: fields in struct order, map keys
// sorted, HTML characters escaped, time.Time as RFC3339Nano in the writer's
// local zone.
constexpr std::string_view kGoJson =
    R"({"id":"9f1c2b8e-5d7a-4c3e-8b1a-2f6e4d9c0a11","type":"customer.updated",)"
    R"("timestamp":"2026-11-30T11:11:12.123456789+01:00",)"
    R"("payload":{"customer_id":"cust-42","details":{"name":"Ada \u003cA\u003e","tier":"gold"}}})";

TEST(FromJson, ReadsWhatGoWritesWithItsIdAndTime) {
  Envelope envelope;
  absl::StatusOr<CustomerEvent> event = FromJson<CustomerEvent>(kGoJson, &envelope);
  ASSERT_THAT(event, IsOk());
  EXPECT_EQ(event->type, CustomerEvent::Type::kUpdated);
  EXPECT_EQ(event->customer_id, "cust-42");
  EXPECT_THAT(event->details, Optional(UnorderedElementsAre(Pair("name", "Ada <A>"), Pair("tier", "gold"))));
  EXPECT_EQ(envelope.id, "9f1c2b8e-5d7a-4c3e-8b1a-2f6e4d9c0a11");
  EXPECT_EQ(envelope.type, "customer.updated");
  EXPECT_EQ(envelope.time, absl::FromUnixNanos(1796033472123456789));
  EXPECT_EQ(envelope.topic, "");
}

TEST(FromJson, GoNilMapIsNoDetails) {
  absl::StatusOr<CustomerEvent> event =
      FromJson<CustomerEvent>(R"({"id":"1","type":"customer.created","timestamp":"2026-11-30T10:11:12Z",)"
                              R"("payload":{"customer_id":"c","details":null}})");
  ASSERT_THAT(event, IsOk());
  EXPECT_EQ(event->details, std::nullopt);
}

TEST(FromJson, RejectsWhatIsNotAnEventOfT) {
  // Not JSON, not an envelope, nested past the limit: kInvalidArgument.
  EXPECT_THAT(FromJson<CustomerEvent>("{"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a JSON event")));
  EXPECT_THAT(FromJson<CustomerEvent>(R"({"customer_id":"c"})"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(FromJson<CustomerEvent>(std::string(100000, '[')), StatusIs(absl::StatusCode::kInvalidArgument));
  // Another type, or a payload of the wrong shape.
  EXPECT_THAT(FromJson<CustomerEvent>(R"({"id":"1","type":"order.placed","timestamp":"2026-11-30T10:11:12Z",)"
                                      R"("payload":{"customer_id":"c"}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("order.placed")));
  EXPECT_THAT(FromJson<CustomerEvent>(R"({"id":"1","type":"customer.created","timestamp":"2026-11-30T10:11:12Z",)"
                                      R"("payload":{"customer_id":7}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("customer_id")));
  // On an error the envelope is left alone.
  Envelope untouched;
  untouched.id = "before";
  EXPECT_THAT(FromJson<CustomerEvent>("[]", &untouched), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(untouched.id, "before");
}

TEST(ToJson, WritesTheGoEnvelopeWithZuluTime) {
  FakeClock clock(absl::FromUnixMillis(1796033472123));
  EnvelopeOptions options;
  options.clock = &clock;
  absl::StatusOr<std::string> text = ToJson(
      CustomerEvent{CustomerEvent::Type::kCreated, "cust-42", CustomerEvent::Details{{"tier", "gold"}}}, options);
  ASSERT_THAT(text, IsOk());
  // The member order and names Go's struct tags give, so FromJSON reads it.
  EXPECT_THAT(*text, ::testing::MatchesRegex(
                         R"(\{"id":"[0-9a-f-]{36}","type":"customer\.created","timestamp":"2026-11-30T10:11:12\.123Z",)"
                         R"("payload":\{"customer_id":"cust-42","details":\{"tier":"gold"\}\}\})"));
  Envelope back;
  absl::StatusOr<CustomerEvent> event = FromJson<CustomerEvent>(*text, &back);
  ASSERT_THAT(event, IsOk());
  EXPECT_EQ(event->customer_id, "cust-42");
  EXPECT_EQ(back.time, clock.Now());
  EXPECT_EQ(back.id.size(), 36u);
}

}  // namespace
}  // namespace herald
