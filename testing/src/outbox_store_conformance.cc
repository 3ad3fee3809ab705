#include "herald/testing/outbox_store_conformance.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <map>
#include <set>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "herald/core/inbox.h"
#include "herald/core/relay.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/core/uuid.h"
#include "herald/core/wire.h"
#include "herald/testing/eventually.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/status_matchers.h"

namespace herald::testing {

namespace internal {
bool OutboxStoreConformanceLinked() { return true; }
}  // namespace internal

std::string OutboxStoreFactoryName(const ::testing::TestParamInfo<OutboxStoreFactory>& info) {
  return info.param.name.empty() ? herald::StrCat("store", info.index) : info.param.name;
}

std::ostream& operator<<(std::ostream& os, const OutboxStoreFactory& factory) { return os << factory.name; }

namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr absl::Duration kPatience = absl::Seconds(60);

// A unique identifier-safe name per test: "h<test>_<pid>_<counter>".
std::string UniqueName() {
  static std::atomic<int> counter{0};
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string test = info != nullptr ? info->name() : "test";
  test = test.substr(0, test.find('/'));
  std::string clean;
  for (char c : test) {
    if (std::isalnum(static_cast<unsigned char>(c))) clean.push_back(static_cast<char>(std::tolower(c)));
    if (clean.size() >= 20) break;
  }
  return herald::StrCat("h", clean, "_", static_cast<int>(getpid()), "_", counter.fetch_add(1));
}

std::vector<int64_t> Sequences(const std::vector<OutboxRecord>& records) {
  std::vector<int64_t> out;
  for (const OutboxRecord& r : records) out.push_back(r.sequence);
  return out;
}

std::vector<std::string> Ids(const std::vector<OutboxRecord>& records) {
  std::vector<std::string> out;
  for (const OutboxRecord& r : records) out.push_back(r.envelope.id);
  return out;
}

const OutboxRecord* FindById(const std::vector<OutboxRecord>& records, std::string_view id) {
  for (const OutboxRecord& r : records) {
    if (r.envelope.id == id) return &r;
  }
  return nullptr;
}

// Another process's transaction type, to check Append refuses it.
class ForeignTransaction : public Transaction {
 public:
  absl::Status Commit() override { return absl::OkStatus(); }
  absl::Status Rollback() override { return absl::OkStatus(); }
};

}  // namespace

// ---- Fixture ----

void OutboxStoreConformanceTest::SetUp() {
  ASSERT_TRUE(GetParam().make) << "OutboxStoreFactory.make is required";
  unique_name_ = UniqueName();
  absl::StatusOr<std::unique_ptr<OutboxStore>> made = GetParam().make(unique_name_);
  ASSERT_THAT(made, IsOk());
  store_ = *std::move(made);
}

void OutboxStoreConformanceTest::TearDown() {
  second_store_.reset();
  store_.reset();
  if (GetParam().drop && !unique_name_.empty()) GetParam().drop(unique_name_);
}

void OutboxStoreConformanceTest::Reopen() {
  if (!GetParam().supports_reopen) return;
  second_store_.reset();
  store_.reset();
  absl::StatusOr<std::unique_ptr<OutboxStore>> made = GetParam().make(unique_name_);
  ASSERT_THAT(made, IsOk());
  store_ = *std::move(made);
}

OutboxStore& OutboxStoreConformanceTest::SecondStore() {
  if (!GetParam().supports_reopen) return *store_;
  if (second_store_ == nullptr) {
    absl::StatusOr<std::unique_ptr<OutboxStore>> made = GetParam().make(unique_name_);
    EXPECT_THAT(made, IsOk());
    if (!made.ok()) return *store_;
    second_store_ = *std::move(made);
  }
  return *second_store_;
}

Envelope OutboxStoreConformanceTest::MakeTestEnvelope(std::string_view topic, std::string_view key, int n) {
  Envelope e;
  e.time = absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
  e.id = NewUuidV7(e.time);
  e.type = "conformance.tested";
  e.topic = std::string(topic);
  e.key = std::string(key);
  e.source = "conformance-suite";
  e.headers = {{"correlation-id", herald::StrCat("c-", n)}, {"x-dup", "1"}, {"x-dup", "2 \"quoted\""}};
  e.payload = herald::StrCat("{\"n\":", n, "}");
  return e;
}

absl::Status OutboxStoreConformanceTest::AppendCommitted(const std::vector<Envelope>& envelopes) {
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<Transaction> tx, store_->Begin());
  for (const Envelope& e : envelopes) HERALD_RETURN_IF_ERROR(store_->Append(*tx, e));
  return tx->Commit();
}

std::vector<OutboxRecord> OutboxStoreConformanceTest::FetchAndMarkAll(int batch) {
  std::vector<OutboxRecord> all;
  for (int round = 0; round < 100000; ++round) {
    absl::StatusOr<std::vector<OutboxRecord>> claimed = store_->FetchPendingBatch({.limit = batch});
    EXPECT_THAT(claimed, IsOk());
    if (!claimed.ok() || claimed->empty()) break;
    EXPECT_THAT(store_->MarkPublished(Sequences(*claimed)), IsOk());
    for (OutboxRecord& r : *claimed) all.push_back(std::move(r));
  }
  return all;
}

// ---- Writer side ----

TEST_P(OutboxStoreConformanceTest, RollbackLeavesNothing) {
  {
    absl::StatusOr<std::unique_ptr<Transaction>> tx = store().Begin();
    ASSERT_THAT(tx, IsOk());
    ASSERT_THAT(store().Append(**tx, MakeTestEnvelope("t", "k", 1)), IsOk());
    ASSERT_THAT(store().Append(**tx, MakeTestEnvelope("t", "", 2)), IsOk());
    ASSERT_THAT((*tx)->Rollback(), IsOk());
    // An ended transaction takes no more rows.
    EXPECT_THAT(store().Append(**tx, MakeTestEnvelope("t", "k", 3)), StatusIs(absl::StatusCode::kFailedPrecondition));
  }
  {
    absl::StatusOr<std::unique_ptr<Transaction>> tx = store().Begin();
    ASSERT_THAT(tx, IsOk());
    ASSERT_THAT(store().Append(**tx, MakeTestEnvelope("t", "k", 4)), IsOk());
    // Destroyed without Commit: rolled back.
  }
  EXPECT_THAT(store().FetchPendingBatch({.limit = 100}), IsOkAndHolds(IsEmpty()));
  absl::StatusOr<OutboxStats> stats = store().Stats();
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->pending, 0);
  EXPECT_EQ(stats->parked, 0);
}

