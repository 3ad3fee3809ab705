// SQLite relay leases across processes: a lease is a file lock held by the
// live holder, so a SIGKILLed holder's lease is free at once and a standby
// relay takes over within the documented time (RelayTimeouts::takeover);
// shards are refused at Start.
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/relay.h"
#include "herald/core/strings.h"
#include "herald/core/uuid.h"
#include "herald/sqlite/sqlite_outbox_store.h"
#include "herald/testing/eventually.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/status_matchers.h"

namespace herald::sqlite {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;
using ::testing::HasSubstr;

class SqliteLeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* dir = std::getenv("TMPDIR");
    path_ = herald::StrCat((dir != nullptr && *dir != '\0') ? dir : "/tmp", "/herald_sqlite_lease_",
                           ::testing::UnitTest::GetInstance()->current_test_info()->name(), "_",
                           static_cast<int>(getpid()), ".db");
    Cleanup();
    // The schema first, so that every process starts from the same file.
    ASSERT_THAT(SqliteOutboxStore::Open(Options()), IsOk());
  }
  void TearDown() override { Cleanup(); }
  void Cleanup() {
    for (const char* suffix : {"", "-wal", "-shm", "-lease-herald_relay_leases-relay.lock"}) {
      std::remove((path_ + suffix).c_str());
    }
  }
  SqliteOptions Options() const {
    SqliteOptions options;
    options.path = path_;
    options.busy_timeout = absl::Seconds(30);
    return options;
  }
  RelayOptions Relay() const {
    RelayOptions options;
    options.poll_interval = absl::Milliseconds(100);
    options.error_backoff = absl::Milliseconds(50);
    return options;
  }
  // A child process that holds the lease "relay" (as a leader relay, when
  // `relay`) until killed. Returns once the child holds it.
  pid_t SpawnHolder(bool relay) {
    int ready[2];
    EXPECT_EQ(pipe(ready), 0);
    pid_t child = fork();
    if (child == 0) {
      close(ready[0]);
      // Nothing opened before the fork is used here.
      absl::StatusOr<std::unique_ptr<SqliteOutboxStore>> store = SqliteOutboxStore::Open(Options());
      if (!store.ok()) _exit(2);
      herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
      std::unique_ptr<Lease> lease;
      std::unique_ptr<OutboxRelay> leader;
      if (relay) {
        leader = std::make_unique<OutboxRelay>(**store, bus, Relay());
        if (!leader->Start().ok()) _exit(3);
        for (int i = 0; i < 500 && !leader->Stats().leader; ++i) absl::SleepFor(absl::Milliseconds(10));
        if (!leader->Stats().leader) _exit(4);
      } else {
        absl::StatusOr<std::unique_ptr<Lease>> held = (*store)->TryAcquireLease("relay");
        if (!held.ok()) _exit(5);
        lease = *std::move(held);
      }
      char one = 1;
      if (write(ready[1], &one, 1) != 1) _exit(6);
      while (true) pause();  // until SIGKILL
    }
    close(ready[1]);
    char byte = 0;
    EXPECT_EQ(read(ready[0], &byte, 1), 1) << "the child could not take the lease";
    close(ready[0]);
    return child;
  }
  static void Kill(pid_t child) {
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
  }

  std::string path_;
};

// Before: the lease was a row with a 30 s expiry, so the lease of a
// SIGKILLed relay stayed taken for 30 s (and a relay in a crash loop never
// relayed at all).
TEST_F(SqliteLeaseTest, ADeadHoldersLeaseIsFreeAtOnce) {
  pid_t child = SpawnHolder(/*relay=*/false);
  absl::StatusOr<std::unique_ptr<SqliteOutboxStore>> store = SqliteOutboxStore::Open(Options());
  ASSERT_THAT(store, IsOk());
  EXPECT_THAT((*store)->TryAcquireLease("relay"), StatusIs(absl::StatusCode::kUnavailable));
  Kill(child);
  absl::StatusOr<std::unique_ptr<Lease>> taken = (*store)->TryAcquireLease("relay");
  ASSERT_THAT(taken, IsOk()) << "the kernel released the dead holder's lock";
  EXPECT_THAT((*taken)->Check(), IsOk());
}

