// Values of the herald command line's flags: one parser and one CLI11
// validator per kind of value, shared by every subcommand, so that every
// duration flag and every count flag accepts the same forms and says the same
// thing about a bad value. A bad value stops the program before it does
// anything, with a one-line error naming the flag (exit code kExitUsage).
//
//   absl::Duration poll = absl::Seconds(1);
//   AddDurationOption(relay, "--poll", poll, "fallback poll interval", DurationFloor::kPositive);
//   relay->add_option("--batch", batch, "rows per round")->check(AtLeast(1));
#ifndef HERALD_TOOLS_HERALD_FLAGS_H_
#define HERALD_TOOLS_HERALD_FLAGS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace herald::tools {

// The exit codes of the `herald` program (docs/cli.md).
inline constexpr int kExitOk = 0;
// The command failed (store, broker, a runtime error); the message says why.
inline constexpr int kExitFailure = 1;
// The command line is wrong: a bad flag value, a missing or contradictory
// flag. Nothing was done.
inline constexpr int kExitUsage = 2;
// Stopped by SIGTERM/SIGINT, but the shutdown deadline passed with work
// unconfirmed (publishes without a delivery report). Nothing is lost: their
// outbox rows stay pending and are relayed again at the next start.
inline constexpr int kExitUnfinished = 3;

// Whether a duration flag may be zero.
enum class DurationFloor { kZero, kPositive };

// The forms a duration flag accepts, for help texts and errors.
inline constexpr std::string_view kDurationForms =
    "a number with a unit, such as 250ms, 5s, 1.5s, 1m30s or 2h (units: ns, us, ms, s, m, h)";

// Parses a duration flag's value: a number with a unit ("250ms", "5s",
// "1m30s", "2h", "1.5s"), or "0". kInvalidArgument, saying which forms are
// accepted, for anything else: a bare number other than 0 ("5": seconds or
// milliseconds?), an infinite or negative duration, zero when `floor` is
// kPositive, junk.
absl::StatusOr<absl::Duration> ParseDurationFlag(std::string_view text, DurationFloor floor);

// CLI11 validator of ParseDurationFlag (CLI11 names the flag in its error).
CLI::Validator DurationValidator(DurationFloor floor);

// Adds a duration option that parses into `value` (ParseDurationFlag); its
// current value is shown as the default in --help. `value` must outlive
// the parse.
CLI::Option* AddDurationOption(CLI::App* app, const std::string& name, absl::Duration& value,
                               const std::string& description, DurationFloor floor);

// CLI11 validator of an integer count: at least `min` (and a whole number).
CLI::Validator AtLeast(int64_t min);

}  // namespace herald::tools

#endif  // HERALD_TOOLS_HERALD_FLAGS_H_
