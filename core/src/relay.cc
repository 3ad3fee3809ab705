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

RelayTimeouts DeriveRelayTimeouts(const RelayOptions& options, absl::Duration transport_delivery_timeout) {
  RelayTimeouts t;
  t.delivery =
      transport_delivery_timeout < absl::InfiniteDuration() ? transport_delivery_timeout : options.publish_timeout;
  t.batch_wait = t.delivery + std::max(absl::Seconds(1), t.delivery / 10);
  t.lease_check = std::min(options.poll_interval, absl::Seconds(1));
  t.unreachable_holder = t.batch_wait;
  t.takeover = options.poll_interval + absl::Seconds(1);
  return t;
}

OutboxRelay::OutboxRelay(OutboxStore& store, Bus& bus, RelayOptions options)
    : store_(store),
      bus_(bus),
      options_(std::move(options)),
      timeouts_(DeriveRelayTimeouts(options_, bus.transport().DeliveryTimeout())) {
  if (options_.clock == nullptr) options_.clock = &SystemClock();
}

OutboxRelay::~OutboxRelay() { Stop(); }

std::string OutboxRelay::LeaseName() const {
  if (options_.shard_count <= 1) return options_.lease_name;
  return herald::StrCat(options_.lease_name, "-shard-", options_.shard, "-of-", options_.shard_count);
}

absl::Status OutboxRelay::CheckOptions() {
  if (options_.batch_size < 1) return absl::InvalidArgumentError("RelayOptions.batch_size must be at least 1");
  if (options_.shard_count < 1 || options_.shard < 0 || options_.shard >= options_.shard_count) {
    return absl::InvalidArgumentError(herald::StrCat("RelayOptions: shard ", options_.shard, " is not in [0, ",
                                                     options_.shard_count, ")"));
  }
  if (options_.retry.max_attempts < 1) {
    return absl::InvalidArgumentError("RelayOptions.retry.max_attempts must be at least 1");
  }
  if (options_.publish_timeout <= absl::ZeroDuration() || options_.poll_interval <= absl::ZeroDuration() ||
      options_.stop_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "RelayOptions: publish_timeout and poll_interval must be positive, stop_timeout not negative");
  }
  HERALD_RETURN_IF_ERROR(CheckKeyFrom());
  if (options_.shard_count > 1) {
    // A store that cannot shard says so here, before the relay stands by
    // for ever on a lease it cannot use. Other errors (the database is
    // down) are the loop's to retry.
    PendingBatchOptions probe;
    probe.limit = 1;
    probe.shard = options_.shard;
    probe.shard_count = options_.shard_count;
    absl::StatusOr<std::vector<OutboxRecord>> fetched = store_.FetchPendingBatch(probe);
    if (fetched.status().code() == absl::StatusCode::kUnimplemented ||
        fetched.status().code() == absl::StatusCode::kInvalidArgument) {
      return absl::InvalidArgumentError(
          herald::StrCat("RelayOptions.shard_count ", options_.shard_count,
                         ": this store cannot relay in shards: ", ToStd(fetched.status().message())));
    }
  }
  return absl::OkStatus();
}

