// herald/postgres/postgres_outbox_store.h: the transactional outbox, the
// inbox and thin transactions on PostgreSQL (libpq).
//
// Open a store once per process; it creates its tables when they do not
// exist (under an advisory lock), refuses an existing table that does not
// meet the table contract (adopt one with `herald outbox migrate`), and
// keeps a small pool of connections. (`Exec` stands for the caller's own
// PQexec wrapper that returns an absl::Status, e.g. through PgResultToStatus
// in status.h.)
//
//   HERALD_ASSIGN_OR_RETURN(auto store, herald::postgres::PostgresOutboxStore::Open(
//       {.conninfo = dsn_from_secret_store, .schema = "billing", .table = "outbox"}));
//
//   // herald's own transaction; business rows go through tx->conn():
//   HERALD_ASSIGN_OR_RETURN(auto tx, store->BeginTransaction());
//   HERALD_RETURN_IF_ERROR(Exec(tx->conn(), "INSERT INTO customers (id) VALUES ('cust-42')"));
//   HERALD_RETURN_IF_ERROR(store->Append(*tx, CustomerEvent{.customer_id = "cust-42"}));
//   HERALD_RETURN_IF_ERROR(tx->Commit());        // destructor rolls back otherwise
//
//   // or join a transaction the caller opened on its own connection:
//   HERALD_RETURN_IF_ERROR(Exec(conn, "BEGIN"));
//   HERALD_RETURN_IF_ERROR(Exec(conn, "INSERT INTO customers (id) VALUES ('cust-43')"));
//   HERALD_RETURN_IF_ERROR(store->Append(conn, CustomerEvent{.customer_id = "cust-43"}));
//   HERALD_RETURN_IF_ERROR(Exec(conn, "COMMIT"));
//
//   herald::OutboxRelay relay(*store, bus);      // LISTEN/NOTIFY wake-up
//
// The table contract is docs/outbox.md: any writer (the seed's Go services
// insert only event_type, topic, event_payload) produces rows herald relays,
// and a statement-level trigger NOTIFYs the relay at commit. Values always
// travel as bound parameters; only validated identifiers (schema, table,
// channel) are ever written into SQL text, quoted.
//
// event_payload is TEXT so payload bytes are kept exactly; PostgreSQL text
// cannot hold NUL bytes or invalid UTF-8 (Append: kInvalidArgument), so
// binary payloads must be encoded (base64) by the caller. A table whose
// event_payload column is JSONB (created by another service) works too:
// herald reads `event_payload::text`, which is PostgreSQL's normalised JSON
// rather than the bytes written. Times are stored with microsecond
// precision.
//
// Thread-safety: PostgresOutboxStore is thread-safe. A Transaction belongs to
// one thread at a time and must not outlive its store.
#ifndef HERALD_POSTGRES_POSTGRES_OUTBOX_STORE_H_
#define HERALD_POSTGRES_POSTGRES_OUTBOX_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <libpq-fe.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "herald/core/clock.h"
#include "herald/core/envelope.h"
#include "herald/core/event.h"
#include "herald/core/inbox.h"
#include "herald/core/log.h"
#include "herald/core/outbox.h"

