// The database stops and starts mid-stream (through HERALD_TEST_PG_CTL,
// scripts/pg-ctl.sh): calls fail with kUnavailable while it is down, work
// again as soon as it is back, and a running OutboxRelay loses nothing and
// keeps per-key order. Runs alone (RUN_SERIAL): it stops the shared server.
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/relay.h"
#include "herald/core/uuid.h"
#include "herald/postgres/postgres_outbox_store.h"
#include "herald/testing/eventually.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/status_matchers.h"
#include "postgres_test_support.h"

namespace herald::postgres {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;

class PostgresRestartTest : public testing::PostgresTest {
 protected:
  void SetUp() override {
    PostgresTest::SetUp();
    if (HasFatalFailure()) return;
    const char* ctl = std::getenv("HERALD_TEST_PG_CTL");
    ASSERT_TRUE(ctl != nullptr && *ctl != '\0')
        << "HERALD_TEST_PG_CTL is not set: this test restarts the database through it (scripts/pg-ctl.sh, "
           "exported by `make test`); start the server with scripts/pg-up.sh and set HERALD_TEST_PG_CTL";
    ctl_ = ctl;
  }
  void TearDown() override {
    if (stopped_) Ctl("start");
    admin_ = testing::Connect();
    PostgresTest::TearDown();
  }
  void Ctl(const std::string& command) {
    const int rc = std::system((ctl_ + " " + command + " >/dev/null 2>&1").c_str());
    ASSERT_EQ(rc, 0) << ctl_ << " " << command << " failed";
    stopped_ = command == "stop";
  }
  void AppendRange(PostgresOutboxStore& store, int from, int to) {
    for (int i = from; i < to; ++i) {
      Envelope e;
      e.id = NewUuidV7(absl::Now());
      e.type = "counter.incremented";
      e.topic = "counters";
      e.key = "k" + std::to_string(i % 7);
      e.payload = std::to_string(i);
      HERALD_ASSERT_OK_AND_ASSIGN(auto tx, store.Begin());
      ASSERT_THAT(store.Append(*tx, e), IsOk());
      ASSERT_THAT(tx->Commit(), IsOk());
    }
  }
  // Waits until `bus` has published every payload in [0, n).
  ::testing::AssertionResult WaitForAll(herald::testing::FakeTransport& bus, int n) {
    return herald::testing::Eventually(
        [&] {
          std::set<std::string> seen;
          for (const Envelope& e : bus.published("counters")) seen.insert(e.payload);
          return static_cast<int>(seen.size()) >= n;
        },
        absl::Seconds(60), absl::Milliseconds(20));
  }

  std::string ctl_;
  bool stopped_ = false;
};

TEST_F(PostgresRestartTest, CallsFailUnavailableWhileDownAndWorkOnceBack) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  // Warm the pool, the listener and a lease so that each must notice the loss.
  AppendRange(*store, 0, 3);
  ASSERT_THAT(store->WaitForWork(absl::Milliseconds(1)), IsOk());
  auto lease = store->TryAcquireLease("relay");
  ASSERT_THAT(lease, IsOk());

  Ctl("stop");
  EXPECT_THAT(store->Begin(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store->FetchPendingBatch({}), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store->MarkPublished({1}), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store->Stats(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store->WaitForWork(absl::Seconds(5)), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store->TryAcquireLease("other"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT((*lease)->Check(), StatusIs(absl::StatusCode::kAborted));

  Ctl("start");
  // The first call after the restart works: stale pooled connections are
  // replaced, not returned as errors.
  HERALD_ASSERT_OK_AND_ASSIGN(auto tx, store->Begin());
  ASSERT_THAT(tx->Commit(), IsOk());
  auto batch = store->FetchPendingBatch({});
  ASSERT_THAT(batch, IsOk());
  EXPECT_EQ(batch->size(), 3u);
  EXPECT_THAT(store->WaitForWork(absl::Seconds(5)), IsOk());
  EXPECT_THAT(store->TryAcquireLease("relay"), IsOk());
}

TEST_F(PostgresRestartTest, RelayLosesNothingAndKeepsKeyOrderAcrossARestart) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  herald::testing::FakeTransport& fake = bus.transport<herald::testing::FakeTransport>();
  RelayOptions options;
  options.batch_size = 50;
  options.poll_interval = absl::Milliseconds(200);
  options.error_backoff = absl::Milliseconds(100);
  OutboxRelay relay(*store, bus, options);
  ASSERT_THAT(relay.Start(), IsOk());

  AppendRange(*store, 0, 100);
  ASSERT_TRUE(WaitForAll(fake, 100));

  Ctl("stop");
  // The relay must meet the outage before the server comes back: it loses
  // its lease (the advisory lock lived on a connection that broke) and
  // records the error. (Stats() alone cannot be the proof: it reads the
  // store itself, and records that error too.)
  ASSERT_TRUE(herald::testing::Eventually(
      [&] {
        RelayStats stats = relay.Stats();
        return !stats.leader && !stats.last_error.ok();
      },
      absl::Seconds(30), absl::Milliseconds(20)))
      << "the relay never noticed the outage";
  Ctl("start");

  AppendRange(*store, 100, 200);
  ASSERT_TRUE(WaitForAll(fake, 200)) << "relay did not recover after the restart";
  relay.Stop();

  // Nothing lost; per key, first deliveries are in order.
  std::map<std::string, int> last;
  std::set<std::string> seen;
  for (const Envelope& e : fake.published("counters")) {
    if (!seen.insert(e.payload).second) continue;  // a duplicate (at least once)
    const int n = std::stoi(e.payload);
    auto it = last.find(e.key);
    if (it != last.end()) {
      EXPECT_LT(it->second, n) << "key " << e.key;
    }
    last[e.key] = n;
  }
  EXPECT_EQ(seen.size(), 200u);
  auto stats = store->Stats();
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->pending, 0);
}

}  // namespace
}  // namespace herald::postgres
