// Two processes on one database file: a child appends while the parent
// relays. SQLite has no server, so this is the edge deployment's real
// concurrency: file locks, WAL, busy_timeout and polling.
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "herald/core/relay.h"
#include "herald/core/status.h"
#include "herald/core/uuid.h"
#include "herald/sqlite/sqlite_outbox_store.h"
#include "herald/testing/fake_bus.h"
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
  herald::testing::FakeBus bus;
  RelayOptions relay_options;
  relay_options.batch_size = 64;
  relay_options.poll_interval = absl::Milliseconds(10);  // other processes' commits are seen by polling
  relay_options.error_backoff = absl::Milliseconds(10);
  OutboxRelay relay(**store, bus, relay_options);
  ASSERT_THAT(relay.Start(), IsOk());

  absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (bus.published("readings").size() < static_cast<size_t>(kEvents) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  relay.Stop();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child failed to append";

  std::vector<Envelope> published = bus.published("readings");
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

}  // namespace
}  // namespace herald::sqlite
