// herald/testing/event_matchers.h: gMock matchers for Envelopes and Messages.
//
//   EXPECT_THAT(fake.published("customer-events"),
//               ElementsAre(HasType("customer.created"), HasType("customer.updated")));
//   EXPECT_THAT(fake.published("customer-events.dlq"),
//               Contains(AllOf(HasKey("cust-1"), HasHeader("herald-dlq-code", "INVALID_ARGUMENT"))));
//   EXPECT_THAT(seen.messages(), Each(HasHeader("correlation-id", HasSubstr("req-"))));
//
// Each matcher takes a value or a matcher for the field and works on a
// herald::Envelope or a herald::Message (whose envelope it inspects).
#ifndef HERALD_TESTING_EVENT_MATCHERS_H_
#define HERALD_TESTING_EVENT_MATCHERS_H_

#include <optional>
#include <string>

#include "gmock/gmock.h"
#include "herald/core/envelope.h"
#include "herald/core/message.h"

namespace herald::testing {
namespace internal {
inline const Envelope& EnvelopeOf(const Envelope& e) { return e; }
inline const Envelope& EnvelopeOf(const Message& m) { return m.envelope; }
}  // namespace internal

// The envelope's type name matches `type` (a string or a string matcher).
MATCHER_P(HasType, type, "has type " + ::testing::DescribeMatcher<const std::string&>(type)) {
  const Envelope& e = internal::EnvelopeOf(arg);
  *result_listener << "whose type is \"" << e.type << "\"";
  return ::testing::Matches(::testing::MatcherCast<const std::string&>(type))(e.type);
}

// The envelope's key matches `key`.
MATCHER_P(HasKey, key, "has key " + ::testing::DescribeMatcher<const std::string&>(key)) {
  const Envelope& e = internal::EnvelopeOf(arg);
  *result_listener << "whose key is \"" << e.key << "\"";
  return ::testing::Matches(::testing::MatcherCast<const std::string&>(key))(e.key);
}

// The envelope's topic matches `topic`.
MATCHER_P(HasTopic, topic, "has topic " + ::testing::DescribeMatcher<const std::string&>(topic)) {
  const Envelope& e = internal::EnvelopeOf(arg);
  *result_listener << "whose topic is \"" << e.topic << "\"";
  return ::testing::Matches(::testing::MatcherCast<const std::string&>(topic))(e.topic);
}

// The envelope's payload matches `payload`.
MATCHER_P(HasPayload, payload, "has payload " + ::testing::DescribeMatcher<const std::string&>(payload)) {
  const Envelope& e = internal::EnvelopeOf(arg);
  *result_listener << "whose payload is " << e.payload;
  return ::testing::Matches(::testing::MatcherCast<const std::string&>(payload))(e.payload);
}

// The envelope has a header `name` (its first one) whose value matches `value`.
MATCHER_P2(HasHeader, name, value,
           "has header \"" + std::string(name) + "\" whose value " +
               ::testing::DescribeMatcher<const std::string&>(value)) {
  const Envelope& e = internal::EnvelopeOf(arg);
  std::optional<std::string_view> found = FindHeader(e.headers, name);
  if (!found.has_value()) {
    *result_listener << "which has no header \"" << name << "\"";
    return false;
  }
  *result_listener << "whose header \"" << name << "\" is \"" << *found << "\"";
  return ::testing::Matches(::testing::MatcherCast<const std::string&>(value))(std::string(*found));
}

// The envelope has a header called `name`, whatever its value.
MATCHER_P(HasHeaderNamed, name, "has a header \"" + std::string(name) + "\"") {
  return FindHeader(internal::EnvelopeOf(arg).headers, name).has_value();
}

}  // namespace herald::testing

#endif  // HERALD_TESTING_EVENT_MATCHERS_H_
