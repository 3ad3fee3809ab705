// herald/sqlite/sqlite_outbox_store.h: the transactional outbox, inbox and
// relay leases on one SQLite database file (edge deployments: one process, no
// servers, the same code paths as PostgreSQL).
//
// (`Exec` stands for the caller's own sqlite3_exec wrapper that returns an
// absl::Status, e.g. through SqliteErrorToStatus in sqlite_status.h.)
//
//   herald::sqlite::SqliteOptions options;
//   options.path = "orders.db";   // a local file (WAL mode)
//   HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::sqlite::SqliteOutboxStore> store,
//                           herald::sqlite::SqliteOutboxStore::Open(options));
//
//   // Business rows and events commit (or roll back) together:
//   HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::sqlite::Transaction> tx, store->BeginTransaction());
//   HERALD_RETURN_IF_ERROR(Exec(tx->db(), "INSERT INTO orders (id) VALUES ('o-1')"));
//   HERALD_RETURN_IF_ERROR(store->Append(*tx, OrderPlaced{.order_id = "o-1", .amount_cents = 4200}));
//   HERALD_RETURN_IF_ERROR(tx->Commit());      // the destructor rolls back otherwise
//
//   // Or join a transaction the caller opened on its own handle:
//   HERALD_RETURN_IF_ERROR(Exec(my_db, "BEGIN IMMEDIATE"));
//   HERALD_RETURN_IF_ERROR(Exec(my_db, "INSERT INTO orders (id) VALUES ('o-2')"));
//   HERALD_RETURN_IF_ERROR(store->Append(my_db, OrderPlaced{.order_id = "o-2", .amount_cents = 100}));
//   HERALD_RETURN_IF_ERROR(Exec(my_db, "COMMIT"));
//
//   herald::OutboxRelay relay(*store, bus);     // moves committed rows to the bus
//
// ## The table contract (docs/outbox.md; the same columns as PostgreSQL)
//
//   <outbox_table> (default herald_outbox)
//     seq            INTEGER PRIMARY KEY  relay order (the rowid; see below)
//     event_id       TEXT NOT NULL UNIQUE DEFAULT (random UUIDv4 text)
//     event_type     TEXT NOT NULL
//     topic          TEXT NOT NULL
//     event_key      TEXT NULL            NULL or '': not ordered against other rows
//     headers        TEXT NULL            JSON array of [name, value] pairs, in order
//     event_payload  TEXT NOT NULL        payload bytes (JSON text by default)
//     content_type   TEXT NOT NULL DEFAULT 'application/json'
//     source         TEXT NULL
//     schema_version INTEGER NOT NULL DEFAULT 1
//     occurred_at    INTEGER NOT NULL DEFAULT now    the envelope's time
//     created_at     INTEGER NOT NULL DEFAULT now
//     available_at   INTEGER NOT NULL DEFAULT now    not relayed before this time
//     published_at   INTEGER NULL
//     parked_at      INTEGER NULL         failed for good; blocks its key
//     attempts       INTEGER NOT NULL DEFAULT 0
//     last_error     TEXT NULL
//     index <outbox_table>_held (event_key, seq)
//           WHERE published_at IS NULL AND (attempts > 0 OR parked_at IS NOT NULL)
//     index <outbox_table>_published (published_at) WHERE published_at IS NOT NULL
//   <inbox_table>  (default herald_inbox): consumer, event_id, processed_at,
//                  PRIMARY KEY (consumer, event_id)
//   <lease_table>  (default herald_relay_leases): name PRIMARY KEY, owner, expires_at:
//                  who holds each relay lease (the lease itself is a file
//                  lock; see TryAcquireLease)
//   <migrations_table> (default herald_schema_migrations): version PRIMARY KEY, applied_at
//
// Indexes: a fresh row is in the table and the UNIQUE event_id index only
// (in WAL mode every B-tree a commit touches is one more page written).
// The relay finds pending rows by rowid from a low-water mark (every row
// before it is published), and blocked keys through the small `_held` index
// of failed and parked rows; purges find published rows through the
// `_published` index. A row inserted by hand with a future available_at is
// scheduled: it is not relayed before then, but does not hold back its key.
//
// Sequence numbers are never reused, which the low-water mark relies on.
// seq has no AUTOINCREMENT (its sqlite_sequence row would be one more page
// written per append), so SQLite gives a new row MAX(seq) + 1; instead,
// PurgePublished never deletes the row with the highest seq (it stays, marked
// published, until a newer row exists). Rules for other programs: insert
// without seq, and delete outbox rows only through PurgePublished (or the
// same condition: published, and `seq < (SELECT MAX(seq) FROM <outbox_table>)`).
// A file whose outbox table was created with AUTOINCREMENT (sqlite_sequence
// has a row for it) keeps working unchanged: it just pays that extra page.
//
// Every time column is INTEGER microseconds since the Unix epoch, UTC (exact,
// compact and compared as integers; render with
// `datetime(col / 1000000, 'unixepoch')`). "now" defaults come from SQLite's
// clock, so a row inserted by another program with only
//   INSERT INTO herald_outbox (event_type, topic, event_payload) VALUES (?, ?, ?)
// is valid and relayed: a generated id, time = created_at, no key.
//
// Migrations are an ordered list applied at Open, in one transaction, each
// recorded in the migrations table; reopening applies nothing twice. Two
// processes may open the same file at once.
//
// ## Threads, processes, wake-up
//
// Thread-safe: every method may be called from any thread. The store keeps a
// small pool of connections (SQLite connections are never shared between
// threads at once); a Transaction holds one connection until it ends. Writes
// made by the store itself (transactions, marks, leases) take an in-process
// writer gate first, so threads of one process queue in order instead of
// spinning in SQLite's busy handler; other processes on the same file are
// arbitrated by SQLite's file locks and `busy_timeout`.
//
// WaitForWork wakes at once when, in this process, a herald Transaction that
// appended rows commits (through any store on the same file), or a caller's
// own handle used with Append(sqlite3*) commits (through a WAL hook that
// herald installs on that handle; WAL mode only). Commits by other processes
// are seen by polling (the relay's poll_interval).
#ifndef HERALD_SQLITE_SQLITE_OUTBOX_STORE_H_
#define HERALD_SQLITE_SQLITE_OUTBOX_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "herald/core/clock.h"
#include "herald/core/envelope.h"
#include "herald/core/event.h"
#include "herald/core/inbox.h"
#include "herald/core/outbox.h"