namespace herald::postgres {

class PostgresOutboxStore;
class PooledConnection;

struct PostgresOptions {
  // libpq connection string or URI ("host=... dbname=... user=...",
  // "postgresql://..."). Never logged, never echoed in an error (it may hold
  // a password). Default: "" (libpq's environment: PGHOST, PGDATABASE, ...).
  std::string conninfo;
  // Schema of the herald tables; created if missing. Default: "herald".
  std::string schema = "herald";
  // Outbox table. The seed's Go services use schema "outbox", table "outbox".
  // Default: "outbox".
  std::string table = "outbox";
  // Inbox table, in the same schema. Default: "inbox".
  std::string inbox_table = "inbox";
  // LISTEN/NOTIFY channel the insert trigger notifies. Default: "" meaning
  // "<schema>_<table>" (cut to 63 characters).
  std::string notify_channel;
  // Connections kept for transactions and relay statements (LISTEN and each
  // lease use one more of their own). Default: 4.
  int pool_size = 4;
  // How long Begin and the relay calls wait for a free pooled connection
  // before kResourceExhausted. Default: 10 s.
  absl::Duration acquire_timeout = absl::Seconds(10);
  // libpq connect_timeout (whole seconds, at least 2) unless the conninfo
  // sets its own. Default: 10 s.
  absl::Duration connect_timeout = absl::Seconds(10);
  // statement_timeout of every pooled connection; zero means none.
  // A statement cut off is kDeadlineExceeded. Default: 30 s.
  absl::Duration statement_timeout = absl::Seconds(30);
  // At Open, create herald's schema and tables when the outbox table does
  // not exist (and a missing inbox table). An existing outbox table is never
  // altered at Open: one that does not meet the table contract (e.g. the
  // seed's Go table, or one from an older herald) fails Open with
  // kFailedPrecondition naming `herald outbox migrate`, the explicit,
  // reviewable adoption step (docs/outbox.md, "Adopting an existing table";
  // library: herald/postgres/outbox_migration.h). False: create nothing,
  // only check (for databases whose DDL is run by a deployment pipeline).
  // Default: true.
  bool create_schema = true;
  // Source of created_at / available_at / published_at / processed_at and of
  // "now" in FetchPendingBatch and Stats. Default: nullptr, the database's own
  // now(), which rows from other writers use too; set a Clock (e.g.
  // herald::testing::FakeClock) to step time in tests. Must outlive the store.
  const Clock* clock = nullptr;
  // Where the store logs (herald/core/log.h), component "postgres": a
  // connection that cannot be opened or breaks (warning; passwords redacted
  // with herald/postgres/redact.h), the server's NOTICEs (debug). Must
  // outlive the store. Default: none, and then herald::DefaultLogSink().
  LogSink* log = nullptr;
};

// A transaction on a pooled connection, from PostgresOutboxStore::Begin or
// BeginTransaction. Run business statements on conn(); do not run COMMIT,
// ROLLBACK or BEGIN on it yourself. Destroying it open rolls it back and
// returns the connection to the pool. Not thread-safe.
class Transaction final : public herald::Transaction {
 public:
  ~Transaction() override;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // COMMIT. kAborted when the transaction had failed (a statement on conn()
  // errored), or on serialization failure / deadlock: retry it whole.
  // kUnavailable when the connection broke: the outcome is unknown.
  // kFailedPrecondition when already finished.
  absl::Status Commit() override;
  // ROLLBACK. OK when already rolled back; kFailedPrecondition after Commit.
  absl::Status Rollback() override;

  // The connection, for business statements in this transaction. Owned by
  // the store's pool; valid until the Transaction is destroyed.
  PGconn* conn() const;
  // True until Commit or Rollback.
  bool open() const { return open_; }

 private:
  friend class PostgresOutboxStore;
  Transaction(const PostgresOutboxStore* store, std::unique_ptr<PooledConnection> connection);
  PooledConnection& connection() { return *connection_; }
  absl::Status Finish(const char* sql);

  const PostgresOutboxStore* store_;
  std::unique_ptr<PooledConnection> connection_;
  bool open_ = true;
};

// The PostgreSQL OutboxStore and Inbox. Thread-safe.
class PostgresOutboxStore final : public herald::OutboxStore, public herald::Inbox {
 public:
  // Validates the options (kInvalidArgument names the bad field), connects
  // (kUnavailable when the server cannot be reached, with a hint) and checks
  // the tables in one transaction under an advisory lock, so several
  // processes may Open at once: with `create_schema`, creates them when the
  // outbox table is absent. kFailedPrecondition, naming `herald outbox
  // migrate`, when the outbox table exists but lacks herald's columns,
  // defaults, NOT NULLs or indexes: Open never alters an existing table.
  static absl::StatusOr<std::unique_ptr<PostgresOutboxStore>> Open(PostgresOptions options);
  ~PostgresOutboxStore() override;

  // ---- Transactions ----

  // BEGIN on a pooled connection. Waits up to acquire_timeout for a free one
  // (then kResourceExhausted); kUnavailable while the database is down.
  absl::StatusOr<std::unique_ptr<herald::Transaction>> Begin() override;
  // The same, typed, for conn().
  absl::StatusOr<std::unique_ptr<Transaction>> BeginTransaction();

  // ---- Writer ----

  using OutboxStore::Append;
  // Inserts one row in `tx` (kInvalidArgument when `tx` is not from this
  // store; kFailedPrecondition when it is finished; kAborted when a statement
  // in it failed). An empty envelope id gets a new UUIDv7; an empty key or
  // source is stored as NULL. kInvalidArgument for text PostgreSQL cannot
  // store (NUL bytes, invalid UTF-8); kAlreadyExists for a duplicate id.
  absl::Status Append(herald::Transaction& tx, const Envelope& envelope) override;
  // Inserts one row on the caller's connection, inside the transaction the
  // caller opened: kFailedPrecondition when `conn` has none open ("BEGIN
  // first"), kAborted when it is in a failed state, kUnavailable when it is
  // broken or busy. Blocks on one round trip.
  absl::Status Append(PGconn* conn, const Envelope& envelope);
  template <Event T>
  absl::Status Append(PGconn* conn, const T& event, EnvelopeOptions options = {}) {
    return Append(conn, MakeEnvelope(event, std::move(options)));
  }

