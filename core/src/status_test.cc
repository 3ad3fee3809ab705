#include "herald/core/status.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "herald/testing/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::IsOkAndHolds;
using ::herald::testing::StatusIs;

TEST(IsRetryable, TransientCodesOnly) {
  struct Case {
    absl::StatusCode code;
    bool retryable;
  };
  const Case cases[] = {
      {absl::StatusCode::kOk, false},
      {absl::StatusCode::kCancelled, false},
      {absl::StatusCode::kUnknown, false},
      {absl::StatusCode::kInvalidArgument, false},
      {absl::StatusCode::kDeadlineExceeded, true},
      {absl::StatusCode::kNotFound, false},
      {absl::StatusCode::kAlreadyExists, false},
      {absl::StatusCode::kPermissionDenied, false},
      {absl::StatusCode::kResourceExhausted, true},
      {absl::StatusCode::kFailedPrecondition, false},
      {absl::StatusCode::kAborted, true},
      {absl::StatusCode::kOutOfRange, false},
      {absl::StatusCode::kUnimplemented, false},
      {absl::StatusCode::kInternal, false},
      {absl::StatusCode::kUnavailable, true},
      {absl::StatusCode::kDataLoss, false},
      {absl::StatusCode::kUnauthenticated, false},
  };
  for (const Case& c : cases) {
    absl::Status s = c.code == absl::StatusCode::kOk ? absl::OkStatus() : absl::Status(c.code, "x");
    EXPECT_EQ(IsRetryable(s), c.retryable) << absl::StatusCodeToString(c.code);
  }
}

absl::Status Step(bool fail, int* reached) {
  ++*reached;
  return fail ? absl::NotFoundError("step failed") : absl::OkStatus();
}

absl::Status TwoSteps(bool fail_first, int* reached) {
  HERALD_RETURN_IF_ERROR(Step(fail_first, reached));
  HERALD_RETURN_IF_ERROR(Step(false, reached));
  return absl::OkStatus();
}

TEST(StatusMacros, ReturnIfErrorReturnsEarly) {
  int reached = 0;
  EXPECT_THAT(TwoSteps(true, &reached), StatusIs(absl::StatusCode::kNotFound, "step failed"));
  EXPECT_EQ(reached, 1);
  reached = 0;
  EXPECT_THAT(TwoSteps(false, &reached), IsOk());
  EXPECT_EQ(reached, 2);
}

absl::StatusOr<std::unique_ptr<int>> MakeInt(int v) {
  if (v < 0) return absl::InvalidArgumentError("negative");
  return std::make_unique<int>(v);
}

absl::StatusOr<int> Sum(int a, int b) {
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<int> x, MakeInt(a));  // move-only value
  std::unique_ptr<int> y;
  HERALD_ASSIGN_OR_RETURN(y, MakeInt(b));  // assignment to an existing variable
  return *x + *y;
}

TEST(StatusMacros, AssignOrReturnDeclaresAssignsAndPropagates) {
  EXPECT_THAT(Sum(2, 3), IsOkAndHolds(5));
  EXPECT_THAT(Sum(-1, 3), StatusIs(absl::StatusCode::kInvalidArgument, "negative"));
  EXPECT_THAT(Sum(1, -3), StatusIs(absl::StatusCode::kInvalidArgument));
}

absl::Status UsesMacroTwiceOnOneLineScope() {
  // Two uses in one function: the generated names must not clash.
  HERALD_ASSIGN_OR_RETURN(auto a, MakeInt(1));
  HERALD_ASSIGN_OR_RETURN(auto b, MakeInt(2));
  return *a + *b == 3 ? absl::OkStatus() : absl::InternalError("bad sum");
}

TEST(StatusMacros, SeveralUsesInOneFunction) { EXPECT_THAT(UsesMacroTwiceOnOneLineScope(), IsOk()); }

}  // namespace
}  // namespace herald
