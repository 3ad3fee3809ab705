#include "herald/postgres/postgres_outbox_store.h"

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/core/relay.h"
#include "herald/core/uuid.h"
#include "herald/postgres/outbox_migration.h"
#include "herald/testing/eventually.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/status_matchers.h"
#include "postgres_test_support.h"
#include "schema.h"

namespace herald::postgres {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::IsOkAndHolds;
using ::herald::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using testing::Exec;
using testing::PostgresTest;
using testing::Query;

Envelope MakeEvent(std::string key, std::string payload = R"({"n":1})") {
  Envelope e;
  e.id = NewUuidV7(absl::Now());
  e.type = "customer.created";
  e.topic = "customer-events";
  e.key = std::move(key);
  e.payload = std::move(payload);
  e.time = absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
  return e;
}

std::vector<std::string> Keys(const std::vector<OutboxRecord>& records) {
  std::vector<std::string> keys;
  for (const auto& r : records) keys.push_back(r.envelope.key + ":" + r.envelope.payload);
  return keys;
}

std::vector<int64_t> Sequences(const std::vector<OutboxRecord>& records) {
  std::vector<int64_t> seqs;
  for (const auto& r : records) seqs.push_back(r.sequence);
  return seqs;
}

struct Ping {
  std::string id;
  static constexpr std::string_view kType = "ping";
  static constexpr std::string_view kTopic = "pings";
  std::string_view key() const { return id; }
  static constexpr auto JsonFields() { return json::Fields(json::Field("id", &Ping::id)); }
};

class PostgresOutboxStoreTest : public PostgresTest {
 protected:
  // Appends and commits each envelope in its own transaction.
  void Commit(PostgresOutboxStore& store, const std::vector<Envelope>& envelopes) {
    for (const Envelope& e : envelopes) {
      HERALD_ASSERT_OK_AND_ASSIGN(auto tx, store.Begin());
      ASSERT_THAT(store.Append(*tx, e), IsOk());
      ASSERT_THAT(tx->Commit(), IsOk());
    }
  }
};

TEST_F(PostgresOutboxStoreTest, OpenRejectsHostileIdentifiers) {
  for (const std::string& bad : std::vector<std::string>{"x\"; DROP SCHEMA public CASCADE; --", "1abc", "", "a b", std::string(64, 'a')}) {
    PostgresOptions o = Options();
    o.schema = bad;
    EXPECT_THAT(PostgresOutboxStore::Open(o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("schema")));
    o = Options();
    o.table = bad;
    EXPECT_THAT(PostgresOutboxStore::Open(o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("table")));
    o = Options();
    o.inbox_table = bad;
    EXPECT_THAT(PostgresOutboxStore::Open(o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("inbox")));
    if (!bad.empty()) {
      o = Options();
      o.notify_channel = bad;
      EXPECT_THAT(PostgresOutboxStore::Open(o),
                  StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("notify_channel")));
    }
  }
  // Nothing was created.
  EXPECT_EQ(Query(admin_.get(), "SELECT count(*) FROM pg_namespace WHERE nspname = '" + schema_ + "'"), "0");
}

TEST_F(PostgresOutboxStoreTest, OpenFailsUnavailableWithoutEchoingThePassword) {
  PostgresOptions o = Options();
  o.conninfo = "host=127.0.0.1 port=1 dbname=nope user=nope password=s3cret-Pw connect_timeout=2";
  auto store = PostgresOutboxStore::Open(o);
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kUnavailable, Not(HasSubstr("s3cret-Pw"))));
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("Hint")));

  o.conninfo = "host=127.0.0.1 password=s3cret-Pw this is not a conninfo";
  EXPECT_THAT(PostgresOutboxStore::Open(o), StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr("s3cret"))));
  o.conninfo = "postgresql://user:s3cret-Pw@127.0.0.1:1/db?connect_timeout=2";
  EXPECT_THAT(PostgresOutboxStore::Open(o), StatusIs(absl::StatusCode::kUnavailable, Not(HasSubstr("s3cret-Pw"))));
}

TEST_F(PostgresOutboxStoreTest, OpenMigratesOnceAndConcurrently) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      auto store = PostgresOutboxStore::Open(Options());
      EXPECT_THAT(store, IsOk());
      if (store.ok()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 4);
  EXPECT_EQ(Query(admin_.get(), "SELECT string_agg(version::text, ',' ORDER BY version) FROM \"" + schema_ +
                                    "\".herald_schema_migrations"),
            "1,2,3");
  // The tables and the trigger exist; opening again changes nothing.
  ASSERT_NE(OpenStore(), nullptr);
  EXPECT_EQ(Query(admin_.get(), "SELECT count(*) FROM pg_trigger WHERE tgrelid = '" + Table() + "'::regclass"), "1");
  EXPECT_EQ(Query(admin_.get(), "SELECT to_regclass('\"" + schema_ + "\".inbox') IS NOT NULL"), "t");
}

