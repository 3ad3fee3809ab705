// herald/core/relay.h: moves committed outbox rows to a Bus.
//
//   herald::OutboxRelay relay(store, bus, {.batch_size = 500});
//   HERALD_RETURN_IF_ERROR(relay.Start());        // background thread
//   WaitForShutdownSignal();                      // the service runs
//   relay.Stop();                                 // finishes the batch in flight
//
// Each round the relay claims pending rows in sequence order (a row waits for
// every earlier unpublished row of its key), publishes them asynchronously,
// waits for the delivery reports, and marks the delivered rows published in
// one statement. Per key, no row is delivered for the first time before
// every earlier row of that key has been delivered: the rows of one key in a
// batch form a chain, and a row is handed to the Bus only once the previous
// row of its key has been acknowledged (rows of different keys, and rows
// without a key, go out concurrently). A row whose publish fails is retried
// with exponential backoff and holds back later rows of its key only (they
// are not sent); after `max_attempts`, or at once for a permanent error, it
// is parked: kept, visible in Stats and ListParked, and holding back its key
// until an operator retries it (RetryParked) or skips it (SkipParked). A row
// that cannot be relayed as it is (malformed headers, schema_version < 1) is
// parked at once. The relay is woken by the store when a transaction commits
// rows and polls every `poll_interval` as the fallback.
//
// Keys derived by `key_from` are not in the store's key column, so the store
// cannot hold those rows back by itself. The relay holds them back in memory
// and writes the derived key into the key column (OutboxStore::AssignKey) of
// every such row it fails, parks or holds back, so that from then on the
// store holds them back like rows written with a key. A relay that did not
// fail the earlier row itself (a restart or a takeover within the backoff)
// asks the store once per batch whether each key it derived has an earlier
// unpublished row outside the batch (OutboxStore::KeysWithEarlierRows) and
// holds such rows back the same way. Parked rows hold their derived key back across restarts (the relay reads
// the first 1000 parked rows at start and every `poll_interval`).
//
// At-least-once: a relay killed between publish and mark publishes that batch
// again after restart; nothing else is published twice.
//
// Timeouts: the relay waits for the transport's own outcome of every
// publish (Transport::DeliveryTimeout; Kafka: delivery_timeout) plus a
// margin, never less, so a row it gives up on is never delivered later;
// every other timeout is derived from that in DeriveRelayTimeouts.
//
// Several relays on one store: by default each takes the lease "relay"
// (leader lock) and only the holder relays; the others wait as hot
// standbys and retry the lease every `poll_interval`. With `shard_count`
// N > 1, relay i takes lease "relay-shard-<i>-of-<N>" and relays the keys
// that hash to shard i. Every relay of one store must run with the same
// shard_count: a relay that finds a live relay with another count stands
// by with kFailedPrecondition (naming both counts) in Stats().last_error.
// Stores that cannot shard (SQLite) make Start fail for shard_count > 1.
// A leader confirms its lease while a batch is in flight and before it
// marks the batch; a leader that lost it abandons the batch unmarked.
//
// Thread-safety: Start/Stop/Stats from any thread, concurrently too (a Stop
// waits for a concurrent Stop or Start to finish). Stop must not be called
// from the relay's own thread (a Bus callback). RunOnce, AcquireLease and
// ReleaseLease: one thread at a time, not while the background thread runs
// nor concurrently with Start or Stop.
#ifndef HERALD_CORE_RELAY_H_
#define HERALD_CORE_RELAY_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "herald/core/bus.h"
#include "herald/core/clock.h"
#include "herald/core/delivery_policy.h"
#include "herald/core/log.h"
#include "herald/core/metrics.h"
#include "herald/core/mutex.h"
#include "herald/core/outbox.h"
#include "herald/core/tracing.h"