absl::Status OutboxRelay::Start() {
  HERALD_RETURN_IF_ERROR(CheckOptions());
  MutexLock lifecycle(lifecycle_mu_);
  if (thread_.joinable()) return absl::OkStatus();
  stopping_.store(false);
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void OutboxRelay::Stop() {
  MutexLock lifecycle(lifecycle_mu_);
  if (!thread_.joinable()) {
    DropLease();  // one taken by AcquireLease
    return;
  }
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

absl::Status OutboxRelay::TakeLease() {
  LeaseRequest request;
  request.name = LeaseName();
  request.group = options_.lease_name;
  request.shard_count = options_.shard_count;
  request.unreachable_timeout = timeouts_.unreachable_holder;
  HERALD_ASSIGN_OR_RETURN(lease_, store_.TryAcquireRelayLease(request));
  lease_checked_ = absl::Now();
  MutexLock lock(mu_);
  stats_.leader = true;
  return absl::OkStatus();
}

void OutboxRelay::DropLease() {
  if (lease_ == nullptr) return;
  lease_.reset();
  MutexLock lock(mu_);
  stats_.leader = false;
}

absl::Status OutboxRelay::ConfirmLease(bool force) {
  if (lease_ == nullptr) return absl::OkStatus();  // RunOnce without a lease
  absl::Time now = absl::Now();
  if (!force && now - lease_checked_ < timeouts_.lease_check) return absl::OkStatus();
  if (absl::Status held = lease_->Check(); !held.ok()) {
    RecordError(held);
    DropLease();
    return absl::AbortedError(herald::StrCat("relay: lost the lease \"", LeaseName(), "\": ", ToStd(held.message())));
  }
  lease_checked_ = now;
  return absl::OkStatus();
}

absl::Status OutboxRelay::AcquireLease(absl::Duration wait, absl::FunctionRef<void(const absl::Status&)> waiting) {
  HERALD_RETURN_IF_ERROR(CheckOptions());
  {
    MutexLock lifecycle(lifecycle_mu_);
    if (thread_.joinable()) {
      return absl::FailedPreconditionError("OutboxRelay::AcquireLease: the background thread holds the lease");
    }
  }
  if (lease_ != nullptr) return ConfirmLease(/*force=*/true);
  absl::Time deadline = absl::Now() + wait;
  while (true) {
    absl::Status taken = TakeLease();
    if (taken.ok() || taken.code() == absl::StatusCode::kFailedPrecondition ||
        taken.code() == absl::StatusCode::kUnimplemented) {
      return taken;
    }
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(herald::StrCat("relay: the lease \"", LeaseName(),
                                                        "\" stayed unavailable for ", absl::FormatDuration(wait), ": ",
                                                        ToStd(taken.message()), " (is another relay running?)"));
    }
    waiting(taken);
    absl::SleepFor(std::min(options_.poll_interval, deadline - now));
  }
}

void OutboxRelay::ReleaseLease() { DropLease(); }

absl::Status OutboxRelay::AwaitDelivery(absl::FunctionRef<bool(absl::Duration)> arrived) {
  // Short slices, so that a Stop and a due lease check are noticed while
  // a slow broker holds the batch.
  constexpr absl::Duration kSlice = absl::Milliseconds(100);
  const absl::Time deadline = absl::Now() + timeouts_.batch_wait;
  absl::Time stop_deadline = absl::InfiniteFuture();
  while (!arrived(kSlice)) {
    absl::Time now = absl::Now();
    if (stopping_.load() && stop_deadline == absl::InfiniteFuture()) stop_deadline = now + options_.stop_timeout;
    if (now >= stop_deadline) {
      return absl::AbortedError(herald::StrCat("relay: stopped with delivery reports missing after stop_timeout ",
                                               absl::FormatDuration(options_.stop_timeout),
                                               "; the batch stays unmarked and goes again"));
    }
    if (now >= deadline) {
      return absl::DeadlineExceededError(
          herald::StrCat("relay: delivery reports missing after ", absl::FormatDuration(timeouts_.batch_wait),
                         " (the transport's bound on one publish is ", absl::FormatDuration(timeouts_.delivery),
                         "); the batch stays unmarked and goes again"));
    }
    HERALD_RETURN_IF_ERROR(ConfirmLease(/*force=*/false));
  }
  return ConfirmLease(/*force=*/true);
}

void OutboxRelay::Loop() {
  while (!stopping_.load()) {
    if (lease_ == nullptr) {
      if (absl::Status taken = TakeLease(); !taken.ok()) {
        // Another relay leads (kUnavailable), runs another shard layout
        // (kFailedPrecondition, reported), or the store is down: stand by.
        if (taken.code() != absl::StatusCode::kUnavailable) RecordError(taken);
        SleepInterruptibly(options_.poll_interval);
        continue;
      }
    } else if (!ConfirmLease(/*force=*/false).ok()) {
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
  DropLease();
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
    outcome->results.assign(rows.size(), absl::UnknownError("no delivery report"));
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    bus_.PublishAsync(rows[i].envelope, [outcome, i](absl::StatusOr<DeliveryReport> report) {
      MutexLock lock(outcome->mu);
      outcome->results[i] = report.status();
      --outcome->remaining;
      if (outcome->remaining == 0) outcome->cv.NotifyAll();
    });
  }
  // Every report, or nothing is marked: a row without an outcome may still
  // be delivered, so it must not be marked failed and sent again.
  std::vector<absl::Status> results;
  HERALD_RETURN_IF_ERROR(AwaitDelivery([&](absl::Duration slice) {
    MutexLock lock(outcome->mu);
    outcome->cv.WaitFor(outcome->mu, slice,
                        [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(outcome->mu) { return outcome->remaining == 0; });
    if (outcome->remaining != 0) return false;
    results = outcome->results;
    return true;
  }));
  // Retry times count from the end of that wait.
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