TEST_F(PostgresOutboxStoreTest, AppendThenFetchPendingRoundTripsEveryField) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Envelope e = MakeEvent("cust-1", "{ \"name\" : \"Zoë\",\n  \"n\": 1.50 }  ");
  e.source = "customer-service";
  e.schema_version = 3;
  e.content_type = "application/vnd.custom+json";
  e.headers = {{"traceparent", "00-abc-def-01"}, {"x", "1"}, {"x", "2"}, {"quote", "a\"b\\c"}};
  Commit(*store, {e});

  auto batch = store->FetchPendingBatch({});
  ASSERT_THAT(batch, IsOk());
  ASSERT_THAT(*batch, SizeIs(1));
  EXPECT_EQ((*batch)[0].envelope, e);
  EXPECT_EQ((*batch)[0].attempts, 0);
  EXPECT_GT((*batch)[0].sequence, 0);
  EXPECT_LT(absl::AbsDuration((*batch)[0].created_at - absl::Now()), absl::Minutes(5));
  // Fetching does not change the rows.
  EXPECT_THAT(store->FetchPendingBatch({}), IsOkAndHolds(SizeIs(1)));
}

TEST_F(PostgresOutboxStoreTest, AppendFillsAnEmptyIdAndRejectsNulBytes) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Envelope e = MakeEvent("");
  e.id.clear();
  Commit(*store, {e});
  auto batch = store->FetchPendingBatch({});
  ASSERT_THAT(batch, IsOkAndHolds(SizeIs(1)));
  EXPECT_TRUE(IsUuidV7((*batch)[0].envelope.id)) << (*batch)[0].envelope.id;
  EXPECT_EQ((*batch)[0].envelope.key, "");

  HERALD_ASSERT_OK_AND_ASSIGN(auto tx, store->Begin());
  Envelope binary = MakeEvent("k", std::string("a\0b", 3));
  EXPECT_THAT(store->Append(*tx, binary), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NUL")));
  Envelope bad_utf8 = MakeEvent("k", "\xff\xfe");
  EXPECT_THAT(store->Append(*tx, bad_utf8), StatusIs(absl::StatusCode::kInvalidArgument));
  // The failed statement poisoned the transaction: later appends and the
  // commit say so.
  EXPECT_THAT(store->Append(*tx, MakeEvent("k")), StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(tx->Commit(), StatusIs(absl::StatusCode::kAborted));
}

TEST_F(PostgresOutboxStoreTest, DuplicateEventIdIsAlreadyExists) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Envelope e = MakeEvent("k");
  Commit(*store, {e});
  HERALD_ASSERT_OK_AND_ASSIGN(auto tx, store->Begin());
  EXPECT_THAT(store->Append(*tx, e), StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST_F(PostgresOutboxStoreTest, BusinessRowAndEventCommitAndRollBackTogether) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const std::string customers = "\"" + schema_ + "\".customers";
  ASSERT_EQ(Exec(admin_.get(), "CREATE TABLE " + customers + " (id TEXT PRIMARY KEY)"), "");

  {  // Committed: both.
    HERALD_ASSERT_OK_AND_ASSIGN(auto tx, store->BeginTransaction());
    ASSERT_EQ(Exec(tx->conn(), "INSERT INTO " + customers + " VALUES ('c1')"), "");
    ASSERT_THAT(store->Append(*tx, MakeEvent("c1")), IsOk());
    ASSERT_THAT(tx->Commit(), IsOk());
    EXPECT_FALSE(tx->open());
    EXPECT_THAT(tx->Commit(), StatusIs(absl::StatusCode::kFailedPrecondition));
  }
  {  // Destroyed without Commit: neither.
    HERALD_ASSERT_OK_AND_ASSIGN(auto tx, store->BeginTransaction());
    ASSERT_EQ(Exec(tx->conn(), "INSERT INTO " + customers + " VALUES ('c2')"), "");
    ASSERT_THAT(store->Append(*tx, MakeEvent("c2")), IsOk());
  }
  {  // Explicit rollback: neither.
    HERALD_ASSERT_OK_AND_ASSIGN(auto tx, store->Begin());
    ASSERT_THAT(store->Append(*tx, MakeEvent("c3")), IsOk());
    ASSERT_THAT(tx->Rollback(), IsOk());
    EXPECT_THAT(store->Append(*tx, MakeEvent("c3")), StatusIs(absl::StatusCode::kFailedPrecondition));
  }
  {  // A failed business statement aborts the transaction and its event.
    HERALD_ASSERT_OK_AND_ASSIGN(auto tx, store->BeginTransaction());
    ASSERT_THAT(store->Append(*tx, MakeEvent("c1")), IsOk());
    ASSERT_NE(Exec(tx->conn(), "INSERT INTO " + customers + " VALUES ('c1')"), "");  // duplicate
    EXPECT_THAT(tx->Commit(), StatusIs(absl::StatusCode::kAborted));
  }
  EXPECT_EQ(Query(admin_.get(), "SELECT string_agg(id, ',') FROM " + customers), "c1");
  auto batch = store->FetchPendingBatch({});
  ASSERT_THAT(batch, IsOk());
  EXPECT_THAT(Keys(*batch), ElementsAre("c1:{\"n\":1}"));
}

TEST_F(PostgresOutboxStoreTest, AppendRejectsTransactionsOfOtherStores) {
  auto store = OpenStore();
  PostgresOptions other_options = Options();
  other_options.table = "other_outbox";
  auto other = OpenStore(other_options);
  ASSERT_NE(store, nullptr);
  ASSERT_NE(other, nullptr);
  HERALD_ASSERT_OK_AND_ASSIGN(auto tx, other->Begin());
  EXPECT_THAT(store->Append(*tx, MakeEvent("k")), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store->MarkProcessed(*tx, "c", "e"), StatusIs(absl::StatusCode::kInvalidArgument));

  class ForeignTransaction : public herald::Transaction {
    absl::Status Commit() override { return absl::OkStatus(); }
    absl::Status Rollback() override { return absl::OkStatus(); }
  } foreign;
  EXPECT_THAT(store->Append(foreign, MakeEvent("k")), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(PostgresOutboxStoreTest, AppendJoinsTheCallersOwnTransaction) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  testing::RawConn conn = testing::Connect();
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK);

  // No transaction open: nothing written.
  EXPECT_THAT(store->Append(conn.get(), MakeEvent("k")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("BEGIN first")));
  EXPECT_THAT(store->MarkProcessed(conn.get(), "c", "e"), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(store->Append(nullptr, MakeEvent("k")), StatusIs(absl::StatusCode::kInvalidArgument));

  // Rolled back: nothing.
  ASSERT_EQ(Exec(conn.get(), "BEGIN"), "");
  ASSERT_THAT(store->Append(conn.get(), MakeEvent("rolled-back")), IsOk());
  ASSERT_EQ(Exec(conn.get(), "ROLLBACK"), "");

  // In a failed transaction: kAborted.
  ASSERT_EQ(Exec(conn.get(), "BEGIN"), "");
  ASSERT_NE(Exec(conn.get(), "SELECT * FROM no_such_table"), "");
  EXPECT_THAT(store->Append(conn.get(), MakeEvent("k")), StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(store->MarkProcessed(conn.get(), "c", "e"), StatusIs(absl::StatusCode::kAborted));
  ASSERT_EQ(Exec(conn.get(), "ROLLBACK"), "");

  // Committed: visible, typed overload too.
  ASSERT_EQ(Exec(conn.get(), "BEGIN"), "");
  ASSERT_THAT(store->Append(conn.get(), MakeEvent("committed")), IsOk());
  ASSERT_THAT(store->Append(conn.get(), Ping{"p1"}), IsOk());
  EXPECT_THAT(store->MarkProcessed(conn.get(), "c", "e"), IsOkAndHolds(true));
  EXPECT_THAT(store->FetchPendingBatch({}), IsOkAndHolds(IsEmpty()));  // not yet committed
  ASSERT_EQ(Exec(conn.get(), "COMMIT"), "");

  auto batch = store->FetchPendingBatch({});
  ASSERT_THAT(batch, IsOk());
  ASSERT_THAT(*batch, SizeIs(2));
  EXPECT_EQ((*batch)[0].envelope.key, "committed");
  EXPECT_EQ((*batch)[1].envelope.type, "ping");
  EXPECT_EQ((*batch)[1].envelope.payload, R"({"id":"p1"})");
}

TEST_F(PostgresOutboxStoreTest, SeedStyleThreeColumnInsertIsRelayed) {
  PostgresOptions o = Options();
  o.table = "outbox";
  auto store = OpenStore(o);
  ASSERT_NE(store, nullptr);
  ASSERT_EQ(Exec(admin_.get(), "INSERT INTO " + Table() +
                                   " (event_type, topic, event_payload) VALUES ('customer.created', "
                                   "'customer-events', '{\"customer_id\":\"c9\"}')"),
            "");
  auto batch = store->FetchPendingBatch({});
  ASSERT_THAT(batch, IsOk());
  ASSERT_THAT(*batch, SizeIs(1));
  const Envelope& e = (*batch)[0].envelope;
  EXPECT_FALSE(e.id.empty());
  EXPECT_EQ(e.type, "customer.created");
  EXPECT_EQ(e.topic, "customer-events");
  EXPECT_EQ(e.key, "");
  EXPECT_EQ(e.payload, "{\"customer_id\":\"c9\"}");
  EXPECT_EQ(e.content_type, "application/json");
  EXPECT_THAT(e.headers, IsEmpty());
  EXPECT_LT(absl::AbsDuration(e.time - absl::Now()), absl::Minutes(5));
  EXPECT_THAT(store->MarkPublished({(*batch)[0].sequence}), IsOk());
  EXPECT_THAT(store->FetchPendingBatch({}), IsOkAndHolds(IsEmpty()));
}

TEST_F(PostgresOutboxStoreTest, AdoptsAnExistingTableWithAJsonbPayloadColumn) {
  // The shape a Go service may have created before herald.
  ASSERT_EQ(Exec(admin_.get(), "CREATE SCHEMA \"" + schema_ + "\"; CREATE TABLE " + Table() +
                                   " (id BIGSERIAL PRIMARY KEY, event_type TEXT NOT NULL, topic TEXT NOT NULL, "
                                   "event_payload JSONB NOT NULL); INSERT INTO " +
                                   Table() +
                                   " (event_type, topic, event_payload) VALUES ('a.b', 't', '{\"x\": [1, 2]}')"),
            "");
  // Open refuses it (it lacks herald's columns); the explicit migration
  // adopts it.
  EXPECT_THAT(PostgresOutboxStore::Open(Options()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("herald outbox migrate")));
  ASSERT_THAT(MigrateOutbox(Options()), IsOk());
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Commit(*store, {MakeEvent("k", R"({"y":true})")});
  auto batch = store->FetchPendingBatch({});
  ASSERT_THAT(batch, IsOk());
  ASSERT_THAT(*batch, SizeIs(2));
  EXPECT_EQ((*batch)[0].envelope.payload, R"({"x": [1, 2]})");  // PostgreSQL's jsonb text
  EXPECT_EQ((*batch)[1].envelope.payload, R"({"y": true})");
  EXPECT_FALSE((*batch)[0].envelope.id.empty());
}

TEST_F(PostgresOutboxStoreTest, FetchPendingKeepsSequenceOrderAndHoldsBackRowsBehindAWaitingRow) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Commit(*store, {MakeEvent("a", "1"), MakeEvent("b", "2"), MakeEvent("a", "3"), MakeEvent("", "4"),
                  MakeEvent("b", "5"), MakeEvent("", "6"), MakeEvent("c", "7")});
  // Every row is ready: one batch in sequence order, several rows per key.
  auto batch = store->FetchPendingBatch({});
  ASSERT_THAT(batch, IsOk());
  EXPECT_THAT(Keys(*batch), ElementsAre("a:1", "b:2", "a:3", ":4", "b:5", ":6", "c:7"));
  const std::vector<int64_t> seqs = Sequences(*batch);
  EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));

  auto limited = store->FetchPendingBatch({.limit = 2});
  ASSERT_THAT(limited, IsOk());
  EXPECT_THAT(Keys(*limited), ElementsAre("a:1", "b:2"));

  // a:1 waits for a retry: a:3 waits behind it; b goes on.
  ASSERT_THAT(store->MarkFailed(seqs[0], "down", absl::Now() + absl::Hours(1), false), IsOk());
  ASSERT_THAT(store->MarkPublished({seqs[1]}), IsOk());
  auto next = store->FetchPendingBatch({});
  ASSERT_THAT(next, IsOk());
  EXPECT_THAT(Keys(*next), ElementsAre(":4", "b:5", ":6", "c:7"));
  EXPECT_THAT(store->MarkPublished({}), IsOk());
  EXPECT_THAT(store->FetchPendingBatch({.limit = 0}), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(PostgresOutboxStoreTest, FailedRowHoldsBackItsKeyThenParksAndRetries) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Commit(*store, {MakeEvent("a", "1"), MakeEvent("a", "2"), MakeEvent("b", "3")});
  auto batch = store->FetchPendingBatch({});
  ASSERT_THAT(batch, IsOk());
  ASSERT_THAT(*batch, SizeIs(3));
  const int64_t a1 = (*batch)[0].sequence;

  // Retry later: a1 and everything after it on key a wait; b goes on.
  ASSERT_THAT(store->MarkFailed(a1, "broker down", absl::Now() + absl::Hours(1), /*park=*/false), IsOk());
  EXPECT_THAT(store->FetchPendingBatch({}), IsOkAndHolds(::testing::ResultOf(Keys, ElementsAre("b:3"))));
  // Due again: a1 comes back with its bookkeeping.
  ASSERT_THAT(store->MarkFailed(a1, "still down", absl::Now() - absl::Seconds(1), false), IsOk());
  auto again = store->FetchPendingBatch({});
  ASSERT_THAT(again, IsOk());
  ASSERT_THAT(Keys(*again), ElementsAre("a:1", "a:2", "b:3"));
  EXPECT_EQ((*again)[0].attempts, 2);
  EXPECT_EQ((*again)[0].last_error, "still down");

  // Parked: kept, visible, still blocking its key.
  ASSERT_THAT(store->MarkFailed(a1, "poison", absl::Now(), /*park=*/true), IsOk());
  EXPECT_THAT(store->FetchPendingBatch({}), IsOkAndHolds(::testing::ResultOf(Keys, ElementsAre("b:3"))));
  auto stats = store->Stats();
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->parked, 1);
  EXPECT_EQ(stats->pending, 2);
  auto parked = store->ListParked(10);
  ASSERT_THAT(parked, IsOk());
  ASSERT_THAT(*parked, SizeIs(1));
  EXPECT_EQ((*parked)[0].sequence, a1);
  EXPECT_EQ((*parked)[0].attempts, 3);
  EXPECT_EQ((*parked)[0].last_error, "poison");

  EXPECT_THAT(store->RetryParked({a1 + 1000}), IsOkAndHolds(0));
  EXPECT_THAT(store->RetryParked({}), IsOkAndHolds(1));
  auto retried = store->FetchPendingBatch({});
  ASSERT_THAT(retried, IsOk());
  ASSERT_THAT(Keys(*retried), ElementsAre("a:1", "a:2", "b:3"));
  EXPECT_EQ((*retried)[0].attempts, 0);
  EXPECT_THAT(store->ListParked(10), IsOkAndHolds(IsEmpty()));

  EXPECT_THAT(store->MarkFailed(a1 + 1000, "x", absl::Now(), false), StatusIs(absl::StatusCode::kNotFound));
}

