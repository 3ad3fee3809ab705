#include "herald/testing/status_matchers.h"

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"

namespace herald::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

template <typename M, typename T>
std::string Explain(const M& matcher, const T& value) {
  ::testing::StringMatchResultListener listener;
  ::testing::ExplainMatchResult(matcher, value, &listener);
  return listener.str();
}

TEST(StatusMatchers, IsOkMatchesOkStatusAndStatusOr) {
  EXPECT_THAT(absl::OkStatus(), IsOk());
  EXPECT_THAT(absl::StatusOr<int>(3), IsOk());
  EXPECT_THAT(absl::InternalError("x"), Not(IsOk()));
  EXPECT_THAT(absl::StatusOr<int>(absl::NotFoundError("gone")), Not(IsOk()));
}

TEST(StatusMatchers, IsOkExplainsTheFailure) {
  EXPECT_THAT(Explain(IsOk(), absl::NotFoundError("no row 7")), HasSubstr("no row 7"));
}

TEST(StatusMatchers, StatusIsComparesCode) {
  EXPECT_THAT(absl::NotFoundError("x"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(absl::NotFoundError("x"), Not(StatusIs(absl::StatusCode::kInternal)));
  EXPECT_THAT(absl::OkStatus(), StatusIs(absl::StatusCode::kOk));
  EXPECT_THAT(absl::StatusOr<std::string>(absl::AbortedError("a")), StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(absl::StatusOr<std::string>("v"), Not(StatusIs(absl::StatusCode::kAborted)));
}

TEST(StatusMatchers, StatusIsWithMessageMatcher) {
  absl::Status s = absl::InvalidArgumentError("JSON member \"items[2].qty\" must be an integer");
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("items[2].qty")));
  EXPECT_THAT(s, Not(StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("price"))));
  EXPECT_THAT(s, Not(StatusIs(absl::StatusCode::kNotFound, HasSubstr("items"))));
  EXPECT_THAT(absl::UnavailableError("down"), StatusIs(absl::StatusCode::kUnavailable, "down"));
}

TEST(StatusMatchers, StatusIsDescribesItself) {
  EXPECT_THAT(::testing::DescribeMatcher<absl::Status>(StatusIs(absl::StatusCode::kNotFound)),
              HasSubstr("NOT_FOUND"));
  EXPECT_THAT(Explain(StatusIs(absl::StatusCode::kNotFound), absl::InternalError("boom")), HasSubstr("boom"));
}

TEST(StatusMatchers, IsOkAndHoldsMatchesValue) {
  EXPECT_THAT(absl::StatusOr<int>(7), IsOkAndHolds(7));
  EXPECT_THAT(absl::StatusOr<int>(7), IsOkAndHolds(::testing::Gt(5)));
  EXPECT_THAT(absl::StatusOr<int>(7), Not(IsOkAndHolds(8)));
  EXPECT_THAT(absl::StatusOr<int>(absl::InternalError("x")), Not(IsOkAndHolds(7)));
  EXPECT_THAT(absl::StatusOr<std::string>("herald"), IsOkAndHolds(HasSubstr("era")));
  EXPECT_THAT(Explain(IsOkAndHolds(1), absl::StatusOr<int>(absl::DataLossError("torn"))), HasSubstr("torn"));
}

TEST(StatusMatchers, MacrosPassOnOk) {
  HERALD_ASSERT_OK(absl::OkStatus());
  HERALD_EXPECT_OK(absl::StatusOr<int>(1));
}

TEST(StatusMatchers, ExpectOkMacroFailsOnError) {
  EXPECT_NONFATAL_FAILURE(HERALD_EXPECT_OK(absl::InternalError("kaput")), "kaput");
}

void AssertOkHelper() { HERALD_ASSERT_OK(absl::UnavailableError("later")); }

TEST(StatusMatchers, AssertOkMacroFailsFatallyOnError) {
  EXPECT_FATAL_FAILURE(AssertOkHelper(), "later");
}

TEST(StatusMatchers, AssertOkAndAssignMovesTheValueOut) {
  HERALD_ASSERT_OK_AND_ASSIGN(std::unique_ptr<int> owned,
                              absl::StatusOr<std::unique_ptr<int>>(std::make_unique<int>(7)));
  ASSERT_NE(owned, nullptr);
  EXPECT_EQ(*owned, 7);
  int reassigned = 0;
  HERALD_ASSERT_OK_AND_ASSIGN(reassigned, absl::StatusOr<int>(3));
  EXPECT_EQ(reassigned, 3);
}

void AssertOkAndAssignHelper(int& out) {
  HERALD_ASSERT_OK_AND_ASSIGN(out, absl::StatusOr<int>(absl::NotFoundError("gone")));
}

TEST(StatusMatchers, AssertOkAndAssignFailsFatallyAndAssignsNothingOnError) {
  static int out = -1;
  EXPECT_FATAL_FAILURE(AssertOkAndAssignHelper(out), "gone");
  EXPECT_EQ(out, -1);
}

}  // namespace
}  // namespace herald::testing
