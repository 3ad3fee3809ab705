#include "herald/sqlite/sqlite_outbox_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/relay.h"
#include "herald/core/uuid.h"
#include "herald/sqlite/sqlite_status.h"
#include "herald/testing/eventually.h"
#include "herald/testing/fake_clock.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/status_matchers.h"

namespace herald::sqlite {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::IsOkAndHolds;
using ::herald::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

// A database file unique to the test, deleted afterwards.
class TempDatabase {
 public:
  TempDatabase() {
    static std::atomic<int> counter{0};
    const char* dir = std::getenv("TMPDIR");
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = herald::StrCat((dir != nullptr && *dir != '\0') ? dir : "/tmp", "/herald_sqlite_", info->name(), "_",
                           static_cast<int>(getpid()), "_", counter.fetch_add(1), ".db");
  }
  ~TempDatabase() {
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path_ + suffix).c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using SqliteHandle = std::unique_ptr<sqlite3, SqliteCloser>;

SqliteHandle OpenHandle(const std::string& path) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  return SqliteHandle(db);
}

void Exec(sqlite3* db, const std::string& sql) {
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (error != nullptr ? error : "");
  sqlite3_free(error);
}

int64_t CountRows(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sql;
  int64_t n = -1;
  if (sqlite3_step(stmt) == SQLITE_ROW) n = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  return n;
}

Envelope TestEnvelope(std::string_view key, int n) {
  Envelope e;
  e.time = absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
  e.id = NewUuidV7(e.time);
  e.type = "order.placed";
  e.topic = "orders";
  e.key = std::string(key);
  e.payload = herald::StrCat("{\"n\":", n, "}");
  return e;
}

std::unique_ptr<SqliteOutboxStore> OpenStore(SqliteOptions options) {
  absl::StatusOr<std::unique_ptr<SqliteOutboxStore>> store = SqliteOutboxStore::Open(std::move(options));
  EXPECT_THAT(store, IsOk());
  return store.ok() ? *std::move(store) : nullptr;
}

std::unique_ptr<SqliteOutboxStore> OpenStore(const std::string& path) {
  SqliteOptions options;
  options.path = path;
  return OpenStore(options);
}

std::vector<OutboxRecord> FetchPending(SqliteOutboxStore& store) {
  absl::StatusOr<std::vector<OutboxRecord>> rows = store.FetchPendingBatch({.limit = 1000});
  EXPECT_THAT(rows, IsOk());
  return rows.ok() ? *rows : std::vector<OutboxRecord>{};
}

// Appends `count` events of key `key` in one committed transaction; returns their ids.
std::vector<std::string> AppendCommitted(SqliteOutboxStore& store, std::string_view key, int count) {
  std::vector<std::string> ids;
  auto tx = store.Begin();
  EXPECT_THAT(tx, IsOk());
  if (!tx.ok()) return ids;
  for (int n = 0; n < count; ++n) {
    Envelope e = TestEnvelope(key, n);
    EXPECT_THAT(store.Append(**tx, e), IsOk());
    ids.push_back(e.id);
  }
  EXPECT_THAT((*tx)->Commit(), IsOk());
  return ids;
}

std::vector<std::string> Ids(const std::vector<OutboxRecord>& rows) {
  std::vector<std::string> ids;
  for (const OutboxRecord& r : rows) ids.push_back(r.envelope.id);
  return ids;
}

std::vector<int64_t> Sequences(const std::vector<OutboxRecord>& rows) {
  std::vector<int64_t> sequences;
  for (const OutboxRecord& r : rows) sequences.push_back(r.sequence);
  return sequences;
}

// ---- Options and schema ----

TEST(SqliteOutboxStore, OpenRejectsBadOptions) {
  TempDatabase temp;
  SqliteOptions options;
  EXPECT_THAT(SqliteOutboxStore::Open(options), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("path")));
  options.path = ":memory:";
  EXPECT_THAT(SqliteOutboxStore::Open(options), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("memory")));
  options.path = temp.path();
  for (const std::string& hostile :
       std::vector<std::string>{"x; DROP TABLE y", "herald\"outbox", "1table", "", std::string(64, 'a'), "näme"}) {
    SqliteOptions bad = options;
    bad.outbox_table = hostile;
    EXPECT_THAT(SqliteOutboxStore::Open(bad), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outbox_table")))
        << hostile;
  }
  SqliteOptions bad = options;
  bad.inbox_table = "inbox--";
  EXPECT_THAT(SqliteOutboxStore::Open(bad), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("inbox_table")));
  bad = options;
  bad.synchronous = "NORMAL; DROP TABLE y";
  EXPECT_THAT(SqliteOutboxStore::Open(bad), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("synchronous")));
  bad = options;
  bad.secure_delete = "MAYBE";
  EXPECT_THAT(SqliteOutboxStore::Open(bad), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("secure_delete")));
  // Nothing was created by the refused opens.
  EXPECT_NE(access(temp.path().c_str(), F_OK), 0);
}

// The clock is optional (docs/ownership.md): null means the system clock.
TEST(SqliteOutboxStore, ANullClockMeansTheSystemClock) {
  TempDatabase temp;
  SqliteOptions options;
  options.path = temp.path();
  options.clock = nullptr;
  auto store = OpenStore(options);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->options().clock, &SystemClock());
  const absl::Time before = absl::Now();
  AppendCommitted(*store, "k", 1);
  std::vector<OutboxRecord> rows = FetchPending(*store);
  ASSERT_THAT(rows, SizeIs(1));
  EXPECT_GE(rows[0].created_at, absl::FromUnixMillis(absl::ToUnixMillis(before)));
  EXPECT_LE(rows[0].created_at, absl::Now());
}

