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

void RelayLog(const RelayOptions& options, LogLevel level, std::string_view message, const LogFields& fields) {
  Log(LogSinkOrDefault(options.log), level, "relay", message, fields);
}

std::string StatusText(const absl::Status& status) {
  return herald::StrCat(absl::StatusCodeToString(status.code()), ": ", ToStd(status.message()));
}

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
  if (options_.metrics != nullptr) {
    metrics_registration_ =
        options_.metrics->AddCollector([this](std::vector<GaugeSample>& samples) { CollectMetrics(samples); });
  }
}

void OutboxRelay::CollectMetrics(std::vector<GaugeSample>& samples) {
  absl::StatusOr<OutboxStats> outbox = store_.Stats();
  RelayStats s;
  {
    MutexLock lock(mu_);
    if (outbox.ok()) stats_.outbox = *outbox;
    s = stats_;
  }
  const MetricLabels labels = {{"relay", LeaseName()}};
  auto add = [&](const char* name, const char* help, double value, bool counter) {
    samples.push_back({name, help, labels, value, counter});
  };
  add("herald_relay_rows_published_total", "Outbox rows delivered and marked published by this relay.",
      static_cast<double>(s.published), true);
  add("herald_relay_publish_failures_total", "Failed publish attempts of outbox rows (each is retried or parked).",
      static_cast<double>(s.failed), true);
  add("herald_relay_rows_parked_total", "Outbox rows this relay parked (failed for good, kept, holding their key).",
      static_cast<double>(s.parked), true);
  add("herald_relay_rows_purged_total", "Published outbox rows this relay deleted.", static_cast<double>(s.purged),
      true);
  add("herald_relay_claims_total", "Claim rounds run (batches fetched, empty ones included).",
      static_cast<double>(s.rounds), true);
  add("herald_relay_leader", "1 while this relay holds its lease (leader or shard owner), else 0.", s.leader ? 1 : 0,
      false);
  add("herald_outbox_up", "1 when the outbox store answered this scrape's stats query, else 0 (the row gauges then "
      "keep their last values).",
      outbox.ok() ? 1 : 0, false);
  add("herald_outbox_pending_rows", "Unpublished rows that are not parked.", static_cast<double>(s.outbox.pending),
      false);
  add("herald_outbox_parked_rows", "Parked rows, waiting for an operator (herald outbox retry or skip).",
      static_cast<double>(s.outbox.parked), false);
  add("herald_outbox_lag_seconds", "Age of the oldest pending row: how far the relay is behind.",
      absl::ToDoubleSeconds(s.outbox.oldest_pending_age), false);
}

absl::Status OutboxRelay::Readiness(const RelayReadiness& readiness) {
  // No lifecycle_mu_ here: Stop holds it while it waits for the batch in
  // flight, and a probe must not hang on that.
  if (!running_.load() || stopping_.load()) {
    return absl::UnavailableError("relay: not running (not started, or stopping)");
  }
  absl::StatusOr<OutboxStats> outbox = store_.Stats();
  if (!outbox.ok()) return absl::UnavailableError(herald::StrCat("relay: the outbox store does not answer: ",
                                                                  outbox.status().message()));
  bool leader;
  {
    MutexLock lock(mu_);
    stats_.outbox = *outbox;
    leader = stats_.leader;
  }
  if (readiness.require_leader && !leader) {
    return absl::UnavailableError(herald::StrCat("relay: not the leader (another relay holds lease \"", LeaseName(),
                                                 "\"); a standby, ready only as leader here"));
  }
  if (outbox->oldest_pending_age > readiness.max_lag) {
    return absl::UnavailableError(herald::StrCat("relay: the oldest pending row is ",
                                                 absl::FormatDuration(outbox->oldest_pending_age),
                                                 " old, over the limit of ", absl::FormatDuration(readiness.max_lag)));
  }
  return absl::OkStatus();
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
  running_.store(true);
  return absl::OkStatus();
}

void OutboxRelay::Stop() {
  // Readiness answers "stopping" at once, also while this waits for the
  // lock (a concurrent Start or Stop).
  running_.store(false);
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
  running_.store(false);  // a concurrent Start may have set it while this waited for the lock
}

void OutboxRelay::SleepInterruptibly(absl::Duration d) {
  MutexLock lock(mu_);
  wake_.WaitFor(mu_, d, [this] { return stopping_.load(); });
}

void OutboxRelay::RecordError(const absl::Status& status) {
  RelayLog(options_, LogLevel::kWarning, "error", {{"relay", LeaseName()}, {"error", StatusText(status)}});
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
  RelayLog(options_, LogLevel::kInfo, "leader: holds the lease",
           {{"relay", LeaseName()},
            {"shard", herald::StrCat(options_.shard)},
            {"shards", herald::StrCat(options_.shard_count)}});
  MutexLock lock(mu_);
  stats_.leader = true;
  return absl::OkStatus();
}

