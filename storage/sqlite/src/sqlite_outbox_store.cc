#include "herald/sqlite/sqlite_outbox_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <utility>

#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/core/uuid.h"
#include "herald/sqlite/sqlite_status.h"
#include "schema.h"
#include "sqlite_handles.h"
#include "store_state.h"
#include "wake_signal.h"

namespace herald::sqlite {
namespace {

using internal::Connection;
using internal::PooledConnection;
using internal::Sql;
using internal::StatementPtr;
using internal::StatementReset;
using internal::StoreState;
using internal::WriterTurn;

void BindText(sqlite3_stmt* stmt, int index, std::string_view text) {
  sqlite3_bind_text(stmt, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
}
void BindTextOrNull(sqlite3_stmt* stmt, int index, std::string_view text) {
  if (text.empty()) {
    sqlite3_bind_null(stmt, index);
  } else {
    BindText(stmt, index, text);
  }
}
std::string ColumnString(sqlite3_stmt* stmt, int column) {
  const void* data = sqlite3_column_blob(stmt, column);
  int size = sqlite3_column_bytes(stmt, column);
  if (data == nullptr || size <= 0) return {};
  return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
}

// Reads a row selected with internal::kRecordColumns.
// A row whose headers break the contract is returned with `malformed` set;
// the relay parks it.
void ReadRecord(sqlite3_stmt* stmt, OutboxRecord& record) {
  record.sequence = sqlite3_column_int64(stmt, 0);
  Envelope& e = record.envelope;
  e.id = ColumnString(stmt, 1);
  e.type = ColumnString(stmt, 2);
  e.topic = ColumnString(stmt, 3);
  e.key = ColumnString(stmt, 4);
  e.payload = ColumnString(stmt, 6);
  e.content_type = ColumnString(stmt, 7);
  e.source = ColumnString(stmt, 8);
  e.schema_version = sqlite3_column_int(stmt, 9);
  e.time = absl::FromUnixMicros(sqlite3_column_int64(stmt, 10));
  record.created_at = absl::FromUnixMicros(sqlite3_column_int64(stmt, 11));
  record.attempts = sqlite3_column_int(stmt, 12);
  record.last_error = ColumnString(stmt, 13);
  // Headers, subject, dataschema and extensions.
  if (absl::Status decoded = DecodeOutboxHeaders(ColumnString(stmt, 5), e); !decoded.ok()) {
    record.malformed = std::string(decoded.message());
  }
}

std::string JsonArray(absl::Span<const int64_t> values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out.push_back(',');
    herald::StrAppend(&out, values[i]);
  }
  out.push_back(']');
  return out;
}

absl::Status ValidateEnvelope(const Envelope& envelope) {
  if (envelope.type.empty()) return absl::InvalidArgumentError("outbox append: the envelope has no type");
  if (envelope.topic.empty()) return absl::InvalidArgumentError("outbox append: the envelope has no topic");
  return CheckOutboxSchemaVersion(envelope.schema_version);
}

// Binds and runs the append statement.
absl::Status RunAppend(sqlite3* db, sqlite3_stmt* stmt, const Envelope& envelope, int64_t now_micros) {
  StatementReset reset(stmt);
  std::string generated_id;
  std::string_view id = envelope.id;
  if (id.empty()) {
    generated_id = NewUuidV7(absl::FromUnixMicros(now_micros));
    id = generated_id;
  }
  // Headers, subject, dataschema and extensions; "" is NULL.
  HERALD_ASSIGN_OR_RETURN(std::string headers, EncodeOutboxHeaders(envelope));
  BindText(stmt, 1, id);
  BindText(stmt, 2, envelope.type);
  BindText(stmt, 3, envelope.topic);
  BindTextOrNull(stmt, 4, envelope.key);
  BindTextOrNull(stmt, 5, headers);
  BindText(stmt, 6, envelope.payload);
  BindText(
      stmt, 7,
      envelope.content_type.empty() ? std::string_view("application/json") : std::string_view(envelope.content_type));
  BindTextOrNull(stmt, 8, envelope.source);
  sqlite3_bind_int(stmt, 9, envelope.schema_version);
  // An envelope without a time (the Unix epoch) happened now.
  sqlite3_bind_int64(stmt, 10, envelope.time == absl::UnixEpoch() ? now_micros : absl::ToUnixMicros(envelope.time));
  sqlite3_bind_int64(stmt, 11, now_micros);
  int rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE) return SqliteErrorToStatus(rc, herald::StrCat("outbox append of event ", id), db);
  return absl::OkStatus();
}

absl::Status NeedOpenTransaction(sqlite3* db, std::string_view what) {
  if (db == nullptr) return absl::InvalidArgumentError(herald::StrCat(what, ": the sqlite3 handle is null"));
  if (sqlite3_get_autocommit(db) != 0) {
    return absl::FailedPreconditionError(
        herald::StrCat(what, " needs an open transaction: call BEGIN (or BEGIN IMMEDIATE) on the handle first"));
  }
  return absl::OkStatus();
}

// Runs one write statement with the writer gate held; returns changes().
template <typename Bind>
absl::StatusOr<int64_t> RunWrite(StoreState* state, Sql id, std::string_view operation, Bind bind) {
  HERALD_ASSIGN_OR_RETURN(Connection * raw, state->Acquire());
  PooledConnection connection(state, raw);
  HERALD_RETURN_IF_ERROR(state->EnterWriter());
  WriterTurn turn(state);
  HERALD_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, connection->Get(id));
  StatementReset reset(stmt);
  bind(stmt);
  int rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE) return SqliteErrorToStatus(rc, operation, connection->db());
  return static_cast<int64_t>(sqlite3_changes(connection->db()));
}

