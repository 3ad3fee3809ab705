#include "herald/testing/in_memory_outbox_store.h"

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/testing/event_matchers.h"
#include "herald/testing/fake_clock.h"
#include "herald/testing/mocks.h"
#include "herald/testing/status_matchers.h"

namespace herald::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

Envelope Event(std::string key, std::string id = "") {
  static std::atomic<int> counter{0};
  Envelope e;
  e.id = id.empty() ? "id-" + std::to_string(counter.fetch_add(1)) : std::move(id);
  e.type = "thing.happened";
  e.topic = "things";
  e.key = std::move(key);
  e.payload = "{}";
  return e;
}

std::vector<int64_t> Sequences(const std::vector<OutboxRecord>& rows) {
  std::vector<int64_t> out;
  for (const OutboxRecord& r : rows) out.push_back(r.sequence);
  return out;
}

// Commits `envelopes` in one transaction; returns their sequences.
void CommitAll(InMemoryOutboxStore& store, const std::vector<Envelope>& envelopes) {
  auto tx = store.Begin();
  ASSERT_THAT(tx, IsOk());
  for (const Envelope& e : envelopes) ASSERT_THAT(store.Append(**tx, e), IsOk());
  ASSERT_THAT((*tx)->Commit(), IsOk());
}

class InMemoryOutboxStoreTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  InMemoryOutboxStore store_{clock_};
};