void OutboxRelay::DropLease() {
  if (lease_ == nullptr) return;
  lease_.reset();
  RelayLog(options_, LogLevel::kInfo, "standby: released the lease", {{"relay", LeaseName()}});
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
  // A derived key may have an earlier row the store held back, or another
  // relay has: the store could not hold these rows back behind it, as it
  // does not know their key. Asked once per batch, for each key whose first
  // row here was keyless in the store.
  absl::flat_hash_set<std::string> earlier_elsewhere;
  if (derives_keys) {
    std::vector<KeyPosition> firsts;
    std::vector<int64_t> batch_sequences;
    absl::flat_hash_set<std::string_view> keys_seen;
    batch_sequences.reserve(fetched.size());
    for (size_t i = 0; i < fetched.size(); ++i) {
      batch_sequences.push_back(fetched[i].sequence);
      const std::string& key = fetched[i].envelope.key;
      if (key.empty() || !keys_seen.insert(key).second || !derived[i]) continue;
      firsts.push_back({key, fetched[i].sequence});
    }
    if (!firsts.empty()) {
      HERALD_ASSIGN_OR_RETURN(std::vector<std::string> keys, store_.KeysWithEarlierRows(firsts, batch_sequences));
      earlier_elsewhere.insert(keys.begin(), keys.end());
    }
  }

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
    if (!key.empty() && earlier_elsewhere.contains(key)) {
      ended_keys.insert(key);
      if (derived[i]) to_key[key].push_back(row.sequence);
      continue;
    }
    if (derives_keys && !key.empty() && HeldBack(key, row.sequence)) {
      ended_keys.insert(key);
      if (derived[i]) to_key[key].push_back(row.sequence);
      continue;
    }
    if (absl::Status bad = Unrelayable(row); !bad.ok()) {
      if (options_.tracer != nullptr) {
        if (std::unique_ptr<Span> span = StartRowSpan(row)) {
          span->SetAttribute("herald.outcome", std::string("parked"));
          span->End(bad);
        }
      }
      HERALD_RETURN_IF_ERROR(store_.MarkFailed(row.sequence, ToStd(bad.message()), now, /*park=*/true));
      RelayLog(options_, LogLevel::kWarning, "row parked: it cannot be relayed as it is",
               {{"sequence", herald::StrCat(row.sequence)},
                {"id", row.envelope.id},
                {"topic", row.envelope.topic},
                {"error", StatusText(bad)}});
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
  // With a tracer: each row's span while its publish is in flight.
  std::vector<std::unique_ptr<Span>> spans(options_.tracer != nullptr ? rows.size() : 0);
  auto end_span = [&](size_t i, std::string_view what, const absl::Status& status) {
    if (spans.empty() || spans[i] == nullptr) return;
    spans[i]->SetAttribute("herald.outcome", std::string(what));
    spans[i]->End(status);
    spans[i].reset();
  };
  auto publish = [&](size_t i) {
    fate[i] = Fate::kInFlight;
    ++in_flight;
    PublishCallback done = [outcome, i](absl::StatusOr<DeliveryReport> report) {
      MutexLock lock(outcome->mu);
      outcome->reports.emplace_back(i, report.status());
      outcome->cv.NotifyOne();
    };
    if (spans.empty()) {
      bus_.PublishAsyncUntraced(rows[i].envelope, std::move(done));
      return;
    }
    Envelope envelope = rows[i].envelope;
    spans[i] = StartRowSpan(rows[i]);
    // The record carries the publisher's context (the row's traceparent);
    // a row without a valid one gets the relay span's (tracing.h).
    if (spans[i] != nullptr) {
      std::optional<std::string_view> traceparent = FindHeader(envelope.headers, kTraceparentHeader);
      if (!traceparent.has_value() || !ParseTraceparent(*traceparent).has_value()) {
        SetHeader(envelope.headers, kTraceparentHeader, FormatTraceparent(spans[i]->context()));
      }
    }
    bus_.PublishAsyncUntraced(std::move(envelope), std::move(done));
  };
  std::vector<std::pair<size_t, absl::Status>> reports;
  // Takes the reports that arrived (waiting up to `wait` for one); an
  // acknowledged row releases the next row of its key when the
  // in-order walk has already passed it. False when none came.
  auto take_reports = [&](absl::Duration wait) {
    {
      MutexLock lock(outcome->mu);
      if (wait > absl::ZeroDuration()) {
        outcome->cv.WaitFor(outcome->mu, wait,
                            [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(outcome->mu) { return !outcome->reports.empty(); });
      }
      reports.swap(outcome->reports);
    }
    if (reports.empty()) return false;
    for (auto& [i, status] : reports) {
      --in_flight;
      if (status.ok()) {
        fate[i] = Fate::kDelivered;
        end_span(i, "published", status);
        if (next[i] != kNone && next[i] < visited) publish(next[i]);
      } else {
        fate[i] = Fate::kFailed;
        end_span(i, WillPark(rows[i], status) ? "parked" : "retry", status);
        errors[i] = std::move(status);
      }
    }
    reports.clear();
    return true;
  };
  for (; visited < rows.size(); ++visited) {
    take_reports(absl::ZeroDuration());
    const size_t i = visited;
    if (previous[i] == kNone || fate[previous[i]] == Fate::kDelivered) publish(i);
  }
  // Every report, or nothing is marked: a row without an outcome may still
  // be delivered, so it must not be marked failed and sent again. The wait
  // is bounded by the transport's own bound on a publish (AwaitDelivery).
  absl::Status awaited = AwaitDelivery([&](absl::Duration slice) {
    if (in_flight > 0) take_reports(slice);
    return in_flight == 0;
  });
  for (size_t i = 0; i < spans.size(); ++i)
    end_span(i, "abandoned", awaited.ok() ? absl::InternalError("relay: no delivery report") : awaited);
  HERALD_RETURN_IF_ERROR(awaited);
  // Retry times count from the end of that wait.
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
      case Fate::kInFlight:  // not after AwaitDelivery succeeded; kept failed, never marked
        failures.push_back({i, absl::InternalError("relay: no delivery report")});
        break;
      case Fate::kFailed:
        failures.push_back({i, errors[i]});
        break;
      case Fate::kNotSent:
        if (row_derived[i]) to_key[rows[i].envelope.key].push_back(rows[i].sequence);
        break;
    }
  }
  if (!delivered.empty()) {
    // Kept for no time: deleted in the statement that marks them, so the
    // purge has nothing to do for them.
    HERALD_RETURN_IF_ERROR(options_.retention <= absl::ZeroDuration() ? store_.DeletePublished(delivered)
                                                                      : store_.MarkPublished(delivered));
  }

  for (const Failure& f : failures) {
    const OutboxRecord& row = rows[f.index];
    int attempt = row.attempts + 1;
    bool park = WillPark(row, f.status);
    parked += park ? 1 : 0;
    absl::Time retry_at = now + options_.retry.Backoff(attempt + 1);
    RelayLog(options_, LogLevel::kWarning, park ? "publish failed: row parked" : "publish failed: row will be retried",
             {{"sequence", herald::StrCat(row.sequence)},
              {"id", row.envelope.id},
              {"topic", row.envelope.topic},
              {"attempt", herald::StrCat(attempt)},
              {"error", StatusText(f.status)}});
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

  if (LogSink& log = LogSinkOrDefault(options_.log); log.Enabled(LogLevel::kDebug)) {
    Log(log, LogLevel::kDebug, "relay", "batch relayed",
        {{"relay", LeaseName()},
         {"published", herald::StrCat(delivered.size())},
         {"failed", herald::StrCat(failures.size())},
         {"parked", herald::StrCat(parked)}});
  }
  MutexLock lock(mu_);
  stats_.published += static_cast<int64_t>(delivered.size());
  stats_.failed += static_cast<int64_t>(failures.size());
  stats_.parked += parked;
  if (!failures.empty()) stats_.last_error = failures.back().status;
  return static_cast<int>(delivered.size());
}

bool OutboxRelay::WillPark(const OutboxRecord& row, const absl::Status& error) const {
  return !IsRetryable(error) || row.attempts + 1 >= options_.retry.max_attempts;
}

std::unique_ptr<Span> OutboxRelay::StartRowSpan(const OutboxRecord& row) const {
  const Envelope& e = row.envelope;
  SpanStart start;
  start.name = herald::StrCat("relay ", e.topic);
  start.kind = SpanKind::kProducer;
  if (std::optional<std::string_view> traceparent = FindHeader(e.headers, kTraceparentHeader)) {
    start.parent = ParseTraceparent(*traceparent);
  }
  start.attributes = {{"messaging.operation.type", std::string("send")},
                      {"messaging.destination.name", e.topic},
                      {"messaging.message.id", e.id},
                      {"herald.event.type", e.type},
                      {"herald.outbox.sequence", row.sequence},
                      {"herald.attempt", static_cast<int64_t>(row.attempts + 1)}};
  return options_.tracer->StartSpan(std::move(start));
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