// SqliteOutboxStore::DeletePublished: deletes the unpublished rows of `list`
// (a JSON array of `count` sequences) but the one with the highest seq, which
// is marked published instead, in one transaction.
absl::Status DeleteDelivered(StoreState& state, const std::string& list, int64_t count) {
  HERALD_ASSIGN_OR_RETURN(Connection * raw, state.Acquire());
  PooledConnection connection(&state, raw);  // rolls back if still open
  HERALD_RETURN_IF_ERROR(state.EnterWriter());
  WriterTurn turn(&state);
  HERALD_RETURN_IF_ERROR(connection->Run(Sql::kBegin, "begin to delete published rows"));
  {
    HERALD_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, connection->Get(Sql::kDeletePublished));
    StatementReset reset(stmt);
    BindText(stmt, 1, list);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) return SqliteErrorToStatus(rc, "delete published rows", connection->db());
  }
  // Fewer deleted than named: the newest row may be among them (or some
  // were already published).
  if (sqlite3_changes64(connection->db()) < count) {
    HERALD_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, connection->Get(Sql::kMarkPublished));
    StatementReset reset(stmt);
    sqlite3_bind_int64(stmt, 1, state.NowMicros());
    BindText(stmt, 2, list);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) return SqliteErrorToStatus(rc, "mark the newest row published", connection->db());
  }
  return connection->Run(Sql::kCommit, "commit the deletion of published rows");
}

// Moves the low-water mark up to the first unpublished row.
absl::Status RefreshLowWater(StoreState& state, Connection& connection) {
  HERALD_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, connection.Get(Sql::kLowWater));
  StatementReset reset(stmt);
  sqlite3_bind_int64(stmt, 1, state.low_water());
  int rc = sqlite3_step(stmt);
  if (rc != SQLITE_ROW) return SqliteErrorToStatus(rc, "find the first pending row", connection.db());
  state.RaiseLowWater(sqlite3_column_int64(stmt, 0));
  return absl::OkStatus();
}

// A file descriptor, closed when destroyed.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Whether `fd` is open on the file now at `path`.
bool SameFile(int fd, const std::string& path) {
  struct stat held = {}, named = {};
  return fstat(fd, &held) == 0 && stat(path.c_str(), &named) == 0 && held.st_ino == named.st_ino &&
         held.st_dev == named.st_dev;
}

