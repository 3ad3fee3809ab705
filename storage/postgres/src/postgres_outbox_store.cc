#include "herald/postgres/postgres_outbox_store.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "connection.h"
#include "herald/core/mutex.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/core/uuid.h"
#include "herald/postgres/status.h"
#include "schema.h"

namespace herald::postgres {

namespace {

std::string FormatTimestamp(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%E6S+00", t, absl::UTCTimeZone());
}

int64_t ToInt64(const char* text) {
  int64_t value = 0;
  (void)absl::SimpleAtoi(text, &value);
  return value;
}

std::string Value(const PGresult* r, int row, int col) {
  return std::string(PQgetvalue(r, row, col), static_cast<size_t>(PQgetlength(r, row, col)));
}

// One row selected with kRecordColumns.
OutboxRecord ReadRecord(const PGresult* r, int row) {
  OutboxRecord record;
  record.sequence = ToInt64(PQgetvalue(r, row, 0));
  Envelope& e = record.envelope;
  e.id = Value(r, row, 1);
  e.type = Value(r, row, 2);
  e.topic = Value(r, row, 3);
  e.key = Value(r, row, 4);  // NULL reads as ""
  if (!PQgetisnull(r, row, 5)) {
    // Headers, subject, dataschema and extensions. A row whose column breaks
    // the contract is returned with `malformed` set; the relay parks it.
    if (absl::Status decoded = DecodeOutboxHeaders(Value(r, row, 5), e); !decoded.ok()) {
      record.malformed = std::string(decoded.message());
    }
  }
  e.payload = Value(r, row, 6);
  e.content_type = Value(r, row, 7);
  e.source = Value(r, row, 8);
  e.schema_version = static_cast<int>(ToInt64(PQgetvalue(r, row, 9)));
  e.time = absl::FromUnixMicros(ToInt64(PQgetvalue(r, row, 10)));
  record.attempts = static_cast<int>(ToInt64(PQgetvalue(r, row, 11)));
  record.last_error = Value(r, row, 12);
  record.created_at = absl::FromUnixMicros(ToInt64(PQgetvalue(r, row, 13)));
  return record;
}

std::vector<OutboxRecord> ReadRecords(const PGresult* r) {
  std::vector<OutboxRecord> records;
  records.reserve(static_cast<size_t>(PQntuples(r)));
  for (int i = 0; i < PQntuples(r); ++i) records.push_back(ReadRecord(r, i));
  return records;
}

std::string ArrayLiteral(absl::Span<const int64_t> values) {
  std::string text = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) text += ',';
    StrAppend(&text, values[i]);
  }
  text += '}';
  return text;
}

int64_t AffectedRows(const PGresult* r) {
  const char* text = PQcmdTuples(const_cast<PGresult*>(r));
  return text == nullptr || *text == '\0' ? 0 : ToInt64(text);
}

bool HasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// The parameters of OutboxSql::insert, owning their text.
class InsertParams {
 public:
  InsertParams(const Envelope& e, const Clock* clock) : e_(e) {
    const Clock& c = clock != nullptr ? *clock : SystemClock();
    id_ = e.id.empty() ? NewUuidV7(c.Now()) : e.id;
    // Headers, subject, dataschema and extensions; "" is NULL.
    if (absl::StatusOr<std::string> column = EncodeOutboxHeaders(e); column.ok()) {
      headers_ = *std::move(column);
    } else {
      headers_status_ = column.status();
    }
    version_ = std::to_string(e.schema_version);
    occurred_ = FormatTimestamp(e.time);
    if (clock != nullptr) now_ = FormatTimestamp(clock->Now());
    values_ = {id_.c_str(),
               e.type.c_str(),
               e.topic.c_str(),
               e.key.empty() ? nullptr : e.key.c_str(),
               headers_.empty() ? nullptr : headers_.c_str(),
               e.payload.c_str(),
               e.content_type.c_str(),
               e.source.empty() ? nullptr : e.source.c_str(),
               version_.c_str(),
               occurred_.c_str(),
               clock != nullptr ? now_.c_str() : nullptr};
  }
  Params params() const { return values_; }