// The table contract of a skip (docs/outbox.md, "Ordering"): published_at
// and parked_at both set, last_error the note; its key flows again.
TEST_F(PostgresOutboxStoreTest, SkipIsRecordedInTheRowAndReleasesTheKey) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Commit(*store, {MakeEvent("a", "1"), MakeEvent("a", "2")});
  auto batch = store->FetchPendingBatch({});
  ASSERT_THAT(batch, IsOk());
  ASSERT_THAT(*batch, SizeIs(2));
  const int64_t a1 = (*batch)[0].sequence;
  ASSERT_THAT(store->MarkFailed(a1, "too large", absl::Now(), /*park=*/true), IsOk());
  EXPECT_THAT(store->FetchPendingBatch({}), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(store->SkipParked({a1}, "ticket 9"), IsOkAndHolds(1));
  const std::string where = StrCat(" FROM ", Table(), " WHERE seq = ", a1);
  EXPECT_EQ(Query(admin_.get(), StrCat("SELECT published_at IS NOT NULL AND parked_at IS NOT NULL", where)), "t");
  EXPECT_THAT(Query(admin_.get(), StrCat("SELECT last_error", where)),
              ::testing::MatchesRegex("skipped by operator at 20[0-9-]+T[0-9:.]+Z: ticket 9; last error: too large"));
  EXPECT_THAT(store->FetchPendingBatch({}), IsOkAndHolds(::testing::ResultOf(Keys, ElementsAre("a:2"))));
  // AssignKey writes only keyless unpublished rows.
  Commit(*store, {MakeEvent("", "3")});
  auto keyless = store->FetchPendingBatch({});
  ASSERT_THAT(keyless, IsOk());
  ASSERT_THAT(*keyless, SizeIs(2));
  EXPECT_THAT(store->AssignKey(Sequences(*keyless), "derived"), IsOkAndHolds(1));
  EXPECT_THAT(store->FetchPendingBatch({}), IsOkAndHolds(::testing::ResultOf(Keys, ElementsAre("a:2", "derived:3"))));
}

