// The relay's timeouts and lease: one coherent set of timeouts derived from
// the transport's own bound, no row given up on while it may still be
// delivered, a lease confirmed while a batch is in flight and before marking,
// a Stop that does not wait on a broker that is down, and AcquireLease for
// one-shot drains.
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/mutex.h"
#include "herald/core/relay.h"
#include "herald/core/transport.h"
#include "herald/testing/eventually.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/in_memory_outbox_store.h"
#include "herald/testing/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::InMemoryOutboxStore;
using ::herald::testing::IsOk;
using ::herald::testing::IsOkAndHolds;
using ::herald::testing::StatusIs;
using ::testing::HasSubstr;

// A transport that states a delivery bound and holds every publish's
// outcome until the test releases it, like a broker that is slow or down.
class HeldTransport final : public Transport {
 public:
  explicit HeldTransport(absl::Duration bound) : bound_(bound) {}

  void Publish(Envelope envelope, PublishCallback done) override {
    MutexLock lock(mu_);
    ++publishes_;
    held_.push_back(std::move(done));
  }
  void PublishRecord(std::string, Record, PublishCallback done) override {
    done(absl::UnimplementedError("HeldTransport moves envelopes"));
  }
  absl::Status Subscribe(TransportSubscription) override { return absl::UnimplementedError("publish only"); }
  absl::Status Start() override { return absl::OkStatus(); }
  absl::Status Stop(absl::Duration) override { return absl::OkStatus(); }
  absl::Status Flush(absl::Duration) override { return absl::OkStatus(); }
  absl::Duration DeliveryTimeout() const override { return bound_; }

  // Completes every held publish with `status` (or a delivery report).
  void Release(const absl::Status& status) {
    std::vector<PublishCallback> held;
    {
      MutexLock lock(mu_);
      held.swap(held_);
    }
    for (PublishCallback& done : held) {
      if (status.ok()) {
        done(DeliveryReport{.topic = "t", .partition = 0, .offset = 0});
      } else {
        done(status);
      }
    }
  }
  int publishes() {
    MutexLock lock(mu_);
    return publishes_;
  }
  int held() {
    MutexLock lock(mu_);
    return static_cast<int>(held_.size());
  }

 private:
  const absl::Duration bound_;
  Mutex mu_;
  std::vector<PublishCallback> held_ ABSL_GUARDED_BY(mu_);
  int publishes_ ABSL_GUARDED_BY(mu_) = 0;
};

Envelope Event(std::string key, std::string payload) {
  Envelope e;
  e.id = NewUuidV7(absl::Now());
  e.type = "test.happened";
  e.topic = "relay-lease-test";
  e.key = std::move(key);
  e.payload = std::move(payload);
  return e;
}

void Commit(OutboxStore& store, std::vector<Envelope> events) {
  absl::StatusOr<std::unique_ptr<Transaction>> tx = store.Begin();
  ASSERT_THAT(tx, IsOk());
  for (const Envelope& e : events) ASSERT_THAT(store.Append(**tx, e), IsOk());
  ASSERT_THAT((*tx)->Commit(), IsOk());
}