TEST_P(OutboxStoreConformanceTest, AppendRefusesAForeignTransaction) {
  ForeignTransaction foreign;
  EXPECT_THAT(store().Append(foreign, MakeTestEnvelope("t", "k", 1)), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(OutboxStoreConformanceTest, CommitOrderIsRelayOrderAndEnvelopesRoundTrip) {
  std::vector<Envelope> first = {MakeTestEnvelope("orders", "a", 1), MakeTestEnvelope("orders", "", 2)};
  std::vector<Envelope> second = {MakeTestEnvelope("customers", "b", 3)};
  std::vector<Envelope> third = {MakeTestEnvelope("orders", "a", 4), MakeTestEnvelope("orders", "b", 5),
                                 MakeTestEnvelope("orders", "", 6)};
  third[1].content_type = "application/vnd.test+json";
  third[1].schema_version = 3;
  third[2].headers.clear();
  ASSERT_THAT(AppendCommitted(first), IsOk());
  ASSERT_THAT(AppendCommitted(second), IsOk());
  ASSERT_THAT(AppendCommitted(third), IsOk());

  std::vector<Envelope> expected = first;
  expected.insert(expected.end(), second.begin(), second.end());
  expected.insert(expected.end(), third.begin(), third.end());
  std::vector<OutboxRecord> claimed = FetchAndMarkAll(100);
  std::vector<Envelope> got;
  for (const OutboxRecord& r : claimed) got.push_back(r.envelope);
  EXPECT_THAT(got, ElementsAreArray(expected));
  for (size_t i = 1; i < claimed.size(); ++i) EXPECT_LT(claimed[i - 1].sequence, claimed[i].sequence);
  for (const OutboxRecord& r : claimed) EXPECT_EQ(r.attempts, 0);
}

TEST_P(OutboxStoreConformanceTest, ConcurrentWritersEveryEventClaimedOnceInWriterOrder) {
  constexpr int kWriters = 4;
  constexpr int kPerWriter = 200;
  std::atomic<int> writers_done{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int n = 0; n < kPerWriter; ++n) {
        absl::Status s = AppendCommitted({MakeTestEnvelope("concurrent", herald::StrCat("writer-", w), n)});
        // A busy database may refuse a transaction; the writer retries it.
        while (IsRetryable(s)) s = AppendCommitted({MakeTestEnvelope("concurrent", herald::StrCat("writer-", w), n)});
        EXPECT_THAT(s, IsOk());
      }
      writers_done.fetch_add(1);
    });
  }
  // A relay-like claimer runs alongside the writers.
  std::vector<OutboxRecord> claimed;
  absl::Time deadline = absl::Now() + kPatience;
  while (absl::Now() < deadline) {
    bool writers_finished = writers_done.load() == kWriters;
    absl::StatusOr<std::vector<OutboxRecord>> batch = store().FetchPendingBatch({.limit = 37});
    if (!batch.ok() && IsRetryable(batch.status())) continue;
    ASSERT_THAT(batch, IsOk());
    if (batch->empty()) {
      if (writers_finished) break;
      (void)store().WaitForWork(absl::Milliseconds(20));
      continue;
    }
    absl::Status marked = store().MarkPublished(Sequences(*batch));
    while (IsRetryable(marked)) marked = store().MarkPublished(Sequences(*batch));
    ASSERT_THAT(marked, IsOk());
    for (OutboxRecord& r : *batch) claimed.push_back(std::move(r));
  }
  for (std::thread& t : writers) t.join();

  ASSERT_EQ(claimed.size(), static_cast<size_t>(kWriters * kPerWriter));
  std::set<std::string> ids;
  std::map<std::string, std::vector<int>> per_writer;
  for (const OutboxRecord& r : claimed) {
    EXPECT_TRUE(ids.insert(r.envelope.id).second) << "claimed twice: " << r.envelope;
    int n = std::stoi(r.envelope.payload.substr(5));
    per_writer[r.envelope.key].push_back(n);
  }
  ASSERT_EQ(per_writer.size(), static_cast<size_t>(kWriters));
  for (const auto& [key, ns] : per_writer) {
    std::vector<int> expected(kPerWriter);
    for (int i = 0; i < kPerWriter; ++i) expected[i] = i;
    EXPECT_EQ(ns, expected) << "order of " << key;
  }
}

// ---- Relay side ----

TEST_P(OutboxStoreConformanceTest, CrashBetweenPublishAndMarkRepublishesThatBatchOnly) {
  std::vector<Envelope> envelopes;
  for (int n = 0; n < 10; ++n) envelopes.push_back(MakeTestEnvelope("crash", n % 3 == 0 ? "" : herald::StrCat("k", n % 2), n));
  ASSERT_THAT(AppendCommitted(envelopes), IsOk());

  absl::StatusOr<std::vector<OutboxRecord>> first = store().FetchPendingBatch({.limit = 4});
  ASSERT_THAT(first, IsOk());
  ASSERT_EQ(first->size(), 4u);
  // "Published" to the bus, then the process dies before MarkPublished.
  Reopen();
  absl::StatusOr<std::vector<OutboxRecord>> again = store().FetchPendingBatch({.limit = 4});
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(Ids(*again), Ids(*first));
  ASSERT_THAT(store().MarkPublished(Sequences(*again)), IsOk());

  std::vector<OutboxRecord> rest = FetchAndMarkAll(100);
  EXPECT_EQ(rest.size(), 6u);
  for (const OutboxRecord& r : rest) EXPECT_EQ(FindById(*first, r.envelope.id), nullptr) << "published twice: " << r.envelope;
  EXPECT_THAT(store().FetchPendingBatch({.limit = 100}), IsOkAndHolds(IsEmpty()));
}

