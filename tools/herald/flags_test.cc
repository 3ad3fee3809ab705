#include "flags.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/testing/status_matchers.h"

namespace herald::tools {
namespace {

using ::herald::testing::IsOkAndHolds;
using ::herald::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ParseDurationFlag, AcceptsNumbersWithUnits) {
  EXPECT_THAT(ParseDurationFlag("250ms", DurationFloor::kPositive), IsOkAndHolds(absl::Milliseconds(250)));
  EXPECT_THAT(ParseDurationFlag("5s", DurationFloor::kPositive), IsOkAndHolds(absl::Seconds(5)));
  EXPECT_THAT(ParseDurationFlag("1.5s", DurationFloor::kPositive), IsOkAndHolds(absl::Milliseconds(1500)));
  EXPECT_THAT(ParseDurationFlag("1m30s", DurationFloor::kPositive), IsOkAndHolds(absl::Seconds(90)));
  EXPECT_THAT(ParseDurationFlag("2h", DurationFloor::kPositive), IsOkAndHolds(absl::Hours(2)));
  EXPECT_THAT(ParseDurationFlag("0", DurationFloor::kZero), IsOkAndHolds(absl::ZeroDuration()));
  EXPECT_THAT(ParseDurationFlag("0s", DurationFloor::kZero), IsOkAndHolds(absl::ZeroDuration()));
}

TEST(ParseDurationFlag, RejectsBareNumbersJunkInfiniteAndNegativeNamingTheForms) {
  for (const char* bad : {"5", "garbage", "", "5 s", "inf", "-inf", "1x", "s"}) {
    EXPECT_THAT(ParseDurationFlag(bad, DurationFloor::kZero),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("250ms, 5s")))
        << bad;
  }
  EXPECT_THAT(ParseDurationFlag("-5s", DurationFloor::kZero),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("negative")));
}

TEST(ParseDurationFlag, RejectsZeroWhenThePeriodMustBePositive) {
  EXPECT_THAT(ParseDurationFlag("0s", DurationFloor::kPositive),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("positive")));
}

// Parses `args` (after the program name) with one duration and one count flag.
struct Parsed {
  int exit_code = 0;  // CLI11's, 0 when the parse succeeded
  std::string error;
  absl::Duration poll = absl::Seconds(1);
  int batch = 500;
};
Parsed Parse(std::vector<std::string> args) {
  Parsed p;
  CLI::App app;
  AddDurationOption(&app, "--poll", p.poll, "poll", DurationFloor::kPositive);
  app.add_option("--batch", p.batch, "batch")->check(AtLeast(1));
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    p.exit_code = e.get_exit_code();
    p.error = e.what();
  }
  return p;
}

TEST(DurationOption, ParsesIntoTheDurationAndKeepsTheDefault) {
  EXPECT_EQ(Parse({"--poll", "250ms"}).poll, absl::Milliseconds(250));
  Parsed defaults = Parse({});
  EXPECT_EQ(defaults.exit_code, 0);
  EXPECT_EQ(defaults.poll, absl::Seconds(1));
}

TEST(DurationOption, BadValueIsAnErrorNamingTheFlagNotTheDefault) {
  for (const char* bad : {"5", "garbage", "0s", "-1s"}) {
    Parsed p = Parse({"--poll", bad});
    EXPECT_NE(p.exit_code, 0) << bad;
    EXPECT_THAT(p.error, HasSubstr("--poll")) << bad;
  }
}

TEST(AtLeast, RejectsZeroNegativeAndNonNumbersNamingTheFlag) {
  EXPECT_EQ(Parse({"--batch", "7"}).batch, 7);
  for (const char* bad : {"0", "-3", "many", "1.5", "99999999999999999999"}) {
    Parsed p = Parse({"--batch", bad});
    EXPECT_NE(p.exit_code, 0) << bad;
    EXPECT_THAT(p.error, HasSubstr("--batch")) << bad;
  }
  EXPECT_THAT(Parse({"--batch", "0"}).error, HasSubstr("at least 1"));
}

}  // namespace
}  // namespace herald::tools