TEST(SqliteOutboxStore, OpenFailsClearlyWhenTheDirectoryIsMissing) {
  SqliteOptions options;
  options.path = "/nonexistent-herald-dir/x/outbox.db";
  EXPECT_THAT(SqliteOutboxStore::Open(options),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("directory exists")));
}

TEST(SqliteOutboxStore, MigrationsAreAppliedOnceAndKeepDataOnReopen) {
  TempDatabase temp;
  {
    auto store = OpenStore(temp.path());
    ASSERT_NE(store, nullptr);
    HERALD_ASSERT_OK_AND_ASSIGN(auto tx, store->Begin());
    ASSERT_THAT(store->Append(*tx, TestEnvelope("k", 1)), IsOk());
    ASSERT_THAT(tx->Commit(), IsOk());
  }
  for (int reopen = 0; reopen < 2; ++reopen) {
    auto store = OpenStore(temp.path());
    ASSERT_NE(store, nullptr);
    EXPECT_THAT(FetchPending(*store), SizeIs(1));
  }
  SqliteHandle db = OpenHandle(temp.path());
  EXPECT_EQ(CountRows(db.get(), "SELECT COUNT(*) FROM herald_schema_migrations"), 1);
  EXPECT_EQ(CountRows(db.get(), "SELECT MAX(version) FROM herald_schema_migrations"), 1);
  EXPECT_EQ(CountRows(db.get(), "SELECT COUNT(*) FROM pragma_index_list('herald_outbox') WHERE partial = 1"), 2);
  EXPECT_EQ(CountRows(db.get(), "SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_sequence'"), 0)
      << "seq has no AUTOINCREMENT (one more page written per append)";
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db.get(), "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);

  // A database migrated by a newer herald is refused, not damaged.
  Exec(db.get(), "INSERT INTO herald_schema_migrations (version, applied_at) VALUES (999, 0)");
  SqliteOptions options;
  options.path = temp.path();
  EXPECT_THAT(SqliteOutboxStore::Open(options),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("upgrade herald")));
}

TEST(SqliteOutboxStore, TableNamesAreConfigurableAndIndependent) {
  TempDatabase temp;
  auto default_store = OpenStore(temp.path());
  SqliteOptions options;
  options.path = temp.path();
  options.outbox_table = "billing_outbox";
  options.inbox_table = "billing_inbox";
  options.lease_table = "billing_leases";
  options.migrations_table = "billing_migrations";
  auto billing = OpenStore(options);
  ASSERT_NE(default_store, nullptr);
  ASSERT_NE(billing, nullptr);

  HERALD_ASSERT_OK_AND_ASSIGN(auto tx, billing->Begin());
  ASSERT_THAT(billing->Append(*tx, TestEnvelope("k", 1)), IsOk());
  ASSERT_THAT(tx->Commit(), IsOk());
  EXPECT_THAT(FetchPending(*billing), SizeIs(1));
  EXPECT_THAT(FetchPending(*default_store), IsEmpty());
  SqliteHandle db = OpenHandle(temp.path());
  EXPECT_EQ(CountRows(db.get(), "SELECT COUNT(*) FROM billing_outbox"), 1);
  EXPECT_EQ(CountRows(db.get(),
                      "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                      "('billing_outbox', 'billing_inbox', 'billing_leases', 'billing_migrations')"),
            4);
}

// ---- Writer side ----

TEST(SqliteOutboxStore, BusinessRowAndEventCommitTogetherAndRollBackTogether) {
  TempDatabase temp;
  auto store = OpenStore(temp.path());
  ASSERT_NE(store, nullptr);
  {
    HERALD_ASSERT_OK_AND_ASSIGN(auto tx, store->BeginTransaction());
    Exec(tx->db(), "CREATE TABLE orders (id TEXT PRIMARY KEY, amount INTEGER)");
    ASSERT_THAT(tx->Commit(), IsOk());
  }
  {
    HERALD_ASSERT_OK_AND_ASSIGN(auto tx, store->BeginTransaction());
    Exec(tx->db(), "INSERT INTO orders VALUES ('o-1', 100)");
    ASSERT_THAT(store->Append(*tx, TestEnvelope("o-1", 1)), IsOk());
    ASSERT_THAT(tx->Rollback(), IsOk());
    EXPECT_EQ(tx->db(), nullptr);
    EXPECT_THAT(tx->Commit(), StatusIs(absl::StatusCode::kFailedPrecondition));
  }
  {
    HERALD_ASSERT_OK_AND_ASSIGN(auto tx, store->BeginTransaction());
    Exec(tx->db(), "INSERT INTO orders VALUES ('o-2', 200)");
    ASSERT_THAT(store->Append(*tx, TestEnvelope("o-2", 2)), IsOk());
    ASSERT_THAT(tx->Commit(), IsOk());
  }
  SqliteHandle db = OpenHandle(temp.path());
  EXPECT_EQ(CountRows(db.get(), "SELECT COUNT(*) FROM orders"), 1);
  EXPECT_EQ(CountRows(db.get(), "SELECT COUNT(*) FROM orders WHERE id = 'o-2'"), 1);
  std::vector<OutboxRecord> rows = FetchPending(*store);
  ASSERT_THAT(rows, SizeIs(1));
  EXPECT_EQ(rows[0].envelope.key, "o-2");
}

TEST(SqliteOutboxStore, AppendRejectsDuplicateIdsAndIncompleteEnvelopes) {
  TempDatabase temp;
  auto store = OpenStore(temp.path());
  ASSERT_NE(store, nullptr);
  HERALD_ASSERT_OK_AND_ASSIGN(auto tx, store->Begin());
  Envelope e = TestEnvelope("k", 1);
  ASSERT_THAT(store->Append(*tx, e), IsOk());
  EXPECT_THAT(store->Append(*tx, e), StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("UNIQUE")));
  Envelope no_type = TestEnvelope("k", 2);
  no_type.type.clear();
  EXPECT_THAT(store->Append(*tx, no_type), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("type")));
  Envelope no_id = TestEnvelope("k", 3);
  no_id.id.clear();
  ASSERT_THAT(store->Append(*tx, no_id), IsOk());
  ASSERT_THAT(tx->Commit(), IsOk());
  std::vector<OutboxRecord> rows = FetchPending(*store);
  ASSERT_THAT(rows, SizeIs(2));
  EXPECT_TRUE(IsUuidV7(rows[1].envelope.id)) << rows[1].envelope.id;
}