  absl::Status Validate() const {
    if (e_.type.empty() || e_.topic.empty()) {
      return absl::InvalidArgumentError("outbox append: the envelope needs a type and a topic");
    }
    HERALD_RETURN_IF_ERROR(CheckOutboxSchemaVersion(e_.schema_version));
    if (!headers_status_.ok()) return headers_status_;
    for (std::string_view field : {std::string_view(id_), std::string_view(e_.type), std::string_view(e_.topic),
                                   std::string_view(e_.key), std::string_view(e_.payload),
                                   std::string_view(e_.content_type), std::string_view(e_.source)}) {
      if (HasNul(field)) {
        return absl::InvalidArgumentError(
            "outbox append: PostgreSQL text cannot hold NUL bytes; encode binary payloads (e.g. base64) and "
            "say so in content_type");
      }
    }
    return absl::OkStatus();
  }

 private:
  const Envelope& e_;
  std::string id_, headers_, version_, occurred_, now_;
  absl::Status headers_status_;
  std::vector<const char*> values_;
};

// Checks a caller's connection before joining its transaction.
absl::Status CheckJoinable(PGconn* conn, std::string_view what) {
  if (conn == nullptr) return absl::InvalidArgumentError(StrCat(what, ": the PGconn is null"));
  if (PQstatus(conn) != CONNECTION_OK) return PgConnectionToStatus(conn, what);
  switch (PQtransactionStatus(conn)) {
    case PQTRANS_INTRANS:
      return absl::OkStatus();
    case PQTRANS_IDLE:
      return absl::FailedPreconditionError(StrCat(what, " needs an open transaction: BEGIN first"));
    case PQTRANS_INERROR:
      return absl::AbortedError(
          StrCat(what, ": the transaction failed earlier and must be rolled back (ROLLBACK), then retried"));
    case PQTRANS_ACTIVE:
      return absl::FailedPreconditionError(StrCat(what, ": the connection is busy running another command"));
    default:
      return PgConnectionToStatus(conn, what);
  }
}

// A session-level advisory lock on a connection of its own.
class PostgresLease final : public Lease {
 public:
  PostgresLease(std::unique_ptr<Connection> connection, int64_t key, std::string name)
      : connection_(std::move(connection)), key_(key), name_(std::move(name)) {}
  // Closing the session releases the lock.
  ~PostgresLease() override = default;

  absl::Status Check() override {
    const uint64_t key = static_cast<uint64_t>(key_);
    const std::string high = std::to_string(key >> 32), low = std::to_string(key & 0xffffffffu);
    const char* params[] = {high.c_str(), low.c_str()};
    absl::StatusOr<ResultPtr> result = ExecParams(
        connection_->get(),
        "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND "
        "classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1",
        params, "check lease");
    if (!result.ok()) {
      return absl::AbortedError(StrCat("lease \"", name_, "\" lost: ", ToStd(result.status().message())));
    }
    if (PQntuples(result->get()) == 0) {
      return absl::AbortedError(StrCat("lease \"", name_, "\" lost: the advisory lock is no longer held"));
    }
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<Connection> connection_;
  int64_t key_;
  std::string name_;
};

}  // namespace

struct PostgresOutboxStore::State {
  State(ConnectSettings settings, const PostgresOptions& options)
      : pool(std::move(settings), options.pool_size, options.acquire_timeout), sql(BuildOutboxSql(options)) {}

  // Runs a self-contained statement on a pooled connection. A connection that
  // went stale while idle (server restarted) is replaced and the statement
  // run once more on a fresh one.
  absl::StatusOr<ResultPtr> Run(const Statement& statement, Params params, std::string_view what) {
    for (int attempt = 0;; ++attempt) {
      HERALD_ASSIGN_OR_RETURN(std::unique_ptr<PooledConnection> connection, pool.Acquire());
      absl::StatusOr<ResultPtr> result = (*connection)->Run(statement, params, what);
      if (result.ok() || attempt > 0 || !connection->reused() || !(*connection)->broken()) return result;
    }
  }