TEST_P(OutboxStoreConformanceTest, MarkPublishedHidesRowsInOneCall) {
  std::vector<Envelope> envelopes;
  for (int n = 0; n < 250; ++n) envelopes.push_back(MakeTestEnvelope("many", "", n));
  ASSERT_THAT(AppendCommitted(envelopes), IsOk());
  absl::StatusOr<std::vector<OutboxRecord>> batch = store().FetchPendingBatch({.limit = 1000});
  ASSERT_THAT(batch, IsOk());
  ASSERT_EQ(batch->size(), 250u);
  ASSERT_THAT(store().MarkPublished(Sequences(*batch)), IsOk());
  EXPECT_THAT(store().FetchPendingBatch({.limit = 1000}), IsOkAndHolds(IsEmpty()));
  // Marking again (a duplicate report) is harmless.
  EXPECT_THAT(store().MarkPublished(Sequences(*batch)), IsOk());
  EXPECT_THAT(store().MarkPublished({}), IsOk());
}

// DeletePublished (the relay's mark with retention zero): the rows are no
// longer pending, whether the store deletes them or marks them; a repeated
// or empty call is harmless, and rows it was not given stay pending.
TEST_P(OutboxStoreConformanceTest, DeletePublishedHidesRowsInOneCallAndLeavesTheOthers) {
  std::vector<Envelope> envelopes;
  for (int n = 0; n < 250; ++n) envelopes.push_back(MakeTestEnvelope("gone", "", n));
  ASSERT_THAT(AppendCommitted(envelopes), IsOk());
  absl::StatusOr<std::vector<OutboxRecord>> batch = store().FetchPendingBatch({.limit = 200});
  ASSERT_THAT(batch, IsOk());
  ASSERT_EQ(batch->size(), 200u);
  ASSERT_THAT(store().DeletePublished(Sequences(*batch)), IsOk());
  absl::StatusOr<std::vector<OutboxRecord>> rest = store().FetchPendingBatch({.limit = 1000});
  ASSERT_THAT(rest, IsOk());
  ASSERT_EQ(rest->size(), 50u);
  for (const OutboxRecord& r : *rest) EXPECT_EQ(FindById(*batch, r.envelope.id), nullptr) << r.envelope;
  EXPECT_THAT(store().DeletePublished(Sequences(*batch)), IsOk());
  EXPECT_THAT(store().DeletePublished({}), IsOk());
  ASSERT_THAT(store().DeletePublished(Sequences(*rest)), IsOk());
  EXPECT_THAT(store().FetchPendingBatch({.limit = 1000}), IsOkAndHolds(IsEmpty()));
}

TEST_P(OutboxStoreConformanceTest, FailedRowHoldsBackOnlyItsKeyUntilRetryTime) {
  Envelope a1 = MakeTestEnvelope("fail", "a", 1);
  Envelope a2 = MakeTestEnvelope("fail", "a", 2);
  Envelope b1 = MakeTestEnvelope("fail", "b", 3);
  Envelope none = MakeTestEnvelope("fail", "", 4);
  ASSERT_THAT(AppendCommitted({a1, a2, b1, none}), IsOk());

  absl::StatusOr<std::vector<OutboxRecord>> claimed = store().FetchPendingBatch({.limit = 10});
  ASSERT_THAT(claimed, IsOk());
  const OutboxRecord* first = FindById(*claimed, a1.id);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->attempts, 0);
  int64_t a1_seq = first->sequence;

  ASSERT_THAT(store().MarkFailed(a1_seq, "broker said no", absl::Now() + absl::Hours(1), /*park=*/false), IsOk());
  claimed = store().FetchPendingBatch({.limit = 10});
  ASSERT_THAT(claimed, IsOk());
  EXPECT_EQ(FindById(*claimed, a1.id), nullptr) << "a failed row waits for its retry time";
  EXPECT_EQ(FindById(*claimed, a2.id), nullptr) << "a failed row holds back later rows of its key";
  EXPECT_NE(FindById(*claimed, b1.id), nullptr) << "other keys go on";
  EXPECT_NE(FindById(*claimed, none.id), nullptr) << "rows without a key go on";
  absl::StatusOr<OutboxStats> stats = store().Stats();
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->pending, 4);
  EXPECT_EQ(stats->parked, 0);

  // Its retry time comes (second failure, due now).
  ASSERT_THAT(store().MarkFailed(a1_seq, "still no", absl::Now() - absl::Seconds(1), false), IsOk());
  claimed = store().FetchPendingBatch({.limit = 10});
  ASSERT_THAT(claimed, IsOk());
  first = FindById(*claimed, a1.id);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->attempts, 2);
  EXPECT_EQ(first->last_error, "still no");
  EXPECT_EQ(first->envelope, a1);
  const OutboxRecord* second = FindById(*claimed, a2.id);
  if (second != nullptr) {
    EXPECT_LT(first->sequence, second->sequence);
  }

  EXPECT_THAT(store().MarkFailed(987654321, "nope", absl::Now(), false), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(OutboxStoreConformanceTest, ParkedRowShowsInStatsAndListAndRetryParkedBringsItBack) {
  Envelope a1 = MakeTestEnvelope("park", "a", 1);
  Envelope a2 = MakeTestEnvelope("park", "a", 2);
  Envelope b1 = MakeTestEnvelope("park", "b", 3);
  ASSERT_THAT(AppendCommitted({a1, a2, b1}), IsOk());
  absl::StatusOr<std::vector<OutboxRecord>> claimed = store().FetchPendingBatch({.limit = 10});
  ASSERT_THAT(claimed, IsOk());
  ASSERT_NE(FindById(*claimed, a1.id), nullptr);
  int64_t a1_seq = FindById(*claimed, a1.id)->sequence;

  ASSERT_THAT(store().MarkFailed(a1_seq, "poison message", absl::Now(), /*park=*/true), IsOk());
  absl::StatusOr<OutboxStats> stats = store().Stats();
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->parked, 1);
  EXPECT_EQ(stats->pending, 2);
  absl::StatusOr<std::vector<OutboxRecord>> parked = store().ListParked(10);
  ASSERT_THAT(parked, IsOk());
  ASSERT_EQ(parked->size(), 1u);
  EXPECT_EQ((*parked)[0].envelope, a1);
  EXPECT_EQ((*parked)[0].attempts, 1);
  EXPECT_THAT((*parked)[0].last_error, HasSubstr("poison message"));

  claimed = store().FetchPendingBatch({.limit = 10});
  ASSERT_THAT(claimed, IsOk());
  EXPECT_EQ(Ids(*claimed), std::vector<std::string>{b1.id}) << "a parked row blocks its key, only its key";
  ASSERT_THAT(store().MarkPublished(Sequences(*claimed)), IsOk());

  EXPECT_THAT(store().RetryParked({a1_seq + 1000000}), IsOkAndHolds(0));
  EXPECT_THAT(store().RetryParked({a1_seq}), IsOkAndHolds(1));
  stats = store().Stats();
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->parked, 0);
  EXPECT_EQ(stats->pending, 2);
  std::vector<OutboxRecord> rest = FetchAndMarkAll(10);
  ASSERT_EQ(Ids(rest), (std::vector<std::string>{a1.id, a2.id}));
  EXPECT_EQ(rest[0].attempts, 0) << "RetryParked resets attempts";

  // RetryParked with no sequences retries every parked row.
  Envelope c1 = MakeTestEnvelope("park", "c", 4);
  Envelope d1 = MakeTestEnvelope("park", "d", 5);
  ASSERT_THAT(AppendCommitted({c1, d1}), IsOk());
  claimed = store().FetchPendingBatch({.limit = 10});
  ASSERT_THAT(claimed, IsOk());
  ASSERT_EQ(claimed->size(), 2u);
  for (const OutboxRecord& r : *claimed) ASSERT_THAT(store().MarkFailed(r.sequence, "x", absl::Now(), true), IsOk());
  EXPECT_THAT(store().ListParked(1), IsOkAndHolds(::testing::SizeIs(1)));
  EXPECT_THAT(store().RetryParked({}), IsOkAndHolds(2));
  EXPECT_EQ(FetchAndMarkAll(10).size(), 2u);
}

