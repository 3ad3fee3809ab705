// Two processes on one database file: a child appends while the parent
// relays. SQLite has no server, so this is the edge deployment's real
// concurrency: file locks, WAL, busy_timeout and polling.
#include <signal.h>
#include <sqlite3.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "herald/core/relay.h"
#include "herald/core/status.h"
#include "herald/core/uuid.h"
#include "herald/sqlite/sqlite_outbox_store.h"
#include "herald/testing/eventually.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/status_matchers.h"

namespace herald::sqlite {
namespace {

using ::herald::testing::IsOk;

constexpr int kEvents = 600;
constexpr int kPerTransaction = 5;
constexpr int kKeys = 4;

// The child: its own store on the file, appending kEvents in small
// transactions. Returns the process exit code.
int AppendInChild(const std::string& path) {
  SqliteOptions options;
  options.path = path;
  options.busy_timeout = absl::Seconds(30);
  absl::StatusOr<std::unique_ptr<SqliteOutboxStore>> store = SqliteOutboxStore::Open(options);
  if (!store.ok()) return 2;
  for (int n = 0; n < kEvents; n += kPerTransaction) {
    absl::StatusOr<std::unique_ptr<Transaction>> tx = (*store)->BeginTransaction();
    if (!tx.ok()) return 3;
    for (int i = n; i < n + kPerTransaction; ++i) {
      Envelope e;
      e.time = absl::Now();
      e.id = NewUuidV7(e.time);
      e.type = "reading.taken";
      e.topic = "readings";
      e.key = i % 5 == 4 ? "" : herald::StrCat("sensor-", i % kKeys);
      e.payload = herald::StrCat("{\"n\":", i, "}");
      if (!(*store)->Append(**tx, e).ok()) return 4;
    }
    if (!(*tx)->Commit().ok()) return 5;
  }
  return 0;
}

TEST(SqliteMultiprocess, ChildAppendsWhileParentRelaysEverythingOnceInOrder) {
  const char* dir = std::getenv("TMPDIR");
  std::string path = herald::StrCat((dir != nullptr && *dir != '\0') ? dir : "/tmp", "/herald_sqlite_multiprocess_",
                                    static_cast<int>(getpid()), ".db");
  {
    // Create the schema first so both processes start from the same file.
    SqliteOptions options;
    options.path = path;
    ASSERT_THAT(SqliteOutboxStore::Open(options), IsOk());
  }
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(AppendInChild(path));  // no connection crossed the fork

  SqliteOptions options;
  options.path = path;
  options.busy_timeout = absl::Seconds(30);
  absl::StatusOr<std::unique_ptr<SqliteOutboxStore>> store = SqliteOutboxStore::Open(options);
  ASSERT_THAT(store, IsOk());
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  herald::testing::FakeTransport& fake = bus.transport<herald::testing::FakeTransport>();
  RelayOptions relay_options;
  relay_options.batch_size = 64;
  relay_options.poll_interval = absl::Milliseconds(10);  // other processes' commits are seen by polling
  relay_options.error_backoff = absl::Milliseconds(10);
  OutboxRelay relay(**store, bus, relay_options);
  ASSERT_THAT(relay.Start(), IsOk());

  EXPECT_TRUE(herald::testing::Eventually(
      [&] { return fake.published("readings").size() >= static_cast<size_t>(kEvents); }, absl::Seconds(120)));
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  relay.Stop();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child failed to append";

  std::vector<Envelope> published = fake.published("readings");
  EXPECT_EQ(published.size(), static_cast<size_t>(kEvents));
  std::set<std::string> ids;
  std::map<std::string, int> last;
  for (const Envelope& e : published) {
    EXPECT_TRUE(ids.insert(e.id).second) << "published twice: " << e;
    int n = std::stoi(e.payload.substr(5));
    if (e.key.empty()) continue;
    auto it = last.find(e.key);
    if (it != last.end()) {
      EXPECT_LT(it->second, n) << e.key << " out of order";
    }
    last[e.key] = n;
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kEvents));
  absl::StatusOr<OutboxStats> stats = (*store)->Stats();
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->pending, 0);
  store->reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
}

constexpr int kPurgeRounds = 3;
constexpr int kPerRound = 3;