TEST(RelayTimeouts, AreDerivedFromTheTransportsOwnBound) {
  RelayOptions options;
  options.publish_timeout = absl::Seconds(30);
  options.poll_interval = absl::Milliseconds(200);
  // Kafka's default delivery.timeout.ms: the relay must never give up
  // before librdkafka does, or a row given up on is delivered later anyway.
  RelayTimeouts t = DeriveRelayTimeouts(options, absl::Seconds(120));
  EXPECT_EQ(t.delivery, absl::Seconds(120));
  EXPECT_EQ(t.batch_wait, absl::Seconds(132));
  EXPECT_EQ(t.lease_check, absl::Milliseconds(200));
  EXPECT_GE(t.unreachable_holder, t.batch_wait)
      << "a standby must not publish what an unreachable leader has in flight";
  EXPECT_EQ(t.takeover, absl::Milliseconds(1200));

  // A transport that states no bound: publish_timeout is the bound.
  t = DeriveRelayTimeouts(options, absl::InfiniteDuration());
  EXPECT_EQ(t.delivery, absl::Seconds(30));
  EXPECT_EQ(t.batch_wait, absl::Seconds(33));
  // A short bound still gets a margin for the reports to arrive.
  options.poll_interval = absl::Seconds(5);
  t = DeriveRelayTimeouts(options, absl::Milliseconds(100));
  EXPECT_EQ(t.batch_wait, absl::Milliseconds(1100));
  EXPECT_EQ(t.lease_check, absl::Seconds(1));

  // The relay uses the bound its bus's transport states.
  InMemoryOutboxStore store;
  Bus bus(std::make_unique<HeldTransport>(absl::Seconds(45)));
  OutboxRelay relay(store, bus, options);
  EXPECT_EQ(relay.timeouts().delivery, absl::Seconds(45));
}

// Before: the relay gave up after publish_timeout (shorter than the
// transport's bound), marked the row failed and published it again, while
// the first publish was still on its way: a duplicate.
TEST(RelayTimeouts, TheRelayWaitsForTheTransportsOutcomeNotJustPublishTimeout) {
  InMemoryOutboxStore store;
  Bus bus(std::make_unique<HeldTransport>(absl::Seconds(5)));
  HeldTransport& transport = bus.transport<HeldTransport>();
  Commit(store, {Event("a", "1")});
  RelayOptions options;
  options.publish_timeout = absl::Milliseconds(50);
  options.retention = absl::Hours(1);  // keep published rows to look at
  OutboxRelay relay(store, bus, options);
  std::thread broker([&] {
    absl::SleepFor(absl::Milliseconds(400));  // eight publish_timeouts
    transport.Release(absl::OkStatus());
  });
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(1));
  broker.join();
  std::vector<::herald::testing::OutboxRow> rows = store.Rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_TRUE(rows[0].published);
  EXPECT_EQ(rows[0].record.attempts, 0) << "never marked failed";
  EXPECT_EQ(transport.publishes(), 1);
}

// A transport that broke its own bound: nothing is marked (neither
// published nor failed, since it may still be delivered); the round fails.
TEST(RelayTimeouts, ABatchWithoutReportsPastTheBoundIsLeftUnmarked) {
  InMemoryOutboxStore store;
  Bus bus(std::make_unique<HeldTransport>(absl::Milliseconds(50)));
  HeldTransport& transport = bus.transport<HeldTransport>();
  Commit(store, {Event("a", "1"), Event("b", "1")});
  OutboxRelay relay(store, bus);
  ASSERT_EQ(relay.timeouts().batch_wait, absl::Milliseconds(1050));
  absl::Time start = absl::Now();
  EXPECT_THAT(relay.RunOnce(), StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("unmarked")));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(1000));
  for (const ::herald::testing::OutboxRow& row : store.Rows()) {
    EXPECT_FALSE(row.published);
    EXPECT_EQ(row.record.attempts, 0);
    EXPECT_FALSE(row.parked);
  }
  transport.Release(absl::OkStatus());  // late reports find nobody waiting
}

// Before: Stop waited for the batch until publish_timeout (30 s by default)
// while the broker was down.
TEST(RelayTimeouts, StopAbandonsAHeldBatchAfterStopTimeoutUnmarked) {
  InMemoryOutboxStore store;
  Bus bus(std::make_unique<HeldTransport>(absl::Minutes(2)));
  HeldTransport& transport = bus.transport<HeldTransport>();
  RelayOptions options;
  options.poll_interval = absl::Milliseconds(20);
  options.stop_timeout = absl::Milliseconds(200);
  OutboxRelay relay(store, bus, options);
  ASSERT_THAT(relay.Start(), IsOk());
  Commit(store, {Event("a", "1")});
  ASSERT_TRUE(herald::testing::Eventually([&] { return transport.held() == 1; }));
  absl::Time start = absl::Now();
  relay.Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));
  std::vector<::herald::testing::OutboxRow> rows = store.Rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_FALSE(rows[0].published);
  EXPECT_EQ(rows[0].record.attempts, 0) << "its outcome is unknown: it goes again, not marked failed";
  transport.Release(absl::OkStatus());
}