TEST_F(PostgresOutboxStoreTest, PurgeDeletesOnlyOldPublishedRowsInBoundedBatches) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Commit(*store, {MakeEvent("", "1"), MakeEvent("", "2"), MakeEvent("", "3"), MakeEvent("", "4")});
  auto batch = store->FetchPendingBatch({});
  ASSERT_THAT(batch, IsOkAndHolds(SizeIs(4)));
  ASSERT_THAT(store->MarkPublished({(*batch)[0].sequence, (*batch)[1].sequence, (*batch)[2].sequence}), IsOk());
  EXPECT_THAT(store->PurgePublished(absl::Now() - absl::Hours(1), 10), IsOkAndHolds(0));
  EXPECT_THAT(store->PurgePublished(absl::Now() + absl::Minutes(1), 2), IsOkAndHolds(2));
  EXPECT_THAT(store->PurgePublished(absl::Now() + absl::Minutes(1), 2), IsOkAndHolds(1));
  EXPECT_THAT(store->PurgePublished(absl::Now() + absl::Minutes(1), 2), IsOkAndHolds(0));
  EXPECT_EQ(Query(admin_.get(), "SELECT count(*) FROM " + Table()), "1");
}

// Retention zero: the relay's mark is one DELETE of the pending rows.
TEST_F(PostgresOutboxStoreTest, DeletePublishedRemovesOnlyPendingRows) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Commit(*store, {MakeEvent("a", "1"), MakeEvent("b", "2"), MakeEvent("c", "3")});
  auto batch = store->FetchPendingBatch({});
  ASSERT_THAT(batch, IsOkAndHolds(SizeIs(3)));
  const std::vector<int64_t> seqs = Sequences(*batch);
  // c:3 is parked, then skipped: recorded in its row, left for the purge.
  ASSERT_THAT(store->MarkFailed(seqs[2], "too large", absl::Now(), /*park=*/true), IsOk());
  ASSERT_THAT(store->SkipParked({seqs[2]}, "ticket 1"), IsOkAndHolds(1));
  EXPECT_THAT(store->DeletePublished({seqs[0], seqs[2]}), IsOk());
  EXPECT_THAT(store->DeletePublished({}), IsOk());
  EXPECT_EQ(Query(admin_.get(), StrCat("SELECT string_agg(seq::text, ',' ORDER BY seq) FROM ", Table())),
            StrCat(seqs[1], ",", seqs[2]));
  EXPECT_EQ(Query(admin_.get(),
                  StrCat("SELECT last_error LIKE 'skipped by operator%' FROM ", Table(), " WHERE seq = ", seqs[2])),
            "t");
  EXPECT_THAT(store->FetchPendingBatch({}), IsOkAndHolds(::testing::ResultOf(Keys, ElementsAre("b:2"))));
}