// The side file whose flock(2) is the lease `name`: next to the database,
// "<db file>-lease-<lease table>-<name>.lock", the name's characters other
// than [A-Za-z0-9_.-] written as %XX.
std::string LeaseLockPath(const StoreState& state, std::string_view name) {
  std::string path = herald::StrCat(state.file, "-lease-", state.options.lease_table, "-");
  for (unsigned char c : name) {
    if (std::isalnum(c) != 0 || c == '_' || c == '-' || c == '.') {
      path.push_back(static_cast<char>(c));
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      path += {'%', kHex[c >> 4], kHex[c & 15]};
    }
  }
  return path + ".lock";
}

// The lease: an exclusive flock(2) on its side file, which the kernel drops
// when the holder's process dies (so a standby takes over at once) and
// never while it lives (so no batch outlives it). The row in lease_table
// names the holder for operators and fences herald versions that knew only
// the row; it is renewed by Check.
class SqliteLease final : public Lease {
 public:
  // `state` must outlive the lease (a Lease must not outlive its store).
  SqliteLease(StoreState& state, std::string name, std::string owner, absl::Time renewed,
              std::unique_ptr<FileDescriptor> lock, std::string lock_path)
      : state_(&state),
        name_(std::move(name)),
        owner_(std::move(owner)),
        renewed_(renewed),
        lock_(std::move(lock)),
        lock_path_(std::move(lock_path)) {}
  ~SqliteLease() override {
    // A release that fails (database busy) is harmless: the next holder
    // overwrites the row.
    (void)RunWrite(state_, Sql::kLeaseRelease, "release a lease", [&](sqlite3_stmt* stmt) {
      BindText(stmt, 1, name_);
      BindText(stmt, 2, owner_);
    });
    // Removed while still locked (TryAcquireLease checks that the file it
    // locked is still the one at the path); the lock goes with the
    // descriptor.
    if (SameFile(lock_->get(), lock_path_)) unlink(lock_path_.c_str());
  }

  absl::Status Check() override {
    // The lock is ours while our descriptor is on the file at lock_path_
    // (someone deleting the file would let another process lock a new one).
    if (!SameFile(lock_->get(), lock_path_)) {
      return absl::AbortedError(herald::StrCat("sqlite: lease \"", name_, "\" was lost: its lock file ", lock_path_,
                                               " was removed or replaced"));
    }
    absl::Time now = state_->options.clock->Now();
    // Renewing on every check would be a write per relay round; renew the
    // row once a third of lease_ttl has passed.
    if (now - renewed_ < state_->options.lease_ttl / 3) return absl::OkStatus();
    absl::StatusOr<int64_t> changed = RunWrite(state_, Sql::kLeaseRenew, "renew a lease", [&](sqlite3_stmt* stmt) {
      BindText(stmt, 1, name_);
      BindText(stmt, 2, owner_);
      sqlite3_bind_int64(stmt, 3, absl::ToUnixMicros(now + state_->options.lease_ttl));
    });
    // A busy database delays the renewal; the file lock is still ours.
    if (!changed.ok()) return absl::OkStatus();
    if (*changed == 0) {
      return absl::AbortedError(herald::StrCat("sqlite: lease \"", name_,
                                               "\" was lost: a relay that does not take the file lock took its row"));
    }
    renewed_ = now;
    return absl::OkStatus();
  }

 private:
  StoreState* state_;
  std::string name_;
  std::string owner_;
  absl::Time renewed_;
  std::unique_ptr<FileDescriptor> lock_;
  std::string lock_path_;
};

}  // namespace

// ---- Transaction ----

Transaction::Transaction(internal::StoreState& state, internal::Connection* connection)
    : state_(&state), connection_(connection) {}

Transaction::~Transaction() { Release(); }

sqlite3* Transaction::db() const { return connection_ != nullptr ? connection_->db() : nullptr; }

void Transaction::Release() {
  if (connection_ == nullptr) return;
  state_->Return(connection_);  // rolls back when still open
  connection_ = nullptr;
  state_->LeaveWriter();
}

absl::Status Transaction::Commit() {
  if (connection_ == nullptr) return absl::FailedPreconditionError("sqlite: the transaction has already ended");
  absl::Status status = connection_->Run(internal::Sql::kCommit, "commit");
  Release();
  if (status.ok() && appended_) internal::NotifyWakeSignals(state_->file);  // every store on the file
  return status;
}