// Per key, no row may be handed out before an earlier row of its key that
// failed: a middle row backing off or parked holds back every later row of
// its key, also rows committed after it failed, and only its key.
TEST_P(OutboxStoreConformanceTest, ABackingOffOrParkedMiddleRowHoldsBackEveryLaterRowOfItsKey) {
  Envelope a1 = MakeTestEnvelope("order", "a", 1);
  Envelope a2 = MakeTestEnvelope("order", "a", 2);
  Envelope b1 = MakeTestEnvelope("order", "b", 3);
  Envelope a3 = MakeTestEnvelope("order", "a", 4);
  ASSERT_THAT(AppendCommitted({a1, a2, b1, a3}), IsOk());
  absl::StatusOr<std::vector<OutboxRecord>> claimed = store().FetchPendingBatch({.limit = 10});
  ASSERT_THAT(claimed, IsOk());
  ASSERT_EQ(Ids(*claimed), (std::vector<std::string>{a1.id, a2.id, b1.id, a3.id}));
  const int64_t a1_seq = (*claimed)[0].sequence, a2_seq = (*claimed)[1].sequence, b1_seq = (*claimed)[2].sequence;
  // a1 and b1 delivered, a2 failed (a relay sent nothing after it).
  ASSERT_THAT(store().MarkPublished({a1_seq, b1_seq}), IsOk());
  ASSERT_THAT(store().MarkFailed(a2_seq, "leader moved", absl::Now() + absl::Hours(1), /*park=*/false), IsOk());

  Envelope a4 = MakeTestEnvelope("order", "a", 5);
  Envelope b2 = MakeTestEnvelope("order", "b", 6);
  ASSERT_THAT(AppendCommitted({a4, b2}), IsOk());
  claimed = store().FetchPendingBatch({.limit = 10});
  ASSERT_THAT(claimed, IsOk());
  EXPECT_EQ(Ids(*claimed), std::vector<std::string>{b2.id}) << "a3 and a4 wait behind the backing-off a2";
  ASSERT_THAT(store().MarkPublished(Sequences(*claimed)), IsOk());

  // Parked: still held back, however much time passes.
  ASSERT_THAT(store().MarkFailed(a2_seq, "too large", absl::Now() - absl::Hours(1), /*park=*/true), IsOk());
  EXPECT_THAT(store().FetchPendingBatch({.limit = 10}), IsOkAndHolds(IsEmpty()));
  absl::StatusOr<OutboxStats> stats = store().Stats();
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->parked, 1);
  EXPECT_EQ(stats->pending, 2);
}

