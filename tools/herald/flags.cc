#include "flags.h"

#include <charconv>

#include "absl/strings/ascii.h"
#include "herald/core/strings.h"

namespace herald::tools {

absl::StatusOr<absl::Duration> ParseDurationFlag(std::string_view text, DurationFloor floor) {
  const std::string trimmed(absl::StripAsciiWhitespace(ToAbsl(text)));
  absl::Duration d;
  // absl::ParseDuration also takes "inf" and signed values; a flag takes
  // neither.
  if (trimmed.empty() || !absl::ParseDuration(trimmed, &d) || d == absl::InfiniteDuration() ||
      d == -absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(herald::StrCat("\"", text, "\" is not a duration: write ", kDurationForms));
  }
  if (d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(herald::StrCat("\"", text, "\" is negative: write ", kDurationForms));
  }
  if (d == absl::ZeroDuration() && floor == DurationFloor::kPositive) {
    return absl::InvalidArgumentError(herald::StrCat("\"", text, "\" is zero: it must be positive, ", kDurationForms));
  }
  return d;
}

CLI::Validator DurationValidator(DurationFloor floor) {
  return CLI::Validator(
      [floor](std::string& text) -> std::string {
        absl::StatusOr<absl::Duration> d = ParseDurationFlag(text, floor);
        return d.ok() ? std::string() : std::string(d.status().message());
      },
      "DURATION");
}

CLI::Option* AddDurationOption(CLI::App* app, const std::string& name, absl::Duration& value,
                               const std::string& description, DurationFloor floor) {
  CLI::Option* option = app->add_option_function<std::string>(
      name,
      [&value, floor](const std::string& text) {
        // The validator has accepted `text` already.
        value = *ParseDurationFlag(text, floor);
      },
      description);
  option->check(DurationValidator(floor).description(""));  // the type name says it
  option->type_name("DURATION");
  option->default_str(absl::FormatDuration(value));
  return option;
}

CLI::Validator AtLeast(int64_t min) {
  return CLI::Validator(
      [min](std::string& text) -> std::string {
        int64_t n = 0;
        const std::string trimmed(absl::StripAsciiWhitespace(text));
        const char* end = trimmed.data() + trimmed.size();
        auto [ptr, ec] = std::from_chars(trimmed.data(), end, n);
        if (trimmed.empty() || ec != std::errc() || ptr != end) {
          return herald::StrCat("\"", text, "\" is not a whole number");
        }
        if (n < min) return herald::StrCat("must be at least ", min, ", not ", n);
        return std::string();
      },
      herald::StrCat("INT>=", min));
}

}  // namespace herald::tools