absl::Status Transaction::Rollback() {
  if (connection_ == nullptr) return absl::FailedPreconditionError("sqlite: the transaction has already ended");
  absl::Status status = connection_->Run(internal::Sql::kRollback, "roll back");
  Release();
  return status;
}

// ---- SqliteOutboxStore ----

absl::StatusOr<std::unique_ptr<SqliteOutboxStore>> SqliteOutboxStore::Open(SqliteOptions options) {
  if (options.path.empty()) return absl::InvalidArgumentError("SqliteOptions.path is empty");
  if (options.path == ":memory:" || options.path.rfind("file::memory:", 0) == 0) {
    return absl::InvalidArgumentError(
        "SqliteOptions.path \":memory:\" gives each connection its own empty database, and the store uses several "
        "connections; use a file (a temporary one for tests)");
  }
  HERALD_RETURN_IF_ERROR(CheckSqlIdentifier("SqliteOptions.outbox_table", options.outbox_table));
  HERALD_RETURN_IF_ERROR(CheckSqlIdentifier("SqliteOptions.inbox_table", options.inbox_table));
  HERALD_RETURN_IF_ERROR(CheckSqlIdentifier("SqliteOptions.lease_table", options.lease_table));
  HERALD_RETURN_IF_ERROR(CheckSqlIdentifier("SqliteOptions.migrations_table", options.migrations_table));
  static constexpr std::string_view kSynchronous[] = {"OFF", "NORMAL", "FULL", "EXTRA"};
  if (std::find(std::begin(kSynchronous), std::end(kSynchronous), options.synchronous) == std::end(kSynchronous)) {
    return absl::InvalidArgumentError(herald::StrCat("SqliteOptions.synchronous \"", options.synchronous.substr(0, 20),
                                                     "\" is not one of OFF, NORMAL, FULL, EXTRA"));
  }
  static constexpr std::string_view kSecureDelete[] = {"ON", "FAST", "OFF"};
  if (std::find(std::begin(kSecureDelete), std::end(kSecureDelete), options.secure_delete) == std::end(kSecureDelete)) {
    return absl::InvalidArgumentError(herald::StrCat(
        "SqliteOptions.secure_delete \"", options.secure_delete.substr(0, 20), "\" is not one of ON, FAST, OFF"));
  }
  if (options.busy_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("SqliteOptions.busy_timeout is negative");
  }
  if (options.lease_ttl <= absl::ZeroDuration())
    return absl::InvalidArgumentError("SqliteOptions.lease_ttl must be positive");
  if (options.clock == nullptr) options.clock = &SystemClock();

  auto state = std::make_unique<StoreState>(std::move(options));
  HERALD_ASSIGN_OR_RETURN(Connection * raw, state->Acquire());
  {
    PooledConnection connection(state.get(), raw);
    sqlite3* db = connection->db();
    if (state->options.wal) {
      HERALD_ASSIGN_OR_RETURN(StatementPtr stmt,
                              internal::Prepare(db, "PRAGMA journal_mode = WAL", "set journal_mode=WAL"));
      int rc = sqlite3_step(stmt.get());
      if (rc != SQLITE_ROW) return SqliteErrorToStatus(rc, "set journal_mode=WAL", db);
      std::string mode = ColumnString(stmt.get(), 0);
      if (mode != "wal") {
        return absl::FailedPreconditionError(herald::StrCat(
            "sqlite: journal_mode=WAL is not available for ", state->options.path, " (got ", mode,
            "). Hint: WAL needs shared memory on a local file system; or set SqliteOptions.wal = false"));
      }
    }
    HERALD_RETURN_IF_ERROR(internal::Migrate(db, state->options, state->NowMicros()));
    const char* file = sqlite3_db_filename(db, "main");
    state->file = file != nullptr ? file : state->options.path;
  }
  internal::RegisterWakeSignal(state->file, state->wake);
  return std::unique_ptr<SqliteOutboxStore>(new SqliteOutboxStore(std::move(state)));
}

