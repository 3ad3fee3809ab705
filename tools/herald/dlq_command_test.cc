// The pure parts of `herald dlq` (label unit): record positions, time
// bounds, rates, the filter, the replay record and marker, the listing.
#include "dlq_command.h"

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/wire.h"
#include "herald/testing/status_matchers.h"
#include "rapidjson/document.h"

namespace herald::tools {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ParseRecordPosition, TakesPartitionColonOffset) {
  absl::StatusOr<RecordPosition> p = ParseRecordPosition("3:17");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->partition, 3);
  EXPECT_EQ(p->offset, 17);
  p = ParseRecordPosition("0:0");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->offset, 0);
}

TEST(ParseRecordPosition, RefusesEverythingElse) {
  for (const char* bad :
       {"", "3", "3:", ":17", "a:1", "1:b", "-1:2", "1:-2", "1:2:3", "1.5:2", " 1:2", "1:2x", "99999999999:1"}) {
    EXPECT_THAT(ParseRecordPosition(bad),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("write PARTITION:OFFSET")))
        << bad;
  }
}

TEST(ParseTimeBound, TakesADurationBackFromNowOrAnRfc3339Time) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  absl::StatusOr<absl::Time> t = ParseTimeBound("1h", now);
  ASSERT_THAT(t, IsOk());
  EXPECT_EQ(*t, now - absl::Hours(1));
  t = ParseTimeBound("2h30m", now);
  ASSERT_THAT(t, IsOk());
  EXPECT_EQ(*t, now - absl::Minutes(150));
  t = ParseTimeBound("2026-12-01T10:00:00Z", now);
  ASSERT_THAT(t, IsOk());
  EXPECT_EQ(*t, absl::FromUnixSeconds(1796119200));
  t = ParseTimeBound("2026-12-01T11:00:00+01:00", now);
  ASSERT_THAT(t, IsOk());
  EXPECT_EQ(*t, absl::FromUnixSeconds(1796119200));
  for (const char* bad : {"", "yesterday", "5", "-1h", "2026-12-01", "2026-12-01 10:00:00"}) {
    EXPECT_THAT(ParseTimeBound(bad, now), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("RFC 3339"))) << bad;
  }
}