TEST_P(OutboxStoreConformanceTest, SkipParkedReleasesTheKeyAndTouchesOnlyParkedRows) {
  Envelope a1 = MakeTestEnvelope("skip", "a", 1);
  Envelope a2 = MakeTestEnvelope("skip", "a", 2);
  Envelope b1 = MakeTestEnvelope("skip", "b", 3);
  ASSERT_THAT(AppendCommitted({a1, a2, b1}), IsOk());
  absl::StatusOr<std::vector<OutboxRecord>> claimed = store().FetchPendingBatch({.limit = 10});
  ASSERT_THAT(claimed, IsOk());
  ASSERT_EQ(claimed->size(), 3u);
  const int64_t a1_seq = (*claimed)[0].sequence, a2_seq = (*claimed)[1].sequence, b1_seq = (*claimed)[2].sequence;
  ASSERT_THAT(store().MarkFailed(a1_seq, "poison", absl::Now(), /*park=*/true), IsOk());

  EXPECT_THAT(store().SkipParked({}, "why"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store().SkipParked({a1_seq}, ""), StatusIs(absl::StatusCode::kInvalidArgument));
  // Rows that are not parked are left alone.
  EXPECT_THAT(store().SkipParked({a2_seq, b1_seq, a1_seq + 1000000}, "not parked"), IsOkAndHolds(0));
  EXPECT_THAT(store().ListParked(10), IsOkAndHolds(::testing::SizeIs(1)));

  EXPECT_THAT(store().SkipParked({a1_seq}, "operator: bad data, ticket 7"), IsOkAndHolds(1));
  EXPECT_THAT(store().SkipParked({a1_seq}, "again"), IsOkAndHolds(0)) << "a skipped row is no longer parked";
  EXPECT_THAT(store().RetryParked({a1_seq}), IsOkAndHolds(0)) << "a skipped row cannot come back";
  EXPECT_THAT(store().ListParked(10), IsOkAndHolds(IsEmpty()));
  absl::StatusOr<OutboxStats> stats = store().Stats();
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->parked, 0);
  EXPECT_EQ(stats->pending, 2);
  // The key flows again, without the skipped row.
  std::vector<OutboxRecord> rest = FetchAndMarkAll(10);
  EXPECT_EQ(Ids(rest), (std::vector<std::string>{a2.id, b1.id}));
  // The skipped row is kept until it is purged like a published row.
  EXPECT_THAT(store().PurgePublished(absl::Now() + absl::Hours(1), 10), IsOkAndHolds(::testing::Ge(2)));
}

TEST_P(OutboxStoreConformanceTest, AssignKeyOrdersKeylessRowsBehindAHeldRowOfThatKey) {
  Envelope r1 = MakeTestEnvelope("assign", "", 1);
  Envelope r2 = MakeTestEnvelope("assign", "", 2);
  Envelope r3 = MakeTestEnvelope("assign", "", 3);
  Envelope k1 = MakeTestEnvelope("assign", "k", 4);
  ASSERT_THAT(AppendCommitted({r1, r2, r3, k1}), IsOk());
  absl::StatusOr<std::vector<OutboxRecord>> claimed = store().FetchPendingBatch({.limit = 10});
  ASSERT_THAT(claimed, IsOk());
  ASSERT_EQ(claimed->size(), 4u);
  const int64_t r1_seq = (*claimed)[0].sequence, r2_seq = (*claimed)[1].sequence, k1_seq = (*claimed)[3].sequence;
  ASSERT_THAT(store().MarkFailed(r1_seq, "down", absl::Now() + absl::Hours(1), /*park=*/false), IsOk());
  EXPECT_THAT(store().AssignKey({r1_seq}, ""), StatusIs(absl::StatusCode::kInvalidArgument));
  // Only rows without a key change.
  EXPECT_THAT(store().AssignKey({r1_seq, r2_seq, k1_seq}, "derived"), IsOkAndHolds(2));
  claimed = store().FetchPendingBatch({.limit = 10});
  ASSERT_THAT(claimed, IsOk());
  EXPECT_EQ(Ids(*claimed), (std::vector<std::string>{r3.id, k1.id})) << "r2 now waits behind r1";
  EXPECT_EQ((*claimed)[1].envelope.key, "k");
  ASSERT_THAT(store().MarkPublished(Sequences(*claimed)), IsOk());
  ASSERT_THAT(store().MarkFailed(r1_seq, "down", absl::Now() - absl::Seconds(1), /*park=*/false), IsOk());
  std::vector<OutboxRecord> rest = FetchAndMarkAll(10);
  ASSERT_EQ(Ids(rest), (std::vector<std::string>{r1.id, r2.id}));
  EXPECT_EQ(rest[0].envelope.key, "derived");
  EXPECT_EQ(rest[1].envelope.key, "derived");
}

TEST_P(OutboxStoreConformanceTest, KeysWithEarlierRowsFindsKeysWithAnEarlierFailedOrParkedRow) {
  Envelope waiting = MakeTestEnvelope("earlier", "waits", 1);
  Envelope parked = MakeTestEnvelope("earlier", "parked", 2);
  Envelope done = MakeTestEnvelope("earlier", "done", 3);
  Envelope skipped = MakeTestEnvelope("earlier", "skipped", 4);
  Envelope in_batch = MakeTestEnvelope("earlier", "in-batch", 5);
  Envelope later = MakeTestEnvelope("earlier", "", 6);
  ASSERT_THAT(AppendCommitted({waiting, parked, done, skipped, in_batch, later}), IsOk());
  absl::StatusOr<std::vector<OutboxRecord>> claimed = store().FetchPendingBatch({.limit = 10});
  ASSERT_THAT(claimed, IsOk());
  ASSERT_EQ(claimed->size(), 6u);
  auto seq = [&](int i) { return (*claimed)[i].sequence; };
  ASSERT_THAT(store().MarkFailed(seq(0), "down", absl::Now() + absl::Hours(1), /*park=*/false), IsOk());
  ASSERT_THAT(store().MarkFailed(seq(1), "bad", absl::Now(), /*park=*/true), IsOk());
  ASSERT_THAT(store().MarkFailed(seq(3), "bad", absl::Now(), /*park=*/true), IsOk());
  ASSERT_THAT(store().SkipParked({seq(3)}, "operator"), IsOkAndHolds(1));
  ASSERT_THAT(store().MarkPublished({seq(2)}), IsOk());
  ASSERT_THAT(store().MarkFailed(seq(4), "down", absl::Now() + absl::Hours(1), /*park=*/false), IsOk());
  const int64_t after = seq(5);
  std::vector<KeyPosition> positions = {{"waits", after},   {"parked", after},  {"done", after},
                                        {"skipped", after}, {"in-batch", after}, {"unknown", after},
                                        {"waits", seq(0)}};
  // The row of "in-batch" is excluded (it is in the relay's batch); "waits"
  // at its own sequence has nothing earlier.
  absl::StatusOr<std::vector<std::string>> keys = store().KeysWithEarlierRows(positions, {seq(4), seq(5)});
  ASSERT_THAT(keys, IsOk());
  EXPECT_THAT(*keys, UnorderedElementsAre("waits", "parked"));
  EXPECT_THAT(store().KeysWithEarlierRows({}, {}), IsOkAndHolds(IsEmpty()));
  // Not excluded, a failed row counts.
  EXPECT_THAT(store().KeysWithEarlierRows({{"in-batch", after}}, {}), IsOkAndHolds(ElementsAre("in-batch")));
  ASSERT_THAT(store().MarkPublished({seq(5)}), IsOk());
  // Keys that need quoting in SQL or JSON are only keys.
  Envelope odd = MakeTestEnvelope("earlier", "it's \"odd\", [1]", 7);
  ASSERT_THAT(AppendCommitted({odd, MakeTestEnvelope("earlier", "", 8)}), IsOk());
  claimed = store().FetchPendingBatch({.limit = 10});
  ASSERT_THAT(claimed, IsOk());
  ASSERT_EQ(claimed->size(), 2u) << "only the two new rows are ready";
  ASSERT_THAT(store().MarkFailed((*claimed)[0].sequence, "down", absl::Now() + absl::Hours(1), false), IsOk());
  EXPECT_THAT(store().KeysWithEarlierRows({{odd.key, (*claimed)[1].sequence}}, {}),
              IsOkAndHolds(ElementsAre(odd.key)));
}