namespace herald {

struct RelayOptions {
  // Rows claimed per round. Default: 500.
  int batch_size = 500;
  // Fallback poll period when no wake-up arrives. Default: 1 s.
  absl::Duration poll_interval = absl::Seconds(1);
  // Use the store's wake-up (LISTEN/NOTIFY, in-process signal). Default: true.
  bool wake_up = true;
  // The bound on one publish's outcome when the transport states none of
  // its own (Transport::DeliveryTimeout is infinite). A transport that
  // states one (Kafka: delivery_timeout) overrides it: the relay never waits
  // less than the transport may still take. See RelayTimeouts.
  // Default: 30 s.
  absl::Duration publish_timeout = absl::Seconds(30);
  // How long Stop waits for the delivery reports of the batch in flight
  // before it abandons the batch unmarked (its rows go again, at least
  // once), so a relay stops quickly while its broker is down. Default: 5 s.
  absl::Duration stop_timeout = absl::Seconds(5);
  // Attempts per row and their backoff (initial_backoff, multiplier,
  // max_backoff, jitter). After max_attempts the row is parked.
  // Default: 10 attempts from 500 ms up to 1 min.
  RetryPolicy retry = {.max_attempts = 10,
                       .initial_backoff = absl::Milliseconds(500),
                       .max_backoff = absl::Minutes(1),
                       .multiplier = 2.0,
                       .jitter = 0.2};
  // Keep published rows this long, then purge them. Zero deletes them as
  // they are marked (OutboxStore::DeletePublished: one statement per batch,
  // no purge); rows skipped by an operator go at the next purge. Default: 0.
  absl::Duration retention = absl::ZeroDuration();
  // Purge at most this many rows per round. Default: 1000.
  int purge_batch = 1000;
  // 1: leader lock "relay". N > 1: this relay serves shard `shard` of N.
  // Every relay of one store runs with the same count (see the file
  // comment). Default: 1.
  int shard_count = 1;
  int shard = 0;
  // Lease name prefix, for several outboxes in one database. Default: "relay".
  std::string lease_name = "relay";
  // How long to back off after a store error (database down). Default: 1 s.
  absl::Duration error_backoff = absl::Seconds(1);
  // Clock for retry times and purges; optional. Must outlive the relay.
  // Default: nullptr, the system clock.
  const Clock* clock = nullptr;
  // Keys for rows written without one (the seed's Go writer inserts no key):
  // event type or topic -> RFC 6901 JSON pointer into the row's payload, as
  // relayed (for a Go envelope row, the inner payload: "/customer_id", not
  // "/payload/customer_id"). A row whose type, else whose topic, is listed
  // takes the string (or integer) the pointer finds as its key; when the
  // pointer finds nothing of that kind the row stays keyless. Rows with a key
  // keep it. Start and RunOnce return kInvalidArgument for an invalid pointer.
  // Default: empty (keyless rows stay keyless).
  std::map<std::string, std::string> key_from;
  // Where the relay reports its metrics (metrics.h; docs/operations.md):
  // rows published, failed, parked and purged, claim rounds and leadership
  // from its own counters, and the outbox's pending and parked rows and lag
  // read from the store at each export, labelled relay=<lease name>. Must
  // outlive the relay. Default: none.
  Metrics* metrics = nullptr;
  // Where the relay reports one "relay <topic>" span per publish attempt of
  // a row (tracing.h), child of the row's `traceparent`, ended with the
  // attribute herald.outcome (published, retry, parked, abandoned) and the
  // error. The record keeps the row's `traceparent` (the publisher's
  // context), so handlers are children of the publisher's span, not of the
  // relay's; a row without one gets the relay span's context. The Bus
  // starts no publish span of its own for a relayed row. Must outlive the
  // relay. Default: none, and then nothing is traced.
  Tracer* tracer = nullptr;
  // Where the relay logs (log.h; docs/operations.md "Logging"): leadership
  // taken and lost (info), rows parked and failed publishes (warning),
  // errors of the store or the lease (warning), each batch (debug). Must
  // outlive the relay. Default: none, and then DefaultLogSink() (warnings
  // and errors on stderr).
  LogSink* log = nullptr;
};

// What OutboxRelay::Readiness requires.
struct RelayReadiness {
  // Ready only while this relay holds its lease. false: a standby waiting
  // for the lease is ready too (it is healthy, and takes over when the
  // leader goes). Default: false.
  bool require_leader = false;
  // Not ready while the oldest pending row is older than this. Default:
  // absl::InfiniteDuration() (no limit).
  absl::Duration max_lag = absl::InfiniteDuration();
};

// The relay's timeouts, derived from each other in one place
// (DeriveRelayTimeouts), so that none contradicts another.
struct RelayTimeouts {
  // The longest one publish may stay without an outcome: the transport's
  // own bound (Transport::DeliveryTimeout), else RelayOptions::publish_timeout.
  absl::Duration delivery;
  // How long the relay waits for one batch's delivery reports: `delivery`
  // plus a margin (a tenth of it, at least 1 s) for the reports to arrive.
  // A batch whose reports are still missing then is left unmarked and goes
  // again (the transport broke its contract); no row is marked failed while
  // it may still be delivered.
  absl::Duration batch_wait;
  // How often a leader confirms its lease (also while a batch is in
  // flight); it confirms it once more before marking a batch.
  // poll_interval, at most 1 s.
  absl::Duration lease_check;
  // How long a leader the store can no longer reach keeps its lease
  // (LeaseRequest::unreachable_timeout): `batch_wait`, so that what it had
  // in flight has its outcome before a standby publishes the same rows.
  absl::Duration unreachable_holder;
  // The worst case from the death of a leader's process until a standby
  // holds the lease: both stores free a dead process's lease at once, and
  // standbys retry every poll_interval, so poll_interval plus one lease
  // round trip (allowed: 1 s).
  absl::Duration takeover;
};

// The one place where the relay's timeouts are derived from `options` and
// the transport's bound on one publish (Transport::DeliveryTimeout).
RelayTimeouts DeriveRelayTimeouts(const RelayOptions& options, absl::Duration transport_delivery_timeout);

struct RelayStats {
  int64_t published = 0;    // rows delivered and marked
  int64_t failed = 0;       // failed publish attempts
  int64_t parked = 0;       // rows this relay parked
  int64_t rounds = 0;       // claim rounds run
  int64_t purged = 0;       // rows purged
  bool leader = false;      // holds its lease now
  OutboxStats outbox;       // pending, parked, outbox lag (as last read)
  absl::Status last_error;  // last store or lease error, OK when none
};

class OutboxRelay {
 public:
  // Borrows `store`, `bus` and `options.clock` (when set): they must
  // outlive the relay.
  OutboxRelay(OutboxStore& store, Bus& bus, RelayOptions options = {});
  ~OutboxRelay();  // Stop()s
  OutboxRelay(const OutboxRelay&) = delete;
  OutboxRelay& operator=(const OutboxRelay&) = delete;