// The child of the purge test, opened after the fork (no connection crosses
// it). Each round, on the parent's go byte: purges every published row it
// may, appends kPerRound rows with payloads {"n":0}, {"n":1}, ..., and
// answers 0 (or an error code, then exits).
int PurgeAndAppendInChild(const std::string& path, int go_fd, int done_fd) {
  auto answer = [&](char code) {
    (void)!write(done_fd, &code, 1);
    return code;
  };
  SqliteOptions options;
  options.path = path;
  options.busy_timeout = absl::Seconds(30);
  absl::StatusOr<std::unique_ptr<SqliteOutboxStore>> store = SqliteOutboxStore::Open(options);
  if (!store.ok()) return answer(2);
  int next = 0;
  for (int round = 0; round < kPurgeRounds; ++round) {
    char go = 0;
    if (read(go_fd, &go, 1) != 1) return 3;
    absl::StatusOr<int64_t> purged = (*store)->PurgePublished(absl::Now() + absl::Hours(1), 1000);
    if (!purged.ok()) return answer(4);
    // Round 0 starts from an empty table. Then the parent's rows are
    // published: all go but the one with the highest seq, which goes in the
    // next round, when it is not the last row any more.
    if (*purged != (round == 0 ? 0 : round == 1 ? kPerRound - 1 : kPerRound)) return answer(5);
    absl::StatusOr<std::unique_ptr<Transaction>> tx = (*store)->BeginTransaction();
    if (!tx.ok()) return answer(6);
    for (int i = 0; i < kPerRound; ++i) {
      Envelope e;
      e.time = absl::Now();
      e.id = NewUuidV7(e.time);
      e.type = "reading.taken";
      e.topic = "readings";
      e.key = "sensor";
      e.payload = herald::StrCat("{\"n\":", next++, "}");
      if (!(*store)->Append(**tx, e).ok()) return answer(7);
    }
    if (!(*tx)->Commit().ok()) return answer(8);
    answer(0);
  }
  return 0;
}