SqliteOutboxStore::SqliteOutboxStore(std::unique_ptr<internal::StoreState> state)
    : options_(state->options), state_(std::move(state)) {}

SqliteOutboxStore::~SqliteOutboxStore() = default;

absl::StatusOr<std::unique_ptr<Transaction>> SqliteOutboxStore::BeginTransaction() {
  HERALD_ASSIGN_OR_RETURN(Connection * raw, state_->Acquire());
  PooledConnection connection(state_.get(), raw);
  HERALD_RETURN_IF_ERROR(state_->EnterWriter());
  WriterTurn turn(state_.get());
  HERALD_RETURN_IF_ERROR(connection->Run(Sql::kBegin, "begin a transaction"));
  std::unique_ptr<Transaction> tx(new Transaction(*state_, connection.release()));
  turn.Keep();  // the transaction leaves the gate in Release
  return tx;
}

absl::StatusOr<std::unique_ptr<herald::Transaction>> SqliteOutboxStore::Begin() {
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<Transaction> tx, BeginTransaction());
  return std::unique_ptr<herald::Transaction>(std::move(tx));
}

absl::StatusOr<Transaction*> SqliteOutboxStore::OwnTransaction(herald::Transaction& tx) const {
  auto* own = dynamic_cast<Transaction*>(&tx);
  if (own == nullptr || own->state_ != state_.get()) {
    return absl::InvalidArgumentError("sqlite: the transaction does not come from this store's Begin");
  }
  if (own->connection_ == nullptr) return absl::FailedPreconditionError("sqlite: the transaction has already ended");
  return own;
}

absl::Status SqliteOutboxStore::Append(herald::Transaction& tx, const Envelope& envelope) {
  HERALD_ASSIGN_OR_RETURN(Transaction * own, OwnTransaction(tx));
  HERALD_RETURN_IF_ERROR(ValidateEnvelope(envelope));
  HERALD_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, own->connection_->Get(Sql::kAppend));
  HERALD_RETURN_IF_ERROR(RunAppend(own->connection_->db(), stmt, envelope, state_->NowMicros()));
  own->appended_ = true;
  return absl::OkStatus();
}

absl::Status SqliteOutboxStore::Append(sqlite3* db, const Envelope& envelope) {
  HERALD_RETURN_IF_ERROR(NeedOpenTransaction(db, "Append"));
  HERALD_RETURN_IF_ERROR(ValidateEnvelope(envelope));
  HERALD_ASSIGN_OR_RETURN(StatementPtr stmt,
                          internal::Prepare(db, state_->sql[static_cast<int>(Sql::kAppend)],
                                            "prepare the outbox append (is the handle on the store's database file?)"));
  HERALD_RETURN_IF_ERROR(RunAppend(db, stmt.get(), envelope, state_->NowMicros()));
  sqlite3_wal_hook(db, &internal::WakeOnWalCommit, nullptr);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<OutboxRecord>> SqliteOutboxStore::FetchPendingBatch(const PendingBatchOptions& options) {
  if (options.shard_count > 1) {
    return absl::UnimplementedError(
        "sqlite: key shards are not supported (an edge deployment runs one relay); use shard_count 1 and the "
        "leader lease");
  }
  if (options.limit < 1) return absl::InvalidArgumentError("PendingBatchOptions.limit must be at least 1");
  std::vector<OutboxRecord> records;
  {
    HERALD_ASSIGN_OR_RETURN(Connection * raw, state_->Acquire());
    PooledConnection connection(state_.get(), raw);
    HERALD_RETURN_IF_ERROR(RefreshLowWater(*state_, *connection.get()));
    HERALD_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, connection->Get(Sql::kFetchPending));
    StatementReset reset(stmt);
    sqlite3_bind_int64(stmt, 1, state_->NowMicros());
    sqlite3_bind_int(stmt, 2, options.limit);
    sqlite3_bind_int64(stmt, 3, state_->low_water());
    records.reserve(static_cast<size_t>(std::min(options.limit, 1024)));
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      OutboxRecord record;
      ReadRecord(stmt, record);
      records.push_back(std::move(record));
    }
    if (rc != SQLITE_DONE) return SqliteErrorToStatus(rc, "fetch pending rows", connection->db());
  }
  return records;
}

