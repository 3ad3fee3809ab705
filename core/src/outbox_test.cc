#include "herald/core/outbox.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/testing/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
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

}  // namespace
}  // namespace herald
