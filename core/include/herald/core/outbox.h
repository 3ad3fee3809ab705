// herald/core/outbox.h: the transactional outbox abstraction.
//
// A service writes its business rows and the events describing them in one
// database transaction; the OutboxRelay (relay.h) later moves the committed
// events to a Bus. Storage plugins (herald::sqlite, herald::postgres, and
// herald::testing's in-memory fake) implement OutboxStore.
//
//   HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::Transaction> tx, store.Begin());
//   // business rows: through the plugin's native handle (see the plugin)
//   HERALD_RETURN_IF_ERROR(store.Append(*tx, CustomerEvent{.customer_id = "cust-42"}));
//   HERALD_RETURN_IF_ERROR(tx->Commit());     // destructor rolls back otherwise
//
// Plugins also offer Append on a raw handle the caller already holds
// (sqlite3*, PGconn*) with a transaction open; with no open transaction every
// Append is kFailedPrecondition.
//
// The row contract (docs/outbox.md): rows are relayed in `sequence` order; a
// row's key orders it after every earlier row of the same key: per key, no
// row is delivered for the first time before every earlier row of that key
// has been delivered (or skipped by an operator). A failing row holds back
// later rows of its key only; a parked row holds them back until it is
// retried (RetryParked) or skipped (SkipParked).
//
// Thread-safety: an OutboxStore may be used from many threads; a Transaction
// belongs to one thread at a time.
#ifndef HERALD_CORE_OUTBOX_H_
#define HERALD_CORE_OUTBOX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "herald/core/envelope.h"
#include "herald/core/event.h"

namespace herald {

// A database transaction. Destroying one that was neither committed nor
// rolled back rolls it back.
class Transaction {
 public:
  virtual ~Transaction() = default;
  // kAborted when the database refused the commit (serialization failure,
  // deadlock): the caller may retry the whole transaction.
  virtual absl::Status Commit() = 0;
  virtual absl::Status Rollback() = 0;
};

// A key and the sequence of one row of it (OutboxStore::KeysWithEarlierRows).
struct KeyPosition {
  std::string key;
  int64_t sequence = 0;
};
// `positions` as the JSON array [[key, sequence], ...] that the SQL stores
// pass to KeysWithEarlierRows' one statement (PostgreSQL jsonb, SQLite
// json_each).
std::string EncodeKeyPositions(absl::Span<const KeyPosition> positions);

// One outbox row as the relay sees it.
struct OutboxRecord {
  int64_t sequence = 0;
  Envelope envelope;
  int attempts = 0;
  std::string last_error;
  absl::Time created_at = absl::UnixEpoch();
  // Why this row cannot be relayed as it is (e.g. its headers column breaks
  // the contract); empty for a good row. Stores report, the relay decides:
  // it parks such a row at once and holds back the rest of its key.
  std::string malformed;
};

// The `headers` column of the table contract (docs/outbox.md): a JSON array
// of [name, value] string pairs, in order. It carries the envelope's
// application headers and the CloudEvents attributes that have no column of
// their own, under the names of their Kafka binary-mode headers (wire.h):
//
//   [["ce_subject","cust-42"],["ce_dataschema","https://example.com/v1"],
//    ["ce_region","eu-1"],["correlation-id","req-7"]]
//
// Entries whose name starts with "ce_" (in any case) are reserved for these
// attributes; every other entry is an application header. Every store writes
// and reads the column through this pair, and nothing else does.
//
// EncodeOutboxHeaders writes Envelope::subject as "ce_subject" and
// ::dataschema as "ce_dataschema" (each when not empty), then each extension
// as "ce_<name>", in order, then the application headers in order. An
// application header whose own name starts with "ce_" (any case) is not
// written: the envelope's fields win, as EncodeRecord drops such a header
// from a Kafka record (so the row relays exactly what a direct publish
// sends). Nothing at all encodes as "" (stored as NULL).
// kInvalidArgument when the extensions break the rule of
// CheckCloudEventsExtensions (wire.h): a name that is not lowercase a-z and
// digits, one given twice, or an attribute with a field of its own (id,
// subject, traceparent, ...; partitionkey is allowed). Every store's Append
// refuses such an envelope with that error.
absl::StatusOr<std::string> EncodeOutboxHeaders(const Envelope& envelope);
// Reads that column into `envelope`: replaces its headers, subject,
// dataschema and extensions (its other fields, which have columns of their
// own, are untouched; its id and type name the event in messages). "" and
// JSON null are none of them. A reserved entry is exactly "ce_subject",
// "ce_dataschema" (an empty value is none) or "ce_<extension name>" under
// the rule of CheckCloudEventsExtensions; each reserved name appears at most
// once, anywhere in the array. Application headers keep their order and may
// repeat. kInvalidArgument, saying what is wrong, for anything else: text
// that is not a JSON array of [name, value] string pairs, a "ce_" prefix
// not in lowercase ("CE_subject"), an extension name that breaks the rule
// ("ce_Region", "ce_my-ext", "ce_id", "ce_traceparent"), or a reserved name
// given twice; `envelope` is then unchanged. A store returns such a row with
// OutboxRecord::malformed set, and the relay parks it.
absl::Status DecodeOutboxHeaders(std::string_view column, Envelope& envelope);

// Table, schema and channel names of the table contract: 1 to 63 of
// [A-Za-z0-9_], not starting with a digit. Stores quote them in SQL and build
// no SQL from any other input.
bool IsValidSqlIdentifier(std::string_view name);
// OK when IsValidSqlIdentifier(name); otherwise kInvalidArgument naming
// `option` (e.g. "SqliteOptions.outbox_table"), the value (escaped, cut to 80
// characters) and the rule. Every store validates its names through this.
absl::Status CheckSqlIdentifier(std::string_view option, std::string_view name);

// OK when an event with this schema version can be relayed: versions start
// at 1. kInvalidArgument otherwise, saying that herald's consumers reject the
// record (its ce_schemaversion would not be a positive integer). Every
// store's Append refuses such an envelope; the relay parks such a row (a
// row inserted by another program) with this message.
absl::Status CheckOutboxSchemaVersion(int schema_version);

// The last_error text SkipParked records: "skipped by operator at <RFC 3339
// UTC time>: <reason>; last error: <previous last_error>". Stores build the
// note through this, so every store records a skip the same way.
std::string OutboxSkipNote(absl::Time at, std::string_view reason, std::string_view previous_error);

struct PendingBatchOptions {
  // Rows at most. Default: 500.
  int limit = 500;
  // Shard of the key space this relay owns: rows whose key hashes to `shard`
  // modulo `shard_count`. shard_count 1 means every row.
  int shard = 0;
  int shard_count = 1;
};

struct OutboxStats {
  int64_t pending = 0;                       // unpublished, not parked
  int64_t parked = 0;                        // failed for good, awaiting an operator
  absl::Duration oldest_pending_age = absl::ZeroDuration();  // the outbox lag
};

// A lease on a relay role: the leader lock, or one shard. Released when
// destroyed.
class Lease {
 public:
  virtual ~Lease() = default;
  // Confirms the lease is still held (renewing it where the store needs to);
  // kAborted when it was lost, after which the holder must stop relaying.
  virtual absl::Status Check() = 0;
};

// What a relay asks for when it takes a lease
// (OutboxStore::TryAcquireRelayLease).
struct LeaseRequest {
  // The lease: "relay", or "relay-shard-<i>-of-<N>" (OutboxRelay's names).
  std::string name;
  // The relays that must agree on one shard layout: the leases requested
  // with the same group (OutboxRelay: RelayOptions::lease_name). Empty: no
  // layout check.
  std::string group;
  // The shard count the holder relays with; 1: unsharded (the leader lock).
  int shard_count = 1;
  // A holder whose process the store can no longer reach (its host lost, a
  // network partition) keeps the lease at most this long, so that what it
  // had in flight has its outcome before another relay publishes the same
  // rows. A holder whose process died is always released at once.
  // Default: absl::InfiniteDuration(), the store's own connection timeouts.
  absl::Duration unreachable_timeout = absl::InfiniteDuration();
};

class OutboxStore {
 public:
  virtual ~OutboxStore() = default;

