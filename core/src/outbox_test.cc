#include "herald/core/outbox.h"

#include <optional>
#include <string>
#include <string_view>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/wire.h"
#include "herald/testing/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::IsOkAndHolds;
using ::herald::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

TEST(IsValidSqlIdentifier, AcceptsPlainNamesAndRejectsHostileOnes) {
  EXPECT_TRUE(IsValidSqlIdentifier("outbox"));
  EXPECT_TRUE(IsValidSqlIdentifier("_Outbox_2"));
  EXPECT_TRUE(IsValidSqlIdentifier(std::string(63, 'a')));
  EXPECT_FALSE(IsValidSqlIdentifier(""));
  EXPECT_FALSE(IsValidSqlIdentifier(std::string(64, 'a')));
  EXPECT_FALSE(IsValidSqlIdentifier("1outbox"));
  EXPECT_FALSE(IsValidSqlIdentifier("out-box"));
  EXPECT_FALSE(IsValidSqlIdentifier("outbox\"; DROP TABLE x; --"));
  EXPECT_FALSE(IsValidSqlIdentifier("out box"));
  EXPECT_FALSE(IsValidSqlIdentifier(std::string("out\0box", 7)));
  EXPECT_FALSE(IsValidSqlIdentifier("outbøx"));
}

TEST(CheckSqlIdentifier, NamesTheOptionAndTheRuleAndEscapesTheValue) {
  EXPECT_THAT(CheckSqlIdentifier("SqliteOptions.outbox_table", "herald_outbox"), IsOk());
  absl::Status status = CheckSqlIdentifier("PostgresOptions.schema", "x\"; DROP\n");
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr("PostgresOptions.schema"), HasSubstr("[A-Za-z0-9_]"),
                                     HasSubstr("x\\\"; DROP\\n"))));
  // A huge value is cut, so the message stays readable.
  status = CheckSqlIdentifier("SqliteOptions.inbox_table", std::string(10000, '-'));
  EXPECT_THAT(status, Not(IsOk()));
  EXPECT_LT(status.message().size(), 300u);
}

// ---- The headers column: headers and the CloudEvents attributes ----

Envelope WithAttributes() {
  Envelope e;
  e.id = "0190b5d2-0000-7000-8000-000000000001";
  e.type = "order.placed";
  e.subject = "orders/o-1";
  e.dataschema = "https://schemas.example.com/order/v2.json";
  e.extensions = {{"region", "eu-1"}, {"tenant42", "acme \"east\""}};
  e.headers = {{"traceparent", "00-abc-def-01"}, {"x-dup", "1"}, {"x-dup", "2"}, {"content-type", "text/plain"}};
  return e;
}

Envelope Decoded(std::string_view column) {
  Envelope e;
  EXPECT_THAT(DecodeOutboxHeaders(column, e), IsOk()) << column;
  return e;
}

TEST(OutboxHeadersColumn, CarriesSubjectDataschemaAndExtensionsBesideTheHeaders) {
  const Envelope e = WithAttributes();
  absl::StatusOr<std::string> column = EncodeOutboxHeaders(e);
  ASSERT_THAT(column, IsOk());
  // Under the Kafka binary-mode names, attributes first, as on a record.
  EXPECT_EQ(*column, R"([["ce_subject","orders/o-1"],["ce_dataschema","https://schemas.example.com/order/v2.json"],)"
                     R"(["ce_region","eu-1"],["ce_tenant42","acme \"east\""],["traceparent","00-abc-def-01"],)"
                     R"(["x-dup","1"],["x-dup","2"],["content-type","text/plain"]])");
  Envelope read = Decoded(*column);
  EXPECT_EQ(read.subject, e.subject);
  EXPECT_EQ(read.dataschema, e.dataschema);
  EXPECT_EQ(read.extensions, e.extensions);
  EXPECT_EQ(read.headers, e.headers);

  // Each attribute alone, and none at all.
  Envelope only_subject;
  only_subject.subject = "s";
  EXPECT_THAT(EncodeOutboxHeaders(only_subject), IsOkAndHolds(R"([["ce_subject","s"]])"));
  Envelope only_extension;
  only_extension.extensions = {{"partitionkey", "pk"}};
  EXPECT_THAT(EncodeOutboxHeaders(only_extension), IsOkAndHolds(R"([["ce_partitionkey","pk"]])"));
  EXPECT_THAT(EncodeOutboxHeaders(Envelope{}), IsOkAndHolds(""));
}

TEST(OutboxHeadersColumn, DecodeReplacesOnlyTheColumnsFieldsAndReadsEntriesAnywhere) {
  Envelope e = WithAttributes();
  e.topic = "orders";
  e.payload = "{}";
  // A foreign writer's order: attributes between and after headers.
  ASSERT_THAT(
      DecodeOutboxHeaders(R"([["a","1"],["ce_tenant","t"],["b","2"],["ce_subject",""],["ce_dataschema","urn:x"]])", e),
      IsOk());
  EXPECT_EQ(e.headers, (Headers{{"a", "1"}, {"b", "2"}}));
  EXPECT_EQ(e.extensions, (Extensions{{"tenant", "t"}}));
  EXPECT_EQ(e.subject, "");  // an empty subject is none
  EXPECT_EQ(e.dataschema, "urn:x");
  EXPECT_EQ(e.topic, "orders");
  EXPECT_EQ(e.payload, "{}");
  // NULL, "" and JSON null clear all four: the Go writer's rows.
  for (std::string_view none : {std::string_view(""), std::string_view("null")}) {
    Envelope cleared = WithAttributes();
    ASSERT_THAT(DecodeOutboxHeaders(none, cleared), IsOk());
    EXPECT_THAT(cleared.headers, IsEmpty());
    EXPECT_THAT(cleared.extensions, IsEmpty());
    EXPECT_EQ(cleared.subject, "");
    EXPECT_EQ(cleared.dataschema, "");
  }
}