  // Starts the background thread. kInvalidArgument for bad options, and
  // for shard_count > 1 on a store that cannot shard (SQLite), with the
  // store's reason.
  absl::Status Start();
  // Stops after the batch in flight is delivered and marked, or abandons it
  // unmarked after options.stop_timeout (its rows go again). Releases the
  // lease. Idempotent.
  void Stop();

  // For one-shot runs (herald relay --drain): takes this relay's lease, as
  // the background thread would, retrying every poll_interval for up to
  // `wait` while another relay holds it, and calling `waiting` with the
  // reason before each retry. Then RunOnce confirms it before marking.
  // kDeadlineExceeded (naming the lease) when it stayed held for `wait`;
  // kFailedPrecondition at once for a layout conflict (another shard_count
  // is live) or while the background thread runs; kInvalidArgument as
  // Start. Released by ReleaseLease, Stop or destruction.
  absl::Status AcquireLease(absl::Duration wait, absl::FunctionRef<void(const absl::Status&)> waiting);
  void ReleaseLease();

  // The timeouts this relay runs with (DeriveRelayTimeouts).
  const RelayTimeouts& timeouts() const { return timeouts_; }

  // One round on the calling thread, without a lease unless AcquireLease
  // took it: claim, publish, wait, mark, purge. Returns the rows published.
  // For tests and tools (testing::DrainOutbox calls it until nothing is
  // left).
  absl::StatusOr<int> RunOnce();

  // This relay's counters, with `outbox` read fresh from the store
  // (OutboxStore::Stats, one query that counts the pending and parked rows:
  // on PostgreSQL it reads the whole outbox, up to hundreds of milliseconds
  // with a backlog of a few hundred thousand rows). For a metrics scrape or
  // a health check, not for a tight progress loop.
  RelayStats Stats();

