// Crash tests of the outbox relay (DESIGN: "Reliability is shown by tests
// that kill the relay with SIGKILL mid-batch, stop and restart the broker and
// the database mid-stream ... and then count").
//
// Writers in this process commit thousands of events on a few keys while a
// relay in a child process (relay_crash_child) publishes them to a FileTransport
// and is killed with SIGKILL at random points and restarted. Variants: the
// bus failing for a while, and (PostgreSQL) the database restarted
// mid-stream. Afterwards: every committed event was published, each key's
// events were first published in commit order, and duplicates are bounded by
// the batches in flight at the kills and failures.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "file_transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/event.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/core/uuid.h"
#include "herald/testing/status_matchers.h"
#ifdef HERALD_CRASH_SQLITE
#include "herald/sqlite/sqlite_outbox_store.h"
#endif
#ifdef HERALD_CRASH_POSTGRES
#include "herald/postgres/postgres_outbox_store.h"
#endif

namespace {

using herald::testing::IsOk;

constexpr int kWriters = 4;
constexpr int kKeysPerWriter = 2;
constexpr int kEventsPerWriter = 750;
constexpr int kBatch = 100;  // relay_crash_child's batch size

struct Location {
  std::string kind;      // sqlite | postgres
  std::string location;  // db file | schema
};

absl::StatusOr<std::unique_ptr<herald::OutboxStore>> OpenStore(const Location& where) {
#ifdef HERALD_CRASH_SQLITE
  herald::sqlite::SqliteOptions options;
  options.path = where.location;
  options.busy_timeout = absl::Seconds(30);
  HERALD_ASSIGN_OR_RETURN(auto store, herald::sqlite::SqliteOutboxStore::Open(options));
  return std::unique_ptr<herald::OutboxStore>(std::move(store));
#else
  const char* dsn = std::getenv("HERALD_TEST_PG_DSN");
  if (dsn == nullptr) {
    return absl::FailedPreconditionError(
        "HERALD_TEST_PG_DSN is not set: start the test server with scripts/pg-up.sh or run `make test`");
  }
  herald::postgres::PostgresOptions options;
  options.conninfo = dsn;
  options.schema = where.location;
  HERALD_ASSIGN_OR_RETURN(auto store, herald::postgres::PostgresOutboxStore::Open(options));
  return std::unique_ptr<herald::OutboxStore>(std::move(store));
#endif
}

std::string ChildPath() {
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "relay_crash_child").string();
}

pid_t SpawnRelay(const Location& where, const std::string& out, bool drain) {
  pid_t pid = fork();
  if (pid == 0) {
    std::string child = ChildPath();
    if (drain) {
      execl(child.c_str(), child.c_str(), where.kind.c_str(), where.location.c_str(), out.c_str(), "--drain",
            static_cast<char*>(nullptr));
    } else {
      execl(child.c_str(), child.c_str(), where.kind.c_str(), where.location.c_str(), out.c_str(),
            static_cast<char*>(nullptr));
    }
    _exit(127);
  }
  return pid;
}

// One writer: commits its events in small transactions; an event whose commit
// outcome is unknown (database restarting) is appended again with the same id,
// and kAlreadyExists then proves the first commit went through.
void Write(herald::OutboxStore* store, int writer, std::atomic<int>* committed, std::atomic<bool>* failed) {
  std::mt19937 rng(writer);
  int n[kKeysPerWriter] = {};
  int i = 0;
  while (i < kEventsPerWriter) {
    int in_tx = 1 + static_cast<int>(rng() % 5);
    std::vector<herald::Envelope> batch;
    for (int j = 0; j < in_tx && i + j < kEventsPerWriter; ++j) {
      int k = static_cast<int>(rng() % kKeysPerWriter);
      herald::Envelope e;
      e.time = absl::Now();
      e.id = herald::NewUuidV7(e.time);
      e.type = "crash.test";
      e.topic = "crash-events";
      e.key = herald::StrCat("w", writer, "-k", k);
      e.payload = herald::StrCat(n[k]++);
      batch.push_back(std::move(e));
    }
    for (int tries = 0;; ++tries) {
      if (tries > 600) {
        failed->store(true);
        return;
      }
      absl::StatusOr<std::unique_ptr<herald::Transaction>> tx = store->Begin();
      absl::Status s = tx.status();
      bool already = false;
      for (size_t b = 0; s.ok() && b < batch.size(); ++b) {
        s = store->Append(**tx, batch[b]);
        if (s.code() == absl::StatusCode::kAlreadyExists && b == 0) already = true;
      }
      if (s.ok()) s = (*tx)->Commit();
      if (s.ok() || already) break;
      absl::SleepFor(absl::Milliseconds(50));
    }
    i += static_cast<int>(batch.size());
    committed->fetch_add(static_cast<int>(batch.size()));
    // Spread the writes over a few seconds so the relay is killed many times
    // while rows keep arriving.
    absl::SleepFor(absl::Milliseconds(12));
  }
}