TEST(SqliteOutboxStore, RawHandleAppendNeedsAnOpenTransaction) {
  TempDatabase temp;
  auto store = OpenStore(temp.path());
  ASSERT_NE(store, nullptr);
  SqliteHandle db = OpenHandle(temp.path());
  Exec(db.get(), "CREATE TABLE orders (id TEXT PRIMARY KEY)");

  EXPECT_THAT(store->Append(db.get(), TestEnvelope("o-1", 1)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("call BEGIN")));
  EXPECT_THAT(store->MarkProcessed(db.get(), "reader", "e-1"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("call BEGIN")));
  EXPECT_THAT(store->Append(static_cast<sqlite3*>(nullptr), TestEnvelope("o-1", 1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(FetchPending(*store), IsEmpty());

  // Rolled back: neither the business row nor the event.
  Exec(db.get(), "BEGIN IMMEDIATE");
  Exec(db.get(), "INSERT INTO orders VALUES ('o-1')");
  ASSERT_THAT(store->Append(db.get(), TestEnvelope("o-1", 1)), IsOk());
  EXPECT_THAT(store->MarkProcessed(db.get(), "reader", "e-1"), IsOkAndHolds(true));
  Exec(db.get(), "ROLLBACK");
  EXPECT_THAT(FetchPending(*store), IsEmpty());
  EXPECT_EQ(CountRows(db.get(), "SELECT COUNT(*) FROM orders"), 0);

  // Committed: both.
  Exec(db.get(), "BEGIN IMMEDIATE");
  Exec(db.get(), "INSERT INTO orders VALUES ('o-2')");
  ASSERT_THAT(store->Append(db.get(), TestEnvelope("o-2", 2)), IsOk());
  EXPECT_THAT(store->MarkProcessed(db.get(), "reader", "e-1"), IsOkAndHolds(true));
  Exec(db.get(), "COMMIT");
  std::vector<OutboxRecord> rows = FetchPending(*store);
  ASSERT_THAT(rows, SizeIs(1));
  EXPECT_EQ(rows[0].envelope.key, "o-2");
  EXPECT_EQ(CountRows(db.get(), "SELECT COUNT(*) FROM orders"), 1);
  Exec(db.get(), "BEGIN");
  EXPECT_THAT(store->MarkProcessed(db.get(), "reader", "e-1"), IsOkAndHolds(false));
  Exec(db.get(), "COMMIT");
}

// Statements prepared on a caller's handle are finalized on every path, so
// the caller can close it with plain sqlite3_close (which fails with
// SQLITE_BUSY while any statement is left unfinalized).
TEST(SqliteOutboxStore, RawHandleCallsLeaveNoStatementBehindOnSuccessOrError) {
  TempDatabase temp;
  auto store = OpenStore(temp.path());
  ASSERT_NE(store, nullptr);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(temp.path().c_str(), &db), SQLITE_OK);
  Exec(db, "BEGIN IMMEDIATE");
  Envelope e = TestEnvelope("k", 1);
  ASSERT_THAT(store->Append(db, e), IsOk());
  EXPECT_EQ(sqlite3_next_stmt(db, nullptr), nullptr);
  EXPECT_THAT(store->Append(db, e), Not(IsOk()));  // duplicate id
  EXPECT_EQ(sqlite3_next_stmt(db, nullptr), nullptr);
  EXPECT_THAT(store->MarkProcessed(db, "reader", "e-1"), IsOkAndHolds(true));
  EXPECT_THAT(store->MarkProcessed(db, "", "e-2"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(sqlite3_next_stmt(db, nullptr), nullptr);
  // The failed calls left the transaction usable.
  Exec(db, "COMMIT");
  EXPECT_THAT(FetchPending(*store), SizeIs(1));
  EXPECT_EQ(sqlite3_close(db), SQLITE_OK);
}

TEST(SqliteOutboxStore, RawHandleCommitWakesTheRelayOfThisProcess) {
  TempDatabase temp;
  auto store = OpenStore(temp.path());
  ASSERT_NE(store, nullptr);
  SqliteHandle db = OpenHandle(temp.path());
  ASSERT_THAT(store->WaitForWork(absl::ZeroDuration()), IsOk());  // forget earlier signals

  Exec(db.get(), "BEGIN IMMEDIATE");
  ASSERT_THAT(store->Append(db.get(), TestEnvelope("k", 1)), IsOk());
  std::atomic<bool> woke{false};
  absl::Duration waited;
  std::thread waiter([&] {
    absl::Time start = absl::Now();
    EXPECT_THAT(store->WaitForWork(absl::Seconds(60)), IsOk());
    waited = absl::Now() - start;
    woke.store(true);
  });
  Exec(db.get(), "COMMIT");  // the WAL hook signals after the commit
  waiter.join();
  EXPECT_TRUE(woke.load());
  EXPECT_LT(waited, absl::Seconds(30));
  EXPECT_THAT(FetchPending(*store), SizeIs(1));
}

TEST(SqliteOutboxStore, ACommitThroughOneStoreWakesAnotherStoreOnTheSameFile) {
  TempDatabase temp;
  auto writer = OpenStore(temp.path());
  auto relay_side = OpenStore(temp.path());
  ASSERT_NE(writer, nullptr);
  ASSERT_NE(relay_side, nullptr);
  ASSERT_THAT(relay_side->WaitForWork(absl::ZeroDuration()), IsOk());  // forget earlier signals
  absl::Duration waited;
  std::thread waiter([&] {
    absl::Time start = absl::Now();
    EXPECT_THAT(relay_side->WaitForWork(absl::Seconds(60)), IsOk());
    waited = absl::Now() - start;
  });
  HERALD_ASSERT_OK_AND_ASSIGN(auto tx, writer->Begin());
  Envelope no_time = TestEnvelope("k", 1);
  no_time.time = absl::UnixEpoch();
  ASSERT_THAT(writer->Append(*tx, no_time), IsOk());
  ASSERT_THAT(tx->Commit(), IsOk());
  waiter.join();
  EXPECT_LT(waited, absl::Seconds(30));
  std::vector<OutboxRecord> rows = FetchPending(*relay_side);
  ASSERT_THAT(rows, SizeIs(1));
  EXPECT_GT(rows[0].envelope.time, absl::Now() - absl::Hours(1)) << "an unset time becomes now";
}

TEST(SqliteOutboxStore, TheRelayIsWokenByACommitLongBeforeItsPollInterval) {
  TempDatabase temp;
  auto store = OpenStore(temp.path());
  ASSERT_NE(store, nullptr);
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  herald::testing::FakeTransport& fake = bus.transport<herald::testing::FakeTransport>();
  RelayOptions options;
  options.poll_interval = absl::Seconds(120);  // without the wake-up the event would wait this long
  OutboxRelay relay(*store, bus, options);
  ASSERT_THAT(relay.Start(), IsOk());
  ASSERT_TRUE(herald::testing::Eventually([&] { return relay.Stats().rounds >= 1; }));  // it found nothing and waits

  absl::Time committed = absl::Now();
  HERALD_ASSERT_OK_AND_ASSIGN(auto tx, store->Begin());
  ASSERT_THAT(store->Append(*tx, TestEnvelope("k", 1)), IsOk());
  ASSERT_THAT(tx->Commit(), IsOk());
  ASSERT_TRUE(herald::testing::Eventually([&] { return !fake.published().empty(); }, absl::Seconds(60)));
  EXPECT_THAT(fake.published(), SizeIs(1));
  EXPECT_LT(absl::Now() - committed, absl::Seconds(60));
  relay.Stop();
}

TEST(SqliteOutboxStore, TheWalHookOnARawHandleStillCheckpoints) {
  TempDatabase temp;
  auto store = OpenStore(temp.path());
  ASSERT_NE(store, nullptr);
  SqliteHandle db = OpenHandle(temp.path());
  // ~6 pages per commit, 400 commits: about 2400 WAL pages without
  // checkpoints, at most about 1000 with them.
  for (int i = 0; i < 400; ++i) {
    Exec(db.get(), "BEGIN IMMEDIATE");
    Envelope e = TestEnvelope("k", i);
    e.payload = herald::StrCat("{\"blob\":\"", std::string(16 * 1024, 'x'), "\"}");
    ASSERT_THAT(store->Append(db.get(), e), IsOk());
    Exec(db.get(), "COMMIT");
  }
  FILE* wal = std::fopen((temp.path() + "-wal").c_str(), "rb");
  ASSERT_NE(wal, nullptr);
  std::fseek(wal, 0, SEEK_END);
  long size = std::ftell(wal);
  std::fclose(wal);
  EXPECT_LT(size, 6L * 1024 * 1024) << "the WAL grew without checkpoints";
}

TEST(SqliteOutboxStore, ASecondWriterInTheProcessWaitsForTheFirstThenTimesOut) {
  TempDatabase temp;
  SqliteOptions options;
  options.path = temp.path();
  options.busy_timeout = absl::Milliseconds(200);
  auto store = OpenStore(options);
  ASSERT_NE(store, nullptr);
  HERALD_ASSERT_OK_AND_ASSIGN(auto first, store->Begin());
  absl::StatusOr<std::unique_ptr<herald::Transaction>> second = absl::UnknownError("not run");
  std::thread other([&] { second = store->Begin(); });
  other.join();
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("busy_timeout")));
  ASSERT_THAT(first->Commit(), IsOk());
  EXPECT_THAT(store->Begin(), IsOk());
}

TEST(SqliteOutboxStore, AnotherConnectionsWriteLockIsReportedAsUnavailable) {
  TempDatabase temp;
  SqliteOptions options;
  options.path = temp.path();
  options.busy_timeout = absl::Milliseconds(100);
  auto store = OpenStore(options);
  ASSERT_NE(store, nullptr);
  SqliteHandle db = OpenHandle(temp.path());
  Exec(db.get(), "BEGIN IMMEDIATE");  // another "process" holds the write lock
  EXPECT_THAT(store->Begin(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("busy_timeout")));
  EXPECT_THAT(store->MarkPublished({1}), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(FetchPending(*store), IsEmpty()) << "WAL readers are not blocked";
  Exec(db.get(), "ROLLBACK");
  EXPECT_THAT(store->Begin(), IsOk());
}

// ---- Relay side ----

TEST(SqliteOutboxStore, MalformedHeadersAreParkedAndBlockOnlyTheirKey) {
  TempDatabase temp;
  auto store = OpenStore(temp.path());
  ASSERT_NE(store, nullptr);
  SqliteHandle db = OpenHandle(temp.path());
  Exec(db.get(),
       "INSERT INTO herald_outbox (event_type, topic, event_key, headers, event_payload) VALUES "
       "('t', 'orders', 'bad', 'not json at all', '{}'),"
       "('t', 'orders', 'bad', NULL, '{\"after\":1}'),"
       "('t', 'orders', 'fine', '[[\"traceparent\",\"00-abc\"]]', '{}'),"
       "('t', 'orders', 'worse', '[[\"name\", 7]]', '{}'),"
       "('t', 'orders', NULL, '{\"not\":\"an array\"}', '{}')");
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  herald::testing::FakeTransport& fake = bus.transport<herald::testing::FakeTransport>();
  OutboxRelay relay(*store, bus);
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(1));
  std::vector<Envelope> published = fake.published("orders");
  ASSERT_THAT(published, SizeIs(1));
  EXPECT_EQ(published[0].key, "fine");
  EXPECT_THAT(published[0].headers, ElementsAre(std::pair<std::string, std::string>("traceparent", "00-abc")));

  absl::StatusOr<OutboxStats> stats = store->Stats();
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->parked, 3);
  EXPECT_EQ(stats->pending, 1);  // the row behind the bad one
  absl::StatusOr<std::vector<OutboxRecord>> parked = store->ListParked(10);
  ASSERT_THAT(parked, IsOk());
  ASSERT_THAT(*parked, SizeIs(3));
  for (const OutboxRecord& r : *parked) EXPECT_THAT(r.last_error, HasSubstr("headers")) << r.envelope;
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(0));

  // An operator fixes the row and retries it: the key flows again, in order.
  Exec(db.get(), "UPDATE herald_outbox SET headers = NULL WHERE event_key = 'bad'");
  EXPECT_THAT(store->RetryParked({(*parked)[0].sequence}), IsOkAndHolds(1));
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(2));
  published = fake.published("orders");
  ASSERT_THAT(published, SizeIs(3));
  EXPECT_EQ(published[1].payload, "{}");
  EXPECT_EQ(published[2].payload, "{\"after\":1}");
}