struct sqlite3;

namespace herald::sqlite {

struct SqliteOptions {
  // The database file; created when missing. ":memory:" opens a separate
  // empty database per connection, so it does not work (the store uses
  // several connections): kInvalidArgument. Required.
  std::string path;

  // Table names, validated as identifiers [A-Za-z_][A-Za-z0-9_]{0,62} and
  // quoted in SQL (kInvalidArgument otherwise). Several outboxes in one file:
  // give each its own four names.
  std::string outbox_table = "herald_outbox";                 // Default: "herald_outbox".
  std::string inbox_table = "herald_inbox";                   // Default: "herald_inbox".
  std::string lease_table = "herald_relay_leases";            // Default: "herald_relay_leases".
  std::string migrations_table = "herald_schema_migrations";  // Default: "herald_schema_migrations".

  // How long a statement waits for another connection's lock before failing
  // with kUnavailable (sqlite3_busy_timeout; also bounds the wait at the
  // in-process writer gate). Default: 5 s.
  absl::Duration busy_timeout = absl::Seconds(5);
  // journal_mode=WAL: readers (the relay's fetches) never block writers.
  // Set once for the file (it is persistent). Default: true.
  bool wal = true;
  // PRAGMA synchronous for every connection: "OFF", "NORMAL", "FULL" or
  // "EXTRA". NORMAL in WAL mode is durable against process crashes and
  // keeps the database consistent on power loss (the last commits may be
  // lost). Default: "NORMAL".
  std::string synchronous = "NORMAL";
  // PRAGMA secure_delete for every connection: "ON" (every deleted row is
  // overwritten with zeros: Debian's SQLite default), "FAST" (overwritten
  // when that costs no extra I/O) or "OFF". The relay purges published rows
  // all the time; use ON when payloads must not survive on disk after their
  // purge. Default: "FAST".
  std::string secure_delete = "FAST";
  // Connections kept open while idle. More are opened on demand (one per
  // concurrent transaction) and closed when returned beyond this number.
  // Default: 4.
  int idle_connections = 4;
  // The expiry written in a lease's row (lease_table) and renewed by
  // Lease::Check once a third of it has passed. It does not decide who
  // holds a lease (a file lock does; see TryAcquireLease): a live holder
  // keeps its lease however long a batch takes, and a dead one's is free at
  // once. It fences herald versions that knew only the row. Default: 30 s.
  absl::Duration lease_ttl = absl::Seconds(30);
  // Clock for created/available/published times, pending fetches, leases
  // and Stats; optional. Must outlive the store. Default: nullptr, the
  // system clock.
  const Clock* clock = nullptr;
};

namespace internal {
class Connection;
class StoreState;
}  // namespace internal

// A write transaction on one of the store's connections, begun with
// BEGIN IMMEDIATE (the write lock is taken up front, so two writers never
// deadlock upgrading a read lock). Destroying it uncommitted rolls it back.
// Must not outlive its store. Thread-compatible: one thread at a time.
class Transaction final : public herald::Transaction {
 public:
  ~Transaction() override;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // The connection, for the caller's own statements inside this transaction.
  // Valid until Commit, Rollback or destruction; do not COMMIT/ROLLBACK on it
  // directly, and do not close it.
  sqlite3* db() const;
  // True until Commit or Rollback.
  bool open() const { return connection_ != nullptr; }