struct Scenario {
  bool fail_bus = false;
  bool restart_database = false;
};

void RunScenario(const Location& where, const std::string& out, const Scenario& scenario) {
  absl::StatusOr<std::unique_ptr<herald::OutboxStore>> store = OpenStore(where);
  ASSERT_THAT(store, IsOk());

  std::atomic<int> committed{0};
  std::atomic<bool> writer_failed{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) writers.emplace_back(Write, store->get(), w, &committed, &writer_failed);

  std::mt19937 rng(42);
  int kills = 0;
  int disruptions = 0;
  const int total = kWriters * kEventsPerWriter;
  while (committed.load() < total && !writer_failed.load()) {
    pid_t relay = SpawnRelay(where, out, /*drain=*/false);
    ASSERT_GT(relay, 0);
    absl::SleepFor(absl::Milliseconds(100 + rng() % 400));
    if (scenario.fail_bus && kills % 3 == 1) {
      std::FILE* f = std::fopen((out + ".fail").c_str(), "w");
      if (f != nullptr) std::fclose(f);
      absl::SleepFor(absl::Milliseconds(300));
      std::remove((out + ".fail").c_str());
      ++disruptions;
    }
    if (scenario.restart_database && kills % 3 == 1) {
      const char* ctl = std::getenv("HERALD_TEST_PG_CTL");
      ASSERT_NE(ctl, nullptr) << "HERALD_TEST_PG_CTL is not set: run `make test` (or point it at scripts/pg-ctl.sh)";
      ASSERT_EQ(std::system(herald::StrCat(ctl, " restart >/dev/null 2>&1").c_str()), 0);
      ++disruptions;
    }
    kill(relay, SIGKILL);
    int status = 0;
    waitpid(relay, &status, 0);
    ++kills;
  }
  for (std::thread& t : writers) t.join();
  ASSERT_FALSE(writer_failed.load()) << "a writer could not commit for a minute";
  ASSERT_EQ(committed.load(), total);
  ASSERT_GE(kills, 5) << "the writers finished too fast for the relay to be killed mid-stream";

  // A last relay publishes whatever is left and exits.
  pid_t drain = SpawnRelay(where, out, /*drain=*/true);
  int status = 0;
  waitpid(drain, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "draining relay failed";

  // Count.
  std::vector<herald::tests::FileTransport::Line> lines = herald::tests::FileTransport::Read(out);
  std::map<std::string, std::vector<int>> by_key;
  std::set<std::string> ids;
  for (const auto& line : lines) {
    by_key[line.key].push_back(std::atoi(line.payload.c_str()));
    ids.insert(line.id);
  }
  EXPECT_EQ(static_cast<int>(ids.size()), total) << "every committed event is published, exactly these";
  int duplicates = static_cast<int>(lines.size()) - static_cast<int>(ids.size());
  for (const auto& [key, values] : by_key) {
    // First publications come in commit order: 0, 1, 2, ...
    int next = 0;
    std::set<int> seen;
    for (int v : values) {
      if (seen.insert(v).second) {
        ASSERT_EQ(v, next) << "key " << key << ": event " << v << " first published before " << next;
        ++next;
      }
    }
  }
  // Only batches in flight at a kill or a disruption are published again.
  EXPECT_LE(duplicates, (kills + disruptions + 1) * kBatch)
      << kills << " kills, " << disruptions << " disruptions, " << duplicates << " duplicates";
  std::printf("crash test: %d events, %d kills, %d disruptions, %d duplicates\n", total, kills, disruptions,
              duplicates);
}

class RelayCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           herald::StrCat("herald-crash-", getpid(), "-", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    out_ = (dir_ / "delivered.txt").string();
#ifdef HERALD_CRASH_SQLITE
    where_ = {"sqlite", (dir_ / "outbox.db").string()};
#else
    where_ = {"postgres", herald::StrCat("crash_", getpid(), "_",
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name())};
    for (char& c : where_.location) c = static_cast<char>(std::tolower(c));
#endif
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
  std::string out_;
  Location where_;
};

TEST_F(RelayCrashTest, KilledRelayLosesNothingAndKeepsKeyOrder) { RunScenario(where_, out_, {}); }

TEST_F(RelayCrashTest, BusFailingForAWhileLosesNothing) { RunScenario(where_, out_, {.fail_bus = true}); }

#ifdef HERALD_CRASH_POSTGRES
TEST_F(RelayCrashTest, DatabaseRestartMidStreamLosesNothing) {
  RunScenario(where_, out_, {.restart_database = true});
}
#endif

}  // namespace