// RelayOptions::retention zero deletes the rows in the statement that marks
// them (the purge finds nothing); with retention they are marked and kept.
TEST_F(PostgresOutboxStoreTest, RelayDeletesRowsAtMarkTimeOnlyWithZeroRetention) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Bus bus(std::make_unique<herald::testing::FakeTransport>());
  Commit(*store, {MakeEvent("a", "1"), MakeEvent("b", "2"), MakeEvent("a", "3")});
  {
    OutboxRelay relay(*store, bus);
    EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(3));
    EXPECT_EQ(Query(admin_.get(), "SELECT count(*) FROM " + Table()), "0");
    EXPECT_EQ(relay.Stats().purged, 0);  // gone before the purge ran
    EXPECT_EQ(relay.Stats().published, 3);
  }
  Commit(*store, {MakeEvent("a", "4"), MakeEvent("c", "5")});
  {
    OutboxRelay relay(*store, bus, {.retention = absl::Hours(1)});
    EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(2));
    EXPECT_EQ(Query(admin_.get(),
                    "SELECT count(*) FILTER (WHERE published_at IS NOT NULL) || '/' || count(*) FROM " + Table()),
              "2/2");
    EXPECT_EQ(relay.Stats().purged, 0);
  }
  EXPECT_THAT(store->Stats(), IsOkAndHolds(::testing::Field(&OutboxStats::pending, 0)));
  EXPECT_EQ(bus.transport<herald::testing::FakeTransport>().published().size(), 5u);
}