  // ---- Relay (herald::OutboxStore; see outbox.h for the contracts) ----

  absl::StatusOr<std::vector<OutboxRecord>> FetchPendingBatch(const PendingBatchOptions& options) override;
  // An empty list does nothing.
  absl::Status MarkPublished(absl::Span<const int64_t> sequences) override;
  // One DELETE of the pending rows among `sequences` (no UPDATE, no purge
  // afterwards). An empty list does nothing.
  absl::Status DeletePublished(absl::Span<const int64_t> sequences) override;
  // kNotFound when no row has `sequence`.
  absl::Status MarkFailed(int64_t sequence, std::string_view error, absl::Time retry_at, bool park) override;
  absl::StatusOr<int64_t> RetryParked(absl::Span<const int64_t> sequences) override;
  absl::StatusOr<int64_t> SkipParked(absl::Span<const int64_t> sequences, std::string_view reason) override;
  absl::StatusOr<int64_t> AssignKey(absl::Span<const int64_t> sequences, std::string_view key) override;
  absl::StatusOr<std::vector<std::string>> KeysWithEarlierRows(absl::Span<const KeyPosition> positions,
                                                               absl::Span<const int64_t> exclude) override;
  absl::StatusOr<int64_t> PurgePublished(absl::Time before, int limit) override;
  absl::StatusOr<OutboxStats> Stats() override;
  absl::StatusOr<std::vector<OutboxRecord>> ListParked(int limit) override;
  // LISTENs on a dedicated connection (opened on first use) and waits on its
  // socket. kUnavailable when that connection cannot be opened or breaks; the
  // next call reconnects and returns at once (notifications may have been
  // missed meanwhile). Several threads may wait at once.
  absl::Status WaitForWork(absl::Duration timeout) override;
  void Interrupt() override;
  // A session-level advisory lock (key: a hash of "<schema>.<table>:<name>")
  // held on a dedicated connection until the Lease is destroyed.
  // kUnavailable when another session holds it or the database is down.
  // The lock goes with its session: when the holder's process dies the
  // kernel closes the connection and the server ends the session at once,
  // so a standby takes over at its next try. Lease::Check is one round
  // trip: kAborted when the connection or the lock was lost. A Lease must
  // not outlive its store.
  absl::StatusOr<std::unique_ptr<Lease>> TryAcquireLease(std::string_view name) override;
  // TryAcquireLease(request.name), and besides:
  // - layout: with a non-empty group, the holder's session also holds a
  //   shared advisory lock (hash of "<schema>.<table>:<group>:layout",
  //   shard_count); kFailedPrecondition naming both counts when a holder of
  //   the group holds one with another count. The check and the take run
  //   in one transaction under a group-wide transaction lock.
  // - unreachable_timeout: the session's server-side TCP keepalives and
  //   tcp_user_timeout are set so that the server ends it (freeing the lock)
  //   about that long after the holder's host stops answering.
  absl::StatusOr<std::unique_ptr<Lease>> TryAcquireRelayLease(const LeaseRequest& request) override;

  // ---- Inbox ----

  // As Append: `tx` from this store, open.
  absl::StatusOr<bool> MarkProcessed(herald::Transaction& tx, std::string_view consumer,
                                     std::string_view event_id) override;
  // On the caller's connection inside its open transaction (errors as the
  // PGconn* Append).
  absl::StatusOr<bool> MarkProcessed(PGconn* conn, std::string_view consumer, std::string_view event_id);
  absl::StatusOr<int64_t> PurgeProcessed(absl::Time before, int limit) override;

  // ---- Introspection ----

  const PostgresOptions& options() const { return options_; }
  // "<schema>"."<table>", quoted, for SQL of your own.
  const std::string& qualified_table() const;
  const std::string& qualified_inbox_table() const;
  // The notify channel in use.
  const std::string& notify_channel() const { return options_.notify_channel; }

 private:
  struct State;
  explicit PostgresOutboxStore(PostgresOptions options);
  friend class Transaction;

  PostgresOptions options_;
  std::unique_ptr<State> state_;
};

}  // namespace herald::postgres

#endif  // HERALD_POSTGRES_POSTGRES_OUTBOX_STORE_H_