TEST_P(OutboxStoreConformanceTest, AppendRefusesASchemaVersionBelowOne) {
  for (int version : {0, -1}) {
    Envelope e = MakeTestEnvelope("version", "k", version);
    e.schema_version = version;
    absl::StatusOr<std::unique_ptr<Transaction>> tx = store().Begin();
    ASSERT_THAT(tx, IsOk());
    EXPECT_THAT(store().Append(**tx, e), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("schema_version")));
  }
  EXPECT_THAT(store().FetchPendingBatch({.limit = 10}), IsOkAndHolds(IsEmpty()));
}

// Subject, dataschema and extensions have no column of their own: they
// travel in the headers column (EncodeOutboxHeaders), and must come back
// from FetchPendingBatch, and reach a handler through the relay, intact.
TEST_P(OutboxStoreConformanceTest, CloudEventsAttributesRoundTripAndReachAHandlerThroughTheRelay) {
  Envelope with = MakeTestEnvelope("attributes", "a", 1);
  with.subject = "orders/o-1";
  with.dataschema = "https://schemas.example.com/order/v2.json";
  with.extensions = {{"region", "eu-1"}, {"tenant42", "acme \"east\" \u00e9"}};
  Envelope without_headers = MakeTestEnvelope("attributes", "b", 2);
  without_headers.headers.clear();
  without_headers.subject = "orders/o-2";
  without_headers.extensions = {{"partitionkey", "pk-2"}, {"sequence", "7"}};
  Envelope plain = MakeTestEnvelope("attributes", "", 3);
  ASSERT_THAT(AppendCommitted({with, without_headers, plain}), IsOk());

  absl::StatusOr<std::vector<OutboxRecord>> claimed = store().FetchPendingBatch({.limit = 10});
  ASSERT_THAT(claimed, IsOk());
  std::vector<Envelope> got;
  for (const OutboxRecord& r : *claimed) {
    EXPECT_EQ(r.malformed, "") << r.envelope;
    got.push_back(r.envelope);
  }
  EXPECT_THAT(got, ElementsAreArray({with, without_headers, plain}));

  // And through the relay to a handler, each envelope encodable for Kafka.
  Bus bus(std::make_unique<FakeTransport>());
  bus.transport<FakeTransport>().SetPublishHook([](const Envelope& e) { return EncodeRecord(e).status(); });
  std::vector<Envelope> handled;
  ASSERT_THAT(bus.Subscribe({.group = "attributes", .topics = {"attributes"}},
                            [&](const Message& m) {
                              handled.push_back(m.envelope);
                              return absl::OkStatus();
                            }),
              IsOk());
  OutboxRelay relay(store(), bus, {.retention = absl::Hours(1)});
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(3));
  ASSERT_EQ(handled.size(), 3u);
  EXPECT_EQ(handled[0].subject, with.subject);
  EXPECT_EQ(handled[0].dataschema, with.dataschema);
  EXPECT_EQ(handled[0].extensions, with.extensions);
  EXPECT_EQ(handled[0].headers, with.headers);
  EXPECT_EQ(handled[1].subject, without_headers.subject);
  EXPECT_EQ(handled[1].dataschema, "");
  EXPECT_EQ(handled[1].extensions, without_headers.extensions);
  EXPECT_THAT(handled[1].headers, IsEmpty());
  EXPECT_EQ(handled[2].subject, "");
  EXPECT_THAT(handled[2].extensions, IsEmpty());
}