// Rows as the seed's Go writer inserts them (no key; key_from derives it):
// a schema_version 0 row is parked with its reason, the later rows of its
// derived key wait (the relay writes the key into them), other keys flow, and
// an operator's skip is recorded in the row and releases the key.
TEST(SqliteOutboxStore, AParkedKeylessRowHoldsBackItsDerivedKeyUntilSkipped) {
  TempDatabase temp;
  auto store = OpenStore(temp.path());
  ASSERT_NE(store, nullptr);
  SqliteHandle db = OpenHandle(temp.path());
  Exec(db.get(),
       "INSERT INTO herald_outbox (event_type, topic, schema_version, event_payload) VALUES "
       "('customer.updated', 'customers', 0, '{\"customer_id\":\"c1\",\"n\":1}'),"
       "('customer.updated', 'customers', 1, '{\"customer_id\":\"c2\",\"n\":1}'),"
       "('customer.updated', 'customers', 1, '{\"customer_id\":\"c1\",\"n\":2}')");
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  herald::testing::FakeTransport& fake = bus.transport<herald::testing::FakeTransport>();
  RelayOptions options;
  options.key_from = {{"customers", "/customer_id"}};
  {
    OutboxRelay relay(*store, bus, options);
    EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(1));
  }
  ASSERT_THAT(fake.published("customers"), SizeIs(1));
  EXPECT_EQ(fake.published("customers")[0].key, "c2");
  EXPECT_EQ(CountRows(db.get(), "SELECT count(*) FROM herald_outbox WHERE event_key = 'c1' AND published_at IS NULL"),
            2)
      << "the derived key is written into the held rows";
  absl::StatusOr<std::vector<OutboxRecord>> parked = store->ListParked(10);
  ASSERT_THAT(parked, IsOk());
  ASSERT_THAT(*parked, SizeIs(1));
  EXPECT_THAT((*parked)[0].last_error, HasSubstr("schema_version 0 is not a valid event schema version"));

  // A later relay (a restart) still holds c1 back, even for a new keyless row.
  Exec(db.get(),
       "INSERT INTO herald_outbox (event_type, topic, event_payload) VALUES "
       "('customer.updated', 'customers', '{\"customer_id\":\"c1\",\"n\":3}')");
  OutboxRelay restarted(*store, bus, options);
  EXPECT_THAT(restarted.RunOnce(), IsOkAndHolds(0));

  ASSERT_THAT(store->SkipParked({(*parked)[0].sequence}, "ticket 5"), IsOkAndHolds(1));
  EXPECT_EQ(
      CountRows(db.get(), herald::StrCat("SELECT count(*) FROM herald_outbox WHERE seq = ", (*parked)[0].sequence,
                                         " AND published_at IS NOT NULL AND parked_at IS NOT NULL AND last_error"
                                         " LIKE 'skipped by operator at %: ticket 5; last error: schema_version 0 %'")),
      1);
  EXPECT_THAT(restarted.RunOnce(), IsOkAndHolds(2));
  std::vector<Envelope> published = fake.published("customers");
  ASSERT_THAT(published, SizeIs(3));
  EXPECT_EQ(published[1].payload, "{\"customer_id\":\"c1\",\"n\":2}");
  EXPECT_EQ(published[2].payload, "{\"customer_id\":\"c1\",\"n\":3}");
  EXPECT_EQ(published[2].key, "c1");
}