  // Runs the claim (fetch_pending*) in a read-only transaction that rules
  // out bitmap scans and sorts, so that it is planned as a walk of the
  // pending index in seq order that stops at the LIMIT, whatever the
  // table's statistics say. Without them (a table not yet analyzed, or
  // analyzed while nearly empty and then filled by a burst: the backlog a
  // relay drains after an outage) the planner expects a handful of rows,
  // reads every pending row into a bitmap and sorts them: 0.5 s a claim
  // with 100,000 rows pending instead of about 1 ms, once per batch, until
  // autovacuum analyzes the table. SET LOCAL ends with the transaction; a
  // connection left inside it is dropped by the pool, never reused.
  absl::StatusOr<ResultPtr> RunClaim(const Statement& statement, Params params, std::string_view what) {
    for (int attempt = 0;; ++attempt) {
      HERALD_ASSIGN_OR_RETURN(std::unique_ptr<PooledConnection> connection, pool.Acquire());
      absl::Status begun =
          (*connection)->Exec("BEGIN READ ONLY; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off", what);
      if (!begun.ok()) {
        // A connection that went stale while idle: the pool drops it, try afresh.
        if (attempt == 0 && connection->reused() && (*connection)->broken()) continue;
        return begun;
      }
      absl::StatusOr<ResultPtr> result = (*connection)->Run(statement, params, what);
      if (!result.ok()) {
        (void)(*connection)->Exec("ROLLBACK", what);
        return result;
      }
      HERALD_RETURN_IF_ERROR((*connection)->Exec("COMMIT", what));
      return result;
    }
  }

  // Only the thread that set `polling` touches the listener.
  absl::StatusOr<bool> PollListener(const PostgresOptions& options, absl::Time deadline);

  ConnectionPool pool;
  const OutboxSql sql;
  int event_fd = -1;

  Mutex wait_mu;
  CondVar wait_cv;
  uint64_t wake_sequence ABSL_GUARDED_BY(wait_mu) = 0;
  bool polling ABSL_GUARDED_BY(wait_mu) = false;
  std::unique_ptr<Connection> listener;
  bool listener_lost = false;
};

absl::StatusOr<bool> PostgresOutboxStore::State::PollListener(const PostgresOptions& options, absl::Time deadline) {
  if (listener == nullptr || listener->broken()) {
    listener.reset();
    listener_lost = true;
    HERALD_ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection, Connection::Open(pool.settings(), "listen"));
    HERALD_RETURN_IF_ERROR(connection->Exec(StrCat("LISTEN ", QuoteIdentifier(options.notify_channel)), "listen"));
    listener = std::move(connection);
    listener_lost = false;
    // Rows may have been committed while nobody listened.
    return true;
  }
  PGconn* conn = listener->get();
  for (;;) {
    if (PQconsumeInput(conn) == 0) {
      absl::Status status = PgConnectionToStatus(conn, "wait for outbox rows");
      listener.reset();
      listener_lost = true;
      return status;
    }
    bool notified = false;
    while (PGnotify* notify = PQnotifies(conn)) {
      notified = true;
      PQfreemem(notify);
    }
    if (notified) return true;
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    pollfd fds[2] = {{PQsocket(conn), POLLIN, 0}, {event_fd, POLLIN, 0}};
    const int64_t ms = std::min<int64_t>(absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))), INT_MAX);
    int ready = poll(fds, 2, static_cast<int>(ms));
    if (ready < 0 && errno != EINTR) {
      return absl::InternalError(StrCat("wait for outbox rows: poll failed, errno ", errno));
    }
    if (ready > 0 && (fds[1].revents & POLLIN) != 0) {
      uint64_t count = 0;
      (void)!read(event_fd, &count, sizeof(count));
      return true;
    }
    // Socket readable (or timeout / EINTR): loop to consume and re-check.
  }
}

// ---- Transaction ----

Transaction::Transaction(const PostgresOutboxStore* store, std::unique_ptr<PooledConnection> connection)
    : store_(store), connection_(std::move(connection)) {}

Transaction::~Transaction() {
  if (open_) (void)Rollback();
}

PGconn* Transaction::conn() const { return (**connection_).get(); }

absl::Status Transaction::Finish(const char* sql) {
  open_ = false;
  return (*connection_)->Exec(sql, sql[0] == 'C' ? "commit" : "roll back");
}

absl::Status Transaction::Commit() {
  if (!open_) return absl::FailedPreconditionError("commit: the transaction is already finished");
  if (PQtransactionStatus(conn()) == PQTRANS_INERROR) {
    (void)Finish("ROLLBACK");
    return absl::AbortedError(
        "commit: a statement in this transaction failed, so it was rolled back; retry the whole transaction");
  }
  open_ = false;
  ResultPtr result(PQexec(conn(), "COMMIT"));
  absl::Status status = PgResultToStatus(conn(), result.get(), "commit");
  if (!status.ok()) {
    if (absl::IsUnavailable(status)) {
      return absl::UnavailableError(
          StrCat(ToStd(status.message()), " (the commit's outcome is unknown: check before retrying)"));
    }
    return status;
  }
  // COMMIT of a transaction the server had aborted answers "ROLLBACK".
  if (std::string_view(PQcmdStatus(result.get())) != "COMMIT") {
    return absl::AbortedError("commit: the server rolled the transaction back; retry the whole transaction");
  }
  return absl::OkStatus();
}

