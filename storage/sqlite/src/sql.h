// Private to herald::sqlite: the text of every statement the store runs,
// built once per store from the configured (validated, quoted) table names.
#ifndef HERALD_SQLITE_SRC_SQL_H_
#define HERALD_SQLITE_SRC_SQL_H_

#include <array>
#include <string>
#include <string_view>

#include "herald/sqlite/sqlite_outbox_store.h"

namespace herald::sqlite::internal {

// Statements every connection prepares once (lazily) and keeps.
enum class Sql : int {
  kBegin,
  kCommit,
  kRollback,
  kAppend,
  kLowWater,
  kFetchPending,
  kMarkPublished,
  kDeletePublished,
  kMarkFailed,
  kRetryParked,
  kSkipParked,
  kAssignKey,
  kKeysWithEarlier,
  kPurgePublished,
  kStats,
  kListParked,
  kLeaseAcquire,
  kLeaseRenew,
  kLeaseRelease,
  kInboxInsert,
  kInboxPurge,
  kCount,
};
inline constexpr int kSqlCount = static_cast<int>(Sql::kCount);
using SqlTexts = std::array<std::string, kSqlCount>;

// The SQL of every statement for the configured (validated) table names.
SqlTexts BuildSqlTexts(const SqliteOptions& options);

// "now" in SQLite as INTEGER Unix microseconds (millisecond precision).
inline constexpr std::string_view kSqlNowMicros =
    "(CAST(strftime('%s','now') AS INTEGER) * 1000000 + CAST(substr(strftime('%f','now'), 4) AS INTEGER) * 1000)";

// `"name"` (the name is validated by herald::CheckSqlIdentifier, so it
// holds no quote).
std::string Quote(std::string_view name);

}  // namespace herald::sqlite::internal

#endif  // HERALD_SQLITE_SRC_SQL_H_