absl::Status SqliteOutboxStore::MarkPublished(absl::Span<const int64_t> sequences) {
  if (sequences.empty()) return absl::OkStatus();
  std::string list = JsonArray(sequences);
  return RunWrite(state_.get(), Sql::kMarkPublished, "mark rows published",
                  [&](sqlite3_stmt* stmt) {
                    sqlite3_bind_int64(stmt, 1, state_->NowMicros());
                    BindText(stmt, 2, list);
                  })
      .status();
}

absl::Status SqliteOutboxStore::DeletePublished(absl::Span<const int64_t> sequences) {
  if (sequences.empty()) return absl::OkStatus();
  return DeleteDelivered(*state_, JsonArray(sequences), static_cast<int64_t>(sequences.size()));
}

absl::Status SqliteOutboxStore::MarkFailed(int64_t sequence, std::string_view error, absl::Time retry_at, bool park) {
  HERALD_ASSIGN_OR_RETURN(int64_t changed,
                          RunWrite(state_.get(), Sql::kMarkFailed, "mark a row failed", [&](sqlite3_stmt* stmt) {
                            sqlite3_bind_int64(stmt, 1, sequence);
                            BindText(stmt, 2, error);
                            sqlite3_bind_int64(stmt, 3, absl::ToUnixMicros(retry_at));
                            sqlite3_bind_int(stmt, 4, park ? 1 : 0);
                            sqlite3_bind_int64(stmt, 5, state_->NowMicros());
                          }));
  if (changed == 0) {
    return absl::NotFoundError(herald::StrCat("sqlite: no unpublished outbox row has sequence ", sequence));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> SqliteOutboxStore::RetryParked(absl::Span<const int64_t> sequences) {
  std::string list = JsonArray(sequences);
  HERALD_ASSIGN_OR_RETURN(int64_t changed,
                          RunWrite(state_.get(), Sql::kRetryParked, "retry parked rows", [&](sqlite3_stmt* stmt) {
                            sqlite3_bind_int64(stmt, 1, state_->NowMicros());
                            if (sequences.empty()) {
                              sqlite3_bind_null(stmt, 2);
                            } else {
                              BindText(stmt, 2, list);
                            }
                          }));
  if (changed > 0) state_->wake->Notify();
  return changed;
}

absl::StatusOr<int64_t> SqliteOutboxStore::SkipParked(absl::Span<const int64_t> sequences, std::string_view reason) {
  if (sequences.empty()) return absl::InvalidArgumentError("sqlite: skip: name the parked rows to skip");
  if (reason.empty()) return absl::InvalidArgumentError("sqlite: skip: say why the rows are skipped");
  std::string list = JsonArray(sequences);
  const int64_t now = state_->NowMicros();
  std::string note = OutboxSkipNote(absl::FromUnixMicros(now), reason, "");
  HERALD_ASSIGN_OR_RETURN(int64_t changed,
                          RunWrite(state_.get(), Sql::kSkipParked, "skip parked rows", [&](sqlite3_stmt* stmt) {
                            sqlite3_bind_int64(stmt, 1, now);
                            BindText(stmt, 2, note);
                            BindText(stmt, 3, list);
                          }));
  if (changed > 0) state_->wake->Notify();  // the rows behind them may go now
  return changed;
}

absl::StatusOr<int64_t> SqliteOutboxStore::AssignKey(absl::Span<const int64_t> sequences, std::string_view key) {
  if (key.empty()) return absl::InvalidArgumentError("sqlite: assign a key: the key is empty");
  if (sequences.empty()) return int64_t{0};
  std::string list = JsonArray(sequences);
  return RunWrite(state_.get(), Sql::kAssignKey, "assign a key to outbox rows", [&](sqlite3_stmt* stmt) {
    BindText(stmt, 1, list);
    BindText(stmt, 2, key);
  });
}

absl::StatusOr<std::vector<std::string>> SqliteOutboxStore::KeysWithEarlierRows(absl::Span<const KeyPosition> positions,
                                                                                absl::Span<const int64_t> exclude) {
  std::vector<std::string> keys;
  if (positions.empty()) return keys;
  const std::string list = EncodeKeyPositions(positions), excluded = JsonArray(exclude);
  HERALD_ASSIGN_OR_RETURN(Connection * raw, state_->Acquire());
  PooledConnection connection(state_.get(), raw);
  HERALD_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, connection->Get(Sql::kKeysWithEarlier));
  StatementReset reset(stmt);
  BindText(stmt, 1, list);
  BindText(stmt, 2, excluded);
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) keys.push_back(ColumnString(stmt, 0));
  if (rc != SQLITE_DONE)
    return SqliteErrorToStatus(rc, "look for earlier outbox rows of derived keys", connection->db());
  return keys;
}