absl::Status Transaction::Rollback() {
  if (!open_) {
    return absl::FailedPreconditionError("roll back: the transaction is already finished");
  }
  return Finish("ROLLBACK");
}

// ---- PostgresOutboxStore ----

PostgresOutboxStore::PostgresOutboxStore(PostgresOptions options) : options_(std::move(options)) {}

PostgresOutboxStore::~PostgresOutboxStore() {
  if (state_ != nullptr && state_->event_fd >= 0) close(state_->event_fd);
}

const std::string& PostgresOutboxStore::qualified_table() const { return state_->sql.table; }
const std::string& PostgresOutboxStore::qualified_inbox_table() const { return state_->sql.inbox; }

absl::StatusOr<std::unique_ptr<PostgresOutboxStore>> PostgresOutboxStore::Open(PostgresOptions options) {
  HERALD_ASSIGN_OR_RETURN(ConnectSettings settings, PrepareOptions(options));

  std::unique_ptr<PostgresOutboxStore> store(new PostgresOutboxStore(std::move(options)));
  store->state_ = std::make_unique<State>(std::move(settings), store->options_);
  store->state_->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (store->state_->event_fd < 0) return absl::InternalError(StrCat("eventfd failed, errno ", errno));

  // Connect now, so a wrong address fails Open rather than the first Begin.
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<PooledConnection> connection, store->state_->pool.Acquire());
  HERALD_RETURN_IF_ERROR(PrepareSchema(**connection, store->options_, store->state_->sql));
  return store;
}

absl::StatusOr<std::unique_ptr<Transaction>> PostgresOutboxStore::BeginTransaction() {
  for (int attempt = 0;; ++attempt) {
    HERALD_ASSIGN_OR_RETURN(std::unique_ptr<PooledConnection> connection, state_->pool.Acquire());
    absl::Status status = (*connection)->Exec("BEGIN", "begin");
    if (status.ok()) return std::unique_ptr<Transaction>(new Transaction(this, std::move(connection)));
    // A connection that went stale while idle: the pool drops it, try afresh.
    if (attempt > 0 || !connection->reused() || !(*connection)->broken()) return status;
  }
}

absl::StatusOr<std::unique_ptr<herald::Transaction>> PostgresOutboxStore::Begin() {
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<Transaction> tx, BeginTransaction());
  return std::unique_ptr<herald::Transaction>(std::move(tx));
}

namespace {

absl::StatusOr<Transaction*> OwnTransaction(herald::Transaction& tx, const PostgresOutboxStore* store,
                                            std::string_view what) {
  auto* own = dynamic_cast<Transaction*>(&tx);
  if (own == nullptr) {
    return absl::InvalidArgumentError(StrCat(what, ": the transaction does not come from a PostgresOutboxStore"));
  }
  if (!own->open()) return absl::FailedPreconditionError(StrCat(what, ": the transaction is already finished"));
  if (PQtransactionStatus(own->conn()) == PQTRANS_INERROR) {
    return absl::AbortedError(
        StrCat(what, ": a statement in this transaction failed; roll it back and retry the whole transaction"));
  }
  return own;
}

}  // namespace

absl::Status PostgresOutboxStore::Append(herald::Transaction& tx, const Envelope& envelope) {
  HERALD_ASSIGN_OR_RETURN(Transaction * own, OwnTransaction(tx, this, "outbox append"));
  if (own->store_ != this) {
    return absl::InvalidArgumentError("outbox append: the transaction comes from another PostgresOutboxStore");
  }
  InsertParams params(envelope, options_.clock);
  HERALD_RETURN_IF_ERROR(params.Validate());
  return own->connection()->Run(state_->sql.insert, params.params(), "outbox append").status();
}

