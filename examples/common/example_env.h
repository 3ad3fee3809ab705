// Small helpers shared by the examples: configuration from the environment.
#ifndef HERALD_EXAMPLES_COMMON_EXAMPLE_ENV_H_
#define HERALD_EXAMPLES_COMMON_EXAMPLE_ENV_H_

#include <cstdlib>
#include <initializer_list>
#include <string>

#include "absl/status/statusor.h"
#include "herald/core/strings.h"

namespace example {

// The first of `names` that is set in the environment.
inline absl::StatusOr<std::string> FromEnv(std::initializer_list<const char*> names, const char* what) {
  std::string tried;
  for (const char* name : names) {
    if (const char* v = std::getenv(name); v != nullptr && *v != '\0') return std::string(v);
    tried += tried.empty() ? name : herald::StrCat(" or ", name);
  }
  return absl::FailedPreconditionError(
      herald::StrCat(what, ": set ", tried, " (make test starts local servers and sets them)"));
}

}  // namespace example

#endif  // HERALD_EXAMPLES_COMMON_EXAMPLE_ENV_H_
