// herald/core/relay.h: moves committed outbox rows to a Bus.
//
//   herald::OutboxRelay relay(store, bus, {.batch_size = 500});
//   HERALD_RETURN_IF_ERROR(relay.Start());        // background thread
//   WaitForShutdownSignal();                      // the service runs
//   relay.Stop();                                 // finishes the batch in flight
//
// Each round the relay claims pending rows in sequence order (a row waits for
// every earlier unpublished row of its key), publishes them all
// asynchronously, waits for every delivery report, and marks the delivered
// rows published in one statement. A row whose publish fails is retried with
// exponential backoff and holds back later rows of its key only (later rows
// of that key published in the same batch are not marked, so they go again
// after it: order is kept at the price of a duplicate); after
// `max_attempts` it is parked: kept, visible in Stats and ListParked, retried
// only by RetryParked. The relay is woken by the store when a transaction
// commits rows and polls every `poll_interval` as the fallback.
//
// At-least-once: a relay killed between publish and mark publishes that batch
// again after restart; nothing else is published twice.
//
// Several relays on one store: by default each takes the lease "relay"
// (leader lock) and only the holder relays; the others wait as hot
// standbys. With `shard_count` N > 1, relay i takes lease
// "relay-shard-<i>-of-<N>" and relays the keys that hash to shard i.
//
// Thread-safety: Start/Stop/Stats from any thread, concurrently too (a Stop
// waits for a concurrent Stop or Start to finish). Stop must not be called
// from the relay's own thread (a Bus callback). RunOnce must not be called
// while the background thread runs.
#ifndef HERALD_CORE_RELAY_H_
#define HERALD_CORE_RELAY_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "herald/core/bus.h"
#include "herald/core/clock.h"
#include "herald/core/delivery_policy.h"
#include "herald/core/mutex.h"
#include "herald/core/outbox.h"

namespace herald {

struct RelayOptions {
  // Rows claimed per round. Default: 500.
  int batch_size = 500;
  // Fallback poll period when no wake-up arrives. Default: 1 s.
  absl::Duration poll_interval = absl::Seconds(1);
  // Use the store's wake-up (LISTEN/NOTIFY, in-process signal). Default: true.
  bool wake_up = true;
  // How long to wait for the delivery reports of one batch. Default: 30 s.
  absl::Duration publish_timeout = absl::Seconds(30);
  // Attempts per row and their backoff (initial_backoff, multiplier,
  // max_backoff, jitter). After max_attempts the row is parked.
  // Default: 10 attempts from 500 ms up to 1 min.
  RetryPolicy retry = {.max_attempts = 10,
                       .initial_backoff = absl::Milliseconds(500),
                       .max_backoff = absl::Minutes(1),
                       .multiplier = 2.0,
                       .jitter = 0.2};
  // Keep published rows this long, then purge them; zero deletes them at the
  // next purge. Default: 0.
  absl::Duration retention = absl::ZeroDuration();
  // Purge at most this many rows per round. Default: 1000.
  int purge_batch = 1000;
  // 1: leader lock "relay". N > 1: this relay serves shard `shard` of N.
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
};

struct RelayStats {
  int64_t published = 0;      // rows delivered and marked
  int64_t failed = 0;         // failed publish attempts
  int64_t parked = 0;         // rows this relay parked
  int64_t rounds = 0;         // claim rounds run
  int64_t purged = 0;         // rows purged
  bool leader = false;        // holds its lease now
  OutboxStats outbox;         // pending, parked, outbox lag (as last read)
  absl::Status last_error;    // last store or lease error, OK when none
};

class OutboxRelay {
 public:
  // Borrows `store`, `bus` and `options.clock` (when set): they must
  // outlive the relay.
  OutboxRelay(OutboxStore& store, Bus& bus, RelayOptions options = {});
  ~OutboxRelay();  // Stop()s
  OutboxRelay(const OutboxRelay&) = delete;
  OutboxRelay& operator=(const OutboxRelay&) = delete;

  // Starts the background thread. kInvalidArgument for bad options.
  absl::Status Start();
  // Stops after the batch in flight is delivered and marked (or its
  // publish_timeout passes). Idempotent.
  void Stop();

  // One round on the calling thread, without a lease: claim, publish, wait,
  // mark, purge. Returns the rows published. For tests and tools
  // (testing::DrainOutbox calls it until nothing is left).
  absl::StatusOr<int> RunOnce();

  RelayStats Stats();

 private:
  void Loop();
  absl::StatusOr<int> RelayBatch();
  absl::Status CheckKeyFrom() const;
  void PrepareRow(Envelope& envelope) const;
  absl::Status Purge();
  std::string LeaseName() const;
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
  absl::Time next_purge_ = absl::InfinitePast();  // used by one thread at a time

  Mutex mu_;
  CondVar wake_;
  RelayStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald

#endif  // HERALD_CORE_RELAY_H_