TEST(ParseRate, TakesRecordsPerSecond) {
  EXPECT_THAT(ParseRate("50/s"), IsOk());
  EXPECT_EQ(*ParseRate("50/s"), 50.0);
  EXPECT_EQ(*ParseRate("0.5/s"), 0.5);
  EXPECT_EQ(*ParseRate("20"), 20.0);
  for (const char* bad : {"", "0", "0/s", "-1/s", "fast", "5/m", "/s", "nan", "inf"}) {
    EXPECT_THAT(ParseRate(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
}

// A dead letter as the Bus writes one of a JSON envelope record.
DeadLetterEntry Entry(std::string_view key, std::string_view type, std::string_view reason,
                      absl::Time written = absl::FromUnixSeconds(1'800'000'000)) {
  Envelope e;
  e.id = "0190f3b2-0000-7000-8000-000000000001";
  e.type = std::string(type);
  e.topic = "orders";
  e.key = std::string(key);
  e.time = absl::FromUnixSeconds(1'799'999'000);
  e.payload = "{\"n\":1}";
  e.headers = {{"correlation-id", "c-1"}};
  absl::StatusOr<Record> record = EncodeRecord(e, WireMode::kJsonEnvelope);
  EXPECT_THAT(record, IsOk());
  AddDeadLetterHeaders(record->headers, absl::InvalidArgumentError(ToAbsl(reason)), 3, "orders", 2, 41, "billing");
  return MakeDeadLetterEntry("orders.dlq", 1, 17, written, *std::move(record));
}

TEST(MakeDeadLetterEntry, ReadsTheHeadersAndTheOriginalEvent) {
  DeadLetterEntry entry = Entry("o-1", "order.placed", "total < 0");
  EXPECT_EQ(entry.letter.topic, "orders.dlq");
  EXPECT_EQ(entry.letter.partition, 1);
  EXPECT_EQ(entry.letter.offset, 17);
  EXPECT_EQ(entry.letter.original_topic, "orders");
  EXPECT_EQ(entry.letter.original_partition, 2);
  EXPECT_EQ(entry.letter.original_offset, 41);
  EXPECT_EQ(entry.letter.attempts, 3);
  EXPECT_EQ(entry.letter.reason, "total < 0");
  EXPECT_EQ(entry.event_id, "0190f3b2-0000-7000-8000-000000000001");
  EXPECT_EQ(entry.event_type, "order.placed");
  EXPECT_EQ(entry.decode_error, "");

  Record raw{.key = "k", .value = "not json", .headers = {}};
  AddDeadLetterHeaders(raw.headers, absl::InvalidArgumentError("undecodable"), 1, "orders", 0, 5, "g");
  DeadLetterEntry bad = MakeDeadLetterEntry("orders.dlq", 0, 3, absl::Now(), raw);
  EXPECT_EQ(bad.event_id, "");
  EXPECT_NE(bad.decode_error, "");
  // docs/cli.md: a record that does not decode has no type or id, so --type
  // and --id never select it.
  EXPECT_FALSE(DeadLetterFilter{.type = "order.placed"}.Matches(bad));
  EXPECT_FALSE(DeadLetterFilter{.id = "0190f3b2-0000-7000-8000-000000000001"}.Matches(bad));
  EXPECT_TRUE(DeadLetterFilter{}.Matches(bad));
}

TEST(DeadLetterFilter, SelectsByTypeReasonIdAndTime) {
  const absl::Time t = absl::FromUnixSeconds(1'800'000'000);
  DeadLetterEntry entry = Entry("o-1", "order.placed", "Total Is Negative", t);
  EXPECT_TRUE(DeadLetterFilter{}.Matches(entry));
  EXPECT_TRUE(DeadLetterFilter{.type = "order.placed"}.Matches(entry));
  EXPECT_FALSE(DeadLetterFilter{.type = "order"}.Matches(entry));
  EXPECT_TRUE(DeadLetterFilter{.reason_contains = "is neg"}.Matches(entry));
  EXPECT_TRUE(DeadLetterFilter{.reason_contains = "TOTAL"}.Matches(entry));
  EXPECT_FALSE(DeadLetterFilter{.reason_contains = "timeout"}.Matches(entry));
  EXPECT_TRUE(DeadLetterFilter{.id = entry.event_id}.Matches(entry));
  EXPECT_FALSE(DeadLetterFilter{.id = "other"}.Matches(entry));
  EXPECT_TRUE(DeadLetterFilter{.since = t}.Matches(entry));  // at or after
  EXPECT_FALSE(DeadLetterFilter{.since = t + absl::Seconds(1)}.Matches(entry));
  EXPECT_TRUE(DeadLetterFilter{.until = t + absl::Seconds(1)}.Matches(entry));
  EXPECT_FALSE(DeadLetterFilter{.until = t}.Matches(entry));  // before
  EXPECT_FALSE(DeadLetterFilter({.type = "order.placed", .reason_contains = "timeout"}).Matches(entry));
}

TEST(FilterFlags, ParsesTimesAndRefusesAnEmptyRange) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  DlqCommand::FilterFlags flags{.type = "t", .since = "2h", .until = "1h"};
  absl::StatusOr<DeadLetterFilter> f = flags.Parse(now);
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(*f->since, now - absl::Hours(2));
  EXPECT_EQ(*f->until, now - absl::Hours(1));
  EXPECT_EQ(f->type, "t");
  EXPECT_THAT((DlqCommand::FilterFlags{.since = "1h", .until = "2h"}).Parse(now),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is not before --until")));
  EXPECT_THAT((DlqCommand::FilterFlags{.until = "soon"}).Parse(now),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--until")));
}

TEST(ReplayRecord, KeepsKeyValueAndOriginalHeadersAndAddsTheMarker) {
  DeadLetterEntry entry = Entry("o-1", "order.placed", "bad");
  absl::StatusOr<Record> record = ReplayRecord(entry.letter);
  ASSERT_THAT(record, IsOk());
  EXPECT_EQ(record->key, "o-1");
  EXPECT_EQ(record->value, entry.letter.record.value);
  for (const auto& [name, value] : record->headers) EXPECT_FALSE(IsDeadLetterHeader(name)) << name;
  EXPECT_EQ(FindHeader(record->headers, "correlation-id").value_or(""), "c-1");
  EXPECT_EQ(FindHeader(record->headers, "herald-replayed-from").value_or(""), "orders.dlq/1/17");
  // The original headers stay in order, the marker last.
  EXPECT_EQ(record->headers.back().first, "herald-replayed-from");
  EXPECT_EQ(record->headers.size(), entry.letter.OriginalHeaders().size() + 1);
  // It decodes as the original event.
  absl::StatusOr<Envelope> e = DecodeRecord("orders", record->key, record->value, record->headers);
  ASSERT_THAT(e, IsOk());
  EXPECT_EQ(e->id, entry.event_id);
}

TEST(ReplayRecord, AReplayDeadLetteredAgainNamesItsLatestDeadLetterOnly) {
  DeadLetterEntry first = Entry("o-1", "order.placed", "bad");
  Record again = *ReplayRecord(first.letter);
  AddDeadLetterHeaders(again.headers, absl::InvalidArgumentError("still bad"), 1, "orders", 0, 99, "g");
  DeadLetterEntry second = MakeDeadLetterEntry("orders.dlq", 0, 50, absl::Now(), again);
  absl::StatusOr<Record> record = ReplayRecord(second.letter);
  ASSERT_THAT(record, IsOk());
  int markers = 0;
  for (const auto& [name, value] : record->headers) markers += name == "herald-replayed-from" ? 1 : 0;
  EXPECT_EQ(markers, 1);
  EXPECT_EQ(FindHeader(record->headers, "herald-replayed-from").value_or(""), "orders.dlq/0/50");
}

TEST(ReplayRecord, RefusesADeadLetterWrittenWithoutItsValue) {
  DeadLetterEntry entry = Entry("o-1", "order.placed", "too big");
  CutDeadLetter(entry.letter.record, DeadLetterCut::kValue);
  DeadLetterEntry cut = MakeDeadLetterEntry("orders.dlq", 1, 17, absl::Now(), entry.letter.record);
  EXPECT_THAT(ReplayRecord(cut.letter),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("the original is at orders/2@41")));
}

TEST(ReplayDestination, IsToOrTheOriginalTopic) {
  DeadLetterEntry entry = Entry("o-1", "order.placed", "bad");
  EXPECT_EQ(*ReplayDestination(entry.letter, ""), "orders");
  EXPECT_EQ(*ReplayDestination(entry.letter, "orders-retry"), "orders-retry");
  DeadLetter foreign;  // no herald-dlq-* headers
  EXPECT_THAT(ReplayDestination(foreign, ""), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--to")));
  EXPECT_EQ(*ReplayDestination(foreign, "x"), "x");
}

TEST(ReplayMarker, NamesTopicPartitionAndOffset) {
  EXPECT_EQ(ReplayMarker("orders.dlq", 0, 17), "orders.dlq/0/17");
  EXPECT_EQ(ReplayedKey(3, 9), "3/9");
}

TEST(ListLine, HasCoordinatesIdTypeKeyAttemptsAgeAndTheCutReason) {
  const absl::Time written = absl::FromUnixSeconds(1'800'000'000);
  DeadLetterEntry entry = Entry("o-1", "order.placed", std::string(300, 'r'), written);
  std::string line = ListLine(entry, written + absl::Seconds(90), 20);
  EXPECT_EQ(line,
            "orders.dlq/1@17 orders/2@41 id=0190f3b2-0000-7000-8000-000000000001 type=order.placed key=o-1 "
            "attempts=3 age=1m30s reason=rrrrrrrrrrrrrrrrrrrr...");
  // A key that is not text is escaped, so a line stays a line.
  DeadLetterEntry binary = Entry(std::string("a\nb\x01", 4), "order.placed", "bad", written);
  EXPECT_THAT(ListLine(binary, written), HasSubstr("key=a\\nb\\x01 "));
}

TEST(ListJson, IsOneValidObject) {
  const absl::Time written = absl::FromUnixSeconds(1'800'000'000);
  DeadLetterEntry entry = Entry(std::string("k\xff", 2), "order.placed", "bad \"quoted\"", written);
  std::string text = ListJson(entry, written + absl::Seconds(2));
  EXPECT_THAT(text, Not(HasSubstr("\n")));
  rapidjson::Document d;
  d.Parse<rapidjson::kParseValidateEncodingFlag>(text.c_str());
  ASSERT_FALSE(d.HasParseError()) << text;
  EXPECT_STREQ(d["topic"].GetString(), "orders.dlq");
  EXPECT_EQ(d["partition"].GetInt(), 1);
  EXPECT_EQ(d["offset"].GetInt64(), 17);
  EXPECT_STREQ(d["original_topic"].GetString(), "orders");
  EXPECT_EQ(d["original_partition"].GetInt(), 2);
  EXPECT_EQ(d["original_offset"].GetInt64(), 41);
  EXPECT_STREQ(d["original_group"].GetString(), "billing");
  EXPECT_STREQ(d["type"].GetString(), "order.placed");
  EXPECT_STREQ(d["key"].GetString(), "k\\xff");  // not UTF-8: escaped
  EXPECT_EQ(d["attempts"].GetInt(), 3);
  EXPECT_STREQ(d["code"].GetString(), "INVALID_ARGUMENT");
  EXPECT_STREQ(d["reason"].GetString(), "bad \"quoted\"");
  EXPECT_STREQ(d["written"].GetString(), "2027-01-15T08:00:00.000Z");
  EXPECT_DOUBLE_EQ(d["age_seconds"].GetDouble(), 2.0);
}

TEST(DescribeValue, PrettyJsonEscapedTextOrHex) {
  EXPECT_EQ(DescribeValue("{\"a\":[1,2]}"), "{\n  \"a\": [\n    1,\n    2\n  ]\n}");
  EXPECT_EQ(DescribeValue("not json\n"), "not json\\n");
  EXPECT_EQ(DescribeValue(""), "(empty)");
  std::string binary;
  for (int i = 0; i < 20; ++i) binary.push_back(static_cast<char>(0x80 + i));
  EXPECT_EQ(DescribeValue(binary), "00000000  80 81 82 83 84 85 86 87 88 89 8a 8b 8c 8d 8e 8f\n00000010  90 91 92 93");
  EXPECT_THAT(DescribeValue(std::string(100, 'x'), 10), HasSubstr("(cut: 100 bytes in all)"));
}

}  // namespace
}  // namespace herald::tools
