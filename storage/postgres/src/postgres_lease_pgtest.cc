// PostgreSQL relay leases across processes: an advisory lock on a session
// of its own, which the server frees when the holder's process dies (so a
// standby takes over within RelayTimeouts::takeover), and a layout lock so
// that relays with different shard counts never relay at once.
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/relay.h"
#include "herald/testing/eventually.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/status_matchers.h"
#include "postgres_test_support.h"

namespace herald::postgres::testing {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

class PostgresLeaseTest : public PostgresTest {
 protected:
  void SetUp() override {
    PostgresTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_NE(OpenStore(), nullptr);  // the schema, before any child opens it
  }
  static RelayOptions Relay(int shard_count = 1, int shard = 0) {
    RelayOptions options;
    options.poll_interval = absl::Milliseconds(100);
    options.error_backoff = absl::Milliseconds(50);
    options.shard_count = shard_count;
    options.shard = shard;
    return options;
  }
  // A child process holding the lease "relay" (as a leader relay, when
  // `relay`) until killed; returns once it holds it. The child uses
  // nothing the parent opened.
  pid_t SpawnHolder(bool relay) {
    int ready[2];
    EXPECT_EQ(pipe(ready), 0);
    pid_t child = fork();
    if (child == 0) {
      close(ready[0]);
      absl::StatusOr<std::unique_ptr<PostgresOutboxStore>> store = PostgresOutboxStore::Open(Options());
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
};

// The server ends a session whose client process died (the kernel closes
// its socket), and the advisory lock goes with it.
TEST_F(PostgresLeaseTest, ASigkilledHoldersLockIsFreedAtOnce) {
  pid_t child = SpawnHolder(/*relay=*/false);
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(store->TryAcquireLease("relay"), StatusIs(absl::StatusCode::kUnavailable));
  Kill(child);
  const absl::Time killed = absl::Now();
  std::unique_ptr<Lease> taken;
  ASSERT_TRUE(herald::testing::Eventually(
      [&] {
        absl::StatusOr<std::unique_ptr<Lease>> lease = store->TryAcquireLease("relay");
        if (lease.ok()) taken = *std::move(lease);
        return taken != nullptr;
      },
      absl::Seconds(30), absl::Milliseconds(20)));
  EXPECT_LE(absl::Now() - killed, absl::Seconds(1));
  EXPECT_THAT(taken->Check(), IsOk());
}

TEST_F(PostgresLeaseTest, AStandbyRelayTakesOverFromASigkilledLeaderWithinTheDocumentedTime) {
  pid_t leader = SpawnHolder(/*relay=*/true);
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  OutboxRelay standby(*store, bus, Relay());
  ASSERT_THAT(standby.Start(), IsOk());
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(standby.Stats().leader) << "the child leads";
  Kill(leader);
  const absl::Time killed = absl::Now();
  ASSERT_TRUE(herald::testing::Eventually([&] { return standby.Stats().leader; }));
  const absl::Duration takeover = absl::Now() - killed;
  EXPECT_LE(takeover, standby.timeouts().takeover) << "took " << takeover;
  std::printf("postgres takeover after SIGKILL: %s (documented worst case %s)\n",
              absl::FormatDuration(takeover).c_str(), absl::FormatDuration(standby.timeouts().takeover).c_str());
  standby.Stop();
}

// Before: lease names embed the shard count, so a relay started with
// another --shards (or unsharded) took its own leases and relayed the same
// keys at once.
TEST_F(PostgresLeaseTest, RelaysWithAnotherShardCountStandByNamingBothCounts) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  auto two_0 = std::make_unique<OutboxRelay>(*store, bus, Relay(2, 0));
  auto two_1 = std::make_unique<OutboxRelay>(*store, bus, Relay(2, 1));
  ASSERT_THAT(two_0->Start(), IsOk());
  ASSERT_THAT(two_1->Start(), IsOk());
  ASSERT_TRUE(herald::testing::Eventually([&] { return two_0->Stats().leader && two_1->Stats().leader; }));

  OutboxRelay three(*store, bus, Relay(3, 0));
  OutboxRelay unsharded(*store, bus, Relay());
  ASSERT_THAT(three.Start(), IsOk());
  ASSERT_THAT(unsharded.Start(), IsOk());
  ASSERT_TRUE(herald::testing::Eventually(
      [&] { return !three.Stats().last_error.ok() && !unsharded.Stats().last_error.ok(); }));
  EXPECT_THAT(three.Stats().last_error, StatusIs(absl::StatusCode::kFailedPrecondition,
                                                 AllOf(HasSubstr("shard_count 3"), HasSubstr("shard_count 2"))));
  EXPECT_THAT(unsharded.Stats().last_error, StatusIs(absl::StatusCode::kFailedPrecondition,
                                                     AllOf(HasSubstr("shard_count 1"), HasSubstr("shard_count 2"))));
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(three.Stats().leader);
  EXPECT_FALSE(unsharded.Stats().leader);
  // A relay with the running count still stands by as usual.
  OutboxRelay standby(*store, bus, Relay(2, 0));
  ASSERT_THAT(standby.Start(), IsOk());
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(standby.Stats().leader);
  EXPECT_THAT(standby.Stats().last_error, IsOk());
  standby.Stop();

  // Once the two-shard relays are gone, one of the others takes over and
  // the layout it runs keeps the rest out.
  two_0.reset();
  two_1.reset();
  ASSERT_TRUE(herald::testing::Eventually([&] { return three.Stats().leader || unsharded.Stats().leader; }));
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_NE(three.Stats().leader, unsharded.Stats().leader) << "never both";
}

}  // namespace
}  // namespace herald::postgres::testing
