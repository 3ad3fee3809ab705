#include "herald/testing/event_matchers.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

Envelope Sample() {
  Envelope e;
  e.id = "id-1";
  e.type = "customer.created";
  e.topic = "customer-events";
  e.key = "cust-1";
  e.payload = R"({"customer_id":"cust-1"})";
  e.headers = {{"correlation-id", "req-7"}, {"traceparent", "00-abc-def-01"}, {"correlation-id", "second"}};
  return e;
}

template <typename M, typename T>
std::string Explain(const M& matcher, const T& value) {
  ::testing::StringMatchResultListener listener;
  ::testing::ExplainMatchResult(matcher, value, &listener);
  return listener.str();
}

TEST(EventMatchers, MatchFieldsByValue) {
  Envelope e = Sample();
  EXPECT_THAT(e, HasType("customer.created"));
  EXPECT_THAT(e, Not(HasType("customer.deleted")));
  EXPECT_THAT(e, HasKey("cust-1"));
  EXPECT_THAT(e, Not(HasKey("cust-2")));
  EXPECT_THAT(e, HasTopic("customer-events"));
  EXPECT_THAT(e, HasPayload(HasSubstr("cust-1")));
}

TEST(EventMatchers, AcceptInnerMatchers) {
  Envelope e = Sample();
  EXPECT_THAT(e, HasType(StartsWith("customer.")));
  EXPECT_THAT(e, AllOf(HasKey(Not(::testing::IsEmpty())), HasHeader("traceparent", StartsWith("00-"))));
}

TEST(EventMatchers, HasHeaderLooksAtTheFirstHeaderOfTheName) {
  Envelope e = Sample();
  EXPECT_THAT(e, HasHeader("correlation-id", "req-7"));
  EXPECT_THAT(e, Not(HasHeader("correlation-id", "second")));
  EXPECT_THAT(e, Not(HasHeader("tracestate", ::testing::_)));
  EXPECT_THAT(e, HasHeaderNamed("traceparent"));
  EXPECT_THAT(e, Not(HasHeaderNamed("Traceparent")));  // case-sensitive
}

TEST(EventMatchers, WorkOnMessages) {
  Message m;
  m.envelope = Sample();
  EXPECT_THAT(m, HasType("customer.created"));
  EXPECT_THAT(m, HasHeader("correlation-id", "req-7"));
}

TEST(EventMatchers, ExplainMismatches) {
  Envelope e = Sample();
  EXPECT_THAT(Explain(HasType("x"), e), HasSubstr("customer.created"));
  EXPECT_THAT(Explain(HasHeader("tracestate", "x"), e), HasSubstr("no header \"tracestate\""));
  EXPECT_THAT(::testing::DescribeMatcher<Envelope>(HasKey("k")), HasSubstr("has key"));
}

}  // namespace
}  // namespace herald::testing
