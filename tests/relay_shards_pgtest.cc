// Several relay processes on one PostgreSQL outbox, sharded by key (DESIGN:
// "optionally N shards by key hash, each leased by one relay, for
// parallelism without breaking per-key order"): three processes relay
// shards 0..2 of 3 while a writer commits, one is SIGKILLed mid-stream and
// replaced, and a fourth started with another shard count relays nothing.
// Afterwards: every event published, each key by one process only, per-key
// order kept.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "file_transport.h"
#include "gtest/gtest.h"
#include "herald/core/relay.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/core/uuid.h"
#include "herald/postgres/postgres_outbox_store.h"
#include "herald/testing/eventually.h"
#include "herald/testing/status_matchers.h"

namespace {

using herald::testing::IsOk;

constexpr int kShards = 3;
constexpr int kKeys = 30;
constexpr int kEvents = 3000;

class RelayShardsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* dsn = std::getenv("HERALD_TEST_PG_DSN");
    ASSERT_NE(dsn, nullptr) << "HERALD_TEST_PG_DSN is not set: start the test server (scripts/servers-up.sh pg)";
    dsn_ = dsn;
    schema_ = herald::StrCat("shards_", getpid(), "_", absl::ToUnixMicros(absl::Now()) % 100000000);
    dir_ = std::filesystem::temp_directory_path() / herald::StrCat("herald-shards-", getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    ASSERT_THAT(herald::postgres::PostgresOutboxStore::Open(Options()), IsOk());  // the schema
  }
  void TearDown() override {
    for (pid_t child : children_) {
      kill(child, SIGKILL);
      waitpid(child, nullptr, 0);
    }
    std::filesystem::remove_all(dir_);
  }
  herald::postgres::PostgresOptions Options() const {
    herald::postgres::PostgresOptions options;
    options.conninfo = dsn_;
    options.schema = schema_;
    return options;
  }
  std::string Out(const std::string& name) const { return (dir_ / (name + ".txt")).string(); }

  // A relay process for shard `shard` of `shard_count`, publishing to
  // Out(name). With `wait_for_lease`, returns once it leads.
  pid_t Spawn(int shard_count, int shard, const std::string& name, bool wait_for_lease) {
    int ready[2];
    EXPECT_EQ(pipe(ready), 0);
    pid_t child = fork();
    if (child == 0) {
      close(ready[0]);
      // Nothing the parent opened is used here.
      absl::StatusOr<std::unique_ptr<herald::postgres::PostgresOutboxStore>> store =
          herald::postgres::PostgresOutboxStore::Open(Options());
      if (!store.ok()) _exit(2);
      herald::Bus bus(std::make_unique<herald::tests::FileTransport>(Out(name), absl::Microseconds(100)));
      herald::RelayOptions options;
      options.batch_size = 50;
      options.poll_interval = absl::Milliseconds(50);
      options.error_backoff = absl::Milliseconds(50);
      options.shard_count = shard_count;
      options.shard = shard;
      herald::OutboxRelay relay(**store, bus, options);
      if (!relay.Start().ok()) _exit(3);
      for (int i = 0; wait_for_lease && i < 1000 && !relay.Stats().leader; ++i) absl::SleepFor(absl::Milliseconds(10));
      char one = relay.Stats().leader ? 1 : 0;
      if (write(ready[1], &one, 1) != 1) _exit(4);
      while (true) pause();  // until SIGKILL
    }
    close(ready[1]);
    char leads = 0;
    EXPECT_EQ(read(ready[0], &leads, 1), 1);
    close(ready[0]);
    if (wait_for_lease) {
      EXPECT_EQ(leads, 1) << name << " did not take its lease";
    }
    children_.push_back(child);
    return child;
  }

  std::string dsn_;
  std::string schema_;
  std::filesystem::path dir_;
  std::vector<pid_t> children_;
};