  // Commits and, when rows were appended, wakes this process's relays.
  // kFailedPrecondition when already ended; the SqliteErrorToStatus of COMMIT
  // otherwise (the transaction is rolled back and ended then).
  absl::Status Commit() override;
  // kFailedPrecondition when already ended.
  absl::Status Rollback() override;

 private:
  friend class SqliteOutboxStore;
  Transaction(internal::StoreState& state, internal::Connection* connection);
  // Returns the connection to the pool (rolling back if still open).
  void Release();

  internal::StoreState* state_;
  internal::Connection* connection_;  // borrowed from the pool until Release
  bool appended_ = false;
};

// The SQLite OutboxStore and Inbox. See the file comment for the contract and
// thread-safety.
class SqliteOutboxStore final : public OutboxStore, public Inbox {
 public:
  // Opens (creating when missing) the database at `options.path`, sets WAL
  // mode and applies the migrations. kInvalidArgument for bad options (empty
  // or ":memory:" path, bad table name, non-positive durations); the
  // SqliteErrorToStatus of the failing open or migration otherwise.
  static absl::StatusOr<std::unique_ptr<SqliteOutboxStore>> Open(SqliteOptions options);
  ~SqliteOutboxStore() override;
  SqliteOutboxStore(const SqliteOutboxStore&) = delete;
  SqliteOutboxStore& operator=(const SqliteOutboxStore&) = delete;

  const SqliteOptions& options() const { return options_; }

  // ---- Writer side ----

  // Begins a write transaction (BEGIN IMMEDIATE). Blocks up to busy_timeout
  // for the writer gate and the database's write lock; kUnavailable after
  // that. Do not begin a second one on a thread that holds one: it waits for
  // the first and fails after busy_timeout.
  absl::StatusOr<std::unique_ptr<Transaction>> BeginTransaction();
  // OutboxStore / Inbox: the same, as the abstract type.
  absl::StatusOr<std::unique_ptr<herald::Transaction>> Begin() override;

  // Appends `envelope` in `tx` (one INSERT, statement cached per connection).
  // kInvalidArgument when `tx` is not from this store, or the envelope lacks
  // a type or topic; kFailedPrecondition when `tx` has ended; kAlreadyExists
  // for a duplicate event id. An empty id gets a new UUIDv7, an unset time
  // (the Unix epoch) the clock's now.
  absl::Status Append(herald::Transaction& tx, const Envelope& envelope) override;
  using OutboxStore::Append;

  // Appends in the transaction open on the caller's own connection `db`
  // (which must be on this store's file, and used by one thread at a time).
  // kFailedPrecondition when no transaction is open on it ("call BEGIN
  // first"). The statement is prepared per call. Installs a WAL hook on `db`
  // that wakes this process's relays after each commit (replacing SQLite's
  // default auto-checkpoint hook with one that checkpoints alike, every
  // 1000 WAL pages).
  absl::Status Append(sqlite3* db, const Envelope& envelope);
  template <Event T>
  absl::Status Append(sqlite3* db, const T& event, EnvelopeOptions options = {}) {
    if (options.clock == nullptr) options.clock = options_.clock;
    return Append(db, MakeEnvelope(event, std::move(options)));
  }

  // ---- Relay side (OutboxStore) ----

