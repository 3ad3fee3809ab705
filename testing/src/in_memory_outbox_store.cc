#include "herald/testing/in_memory_outbox_store.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "herald/core/mutex.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/core/uuid.h"

namespace herald::testing {

int ShardOf(std::string_view key, int shard_count) {
  if (shard_count <= 1) return 0;
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : key) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return static_cast<int>(hash % static_cast<uint64_t>(shard_count));
}

struct InMemoryOutboxStore::State {
  explicit State(const Clock& c) : clock(c) {}

  const Clock& clock;
  Mutex mu;
  CondVar work;
  std::map<int64_t, OutboxRow> rows ABSL_GUARDED_BY(mu);
  absl::flat_hash_set<std::string> ids ABSL_GUARDED_BY(mu);
  int64_t next_sequence ABSL_GUARDED_BY(mu) = 1;
  bool work_pending ABSL_GUARDED_BY(mu) = false;
  bool interrupt_pending ABSL_GUARDED_BY(mu) = false;
  uint64_t interrupts ABSL_GUARDED_BY(mu) = 0;
  // (consumer, event id) -> when recorded.
  std::map<std::pair<std::string, std::string>, absl::Time> inbox ABSL_GUARDED_BY(mu);
  // lease name -> holder token.
  std::map<std::string, uint64_t, std::less<>> leases ABSL_GUARDED_BY(mu);
  uint64_t next_lease_token ABSL_GUARDED_BY(mu) = 1;
  int fail_fetches ABSL_GUARDED_BY(mu) = 0;
  absl::Status fail_fetches_status ABSL_GUARDED_BY(mu);
  int fail_marks ABSL_GUARDED_BY(mu) = 0;
  absl::Status fail_marks_status ABSL_GUARDED_BY(mu);
  int fail_commits ABSL_GUARDED_BY(mu) = 0;
  absl::Status fail_commits_status ABSL_GUARDED_BY(mu);

  // Consumes one injected failure of a kind, if any.
  static absl::Status TakeFailure(int& count, const absl::Status& status) {
    if (count <= 0) return absl::OkStatus();
    --count;
    return status;
  }
};

namespace {

using State = InMemoryOutboxStore::State;

class InMemoryTransaction final : public Transaction {
 public:
  explicit InMemoryTransaction(std::shared_ptr<State> state) : state_(std::move(state)) {}
  ~InMemoryTransaction() override {
    if (open_) (void)Rollback();
  }

  absl::Status Commit() override {
    if (!open_) return absl::FailedPreconditionError("transaction is already committed or rolled back");
    open_ = false;
    std::vector<Envelope> appends = std::move(appends_);
    std::vector<std::pair<std::string, std::string>> marks = std::move(marks_);
    State& s = *state_;
    MutexLock lock(s.mu);
    if (absl::Status failed = State::TakeFailure(s.fail_commits, s.fail_commits_status); !failed.ok()) {
      return failed;
    }
    for (const Envelope& e : appends) {
      if (s.ids.contains(e.id)) {
        return absl::AlreadyExistsError(
            herald::StrCat("commit rolled back: event id ", e.id, " is already in the outbox"));
      }
    }
    for (const auto& mark : marks) {
      if (s.inbox.contains(mark)) {
        return absl::AbortedError(herald::StrCat("commit rolled back: consumer \"", mark.first,
                                                 "\" already recorded event ", mark.second,
                                                 " in a concurrent transaction; retry the transaction"));
      }
    }
    absl::Time now = s.clock.Now();
    for (Envelope& e : appends) {
      OutboxRow row;
      row.record.sequence = s.next_sequence++;
      row.record.created_at = now;
      row.available_at = now;
      s.ids.insert(e.id);
      row.record.envelope = std::move(e);
      s.rows.emplace(row.record.sequence, std::move(row));
    }
    for (auto& mark : marks) s.inbox.emplace(std::move(mark), now);
    if (!appends.empty()) {
      s.work_pending = true;
      s.work.NotifyAll();
    }
    return absl::OkStatus();
  }

  absl::Status Rollback() override {
    if (!open_) return absl::FailedPreconditionError("transaction is already committed or rolled back");
    open_ = false;
    appends_.clear();
    marks_.clear();
    return absl::OkStatus();
  }