TEST_F(RelayShardsTest, ThreeProcessesSplitTheKeysKeepTheirOrderAndLoseNothing) {
  std::vector<pid_t> relays;
  for (int shard = 0; shard < kShards; ++shard) {
    relays.push_back(Spawn(kShards, shard, herald::StrCat("shard", shard), /*wait_for_lease=*/true));
  }
  // Started with another count: it must stand by, publishing nothing.
  Spawn(2, 0, "mixed", /*wait_for_lease=*/false);

  absl::StatusOr<std::unique_ptr<herald::postgres::PostgresOutboxStore>> store =
      herald::postgres::PostgresOutboxStore::Open(Options());
  ASSERT_THAT(store, IsOk());
  int next[kKeys] = {};
  for (int i = 0; i < kEvents; i += 10) {
    absl::StatusOr<std::unique_ptr<herald::Transaction>> tx = (*store)->Begin();
    ASSERT_THAT(tx, IsOk());
    for (int j = i; j < i + 10; ++j) {
      int k = (j * 7) % kKeys;
      herald::Envelope e;
      e.time = absl::Now();
      e.id = herald::NewUuidV7(e.time);
      e.type = "shard.test";
      e.topic = "shard-events";
      e.key = herald::StrCat("key-", k);
      e.payload = herald::StrCat(next[k]++);
      ASSERT_THAT((*store)->Append(**tx, e), IsOk());
    }
    ASSERT_THAT((*tx)->Commit(), IsOk());
    if (i == kEvents / 2) {
      // Shard 1's relay dies mid-stream; its replacement takes over.
      kill(relays[1], SIGKILL);
      waitpid(relays[1], nullptr, 0);
      Spawn(kShards, 1, "shard1-replacement", /*wait_for_lease=*/true);
    }
  }
  ASSERT_TRUE(herald::testing::Eventually(
      [&] {
        absl::StatusOr<herald::OutboxStats> stats = (*store)->Stats();
        return stats.ok() && stats->pending == 0;
      },
      absl::Seconds(60), absl::Milliseconds(50)))
      << "the relays did not publish everything";
  absl::SleepFor(absl::Milliseconds(200));  // the mixed relay had every chance

  std::map<std::string, std::string> process_of_key;
  std::map<std::string, std::vector<int>> by_key;
  std::set<std::string> ids;
  int lines = 0;
  for (const std::string name : {"shard0", "shard1", "shard1-replacement", "shard2", "mixed"}) {
    for (const herald::tests::FileTransport::Line& line : herald::tests::FileTransport::Read(Out(name))) {
      ++lines;
      ids.insert(line.id);
      by_key[line.key].push_back(std::atoi(line.payload.c_str()));
      std::string owner = name == "shard1-replacement" ? "shard1" : name;
      auto [it, inserted] = process_of_key.emplace(line.key, owner);
      EXPECT_EQ(it->second, owner) << line.key << " was relayed by two shards";
    }
  }
  EXPECT_TRUE(herald::tests::FileTransport::Read(Out("mixed")).empty()) << "a relay with another shard count relayed";
  EXPECT_EQ(static_cast<int>(ids.size()), kEvents) << "every event published";
  std::set<std::string> shards_used;
  for (const auto& [key, owner] : process_of_key) shards_used.insert(owner);
  EXPECT_EQ(shards_used.size(), static_cast<size_t>(kShards)) << "every shard relayed some keys";
  for (const auto& [key, values] : by_key) {
    int expected = 0;
    std::set<int> seen;
    for (int v : values) {
      if (seen.insert(v).second) {
        ASSERT_EQ(v, expected) << key << ": event " << v << " first published before " << expected;
        ++expected;
      }
    }
  }
  // Only the batch in flight at the kill may go twice.
  EXPECT_LE(lines - kEvents, 50);
  std::printf("shards: %d events, %d keys, %d relay processes (+1 mixed, +1 replacement), %d duplicates\n", kEvents,
              kKeys, kShards, lines - kEvents);
}

}  // namespace