TEST_F(InMemoryOutboxStoreTest, AppendIsInvisibleUntilCommit) {
  auto tx = store_.Begin();
  ASSERT_THAT(tx, IsOk());
  ASSERT_THAT(store_.Append(**tx, Event("k")), IsOk());
  EXPECT_THAT(store_.FetchPendingBatch({}), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(store_.Pending(), IsEmpty());
  ASSERT_THAT((*tx)->Commit(), IsOk());
  EXPECT_THAT(store_.FetchPendingBatch({}), IsOkAndHolds(SizeIs(1)));
}

TEST_F(InMemoryOutboxStoreTest, RollbackAndDestructionLeaveNothing) {
  {
    auto tx = store_.Begin();
    ASSERT_THAT(store_.Append(**tx, Event("k")), IsOk());
    ASSERT_THAT((*tx)->Rollback(), IsOk());
    EXPECT_THAT((*tx)->Commit(), StatusIs(absl::StatusCode::kFailedPrecondition));
  }
  {
    auto tx = store_.Begin();
    ASSERT_THAT(store_.Append(**tx, Event("k")), IsOk());
  }  // destroyed open: rolled back
  EXPECT_THAT(store_.Rows(), IsEmpty());
  EXPECT_THAT(store_.Stats(), IsOkAndHolds(::testing::Field(&OutboxStats::pending, 0)));
}

TEST_F(InMemoryOutboxStoreTest, AppendValidatesTransactionAndEnvelope) {
  MockTransaction foreign;
  EXPECT_THAT(store_.Append(foreign, Event("k")), StatusIs(absl::StatusCode::kInvalidArgument));
  InMemoryOutboxStore other;
  auto other_tx = other.Begin();
  EXPECT_THAT(store_.Append(**other_tx, Event("k")), StatusIs(absl::StatusCode::kInvalidArgument));

  auto tx = store_.Begin();
  Envelope no_type = Event("k");
  no_type.type.clear();
  EXPECT_THAT(store_.Append(**tx, no_type), StatusIs(absl::StatusCode::kInvalidArgument));
  Envelope no_topic = Event("k");
  no_topic.topic.clear();
  EXPECT_THAT(store_.Append(**tx, no_topic), StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_THAT((*tx)->Commit(), IsOk());
  EXPECT_THAT(store_.Append(**tx, Event("k")), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(InMemoryOutboxStoreTest, DuplicateIdsAreRejected) {
  CommitAll(store_, {Event("k", "dup")});
  auto tx = store_.Begin();
  EXPECT_THAT(store_.Append(**tx, Event("k", "dup")), StatusIs(absl::StatusCode::kAlreadyExists));
  ASSERT_THAT(store_.Append(**tx, Event("k", "twice")), IsOk());
  EXPECT_THAT(store_.Append(**tx, Event("k", "twice")), StatusIs(absl::StatusCode::kAlreadyExists));
  // Two open transactions with one id: the second commit loses.
  auto a = store_.Begin();
  auto b = store_.Begin();
  ASSERT_THAT(store_.Append(**a, Event("k", "race")), IsOk());
  ASSERT_THAT(store_.Append(**b, Event("k", "race")), IsOk());
  EXPECT_THAT((*a)->Commit(), IsOk());
  EXPECT_THAT((*b)->Commit(), StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST_F(InMemoryOutboxStoreTest, EmptyIdGetsAUuidV7) {
  Envelope e = Event("k");
  e.id.clear();
  CommitAll(store_, {e});
  ASSERT_THAT(store_.Rows(), SizeIs(1));
  EXPECT_TRUE(IsUuidV7(store_.Rows()[0].record.envelope.id));
}

TEST_F(InMemoryOutboxStoreTest, CommitStampsSequenceAndTime) {
  CommitAll(store_, {Event("a"), Event("b")});
  clock_.Advance(absl::Seconds(5));
  CommitAll(store_, {Event("c")});
  std::vector<OutboxRow> rows = store_.Rows();
  ASSERT_THAT(rows, SizeIs(3));
  EXPECT_EQ(rows[0].record.sequence, 1);
  EXPECT_EQ(rows[2].record.sequence, 3);
  EXPECT_EQ(rows[0].record.created_at, FakeClock::DefaultStart());
  EXPECT_EQ(rows[2].record.created_at, FakeClock::DefaultStart() + absl::Seconds(5));
  EXPECT_EQ(rows[0].record.attempts, 0);
}

TEST_F(InMemoryOutboxStoreTest, FetchPendingReturnsSequenceOrderUpToLimitWithoutChangingRows) {
  CommitAll(store_, {Event("a"), Event("b"), Event("c"), Event("d")});
  EXPECT_THAT(store_.FetchPendingBatch({.limit = 3}),
              IsOkAndHolds(::testing::ResultOf(Sequences, ElementsAre(1, 2, 3))));
  EXPECT_THAT(store_.FetchPendingBatch({.limit = 3}),
              IsOkAndHolds(::testing::ResultOf(Sequences, ElementsAre(1, 2, 3))));
  ASSERT_THAT(store_.MarkPublished(std::vector<int64_t>{1, 2}), IsOk());
  EXPECT_THAT(store_.FetchPendingBatch({}), IsOkAndHolds(::testing::ResultOf(Sequences, ElementsAre(3, 4))));
}

TEST_F(InMemoryOutboxStoreTest, FetchPendingValidatesOptions) {
  EXPECT_THAT(store_.FetchPendingBatch({.limit = 0}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_.FetchPendingBatch({.shard = 2, .shard_count = 2}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_.FetchPendingBatch({.shard = -1, .shard_count = 2}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_.FetchPendingBatch({.shard_count = 0}), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(InMemoryOutboxStoreTest, BackingOffRowBlocksLaterRowsOfItsKeyOnly) {
  CommitAll(store_, {Event("k1"), Event("k2"), Event("k1"), Event(""), Event("k2")});
  ASSERT_THAT(store_.MarkFailed(1, "broker down", clock_.Now() + absl::Seconds(10), false), IsOk());
  // Row 3 (k1) waits for row 1; k2 and keyless rows go on.
  EXPECT_THAT(store_.FetchPendingBatch({}), IsOkAndHolds(::testing::ResultOf(Sequences, ElementsAre(2, 4, 5))));
  clock_.Advance(absl::Seconds(10));
  EXPECT_THAT(store_.FetchPendingBatch({}), IsOkAndHolds(::testing::ResultOf(Sequences, ElementsAre(1, 2, 3, 4, 5))));
  std::vector<OutboxRow> rows = store_.Rows();
  EXPECT_EQ(rows[0].record.attempts, 1);
  EXPECT_EQ(rows[0].record.last_error, "broker down");
}

TEST_F(InMemoryOutboxStoreTest, LimitCutBlocksLaterRowsOfTheKey) {
  CommitAll(store_, {Event("a"), Event("b"), Event("a")});
  EXPECT_THAT(store_.FetchPendingBatch({.limit = 1}), IsOkAndHolds(::testing::ResultOf(Sequences, ElementsAre(1))));
}

TEST_F(InMemoryOutboxStoreTest, KeylessRowsDoNotBlockEachOther) {
  CommitAll(store_, {Event(""), Event(""), Event("")});
  ASSERT_THAT(store_.MarkFailed(1, "x", clock_.Now() + absl::Hours(1), true), IsOk());
  EXPECT_THAT(store_.FetchPendingBatch({}), IsOkAndHolds(::testing::ResultOf(Sequences, ElementsAre(2, 3))));
}

TEST_F(InMemoryOutboxStoreTest, ParkedRowBlocksItsKeyUntilRetried) {
  CommitAll(store_, {Event("k"), Event("k"), Event("other")});
  ASSERT_THAT(store_.MarkFailed(1, "poison", clock_.Now(), true), IsOk());
  EXPECT_THAT(store_.FetchPendingBatch({}), IsOkAndHolds(::testing::ResultOf(Sequences, ElementsAre(3))));
  absl::StatusOr<OutboxStats> stats = store_.Stats();
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->parked, 1);
  EXPECT_EQ(stats->pending, 2);
  absl::StatusOr<std::vector<OutboxRecord>> parked = store_.ListParked(10);
  ASSERT_THAT(parked, IsOkAndHolds(SizeIs(1)));
  EXPECT_EQ((*parked)[0].last_error, "poison");
  EXPECT_EQ((*parked)[0].attempts, 1);

  EXPECT_THAT(store_.RetryParked({}), IsOkAndHolds(1));
  EXPECT_THAT(store_.FetchPendingBatch({}), IsOkAndHolds(::testing::ResultOf(Sequences, ElementsAre(1, 2, 3))));
  EXPECT_EQ(store_.Rows()[0].record.attempts, 0);
  EXPECT_THAT(store_.ListParked(10), IsOkAndHolds(IsEmpty()));
}

TEST_F(InMemoryOutboxStoreTest, RetryParkedSelectedSequencesOnly) {
  CommitAll(store_, {Event("a"), Event("b"), Event("c")});
  for (int64_t s : {1, 2}) ASSERT_THAT(store_.MarkFailed(s, "x", clock_.Now(), true), IsOk());
  EXPECT_THAT(store_.RetryParked(std::vector<int64_t>{2, 3, 99}), IsOkAndHolds(1));
  EXPECT_THAT(store_.ListParked(10), IsOkAndHolds(::testing::ResultOf(Sequences, ElementsAre(1))));
  EXPECT_THAT(store_.ListParked(0), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(InMemoryOutboxStoreTest, MarkFailedUnknownSequenceIsNotFound) {
  EXPECT_THAT(store_.MarkFailed(7, "x", clock_.Now(), false), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_.MarkPublished(std::vector<int64_t>{7}), IsOk());  // ignored
}

TEST_F(InMemoryOutboxStoreTest, ShardsPartitionKeysStably) {
  std::vector<Envelope> events;
  for (int i = 0; i < 40; ++i) events.push_back(Event("key-" + std::to_string(i % 10)));
  CommitAll(store_, events);
  std::set<int64_t> seen;
  for (int shard = 0; shard < 3; ++shard) {
    absl::StatusOr<std::vector<OutboxRecord>> batch = store_.FetchPendingBatch({.shard = shard, .shard_count = 3});
    ASSERT_THAT(batch, IsOk());
    for (const OutboxRecord& r : *batch) {
      EXPECT_EQ(ShardOf(r.envelope.key, 3), shard);
      EXPECT_TRUE(seen.insert(r.sequence).second) << "row in two shards";
    }
  }
  EXPECT_EQ(seen.size(), 40u);
  EXPECT_EQ(ShardOf("key-1", 1), 0);
  EXPECT_EQ(ShardOf("key-1", 7), ShardOf("key-1", 7));
}

TEST_F(InMemoryOutboxStoreTest, StatsReportLag) {
  EXPECT_THAT(store_.Stats(), IsOkAndHolds(::testing::Field(&OutboxStats::oldest_pending_age, absl::ZeroDuration())));
  CommitAll(store_, {Event("a")});
  clock_.Advance(absl::Seconds(30));
  CommitAll(store_, {Event("b")});
  clock_.Advance(absl::Seconds(5));
  EXPECT_THAT(store_.Stats(), IsOkAndHolds(::testing::Field(&OutboxStats::oldest_pending_age, absl::Seconds(35))));
  ASSERT_THAT(store_.MarkPublished(std::vector<int64_t>{1}), IsOk());
  EXPECT_THAT(store_.Stats(), IsOkAndHolds(::testing::Field(&OutboxStats::oldest_pending_age, absl::Seconds(5))));
}

TEST_F(InMemoryOutboxStoreTest, PurgeDeletesOldestPublishedFirstWithinLimit) {
  CommitAll(store_, {Event("a"), Event("b"), Event("c"), Event("d")});
  ASSERT_THAT(store_.MarkPublished(std::vector<int64_t>{2}), IsOk());
  clock_.Advance(absl::Seconds(1));
  ASSERT_THAT(store_.MarkPublished(std::vector<int64_t>{1, 3}), IsOk());
  clock_.Advance(absl::Seconds(1));
  EXPECT_THAT(store_.PurgePublished(clock_.Now() - absl::Seconds(2), 10), IsOkAndHolds(0));
  EXPECT_THAT(store_.PurgePublished(clock_.Now(), 1), IsOkAndHolds(1));
  EXPECT_THAT(store_.Published(), ElementsAre(HasType("thing.happened"), HasType("thing.happened")));
  EXPECT_EQ(store_.Rows()[0].record.sequence, 1);  // row 2 (published first) went first
  EXPECT_THAT(store_.PurgePublished(clock_.Now(), 10), IsOkAndHolds(2));
  EXPECT_THAT(store_.Rows(), SizeIs(1));  // the unpublished row stays
  EXPECT_THAT(store_.PurgePublished(clock_.Now(), 0), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(InMemoryOutboxStoreTest, FaultInjection) {
  CommitAll(store_, {Event("a")});
  store_.FailNextFetches(1, absl::UnavailableError("db down"));
  EXPECT_THAT(store_.FetchPendingBatch({}), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store_.FetchPendingBatch({}), IsOkAndHolds(SizeIs(1)));

  store_.FailNextMarks(2, absl::UnavailableError("db down"));
  EXPECT_THAT(store_.MarkPublished(std::vector<int64_t>{1}), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store_.MarkFailed(1, "x", clock_.Now(), true), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_FALSE(store_.Rows()[0].published);
  EXPECT_FALSE(store_.Rows()[0].parked);
  EXPECT_THAT(store_.MarkPublished(std::vector<int64_t>{1}), IsOk());
  EXPECT_TRUE(store_.Rows()[0].published);

  store_.FailNextCommits(1, absl::AbortedError("serialization failure"));
  auto tx = store_.Begin();
  ASSERT_THAT(store_.Append(**tx, Event("b")), IsOk());
  EXPECT_THAT((*tx)->Commit(), StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(store_.Rows(), SizeIs(1));
}

TEST_F(InMemoryOutboxStoreTest, LeasesAreExclusiveAndReleasedOnDestruction) {
  absl::StatusOr<std::unique_ptr<Lease>> first = store_.TryAcquireLease("relay");
  ASSERT_THAT(first, IsOk());
  EXPECT_THAT(store_.TryAcquireLease("relay"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store_.TryAcquireLease("relay-shard-1"), IsOk());  // temporary: released at once
  EXPECT_THAT((*first)->Check(), IsOk());
  first->reset();
  absl::StatusOr<std::unique_ptr<Lease>> second = store_.TryAcquireLease("relay");
  ASSERT_THAT(second, IsOk());
  store_.RevokeLease("relay");
  EXPECT_THAT((*second)->Check(), StatusIs(absl::StatusCode::kAborted));
  absl::StatusOr<std::unique_ptr<Lease>> third = store_.TryAcquireLease("relay");
  ASSERT_THAT(third, IsOk());
  second->reset();  // the old holder's release must not free the new holder's lease
  EXPECT_THAT((*third)->Check(), IsOk());
  EXPECT_THAT(store_.TryAcquireLease("relay"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store_.TryAcquireLease(""), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(InMemoryOutboxStoreTest, WaitForWorkWakesOnCommit) {
  // Pending work from before the wait: returns at once.
  CommitAll(store_, {Event("a")});
  EXPECT_THAT(store_.WaitForWork(absl::Hours(1)), IsOk());
  ASSERT_THAT(store_.FetchPendingBatch({}), IsOk());  // consumes the signal
  std::thread writer([&] { CommitAll(store_, {Event("b")}); });
  EXPECT_THAT(store_.WaitForWork(absl::Hours(1)), IsOk());  // would hang without the wake-up
  writer.join();
}

TEST_F(InMemoryOutboxStoreTest, WaitForWorkTimesOutAndInterruptWakes) {
  EXPECT_THAT(store_.WaitForWork(absl::Milliseconds(10)), IsOk());
  std::thread waker([&] { store_.Interrupt(); });
  EXPECT_THAT(store_.WaitForWork(absl::Hours(1)), IsOk());
  waker.join();
}

TEST_F(InMemoryOutboxStoreTest, InboxMarksAreTransactional) {
  {
    auto tx = store_.Begin();
    EXPECT_THAT(store_.MarkProcessed(**tx, "reader", "e1"), IsOkAndHolds(true));
    EXPECT_THAT(store_.MarkProcessed(**tx, "reader", "e1"), IsOkAndHolds(false));
  }  // rolled back
  EXPECT_FALSE(store_.WasProcessed("reader", "e1"));
  auto tx = store_.Begin();
  EXPECT_THAT(store_.MarkProcessed(**tx, "reader", "e1"), IsOkAndHolds(true));
  ASSERT_THAT((*tx)->Commit(), IsOk());
  EXPECT_TRUE(store_.WasProcessed("reader", "e1"));
  auto again = store_.Begin();
  EXPECT_THAT(store_.MarkProcessed(**again, "reader", "e1"), IsOkAndHolds(false));
  EXPECT_THAT(store_.MarkProcessed(**again, "auditor", "e1"), IsOkAndHolds(true));  // per consumer
  EXPECT_THAT(store_.MarkProcessed(**again, "", "e1"), StatusIs(absl::StatusCode::kInvalidArgument));
  MockTransaction foreign;
  EXPECT_THAT(store_.MarkProcessed(foreign, "reader", "e2"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(InMemoryOutboxStoreTest, ConcurrentInboxMarksOneWins) {
  auto a = store_.Begin();
  auto b = store_.Begin();
  EXPECT_THAT(store_.MarkProcessed(**a, "reader", "e1"), IsOkAndHolds(true));
  EXPECT_THAT(store_.MarkProcessed(**b, "reader", "e1"), IsOkAndHolds(true));
  EXPECT_THAT((*a)->Commit(), IsOk());
  EXPECT_THAT((*b)->Commit(), StatusIs(absl::StatusCode::kAborted));
}

TEST_F(InMemoryOutboxStoreTest, InboxPurgeRemovesOldEntries) {
  for (std::string id : {"e1", "e2", "e3"}) {
    auto tx = store_.Begin();
    ASSERT_THAT(store_.MarkProcessed(**tx, "reader", id), IsOk());
    ASSERT_THAT((*tx)->Commit(), IsOk());
    clock_.Advance(absl::Hours(1));
  }
  EXPECT_THAT(store_.PurgeProcessed(FakeClock::DefaultStart() + absl::Minutes(90), 10), IsOkAndHolds(2));
  EXPECT_FALSE(store_.WasProcessed("reader", "e1"));
  EXPECT_TRUE(store_.WasProcessed("reader", "e3"));
  EXPECT_THAT(store_.PurgeProcessed(clock_.Now(), 0), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(InMemoryOutboxStoreTest, TransactionMayOutliveTheStore) {
  std::unique_ptr<Transaction> tx;
  {
    InMemoryOutboxStore store;
    tx = *store.Begin();
    ASSERT_THAT(store.Append(*tx, Event("k")), IsOk());
  }
  EXPECT_THAT(tx->Commit(), IsOk());
}

TEST_F(InMemoryOutboxStoreTest, ConcurrentWritersGetUniqueIncreasingSequences) {
  constexpr int kThreads = 4, kPerThread = 100;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto tx = store_.Begin();
        EXPECT_THAT(store_.Append(**tx, Event("k" + std::to_string(t))), IsOk());
        EXPECT_THAT((*tx)->Commit(), IsOk());
      }
    });
  }
  std::thread reader([&] {
    for (int i = 0; i < 50; ++i) (void)store_.FetchPendingBatch({.limit = 10});
  });
  for (auto& t : threads) t.join();
  reader.join();
  std::vector<OutboxRow> rows = store_.Rows();
  ASSERT_THAT(rows, SizeIs(kThreads * kPerThread));
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(rows[i].record.sequence, static_cast<int64_t>(i + 1));
}

}  // namespace
}  // namespace herald::testing