  const State* state() const { return state_.get(); }
  bool open() const { return open_; }
  std::vector<Envelope>& appends() { return appends_; }
  std::vector<std::pair<std::string, std::string>>& marks() { return marks_; }

 private:
  std::shared_ptr<State> state_;
  bool open_ = true;
  std::vector<Envelope> appends_;
  std::vector<std::pair<std::string, std::string>> marks_;
};

class InMemoryLease final : public Lease {
 public:
  InMemoryLease(std::shared_ptr<State> state, std::string name, uint64_t token)
      : state_(std::move(state)), name_(std::move(name)), token_(token) {}
  ~InMemoryLease() override {
    MutexLock lock(state_->mu);
    auto it = state_->leases.find(name_);
    if (it != state_->leases.end() && it->second == token_) state_->leases.erase(it);
  }
  absl::Status Check() override {
    MutexLock lock(state_->mu);
    auto it = state_->leases.find(name_);
    if (it == state_->leases.end() || it->second != token_) {
      return absl::AbortedError(herald::StrCat("lease \"", name_, "\" was lost"));
    }
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<State> state_;
  std::string name_;
  uint64_t token_;
};

// The transaction `tx` as ours, or the error for a foreign or closed one.
absl::StatusOr<InMemoryTransaction*> OwnTransaction(const State* state, Transaction& tx) {
  auto* own = dynamic_cast<InMemoryTransaction*>(&tx);
  if (own == nullptr || own->state() != state) {
    return absl::InvalidArgumentError("transaction does not come from this InMemoryOutboxStore's Begin()");
  }
  if (!own->open()) return absl::FailedPreconditionError("transaction is already committed or rolled back");
  return own;
}

}  // namespace

InMemoryOutboxStore::InMemoryOutboxStore(const Clock& clock) : state_(std::make_shared<State>(clock)) {}

InMemoryOutboxStore::~InMemoryOutboxStore() { Interrupt(); }

absl::StatusOr<std::unique_ptr<Transaction>> InMemoryOutboxStore::Begin() {
  return std::unique_ptr<Transaction>(std::make_unique<InMemoryTransaction>(state_));
}

absl::Status InMemoryOutboxStore::Append(Transaction& tx, const Envelope& envelope) {
  absl::StatusOr<InMemoryTransaction*> own = OwnTransaction(state_.get(), tx);
  if (!own.ok()) return own.status();
  if (envelope.type.empty()) return absl::InvalidArgumentError("outbox Append: event type is empty");
  if (envelope.topic.empty()) return absl::InvalidArgumentError("outbox Append: topic is empty");
  HERALD_RETURN_IF_ERROR(CheckOutboxSchemaVersion(envelope.schema_version));
  // Through the headers column's codec, as the SQL stores write and read
  // the row: the same refusals, and the same envelope back.
  HERALD_ASSIGN_OR_RETURN(std::string headers_column, EncodeOutboxHeaders(envelope));
  Envelope row = envelope;
  HERALD_RETURN_IF_ERROR(DecodeOutboxHeaders(headers_column, row));
  if (row.id.empty()) row.id = NewUuidV7(state_->clock.Now());
  for (const Envelope& e : (*own)->appends()) {
    if (e.id == row.id) {
      return absl::AlreadyExistsError(herald::StrCat("outbox Append: event id ", row.id, " appended twice"));
    }
  }
  {
    MutexLock lock(state_->mu);
    if (state_->ids.contains(row.id)) {
      return absl::AlreadyExistsError(herald::StrCat("outbox Append: event id ", row.id, " is already in the outbox"));
    }
  }
  (*own)->appends().push_back(std::move(row));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<OutboxRecord>> InMemoryOutboxStore::FetchPendingBatch(const PendingBatchOptions& options) {
  if (options.limit < 1) return absl::InvalidArgumentError("FetchPendingBatch: limit must be at least 1");
  if (options.shard_count < 1 || options.shard < 0 || options.shard >= options.shard_count) {
    return absl::InvalidArgumentError(
        herald::StrCat("FetchPendingBatch: shard ", options.shard, " is not in [0, ", options.shard_count, ")"));
  }
  State& s = *state_;
  MutexLock lock(s.mu);
  HERALD_RETURN_IF_ERROR(State::TakeFailure(s.fail_fetches, s.fail_fetches_status));
  s.work_pending = false;
  absl::Time now = s.clock.Now();
  std::vector<OutboxRecord> batch;
  // Keys with an earlier unpublished row that is not in the batch.
  absl::flat_hash_set<std::string> blocked;
  for (const auto& [sequence, row] : s.rows) {
    if (row.published) continue;
    const std::string& key = row.record.envelope.key;
    if (ShardOf(key, options.shard_count) != options.shard) continue;
    if (static_cast<int>(batch.size()) >= options.limit) break;
    bool ready = !row.parked && row.available_at <= now;
    if (!key.empty() && blocked.contains(key)) continue;
    if (!ready) {
      if (!key.empty()) blocked.insert(key);
      continue;
    }
    batch.push_back(row.record);
  }
  return batch;
}

absl::Status InMemoryOutboxStore::MarkPublished(absl::Span<const int64_t> sequences) {
  State& s = *state_;
  MutexLock lock(s.mu);
  HERALD_RETURN_IF_ERROR(State::TakeFailure(s.fail_marks, s.fail_marks_status));
  absl::Time now = s.clock.Now();
  for (int64_t sequence : sequences) {
    auto it = s.rows.find(sequence);
    if (it == s.rows.end() || it->second.published) continue;
    it->second.published = true;
    it->second.parked = false;
    it->second.published_at = now;
  }
  return absl::OkStatus();
}

absl::Status InMemoryOutboxStore::MarkFailed(int64_t sequence, std::string_view error, absl::Time retry_at,
                                             bool park) {
  State& s = *state_;
  MutexLock lock(s.mu);
  HERALD_RETURN_IF_ERROR(State::TakeFailure(s.fail_marks, s.fail_marks_status));
  auto it = s.rows.find(sequence);
  if (it == s.rows.end()) {
    return absl::NotFoundError(herald::StrCat("MarkFailed: no outbox row with sequence ", sequence));
  }
  OutboxRow& row = it->second;
  ++row.record.attempts;
  row.record.last_error = std::string(error);
  row.available_at = retry_at;
  row.parked = park;
  return absl::OkStatus();
}

absl::StatusOr<int64_t> InMemoryOutboxStore::RetryParked(absl::Span<const int64_t> sequences) {
  State& s = *state_;
  MutexLock lock(s.mu);
  absl::Time now = s.clock.Now();
  int64_t count = 0;
  auto retry = [&](OutboxRow& row) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
    if (!row.parked || row.published) return;
    row.parked = false;
    row.record.attempts = 0;
    row.available_at = now;
    ++count;
  };
  if (sequences.empty()) {
    for (auto& [sequence, row] : s.rows) retry(row);
  } else {
    for (int64_t sequence : sequences) {
      if (auto it = s.rows.find(sequence); it != s.rows.end()) retry(it->second);
    }
  }
  if (count > 0) {
    s.work_pending = true;
    s.work.NotifyAll();
  }
  return count;
}

absl::StatusOr<int64_t> InMemoryOutboxStore::SkipParked(absl::Span<const int64_t> sequences, std::string_view reason) {
  if (sequences.empty()) return absl::InvalidArgumentError("SkipParked: name the parked rows to skip");
  if (reason.empty()) return absl::InvalidArgumentError("SkipParked: say why the rows are skipped");
  State& s = *state_;
  MutexLock lock(s.mu);
  absl::Time now = s.clock.Now();
  int64_t count = 0;
  for (int64_t sequence : sequences) {
    auto it = s.rows.find(sequence);
    if (it == s.rows.end()) continue;
    OutboxRow& row = it->second;
    if (!row.parked || row.published) continue;
    row.published = true;
    row.skipped = true;
    row.published_at = now;
    row.record.last_error = OutboxSkipNote(now, reason, row.record.last_error);
    ++count;
  }
  if (count > 0) {
    s.work_pending = true;
    s.work.NotifyAll();
  }
  return count;
}

absl::StatusOr<int64_t> InMemoryOutboxStore::AssignKey(absl::Span<const int64_t> sequences, std::string_view key) {
  if (key.empty()) return absl::InvalidArgumentError("AssignKey: the key is empty");
  State& s = *state_;
  MutexLock lock(s.mu);
  int64_t count = 0;
  for (int64_t sequence : sequences) {
    auto it = s.rows.find(sequence);
    if (it == s.rows.end() || it->second.published || !it->second.record.envelope.key.empty()) continue;
    it->second.record.envelope.key = std::string(key);
    ++count;
  }
  return count;
}

absl::StatusOr<std::vector<std::string>> InMemoryOutboxStore::KeysWithEarlierRows(
    absl::Span<const KeyPosition> positions, absl::Span<const int64_t> exclude) {
  const absl::flat_hash_set<int64_t> excluded(exclude.begin(), exclude.end());
  absl::flat_hash_set<std::string> found;
  State& s = *state_;
  MutexLock lock(s.mu);
  for (const KeyPosition& position : positions) {
    for (auto it = s.rows.begin(); it != s.rows.end() && it->first < position.sequence; ++it) {
      const OutboxRow& row = it->second;
      if (!row.published && row.record.envelope.key == position.key && !excluded.contains(it->first)) {
        found.insert(position.key);
        break;
      }
    }
  }
  return std::vector<std::string>(found.begin(), found.end());
}

absl::StatusOr<int64_t> InMemoryOutboxStore::PurgePublished(absl::Time before, int limit) {
  if (limit < 1) return absl::InvalidArgumentError("PurgePublished: limit must be at least 1");
  State& s = *state_;
  MutexLock lock(s.mu);
  std::vector<std::pair<absl::Time, int64_t>> candidates;
  for (const auto& [sequence, row] : s.rows) {
    if (row.published && *row.published_at < before) candidates.emplace_back(*row.published_at, sequence);
  }
  std::sort(candidates.begin(), candidates.end());
  if (static_cast<int>(candidates.size()) > limit) candidates.resize(limit);
  for (const auto& [at, sequence] : candidates) {
    auto it = s.rows.find(sequence);
    s.ids.erase(it->second.record.envelope.id);
    s.rows.erase(it);
  }
  return static_cast<int64_t>(candidates.size());
}

absl::StatusOr<OutboxStats> InMemoryOutboxStore::Stats() {
  State& s = *state_;
  MutexLock lock(s.mu);
  OutboxStats stats;
  std::optional<absl::Time> oldest;
  for (const auto& [sequence, row] : s.rows) {
    if (row.published) continue;
    if (row.parked) {
      ++stats.parked;
      continue;
    }
    ++stats.pending;
    if (!oldest.has_value() || row.record.created_at < *oldest) oldest = row.record.created_at;
  }
  if (oldest.has_value()) stats.oldest_pending_age = std::max(absl::ZeroDuration(), s.clock.Now() - *oldest);
  return stats;
}

absl::StatusOr<std::vector<OutboxRecord>> InMemoryOutboxStore::ListParked(int limit) {
  if (limit < 1) return absl::InvalidArgumentError("ListParked: limit must be at least 1");
  State& s = *state_;
  MutexLock lock(s.mu);
  std::vector<OutboxRecord> out;
  for (const auto& [sequence, row] : s.rows) {
    if (static_cast<int>(out.size()) >= limit) break;
    if (row.parked && !row.published) out.push_back(row.record);
  }
  return out;
}

absl::Status InMemoryOutboxStore::WaitForWork(absl::Duration timeout) {
  State& s = *state_;
  MutexLock lock(s.mu);
  uint64_t interrupts = s.interrupts;
  s.work.WaitFor(s.mu, timeout, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
    return s.work_pending || s.interrupt_pending || s.interrupts != interrupts;
  });
  s.interrupt_pending = false;
  return absl::OkStatus();
}