  // ---- Writer side ----

  // Begins a transaction on a connection of the store's own.
  virtual absl::StatusOr<std::unique_ptr<Transaction>> Begin() = 0;
  // Appends `envelope` inside `tx`, which must come from this store's Begin
  // (kInvalidArgument otherwise) and be open (kFailedPrecondition otherwise).
  virtual absl::Status Append(Transaction& tx, const Envelope& envelope) = 0;
  template <Event T>
  absl::Status Append(Transaction& tx, const T& event, EnvelopeOptions options = {}) {
    return Append(tx, MakeEnvelope(event, std::move(options)));
  }

  // ---- Relay side ----

  // The next pending rows in sequence order whose time has come, at most
  // `options.limit`, skipping every row that has an earlier unpublished row
  // of the same key that is not ready itself (parked, or waiting for its
  // retry time): the order guarantee. Several rows of one key may be in one
  // batch, in sequence order; the relay keeps their order under failure.
  // Rows without a key (NULL or empty) are not ordered against each other.
  // Does not change the rows.
  virtual absl::StatusOr<std::vector<OutboxRecord>> FetchPendingBatch(const PendingBatchOptions& options) = 0;
  // Marks the rows published, in one statement.
  virtual absl::Status MarkPublished(absl::Span<const int64_t> sequences) = 0;
  // Marks the rows published for good by deleting them, in one statement:
  // what the relay calls instead of MarkPublished when published rows are
  // kept for no time (RelayOptions::retention zero), so a row is written
  // once (deleted) rather than twice (marked, then purged). Rows that are
  // not pending (already published, skipped, gone) are left alone. The
  // default marks them (MarkPublished) for PurgePublished to delete; a
  // store that can delete at once overrides it.
  virtual absl::Status DeletePublished(absl::Span<const int64_t> sequences) { return MarkPublished(sequences); }
  // Records a failed attempt: attempts + 1, last_error, and the row becomes
  // available again at `retry_at`; with `park` it is parked (failed for good,
  // kept, visible) until RetryParked.
  virtual absl::Status MarkFailed(int64_t sequence, std::string_view error, absl::Time retry_at, bool park) = 0;
  // Makes parked rows pending again (all when `sequences` is empty) with
  // their attempts reset. Returns how many.
  virtual absl::StatusOr<int64_t> RetryParked(absl::Span<const int64_t> sequences) = 0;
  // Gives up on parked rows for good, as an operator decision: each of
  // `sequences` that is parked (others are left alone) leaves the outbox
  // without being delivered, so it no longer holds back its key. The skip is
  // recorded in the row, which is kept until PurgePublished removes it like
  // a published row: published_at is the time of the skip, parked_at stays
  // set (a delivered row never has both), and last_error becomes
  // OutboxSkipNote(now, reason, last_error). Returns how many rows were
  // skipped. kInvalidArgument when `sequences` or `reason` is empty (there
  // is no "skip everything").
  virtual absl::StatusOr<int64_t> SkipParked(absl::Span<const int64_t> sequences, std::string_view reason) = 0;
  // Writes `key` into the key column of each of the unpublished rows among
  // `sequences` that have no key (others are left alone), so that from then
  // on they are ordered with, and held back behind, the rows of that key.
  // The relay uses it for keys derived by RelayOptions::key_from. Returns
  // how many rows changed. kInvalidArgument for an empty key.
  virtual absl::StatusOr<int64_t> AssignKey(absl::Span<const int64_t> sequences, std::string_view key) = 0;
  // The keys among `positions` that have an unpublished row with that key
  // in the key column and a lower sequence than the position's, not counting
  // the rows of `exclude`; each key once, in no particular order. Every row
  // that failed (waiting for its retry time, or parked) counts; a store
  // whose relays may run side by side (PostgreSQL shards) counts every
  // unpublished row, since another relay may have it in flight, while one
  // that runs one relay at a time (SQLite's lease) may count failed rows
  // only: claims go in sequence order, so an earlier row that is neither in
  // the batch nor failed waits behind a failed one. The relay asks this,
  // with its batch as `exclude`, for the keys it derived
  // (RelayOptions::key_from) for rows the store saw as keyless, which
  // FetchPendingBatch could not hold back: a key returned has an earlier row
  // still to deliver, so the row waits behind it. A key the key column
  // cannot hold (PostgreSQL: one with a NUL byte) has no such row.
  virtual absl::StatusOr<std::vector<std::string>> KeysWithEarlierRows(absl::Span<const KeyPosition> positions,
                                                                       absl::Span<const int64_t> exclude) = 0;
  // Deletes at most `limit` published rows published before `before`.
  // Returns how many.
  virtual absl::StatusOr<int64_t> PurgePublished(absl::Time before, int limit) = 0;
  // Counts the pending and parked rows and the oldest pending row's age.
  // May read the whole table (PostgreSQL counts with one scan): callers
  // poll it at a metrics scrape's pace, not per batch.
  virtual absl::StatusOr<OutboxStats> Stats() = 0;
  // Parked rows, oldest first, at most `limit`.
  virtual absl::StatusOr<std::vector<OutboxRecord>> ListParked(int limit) = 0;

