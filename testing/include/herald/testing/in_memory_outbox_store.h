// herald/testing/in_memory_outbox_store.h: the whole outbox and inbox in
// memory, honouring transactions, for unit tests of writers, handlers and the
// relay.
//
//   herald::testing::FakeClock clock;
//   herald::testing::InMemoryOutboxStore store(clock);
//   {
//     auto tx = store.Begin().value();
//     ASSERT_THAT(store.Append(*tx, CustomerEvent{.customer_id = "cust-1"}), IsOk());
//     // destroyed without Commit: rolled back, nothing was written
//   }
//   auto tx = store.Begin().value();
//   ASSERT_THAT(store.Append(*tx, CustomerEvent{.customer_id = "cust-1"}), IsOk());
//   ASSERT_THAT(tx->Commit(), IsOk());
//   EXPECT_THAT(herald::testing::DrainOutbox(store, bus), IsOkAndHolds(1));
//
// Behaviour (the OutboxStore contract of herald/core/outbox.h):
// - Transactions: Append and MarkProcessed inside a Transaction are invisible
//   to everything else until Commit, and gone after Rollback or destruction.
//   Commit gives the rows increasing sequences in append order, stamps
//   created_at with the clock, and wakes WaitForWork. A transaction from
//   another store is kInvalidArgument; a committed or rolled-back one
//   kFailedPrecondition. An event id already in the outbox is kAlreadyExists
//   (at Append, or at Commit when a concurrent transaction took it first);
//   an empty id is replaced by a new UUIDv7. Empty type or topic, or a
//   schema_version below 1, is kInvalidArgument. Headers, subject,
//   dataschema and extensions go through EncodeOutboxHeaders and
//   DecodeOutboxHeaders (outbox.h) as a SQL store's headers column does: a
//   bad extension is kInvalidArgument, and an application header named
//   ce_* is not kept.
// - FetchPendingBatch walks unpublished rows in sequence order and returns those
//   that are available (available time <= now, not parked) and in the
//   requested shard, at most `limit`. A row is left out when an earlier
//   unpublished row of its key is not in the batch (it is parked, not yet
//   available, or beyond the limit): so a parked or backing-off row blocks
//   every later row of its key, while several rows of one key that are all
//   ready come in one batch, in order (the relay keeps their order; see
//   relay.h). Rows with an empty key never block each other. Shards: a row
//   belongs to shard ShardOf(key, shard_count).
// - MarkPublished ignores unknown or already published sequences. MarkFailed
//   on an unknown sequence is kNotFound. RetryParked resets attempts and makes
//   rows available now. SkipParked records the skip as OutboxStore says
//   (published and skipped, parked kept, last_error the skip note).
//   AssignKey fills only empty keys of unpublished rows. PurgePublished
//   deletes the oldest published (or skipped) rows first. Bad limits / shard numbers are kInvalidArgument.
// - Inbox: MarkProcessed is true the first time (consumer, event id) is seen
//   by a committed transaction or earlier in the same transaction. When two
//   open transactions record the same id, the second Commit fails with
//   kAborted (like a unique-key violation under serializable isolation); the
//   caller retries and then sees false.
// - Leases: TryAcquireLease is kUnavailable while another Lease of the name
//   lives; destroying the Lease releases it. RevokeLease makes the holder's
//   Check() return kAborted (a lost lease) and frees the name.
//
// Transactions and leases keep the store's data alive (shared), so they may
// outlive the store object; no operation blocks except WaitForWork.
//
// Thread-safety: every method may be called from any thread; a Transaction
// belongs to one thread at a time.
#ifndef HERALD_TESTING_IN_MEMORY_OUTBOX_STORE_H_
#define HERALD_TESTING_IN_MEMORY_OUTBOX_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "herald/core/clock.h"
#include "herald/core/inbox.h"
#include "herald/core/outbox.h"