absl::StatusOr<int64_t> SqliteOutboxStore::PurgePublished(absl::Time before, int limit) {
  if (limit < 1) return int64_t{0};
  return RunWrite(state_.get(), Sql::kPurgePublished, "purge published rows", [&](sqlite3_stmt* stmt) {
    sqlite3_bind_int64(stmt, 1, absl::ToUnixMicros(before));
    sqlite3_bind_int(stmt, 2, limit);
  });
}

absl::StatusOr<OutboxStats> SqliteOutboxStore::Stats() {
  HERALD_ASSIGN_OR_RETURN(Connection * raw, state_->Acquire());
  PooledConnection connection(state_.get(), raw);
  HERALD_RETURN_IF_ERROR(RefreshLowWater(*state_, *connection.get()));
  HERALD_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, connection->Get(Sql::kStats));
  StatementReset reset(stmt);
  sqlite3_bind_int64(stmt, 1, state_->low_water());
  int rc = sqlite3_step(stmt);
  if (rc != SQLITE_ROW) return SqliteErrorToStatus(rc, "read outbox stats", connection->db());
  OutboxStats stats;
  stats.pending = sqlite3_column_int64(stmt, 0);
  stats.parked = sqlite3_column_int64(stmt, 1);
  if (sqlite3_column_type(stmt, 2) != SQLITE_NULL) {
    absl::Duration age = state_->options.clock->Now() - absl::FromUnixMicros(sqlite3_column_int64(stmt, 2));
    stats.oldest_pending_age = std::max(age, absl::ZeroDuration());
  }
  return stats;
}

absl::StatusOr<std::vector<OutboxRecord>> SqliteOutboxStore::ListParked(int limit) {
  std::vector<OutboxRecord> records;
  if (limit < 1) return records;
  HERALD_ASSIGN_OR_RETURN(Connection * raw, state_->Acquire());
  PooledConnection connection(state_.get(), raw);
  HERALD_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, connection->Get(Sql::kListParked));
  StatementReset reset(stmt);
  sqlite3_bind_int(stmt, 1, limit);
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    OutboxRecord record;
    ReadRecord(stmt, record);  // a malformed row is listed as far as it can be read
    records.push_back(std::move(record));
  }
  if (rc != SQLITE_DONE) return SqliteErrorToStatus(rc, "list parked rows", connection->db());
  return records;
}

absl::Status SqliteOutboxStore::WaitForWork(absl::Duration timeout) {
  state_->wake->Wait(timeout);
  return absl::OkStatus();
}

void SqliteOutboxStore::Interrupt() { state_->wake->Notify(); }