// The headers column gives names that start with "ce_" their meaning, so
// Append refuses extensions the wire refuses, and keeps no application
// header of such a name (the envelope's field wins, as on a Kafka record).
TEST_P(OutboxStoreConformanceTest, AppendRefusesBadExtensionsAndKeepsNoHeaderNamedLikeAnAttribute) {
  for (Extensions bad : {Extensions{{"Region", "x"}}, Extensions{{"my-ext", "x"}}, Extensions{{"id", "x"}},
                         Extensions{{"region", "1"}, {"region", "2"}}}) {
    Envelope e = MakeTestEnvelope("reserved", "k", 1);
    e.extensions = bad;
    absl::StatusOr<std::unique_ptr<Transaction>> tx = store().Begin();
    ASSERT_THAT(tx, IsOk());
    EXPECT_THAT(store().Append(**tx, e), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("extension")))
        << bad.front().first;
  }
  EXPECT_THAT(store().FetchPendingBatch({.limit = 10}), IsOkAndHolds(IsEmpty()));

  Envelope e = MakeTestEnvelope("reserved", "k", 2);
  e.subject = "the subject";
  e.headers = {{"ce_subject", "a header"}, {"correlation-id", "c-2"}, {"CE_Region", "x"}};
  ASSERT_THAT(AppendCommitted({e}), IsOk());
  absl::StatusOr<std::vector<OutboxRecord>> claimed = store().FetchPendingBatch({.limit = 10});
  ASSERT_THAT(claimed, IsOk());
  ASSERT_EQ(claimed->size(), 1u);
  const Envelope& read = (*claimed)[0].envelope;
  EXPECT_EQ(read.subject, "the subject");
  EXPECT_EQ(read.headers, (Headers{{"correlation-id", "c-2"}}));
  EXPECT_THAT(read.extensions, IsEmpty());
}

TEST_P(OutboxStoreConformanceTest, PurgePublishedDeletesOnlyPublishedRowsBeforeTheCutoffAtMostLimit) {
  std::vector<Envelope> envelopes;
  for (int n = 0; n < 5; ++n) envelopes.push_back(MakeTestEnvelope("purge", "", n));
  ASSERT_THAT(AppendCommitted(envelopes), IsOk());
  absl::StatusOr<std::vector<OutboxRecord>> claimed = store().FetchPendingBatch({.limit = 3});
  ASSERT_THAT(claimed, IsOk());
  ASSERT_EQ(claimed->size(), 3u);
  ASSERT_THAT(store().MarkPublished(Sequences(*claimed)), IsOk());

  EXPECT_THAT(store().PurgePublished(absl::Now() - absl::Hours(1), 10), IsOkAndHolds(0))
      << "rows published after the cutoff stay";
  EXPECT_THAT(store().PurgePublished(absl::Now() + absl::Hours(1), 2), IsOkAndHolds(2));
  EXPECT_THAT(store().PurgePublished(absl::Now() + absl::Hours(1), 2), IsOkAndHolds(1));
  EXPECT_THAT(store().PurgePublished(absl::Now() + absl::Hours(1), 2), IsOkAndHolds(0));
  // Unpublished rows are never purged.
  std::vector<OutboxRecord> rest = FetchAndMarkAll(10);
  EXPECT_EQ(rest.size(), 2u);
}

TEST_P(OutboxStoreConformanceTest, StatsCountPendingAndTheOldestAge) {
  absl::StatusOr<OutboxStats> stats = store().Stats();
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->pending, 0);
  EXPECT_EQ(stats->oldest_pending_age, absl::ZeroDuration());
  ASSERT_THAT(AppendCommitted({MakeTestEnvelope("stats", "a", 1), MakeTestEnvelope("stats", "", 2),
                               MakeTestEnvelope("stats", "b", 3)}),
              IsOk());
  stats = store().Stats();
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->pending, 3);
  EXPECT_GE(stats->oldest_pending_age, absl::ZeroDuration());
  EXPECT_LT(stats->oldest_pending_age, absl::Hours(1));
  FetchAndMarkAll();
  stats = store().Stats();
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->pending, 0);
  EXPECT_EQ(stats->oldest_pending_age, absl::ZeroDuration());
}

TEST_P(OutboxStoreConformanceTest, SeedStyleThreeColumnInsertIsRelayedWithAGeneratedId) {
  ASSERT_TRUE(GetParam().raw_three_column_insert) << "OutboxStoreFactory.raw_three_column_insert is required";
  absl::Time before = absl::Now();
  ASSERT_THAT(GetParam().raw_three_column_insert(store(), "customer-events", "customer.created",
                                                 R"({"customer_id":"cust-42","details":"seed"})"),
              IsOk());
  ASSERT_THAT(GetParam().raw_three_column_insert(store(), "customer-events", "customer.updated",
                                                 R"({"customer_id":"cust-42","details":"again"})"),
              IsOk());
  absl::StatusOr<std::vector<OutboxRecord>> claimed = store().FetchPendingBatch({.limit = 10});
  ASSERT_THAT(claimed, IsOk());
  ASSERT_EQ(claimed->size(), 2u);
  const Envelope& e = (*claimed)[0].envelope;
  EXPECT_FALSE(e.id.empty());
  EXPECT_NE(e.id, (*claimed)[1].envelope.id);
  EXPECT_EQ(e.type, "customer.created");
  EXPECT_EQ(e.topic, "customer-events");
  EXPECT_EQ(e.key, "");
  EXPECT_EQ(e.payload, R"({"customer_id":"cust-42","details":"seed"})");
  EXPECT_EQ(e.content_type, "application/json");
  EXPECT_EQ(e.schema_version, 1);
  EXPECT_THAT(e.headers, IsEmpty());
  EXPECT_EQ(e.subject, "");
  EXPECT_EQ(e.dataschema, "");
  EXPECT_THAT(e.extensions, IsEmpty());
  EXPECT_GE(e.time, before - absl::Minutes(1));
  EXPECT_LE(e.time, absl::Now() + absl::Minutes(1));

  // And the relay moves it to a bus.
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  OutboxRelay relay(store(), bus, {.retention = absl::Hours(1)});
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(2));
  std::vector<Envelope> published = fake.published("customer-events");
  ASSERT_EQ(published.size(), 2u);
  EXPECT_EQ(published[0].id, e.id);
  EXPECT_EQ(published[1].type, "customer.updated");
  EXPECT_THAT(store().FetchPendingBatch({.limit = 10}), IsOkAndHolds(IsEmpty()));
}

