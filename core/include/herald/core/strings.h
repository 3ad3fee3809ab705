// herald/core/strings.h: string helpers that bridge std::string_view and
// Debian's Abseil.
//
// Debian builds Abseil with ABSL_OPTION_USE_STD_STRING_VIEW=0, so
// absl::string_view is its own type and absl::StrCat does not take a
// std::string_view. herald's API speaks std::string_view (C++20); use
// herald::StrCat, which takes both, and herald::ToStd for Abseil's views
// (absl::Status::message()).
//
//   return absl::InvalidArgumentError(herald::StrCat("bad type \"", type, "\""));
#ifndef HERALD_CORE_STRINGS_H_
#define HERALD_CORE_STRINGS_H_

#include <string>
#include <string_view>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace herald {

inline std::string_view ToStd(absl::string_view s) { return std::string_view(s.data(), s.size()); }
inline absl::string_view ToAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

namespace internal {
template <typename T>
decltype(auto) StrCatArg(const T& v) {
  if constexpr (std::is_same_v<T, std::string_view>) {
    return ToAbsl(v);
  } else {
    return (v);
  }
}
}  // namespace internal

// absl::StrCat that also takes std::string_view arguments.
template <typename... Args>
std::string StrCat(const Args&... args) {
  return absl::StrCat(internal::StrCatArg(args)...);
}

// absl::StrAppend that also takes std::string_view arguments.
template <typename... Args>
void StrAppend(std::string* out, const Args&... args) {
  absl::StrAppend(out, internal::StrCatArg(args)...);
}

}  // namespace herald

#endif  // HERALD_CORE_STRINGS_H_