absl::Status PostgresOutboxStore::Append(PGconn* conn, const Envelope& envelope) {
  HERALD_RETURN_IF_ERROR(CheckJoinable(conn, "Append"));
  InsertParams params(envelope, options_.clock);
  HERALD_RETURN_IF_ERROR(params.Validate());
  return ExecParams(conn, state_->sql.insert.sql, params.params(), "outbox append").status();
}

absl::StatusOr<std::vector<OutboxRecord>> PostgresOutboxStore::FetchPendingBatch(const PendingBatchOptions& options) {
  if (options.limit < 1) return absl::InvalidArgumentError("fetch pending rows: limit must be at least 1");
  if (options.shard_count < 1 || options.shard < 0 || options.shard >= options.shard_count) {
    return absl::InvalidArgumentError(
        StrCat("fetch pending rows: shard ", options.shard, " of ", options.shard_count, " is not a valid shard"));
  }
  const std::string limit = std::to_string(options.limit);
  const std::string now = options_.clock != nullptr ? FormatTimestamp(options_.clock->Now()) : "";
  const char* now_param = options_.clock != nullptr ? now.c_str() : nullptr;
  absl::StatusOr<ResultPtr> result;
  if (options.shard_count == 1) {
    const char* params[] = {limit.c_str(), now_param};
    result = state_->RunClaim(state_->sql.fetch_pending, params, "fetch pending outbox rows");
  } else {
    const std::string count = std::to_string(options.shard_count), shard = std::to_string(options.shard);
    const char* params[] = {limit.c_str(), now_param, count.c_str(), shard.c_str()};
    result = state_->RunClaim(state_->sql.fetch_pending_shard, params, "fetch pending outbox rows");
  }
  if (!result.ok()) return result.status();
  return ReadRecords(result->get());
}

absl::Status PostgresOutboxStore::MarkPublished(absl::Span<const int64_t> sequences) {
  if (sequences.empty()) return absl::OkStatus();
  const std::string array = ArrayLiteral(sequences);
  const std::string now = options_.clock != nullptr ? FormatTimestamp(options_.clock->Now()) : "";
  const char* params[] = {array.c_str(), options_.clock != nullptr ? now.c_str() : nullptr};
  return state_->Run(state_->sql.mark_published, params, "mark outbox rows published").status();
}

absl::Status PostgresOutboxStore::DeletePublished(absl::Span<const int64_t> sequences) {
  if (sequences.empty()) return absl::OkStatus();
  const std::string array = ArrayLiteral(sequences);
  const char* params[] = {array.c_str()};
  return state_->Run(state_->sql.delete_published, params, "delete published outbox rows").status();
}

