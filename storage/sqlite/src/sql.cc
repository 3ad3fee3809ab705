#include "sql.h"

#include <utility>

#include "herald/core/strings.h"

namespace herald::sqlite::internal {
namespace {

// The columns every record query selects, in the order ReadRecord
// (sqlite_outbox_store.cc) reads them.
constexpr std::string_view kRecordColumns =
    "seq, event_id, event_type, topic, event_key, headers, event_payload, content_type, source, "
    "schema_version, occurred_at, created_at, attempts, last_error";

}  // namespace

std::string Quote(std::string_view name) { return herald::StrCat("\"", name, "\""); }

// SQL reads better laid out by clause than by clang-format.
// clang-format off
SqlTexts BuildSqlTexts(const SqliteOptions& options) {
  const std::string t = Quote(options.outbox_table);
  const std::string inbox = Quote(options.inbox_table);
  const std::string lease = Quote(options.lease_table);
  SqlTexts sql;
  auto set = [&](Sql id, std::string text) { sql[static_cast<int>(id)] = std::move(text); };
  set(Sql::kBegin, "BEGIN IMMEDIATE");
  set(Sql::kCommit, "COMMIT");
  set(Sql::kRollback, "ROLLBACK");
  set(Sql::kAppend, herald::StrCat("INSERT INTO ", t,
                                   " (event_id, event_type, topic, event_key, headers, event_payload, content_type, "
                                   "source, schema_version, occurred_at, created_at, available_at) "
                                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)"));
  // Rows that failed or were parked ("held" rows): the only rows that can
  // hold back their key. Fresh rows (attempts 0, not parked) are not in the
  // held index, so an append pays for no index but event_id's.
  const std::string held = "published_at IS NULL AND (attempts > 0 OR parked_at IS NOT NULL)";
  // The first unpublished row at or after the low-water mark ?1 (every row
  // before it is published), else one past the last row.
  set(Sql::kLowWater, herald::StrCat("SELECT COALESCE((SELECT seq FROM ", t,
                                     " WHERE seq >= ?1 AND published_at IS NULL ORDER BY seq LIMIT 1),"
                                     " (SELECT MAX(seq) + 1 FROM ", t, "), ?1)"));
  // A key is held back from its first held row that is parked or waiting
  // for its retry time; rows before it, and rows of other keys, go in
  // sequence order.
  set(Sql::kFetchPending,
      herald::StrCat("WITH blocked(event_key, first_seq) AS MATERIALIZED ("
                     " SELECT event_key, MIN(seq) FROM ", t, " WHERE ", held,
                     " AND (parked_at IS NOT NULL OR available_at > ?1)"
                     " AND event_key IS NOT NULL AND event_key <> '' GROUP BY event_key) "
                     "SELECT ", kRecordColumns, " FROM ", t, " AS o"
                     " WHERE o.seq >= ?3 AND o.published_at IS NULL AND o.parked_at IS NULL AND o.available_at <= ?1"
                     " AND NOT EXISTS (SELECT 1 FROM blocked AS b WHERE b.event_key = o.event_key AND b.first_seq < o.seq)"
                     " ORDER BY o.seq LIMIT ?2"));
  set(Sql::kMarkPublished, herald::StrCat("UPDATE ", t, " SET published_at = ?1"
                                          " WHERE seq IN (SELECT value FROM json_each(?2)) AND published_at IS NULL"));
  // SqliteOutboxStore::DeletePublished: the delivered rows go at once, except
  // the row with the highest seq (see kPurgePublished), which MarkPublished
  // then marks with kMarkPublished in the same transaction.
  set(Sql::kDeletePublished, herald::StrCat("DELETE FROM ", t, " WHERE seq IN (SELECT value FROM json_each(?1))"
                                            " AND published_at IS NULL AND seq < (SELECT MAX(seq) FROM ", t, ")"));
  set(Sql::kMarkFailed, herald::StrCat("UPDATE ", t,
                                       " SET attempts = attempts + 1, last_error = ?2, available_at = ?3,"
                                       " parked_at = CASE WHEN ?4 THEN ?5 ELSE NULL END"
                                       " WHERE seq = ?1 AND published_at IS NULL"));
  set(Sql::kRetryParked, herald::StrCat("UPDATE ", t, " SET parked_at = NULL, attempts = 0, available_at = ?1"
                                        " WHERE ", held, " AND parked_at IS NOT NULL"
                                        " AND (?2 IS NULL OR seq IN (SELECT value FROM json_each(?2)))"));
  // A skip: the row leaves the pending set as a published row would (so it
  // no longer holds back its key, and is purged with published rows), keeps
  // parked_at (a delivered row never has both), and its last_error gets the
  // skip note (?2, OutboxSkipNote with an empty previous error) in front.
  set(Sql::kSkipParked, herald::StrCat("UPDATE ", t, " SET published_at = ?1, last_error = ?2 || COALESCE(last_error, '')"
                                       " WHERE ", held, " AND parked_at IS NOT NULL"
                                       " AND seq IN (SELECT value FROM json_each(?3))"));
  set(Sql::kAssignKey, herald::StrCat("UPDATE ", t, " SET event_key = ?2"
                                      " WHERE seq IN (SELECT value FROM json_each(?1)) AND published_at IS NULL"
                                      " AND (event_key IS NULL OR event_key = '')"));
  // ?1 is EncodeKeyPositions' [[key, seq], ...]; ?2 a JSON array of the
  // sequences not to count. Held rows only (the index): with one relay at a
  // time (the lease) and claims in seq order, an earlier row of a key that is
  // neither in the batch nor held is held back behind a held one.
  set(Sql::kKeysWithEarlier,
      herald::StrCat("SELECT DISTINCT json_extract(p.value, '$[0]') FROM json_each(?1) p WHERE EXISTS (SELECT 1 FROM ",
                     t, " o WHERE ", held,
                     " AND o.event_key = json_extract(p.value, '$[0]') AND o.seq < json_extract(p.value, '$[1]')"
                     " AND o.seq NOT IN (SELECT value FROM json_each(?2)))"));
  // Never the row with the highest seq: seq is a plain INTEGER PRIMARY KEY
  // (no AUTOINCREMENT, whose sqlite_sequence update is one more page written
  // per append), so SQLite gives a new row MAX(seq) + 1, and deleting the
  // last row would hand its seq (and those below it) out again, under the
  // relays' low-water marks. The kept row is deleted by a later purge once a
  // newer row exists.
  set(Sql::kPurgePublished, herald::StrCat("DELETE FROM ", t, " WHERE seq IN (SELECT seq FROM ", t,
                                           " WHERE published_at IS NOT NULL AND published_at < ?1"
                                           " AND seq < (SELECT MAX(seq) FROM ", t, ")"
                                           " ORDER BY published_at LIMIT ?2)"));
  set(Sql::kStats, herald::StrCat("SELECT COUNT(*) FILTER (WHERE parked_at IS NULL),"
                                  " COUNT(*) FILTER (WHERE parked_at IS NOT NULL),"
                                  " MIN(created_at) FILTER (WHERE parked_at IS NULL)"
                                  " FROM ", t, " WHERE seq >= ?1 AND published_at IS NULL"));
  set(Sql::kListParked, herald::StrCat("SELECT ", kRecordColumns, " FROM ", t, " INDEXED BY ",
                                       Quote(options.outbox_table + "_held"), " WHERE ", held,
                                       " AND parked_at IS NOT NULL ORDER BY seq LIMIT ?1"));
  // Run by the holder of the lease's file lock: a row left by another owner
  // is a dead holder's, taken over at once.
  set(Sql::kLeaseAcquire, herald::StrCat("INSERT INTO ", lease, " (name, owner, expires_at) VALUES (?1, ?2, ?3)"
                                         " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,"
                                         " expires_at = excluded.expires_at"));
  set(Sql::kLeaseRenew, herald::StrCat("UPDATE ", lease, " SET expires_at = ?3 WHERE name = ?1 AND owner = ?2"));
  set(Sql::kLeaseRelease, herald::StrCat("DELETE FROM ", lease, " WHERE name = ?1 AND owner = ?2"));
  set(Sql::kInboxInsert, herald::StrCat("INSERT INTO ", inbox, " (consumer, event_id, processed_at) VALUES (?1, ?2, ?3)"
                                        " ON CONFLICT DO NOTHING"));
  set(Sql::kInboxPurge, herald::StrCat("DELETE FROM ", inbox, " WHERE (consumer, event_id) IN (SELECT consumer, event_id FROM ",
                                       inbox, " WHERE processed_at < ?1 LIMIT ?2)"));
  return sql;
}
// clang-format on

}  // namespace herald::sqlite::internal