TEST(SqliteOutboxStore, PurgingEverythingKeepsTheLastRowSoNewRowsAreFetched) {
  TempDatabase temp;
  auto store = OpenStore(temp.path());
  ASSERT_NE(store, nullptr);
  SqliteHandle db = OpenHandle(temp.path());
  AppendCommitted(*store, "k", 3);
  std::vector<OutboxRecord> rows = FetchPending(*store);
  ASSERT_THAT(rows, SizeIs(3));
  const int64_t last = rows.back().sequence;
  ASSERT_THAT(store->MarkPublished(Sequences(rows)), IsOk());
  ASSERT_THAT(store->Stats(), IsOk());  // moves the store's low-water mark past `last`
  const absl::Time later = absl::Now() + absl::Hours(1);
  EXPECT_THAT(store->PurgePublished(later, 100), IsOkAndHolds(2));
  EXPECT_THAT(store->PurgePublished(later, 100), IsOkAndHolds(0)) << "the row with the highest seq stays";
  EXPECT_EQ(CountRows(db.get(), "SELECT seq FROM herald_outbox WHERE published_at IS NOT NULL"), last);
  absl::StatusOr<OutboxStats> stats = store->Stats();
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->pending, 0);

  // New rows must come after the low-water mark.
  std::vector<std::string> ids = AppendCommitted(*store, "k", 2);
  rows = FetchPending(*store);
  EXPECT_EQ(Ids(rows), ids);
  for (const OutboxRecord& r : rows) EXPECT_GT(r.sequence, last);

  // Through the relay (claim, publish, mark, purge at once), round after round.
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  herald::testing::FakeTransport& fake = bus.transport<herald::testing::FakeTransport>();
  OutboxRelay relay(*store, bus);
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(2));
  for (int round = 0; round < 3; ++round) {
    EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(0));
    AppendCommitted(*store, herald::StrCat("round-", round), 2);
    EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(2)) << "round " << round;
    EXPECT_EQ(CountRows(db.get(), "SELECT COUNT(*) FROM herald_outbox"), 1) << "round " << round;
  }
  EXPECT_THAT(fake.published("orders"), SizeIs(8));
}

