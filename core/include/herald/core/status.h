// herald/core/status.h: error-handling helpers shared by every component.
//
// herald reports errors as absl::Status / absl::StatusOr<T>. Debian's Abseil
// has no status macros, so herald provides them:
//
//   absl::StatusOr<Row> LoadRow(int id);
//   absl::Status Work() {
//     HERALD_ASSIGN_OR_RETURN(Row row, LoadRow(7));
//     HERALD_RETURN_IF_ERROR(Use(row));
//     return absl::OkStatus();
//   }
//
// IsRetryable() is the one place that decides what the dispatcher and the
// relay retry: kUnavailable, kDeadlineExceeded, kAborted and
// kResourceExhausted are transient; every other error is permanent.
#ifndef HERALD_CORE_STATUS_H_
#define HERALD_CORE_STATUS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace herald {

// True when `status` is worth retrying later with backoff. OK is not retryable.
bool IsRetryable(const absl::Status& status);

}  // namespace herald

#define HERALD_STATUS_CONCAT_INNER_(a, b) a##b
#define HERALD_STATUS_CONCAT_(a, b) HERALD_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status) and returns it from the enclosing function
// when it is not OK.
#define HERALD_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    if (::absl::Status herald_status_ = (expr);      \
        !herald_status_.ok()) {                      \
      return herald_status_;                         \
    }                                                \
  } while (false)

// Evaluates `rexpr` (an absl::StatusOr<T>); returns its status when not OK,
// otherwise moves the value into `lhs` (which may be a declaration).
#define HERALD_ASSIGN_OR_RETURN(lhs, rexpr) \
  HERALD_ASSIGN_OR_RETURN_IMPL_(HERALD_STATUS_CONCAT_(herald_statusor_, __LINE__), lhs, rexpr)

// `statusor` is a name made for the expansion and `lhs` may be a declaration
// (`int x`): neither can be parenthesized.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define HERALD_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                  \
  if (!statusor.ok()) return std::move(statusor).status();  \
  lhs = *std::move(statusor)
// NOLINTEND(bugprone-macro-parentheses)

#endif  // HERALD_CORE_STATUS_H_