// Deleting at mark time changes nothing of the order guarantee: a failed
// row stays, holds back the rest of its key, and goes first on its retry.
TEST_F(PostgresOutboxStoreTest, ZeroRetentionRelayKeepsOrderPerKeyWhenAPublishFails) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Bus bus(std::make_unique<herald::testing::FakeTransport>());
  auto& transport = bus.transport<herald::testing::FakeTransport>();
  Commit(*store, {MakeEvent("a", "1"), MakeEvent("b", "2"), MakeEvent("a", "3")});
  RelayOptions options;
  options.retry.initial_backoff = absl::Milliseconds(1);
  options.retry.max_backoff = absl::Milliseconds(1);
  OutboxRelay relay(*store, bus, options);
  transport.FailNextPublishes(1, absl::UnavailableError("broker down"));  // a:1, the first in sequence order
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(1));
  // b:2 delivered and gone; a:1 kept with its attempt, a:3 never sent.
  EXPECT_EQ(Query(admin_.get(),
                  StrCat("SELECT string_agg(event_payload || '@' || attempts, ',' ORDER BY seq) FROM ", Table())),
            "1@1,3@0");
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(2));
  EXPECT_EQ(Query(admin_.get(), "SELECT count(*) FROM " + Table()), "0");
  std::vector<std::string> order;
  for (const Envelope& e : transport.published()) order.push_back(e.key + ":" + e.payload);
  EXPECT_THAT(order, ElementsAre("b:2", "a:1", "a:3"));
}

// The purge reads the published rows through their index (migration 3),
// not every pending row of the outbox in seq order.
TEST_F(PostgresOutboxStoreTest, PurgeReadsThePublishedIndexNotThePendingRows) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_EQ(Exec(admin_.get(), StrCat("INSERT INTO ", Table(),
                                      " (event_type, topic, event_key, event_payload) SELECT 't', 'topic', 'k' || "
                                      "(g % 50), '{}' FROM generate_series(1, 20000) g; UPDATE ",
                                      Table(), " SET published_at = now() WHERE seq % 1000 = 0; ANALYZE ", Table())),
            "");
  const OutboxSql sql = BuildOutboxSql(Options());
  ASSERT_EQ(Exec(admin_.get(), StrCat("PREPARE purge(timestamptz, int) AS ", sql.purge_published.sql)), "");
  std::string plan;
  for (int run = 0; run < 7; ++run) {  // custom plans first, then the generic one
    PGresult* r = PQexec(admin_.get(), "EXPLAIN EXECUTE purge(now() - interval '1 hour', 1000)");
    ASSERT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQresultErrorMessage(r);
    plan.clear();
    for (int i = 0; i < PQntuples(r); ++i) StrAppend(&plan, PQgetvalue(r, i, 0), "\n");
    PQclear(r);
    EXPECT_THAT(plan, HasSubstr("outbox_published_idx"));
    EXPECT_THAT(plan, Not(HasSubstr("Seq Scan")));
  }
  EXPECT_THAT(store->PurgePublished(absl::Now() + absl::Minutes(1), 1000), IsOkAndHolds(20));
}

// The claim walks the pending index in seq order and stops at its limit
// also on a table the planner has no statistics for (a burst of rows into
// a table analyzed while empty, or never): without the store's plan
// settings it read every pending row into a bitmap and sorted them, each
// claim (0.5 s with 100,000 rows pending).
TEST_F(PostgresOutboxStoreTest, ClaimReadsOnlyItsRowsOfThePendingIndexWithoutStatistics) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  // No autovacuum: the table stays unanalyzed for the whole test.
  ASSERT_EQ(
      Exec(admin_.get(), StrCat("ALTER TABLE ", Table(), " SET (autovacuum_enabled = false); INSERT INTO ", Table(),
                                " (event_type, topic, event_key, event_payload) SELECT 't', 'topic', 'k' || "
                                "(g % 50), '{}' FROM generate_series(1, 20000) g")),
      "");
  ASSERT_EQ(Query(admin_.get(), StrCat("SELECT reltuples < 1 FROM pg_class WHERE oid = '", Table(), "'::regclass")),
            "t");
  const std::string read_sql =
      StrCat("SELECT coalesce(sum(idx_tup_read), 0) FROM pg_stat_user_indexes WHERE schemaname = '", schema_,
             "' AND indexrelname = 'outbox_pending_idx'");
  const int64_t before = std::stoll(Query(admin_.get(), read_sql));
  for (int claim = 0; claim < 3; ++claim) {
    auto batch = store->FetchPendingBatch({.limit = 100});
    ASSERT_THAT(batch, IsOkAndHolds(SizeIs(100)));
    ASSERT_THAT(store->DeletePublished(Sequences(*batch)), IsOk());
  }
  // The server publishes a backend's index counters within seconds.
  int64_t read = 0;
  EXPECT_TRUE(herald::testing::Eventually(
      [&] {
        read = std::stoll(Query(admin_.get(), read_sql)) - before;
        return read >= 300;
      },
      absl::Seconds(30), absl::Milliseconds(200)))
      << "the claims read " << read << " entries of the pending index (a plan without it: a sequential scan)";
  // Three claims of 100: a few hundred index entries, not 3 x 20,000 (a
  // bitmap of every pending row).
  EXPECT_LT(read, 20000);
}