// seq has no AUTOINCREMENT, so a new row gets MAX(seq) + 1. The parent's
// low-water mark is past every row it published; another process purges all
// it can, then appends. The parent must claim those rows, round after round.
TEST(SqliteMultiprocess, RowsAppendedAfterAnotherProcessPurgedEverythingAreClaimed) {
  const char* dir = std::getenv("TMPDIR");
  std::string path = herald::StrCat((dir != nullptr && *dir != '\0') ? dir : "/tmp",
                                    "/herald_sqlite_multiprocess_purge_", static_cast<int>(getpid()), ".db");
  {
    SqliteOptions options;
    options.path = path;
    ASSERT_THAT(SqliteOutboxStore::Open(options), IsOk());
  }
  int go[2];
  int done[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(done), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(go[1]);
    close(done[0]);
    _exit(PurgeAndAppendInChild(path, go[0], done[1]));
  }
  close(go[0]);
  close(done[1]);

  SqliteOptions options;
  options.path = path;
  options.busy_timeout = absl::Seconds(30);
  absl::StatusOr<std::unique_ptr<SqliteOutboxStore>> store = SqliteOutboxStore::Open(options);
  ASSERT_THAT(store, IsOk());
  int next = 0;
  int64_t last = 0;
  for (int round = 0; round < kPurgeRounds; ++round) {
    char code = 1;
    ASSERT_EQ(write(go[1], &code, 1), 1);
    ASSERT_EQ(read(done[0], &code, 1), 1) << "the child exited (round " << round << ")";
    ASSERT_EQ(code, 0) << "the child failed (round " << round << ")";

    absl::StatusOr<std::vector<OutboxRecord>> rows = (*store)->FetchPendingBatch({.limit = 100});
    ASSERT_THAT(rows, IsOk());
    ASSERT_EQ(rows->size(), static_cast<size_t>(kPerRound)) << "round " << round;
    std::vector<int64_t> sequences;
    for (const OutboxRecord& r : *rows) {
      EXPECT_EQ(r.envelope.payload, herald::StrCat("{\"n\":", next++, "}"));
      EXPECT_GT(r.sequence, last);
      sequences.push_back(r.sequence);
    }
    last = sequences.back();
    ASSERT_THAT((*store)->MarkPublished(sequences), IsOk());
    ASSERT_THAT((*store)->Stats(), IsOk());  // moves the parent's low-water mark past `last`
  }
  close(go[1]);
  close(done[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  store->reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
}

// The child of the kill -9 test: claims batches of kKillBatch, and before
// each DeletePublished (the relay's mark with zero retention) writes the batch's
// sequences to `out` as one line "seq,seq,...\n". Runs until killed, or
// until no row is left (exit code 0).
constexpr int kKillBatch = 16;

int ClaimAndDeleteInChild(const std::string& path, int out_fd) {
  SqliteOptions options;
  options.path = path;
  options.busy_timeout = absl::Seconds(30);
  absl::StatusOr<std::unique_ptr<SqliteOutboxStore>> store = SqliteOutboxStore::Open(options);
  if (!store.ok()) return 2;
  while (true) {
    absl::StatusOr<std::vector<OutboxRecord>> rows = (*store)->FetchPendingBatch({.limit = kKillBatch});
    if (!rows.ok()) return 3;
    if (rows->empty()) return 0;  // all relayed before the parent killed us
    std::string line;
    std::vector<int64_t> sequences;
    for (const OutboxRecord& r : *rows) {
      herald::StrAppend(&line, line.empty() ? "" : ",", r.sequence);
      sequences.push_back(r.sequence);
    }
    line.push_back('\n');
    if (write(out_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return 4;
    if (!(*store)->DeletePublished(sequences).ok()) return 5;
  }
}

// Reads one '\n'-terminated line of sequences from `fd`; false at EOF.
bool ReadBatch(int fd, std::vector<int64_t>& batch) {
  batch.clear();
  std::string line;
  char c = 0;
  while (read(fd, &c, 1) == 1) {
    if (c == '\n') {
      std::stringstream in(line);
      std::string item;
      while (std::getline(in, item, ',')) batch.push_back(std::stoll(item));
      return true;
    }
    line.push_back(c);
  }
  return false;
}

std::set<int64_t> UnpublishedSequences(const std::string& path) {
  std::set<int64_t> out;
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT seq FROM herald_outbox WHERE published_at IS NULL", -1, &stmt, nullptr),
            SQLITE_OK);
  while (sqlite3_step(stmt) == SQLITE_ROW) out.insert(sqlite3_column_int64(stmt, 0));
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

// DeletePublished removes a batch in one transaction: a relay killed with
// SIGKILL at any moment of it leaves the whole batch pending (to be relayed
// again) or none of it, never part; a row leaves only after the relay handed
// it to DeletePublished; and the newest row stays, so no seq is reused.
TEST(SqliteMultiprocess, DeletePublishedLosesNoRowAndNoPartOfABatchWhenKilled) {
  const char* dir = std::getenv("TMPDIR");
  std::string path = herald::StrCat((dir != nullptr && *dir != '\0') ? dir : "/tmp",
                                    "/herald_sqlite_multiprocess_kill_", static_cast<int>(getpid()), ".db");
  SqliteOptions options;
  options.path = path;
  options.busy_timeout = absl::Seconds(30);
  std::set<int64_t> appended;
  {
    absl::StatusOr<std::unique_ptr<SqliteOutboxStore>> store = SqliteOutboxStore::Open(options);
    ASSERT_THAT(store, IsOk());
    for (int n = 0; n < 40; ++n) {
      absl::StatusOr<std::unique_ptr<Transaction>> tx = (*store)->BeginTransaction();
      ASSERT_THAT(tx, IsOk());
      for (int i = 0; i < 20; ++i) {
        Envelope e;
        e.time = absl::Now();
        e.id = NewUuidV7(e.time);
        e.type = "reading.taken";
        e.topic = "readings";
        e.key = herald::StrCat("sensor-", i % kKeys);
        e.payload = herald::StrCat("{\"n\":", n * 20 + i, "}");
        ASSERT_THAT((*store)->Append(**tx, e), IsOk());
      }
      ASSERT_THAT((*tx)->Commit(), IsOk());
    }
    appended = UnpublishedSequences(path);
    ASSERT_EQ(appended.size(), 800u);
  }
  std::set<int64_t> handed_over;
  for (int round = 0; round < 6; ++round) {
    int out[2];
    ASSERT_EQ(pipe(out), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(out[0]);
      _exit(ClaimAndDeleteInChild(path, out[1]));
    }
    close(out[1]);
    // Let it mark a few batches, then kill it right after it announced one:
    // inside or around that batch's transaction, or a few batches later.
    std::vector<int64_t> batch;
    bool announced = false;
    for (int b = 0; b <= round % 3 + 1; ++b) {
      announced = ReadBatch(out[0], batch);
      if (!announced) break;
      handed_over.insert(batch.begin(), batch.end());
    }
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    if (!announced) {
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
          << "the child failed: " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
      batch.clear();
    }
    // What it announced before it died; the last batch may be in flight.
    std::vector<int64_t> next;
    while (ReadBatch(out[0], next)) {
      handed_over.insert(next.begin(), next.end());
      batch = next;
    }
    close(out[0]);

    std::set<int64_t> pending = UnpublishedSequences(path);
    for (int64_t seq : appended) {
      if (pending.count(seq) == 0) {
        EXPECT_EQ(handed_over.count(seq), 1u) << "row " << seq << " left unrelayed";
      }
    }
    int left = 0;
    for (int64_t seq : batch) left += static_cast<int>(pending.count(seq));
    EXPECT_TRUE(left == 0 || left == static_cast<int>(batch.size()))
        << left << " of the " << batch.size() << " rows of the batch in flight are still pending (round " << round
        << ")";
  }
  // A new relay finishes the job; new rows come after every old one.
  absl::StatusOr<std::unique_ptr<SqliteOutboxStore>> store = SqliteOutboxStore::Open(options);
  ASSERT_THAT(store, IsOk());
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  OutboxRelay relay(**store, bus, {.batch_size = 64});
  while (true) {
    absl::StatusOr<int> n = relay.RunOnce();
    ASSERT_THAT(n, IsOk());
    if (*n == 0) break;
  }
  EXPECT_TRUE(UnpublishedSequences(path).empty());
  {
    absl::StatusOr<std::unique_ptr<Transaction>> tx = (*store)->BeginTransaction();
    ASSERT_THAT(tx, IsOk());
    Envelope e;
    e.type = "reading.taken";
    e.topic = "readings";
    e.payload = "{}";
    ASSERT_THAT((*store)->Append(**tx, e), IsOk());
    ASSERT_THAT((*tx)->Commit(), IsOk());
  }
  std::set<int64_t> fresh = UnpublishedSequences(path);
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_GT(*fresh.begin(), *appended.rbegin());
  store->reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
}

}  // namespace
}  // namespace herald::sqlite
