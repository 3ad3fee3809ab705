#include "herald/core/relay.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "herald/core/json.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/core/wire.h"
#include "rapidjson/pointer.h"

namespace herald {
namespace {

// The outcomes of one batch's publishes; shared with the callbacks, which
// may outlive a timed-out wait.
struct BatchOutcome {
  Mutex mu;
  CondVar cv;
  int remaining ABSL_GUARDED_BY(mu) = 0;
  std::vector<absl::Status> results ABSL_GUARDED_BY(mu);
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
  HERALD_ASSIGN_OR_RETURN(std::vector<OutboxRecord> rows, store_.FetchPendingBatch(batch));
  {
    MutexLock lock(mu_);
    ++stats_.rounds;
  }
  if (rows.empty()) return 0;
  for (OutboxRecord& row : rows) PrepareRow(row.envelope);

  // Rows a store could not read are parked at once; later rows of their key
  // wait behind them (not published in this batch).
  absl::Time now = options_.clock->Now();
  absl::flat_hash_set<std::string> blocked_keys;
  int64_t parked = 0;
  std::vector<OutboxRecord> good;
  good.reserve(rows.size());
  for (OutboxRecord& row : rows) {
    if (!row.malformed.empty()) {
      HERALD_RETURN_IF_ERROR(
          store_.MarkFailed(row.sequence, herald::StrCat("malformed row: ", row.malformed), now, /*park=*/true));
      ++parked;
      if (!row.envelope.key.empty()) blocked_keys.insert(row.envelope.key);
    } else if (row.envelope.key.empty() || !blocked_keys.contains(row.envelope.key)) {
      good.push_back(std::move(row));
    }
  }
  rows = std::move(good);
  if (rows.empty()) {
    MutexLock lock(mu_);
    stats_.parked += parked;
    return 0;
  }

  auto outcome = std::make_shared<BatchOutcome>();
  {
    MutexLock lock(outcome->mu);
    outcome->remaining = static_cast<int>(rows.size());
    outcome->results.assign(rows.size(), absl::DeadlineExceededError(herald::StrCat(
                                             "no delivery report within ", absl::FormatDuration(options_.publish_timeout))));
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    bus_.PublishAsync(rows[i].envelope, [outcome, i](absl::StatusOr<DeliveryReport> report) {
      MutexLock lock(outcome->mu);
      outcome->results[i] = report.status();
      --outcome->remaining;
      if (outcome->remaining == 0) outcome->cv.NotifyAll();
    });
  }
  std::vector<absl::Status> results;
  {
    MutexLock lock(outcome->mu);
    outcome->cv.WaitFor(outcome->mu, options_.publish_timeout,
                        [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(outcome->mu) { return outcome->remaining == 0; });
    results = outcome->results;
  }
  // Retry times count from the end of that wait (up to publish_timeout).
  now = options_.clock->Now();

  // Delivered rows are marked, except those after a failed row of the same
  // key: they go again after it, so the key's order is kept.
  std::vector<int64_t> delivered;
  delivered.reserve(rows.size());
  absl::flat_hash_set<std::string> failed_keys;
  struct Failure {
    const OutboxRecord* row;
    absl::Status status;
  };
  std::vector<Failure> failures;
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::string& key = rows[i].envelope.key;
    if (!results[i].ok()) {
      if (!key.empty()) failed_keys.insert(key);
      failures.push_back({&rows[i], results[i]});
    } else if (key.empty() || !failed_keys.contains(key)) {
      delivered.push_back(rows[i].sequence);
    }
  }
  if (!delivered.empty()) HERALD_RETURN_IF_ERROR(store_.MarkPublished(delivered));

  for (const Failure& f : failures) {
    int attempt = f.row->attempts + 1;
    bool park = !IsRetryable(f.status) || attempt >= options_.retry.max_attempts;
    parked += park ? 1 : 0;
    HERALD_RETURN_IF_ERROR(store_.MarkFailed(f.row->sequence,
                                             herald::StrCat(absl::StatusCodeToString(f.status.code()), ": ",
                                                            ToStd(f.status.message())),
                                             now + options_.retry.Backoff(attempt + 1), park));
  }
  MutexLock lock(mu_);
  stats_.published += static_cast<int64_t>(delivered.size());
  stats_.failed += static_cast<int64_t>(failures.size());
  stats_.parked += parked;
  if (!failures.empty()) stats_.last_error = failures.back().status;
  return static_cast<int>(delivered.size());
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