TEST_P(OutboxStoreConformanceTest, WaitForWorkReturnsPromptlyAfterACommitAndOnInterrupt) {
  for (int round = 0; round < 2; ++round) {
    std::atomic<bool> returned{false};
    absl::Duration waited;
    std::thread waiter([&] {
      absl::Time start = absl::Now();
      EXPECT_THAT(store().WaitForWork(absl::Seconds(60)), IsOk());
      waited = absl::Now() - start;
      returned.store(true);
    });
    if (round == 0) {
      ASSERT_THAT(AppendCommitted({MakeTestEnvelope("wake", "k", round)}), IsOk());
    } else {
      store().Interrupt();
    }
    waiter.join();
    EXPECT_TRUE(returned.load());
    EXPECT_LT(waited, absl::Seconds(30)) << (round == 0 ? "a commit" : "Interrupt") << " did not wake WaitForWork";
    FetchAndMarkAll();
  }
}

TEST_P(OutboxStoreConformanceTest, TwoRelaysKeepPerKeyOrderWithOneLeaderAtATime) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  RelayOptions options;
  options.batch_size = 16;
  options.poll_interval = absl::Milliseconds(20);
  options.error_backoff = absl::Milliseconds(20);
  options.retention = absl::Hours(1);
  auto relay1 = std::make_unique<OutboxRelay>(store(), bus, options);
  auto relay2 = std::make_unique<OutboxRelay>(SecondStore(), bus, options);
  ASSERT_THAT(relay1->Start(), IsOk());
  ASSERT_THAT(relay2->Start(), IsOk());

  constexpr int kKeys = 3;
  constexpr int kPerPhase = 150;
  auto append_phase = [&](int phase) {
    for (int i = 0; i < kPerPhase; i += 10) {
      std::vector<Envelope> tx;
      for (int j = i; j < i + 10; ++j) {
        int n = phase * kPerPhase + j;
        tx.push_back(MakeTestEnvelope("relayed", j % 4 == 3 ? "" : herald::StrCat("key-", j % kKeys), n));
      }
      ASSERT_THAT(AppendCommitted(tx), IsOk());
    }
  };
  append_phase(0);
  ASSERT_TRUE(Eventually([&] { return fake.published("relayed").size() >= static_cast<size_t>(kPerPhase); }, kPatience))
      << "published " << fake.published("relayed").size() << " of " << kPerPhase;
  EXPECT_FALSE(relay1->Stats().leader && relay2->Stats().leader) << "two leaders at once";
  // The leader stops; the standby takes over.
  if (relay1->Stats().leader) {
    relay1.reset();
  } else {
    relay2.reset();
  }
  append_phase(1);
  ASSERT_TRUE(
      Eventually([&] { return fake.published("relayed").size() >= static_cast<size_t>(2 * kPerPhase); }, kPatience))
      << "published " << fake.published("relayed").size() << " of " << 2 * kPerPhase;
  relay1.reset();
  relay2.reset();

  std::vector<Envelope> published = fake.published("relayed");
  EXPECT_EQ(published.size(), static_cast<size_t>(2 * kPerPhase)) << "some event was published twice";
  std::set<int> seen;
  std::map<std::string, int> last_per_key;
  for (const Envelope& e : published) {
    int n = std::stoi(e.payload.substr(5));
    seen.insert(n);
    if (e.key.empty()) continue;
    auto it = last_per_key.find(e.key);
    if (it != last_per_key.end()) {
      EXPECT_LT(it->second, n) << "key " << e.key << " out of order";
    }
    last_per_key[e.key] = n;
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(2 * kPerPhase)) << "some event was never published";
}

// ---- Inbox ----

TEST_P(OutboxStoreConformanceTest, InboxMarksOnceForgetsOnRollbackAndPurges) {
  if (!GetParam().supports_inbox) GTEST_SKIP() << GetParam().name << " declares no herald::Inbox";
  auto* inbox = dynamic_cast<Inbox*>(&store());
  ASSERT_NE(inbox, nullptr) << GetParam().name << " declares supports_inbox but is not a herald::Inbox";
  {
    absl::StatusOr<std::unique_ptr<Transaction>> tx = inbox->Begin();
    ASSERT_THAT(tx, IsOk());
    EXPECT_THAT(inbox->MarkProcessed(**tx, "reader", "event-1"), IsOkAndHolds(true));
    ASSERT_THAT((*tx)->Rollback(), IsOk());
  }
  {
    absl::StatusOr<std::unique_ptr<Transaction>> tx = inbox->Begin();
    ASSERT_THAT(tx, IsOk());
    EXPECT_THAT(inbox->MarkProcessed(**tx, "reader", "event-1"), IsOkAndHolds(true)) << "rollback forgot it";
    EXPECT_THAT(inbox->MarkProcessed(**tx, "other-reader", "event-1"), IsOkAndHolds(true)) << "per consumer";
    ASSERT_THAT((*tx)->Commit(), IsOk());
  }
  {
    absl::StatusOr<std::unique_ptr<Transaction>> tx = inbox->Begin();
    ASSERT_THAT(tx, IsOk());
    EXPECT_THAT(inbox->MarkProcessed(**tx, "reader", "event-1"), IsOkAndHolds(false));
    EXPECT_THAT(inbox->MarkProcessed(**tx, "reader", "event-2"), IsOkAndHolds(true));
    ASSERT_THAT((*tx)->Commit(), IsOk());
  }
  EXPECT_THAT(inbox->PurgeProcessed(absl::Now() - absl::Hours(1), 10), IsOkAndHolds(0));
  EXPECT_THAT(inbox->PurgeProcessed(absl::Now() + absl::Hours(1), 2), IsOkAndHolds(2));
  EXPECT_THAT(inbox->PurgeProcessed(absl::Now() + absl::Hours(1), 2), IsOkAndHolds(1));
  {
    absl::StatusOr<std::unique_ptr<Transaction>> tx = inbox->Begin();
    ASSERT_THAT(tx, IsOk());
    EXPECT_THAT(inbox->MarkProcessed(**tx, "reader", "event-1"), IsOkAndHolds(true)) << "purged entries are gone";
  }
}

GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(OutboxStoreConformanceTest);

}  // namespace herald::testing