TEST_F(PostgresOutboxStoreTest, StatsCountPendingAndTheOldestAge) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(store->Stats(), IsOk());
  EXPECT_EQ(store->Stats()->pending, 0);
  EXPECT_EQ(store->Stats()->oldest_pending_age, absl::ZeroDuration());
  Commit(*store, {MakeEvent("a"), MakeEvent("b")});
  ASSERT_EQ(Exec(admin_.get(), "UPDATE " + Table() + " SET created_at = now() - interval '1 hour' WHERE seq = "
                                                      "(SELECT min(seq) FROM " + Table() + ")"),
            "");
  auto stats = store->Stats();
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->pending, 2);
  EXPECT_EQ(stats->parked, 0);
  EXPECT_GE(stats->oldest_pending_age, absl::Minutes(59));
  EXPECT_LT(stats->oldest_pending_age, absl::Minutes(70));
}

TEST_F(PostgresOutboxStoreTest, ShardsPartitionTheKeysDisjointly) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  std::vector<Envelope> events;
  for (int i = 0; i < 30; ++i) events.push_back(MakeEvent("key-" + std::to_string(i % 15), std::to_string(i)));
  Commit(*store, events);
  std::set<int64_t> all;
  std::map<std::string, int> shard_of_key;
  for (int shard = 0; shard < 3; ++shard) {
    auto batch = store->FetchPendingBatch({.limit = 100, .shard = shard, .shard_count = 3});
    ASSERT_THAT(batch, IsOk());
    for (const auto& r : *batch) {
      EXPECT_TRUE(all.insert(r.sequence).second);
      auto [it, inserted] = shard_of_key.emplace(r.envelope.key, shard);
      EXPECT_EQ(it->second, shard) << r.envelope.key;
    }
  }
  EXPECT_EQ(all.size(), 30u);
  EXPECT_THAT(store->FetchPendingBatch({.shard = 3, .shard_count = 3}), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(PostgresOutboxStoreTest, OneLeaseHolderAtATimeAndDestructionFreesIt) {
  auto store_a = OpenStore();
  auto store_b = OpenStore();
  ASSERT_NE(store_a, nullptr);
  ASSERT_NE(store_b, nullptr);
  auto lease = store_a->TryAcquireLease("relay");
  ASSERT_THAT(lease, IsOk());
  EXPECT_THAT((*lease)->Check(), IsOk());
  EXPECT_THAT(store_b->TryAcquireLease("relay"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store_a->TryAcquireLease("relay"), StatusIs(absl::StatusCode::kUnavailable));
  auto other = store_b->TryAcquireLease("relay-shard-1");
  EXPECT_THAT(other, IsOk());

  lease->reset();
  auto taken = store_b->TryAcquireLease("relay");
  ASSERT_THAT(taken, IsOk());
  EXPECT_THAT((*taken)->Check(), IsOk());

  // A lease whose session dies is lost.
  const int64_t key = AdvisoryLockKey(schema_ + ".outbox:relay");
  const uint64_t k = static_cast<uint64_t>(key);
  ASSERT_EQ(Query(admin_.get(), "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = "
                                "'advisory' AND classid = " +
                                    std::to_string(k >> 32) + " AND objid = " + std::to_string(k & 0xffffffffu)),
            "1");
  EXPECT_THAT((*taken)->Check(), StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(store_a->TryAcquireLease("relay"), IsOk());
}

TEST_F(PostgresOutboxStoreTest, WaitForWorkWakesWhenAnotherConnectionCommitsARow) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  // Establishes the LISTEN connection.
  ASSERT_THAT(store->WaitForWork(absl::Milliseconds(1)), IsOk());

  std::atomic<bool> done{false};
  absl::Duration waited;
  std::thread waiter([&] {
    absl::Time start = absl::Now();
    EXPECT_THAT(store->WaitForWork(absl::Seconds(60)), IsOk());
    waited = absl::Now() - start;
    done = true;
  });
  // A writer that is not herald: the trigger notifies at its commit.
  testing::RawConn writer = testing::Connect();
  ASSERT_EQ(Exec(writer.get(), "BEGIN; INSERT INTO " + Table() +
                                   " (event_type, topic, event_payload) VALUES ('a', 'b', '{}'); COMMIT"),
            "");
  waiter.join();
  EXPECT_TRUE(done);
  EXPECT_LT(waited, absl::Seconds(30));
}

TEST_F(PostgresOutboxStoreTest, InterruptWakesEveryWaiter) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_THAT(store->WaitForWork(absl::Milliseconds(1)), IsOk());
  std::atomic<int> woke{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.emplace_back([&] {
      EXPECT_THAT(store->WaitForWork(absl::Seconds(60)), IsOk());
      ++woke;
    });
  }
  // Keep interrupting until all have returned (a waiter that had not yet
  // started waiting would miss a single early Interrupt).
  EXPECT_TRUE(herald::testing::Eventually(
      [&] {
        store->Interrupt();
        return woke.load() == 3;
      },
      absl::Seconds(30), absl::Milliseconds(20)));
  for (auto& t : waiters) t.join();
  EXPECT_EQ(woke.load(), 3);
}

TEST_F(PostgresOutboxStoreTest, WaitForWorkTimesOutQuietly) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(store->WaitForWork(absl::Milliseconds(50)), IsOk());
  EXPECT_THAT(store->WaitForWork(absl::ZeroDuration()), IsOk());
}

