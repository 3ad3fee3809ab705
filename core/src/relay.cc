#include "herald/core/relay.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "herald/core/json.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/core/wire.h"
#include "rapidjson/pointer.h"

namespace herald {
namespace {

// The delivery reports of one batch, handed from the Bus callbacks to the
// relay thread; shared with the callbacks, which may outlive a timed-out
// wait.
struct BatchOutcome {
  Mutex mu;
  CondVar cv;
  // (row index, outcome) of the reports the relay thread has not taken yet.
  std::vector<std::pair<size_t, absl::Status>> reports ABSL_GUARDED_BY(mu);
};

}  // namespace

OutboxRelay::OutboxRelay(OutboxStore& store, Bus& bus, RelayOptions options)
    : store_(store), bus_(bus), options_(std::move(options)) {
  if (options_.clock == nullptr) options_.clock = &SystemClock();
}

OutboxRelay::~OutboxRelay() { Stop(); }

std::string OutboxRelay::LeaseName() const {
  if (options_.shard_count <= 1) return options_.lease_name;
  return herald::StrCat(options_.lease_name, "-shard-", options_.shard, "-of-", options_.shard_count);
}

absl::Status OutboxRelay::Start() {
  if (options_.batch_size < 1) return absl::InvalidArgumentError("RelayOptions.batch_size must be at least 1");
  if (options_.shard_count < 1 || options_.shard < 0 || options_.shard >= options_.shard_count) {
    return absl::InvalidArgumentError(herald::StrCat("RelayOptions: shard ", options_.shard, " is not in [0, ",
                                                     options_.shard_count, ")"));
  }
  if (options_.retry.max_attempts < 1) {
    return absl::InvalidArgumentError("RelayOptions.retry.max_attempts must be at least 1");
  }
  HERALD_RETURN_IF_ERROR(CheckKeyFrom());
  MutexLock lifecycle(lifecycle_mu_);
  if (thread_.joinable()) return absl::OkStatus();
  stopping_.store(false);
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void OutboxRelay::Stop() {
  MutexLock lifecycle(lifecycle_mu_);
  if (!thread_.joinable()) return;
  stopping_.store(true);
  {
    MutexLock lock(mu_);
    wake_.NotifyAll();
  }
  store_.Interrupt();
  thread_.join();
}

void OutboxRelay::SleepInterruptibly(absl::Duration d) {
  MutexLock lock(mu_);
  wake_.WaitFor(mu_, d, [this] { return stopping_.load(); });
}

void OutboxRelay::RecordError(const absl::Status& status) {
  MutexLock lock(mu_);
  stats_.last_error = status;
}

void OutboxRelay::Loop() {
  std::unique_ptr<Lease> lease;
  while (!stopping_.load()) {
    if (lease == nullptr) {
      absl::StatusOr<std::unique_ptr<Lease>> acquired = store_.TryAcquireLease(LeaseName());
      if (!acquired.ok()) {
        if (acquired.status().code() != absl::StatusCode::kUnavailable) RecordError(acquired.status());
        // Another relay leads (or the store is down): stand by.
        SleepInterruptibly(options_.poll_interval);
        continue;
      }
      lease = *std::move(acquired);
      MutexLock lock(mu_);
      stats_.leader = true;
    } else if (absl::Status held = lease->Check(); !held.ok()) {
      RecordError(held);
      lease.reset();
      MutexLock lock(mu_);
      stats_.leader = false;
      continue;
    }

    absl::StatusOr<int> published = RelayBatch();
    if (!published.ok()) {
      RecordError(published.status());
      SleepInterruptibly(options_.error_backoff);
      continue;
    }
    if (absl::Status purged = Purge(); !purged.ok()) RecordError(purged);
    if (*published > 0) continue;  // more may be waiting
    if (options_.wake_up) {
      if (absl::Status waited = store_.WaitForWork(options_.poll_interval); !waited.ok()) {
        RecordError(waited);
        SleepInterruptibly(options_.error_backoff);
      }
    } else {
      SleepInterruptibly(options_.poll_interval);
    }
  }
  MutexLock lock(mu_);
  stats_.leader = false;
}

absl::StatusOr<int> OutboxRelay::RelayBatch() {
  PendingBatchOptions batch;
  batch.limit = options_.batch_size;
  batch.shard = options_.shard;
  batch.shard_count = options_.shard_count;
  HERALD_ASSIGN_OR_RETURN(std::vector<OutboxRecord> fetched, store_.FetchPendingBatch(batch));
  {
    MutexLock lock(mu_);
    ++stats_.rounds;
  }
  if (fetched.empty()) return 0;
  // Keys derived by key_from are held back in memory (see relay.h).
  const bool derives_keys = !options_.key_from.empty();
  std::vector<bool> derived(fetched.size(), false);
  for (size_t i = 0; i < fetched.size(); ++i) {
    const bool keyless = fetched[i].envelope.key.empty();
    PrepareRow(fetched[i].envelope);
    derived[i] = keyless && !fetched[i].envelope.key.empty();
  }
  if (derives_keys) HERALD_RETURN_IF_ERROR(RefreshParkedHolds(/*force=*/false));

  // Rows that cannot be relayed as they are get parked at once. A parked row,
  // or a row held back in memory, ends its key's chain for this batch: the
  // later rows of the key are not sent.
  absl::Time now = options_.clock->Now();
  absl::flat_hash_set<std::string> ended_keys;
  absl::flat_hash_map<std::string, std::vector<int64_t>> to_key;  // derived key -> rows to write it into
  int64_t parked = 0;
  std::vector<OutboxRecord> rows;
  std::vector<bool> row_derived;
  rows.reserve(fetched.size());
  row_derived.reserve(fetched.size());
  for (size_t i = 0; i < fetched.size(); ++i) {
    OutboxRecord& row = fetched[i];
    const std::string& key = row.envelope.key;
    if (!key.empty() && ended_keys.contains(key)) {
      if (derived[i]) to_key[key].push_back(row.sequence);
      continue;
    }
    if (derives_keys && !key.empty() && HeldBack(key, row.sequence)) {
      ended_keys.insert(key);
      if (derived[i]) to_key[key].push_back(row.sequence);
      continue;
    }
    if (absl::Status bad = Unrelayable(row); !bad.ok()) {
      HERALD_RETURN_IF_ERROR(store_.MarkFailed(row.sequence, ToStd(bad.message()), now, /*park=*/true));
      ++parked;
      if (!key.empty()) ended_keys.insert(key);
      if (derived[i]) to_key[key].push_back(row.sequence);
      // Rows of the key that the store cannot see (derived) must wait too.
      if (derives_keys && !key.empty()) Hold(key, row.sequence, absl::InfiniteFuture());
      continue;
    }
    rows.push_back(std::move(row));
    row_derived.push_back(derived[i]);
  }

  // The rows of one key form a chain in sequence order: each is published
  // once the previous one is acknowledged, so nothing later of a key is sent
  // while an earlier row of it may still fail. Rows are handed to the Bus in
  // sequence order as far as their chains allow (with a transport that
  // acknowledges at once, exactly in sequence order); chains of different
  // keys, and rows without a key, run concurrently.
  constexpr size_t kNone = static_cast<size_t>(-1);
  std::vector<size_t> previous(rows.size(), kNone);
  std::vector<size_t> next(rows.size(), kNone);
  {
    absl::flat_hash_map<std::string_view, size_t> last_of_key;
    for (size_t i = 0; i < rows.size(); ++i) {
      const std::string& key = rows[i].envelope.key;
      if (key.empty()) continue;
      auto [it, first] = last_of_key.try_emplace(key, i);
      if (!first) {
        previous[i] = it->second;
        next[it->second] = i;
        it->second = i;
      }
    }
  }
  enum class Fate : uint8_t { kNotSent, kInFlight, kDelivered, kFailed };
  std::vector<Fate> fate(rows.size(), Fate::kNotSent);
  std::vector<absl::Status> errors(rows.size());
  auto outcome = std::make_shared<BatchOutcome>();
  size_t in_flight = 0;
  size_t visited = 0;  // rows [0, visited) were considered for publishing in order
  auto publish = [&](size_t i) {
    fate[i] = Fate::kInFlight;
    ++in_flight;
    bus_.PublishAsync(rows[i].envelope, [outcome, i](absl::StatusOr<DeliveryReport> report) {
      MutexLock lock(outcome->mu);
      outcome->reports.emplace_back(i, report.status());
      outcome->cv.NotifyOne();
    });
  };
  std::vector<std::pair<size_t, absl::Status>> reports;
  // Takes the reports that arrived (waiting for one until `deadline` when
  // `wait`); an acknowledged row releases the next row of its key when the
  // in-order walk has already passed it. False when none came.
  auto take_reports = [&](bool wait, absl::Time deadline) {
    {
      MutexLock lock(outcome->mu);
      if (wait) {
        outcome->cv.WaitFor(outcome->mu, deadline - absl::Now(),
                            [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(outcome->mu) { return !outcome->reports.empty(); });
      }
      reports.swap(outcome->reports);
    }
    if (reports.empty()) return false;
    for (auto& [i, status] : reports) {
      --in_flight;
      if (status.ok()) {
        fate[i] = Fate::kDelivered;
        if (next[i] != kNone && next[i] < visited) publish(next[i]);
      } else {
        fate[i] = Fate::kFailed;
        errors[i] = std::move(status);
      }
    }
    reports.clear();
    return true;
  };
  const absl::Time deadline = absl::Now() + options_.publish_timeout;
  for (; visited < rows.size(); ++visited) {
    take_reports(/*wait=*/false, deadline);
    const size_t i = visited;
    if (previous[i] == kNone || fate[previous[i]] == Fate::kDelivered) publish(i);
  }
  while (in_flight > 0) {
    if (!take_reports(/*wait=*/true, deadline)) break;  // publish_timeout passed
  }
  // Retry times count from the end of that wait (up to publish_timeout).
  now = options_.clock->Now();

  // Delivered rows are marked. A failed row (or one with no report in time)
  // is retried later; the rows behind it in its chain were not sent and stay
  // pending behind it.
  std::vector<int64_t> delivered;
  delivered.reserve(rows.size());
  struct Failure {
    size_t index;
    absl::Status status;
  };
  std::vector<Failure> failures;
  for (size_t i = 0; i < rows.size(); ++i) {
    switch (fate[i]) {
      case Fate::kDelivered:
        delivered.push_back(rows[i].sequence);
        break;
      case Fate::kInFlight:
        failures.push_back({i, absl::DeadlineExceededError(herald::StrCat(
                                   "no delivery report within ", absl::FormatDuration(options_.publish_timeout)))});
        break;
      case Fate::kFailed:
        failures.push_back({i, errors[i]});
        break;
      case Fate::kNotSent:
        if (row_derived[i]) to_key[rows[i].envelope.key].push_back(rows[i].sequence);
        break;
    }
  }
  if (!delivered.empty()) HERALD_RETURN_IF_ERROR(store_.MarkPublished(delivered));

  for (const Failure& f : failures) {
    const OutboxRecord& row = rows[f.index];
    int attempt = row.attempts + 1;
    bool park = !IsRetryable(f.status) || attempt >= options_.retry.max_attempts;
    parked += park ? 1 : 0;
    absl::Time retry_at = now + options_.retry.Backoff(attempt + 1);
    HERALD_RETURN_IF_ERROR(store_.MarkFailed(
        row.sequence, herald::StrCat(absl::StatusCodeToString(f.status.code()), ": ", ToStd(f.status.message())),
        retry_at, park));
    const std::string& key = row.envelope.key;
    if (row_derived[f.index]) to_key[key].push_back(row.sequence);
    if (derives_keys && !key.empty()) {
      // Held in memory a poll interval past its retry time, for clock skew
      // between the relay and the database.
      Hold(key, row.sequence, park ? absl::InfiniteFuture() : retry_at + options_.poll_interval);
    }
  }
  // A derived key written into the held rows' key column lets the store hold
  // them back from now on, like rows written with a key.
  for (auto& [key, sequences] : to_key) HERALD_RETURN_IF_ERROR(store_.AssignKey(sequences, key).status());

  MutexLock lock(mu_);
  stats_.published += static_cast<int64_t>(delivered.size());
  stats_.failed += static_cast<int64_t>(failures.size());
  stats_.parked += parked;
  if (!failures.empty()) stats_.last_error = failures.back().status;
  return static_cast<int>(delivered.size());
}

absl::Status OutboxRelay::Unrelayable(const OutboxRecord& row) {
  if (!row.malformed.empty()) return absl::InvalidArgumentError(herald::StrCat("malformed row: ", row.malformed));
  return CheckOutboxSchemaVersion(row.envelope.schema_version);
}

bool OutboxRelay::HeldBack(const std::string& key, int64_t sequence) {
  const absl::Time now = options_.clock->Now();
  bool held = false;
  for (std::map<std::string, KeyHold>* holds : {&waiting_holds_, &parked_holds_}) {
    auto it = holds->find(key);
    if (it == holds->end()) continue;
    // The held row itself is back (retried, or due): it leads its key's
    // chain again. A retry time that has passed needs no hold: the due row
    // comes in the same batch as any later row of its key, before it.
    if (it->second.sequence == sequence || it->second.until <= now) {
      holds->erase(it);
      continue;
    }
    held = held || it->second.sequence < sequence;
  }
  return held;
}

void OutboxRelay::Hold(const std::string& key, int64_t sequence, absl::Time until) {
  std::map<std::string, KeyHold>& holds = until == absl::InfiniteFuture() ? parked_holds_ : waiting_holds_;
  auto [it, inserted] = holds.try_emplace(key, KeyHold{sequence, until});
  if (!inserted && sequence <= it->second.sequence) it->second = KeyHold{sequence, until};
}

absl::Status OutboxRelay::RefreshParkedHolds(bool force) {
  const absl::Time now = options_.clock->Now();
  if (!force && now < next_parked_refresh_) return absl::OkStatus();
  constexpr int kParkedScan = 1000;
  HERALD_ASSIGN_OR_RETURN(std::vector<OutboxRecord> parked, store_.ListParked(kParkedScan));
  std::map<std::string, KeyHold> holds;
  // More parked rows than read: keep the holds known so far as well.
  if (parked.size() >= static_cast<size_t>(kParkedScan)) holds = parked_holds_;
  for (OutboxRecord& row : parked) {
    PrepareRow(row.envelope);
    if (row.envelope.key.empty()) continue;
    auto [it, inserted] = holds.try_emplace(row.envelope.key, KeyHold{row.sequence, absl::InfiniteFuture()});
    if (!inserted) it->second.sequence = std::min(it->second.sequence, row.sequence);
  }
  parked_holds_ = std::move(holds);
  next_parked_refresh_ = now + options_.poll_interval;
  return absl::OkStatus();
}

absl::Status OutboxRelay::Purge() {
  absl::Time now = options_.clock->Now();
  if (now < next_purge_) return absl::OkStatus();
  HERALD_ASSIGN_OR_RETURN(int64_t purged, store_.PurgePublished(now - options_.retention, options_.purge_batch));
  // A full batch means more are waiting: purge again next round.
  next_purge_ = purged >= options_.purge_batch ? now : now + options_.poll_interval;
  MutexLock lock(mu_);
  stats_.purged += purged;
  return absl::OkStatus();
}

absl::Status OutboxRelay::CheckKeyFrom() const {
  for (const auto& [name, pointer] : options_.key_from) {
    if (!rapidjson::Pointer(pointer.data(), pointer.size()).IsValid() || pointer.empty()) {
      return absl::InvalidArgumentError(herald::StrCat("RelayOptions.key_from[\"", name, "\"]: \"", pointer,
                                                       "\" is not a JSON pointer such as /customer_id"));
    }
  }
  return absl::OkStatus();
}

// A row as the relay publishes it: a Go service's whole envelope in
// event_payload is unwrapped (its id, time and payload kept), then a keyless
// row gets the key its key_from pointer finds in the payload.
void OutboxRelay::PrepareRow(Envelope& e) const {
  UnwrapJsonEnvelope(e);
  if (!e.key.empty() || options_.key_from.empty()) return;
  auto it = options_.key_from.find(e.type);
  if (it == options_.key_from.end()) it = options_.key_from.find(e.topic);
  if (it == options_.key_from.end()) return;
  rapidjson::Document payload;
  if (!json::Parse(e.payload, payload).ok()) return;  // bounded like every parse; the bus reports bad JSON
  const rapidjson::Value* v = rapidjson::Pointer(it->second.data(), it->second.size()).Get(payload);
  if (v == nullptr) return;
  if (v->IsString()) {
    e.key.assign(v->GetString(), v->GetStringLength());
  } else if (v->IsInt64()) {
    e.key = herald::StrCat(v->GetInt64());
  } else if (v->IsUint64()) {
    e.key = herald::StrCat(v->GetUint64());
  }
}

absl::StatusOr<int> OutboxRelay::RunOnce() {
  HERALD_RETURN_IF_ERROR(CheckKeyFrom());
  next_parked_refresh_ = absl::InfinitePast();  // see operator changes (skip, retry) at once
  HERALD_ASSIGN_OR_RETURN(int published, RelayBatch());
  next_purge_ = absl::InfinitePast();
  HERALD_RETURN_IF_ERROR(Purge());
  return published;
}

RelayStats OutboxRelay::Stats() {
  absl::StatusOr<OutboxStats> outbox = store_.Stats();
  MutexLock lock(mu_);
  if (outbox.ok()) {
    stats_.outbox = *outbox;
  } else {
    stats_.last_error = outbox.status();
  }
  return stats_;
}

}  // namespace herald