TEST_F(SqliteLeaseTest, AStandbyRelayTakesOverFromASigkilledLeaderWithinTheDocumentedTime) {
  pid_t leader = SpawnHolder(/*relay=*/true);
  absl::StatusOr<std::unique_ptr<SqliteOutboxStore>> store = SqliteOutboxStore::Open(Options());
  ASSERT_THAT(store, IsOk());
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  herald::testing::FakeTransport& fake = bus.transport<herald::testing::FakeTransport>();
  OutboxRelay standby(**store, bus, Relay());
  ASSERT_THAT(standby.Start(), IsOk());
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(standby.Stats().leader) << "the child leads";

  Kill(leader);
  const absl::Time killed = absl::Now();
  ASSERT_TRUE(herald::testing::Eventually([&] { return standby.Stats().leader; }, absl::Seconds(40)));
  const absl::Duration takeover = absl::Now() - killed;
  EXPECT_LE(takeover, standby.timeouts().takeover) << "took " << takeover;
  std::printf("sqlite takeover after SIGKILL: %s (documented worst case %s)\n", absl::FormatDuration(takeover).c_str(),
              absl::FormatDuration(standby.timeouts().takeover).c_str());

  // And it relays.
  Envelope e;
  e.id = NewUuidV7(absl::Now());
  e.type = "lease.test";
  e.topic = "lease-test";
  e.key = "k";
  e.payload = "1";
  {
    absl::StatusOr<std::unique_ptr<Transaction>> tx = (*store)->BeginTransaction();
    ASSERT_THAT(tx, IsOk());
    ASSERT_THAT((*store)->Append(**tx, e), IsOk());
    ASSERT_THAT((*tx)->Commit(), IsOk());
  }
  ASSERT_TRUE(herald::testing::Eventually([&] { return fake.published().size() == 1; }));
  standby.Stop();
}

// Before: Start succeeded and the relay looped on kUnimplemented for ever.
TEST_F(SqliteLeaseTest, StartRefusesShardsWithTheStoresReason) {
  absl::StatusOr<std::unique_ptr<SqliteOutboxStore>> store = SqliteOutboxStore::Open(Options());
  ASSERT_THAT(store, IsOk());
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  RelayOptions options = Relay();
  options.shard_count = 2;
  options.shard = 1;
  OutboxRelay relay(**store, bus, options);
  EXPECT_THAT(relay.Start(), StatusIs(absl::StatusCode::kInvalidArgument,
                                      ::testing::AllOf(HasSubstr("shard_count 2"), HasSubstr("leader lease"))));
  EXPECT_THAT(relay.AcquireLease(absl::Seconds(1), [](const absl::Status&) {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("shard")));
  EXPECT_THAT((*store)->TryAcquireRelayLease({.name = "relay-shard-1-of-2", .group = "relay", .shard_count = 2}),
              StatusIs(absl::StatusCode::kUnimplemented));
}

TEST_F(SqliteLeaseTest, ReleaseRemovesTheLockFileAndAReplacedFileIsNoticed) {
  absl::StatusOr<std::unique_ptr<SqliteOutboxStore>> store = SqliteOutboxStore::Open(Options());
  ASSERT_THAT(store, IsOk());
  const std::string lock = path_ + "-lease-herald_relay_leases-relay.lock";
  {
    absl::StatusOr<std::unique_ptr<Lease>> lease = (*store)->TryAcquireLease("relay");
    ASSERT_THAT(lease, IsOk());
    EXPECT_EQ(access(lock.c_str(), F_OK), 0);
  }
  EXPECT_NE(access(lock.c_str(), F_OK), 0) << "removed on release";

  absl::StatusOr<std::unique_ptr<Lease>> lease = (*store)->TryAcquireLease("relay");
  ASSERT_THAT(lease, IsOk());
  // Someone deletes the lock file: another process could lock a new one,
  // so the holder learns it has lost the lease.
  ASSERT_EQ(std::remove(lock.c_str()), 0);
  EXPECT_THAT((*lease)->Check(), StatusIs(absl::StatusCode::kAborted, HasSubstr("removed")));
}

}  // namespace
}  // namespace herald::sqlite