// ---- DeletePublished (the relay's mark with zero retention) ----

TEST(SqliteOutboxStore, DeletePublishedDeletesMarkedRowsButKeepsTheNewestMarked) {
  TempDatabase temp;
  auto store = OpenStore(temp.path());
  ASSERT_NE(store, nullptr);
  SqliteHandle db = OpenHandle(temp.path());
  AppendCommitted(*store, "k", 5);
  std::vector<OutboxRecord> rows = FetchPending(*store);
  ASSERT_THAT(rows, SizeIs(5));
  // The first two: deleted at once, nothing left to purge.
  ASSERT_THAT(store->DeletePublished({rows[0].sequence, rows[1].sequence}), IsOk());
  EXPECT_EQ(CountRows(db.get(), "SELECT COUNT(*) FROM herald_outbox"), 3);
  EXPECT_THAT(store->PurgePublished(absl::Now() + absl::Hours(1), 100), IsOkAndHolds(0));
  // The rest, the newest among them: it stays, marked, so its seq is not
  // handed out again.
  ASSERT_THAT(store->DeletePublished({rows[2].sequence, rows[3].sequence, rows[4].sequence}), IsOk());
  EXPECT_EQ(CountRows(db.get(), "SELECT COUNT(*) FROM herald_outbox"), 1);
  EXPECT_EQ(CountRows(db.get(), "SELECT seq FROM herald_outbox WHERE published_at IS NOT NULL"), rows[4].sequence);
  EXPECT_THAT(FetchPending(*store), IsEmpty());
  absl::StatusOr<OutboxStats> stats = store->Stats();
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->pending, 0);
  const int64_t kept = rows[4].sequence;

  // New rows come after it, and once they are published the kept one goes.
  std::vector<std::string> ids = AppendCommitted(*store, "k", 2);
  rows = FetchPending(*store);
  EXPECT_EQ(Ids(rows), ids);
  for (const OutboxRecord& r : rows) EXPECT_GT(r.sequence, kept);
  ASSERT_THAT(store->DeletePublished(Sequences(rows)), IsOk());
  EXPECT_THAT(store->PurgePublished(absl::Now() + absl::Hours(1), 100), IsOkAndHolds(1));
  EXPECT_EQ(CountRows(db.get(), "SELECT COUNT(*) FROM herald_outbox"), 1);
  EXPECT_EQ(CountRows(db.get(), "SELECT seq FROM herald_outbox"), rows.back().sequence);
}

TEST(SqliteOutboxStore, DeletePublishedKeepsKeyOrderAndParkedRowsBlockTheirKey) {
  TempDatabase temp;
  auto store = OpenStore(temp.path());
  ASSERT_NE(store, nullptr);
  SqliteHandle db = OpenHandle(temp.path());
  AppendCommitted(*store, "a", 2);
  std::vector<OutboxRecord> first = FetchPending(*store);
  ASSERT_THAT(first, SizeIs(2));
  ASSERT_THAT(store->MarkFailed(first[0].sequence, "broker said no", absl::Now(), /*park=*/true), IsOk());
  std::vector<std::string> b = AppendCommitted(*store, "b", 2);

  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  herald::testing::FakeTransport& fake = bus.transport<herald::testing::FakeTransport>();
  OutboxRelay relay(*store, bus);
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(2)) << "key b flows, a waits behind its parked row";
  EXPECT_EQ(CountRows(db.get(), "SELECT COUNT(*) FROM herald_outbox WHERE event_key = 'a'"), 2);
  EXPECT_EQ(CountRows(db.get(), "SELECT COUNT(*) FROM herald_outbox WHERE event_key = 'b'"), 1)
      << "the newest row is kept, marked";
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(0));

  EXPECT_THAT(store->RetryParked({}), IsOkAndHolds(1));
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(2));
  std::vector<std::string> published;
  for (const Envelope& e : fake.published("orders")) published.push_back(e.id);
  EXPECT_THAT(published, ElementsAre(b[0], b[1], first[0].envelope.id, first[1].envelope.id));
  EXPECT_EQ(CountRows(db.get(), "SELECT COUNT(*) FROM herald_outbox WHERE published_at IS NULL"), 0);
  EXPECT_LE(CountRows(db.get(), "SELECT COUNT(*) FROM herald_outbox"), 1);
}