TEST(OutboxHeadersColumn, AHeaderNamedLikeAnAttributeLosesToTheFieldAsOnTheWire) {
  Envelope e;
  e.id = "id-1";
  e.type = "t";
  e.payload = "{}";
  e.subject = "the subject";
  e.headers = {{"ce_subject", "a header"}, {"CE_Region", "x"}, {"Ce_Id", "y"}, {"kept", "1"}};
  absl::StatusOr<std::string> column = EncodeOutboxHeaders(e);
  ASSERT_THAT(column, IsOk());
  EXPECT_EQ(*column, R"([["ce_subject","the subject"],["kept","1"]])");
  // EncodeRecord drops the same headers: the row relays what a publish sends.
  absl::StatusOr<Record> record = EncodeRecord(e);
  ASSERT_THAT(record, IsOk());
  EXPECT_EQ(FindHeader(record->headers, "ce_subject"), "the subject");
  EXPECT_EQ(FindHeader(record->headers, "CE_Region"), std::nullopt);
  // Only reserved names: nothing is left to store.
  Envelope only_reserved;
  only_reserved.headers = {{"ce_x", "1"}};
  EXPECT_THAT(EncodeOutboxHeaders(only_reserved), IsOkAndHolds(""));
}

TEST(OutboxHeadersColumn, EncodeRefusesExtensionsTheWireRefuses) {
  for (Extensions bad :
       {Extensions{{"Region", "x"}}, Extensions{{"my-ext", "x"}}, Extensions{{"", "x"}}, Extensions{{"id", "x"}},
        Extensions{{"subject", "x"}}, Extensions{{"traceparent", "x"}}, Extensions{{"region", "1"}, {"region", "2"}}}) {
    Envelope e;
    e.id = "id-1";
    e.type = "order.placed";
    e.extensions = bad;
    absl::StatusOr<std::string> column = EncodeOutboxHeaders(e);
    EXPECT_THAT(column, StatusIs(absl::StatusCode::kInvalidArgument,
                                 AllOf(HasSubstr("extension \"" + bad.front().first + "\""), HasSubstr("id-1"))))
        << bad.front().first;
    EXPECT_EQ(column.status(), CheckCloudEventsExtensions(e)) << "one rule for the column and the wire";
  }
}

TEST(OutboxHeadersColumn, DecodeRejectsMalformedReservedEntriesAndLeavesTheEnvelopeAlone) {
  const struct {
    const char* column;
    const char* reason;
  } kCases[] = {
      {R"([["CE_Subject","s"]])", "not in lowercase"},
      {R"([["Ce_region","eu"]])", "not in lowercase"},
      {R"([["ce_Region","eu"]])", "lowercase letters a-z and digits"},
      {R"([["ce_my-ext","x"]])", "lowercase letters a-z and digits"},
      {R"([["ce_","x"]])", "lowercase letters a-z and digits"},
      {R"([["ce_id","x"]])", "herald writes from the envelope"},
      {R"([["ce_traceparent","00-1-2-01"]])", "herald writes from the envelope"},
      {R"([["ce_data","{}"]])", "herald writes from the envelope"},
      {R"([["ce_subject","a"],["ce_subject","b"]])", "\"ce_subject\" appears twice"},
      {R"([["ce_dataschema","a"],["x","y"],["ce_dataschema","b"]])", "\"ce_dataschema\" appears twice"},
      {R"([["ce_region","a"],["ce_region","b"]])", "appears twice"},
      {R"([["ce_subject",7]])", "not a [name, value] pair of strings"},
      {R"({"ce_subject":"s"})", "not a JSON array"},
  };
  for (const auto& c : kCases) {
    Envelope e = WithAttributes();
    const Envelope before = e;
    EXPECT_THAT(DecodeOutboxHeaders(c.column, e),
                StatusIs(absl::StatusCode::kInvalidArgument, AllOf(HasSubstr("headers column"), HasSubstr(c.reason))))
        << c.column;
    EXPECT_EQ(e, before) << c.column;
  }
}

// What decodes encodes back to the same fields: the relay can re-append
// (or a store re-read) a row without drift.
TEST(OutboxHeadersColumn, DecodeEncodeDecodeIsStable) {
  for (const char* column : {R"([["b","2"],["ce_region","eu"],["a","1"],["ce_subject","s"]])",
                             R"([["ce_partitionkey",""]])", R"([["x","\u0000"],["ce_dataschema","urn:\u00e9"]])"}) {
    Envelope first = Decoded(column);
    absl::StatusOr<std::string> again = EncodeOutboxHeaders(first);
    ASSERT_THAT(again, IsOk());
    EXPECT_EQ(Decoded(*again), first) << column;
  }
}

}  // namespace
}  // namespace herald