// A leader that loses its lease while a batch is in flight does not mark
// that batch: the next holder decides.
TEST(RelayLease, IsConfirmedWhileABatchIsInFlightAndBeforeMarking) {
  InMemoryOutboxStore store;
  Bus bus(std::make_unique<HeldTransport>(absl::Minutes(2)));
  HeldTransport& transport = bus.transport<HeldTransport>();
  RelayOptions options;
  options.poll_interval = absl::Milliseconds(20);
  options.retention = absl::Hours(1);  // keep published rows to look at
  OutboxRelay relay(store, bus, options);
  ASSERT_THAT(relay.Start(), IsOk());
  Commit(store, {Event("a", "1")});
  ASSERT_TRUE(herald::testing::Eventually([&] { return transport.held() == 1; }));
  store.RevokeLease("relay");
  // The relay notices while it still waits for the report.
  ASSERT_TRUE(herald::testing::Eventually([&] { return !relay.Stats().last_error.ok(); }));
  EXPECT_THAT(relay.Stats().last_error, StatusIs(absl::StatusCode::kAborted, HasSubstr("lease")));
  transport.Release(absl::OkStatus());
  // It takes the (free) lease again and publishes the row again; the first
  // report was never used to mark it.
  ASSERT_TRUE(herald::testing::Eventually([&] { return transport.held() == 1; }));
  EXPECT_EQ(transport.publishes(), 2);
  ASSERT_EQ(store.Rows().size(), 1u);
  EXPECT_FALSE(store.Rows()[0].published);
  transport.Release(absl::OkStatus());
  ASSERT_TRUE(herald::testing::Eventually([&] { return store.Rows()[0].published; }));
  relay.Stop();
}

TEST(RelayLease, AcquireLeaseWaitsForARunningRelayThenTakesIt) {
  InMemoryOutboxStore store;
  Bus bus(std::make_unique<herald::testing::FakeTransport>());
  RelayOptions options;
  options.poll_interval = absl::Milliseconds(20);
  auto running = std::make_unique<OutboxRelay>(store, bus, options);
  ASSERT_THAT(running->Start(), IsOk());
  ASSERT_TRUE(herald::testing::Eventually([&] { return running->Stats().leader; }));

  OutboxRelay drain(store, bus, options);
  int waits = 0;
  EXPECT_THAT(drain.AcquireLease(absl::Milliseconds(200),
                                 [&](const absl::Status& why) {
                                   EXPECT_THAT(why, StatusIs(absl::StatusCode::kUnavailable));
                                   ++waits;
                                 }),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("\"relay\"")));
  EXPECT_GE(waits, 3);
  EXPECT_FALSE(drain.Stats().leader);

  std::thread stopper([&] {
    absl::SleepFor(absl::Milliseconds(100));
    running.reset();
  });
  EXPECT_THAT(drain.AcquireLease(absl::Seconds(10), [](const absl::Status&) {}), IsOk());
  stopper.join();
  EXPECT_TRUE(drain.Stats().leader);
  Commit(store, {Event("a", "1")});
  EXPECT_THAT(drain.RunOnce(), IsOkAndHolds(1));
  // While the drain holds it, a started relay stands by.
  OutboxRelay other(store, bus, options);
  ASSERT_THAT(other.Start(), IsOk());
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(other.Stats().leader);
  drain.ReleaseLease();
  EXPECT_FALSE(drain.Stats().leader);
  ASSERT_TRUE(herald::testing::Eventually([&] { return other.Stats().leader; }));
}

}  // namespace
}  // namespace herald