absl::Status PostgresOutboxStore::MarkFailed(int64_t sequence, std::string_view error, absl::Time retry_at,
                                             bool park) {
  const std::string seq = std::to_string(sequence);
  std::string message(error);
  std::replace(message.begin(), message.end(), '\0', ' ');
  const std::string retry = FormatTimestamp(retry_at);
  const std::string now = options_.clock != nullptr ? FormatTimestamp(options_.clock->Now()) : "";
  const char* params[] = {seq.c_str(), message.c_str(), retry.c_str(), park ? "true" : "false",
                          options_.clock != nullptr ? now.c_str() : nullptr};
  HERALD_ASSIGN_OR_RETURN(ResultPtr result, state_->Run(state_->sql.mark_failed, params, "mark outbox row failed"));
  if (AffectedRows(result.get()) == 0) {
    return absl::NotFoundError(StrCat("mark outbox row failed: no row with sequence ", sequence));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> PostgresOutboxStore::RetryParked(absl::Span<const int64_t> sequences) {
  const std::string array = ArrayLiteral(sequences);
  const std::string now = options_.clock != nullptr ? FormatTimestamp(options_.clock->Now()) : "";
  const char* params[] = {sequences.empty() ? nullptr : array.c_str(),
                          options_.clock != nullptr ? now.c_str() : nullptr};
  HERALD_ASSIGN_OR_RETURN(ResultPtr result, state_->Run(state_->sql.retry_parked, params, "retry parked rows"));
  return AffectedRows(result.get());
}

absl::StatusOr<int64_t> PostgresOutboxStore::SkipParked(absl::Span<const int64_t> sequences, std::string_view reason) {
  if (sequences.empty()) return absl::InvalidArgumentError("skip parked rows: name the parked rows to skip");
  if (reason.empty()) return absl::InvalidArgumentError("skip parked rows: say why the rows are skipped");
  const std::string array = ArrayLiteral(sequences);
  const absl::Time at = (options_.clock != nullptr ? *options_.clock : SystemClock()).Now();
  const std::string now = FormatTimestamp(at);
  std::string note = OutboxSkipNote(at, reason, "");
  std::replace(note.begin(), note.end(), '\0', ' ');
  const char* params[] = {array.c_str(), now.c_str(), note.c_str()};
  HERALD_ASSIGN_OR_RETURN(ResultPtr result, state_->Run(state_->sql.skip_parked, params, "skip parked rows"));
  return AffectedRows(result.get());
}

absl::StatusOr<int64_t> PostgresOutboxStore::AssignKey(absl::Span<const int64_t> sequences, std::string_view key) {
  if (key.empty() || HasNul(key)) {
    return absl::InvalidArgumentError("assign a key to outbox rows: the key is empty or holds a NUL byte");
  }
  if (sequences.empty()) return 0;
  const std::string array = ArrayLiteral(sequences), text(key);
  const char* params[] = {array.c_str(), text.c_str()};
  HERALD_ASSIGN_OR_RETURN(ResultPtr result, state_->Run(state_->sql.assign_key, params, "assign a key to outbox rows"));
  return AffectedRows(result.get());
}

absl::StatusOr<std::vector<std::string>> PostgresOutboxStore::KeysWithEarlierRows(
    absl::Span<const KeyPosition> positions, absl::Span<const int64_t> exclude) {
  // A key with a NUL byte cannot be in the key column (nor in jsonb).
  std::vector<KeyPosition> storable;
  for (const KeyPosition& p : positions) {
    if (!p.key.empty() && !HasNul(p.key)) storable.push_back(p);
  }
  if (storable.empty()) return std::vector<std::string>{};
  const std::string list = EncodeKeyPositions(storable), excluded = ArrayLiteral(exclude);
  const char* params[] = {list.c_str(), excluded.c_str()};
  HERALD_ASSIGN_OR_RETURN(ResultPtr result, state_->Run(state_->sql.keys_with_earlier, params,
                                                        "look for earlier outbox rows of derived keys"));
  std::vector<std::string> keys;
  for (int row = 0; row < PQntuples(result.get()); ++row) keys.emplace_back(PQgetvalue(result.get(), row, 0));
  return keys;
}

absl::StatusOr<int64_t> PostgresOutboxStore::PurgePublished(absl::Time before, int limit) {
  if (limit <= 0) return 0;
  const std::string when = FormatTimestamp(before), count = std::to_string(limit);
  const char* params[] = {when.c_str(), count.c_str()};
  HERALD_ASSIGN_OR_RETURN(ResultPtr result,
                          state_->Run(state_->sql.purge_published, params, "purge published rows"));
  return AffectedRows(result.get());
}

absl::StatusOr<OutboxStats> PostgresOutboxStore::Stats() {
  const std::string now = options_.clock != nullptr ? FormatTimestamp(options_.clock->Now()) : "";
  const char* params[] = {options_.clock != nullptr ? now.c_str() : nullptr};
  HERALD_ASSIGN_OR_RETURN(ResultPtr result, state_->Run(state_->sql.stats, params, "outbox stats"));
  OutboxStats stats;
  stats.pending = ToInt64(PQgetvalue(result.get(), 0, 0));
  stats.parked = ToInt64(PQgetvalue(result.get(), 0, 1));
  stats.oldest_pending_age = std::max(absl::ZeroDuration(), absl::Microseconds(ToInt64(PQgetvalue(result.get(), 0, 2))));
  return stats;
}

absl::StatusOr<std::vector<OutboxRecord>> PostgresOutboxStore::ListParked(int limit) {
  if (limit <= 0) return std::vector<OutboxRecord>{};
  const std::string count = std::to_string(limit);
  const char* params[] = {count.c_str()};
  HERALD_ASSIGN_OR_RETURN(ResultPtr result, state_->Run(state_->sql.list_parked, params, "list parked rows"));
  return ReadRecords(result.get());
}

absl::Status PostgresOutboxStore::WaitForWork(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  State& s = *state_;
  MutexLock lock(s.wait_mu);
  const uint64_t start = s.wake_sequence;
  while (s.wake_sequence == start) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return absl::OkStatus();
    if (s.polling) {
      // Another thread watches the socket; it wakes us when it sees work.
      s.wait_cv.WaitFor(s.wait_mu, left, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.wait_mu) {
        return s.wake_sequence != start || !s.polling;
      });
      continue;
    }
    s.polling = true;
    // The one poller waits on the socket without the lock; `polling` tells
    // the other waiters (above) to wait on wait_cv meanwhile. Both flags are
    // read and written only with the lock held again below.
    s.wait_mu.Unlock();
    absl::StatusOr<bool> woke = s.PollListener(options_, deadline);
    s.wait_mu.Lock();
    s.polling = false;
    if (!woke.ok() || *woke) ++s.wake_sequence;
    s.wait_cv.NotifyAll();
    if (!woke.ok()) return woke.status();
  }
  return absl::OkStatus();
}