  // Blocks until a transaction may have committed new rows (PostgreSQL
  // LISTEN/NOTIFY, an in-process signal for SQLite) or `timeout` passes.
  // Spurious wake-ups are allowed. Returns OK either way; errors only for a
  // broken connection.
  virtual absl::Status WaitForWork(absl::Duration timeout) = 0;
  // Wakes every WaitForWork at once (used by Stop).
  virtual void Interrupt() = 0;

  // Tries to take the lease `name` (e.g. "relay" or "relay-shard-3") without
  // blocking: kUnavailable when another relay holds it.
  virtual absl::StatusOr<std::unique_ptr<Lease>> TryAcquireLease(std::string_view name) = 0;
  // The relay's way in: TryAcquireLease(request.name), and besides
  // kFailedPrecondition, naming both counts, while a live holder of a lease
  // of the same non-empty `request.group` relays with another shard_count
  // (relays with different counts would relay the same keys at once).
  // kUnimplemented for shard_count > 1 where the store cannot shard.
  // The default checks no layout: a store whose relays can shard overrides
  // it.
  virtual absl::StatusOr<std::unique_ptr<Lease>> TryAcquireRelayLease(const LeaseRequest& request) {
    return TryAcquireLease(request.name);
  }
};

}  // namespace herald

#endif  // HERALD_CORE_OUTBOX_H_
