#include "herald/core/envelope.h"

#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(FindHeader, ReturnsFirstMatchCaseSensitively) {
  Headers h = {{"a", "1"}, {"b", "2"}, {"a", "3"}};
  EXPECT_EQ(FindHeader(h, "a"), "1");
  EXPECT_EQ(FindHeader(h, "b"), "2");
  EXPECT_FALSE(FindHeader(h, "A").has_value());
  EXPECT_FALSE(FindHeader(h, "c").has_value());
  EXPECT_FALSE(FindHeader({}, "a").has_value());
}

TEST(FindHeader, EmptyValueIsFound) {
  Headers h = {{"empty", ""}};
  ASSERT_TRUE(FindHeader(h, "empty").has_value());
  EXPECT_EQ(*FindHeader(h, "empty"), "");
}

TEST(SetHeader, AppendsWhenAbsent) {
  Headers h = {{"a", "1"}};
  SetHeader(h, "b", "2");
  EXPECT_THAT(h, ElementsAre(Pair("a", "1"), Pair("b", "2")));
}

TEST(SetHeader, ReplacesInPlaceAndDropsDuplicates) {
  Headers h = {{"x", "0"}, {"a", "1"}, {"b", "2"}, {"a", "3"}, {"a", "4"}};
  SetHeader(h, "a", "new");
  EXPECT_THAT(h, ElementsAre(Pair("x", "0"), Pair("a", "new"), Pair("b", "2")));
}

TEST(SetHeader, IsCaseSensitive) {
  Headers h = {{"A", "1"}};
  SetHeader(h, "a", "2");
  EXPECT_THAT(h, ElementsAre(Pair("A", "1"), Pair("a", "2")));
}

TEST(Envelope, DefaultsAndEquality) {
  Envelope a;
  EXPECT_EQ(a.schema_version, 1);
  EXPECT_EQ(a.content_type, "application/json");
  EXPECT_EQ(a.time, absl::UnixEpoch());
  Envelope b = a;
  EXPECT_EQ(a, b);
  b.headers.emplace_back("h", "v");
  EXPECT_NE(a, b);
  // The CloudEvents attributes count too.
  Envelope c = a;
  c.subject = "s";
  EXPECT_NE(a, c);
  Envelope d = a;
  d.dataschema = "urn:s";
  EXPECT_NE(a, d);
  Envelope x = a;
  x.extensions = {{"region", "eu1"}};
  EXPECT_NE(a, x);
  Envelope y = x;
  EXPECT_EQ(x, y);
  y.extensions[0].second = "us1";
  EXPECT_NE(x, y);
}

TEST(Envelope, DebugStringShowsCloudEventsAttributesWhenSet) {
  Envelope e;
  e.id = "id-1";
  e.type = "t";
  EXPECT_THAT(DebugString(e), ::testing::Not(HasSubstr("subject=")));
  e.subject = "cust-1";
  e.dataschema = "urn:schema";
  e.extensions = {{"region", "eu1"}, {"sequence", "7"}};
  std::string s = DebugString(e);
  EXPECT_THAT(s, HasSubstr("subject=cust-1"));
  EXPECT_THAT(s, HasSubstr("dataschema=urn:schema"));
  EXPECT_THAT(s, HasSubstr("region=eu1 sequence=7"));
}

TEST(Envelope, DebugStringNamesTheEssentials) {
  Envelope e;
  e.id = "id-1";
  e.type = "customer.created";
  e.topic = "customer-events";
  e.key = "cust-1";
  e.payload = "12345";
  std::string s = DebugString(e);
  EXPECT_THAT(s, HasSubstr("customer.created"));
  EXPECT_THAT(s, HasSubstr("id-1"));
  EXPECT_THAT(s, HasSubstr("customer-events"));
  EXPECT_THAT(s, HasSubstr("cust-1"));
  EXPECT_THAT(s, HasSubstr("5B"));
  EXPECT_THAT(s, HasSubstr("time=1970-01-01T00:00:00Z"));  // UTC with Z, as on the wire
  std::ostringstream os;
  os << e;
  EXPECT_EQ(os.str(), s);
}

}  // namespace
}  // namespace herald