void PostgresOutboxStore::Interrupt() {
  {
    MutexLock lock(state_->wait_mu);
    ++state_->wake_sequence;
    state_->wait_cv.NotifyAll();
  }
  const uint64_t one = 1;
  (void)!write(state_->event_fd, &one, sizeof(one));
}

absl::StatusOr<std::unique_ptr<Lease>> PostgresOutboxStore::TryAcquireLease(std::string_view name) {
  LeaseRequest request;
  request.name = std::string(name);
  return TryAcquireRelayLease(request);
}

absl::StatusOr<std::unique_ptr<Lease>> PostgresOutboxStore::TryAcquireRelayLease(const LeaseRequest& request) {
  if (request.name.empty()) return absl::InvalidArgumentError("TryAcquireLease: empty lease name");
  if (request.shard_count < 1) return absl::InvalidArgumentError("LeaseRequest.shard_count must be at least 1");
  const std::string prefix = StrCat(options_.schema, ".", options_.table, ":");
  const int64_t key = AdvisoryLockKey(prefix + request.name);
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection,
                          Connection::Open(state_->pool.settings(), "acquire lease"));
  if (request.unreachable_timeout < absl::InfiniteDuration()) {
    // Server side: probe an idle client after a third of the time, then six
    // probes over the rest; tcp_user_timeout bounds unacknowledged sends.
    // Best effort (no effect on Unix sockets).
    const int64_t seconds = std::max<int64_t>(3, absl::ToInt64Seconds(request.unreachable_timeout));
    const std::string idle = std::to_string(seconds / 3), interval = std::to_string(std::max<int64_t>(1, seconds / 9)),
                      user_timeout = std::to_string(seconds * 1000);
    const char* params[] = {idle.c_str(), interval.c_str(), user_timeout.c_str()};
    (void)ExecParams(
        connection->get(),
        "SELECT set_config('tcp_keepalives_idle', $1, false), "
        "set_config('tcp_keepalives_interval', $2, false), set_config('tcp_keepalives_count', '6', false), "
        "set_config('tcp_user_timeout', $3, false)",
        params, "set the lease session's keepalives");
  }
  // Layout: every leader of the group holds a shared lock keyed by its
  // shard count. A relay checks for leaders with another count and takes
  // its lease (and then its layout lock) in one transaction serialized by a
  // group-wide transaction lock, so two relays with different counts never
  // both pass the check; standbys hold no layout lock, so a refused relay's
  // attempt never turns away one with the running count.
  const std::string layout_key = std::to_string(AdvisoryLockKey(StrCat(prefix, request.group, ":layout")) & 0x7fffffff);
  const std::string mutex_key = std::to_string(AdvisoryLockKey(StrCat(prefix, request.group, ":layout-mutex")));
  const std::string count = std::to_string(request.shard_count);
  const char* layout[] = {layout_key.c_str(), count.c_str()};
  const bool check_layout = !request.group.empty();
  if (check_layout) {
    // On any error below the connection is closed, which ends the
    // transaction and every lock of the session.
    HERALD_RETURN_IF_ERROR(ExecParams(connection->get(), "BEGIN", {}, "acquire lease").status());
    const char* mutex[] = {mutex_key.c_str()};
    HERALD_RETURN_IF_ERROR(
        ExecParams(connection->get(), "SELECT pg_advisory_xact_lock($1::int8)", mutex, "acquire lease").status());
    HERALD_ASSIGN_OR_RETURN(
        ResultPtr others,
        ExecParams(connection->get(),
                   "SELECT DISTINCT objid::int8 FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
                   "database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND "
                   "classid = $1::int8::oid AND objsubid = 2 AND objid <> $2::int8::oid ORDER BY 1",
                   layout, "check the relay layout"));
    if (PQntuples(others.get()) > 0) {
      std::string counts;
      for (int i = 0; i < PQntuples(others.get()); ++i) {
        counts += StrCat(i == 0 ? "" : ", ", PQgetvalue(others.get(), i, 0));
      }
      return absl::FailedPreconditionError(StrCat(
          "lease \"", request.name, "\": this relay runs with shard_count ", request.shard_count,
          " but a live relay of the same outbox (", options_.schema, ".", options_.table, ", lease group \"",
          request.group, "\") runs with shard_count ", counts,
          ": every relay of one outbox must use the same shard count (else two relays would relay the same keys at "
          "once); this one stands by until the others stop"));
    }
  }
  const std::string key_text = std::to_string(key);
  const char* params[] = {key_text.c_str()};
  HERALD_ASSIGN_OR_RETURN(
      ResultPtr result, ExecParams(connection->get(), "SELECT pg_try_advisory_lock($1::int8)", params, "acquire lease"));
  if (std::string_view(PQgetvalue(result.get(), 0, 0)) != "t") {
    return absl::UnavailableError(StrCat("lease \"", request.name, "\" is held by another session"));
  }
  if (check_layout) {
    // Session-level locks outlive the transaction.
    HERALD_RETURN_IF_ERROR(ExecParams(connection->get(), "SELECT pg_advisory_lock_shared($1::int4, $2::int4)",
                                      layout, "acquire lease")
                               .status());
    HERALD_RETURN_IF_ERROR(ExecParams(connection->get(), "COMMIT", {}, "acquire lease").status());
  }
  return std::make_unique<PostgresLease>(std::move(connection), key, request.name);
}