void InMemoryOutboxStore::Interrupt() {
  State& s = *state_;
  MutexLock lock(s.mu);
  ++s.interrupts;
  s.interrupt_pending = true;
  s.work.NotifyAll();
}

absl::StatusOr<std::unique_ptr<Lease>> InMemoryOutboxStore::TryAcquireLease(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("TryAcquireLease: empty lease name");
  State& s = *state_;
  MutexLock lock(s.mu);
  if (s.leases.find(name) != s.leases.end()) {
    return absl::UnavailableError(herald::StrCat("lease \"", name, "\" is held by another relay"));
  }
  uint64_t token = s.next_lease_token++;
  s.leases.emplace(std::string(name), token);
  return std::unique_ptr<Lease>(std::make_unique<InMemoryLease>(state_, std::string(name), token));
}

void InMemoryOutboxStore::RevokeLease(std::string_view name) {
  MutexLock lock(state_->mu);
  if (auto it = state_->leases.find(name); it != state_->leases.end()) state_->leases.erase(it);
}

absl::StatusOr<bool> InMemoryOutboxStore::MarkProcessed(Transaction& tx, std::string_view consumer,
                                                        std::string_view event_id) {
  absl::StatusOr<InMemoryTransaction*> own = OwnTransaction(state_.get(), tx);
  if (!own.ok()) return own.status();
  if (consumer.empty()) return absl::InvalidArgumentError("MarkProcessed: consumer is empty");
  if (event_id.empty()) return absl::InvalidArgumentError("MarkProcessed: event id is empty");
  std::pair<std::string, std::string> entry(consumer, event_id);
  for (const auto& mark : (*own)->marks()) {
    if (mark == entry) return false;
  }
  {
    MutexLock lock(state_->mu);
    if (state_->inbox.contains(entry)) return false;
  }
  (*own)->marks().push_back(std::move(entry));
  return true;
}