TEST_F(PostgresOutboxStoreTest, CustomNotifyChannelIsUsedAndChangedOnReopen) {
  PostgresOptions o = Options();
  o.notify_channel = "custom_channel";
  auto store = OpenStore(o);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->notify_channel(), "custom_channel");
  testing::RawConn listener = testing::Connect();
  ASSERT_EQ(Exec(listener.get(), "LISTEN custom_channel"), "");
  Commit(*store, {MakeEvent("k")});
  PGnotify* n = nullptr;
  for (absl::Time deadline = absl::Now() + absl::Seconds(30); n == nullptr && absl::Now() < deadline;) {
    ASSERT_EQ(PQconsumeInput(listener.get()), 1);
    n = PQnotifies(listener.get());
    if (n == nullptr) {
      pollfd fd = {PQsocket(listener.get()), POLLIN, 0};
      poll(&fd, 1, 100);
    }
  }
  ASSERT_NE(n, nullptr);
  EXPECT_STREQ(n->relname, "custom_channel");
  PQfreemem(n);

  o.notify_channel = "";
  auto reopened = OpenStore(o);
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->notify_channel(), schema_ + "_outbox");
  EXPECT_EQ(Query(admin_.get(), "SELECT count(*) FROM pg_trigger WHERE tgrelid = '" + Table() + "'::regclass"), "1");
}

TEST_F(PostgresOutboxStoreTest, InboxRecordsEachEventOncePerConsumer) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  {
    HERALD_ASSERT_OK_AND_ASSIGN(auto tx, store->Begin());
    EXPECT_THAT(store->MarkProcessed(*tx, "reader", "e1"), IsOkAndHolds(true));
    // Rolled back: not recorded.
  }
  {
    HERALD_ASSERT_OK_AND_ASSIGN(auto tx, store->Begin());
    EXPECT_THAT(store->MarkProcessed(*tx, "reader", "e1"), IsOkAndHolds(true));
    EXPECT_THAT(store->MarkProcessed(*tx, "other-reader", "e1"), IsOkAndHolds(true));
    ASSERT_THAT(tx->Commit(), IsOk());
  }
  {
    HERALD_ASSERT_OK_AND_ASSIGN(auto tx, store->Begin());
    EXPECT_THAT(store->MarkProcessed(*tx, "reader", "e1"), IsOkAndHolds(false));
    EXPECT_THAT(store->MarkProcessed(*tx, "reader", "e2"), IsOkAndHolds(true));
    ASSERT_THAT(tx->Commit(), IsOk());
  }
  EXPECT_THAT(store->PurgeProcessed(absl::Now() - absl::Hours(1), 10), IsOkAndHolds(0));
  EXPECT_THAT(store->PurgeProcessed(absl::Now() + absl::Minutes(1), 2), IsOkAndHolds(2));
  EXPECT_THAT(store->PurgeProcessed(absl::Now() + absl::Minutes(1), 2), IsOkAndHolds(1));
}

TEST_F(PostgresOutboxStoreTest, ConcurrentWritersAllLandAndPoolBounds) {
  PostgresOptions o = Options();
  o.pool_size = 2;
  auto store = OpenStore(o);
  ASSERT_NE(store, nullptr);
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 25; ++i) {
        HERALD_ASSERT_OK_AND_ASSIGN(auto tx, store->Begin());
        ASSERT_THAT(store->Append(*tx, MakeEvent("w" + std::to_string(w), std::to_string(i))), IsOk());
        ASSERT_THAT(tx->Commit(), IsOk());
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(Query(admin_.get(), "SELECT count(*) FROM " + Table()), "100");
  // Per writer, sequence order is commit order.
  auto batch = store->FetchPendingBatch({.limit = 1000});
  ASSERT_THAT(batch, IsOkAndHolds(SizeIs(100)));
  std::map<std::string, int> next;
  for (const auto& r : *batch) EXPECT_EQ(r.envelope.payload, std::to_string(next[r.envelope.key]++));
}

TEST_F(PostgresOutboxStoreTest, PoolExhaustionIsResourceExhausted) {
  PostgresOptions o = Options();
  o.pool_size = 1;
  o.acquire_timeout = absl::Milliseconds(100);
  auto store = OpenStore(o);
  ASSERT_NE(store, nullptr);
  auto held = store->Begin();
  ASSERT_THAT(held, IsOk());
  EXPECT_THAT(store->Begin(), StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("pool_size")));
  held->reset();
  EXPECT_THAT(store->Begin(), IsOk());
}

TEST_F(PostgresOutboxStoreTest, StatementTimeoutIsDeadlineExceeded) {
  PostgresOptions o = Options();
  o.statement_timeout = absl::Milliseconds(200);
  auto store = OpenStore(o);
  ASSERT_NE(store, nullptr);
  // Hold a lock on the table so the claim's update waits past the timeout.
  testing::RawConn locker = testing::Connect();
  ASSERT_EQ(Exec(locker.get(), "BEGIN; LOCK TABLE " + Table() + " IN ACCESS EXCLUSIVE MODE"), "");
  EXPECT_THAT(store->MarkPublished({1}), StatusIs(absl::StatusCode::kDeadlineExceeded));
  ASSERT_EQ(Exec(locker.get(), "ROLLBACK"), "");
  EXPECT_THAT(store->MarkPublished({1}), IsOk());
}

TEST_F(PostgresOutboxStoreTest, MissingTableIsFailedPreconditionWithAHint) {
  PostgresOptions o = Options();
  auto store = OpenStore(o);
  ASSERT_NE(store, nullptr);
  ASSERT_EQ(Exec(admin_.get(), "DROP TABLE " + Table()), "");
  EXPECT_THAT(store->FetchPendingBatch({}), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("herald outbox migrate")));
}

}  // namespace
}  // namespace herald::postgres
