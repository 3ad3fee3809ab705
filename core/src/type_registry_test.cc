#include "herald/core/type_registry.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/testing/sample_events.h"
#include "herald/testing/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Version 3: v1 had "amount" in whole units, v2 renamed nothing but added
// "currency" (default "EUR"), v3 stores cents.
struct OrderPlaced {
  std::string order_id;
  int64_t amount_cents = 0;
  std::string currency;
  static constexpr std::string_view kType = "order.placed";
  static constexpr int kSchemaVersion = 3;
  static constexpr auto JsonFields() {
    return json::Fields(json::Field("order_id", &OrderPlaced::order_id),
                        json::Field("amount_cents", &OrderPlaced::amount_cents),
                        json::Field("currency", &OrderPlaced::currency));
  }
};

// Another C++ type claiming the same type name.
struct OrderPlacedImpostor {
  static constexpr std::string_view kType = "order.placed";
  static constexpr auto JsonFields() { return json::Fields(); }
};

struct CustomerEvent {
  enum class Type { kCreated, kDeleted };
  Type type = Type::kCreated;
  std::string customer_id;
  static constexpr TypeNames<Type, 2> kTypes{{{Type::kCreated, "customer.created"}, {Type::kDeleted, "customer.deleted"}}};
  static constexpr auto JsonFields() { return json::Fields(json::Field("customer_id", &CustomerEvent::customer_id)); }
};

Envelope OrderEnvelope(int version, std::string payload) {
  Envelope e;
  e.id = "e1";
  e.type = "order.placed";
  e.topic = "order-events";
  e.schema_version = version;
  e.payload = std::move(payload);
  return e;
}

absl::Status V1ToV2(rapidjson::Document& d) {
  d.AddMember("currency", "EUR", d.GetAllocator());
  return absl::OkStatus();
}

absl::Status V2ToV3(rapidjson::Document& d) {
  if (!d.HasMember("amount") || !d["amount"].IsInt64()) return absl::InvalidArgumentError("v2 payload lacks amount");
  int64_t cents = d["amount"].GetInt64() * 100;
  d.RemoveMember("amount");
  d.AddMember("amount_cents", cents, d.GetAllocator());
  return absl::OkStatus();
}

TypeRegistry FullRegistry() {
  TypeRegistry r;
  EXPECT_THAT(r.Register<OrderPlaced>(), IsOk());
  EXPECT_THAT(r.AddUpcaster("order.placed", 1, V1ToV2), IsOk());
  EXPECT_THAT(r.AddUpcaster("order.placed", 2, V2ToV3), IsOk());
  return r;
}

TEST(TypeRegistry, RegistersEveryTypeNameOfAnEvent) {
  TypeRegistry r;
  ASSERT_THAT(r.Register<CustomerEvent>(), IsOk());
  ASSERT_THAT(r.Register<OrderPlaced>(), IsOk());
  EXPECT_THAT(r.Types(), ElementsAre("customer.created", "customer.deleted", "order.placed"));
  EXPECT_TRUE(r.Contains("customer.deleted"));
  EXPECT_FALSE(r.Contains("customer.updated"));
  ASSERT_NE(r.Find("order.placed"), nullptr);
  EXPECT_EQ(r.Find("order.placed")->version, 3);
  EXPECT_EQ(r.Find("nope"), nullptr);
}

TEST(TypeRegistry, RegisteringTheSameTypeTwiceIsFine) {
  TypeRegistry r;
  ASSERT_THAT(r.Register<OrderPlaced>(), IsOk());
  EXPECT_THAT(r.Register<OrderPlaced>(), IsOk());
}

TEST(TypeRegistry, SameNameForAnotherCppTypeIsAlreadyExists) {
  TypeRegistry r;
  ASSERT_THAT(r.Register<OrderPlaced>(), IsOk());
  EXPECT_THAT(r.Register<OrderPlacedImpostor>(),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("order.placed")));
}