absl::StatusOr<std::unique_ptr<Lease>> SqliteOutboxStore::TryAcquireLease(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("sqlite: TryAcquireLease: empty lease name");
  std::string lock_path = LeaseLockPath(*state_, name);
  auto lock = std::make_unique<FileDescriptor>(open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (lock->get() < 0) {
    return absl::UnavailableError(
        herald::StrCat("sqlite: cannot open the lease lock file ", lock_path, ": ", std::strerror(errno)));
  }
  if (flock(lock->get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return absl::UnavailableError(herald::StrCat(
          "sqlite: lease \"", name, "\" is held by a live relay process (file lock on ", lock_path, ")"));
    }
    return absl::UnavailableError(herald::StrCat("sqlite: cannot lock ", lock_path, ": ", std::strerror(errno)));
  }
  if (!SameFile(lock->get(), lock_path)) {
    // The previous holder released it and removed the file between our
    // open and flock: another relay may be locking a new file now.
    return absl::UnavailableError(herald::StrCat("sqlite: lease \"", name, "\" just changed hands; try again"));
  }
  // The file lock is ours, so any row left in lease_table is a dead
  // holder's: take it over at once.
  absl::Time now = options_.clock->Now();
  std::string owner = herald::StrCat(NewUuidV7(now), " pid ", static_cast<int64_t>(getpid()));
  HERALD_ASSIGN_OR_RETURN(int64_t changed,
                          RunWrite(state_.get(), Sql::kLeaseAcquire, "acquire a lease", [&](sqlite3_stmt* stmt) {
                            BindText(stmt, 1, name);
                            BindText(stmt, 2, owner);
                            sqlite3_bind_int64(stmt, 3, absl::ToUnixMicros(now + options_.lease_ttl));
                          }));
  if (changed == 0) {
    return absl::UnavailableError(herald::StrCat("sqlite: lease \"", name, "\" is held by another relay"));
  }
  return std::unique_ptr<Lease>(
      new SqliteLease(*state_, std::string(name), std::move(owner), now, std::move(lock), std::move(lock_path)));
}

absl::StatusOr<std::unique_ptr<Lease>> SqliteOutboxStore::TryAcquireRelayLease(const LeaseRequest& request) {
  if (request.shard_count > 1) {
    return absl::UnimplementedError(herald::StrCat(
        "sqlite: key shards are not supported (an edge deployment runs one relay); this relay asked for ",
        request.shard_count, " shards: use shard_count 1 and the leader lease"));
  }
  return TryAcquireLease(request.name);
}

// ---- Inbox ----

namespace {

absl::StatusOr<bool> RunInboxInsert(sqlite3* db, sqlite3_stmt* stmt, std::string_view consumer,
                                    std::string_view event_id, int64_t now_micros) {
  if (consumer.empty() || event_id.empty()) {
    return absl::InvalidArgumentError("inbox: consumer and event id must not be empty");
  }
  StatementReset reset(stmt);
  BindText(stmt, 1, consumer);
  BindText(stmt, 2, event_id);
  sqlite3_bind_int64(stmt, 3, now_micros);
  int rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE) return SqliteErrorToStatus(rc, "inbox mark processed", db);
  return sqlite3_changes(db) == 1;
}

}  // namespace

absl::StatusOr<bool> SqliteOutboxStore::MarkProcessed(herald::Transaction& tx, std::string_view consumer,
                                                      std::string_view event_id) {
  HERALD_ASSIGN_OR_RETURN(Transaction * own, OwnTransaction(tx));
  HERALD_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, own->connection_->Get(Sql::kInboxInsert));
  return RunInboxInsert(own->connection_->db(), stmt, consumer, event_id, state_->NowMicros());
}

absl::StatusOr<bool> SqliteOutboxStore::MarkProcessed(sqlite3* db, std::string_view consumer,
                                                      std::string_view event_id) {
  HERALD_RETURN_IF_ERROR(NeedOpenTransaction(db, "MarkProcessed"));
  HERALD_ASSIGN_OR_RETURN(StatementPtr stmt, internal::Prepare(db, state_->sql[static_cast<int>(Sql::kInboxInsert)],
                                                               "prepare the inbox insert"));
  return RunInboxInsert(db, stmt.get(), consumer, event_id, state_->NowMicros());
}

absl::StatusOr<int64_t> SqliteOutboxStore::PurgeProcessed(absl::Time before, int limit) {
  if (limit < 1) return int64_t{0};
  return RunWrite(state_.get(), Sql::kInboxPurge, "purge the inbox", [&](sqlite3_stmt* stmt) {
    sqlite3_bind_int64(stmt, 1, absl::ToUnixMicros(before));
    sqlite3_bind_int(stmt, 2, limit);
  });
}

}  // namespace herald::sqlite
