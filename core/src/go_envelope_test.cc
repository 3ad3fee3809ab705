// Rows and raw publishes that carry a Go service's whole JSON envelope
// (the seed's evt.ToJSON()): UnwrapJsonEnvelope, the relay and
// Bus::PublishRaw keep its id, time and payload bytes; a bare payload stays a
// payload. And the relay's key_from option, which gives keyless rows a key.
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/relay.h"
#include "herald/core/wire.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/fake_clock.h"
#include "herald/testing/in_memory_outbox_store.h"
#include "herald/testing/sample_events.h"
#include "herald/testing/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::CustomerEvent;
using ::herald::testing::FakeTransport;
using ::herald::testing::FakeClock;
using ::herald::testing::InMemoryOutboxStore;
using ::herald::testing::IsOk;
using ::herald::testing::IsOkAndHolds;
using ::herald::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// What Go's json.Marshal writes for the seed's CustomerEvent (HTML
// characters escaped, map keys sorted, RFC3339Nano time).
constexpr std::string_view kGoId = "9f1c2b8e-5d7a-4c3e-8b1a-2f6e4d9c0a11";
constexpr std::string_view kGoPayload =
    R"({"customer_id":"cust-42","details":{"name":"Ada \u003cA\u003e","tier":"gold"}})";
std::string GoEnvelope(std::string_view type = "customer.created",
                       std::string_view timestamp = "2026-11-30T10:11:12.123456789Z") {
  return herald::StrCat(R"({"id":")", kGoId, R"(","type":")", type, R"(","timestamp":")", timestamp, R"(","payload":)",
                        kGoPayload, "}");
}
const absl::Time kGoTime = absl::FromUnixSeconds(1796033472) + absl::Nanoseconds(123456789);

// An outbox row as the seed's 3-column INSERT leaves it: the store's own id
// and time, no key, the Go envelope in event_payload.
Envelope GoRow(std::string payload, std::string type = "customer.created") {
  static int rows = 0;
  Envelope e;
  e.id = herald::StrCat("row-id-from-the-table-default-", ++rows);
  e.type = std::move(type);
  e.topic = "customer-events";
  e.time = absl::FromUnixSeconds(1796040000);
  e.payload = std::move(payload);
  return e;
}

TEST(UnwrapJsonEnvelope, TakesTheGoIdTimeAndPayloadBytes) {
  Envelope e = GoRow(GoEnvelope());
  ASSERT_TRUE(UnwrapJsonEnvelope(e));
  EXPECT_EQ(e.id, kGoId);
  EXPECT_EQ(e.time, kGoTime);
  EXPECT_EQ(e.payload, kGoPayload);
  EXPECT_EQ(e.content_type, "application/json");
  EXPECT_EQ(e.type, "customer.created");
  EXPECT_EQ(e.topic, "customer-events");
  // On the wire it is the Go envelope again, byte for byte.
  EXPECT_THAT(EncodeJsonEnvelope(e), IsOkAndHolds(GoEnvelope()));
}

TEST(UnwrapJsonEnvelope, ReadsLocalOffsetsAndJsonbSpacing) {
  Envelope e = GoRow(GoEnvelope("customer.created", "2026-11-30T11:11:12.123456789+01:00"));
  ASSERT_TRUE(UnwrapJsonEnvelope(e));
  EXPECT_EQ(e.time, kGoTime);
  // A JSONB column renders members in its own order with spaces.
  Envelope j = GoRow(R"({"id": "x-1", "type": "customer.created", "payload": {"customer_id": "c1"}, )"
                     R"("timestamp": "2026-11-30T10:11:12.123456789Z"})");
  ASSERT_TRUE(UnwrapJsonEnvelope(j));
  EXPECT_EQ(j.id, "x-1");
  EXPECT_EQ(j.payload, R"({"customer_id": "c1"})");
  EXPECT_EQ(j.time, kGoTime);
}