namespace herald::testing {

// The shard of `key` among `shard_count` (FNV-1a 64 of the key's bytes,
// modulo the count). Stable across runs and platforms.
int ShardOf(std::string_view key, int shard_count);

// One row as a test sees it (InMemoryOutboxStore::Rows).
struct OutboxRow {
  OutboxRecord record;
  bool published = false;  // delivered, or skipped
  bool parked = false;     // parked; stays true on a skipped row
  bool skipped = false;    // skipped by SkipParked (published is true too)
  absl::Time available_at = absl::UnixEpoch();
  std::optional<absl::Time> published_at;
};

class InMemoryOutboxStore : public herald::OutboxStore, public herald::Inbox {
 public:
  // `clock` stamps created/published times and decides availability; it
  // must outlive the store and its transactions.
  explicit InMemoryOutboxStore(const Clock& clock = SystemClock());
  ~InMemoryOutboxStore() override;
  InMemoryOutboxStore(const InMemoryOutboxStore&) = delete;
  InMemoryOutboxStore& operator=(const InMemoryOutboxStore&) = delete;

  using OutboxStore::Append;

  // ---- OutboxStore and Inbox (see the file comment) ----
  absl::StatusOr<std::unique_ptr<Transaction>> Begin() override;
  absl::Status Append(Transaction& tx, const Envelope& envelope) override;
  absl::StatusOr<std::vector<OutboxRecord>> FetchPendingBatch(const PendingBatchOptions& options) override;
  absl::Status MarkPublished(absl::Span<const int64_t> sequences) override;
  absl::Status MarkFailed(int64_t sequence, std::string_view error, absl::Time retry_at, bool park) override;
  absl::StatusOr<int64_t> RetryParked(absl::Span<const int64_t> sequences) override;
  absl::StatusOr<int64_t> SkipParked(absl::Span<const int64_t> sequences, std::string_view reason) override;
  absl::StatusOr<int64_t> AssignKey(absl::Span<const int64_t> sequences, std::string_view key) override;
  absl::StatusOr<std::vector<std::string>> KeysWithEarlierRows(absl::Span<const KeyPosition> positions,
                                                               absl::Span<const int64_t> exclude) override;
  absl::StatusOr<int64_t> PurgePublished(absl::Time before, int limit) override;
  absl::StatusOr<OutboxStats> Stats() override;
  absl::StatusOr<std::vector<OutboxRecord>> ListParked(int limit) override;
  // Returns at once when rows were committed since the last FetchPendingBatch, or
  // an Interrupt came since the last WaitForWork; otherwise blocks (real
  // time) until one of those or `timeout`.
  absl::Status WaitForWork(absl::Duration timeout) override;
  void Interrupt() override;
  absl::StatusOr<std::unique_ptr<Lease>> TryAcquireLease(std::string_view name) override;
  absl::StatusOr<bool> MarkProcessed(Transaction& tx, std::string_view consumer, std::string_view event_id) override;
  absl::StatusOr<int64_t> PurgeProcessed(absl::Time before, int limit) override;

  // ---- Inspection, for assertions ----
  // Every row, published or not, in sequence order.
  std::vector<OutboxRow> Rows() const;
  // Envelopes of the unpublished rows (parked included), in sequence order.
  std::vector<Envelope> Pending() const;
  // Envelopes of the published rows not yet purged, in sequence order.
  std::vector<Envelope> Published() const;
  // Whether `consumer` has a committed inbox entry for `event_id`.
  bool WasProcessed(std::string_view consumer, std::string_view event_id) const;

  // ---- Fault injection ----
  // The next `n` FetchPendingBatch calls fail with `status`.
  void FailNextFetches(int n, absl::Status status);
  // The next `n` MarkPublished / MarkFailed calls fail with `status` and
  // change nothing.
  void FailNextMarks(int n, absl::Status status);
  // The next `n` Commits fail with `status` and roll the transaction back.
  void FailNextCommits(int n, absl::Status status);
  // The current holder of lease `name` loses it: its Check() returns
  // kAborted, and the name can be taken again. No-op when nobody holds it.
  void RevokeLease(std::string_view name);

  struct State;  // shared with transactions and leases

 private:
  std::shared_ptr<State> state_;
};

}  // namespace herald::testing

#endif  // HERALD_TESTING_IN_MEMORY_OUTBOX_STORE_H_