absl::StatusOr<bool> PostgresOutboxStore::MarkProcessed(herald::Transaction& tx, std::string_view consumer,
                                                        std::string_view event_id) {
  HERALD_ASSIGN_OR_RETURN(Transaction * own, OwnTransaction(tx, this, "inbox mark processed"));
  if (own->store_ != this) {
    return absl::InvalidArgumentError("inbox mark processed: the transaction comes from another store");
  }
  if (HasNul(consumer) || HasNul(event_id)) {
    return absl::InvalidArgumentError("inbox mark processed: consumer and event id cannot hold NUL bytes");
  }
  const std::string c(consumer), id(event_id);
  const std::string now = options_.clock != nullptr ? FormatTimestamp(options_.clock->Now()) : "";
  const char* params[] = {c.c_str(), id.c_str(), options_.clock != nullptr ? now.c_str() : nullptr};
  HERALD_ASSIGN_OR_RETURN(ResultPtr result,
                          own->connection()->Run(state_->sql.inbox_insert, params, "inbox mark processed"));
  return AffectedRows(result.get()) == 1;
}

absl::StatusOr<bool> PostgresOutboxStore::MarkProcessed(PGconn* conn, std::string_view consumer,
                                                        std::string_view event_id) {
  HERALD_RETURN_IF_ERROR(CheckJoinable(conn, "MarkProcessed"));
  if (HasNul(consumer) || HasNul(event_id)) {
    return absl::InvalidArgumentError("inbox mark processed: consumer and event id cannot hold NUL bytes");
  }
  const std::string c(consumer), id(event_id);
  const std::string now = options_.clock != nullptr ? FormatTimestamp(options_.clock->Now()) : "";
  const char* params[] = {c.c_str(), id.c_str(), options_.clock != nullptr ? now.c_str() : nullptr};
  HERALD_ASSIGN_OR_RETURN(ResultPtr result,
                          ExecParams(conn, state_->sql.inbox_insert.sql, params, "inbox mark processed"));
  return AffectedRows(result.get()) == 1;
}

absl::StatusOr<int64_t> PostgresOutboxStore::PurgeProcessed(absl::Time before, int limit) {
  if (limit <= 0) return 0;
  const std::string when = FormatTimestamp(before), count = std::to_string(limit);
  const char* params[] = {when.c_str(), count.c_str()};
  HERALD_ASSIGN_OR_RETURN(ResultPtr result, state_->Run(state_->sql.inbox_purge, params, "purge inbox"));
  return AffectedRows(result.get());
}

}  // namespace herald::postgres