absl::StatusOr<int64_t> InMemoryOutboxStore::PurgeProcessed(absl::Time before, int limit) {
  if (limit < 1) return absl::InvalidArgumentError("Inbox PurgeProcessed: limit must be at least 1");
  State& s = *state_;
  MutexLock lock(s.mu);
  std::vector<std::pair<absl::Time, std::pair<std::string, std::string>>> candidates;
  for (const auto& [entry, at] : s.inbox) {
    if (at < before) candidates.emplace_back(at, entry);
  }
  std::sort(candidates.begin(), candidates.end());
  if (static_cast<int>(candidates.size()) > limit) candidates.resize(limit);
  for (const auto& [at, entry] : candidates) s.inbox.erase(entry);
  return static_cast<int64_t>(candidates.size());
}

std::vector<OutboxRow> InMemoryOutboxStore::Rows() const {
  MutexLock lock(state_->mu);
  std::vector<OutboxRow> out;
  for (const auto& [sequence, row] : state_->rows) out.push_back(row);
  return out;
}

std::vector<Envelope> InMemoryOutboxStore::Pending() const {
  MutexLock lock(state_->mu);
  std::vector<Envelope> out;
  for (const auto& [sequence, row] : state_->rows) {
    if (!row.published) out.push_back(row.record.envelope);
  }
  return out;
}

std::vector<Envelope> InMemoryOutboxStore::Published() const {
  MutexLock lock(state_->mu);
  std::vector<Envelope> out;
  for (const auto& [sequence, row] : state_->rows) {
    if (row.published) out.push_back(row.record.envelope);
  }
  return out;
}

bool InMemoryOutboxStore::WasProcessed(std::string_view consumer, std::string_view event_id) const {
  MutexLock lock(state_->mu);
  return state_->inbox.contains(std::pair<std::string, std::string>(consumer, event_id));
}

void InMemoryOutboxStore::FailNextFetches(int n, absl::Status status) {
  MutexLock lock(state_->mu);
  state_->fail_fetches = n;
  state_->fail_fetches_status = std::move(status);
}

void InMemoryOutboxStore::FailNextMarks(int n, absl::Status status) {
  MutexLock lock(state_->mu);
  state_->fail_marks = n;
  state_->fail_marks_status = std::move(status);
}

void InMemoryOutboxStore::FailNextCommits(int n, absl::Status status) {
  MutexLock lock(state_->mu);
  state_->fail_commits = n;
  state_->fail_commits_status = std::move(status);
}

}  // namespace herald::testing