TEST(SqliteOutboxStore, ARelayWithZeroRetentionDeletesAtMarkRoundAfterRoundWithoutReusingSequences) {
  TempDatabase temp;
  auto store = OpenStore(temp.path());
  ASSERT_NE(store, nullptr);
  SqliteHandle db = OpenHandle(temp.path());
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  herald::testing::FakeTransport& fake = bus.transport<herald::testing::FakeTransport>();
  OutboxRelay relay(*store, bus);  // retention zero, the default: DeletePublished
  int64_t last = 0;
  std::vector<std::string> appended;
  for (int round = 0; round < 4; ++round) {
    std::vector<std::string> ids = AppendCommitted(*store, herald::StrCat("k", round % 2), 3);
    appended.insert(appended.end(), ids.begin(), ids.end());
    std::vector<OutboxRecord> rows = FetchPending(*store);
    ASSERT_EQ(Ids(rows), ids) << "round " << round;
    EXPECT_GT(rows.front().sequence, last) << "round " << round;
    last = rows.back().sequence;
    EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(3)) << "round " << round;
    // Deleted at mark, but the newest row, marked so that its seq is not
    // handed out again.
    EXPECT_EQ(CountRows(db.get(), "SELECT COUNT(*) FROM herald_outbox"), 1) << "round " << round;
    EXPECT_EQ(CountRows(db.get(), "SELECT MAX(seq) FROM herald_outbox WHERE published_at IS NOT NULL"), last);
  }
  std::vector<std::string> published;
  for (const Envelope& e : fake.published("orders")) published.push_back(e.id);
  EXPECT_EQ(published, appended);
}

TEST(SqliteOutboxStore, ARelayWithRetentionMarksRowsAndKeepsThem) {
  TempDatabase temp;
  auto store = OpenStore(temp.path());
  ASSERT_NE(store, nullptr);
  SqliteHandle db = OpenHandle(temp.path());
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  OutboxRelay relay(*store, bus, {.retention = absl::Hours(1)});
  for (int round = 0; round < 3; ++round) {
    AppendCommitted(*store, "k", 3);
    EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(3)) << "round " << round;
    EXPECT_EQ(CountRows(db.get(), "SELECT COUNT(*) FROM herald_outbox WHERE published_at IS NOT NULL"), 3 * (round + 1))
        << "round " << round;
  }
}

TEST(SqliteOutboxStore, ARelayStoreFetchesRowsAppendedAfterAnotherStorePurgedEverything) {
  TempDatabase temp;
  auto relay_store = OpenStore(temp.path());  // like another process: its own low-water mark
  auto writer = OpenStore(temp.path());
  ASSERT_NE(relay_store, nullptr);
  ASSERT_NE(writer, nullptr);
  int64_t last = 0;
  for (int round = 0; round < 3; ++round) {
    std::vector<std::string> ids = AppendCommitted(*writer, "k", 3);
    std::vector<OutboxRecord> rows = FetchPending(*relay_store);
    ASSERT_EQ(Ids(rows), ids) << "round " << round;
    EXPECT_GT(rows.front().sequence, last) << "round " << round;
    last = rows.back().sequence;
    ASSERT_THAT(relay_store->MarkPublished(Sequences(rows)), IsOk());
    ASSERT_THAT(relay_store->Stats(), IsOk());  // moves its low-water mark past `last`
    // The writer purges all it may.
    EXPECT_THAT(writer->PurgePublished(absl::Now() + absl::Hours(1), 100), IsOkAndHolds(round == 0 ? 2 : 3));
  }
}

TEST(SqliteOutboxStore, AnOutboxTableCreatedWithAutoincrementKeepsWorking) {
  TempDatabase temp;
  {
    // An outbox table as an earlier schema made it: seq AUTOINCREMENT.
    auto store = OpenStore(temp.path());
    ASSERT_NE(store, nullptr);
  }
  {
    SqliteHandle db = OpenHandle(temp.path());
    std::vector<std::string> schema;
    sqlite3_stmt* stmt = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db.get(),
                                 "SELECT sql FROM sqlite_master WHERE tbl_name = 'herald_outbox' AND sql IS NOT NULL "
                                 "ORDER BY type DESC",  // the table first, then its indexes
                                 -1, &stmt, nullptr),
              SQLITE_OK);
    while (sqlite3_step(stmt) == SQLITE_ROW)
      schema.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
    sqlite3_finalize(stmt);
    ASSERT_THAT(schema, SizeIs(3));
    const std::string plain_key = "seq INTEGER PRIMARY KEY,";
    size_t at = schema[0].find(plain_key);
    ASSERT_NE(at, std::string::npos) << schema[0];
    schema[0].replace(at, plain_key.size(), "seq INTEGER PRIMARY KEY AUTOINCREMENT,");
    Exec(db.get(), "DROP TABLE herald_outbox");
    for (const std::string& sql : schema) Exec(db.get(), sql);
  }
  auto store = OpenStore(temp.path());
  ASSERT_NE(store, nullptr);
  int64_t last = 0;
  for (int round = 0; round < 2; ++round) {
    std::vector<std::string> ids = AppendCommitted(*store, "k", 3);
    std::vector<OutboxRecord> rows = FetchPending(*store);
    ASSERT_EQ(Ids(rows), ids);
    EXPECT_GT(rows.front().sequence, last);
    last = rows.back().sequence;
    ASSERT_THAT(store->MarkPublished(Sequences(rows)), IsOk());
    ASSERT_THAT(store->Stats(), IsOk());  // moves the low-water mark past `last`
    EXPECT_THAT(store->PurgePublished(absl::Now() + absl::Hours(1), 100), IsOkAndHolds(round == 0 ? 2 : 3));
  }
  SqliteHandle db = OpenHandle(temp.path());
  EXPECT_EQ(CountRows(db.get(), "SELECT seq FROM sqlite_sequence WHERE name = 'herald_outbox'"), last);
}