  // OK when the relay runs (Start, not yet Stop), its store answers, and
  // `readiness` holds; kUnavailable saying which is not so otherwise. For a
  // /readyz probe (herald/prometheus/metrics_server.h). Queries the store.
  // Never waits for Start or Stop: during a Stop (which may wait up to
  // stop_timeout for a batch) it answers "not running" at once.
  absl::Status Readiness(const RelayReadiness& readiness);

 private:
  // The metrics collector: Stats() as gauge and counter samples.
  void CollectMetrics(std::vector<GaugeSample>& samples);
  void Loop();
  absl::StatusOr<int> RelayBatch();
  // Whether a publish of `row` that failed with `error` parks it.
  bool WillPark(const OutboxRecord& row, const absl::Status& error) const;
  // The "relay <topic>" span of one publish attempt of `row` (tracer set).
  std::unique_ptr<Span> StartRowSpan(const OutboxRecord& row) const;
  // Why `row` cannot be relayed as it is; OK for a good row.
  static absl::Status Unrelayable(const OutboxRecord& row);
  // In-memory holds on keys the store cannot hold back (key_from): whether
  // the row `sequence` of `key` must wait behind an earlier held row, and
  // the bookkeeping of those holds.
  bool HeldBack(const std::string& key, int64_t sequence);
  void Hold(const std::string& key, int64_t sequence, absl::Time until);
  absl::Status RefreshParkedHolds(bool force);
  absl::Status CheckKeyFrom() const;
  void PrepareRow(Envelope& envelope) const;
  absl::Status Purge();
  std::string LeaseName() const;
  absl::Status CheckOptions();
  // Tries once to take the lease (kUnavailable: another relay holds it).
  absl::Status TakeLease();
  // Confirms the lease when one is held and its check is due (always when
  // `force`); drops it and returns kAborted when it was lost.
  absl::Status ConfirmLease(bool force);
  void DropLease();
  // Waits for a batch's delivery reports: `arrived(slice)` waits up to
  // `slice` and says whether all have arrived. Confirms the lease meanwhile
  // and before returning OK; kDeadlineExceeded after timeouts_.batch_wait,
  // kAborted when stopping (after stop_timeout) or the lease was lost.
  absl::Status AwaitDelivery(absl::FunctionRef<bool(absl::Duration)> arrived);
  void SleepInterruptibly(absl::Duration d);
  void RecordError(const absl::Status& status);

  OutboxStore& store_;
  Bus& bus_;
  RelayOptions options_;
  // Held by Start and Stop for their whole run (Stop through the join), so
  // concurrent calls see one thread, and only one of them joins it.
  Mutex lifecycle_mu_;
  std::thread thread_ ABSL_GUARDED_BY(lifecycle_mu_);
  std::atomic<bool> stopping_{false};
  // True from a Start that made the thread until the Stop that ends it
  // begins: what Readiness reads, without lifecycle_mu_.
  std::atomic<bool> running_{false};
  const RelayTimeouts timeouts_;
  // Used by one thread at a time: the background thread while it runs, else
  // the caller of AcquireLease / RunOnce.
  absl::Time next_purge_ = absl::InfinitePast();
  std::unique_ptr<Lease> lease_;
  absl::Time lease_checked_ = absl::InfinitePast();

  // Only with key_from; used by the one thread that runs RelayBatch.
  struct KeyHold {
    int64_t sequence = 0;                       // the first held row of the key
    absl::Time until = absl::InfiniteFuture();  // a retry time, or forever (parked)
  };
  // Keys held back by a row this relay failed (until its retry time) or by
  // a parked row (from ListParked, refreshed every poll_interval).
  std::map<std::string, KeyHold> waiting_holds_;
  std::map<std::string, KeyHold> parked_holds_;
  absl::Time next_parked_refresh_ = absl::InfinitePast();

  Mutex mu_;
  CondVar wake_;
  RelayStats stats_ ABSL_GUARDED_BY(mu_);
  // Last: the collector stops before anything it reads goes.
  std::unique_ptr<Metrics::Registration> metrics_registration_;
};

}  // namespace herald

#endif  // HERALD_CORE_RELAY_H_