TEST(UnwrapJsonEnvelope, LeavesBarePayloadsAlone) {
  const std::vector<std::string> bare = {
      // An id but no type: a bare payload.
      R"({"id":"order-7","timestamp":"2026-11-30T10:11:12Z","payload":{}})",
      // A type other than the row's.
      GoEnvelope("customer.updated"),
      // A member beyond the four: unwrapping would drop it.
      R"({"id":"a","type":"customer.created","timestamp":"2026-11-30T10:11:12Z","payload":{},"extra":1})",
      // A repeated member.
      R"({"id":"a","id":"b","type":"customer.created","timestamp":"2026-11-30T10:11:12Z"})",
      // Not a time, an empty id, a non-string id, no payload.
      R"({"id":"a","type":"customer.created","timestamp":"yesterday","payload":{}})",
      R"({"id":"","type":"customer.created","timestamp":"2026-11-30T10:11:12Z","payload":{}})",
      R"({"id":7,"type":"customer.created","timestamp":"2026-11-30T10:11:12Z","payload":{}})",
      R"({"id":"a","type":"customer.created","timestamp":"2026-11-30T10:11:12Z","other":{}})",
      // A member name written with escapes (neither Go nor JSONB does that).
      R"({"id":"a","type":"customer.created","\u0074imestamp":"2026-11-30T10:11:12Z","payload":{}})",
      // Not an object, not JSON.
      R"(["id","type","timestamp","payload"])",
      R"({"id":"a","type":"customer.created",)",
      R"({"customer_id":"cust-42","details":{"name":"Ada"}})",
  };
  for (const std::string& payload : bare) {
    Envelope e = GoRow(payload);
    Envelope before = e;
    EXPECT_FALSE(UnwrapJsonEnvelope(e)) << payload;
    EXPECT_EQ(e, before) << payload;
  }
  Envelope binary = GoRow(GoEnvelope());
  binary.content_type = "application/octet-stream";
  EXPECT_FALSE(UnwrapJsonEnvelope(binary));
}

TEST(UnwrapJsonEnvelope, AStringPayloadBecomesText) {
  Envelope e = GoRow(R"({"id":"a","type":"note","timestamp":"2026-11-30T10:11:12Z","payload":"hi \"you\""})", "note");
  ASSERT_TRUE(UnwrapJsonEnvelope(e));
  EXPECT_EQ(e.payload, "hi \"you\"");
  EXPECT_EQ(e.content_type, "text/plain");
}

// The sample CustomerEvent reads and writes what Go's json.Marshal writes for
// CustomerEventPayload{CustomerID string; Details map[string]string}.
TEST(SampleCustomerEvent, DecodesAndEncodesWhatGoMarshals) {
  Envelope e = GoRow(GoEnvelope());
  ASSERT_TRUE(UnwrapJsonEnvelope(e));
  absl::StatusOr<CustomerEvent> event = DecodeEvent<CustomerEvent>(e);
  ASSERT_THAT(event, IsOk());
  EXPECT_EQ(event->type, CustomerEvent::Type::kCreated);
  EXPECT_EQ(event->customer_id, "cust-42");
  EXPECT_EQ(event->details, (CustomerEvent::Details{{"name", "Ada <A>"}, {"tier", "gold"}}));
  // Go writes a nil map as null and an empty one as {}; both read and write back.
  for (std::string_view go : {R"({"customer_id":"c1","details":null})", R"({"customer_id":"c1","details":{}})"}) {
    Envelope nil = GoRow(std::string(go));
    absl::StatusOr<CustomerEvent> decoded = DecodeEvent<CustomerEvent>(nil);
    ASSERT_THAT(decoded, IsOk()) << go;
    EXPECT_EQ(MakeEnvelope(*decoded).payload, go);
  }
  // A string is not Go's map: an error, not an empty event.
  EXPECT_THAT(DecodeEvent<CustomerEvent>(GoRow(R"({"customer_id":"c1","details":"Ada"})")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("details")));
}

class GoRowsTest : public ::testing::Test {
 protected:
  void Commit(std::vector<Envelope> rows) {
    absl::StatusOr<std::unique_ptr<Transaction>> tx = store_.Begin();
    ASSERT_THAT(tx, IsOk());
    for (const Envelope& e : rows) ASSERT_THAT(store_.Append(**tx, e), IsOk());
    ASSERT_THAT((*tx)->Commit(), IsOk());
  }
  RelayOptions Options() {
    RelayOptions options;
    options.clock = &clock_;
    return options;
  }

  FakeClock clock_;
  InMemoryOutboxStore store_{clock_};
  Bus bus_{std::make_unique<FakeTransport>()};
  FakeTransport& fake_ = bus_.transport<FakeTransport>();
};

TEST_F(GoRowsTest, RelayKeepsTheGoIdTimeAndPayloadOfAGoWrittenRow) {
  Commit({GoRow(GoEnvelope())});
  OutboxRelay relay(store_, bus_, Options());
  ASSERT_THAT(relay.RunOnce(), IsOkAndHolds(1));
  ASSERT_EQ(fake_.published().size(), 1u);
  const Envelope sent = fake_.published()[0];
  EXPECT_EQ(sent.id, kGoId);
  EXPECT_EQ(sent.time, kGoTime);
  EXPECT_EQ(sent.payload, kGoPayload) << "not wrapped twice";
  EXPECT_EQ(sent.type, "customer.created");
  EXPECT_EQ(sent.topic, "customer-events");
  EXPECT_THAT(EncodeJsonEnvelope(sent), IsOkAndHolds(GoEnvelope()));
}