TEST(SqliteOutboxStore, ShardsAreUnimplemented) {
  TempDatabase temp;
  auto store = OpenStore(temp.path());
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(store->FetchPendingBatch({.limit = 10, .shard = 1, .shard_count = 2}),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("leader lease")));
}

TEST(SqliteOutboxStore, LeaseIsExclusiveWhileItsHolderLivesHoweverLongItTakes) {
  TempDatabase temp;
  herald::testing::FakeClock clock(absl::Now());
  SqliteOptions options;
  options.path = temp.path();
  options.clock = &clock;
  options.lease_ttl = absl::Seconds(30);
  auto store_a = OpenStore(options);
  auto store_b = OpenStore(options);  // another process on the file
  ASSERT_NE(store_a, nullptr);
  ASSERT_NE(store_b, nullptr);

  absl::StatusOr<std::unique_ptr<Lease>> a = store_a->TryAcquireLease("relay");
  ASSERT_THAT(a, IsOk());
  EXPECT_THAT(store_b->TryAcquireLease("relay"),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("held by a live relay process")));
  EXPECT_THAT(store_b->TryAcquireLease("relay-other"), IsOk());
  EXPECT_THAT(store_a->TryAcquireLease("relay"), StatusIs(absl::StatusCode::kUnavailable));
  // Renewed by Check: still held after more than one ttl in total.
  clock.Advance(absl::Seconds(20));
  EXPECT_THAT((*a)->Check(), IsOk());
  clock.Advance(absl::Seconds(20));
  EXPECT_THAT(store_b->TryAcquireLease("relay"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT((*a)->Check(), IsOk());

  // A batch far longer than the ttl without a Check (a broker down for
  // minutes): the live holder keeps the lease; no standby takes over
  // mid-batch (it did, before, once the row expired).
  clock.Advance(absl::Minutes(10));
  EXPECT_THAT(store_b->TryAcquireLease("relay"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT((*a)->Check(), IsOk());

  a->reset();  // released: free at once
  absl::StatusOr<std::unique_ptr<Lease>> b = store_b->TryAcquireLease("relay");
  ASSERT_THAT(b, IsOk());
  EXPECT_THAT(store_a->TryAcquireLease("relay"), StatusIs(absl::StatusCode::kUnavailable));
  b->reset();
  EXPECT_THAT(store_a->TryAcquireLease("relay"), IsOk());
}

TEST(SqliteOutboxStore, FetchPendingUsesTheStoreClockForRetryTimes) {
  TempDatabase temp;
  herald::testing::FakeClock clock(absl::FromUnixMicros(absl::ToUnixMicros(absl::Now())));
  SqliteOptions options;
  options.path = temp.path();
  options.clock = &clock;
  auto store = OpenStore(options);
  ASSERT_NE(store, nullptr);
  HERALD_ASSERT_OK_AND_ASSIGN(auto tx, store->Begin());
  ASSERT_THAT(store->Append(*tx, TestEnvelope("k", 1)), IsOk());
  ASSERT_THAT(tx->Commit(), IsOk());
  std::vector<OutboxRecord> rows = FetchPending(*store);
  ASSERT_THAT(rows, SizeIs(1));
  ASSERT_THAT(store->MarkFailed(rows[0].sequence, "later", clock.Now() + absl::Minutes(5), false), IsOk());
  EXPECT_THAT(FetchPending(*store), IsEmpty());
  clock.Advance(absl::Minutes(5));
  rows = FetchPending(*store);
  ASSERT_THAT(rows, SizeIs(1));
  EXPECT_EQ(rows[0].attempts, 1);
  absl::StatusOr<OutboxStats> stats = store->Stats();
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->oldest_pending_age, absl::Minutes(5));
}

// ---- Error mapping ----

TEST(SqliteErrorToStatus, MapsResultCodesToRetryableAndPermanentStatuses) {
  EXPECT_THAT(SqliteErrorToStatus(SQLITE_OK, "x"), IsOk());
  EXPECT_THAT(SqliteErrorToStatus(SQLITE_DONE, "x"), IsOk());
  EXPECT_THAT(SqliteErrorToStatus(SQLITE_BUSY, "append"),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("busy_timeout")));
  EXPECT_THAT(SqliteErrorToStatus(SQLITE_BUSY_SNAPSHOT, "append"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(SqliteErrorToStatus(SQLITE_LOCKED, "append"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(SqliteErrorToStatus(SQLITE_FULL, "append"),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("disk")));
  EXPECT_THAT(SqliteErrorToStatus(SQLITE_CONSTRAINT_UNIQUE, "append"), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(SqliteErrorToStatus(SQLITE_CONSTRAINT_PRIMARYKEY, "append"), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(SqliteErrorToStatus(SQLITE_CONSTRAINT_NOTNULL, "append"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SqliteErrorToStatus(SQLITE_CORRUPT, "claim"), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("backup")));
  EXPECT_THAT(SqliteErrorToStatus(SQLITE_NOTADB, "open"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(SqliteErrorToStatus(SQLITE_READONLY, "append"), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(SqliteErrorToStatus(SQLITE_IOERR_FSYNC, "commit"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(SqliteErrorToStatus(SQLITE_INTERRUPT, "claim"), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT(SqliteErrorToStatus(SQLITE_MISUSE, "claim"), StatusIs(absl::StatusCode::kInternal, HasSubstr("claim")));
}

}  // namespace
}  // namespace herald::sqlite
