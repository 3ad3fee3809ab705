// herald/testing/status_matchers.h: gMock matchers for absl::Status and
// absl::StatusOr (Debian's Abseil ships none).
//
//   EXPECT_THAT(bus.Start(), herald::testing::IsOk());
//   EXPECT_THAT(store.Append(*tx, e), herald::testing::StatusIs(absl::StatusCode::kFailedPrecondition));
//   EXPECT_THAT(registry.Decode<Order>(env), herald::testing::StatusIs(absl::StatusCode::kInvalidArgument,
//                                                                      testing::HasSubstr("amount")));
//   EXPECT_THAT(ParseCount("7"), herald::testing::IsOkAndHolds(7));
//   HERALD_ASSERT_OK_AND_ASSIGN(auto next, store.Begin());  // then *next, next->Commit()
#ifndef HERALD_TESTING_STATUS_MATCHERS_H_
#define HERALD_TESTING_STATUS_MATCHERS_H_

#include <ostream>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "herald/core/status.h"

namespace herald::testing {
namespace internal {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

}  // namespace internal

// Matches an OK absl::Status or absl::StatusOr<T>.
MATCHER(IsOk, negation ? "is not OK" : "is OK") {
  const absl::Status& s = internal::GetStatus(arg);
  if (!s.ok()) *result_listener << "whose status is " << s.ToString();
  return s.ok();
}

// Matches a status with `code`, and optionally a message matching `message`.
MATCHER_P(StatusIs, code,
          std::string(negation ? "has a code other than " : "has code ") +
              absl::StatusCodeToString(static_cast<absl::StatusCode>(code))) {
  const absl::Status& s = internal::GetStatus(arg);
  *result_listener << "whose status is " << s.ToString();
  return s.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           std::string(negation ? "does not have code " : "has code ") +
               absl::StatusCodeToString(static_cast<absl::StatusCode>(code)) + " and a message that " +
               ::testing::DescribeMatcher<std::string>(message_matcher, negation)) {
  const absl::Status& s = internal::GetStatus(arg);
  *result_listener << "whose status is " << s.ToString();
  return s.code() == code &&
         ::testing::Matches(::testing::Matcher<std::string>(message_matcher))(std::string(s.message()));
}

namespace internal {

// The monomorphic IsOkAndHolds for one StatusOr type.
template <typename StatusOrType>
class IsOkAndHoldsMatcherImpl : public ::testing::MatcherInterface<StatusOrType> {
 public:
  using Value = typename std::remove_cvref_t<StatusOrType>::value_type;

  // Not a copy or move constructor in disguise (enable_if, which
  // clang-tidy's forwarding-reference check recognises).
  template <typename InnerMatcher,
            typename = std::enable_if_t<!std::is_same_v<std::remove_cvref_t<InnerMatcher>, IsOkAndHoldsMatcherImpl>>>
  explicit IsOkAndHoldsMatcherImpl(InnerMatcher&& inner)
      : inner_(::testing::SafeMatcherCast<const Value&>(std::forward<InnerMatcher>(inner))) {}

  void DescribeTo(std::ostream* os) const override {
    *os << "is OK and holds a value that ";
    inner_.DescribeTo(os);
  }
  void DescribeNegationTo(std::ostream* os) const override {
    *os << "is not OK or holds a value that ";
    inner_.DescribeNegationTo(os);
  }
  bool MatchAndExplain(StatusOrType actual, ::testing::MatchResultListener* listener) const override {
    if (!actual.ok()) {
      *listener << "whose status is " << actual.status().ToString();
      return false;
    }
    ::testing::StringMatchResultListener inner_listener;
    bool matches = inner_.MatchAndExplain(*actual, &inner_listener);
    std::string explanation = inner_listener.str();
    if (!explanation.empty()) *listener << "which holds a value " << explanation;
    return matches;
  }

 private:
  ::testing::Matcher<const Value&> inner_;
};

// Polymorphic IsOkAndHolds: converts to a Matcher of any StatusOr<T>.
template <typename InnerMatcher>
class IsOkAndHoldsMatcher {
 public:
  explicit IsOkAndHoldsMatcher(InnerMatcher inner) : inner_(std::move(inner)) {}

  template <typename StatusOrType>
  operator ::testing::Matcher<StatusOrType>() const {  // NOLINT(google-explicit-constructor)
    return ::testing::Matcher<StatusOrType>(new IsOkAndHoldsMatcherImpl<const StatusOrType&>(inner_));
  }

 private:
  InnerMatcher inner_;
};

}  // namespace internal

// Matches an OK absl::StatusOr<T> whose value matches `value_matcher` (a
// value or a matcher).
template <typename InnerMatcher>
internal::IsOkAndHoldsMatcher<std::decay_t<InnerMatcher>> IsOkAndHolds(InnerMatcher&& value_matcher) {
  return internal::IsOkAndHoldsMatcher<std::decay_t<InnerMatcher>>(std::forward<InnerMatcher>(value_matcher));
}

}  // namespace herald::testing

#define HERALD_ASSERT_OK(expr) ASSERT_THAT((expr), ::herald::testing::IsOk())
#define HERALD_EXPECT_OK(expr) EXPECT_THAT((expr), ::herald::testing::IsOk())

// The test form of HERALD_ASSIGN_OR_RETURN: asserts that `rexpr` (an
// absl::StatusOr<T>) is OK, then moves its value into `lhs` (which may be a
// declaration). Like ASSERT_*, only in functions returning void.
#define HERALD_ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  HERALD_ASSERT_OK_AND_ASSIGN_IMPL_(HERALD_STATUS_CONCAT_(herald_statusor_, __LINE__), lhs, rexpr)
// `statusor` is a name made for the expansion and `lhs` may be a declaration
// (`auto x`): neither can be parenthesized.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define HERALD_ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                      \
  ASSERT_THAT(statusor, ::herald::testing::IsOk());             \
  lhs = *std::move(statusor)
// NOLINTEND(bugprone-macro-parentheses)

#endif  // HERALD_TESTING_STATUS_MATCHERS_H_