TEST_F(GoRowsTest, RelayKeepsABarePayloadWithAnIdAsItIs) {
  const std::string bare = R"({"id":"order-7","type":"other","timestamp":"2026-11-30T10:11:12Z","payload":{}})";
  Envelope row = GoRow(bare);
  Commit({row});
  OutboxRelay relay(store_, bus_, Options());
  ASSERT_THAT(relay.RunOnce(), IsOkAndHolds(1));
  ASSERT_EQ(fake_.published().size(), 1u);
  EXPECT_EQ(fake_.published()[0].id, row.id);
  EXPECT_EQ(fake_.published()[0].payload, bare);
}

TEST_F(GoRowsTest, PublishRawOfAGoEnvelopeKeepsItsIdTimeAndPayload) {
  ASSERT_THAT(bus_.PublishRaw("customer-events", "customer.created", GoEnvelope()), IsOk());
  ASSERT_THAT(bus_.PublishRaw("customer-events", "customer.created", R"({"id":"order-7","payload":{}})"), IsOk());
  ASSERT_EQ(fake_.published().size(), 2u);
  EXPECT_EQ(fake_.published()[0].id, kGoId);
  EXPECT_EQ(fake_.published()[0].time, kGoTime);
  EXPECT_EQ(fake_.published()[0].payload, kGoPayload);
  EXPECT_NE(fake_.published()[1].id, "order-7");
  EXPECT_EQ(fake_.published()[1].payload, R"({"id":"order-7","payload":{}})");
}

TEST_F(GoRowsTest, KeyFromGivesKeylessRowsAKeyByTypeThenTopic) {
  Envelope keyed = GoRow(R"({"customer_id":"from-payload"})");
  keyed.key = "own-key";
  Envelope other_topic = GoRow(R"({"customer_id":"c9"})", "product.created");
  other_topic.topic = "product-events";
  Commit({GoRow(GoEnvelope()),                                    // Go row: pointer into the inner payload
          GoRow(R"({"customer_id":"c7"})", "customer.updated"),   // bare payload, by topic
          GoRow(R"({"customer_id":12345})", "customer.deleted"),  // an integer
          GoRow(R"({"other":"x"})", "customer.updated"),          // nothing there: keyless
          keyed, other_topic});
  RelayOptions options = Options();
  options.key_from = {{"customer-events", "/customer_id"}, {"customer.deleted", "/customer_id"}};
  OutboxRelay relay(store_, bus_, options);
  ASSERT_THAT(relay.RunOnce(), IsOkAndHolds(6));
  std::vector<std::string> keys;
  for (const Envelope& e : fake_.published()) keys.push_back(e.key);
  EXPECT_THAT(keys, ElementsAre("cust-42", "c7", "12345", "", "own-key", ""));
  EXPECT_EQ(fake_.published()[0].id, kGoId);
}

TEST_F(GoRowsTest, KeyFromTypeWinsOverTopic) {
  Commit({GoRow(R"({"customer_id":"c1","account":"a1"})")});
  RelayOptions options = Options();
  options.key_from = {{"customer-events", "/customer_id"}, {"customer.created", "/account"}};
  OutboxRelay relay(store_, bus_, options);
  ASSERT_THAT(relay.RunOnce(), IsOkAndHolds(1));
  EXPECT_EQ(fake_.published()[0].key, "a1");
}

TEST_F(GoRowsTest, InvalidKeyPointerIsRefused) {
  Commit({GoRow(GoEnvelope())});
  RelayOptions options = Options();
  options.key_from = {{"customer-events", "customer_id"}};
  OutboxRelay relay(store_, bus_, options);
  EXPECT_THAT(relay.RunOnce(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("JSON pointer")));
  EXPECT_THAT(relay.Start(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("customer-events")));
  EXPECT_TRUE(fake_.published().empty());
}

// A derived key orders like a stored one within a batch: a failed row holds
// back the later rows of its key, not the others.
TEST_F(GoRowsTest, ADerivedKeyHoldsBackLaterRowsOfThatKeyAfterAFailure) {
  Commit({GoRow(R"({"customer_id":"c1","n":1})"), GoRow(R"({"customer_id":"c2","n":1})"),
          GoRow(R"({"customer_id":"c1","n":2})")});
  RelayOptions options = Options();
  options.key_from = {{"customer-events", "/customer_id"}};
  fake_.FailNextPublishes(1, absl::UnavailableError("broker down"));
  OutboxRelay relay(store_, bus_, options);
  ASSERT_THAT(relay.RunOnce(), IsOkAndHolds(1));  // only c2 is marked
  EXPECT_EQ(store_.Pending().size(), 2u);
}

}  // namespace
}  // namespace herald