TEST(TypeRegistry, AddUpcasterValidates) {
  TypeRegistry r;
  EXPECT_THAT(r.AddUpcaster("order.placed", 1, V1ToV2), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_THAT(r.Register<OrderPlaced>(), IsOk());
  EXPECT_THAT(r.AddUpcaster("order.placed", 3, V1ToV2), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(r.AddUpcaster("order.placed", 0, V1ToV2), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(r.AddUpcaster("order.placed", 1, nullptr), StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_THAT(r.AddUpcaster("order.placed", 1, V1ToV2), IsOk());
  EXPECT_THAT(r.AddUpcaster("order.placed", 1, V1ToV2), StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST(TypeRegistry, CurrentVersionDecodesDirectly) {
  TypeRegistry r = FullRegistry();
  absl::StatusOr<OrderPlaced> o =
      r.Decode<OrderPlaced>(OrderEnvelope(3, R"({"order_id":"o1","amount_cents":250,"currency":"NOK"})"));
  ASSERT_THAT(o, IsOk());
  EXPECT_EQ(o->amount_cents, 250);
  EXPECT_EQ(o->currency, "NOK");
}

TEST(TypeRegistry, UpcasterChainFromV1ToV3) {
  TypeRegistry r = FullRegistry();
  absl::StatusOr<OrderPlaced> o = r.Decode<OrderPlaced>(OrderEnvelope(1, R"({"order_id":"o1","amount":12})"));
  ASSERT_THAT(o, IsOk());
  EXPECT_EQ(o->order_id, "o1");
  EXPECT_EQ(o->amount_cents, 1200);
  EXPECT_EQ(o->currency, "EUR");
  absl::StatusOr<OrderPlaced> from_v2 =
      r.Decode<OrderPlaced>(OrderEnvelope(2, R"({"order_id":"o2","amount":3,"currency":"SEK"})"));
  ASSERT_THAT(from_v2, IsOk());
  EXPECT_EQ(from_v2->amount_cents, 300);
  EXPECT_EQ(from_v2->currency, "SEK");
}

TEST(TypeRegistry, MissingStepIsFailedPreconditionNamingIt) {
  TypeRegistry r;
  ASSERT_THAT(r.Register<OrderPlaced>(), IsOk());
  ASSERT_THAT(r.AddUpcaster("order.placed", 1, V1ToV2), IsOk());
  EXPECT_THAT(r.Decode<OrderPlaced>(OrderEnvelope(1, R"({"order_id":"o1","amount":12})")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("from version 2 to 3")));
}

TEST(TypeRegistry, NewerVersionIsFailedPrecondition) {
  TypeRegistry r = FullRegistry();
  EXPECT_THAT(r.Decode<OrderPlaced>(OrderEnvelope(4, R"({"order_id":"o1"})")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("newer")));
}

TEST(TypeRegistry, FailingUpcasterIsInvalidArgument) {
  TypeRegistry r = FullRegistry();
  EXPECT_THAT(r.Decode<OrderPlaced>(OrderEnvelope(2, R"({"order_id":"o1"})")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("lacks amount")));
}

TEST(TypeRegistry, UnknownTypeIsNotFound) {
  TypeRegistry r = FullRegistry();
  Envelope e = OrderEnvelope(3, "{}");
  e.type = "order.cancelled";
  EXPECT_THAT(r.Decode<OrderPlaced>(e),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("order.cancelled")));
}

TEST(TypeRegistry, UndecodablePayloadIsInvalidArgument) {
  TypeRegistry r = FullRegistry();
  EXPECT_THAT(r.Decode<OrderPlaced>(OrderEnvelope(1, "{oops")), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(r.Decode<OrderPlaced>(OrderEnvelope(3, R"({"amount_cents":"x"})")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("amount_cents")));
}

TEST(TypeRegistry, UpcastReturnsTheRewrittenPayload) {
  TypeRegistry r = FullRegistry();
  absl::StatusOr<rapidjson::Document> d = r.Upcast(OrderEnvelope(1, R"({"order_id":"o1","amount":2})"), 3);
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(json::Serialize(*d), R"({"order_id":"o1","currency":"EUR","amount_cents":200})");
}

}  // namespace
}  // namespace herald

namespace herald {
namespace {

using ::herald::testing::StatusIs;
using ::testing::HasSubstr;

// About 200 KB of nesting in a payload: decoding it must be an error that
// names the limit, not a stack overflow.
std::vector<std::string> HostilePayloads() {
  std::string objects;
  for (int i = 0; i < 50'000; ++i) objects += R"({"a":)";
  objects += "1" + std::string(50'000, '}');
  return {std::string(100'000, '[') + std::string(100'000, ']'), objects, std::string(200'000, '[')};
}

TEST(TypeRegistryLimits, DeeplyNestedPayloadIsInvalidArgumentForUpcastAndDecode) {
  TypeRegistry r = FullRegistry();
  for (const std::string& payload : HostilePayloads()) {
    EXPECT_THAT(r.Upcast(OrderEnvelope(1, payload), 3),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("kMaxJsonDepth = 128")));
    EXPECT_THAT(r.Decode<OrderPlaced>(OrderEnvelope(1, payload)),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("kMaxJsonDepth = 128")));
    EXPECT_THAT(r.Decode<OrderPlaced>(OrderEnvelope(3, payload)),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("kMaxJsonDepth = 128")));
    // The typed decode without a registry (DecodeEvent), for the sample event.
    Envelope e = OrderEnvelope(1, payload);
    e.type = "customer.updated";
    EXPECT_THAT(DecodeEvent<::herald::testing::CustomerEvent>(e),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("kMaxJsonDepth = 128")));
  }
}

TEST(TypeRegistryLimits, NulByteAndJunkAfterThePayloadAreInvalidJson) {
  TypeRegistry r = FullRegistry();
  const std::string junk = std::string(R"({"order_id":"o1","amount":2})") + std::string("\0junk", 5);
  EXPECT_THAT(r.Upcast(OrderEnvelope(1, junk), 3), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NUL")));
  EXPECT_THAT(r.Decode<OrderPlaced>(OrderEnvelope(3, junk)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NUL")));
  Envelope e = OrderEnvelope(1, std::string(R"({"customer_id":"c1"})") + std::string("\0x", 2));
  e.type = "customer.updated";
  EXPECT_THAT(DecodeEvent<::herald::testing::CustomerEvent>(e),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NUL")));
}

}  // namespace
}  // namespace herald