  // Rows in sequence order whose available_at has come; a row is skipped
  // when an earlier unpublished row of its key is held back (parked, or not
  // yet available after a failure), so a key's rows come as an in-order
  // prefix. Several rows of one key may be in one batch. A row that cannot be
  // decoded (headers that are not a JSON array of [name, value] string
  // pairs) is parked at once with the reason in last_error, and blocks its
  // key like any parked row. shard_count > 1: kUnimplemented (an edge
  // deployment runs one relay; use the leader lease; OutboxRelay::Start
  // refuses such a relay with this reason).
  absl::StatusOr<std::vector<OutboxRecord>> FetchPendingBatch(const PendingBatchOptions& options) override;
  // One UPDATE for the whole span (sequences bound as one JSON array).
  absl::Status MarkPublished(absl::Span<const int64_t> sequences) override;
  // One DELETE of the pending rows among `sequences`, in one transaction,
  // except the row with the highest seq in the table, which is marked
  // published instead (and purged later like any published row): a seq is
  // never handed out again (see the file comment). What the relay calls with
  // RelayOptions::retention zero, its default: one write per row instead of
  // two (the UPDATE now, the purge's DELETE later); the relay spends 1.4-1.6x
  // less CPU per event (docs/performance.md).
  absl::Status DeletePublished(absl::Span<const int64_t> sequences) override;
  // kNotFound when no unpublished row has `sequence`.
  absl::Status MarkFailed(int64_t sequence, std::string_view error, absl::Time retry_at, bool park) override;
  absl::StatusOr<int64_t> RetryParked(absl::Span<const int64_t> sequences) override;
  absl::StatusOr<int64_t> SkipParked(absl::Span<const int64_t> sequences, std::string_view reason) override;
  absl::StatusOr<int64_t> AssignKey(absl::Span<const int64_t> sequences, std::string_view key) override;
  absl::StatusOr<std::vector<std::string>> KeysWithEarlierRows(absl::Span<const KeyPosition> positions,
                                                               absl::Span<const int64_t> exclude) override;
  // Deletes published rows, oldest publication first, except the row with
  // the highest seq (kept so that its seq is never handed out again; see the
  // file comment): purging everything leaves that one published row.
  absl::StatusOr<int64_t> PurgePublished(absl::Time before, int limit) override;
  absl::StatusOr<OutboxStats> Stats() override;
  absl::StatusOr<std::vector<OutboxRecord>> ListParked(int limit) override;
  // Waits for the in-process signal (see the file comment) or `timeout`.
  // Returns at once when a signal arrived since the previous WaitForWork
  // returned, so a commit between a fetch and the next wait is not missed.
  absl::Status WaitForWork(absl::Duration timeout) override;
  void Interrupt() override;
  // An exclusive flock(2) on the side file
  // "<database file>-lease-<lease_table>-<name>.lock" (created next to the
  // database; characters of `name` other than [A-Za-z0-9_.-] as %XX), held
  // by the returned Lease's descriptor: kUnavailable while another Lease,
  // in this process or another, holds it. The kernel drops the lock when the
  // holder's process dies, so a standby takes over at its next try; a live
  // holder never loses it (there is no expiry to outlast). The lock file must
  // not be deleted while relays run (Check reports kAborted if it was). Then
  // the row in lease_table is written for the new owner (a dead holder's row
  // is taken over at once). A child forked (without exec) by the holder
  // shares the lock until it exits.
  absl::StatusOr<std::unique_ptr<Lease>> TryAcquireLease(std::string_view name) override;
  // shard_count > 1: kUnimplemented; else TryAcquireLease(request.name).
  absl::StatusOr<std::unique_ptr<Lease>> TryAcquireRelayLease(const LeaseRequest& request) override;

  // ---- Inbox ----

  // INSERT ... ON CONFLICT DO NOTHING into inbox_table inside `tx`.
  absl::StatusOr<bool> MarkProcessed(herald::Transaction& tx, std::string_view consumer,
                                     std::string_view event_id) override;
  // The same in the transaction open on the caller's own connection `db`;
  // kFailedPrecondition when none is open.
  absl::StatusOr<bool> MarkProcessed(sqlite3* db, std::string_view consumer, std::string_view event_id);
  absl::StatusOr<int64_t> PurgeProcessed(absl::Time before, int limit) override;

 private:
  explicit SqliteOutboxStore(std::unique_ptr<internal::StoreState> state);
  absl::StatusOr<Transaction*> OwnTransaction(herald::Transaction& tx) const;

  SqliteOptions options_;
  std::unique_ptr<internal::StoreState> state_;
};

}  // namespace herald::sqlite

#endif  // HERALD_SQLITE_SQLITE_OUTBOX_STORE_H_
