#include "herald/core/relay.h"

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/metrics.h"
#include "herald/core/mutex.h"
#include "herald/core/strings.h"
#include "herald/core/transport.h"
#include "herald/core/wire.h"
#include "herald/inmemory/inmemory_transport.h"
#include "herald/testing/eventually.h"
#include "herald/testing/fake_clock.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/in_memory_outbox_store.h"
#include "herald/testing/recording_log_sink.h"
#include "herald/testing/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::FakeClock;
using ::herald::testing::FakeTransport;
using ::herald::testing::InMemoryOutboxStore;
using ::herald::testing::IsOk;
using ::herald::testing::IsOkAndHolds;
using ::herald::testing::OutboxRow;
using ::testing::ElementsAre;

Envelope Event(std::string key, std::string payload) {
  Envelope e;
  e.id = NewUuidV7(absl::Now());
  e.type = "test.happened";
  e.topic = "relay-test";
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

std::vector<std::string> Payloads(const std::vector<Envelope>& events) {
  std::vector<std::string> out;
  out.reserve(events.size());
  for (const Envelope& e : events) out.push_back(e.key + ":" + e.payload);
  return out;
}

RelayOptions FastOptions(const Clock& clock) {
  RelayOptions options;
  options.clock = &clock;
  options.poll_interval = absl::Milliseconds(20);
  options.error_backoff = absl::Milliseconds(20);
  options.retry.jitter = 0;
  options.retry.initial_backoff = absl::Seconds(1);
  options.retry.max_attempts = 3;
  options.retention = absl::Hours(1);
  return options;
}

class RelayTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  InMemoryOutboxStore store_{clock_};
  Bus bus_{std::make_unique<FakeTransport>()};
  FakeTransport& fake_ = bus_.transport<FakeTransport>();
};

TEST_F(RelayTest, RunOncePublishesCommittedRowsInOrderAndMarksThem) {
  Commit(store_, {Event("a", "1"), Event("b", "1"), Event("a", "2")});
  OutboxRelay relay(store_, bus_, FastOptions(clock_));
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(3));
  EXPECT_THAT(Payloads(fake_.published()), ElementsAre("a:1", "b:1", "a:2"));
  EXPECT_TRUE(store_.Pending().empty());
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(0));
  EXPECT_EQ(fake_.published().size(), 3u) << "nothing is published twice";
  EXPECT_EQ(relay.Stats().published, 3);
}

// The clock is optional (docs/ownership.md): null means the system clock.
TEST_F(RelayTest, ANullClockMeansTheSystemClock) {
  Commit(store_, {Event("a", "1")});
  RelayOptions options = FastOptions(clock_);
  options.clock = nullptr;
  OutboxRelay relay(store_, bus_, options);
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(1));
  EXPECT_THAT(relay.Start(), IsOk());
  relay.Stop();
}

TEST_F(RelayTest, RolledBackRowsAreNeverPublished) {
  {
    absl::StatusOr<std::unique_ptr<Transaction>> tx = store_.Begin();
    ASSERT_THAT(tx, IsOk());
    ASSERT_THAT(store_.Append(**tx, Event("a", "never")), IsOk());
  }  // destroyed without Commit
  OutboxRelay relay(store_, bus_, FastOptions(clock_));
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(0));
  EXPECT_TRUE(fake_.published().empty());
}

TEST_F(RelayTest, FailedRowHoldsBackItsKeyOnlyAndIsRetriedWithBackoff) {
  Commit(store_, {Event("a", "1"), Event("a", "2"), Event("b", "1")});
  OutboxRelay relay(store_, bus_, FastOptions(clock_));
  fake_.FailNextPublishes(1, absl::UnavailableError("broker down"));

  // a:1 fails, so a:2 is not sent at all (it must not be delivered before
  // a:1); b:1 is done.
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(1));
  EXPECT_THAT(Payloads(fake_.published()), ElementsAre("b:1"));
  EXPECT_EQ(store_.Pending().size(), 2u);
  RelayStats stats = relay.Stats();
  EXPECT_EQ(stats.failed, 1);
  EXPECT_EQ(stats.outbox.pending, 2);

  // Before its backoff (1 s) a:1 is not due, and a:2 waits for it.
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(0));
  clock_.Advance(absl::Seconds(2));
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(2));
  EXPECT_TRUE(store_.Pending().empty());
  // Each event once, a:1 before a:2.
  EXPECT_THAT(Payloads(fake_.published()), ElementsAre("b:1", "a:1", "a:2"));
  std::vector<OutboxRow> rows = store_.Rows();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].record.attempts, 1);
  EXPECT_THAT(rows[0].record.last_error, ::testing::HasSubstr("broker down"));
  EXPECT_EQ(rows[1].record.attempts, 0) << "a:2 was never attempted while a:1 failed";
}

// Per key, the first delivery of each event ("key:n", n = 1, 2, ...) comes
// after the first delivery of every earlier event of that key, except the
// events an operator skipped.
void ExpectFirstDeliveriesInKeyOrder(const std::vector<Envelope>& published,
                                     const std::set<std::string>& skipped = {}) {
  std::map<std::string, int> last;
  std::set<std::string> seen;
  for (const Envelope& e : published) {
    if (!seen.insert(e.key + ":" + e.payload).second) continue;  // a redelivery
    int n = std::stoi(e.payload);
    int expected = last[e.key] + 1;
    while (skipped.count(herald::StrCat(e.key, ":", expected)) > 0) ++expected;
    EXPECT_EQ(n, expected) << "key " << e.key << ": first delivery of " << n << " after " << last[e.key];
    last[e.key] = n;
  }
}

TEST_F(RelayTest, TransientFailureOfAMiddleRowSendsNothingLaterOfItsKeyAndOtherKeysFlow) {
  Commit(store_, {Event("a", "1"), Event("b", "1"), Event("a", "2"), Event("c", "1"), Event("a", "3"), Event("b", "2"),
                  Event("a", "4")});
  OutboxRelay relay(store_, bus_, FastOptions(clock_));
  int a2_attempts = 0;
  fake_.SetPublishHook([&](const Envelope& e) {
    if (e.key == "a" && e.payload == "2" && ++a2_attempts == 1) return absl::UnavailableError("leader moved");
    return absl::OkStatus();
  });
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(4));
  EXPECT_THAT(Payloads(fake_.published()), ElementsAre("a:1", "b:1", "c:1", "b:2"));

  // Other keys keep flowing while a:2 backs off; a:3 and a:4 stay behind it.
  Commit(store_, {Event("b", "3"), Event("a", "5")});
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(1));
  EXPECT_THAT(Payloads(fake_.published()).back(), "b:3");

  clock_.Advance(absl::Seconds(2));
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(4));
  EXPECT_THAT(Payloads(fake_.published()), ElementsAre("a:1", "b:1", "c:1", "b:2", "b:3", "a:2", "a:3", "a:4", "a:5"));
  ExpectFirstDeliveriesInKeyOrder(fake_.published());
  EXPECT_TRUE(store_.Pending().empty());
}

TEST_F(RelayTest, PermanentFailureOfAMiddleRowBlocksItsKeyUntilSkippedAndOtherKeysFlow) {
  Commit(store_, {Event("a", "1"), Event("a", "2"), Event("b", "1"), Event("a", "3"), Event("b", "2")});
  OutboxRelay relay(store_, bus_, FastOptions(clock_));
  fake_.SetPublishHook([](const Envelope& e) {
    return e.key == "a" && e.payload == "2" ? absl::InvalidArgumentError("record too large") : absl::OkStatus();
  });
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(3));
  EXPECT_THAT(Payloads(fake_.published()), ElementsAre("a:1", "b:1", "b:2"));
  EXPECT_EQ(relay.Stats().outbox.parked, 1);

  // However long it waits, a:3 stays behind the parked a:2; b goes on.
  for (int round = 0; round < 3; ++round) {
    clock_.Advance(absl::Hours(1));
    Commit(store_, {Event("b", herald::StrCat(3 + round))});
    EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(1));
  }
  EXPECT_THAT(Payloads(fake_.published()), ElementsAre("a:1", "b:1", "b:2", "b:3", "b:4", "b:5"));

  // An operator gives up on a:2: the skip is recorded and a:3 flows.
  absl::StatusOr<std::vector<OutboxRecord>> parked = store_.ListParked(10);
  ASSERT_THAT(parked, IsOk());
  ASSERT_EQ(parked->size(), 1u);
  EXPECT_THAT(store_.SkipParked({(*parked)[0].sequence}, "payload lost upstream, ticket 42"), IsOkAndHolds(1));
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(1));
  EXPECT_THAT(Payloads(fake_.published()).back(), "a:3");
  ExpectFirstDeliveriesInKeyOrder(fake_.published(), {"a:2"});
  for (const OutboxRow& row : store_.Rows()) {
    if (row.record.sequence != (*parked)[0].sequence) continue;
    EXPECT_TRUE(row.skipped);
    EXPECT_THAT(row.record.last_error,
                ::testing::AllOf(::testing::HasSubstr("skipped by operator at "), ::testing::HasSubstr("ticket 42"),
                                 ::testing::HasSubstr("record too large")));
  }
  EXPECT_EQ(relay.Stats().outbox.parked, 0);
}

TEST_F(RelayTest, ARowWithSchemaVersionZeroIsParkedWithTheReasonAndHoldsBackItsKey) {
  // Append refuses version 0; a program writing SQL can still insert it.
  Envelope v0 = Event("a", "1");
  v0.schema_version = 0;
  absl::StatusOr<std::unique_ptr<Transaction>> tx = store_.Begin();
  ASSERT_THAT(tx, IsOk());
  EXPECT_THAT(store_.Append(**tx, v0),
              herald::testing::StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("schema_version 0")));
  class VersionZeroStore : public InMemoryOutboxStore {
   public:
    using InMemoryOutboxStore::InMemoryOutboxStore;
    absl::StatusOr<std::vector<OutboxRecord>> FetchPendingBatch(const PendingBatchOptions& options) override {
      absl::StatusOr<std::vector<OutboxRecord>> rows = InMemoryOutboxStore::FetchPendingBatch(options);
      if (rows.ok()) {
        for (OutboxRecord& r : *rows) {
          if (r.envelope.payload == "\"v0\"") r.envelope.schema_version = 0;
        }
      }
      return rows;
    }
  };
  VersionZeroStore store(clock_);
  Commit(store, {Event("a", "\"v0\""), Event("a", "2"), Event("b", "1")});
  OutboxRelay relay(store, bus_, FastOptions(clock_));
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(1));
  EXPECT_THAT(Payloads(fake_.published()), ElementsAre("b:1"));
  absl::StatusOr<std::vector<OutboxRecord>> parked = store.ListParked(10);
  ASSERT_THAT(parked, IsOk());
  ASSERT_EQ(parked->size(), 1u);
  EXPECT_THAT((*parked)[0].last_error,
              ::testing::AllOf(::testing::HasSubstr("schema_version 0"), ::testing::HasSubstr("versions start at 1")));
  clock_.Advance(absl::Hours(1));
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(0)) << "a:2 waits behind the parked row";
}

// A row written with key c1 fails; a later row written without a key, whose
// key key_from derives as c1, must wait for it although the store sees it as
// keyless.
TEST_F(RelayTest, AKeylessRowWaitsBehindAFailedRowWrittenWithItsDerivedKey) {
  RelayOptions options = FastOptions(clock_);
  options.key_from = {{"test.happened", "/customer"}};
  OutboxRelay relay(store_, bus_, options);
  Commit(store_, {Event("c1", R"({"customer":"c1","n":1})")});
  fake_.FailNextPublishes(1, absl::UnavailableError("down"));
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(0));
  Commit(store_, {Event("", R"({"customer":"c1","n":2})"), Event("", R"({"customer":"c2","n":1})")});
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(1));
  ASSERT_EQ(fake_.published().size(), 1u);
  EXPECT_EQ(fake_.published()[0].key, "c2");
  clock_.Advance(absl::Seconds(2));
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(2));
  EXPECT_THAT(Payloads(fake_.published()), ElementsAre(R"(c2:{"customer":"c2","n":1})", R"(c1:{"customer":"c1","n":1})",
                                                       R"(c1:{"customer":"c1","n":2})"));
}

// The row of c1 failed under another relay (or before a restart) and waits
// for its retry time; the relay that now claims a keyless row whose derived
// key is c1 never saw that failure, and must still hold the row back.
TEST_F(RelayTest, AKeylessRowWaitsBehindARowOfItsDerivedKeyThatFailedUnderAnotherRelay) {
  RelayOptions options = FastOptions(clock_);
  options.key_from = {{"test.happened", "/customer"}};
  Commit(store_, {Event("", R"({"customer":"c1","n":1})")});
  {
    OutboxRelay first(store_, bus_, options);
    fake_.FailNextPublishes(1, absl::UnavailableError("down"));
    EXPECT_THAT(first.RunOnce(), IsOkAndHolds(0));
  }
  Commit(store_, {Event("", R"({"customer":"c1","n":2})"), Event("", R"({"customer":"c2","n":1})")});
  OutboxRelay second(store_, bus_, options);
  EXPECT_THAT(second.RunOnce(), IsOkAndHolds(1));
  EXPECT_THAT(Payloads(fake_.published()), ElementsAre(R"(c2:{"customer":"c2","n":1})"));
  std::vector<OutboxRow> rows = store_.Rows();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1].record.envelope.key, "c1") << "the held row's derived key is written for the store to order it";
  clock_.Advance(absl::Seconds(2));
  EXPECT_THAT(second.RunOnce(), IsOkAndHolds(2));
  EXPECT_THAT(Payloads(fake_.published()), ElementsAre(R"(c2:{"customer":"c2","n":1})", R"(c1:{"customer":"c1","n":1})",
                                                       R"(c1:{"customer":"c1","n":2})"));
}

// A transport that acknowledges only when the test says so, from the test's
// thread, like a broker whose delivery reports arrive later and out of order.
class ManualAckTransport final : public Transport {
 public:
  void Publish(Envelope envelope, PublishCallback done) override {
    MutexLock lock(mu_);
    sent_.push_back(envelope.key + ":" + envelope.payload);
    waiting_[sent_.back()] = std::move(done);
  }
  void PublishRecord(std::string, Record, PublishCallback done) override {
    done(absl::UnimplementedError("ManualAckTransport publishes envelopes"));
  }
  absl::Status Subscribe(TransportSubscription) override { return absl::UnimplementedError("publishes only"); }
  absl::Status Start() override { return absl::OkStatus(); }
  absl::Status Stop(absl::Duration) override { return absl::OkStatus(); }
  absl::Status Flush(absl::Duration) override { return absl::OkStatus(); }

  std::vector<std::string> sent() const {
    MutexLock lock(mu_);
    return sent_;
  }
  // Waits until `event` ("key:payload") was handed over, then reports
  // `outcome` for it. False when it never was.
  bool Ack(const std::string& event, absl::Status outcome = absl::OkStatus()) {
    PublishCallback done;
    if (!herald::testing::Eventually([&] {
          MutexLock lock(mu_);
          return waiting_.count(event) > 0;
        })) {
      return false;
    }
    {
      MutexLock lock(mu_);
      done = std::move(waiting_[event]);
      waiting_.erase(event);
    }
    if (outcome.ok()) {
      done(DeliveryReport{"relay-test", 0, 0});
    } else {
      done(outcome);
    }
    return true;
  }

 private:
  mutable Mutex mu_;
  std::vector<std::string> sent_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, PublishCallback> waiting_ ABSL_GUARDED_BY(mu_);
};

TEST(RelayReadiness, AnswersAtOnceWhileAStopWaitsForTheBatchInFlight) {
  testing::FakeClock clock;
  InMemoryOutboxStore store(clock);
  Bus bus(std::make_unique<ManualAckTransport>());
  ManualAckTransport& transport = bus.transport<ManualAckTransport>();
  Commit(store, {Event("a", "1")});
  RelayOptions options = FastOptions(clock);
  options.stop_timeout = absl::Seconds(3);  // the broker never acknowledges: Stop waits this long
  OutboxRelay relay(store, bus, options);
  ASSERT_THAT(relay.Start(), IsOk());
  ASSERT_TRUE(herald::testing::Eventually([&] { return transport.sent().size() == 1; }));
  EXPECT_THAT(relay.Readiness({}), IsOk());

  std::atomic<bool> stopped{false};
  std::thread stopping([&] {
    relay.Stop();
    stopped.store(true);
  });
  // The first answer that is not OK comes at once, while Stop still waits.
  absl::Status ready;
  absl::Duration took;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {
    const absl::Time start = absl::Now();
    ready = relay.Readiness({});
    took = absl::Now() - start;
  } while (ready.ok() && absl::Now() < deadline);
  const bool stop_was_running = !stopped.load();
  stopping.join();
  EXPECT_THAT(ready, herald::testing::StatusIs(absl::StatusCode::kUnavailable, ::testing::HasSubstr("stopping")));
  EXPECT_LT(took, absl::Seconds(1)) << "Readiness waited for Stop";
  EXPECT_TRUE(stop_was_running) << "answered only after Stop returned";
  EXPECT_THAT(relay.Readiness({}), herald::testing::StatusIs(absl::StatusCode::kUnavailable));
}

TEST(RelayChains, ALaterRowOfAKeyIsSentOnlyAfterTheEarlierOneIsAcknowledgedAndNeverAfterItFailed) {
  testing::FakeClock clock;
  InMemoryOutboxStore store(clock);
  Bus bus(std::make_unique<ManualAckTransport>());
  ManualAckTransport& transport = bus.transport<ManualAckTransport>();
  Commit(store, {Event("a", "1"), Event("b", "1"), Event("a", "2"), Event("b", "2"), Event("a", "3"), Event("c", "1")});
  OutboxRelay relay(store, bus, FastOptions(clock));
  absl::StatusOr<int> published;
  std::thread round([&] { published = relay.RunOnce(); });
  // The first row of each key goes out at once, concurrently.
  ASSERT_TRUE(herald::testing::Eventually([&] { return transport.sent().size() == 3; }));
  EXPECT_THAT(transport.sent(), ElementsAre("a:1", "b:1", "c:1"));
  // Acknowledging b:1 (out of order) releases b:2 only.
  ASSERT_TRUE(transport.Ack("b:1"));
  ASSERT_TRUE(transport.Ack("b:2"));
  ASSERT_TRUE(transport.Ack("a:1"));
  // a:2 fails: a:3 is never handed over.
  ASSERT_TRUE(transport.Ack("a:2", absl::UnavailableError("not enough replicas")));
  ASSERT_TRUE(transport.Ack("c:1"));
  round.join();
  EXPECT_THAT(published, IsOkAndHolds(4));
  EXPECT_THAT(transport.sent(), ElementsAre("a:1", "b:1", "c:1", "b:2", "a:2"));
  std::vector<Envelope> pending = store.Pending();
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].payload, "2");
  EXPECT_EQ(pending[1].payload, "3");
}

// A round lasts until its longest chain is acknowledged, and a row committed
// while a round is in flight waits for the next claim (docs/performance.md,
// the relay's batch default).
TEST(RelayChains, ARoundEndsWithItsLongestChainAndARowCommittedDuringItWaitsForTheNextClaim) {
  testing::FakeClock clock;
  InMemoryOutboxStore store(clock);
  Bus bus(std::make_unique<ManualAckTransport>());
  ManualAckTransport& transport = bus.transport<ManualAckTransport>();
  Commit(store, {Event("a", "1"), Event("a", "2"), Event("a", "3"), Event("b", "1")});
  OutboxRelay relay(store, bus, FastOptions(clock));
  absl::StatusOr<int> published;
  std::atomic<bool> round_done{false};
  std::thread round([&] {
    published = relay.RunOnce();
    round_done = true;
  });
  ASSERT_TRUE(herald::testing::Eventually([&] { return transport.sent().size() == 2; }));
  ASSERT_TRUE(transport.Ack("b:1"));
  ASSERT_TRUE(transport.Ack("a:1"));
  ASSERT_TRUE(herald::testing::Eventually([&] { return transport.sent().size() == 3; }));
  // Committed while the round is in flight, of an idle key: not in this round.
  Commit(store, {Event("c", "1")});
  ASSERT_TRUE(transport.Ack("a:2"));
  ASSERT_TRUE(herald::testing::Eventually([&] { return transport.sent().size() == 4; }));
  EXPECT_FALSE(round_done.load()) << "the round ended before its longest chain (a) was acknowledged";
  ASSERT_TRUE(transport.Ack("a:3"));
  round.join();
  EXPECT_THAT(published, IsOkAndHolds(4));
  EXPECT_THAT(transport.sent(), ElementsAre("a:1", "b:1", "a:2", "a:3"));
  // The next claim takes it.
  std::thread next([&] { published = relay.RunOnce(); });
  ASSERT_TRUE(herald::testing::Eventually([&] { return transport.sent().size() == 5; }));
  ASSERT_TRUE(transport.Ack("c:1"));
  next.join();
  EXPECT_THAT(published, IsOkAndHolds(1));
  EXPECT_EQ(transport.sent().back(), "c:1");
}

// Rows written without a key (the seed's Go writer) whose key key_from
// derives: the store cannot see that key, yet a failed or parked row holds
// back the later rows of it, also in a relay started afterwards.
TEST_F(RelayTest, DerivedKeysAreHeldBackBehindAFailedOrParkedRowAcrossRestarts) {
  auto keyless = [](std::string customer, int n) {
    Envelope e = Event("", herald::StrCat(R"({"customer":")", customer, R"(","n":)", n, "}"));
    return e;
  };
  auto derived_payloads = [this] {
    std::vector<std::string> out;
    for (const Envelope& e : fake_.published())
      out.push_back(herald::StrCat(e.key, ":", e.payload.substr(e.payload.size() - 2, 1)));
    return out;
  };
  Commit(store_, {keyless("c1", 1), keyless("c2", 1), keyless("c1", 2), keyless("c1", 3), keyless("c2", 2)});
  RelayOptions options = FastOptions(clock_);
  options.key_from = {{"test.happened", "/customer"}};
  fake_.SetPublishHook([](const Envelope& e) {
    return e.payload.find(R"("c1","n":2)") != std::string::npos ? absl::UnavailableError("down") : absl::OkStatus();
  });
  {
    OutboxRelay relay(store_, bus_, options);
    EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(3));
    EXPECT_THAT(derived_payloads(), ElementsAre("c1:1", "c2:1", "c2:2"));
    // A new keyless row of c1 arrives while c1:2 backs off: it waits too.
    Commit(store_, {keyless("c1", 4), keyless("c2", 3)});
    EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(1));
    EXPECT_THAT(derived_payloads().back(), "c2:3");
    // Its attempts run out: parked.
    for (int i = 0; i < 3; ++i) {
      clock_.Advance(absl::Minutes(10));
      EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(0));
    }
    EXPECT_EQ(relay.Stats().outbox.parked, 1);
  }
  // A restarted relay still holds c1 back.
  Commit(store_, {keyless("c1", 5), keyless("c2", 4)});
  OutboxRelay restarted(store_, bus_, options);
  EXPECT_THAT(restarted.RunOnce(), IsOkAndHolds(1));
  EXPECT_THAT(derived_payloads().back(), "c2:4");

  // Skipped: c1 flows again, in order.
  absl::StatusOr<std::vector<OutboxRecord>> parked = store_.ListParked(10);
  ASSERT_THAT(parked, IsOk());
  ASSERT_EQ(parked->size(), 1u);
  EXPECT_EQ((*parked)[0].envelope.key, "c1") << "the derived key is written into the held row";
  ASSERT_THAT(store_.SkipParked({(*parked)[0].sequence}, "bad data"), IsOkAndHolds(1));
  EXPECT_THAT(restarted.RunOnce(), IsOkAndHolds(3));
  EXPECT_THAT(derived_payloads(), ElementsAre("c1:1", "c2:1", "c2:2", "c2:3", "c2:4", "c1:3", "c1:4", "c1:5"));
}

// The metrics.h example, with what a scrape then shows.
absl::Status RunRelayWithMetrics(std::unique_ptr<Transport> transport, OutboxStore& store, std::string& scraped,
                                 absl::Status& readiness) {
  herald::MetricsRegistry metrics;
  herald::Bus bus(std::move(transport), {.metrics = &metrics});
  herald::OutboxRelay relay(store, bus, {.metrics = &metrics});
  HERALD_RETURN_IF_ERROR(relay.Start());
  std::string page = metrics.ExportPrometheusText();  // what /metrics serves
  if (!herald::testing::Eventually([&] { return relay.Stats().published == 3; })) {
    return absl::DeadlineExceededError("the relay did not publish the three rows");
  }
  readiness = relay.Readiness({.require_leader = true, .max_lag = absl::Minutes(1)});
  scraped = metrics.ExportPrometheusText();
  relay.Stop();
  HERALD_RETURN_IF_ERROR(relay.Readiness({}).code() == absl::StatusCode::kUnavailable
                             ? absl::OkStatus()
                             : absl::InternalError("a stopped relay said it was ready"));
  return absl::OkStatus();
}

TEST(RelayMetrics, AScrapeShowsRowsLeadershipAndTheOutbox) {
  InMemoryOutboxStore store;
  Commit(store, {Event("a", "1"), Event("b", "1"), Event("a", "2")});
  std::string scraped;
  absl::Status readiness;
  ASSERT_THAT(RunRelayWithMetrics(std::make_unique<FakeTransport>(), store, scraped, readiness), IsOk());
  EXPECT_THAT(readiness, IsOk());
  for (const char* line : {"herald_relay_rows_published_total{relay=\"relay\"} 3\n",
                           "# TYPE herald_relay_rows_published_total counter\n",
                           "herald_relay_publish_failures_total{relay=\"relay\"} 0\n",
                           "herald_relay_leader{relay=\"relay\"} 1\n", "# TYPE herald_relay_leader gauge\n",
                           "herald_outbox_up{relay=\"relay\"} 1\n", "herald_outbox_pending_rows{relay=\"relay\"} 0\n",
                           "herald_outbox_parked_rows{relay=\"relay\"} 0\n", "herald_outbox_lag_seconds{relay=\"relay\"} 0\n",
                           "herald_published_total{topic=\"relay-test\"} 3\n"}) {
    EXPECT_THAT(scraped, ::testing::HasSubstr(line));
  }
}

TEST_F(RelayTest, ReadinessSaysWhatIsNotSo) {
  MetricsRegistry metrics;
  RelayOptions options = FastOptions(clock_);
  options.metrics = &metrics;
  OutboxRelay relay(store_, bus_, options);
  EXPECT_THAT(relay.Readiness({}), ::herald::testing::StatusIs(absl::StatusCode::kUnavailable,
                                                             ::testing::HasSubstr("not running")));
  Commit(store_, {Event("a", "1")});
  clock_.Advance(absl::Minutes(5));
  fake_.FailPublishesTo("relay-test", absl::UnavailableError("down"));
  ASSERT_THAT(relay.Start(), IsOk());
  EXPECT_THAT(relay.Readiness({}), IsOk()) << "no lag limit";
  EXPECT_THAT(relay.Readiness({.max_lag = absl::Minutes(1)}),
              ::herald::testing::StatusIs(absl::StatusCode::kUnavailable, ::testing::HasSubstr("oldest pending row")));
  relay.Stop();
  // The collector reads the store at export time.
  EXPECT_THAT(metrics.ExportPrometheusText(), ::testing::HasSubstr("herald_outbox_pending_rows{relay=\"relay\"} 1\n"));
}

TEST_F(RelayTest, RetryTimeCountsFromTheEndOfThePublishWait) {
  Commit(store_, {Event("a", "1")});
  RelayOptions options = FastOptions(clock_);
  OutboxRelay relay(store_, bus_, options);
  // The publish takes 10 s of (fake) time and fails.
  fake_.SetPublishHook([this](const Envelope&) {
    clock_.Advance(absl::Seconds(10));
    return absl::UnavailableError("broker down");
  });
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(0));
  std::vector<OutboxRow> rows = store_.Rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].record.attempts, 1);
  // Not the time the batch was claimed, which is already 10 s in the past.
  EXPECT_EQ(rows[0].available_at, clock_.Now() + options.retry.Backoff(2));
}

TEST_F(RelayTest, PermanentErrorParksTheRowAndBlocksOnlyItsKey) {
  Envelope bad = Event("a", "not json {");
  Commit(store_, {bad, Event("a", "2"), Event("b", "1")});
  OutboxRelay relay(store_, bus_, FastOptions(clock_));
  fake_.SetPublishHook([](const Envelope& e) {
    return e.payload == "not json {" ? absl::InvalidArgumentError("payload is not JSON") : absl::OkStatus();
  });
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(1));
  clock_.Advance(absl::Hours(1));
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(0)) << "a:2 waits behind the parked a:1";
  RelayStats stats = relay.Stats();
  EXPECT_EQ(stats.parked, 1);
  EXPECT_EQ(stats.outbox.parked, 1);
  absl::StatusOr<std::vector<OutboxRecord>> parked = store_.ListParked(10);
  ASSERT_THAT(parked, IsOk());
  ASSERT_EQ(parked->size(), 1u);
  EXPECT_EQ((*parked)[0].envelope.id, bad.id);

  // An operator fixes the cause and retries: the key flows again, in order.
  fake_.SetPublishHook(nullptr);
  EXPECT_THAT(store_.RetryParked({}), IsOkAndHolds(1));
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(2));
  EXPECT_THAT(Payloads(fake_.published(std::string("relay-test"))).back(), "a:2");
}

TEST_F(RelayTest, LogsFailedPublishesParkedRowsAndBatchesThroughItsSink) {
  Envelope bad = Event("a", "not json {");
  Commit(store_, {bad, Event("b", "1")});
  testing::RecordingLogSink log;
  RelayOptions options = FastOptions(clock_);
  options.log = &log;
  OutboxRelay relay(store_, bus_, options);
  fake_.SetPublishHook([](const Envelope& e) {
    return e.payload == "not json {" ? absl::InvalidArgumentError("payload is not JSON") : absl::OkStatus();
  });
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(1));
  std::vector<testing::RecordedLog> parked = log.Find("relay", "publish failed: row parked");
  ASSERT_EQ(parked.size(), 1u);
  EXPECT_EQ(parked[0].level, LogLevel::kWarning);
  EXPECT_EQ(parked[0].Field("id"), bad.id);
  EXPECT_EQ(parked[0].Field("topic"), "relay-test");
  EXPECT_EQ(parked[0].Field("error"), "INVALID_ARGUMENT: payload is not JSON");
  std::vector<testing::RecordedLog> batch = log.Find("relay", "batch relayed");
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].level, LogLevel::kDebug);
  EXPECT_EQ(batch[0].Field("published"), "1");
  EXPECT_EQ(batch[0].Field("parked"), "1");

  Commit(store_, {Event("c", "1")});
  fake_.FailPublishesTo("relay-test", absl::UnavailableError("broker down"));
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(0));
  std::vector<testing::RecordedLog> retried = log.Find("relay", "publish failed: row will be retried");
  ASSERT_EQ(retried.size(), 1u);
  EXPECT_EQ(retried[0].level, LogLevel::kWarning);
  EXPECT_EQ(retried[0].Field("attempt"), "1");
}

TEST(RelayLog, LeadershipIsLoggedAtInfo) {
  FakeClock clock;
  InMemoryOutboxStore store{clock};
  Bus bus{std::make_unique<FakeTransport>()};
  testing::RecordingLogSink log(LogLevel::kInfo);
  RelayOptions options = FastOptions(clock);
  options.log = &log;
  OutboxRelay relay(store, bus, options);
  ASSERT_THAT(relay.Start(), IsOk());
  ASSERT_TRUE(testing::Eventually([&] { return !log.Find("relay", "leader: holds the lease").empty(); }));
  relay.Stop();
  std::vector<testing::RecordedLog> released = log.Find("relay", "standby: released the lease");
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0].level, LogLevel::kInfo);
  EXPECT_TRUE(log.Find("relay", "batch relayed").empty()) << "debug records are not written at info";
}

TEST_F(RelayTest, ParksAfterTheAttemptBudget) {
  Commit(store_, {Event("a", "1")});
  OutboxRelay relay(store_, bus_, FastOptions(clock_));  // max_attempts 3
  fake_.FailPublishesTo("relay-test", absl::UnavailableError("down"));
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(0));
    clock_.Advance(absl::Minutes(10));
  }
  EXPECT_EQ(relay.Stats().outbox.parked, 1);
  EXPECT_EQ(relay.Stats().outbox.pending, 0);
  EXPECT_EQ(store_.Rows()[0].record.attempts, 3);
}

TEST_F(RelayTest, PurgesPublishedRowsAfterRetentionInBoundedBatches) {
  Commit(store_, {Event("a", "1"), Event("a", "2"), Event("a", "3")});
  RelayOptions options = FastOptions(clock_);
  options.purge_batch = 2;
  OutboxRelay relay(store_, bus_, options);
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(3));
  EXPECT_EQ(store_.Rows().size(), 3u) << "kept for the retention period";
  clock_.Advance(absl::Hours(2));
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(0));
  EXPECT_EQ(store_.Rows().size(), 1u) << "at most purge_batch per round";
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(0));
  EXPECT_TRUE(store_.Rows().empty());
  EXPECT_EQ(relay.Stats().purged, 3);
}

TEST_F(RelayTest, StoreErrorsAreReportedAndDoNotMarkAnything) {
  Commit(store_, {Event("a", "1")});
  OutboxRelay relay(store_, bus_, FastOptions(clock_));
  store_.FailNextFetches(1, absl::UnavailableError("database restarting"));
  EXPECT_FALSE(relay.RunOnce().ok());
  store_.FailNextMarks(1, absl::UnavailableError("database restarting"));
  EXPECT_FALSE(relay.RunOnce().ok());
  EXPECT_EQ(store_.Pending().size(), 1u) << "published but not marked: published again";
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(1));
  EXPECT_EQ(fake_.published().size(), 2u);
}

TEST_F(RelayTest, RejectsBadOptions) {
  RelayOptions options = FastOptions(clock_);
  options.batch_size = 0;
  OutboxRelay relay(store_, bus_, options);
  EXPECT_THAT(relay.Start(), herald::testing::StatusIs(absl::StatusCode::kInvalidArgument));
  RelayOptions sharded = FastOptions(clock_);
  sharded.shard_count = 2;
  sharded.shard = 2;
  OutboxRelay relay2(store_, bus_, sharded);
  EXPECT_THAT(relay2.Start(), herald::testing::StatusIs(absl::StatusCode::kInvalidArgument));
}

// The background loop, with the system clock.
class RelayLoopTest : public ::testing::Test {
 protected:
  ::testing::AssertionResult WaitForPublished(size_t n) {
    return herald::testing::Eventually([&] { return fake_.published().size() >= n; });
  }
  InMemoryOutboxStore store_;
  Bus bus_{std::make_unique<FakeTransport>()};
  FakeTransport& fake_ = bus_.transport<FakeTransport>();
};

TEST_F(RelayLoopTest, WakesOnCommitAndStopsCleanly) {
  RelayOptions options;
  options.poll_interval = absl::Seconds(30);  // only the wake-up can make this test pass in time
  OutboxRelay relay(store_, bus_, options);
  ASSERT_THAT(relay.Start(), IsOk());
  Commit(store_, {Event("a", "1"), Event("a", "2")});
  ASSERT_TRUE(WaitForPublished(2));
  EXPECT_TRUE(relay.Stats().leader);
  relay.Stop();
  relay.Stop();  // idempotent
  EXPECT_FALSE(relay.Stats().leader);
}

// Start and Stop from several threads at once: one thread runs, one Stop
// joins it, the others return once it is stopped (TSan: no race on the
// thread handle).
TEST_F(RelayLoopTest, ConcurrentStartsAndStopsShareOneThread) {
  RelayOptions options;
  options.poll_interval = absl::Milliseconds(5);
  for (int round = 0; round < 20; ++round) {
    OutboxRelay relay(store_, bus_, options);
    std::vector<std::thread> callers;
    callers.reserve(3);
    for (int i = 0; i < 3; ++i) {
      callers.emplace_back([&] { EXPECT_THAT(relay.Start(), IsOk()); });
    }
    for (std::thread& t : callers) t.join();
    callers.clear();
    for (int i = 0; i < 3; ++i) callers.emplace_back([&] { relay.Stop(); });
    for (std::thread& t : callers) t.join();
    EXPECT_FALSE(relay.Stats().leader) << "every Stop returns after the thread has ended";
  }
  Commit(store_, {Event("a", "1")});
  OutboxRelay relay(store_, bus_, options);
  ASSERT_THAT(relay.Start(), IsOk());
  ASSERT_TRUE(WaitForPublished(1)) << "a relay still starts and relays after all that";
}

TEST_F(RelayLoopTest, OnlyTheLeaseHolderRelaysAndAStandbyTakesOver) {
  RelayOptions options;
  options.poll_interval = absl::Milliseconds(20);
  auto first = std::make_unique<OutboxRelay>(store_, bus_, options);
  OutboxRelay second(store_, bus_, options);
  ASSERT_THAT(first->Start(), IsOk());
  ASSERT_TRUE(herald::testing::Eventually([&] { return first->Stats().leader; }));
  ASSERT_THAT(second.Start(), IsOk());
  for (int i = 0; i < 100; ++i) Commit(store_, {Event(herald::StrCat("k", i % 7), herald::StrCat(i))});
  ASSERT_TRUE(WaitForPublished(100));
  EXPECT_FALSE(second.Stats().leader);
  EXPECT_EQ(second.Stats().published, 0);

  first.reset();  // the leader goes away; its lease is released
  Commit(store_, {Event("z", "after")});
  ASSERT_TRUE(WaitForPublished(101));
  EXPECT_TRUE(second.Stats().leader);
  EXPECT_EQ(fake_.published().size(), 101u) << "nothing published twice";
}

TEST_F(RelayLoopTest, ShardedRelaysSplitKeysAndKeepTheirOrder) {
  std::vector<std::unique_ptr<OutboxRelay>> relays;
  for (int shard = 0; shard < 3; ++shard) {
    RelayOptions options;
    options.poll_interval = absl::Milliseconds(20);
    options.shard_count = 3;
    options.shard = shard;
    relays.push_back(std::make_unique<OutboxRelay>(store_, bus_, options));
    ASSERT_THAT(relays.back()->Start(), IsOk());
  }
  for (int i = 0; i < 300; ++i) Commit(store_, {Event(herald::StrCat("k", i % 10), herald::StrCat(i))});
  ASSERT_TRUE(WaitForPublished(300));
  std::map<std::string, int> last;
  for (const Envelope& e : fake_.published()) {
    int n = std::stoi(e.payload);
    EXPECT_GT(n, last.count(e.key) ? last[e.key] : -1) << "key " << e.key;
    last[e.key] = n;
  }
  int64_t total = 0;
  for (auto& r : relays) total += r->Stats().published;
  EXPECT_EQ(total, 300);
}

}  // namespace
}  // namespace herald

namespace herald {
namespace {

// A store that returns one malformed row, as a SQL store does for a row whose
// headers column breaks the contract.
TEST(RelayMalformedRows, AreParkedAtOnceAndHoldBackOnlyTheirKey) {
  testing::FakeClock clock;
  Bus bus(std::make_unique<testing::FakeTransport>());
  testing::FakeTransport& fake = bus.transport<testing::FakeTransport>();
  // A store whose claims report the row bad:1 as malformed.
  class MalformingStore : public testing::InMemoryOutboxStore {
   public:
    using InMemoryOutboxStore::InMemoryOutboxStore;
    absl::StatusOr<std::vector<OutboxRecord>> FetchPendingBatch(const PendingBatchOptions& options) override {
      absl::StatusOr<std::vector<OutboxRecord>> rows = InMemoryOutboxStore::FetchPendingBatch(options);
      if (rows.ok() && !rows->empty() && rows->front().envelope.key == "bad" && rows->front().envelope.payload == "1") {
        rows->front().malformed = "headers column is not JSON (offset 0)";
      }
      return rows;
    }
  };
  MalformingStore malforming(clock);
  Commit(malforming, {Event("bad", "1"), Event("bad", "2"), Event("fine", "1")});
  OutboxRelay relay(malforming, bus, FastOptions(clock));
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(1));
  EXPECT_THAT(Payloads(fake.published()), ElementsAre("fine:1"));
  RelayStats stats = relay.Stats();
  EXPECT_EQ(stats.parked, 1);
  EXPECT_EQ(stats.outbox.parked, 1);
  EXPECT_EQ(stats.outbox.pending, 1) << "bad:2 waits behind the parked row";
  absl::StatusOr<std::vector<OutboxRecord>> parked = malforming.ListParked(10);
  ASSERT_THAT(parked, IsOk());
  ASSERT_EQ(parked->size(), 1u);
  EXPECT_THAT((*parked)[0].last_error, ::testing::HasSubstr("malformed row: headers column"));
}

TEST(OutboxHeaders, RoundTripAndRejectBrokenColumns) {
  Envelope e;
  e.headers = {{"traceparent", "00-abc"}, {"x", "1"}, {"x", "2"}};
  absl::StatusOr<std::string> column = EncodeOutboxHeaders(e);
  ASSERT_THAT(column, IsOk());
  Envelope read;
  ASSERT_THAT(DecodeOutboxHeaders(*column, read), IsOk());
  EXPECT_EQ(read.headers, e.headers);
  EXPECT_THAT(EncodeOutboxHeaders(Envelope{}), IsOkAndHolds(""));
  for (const char* none : {"", "null"}) {
    ASSERT_THAT(DecodeOutboxHeaders(none, read), IsOk());
    EXPECT_THAT(read.headers, ::testing::IsEmpty());
  }
  ASSERT_THAT(DecodeOutboxHeaders(R"([["a", "b"]])", read), IsOk());
  EXPECT_THAT(read.headers, ElementsAre(std::pair<std::string, std::string>("a", "b")));
  for (const char* bad : {"not json", R"({"a":"b"})", R"([["a", 7]])", R"([["a"]])", R"(["a","b"])"}) {
    EXPECT_THAT(DecodeOutboxHeaders(bad, read), herald::testing::StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
}

}  // namespace
}  // namespace herald

namespace herald {
namespace {

// About 200 KB of nesting: deep enough to overflow a recursive parser's stack.
std::string DeepArrays() { return std::string(100'000, '[') + std::string(100'000, ']'); }

TEST(OutboxHeaders, DeeplyNestedOrNulTerminatedColumnsAreInvalidArgumentNamingTheReason) {
  std::string objects;
  for (int i = 0; i < 50'000; ++i) objects += R"({"a":)";
  objects += "1" + std::string(50'000, '}');
  for (const std::string& deep : {DeepArrays(), std::string(200'000, '['), objects}) {
    Envelope read;
    EXPECT_THAT(DecodeOutboxHeaders(deep, read),
                herald::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                          ::testing::AllOf(::testing::HasSubstr("headers column"),
                                                           ::testing::HasSubstr("kMaxJsonDepth = 128"))));
  }
  Envelope read;
  EXPECT_THAT(DecodeOutboxHeaders(std::string(R"([["a","b"]])") + std::string("\0[[\"c\",\"d\"]]", 12), read),
              herald::testing::StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("NUL byte")));
}

// A store that reads each row's headers column text through
// DecodeOutboxHeaders, as the SQL stores do: a row whose column it cannot
// read comes back with `malformed` set.
class HeadersColumnStore : public testing::InMemoryOutboxStore {
 public:
  using InMemoryOutboxStore::InMemoryOutboxStore;
  void SetHeadersColumn(const std::string& id, std::string text) { columns_[id] = std::move(text); }
  absl::StatusOr<std::vector<OutboxRecord>> FetchPendingBatch(const PendingBatchOptions& options) override {
    absl::StatusOr<std::vector<OutboxRecord>> rows = InMemoryOutboxStore::FetchPendingBatch(options);
    if (!rows.ok()) return rows;
    for (OutboxRecord& row : *rows) {
      auto column = columns_.find(row.envelope.id);
      if (column == columns_.end()) continue;
      if (absl::Status decoded = DecodeOutboxHeaders(column->second, row.envelope); !decoded.ok()) {
        row.malformed = std::string(decoded.message());
      }
    }
    return rows;
  }

 private:
  std::map<std::string, std::string> columns_;
};

// Hostile rows must not crash the relay (which would re-claim them on every
// start, so nothing would ever be relayed): each is parked with a reason that
// names the limit, and the rows of other keys are relayed.
TEST(RelayHostileInput, NestedPayloadNestedHeadersAndNulJunkAreParkedWithReasonsAndOtherKeysFlow) {
  testing::FakeClock clock;
  Bus bus(std::make_unique<testing::FakeTransport>());
  testing::FakeTransport& fake = bus.transport<testing::FakeTransport>();
  // Encode every envelope for the wire before accepting it, as the Kafka
  // transport does before producing.
  fake.SetPublishHook([](const Envelope& e) { return EncodeRecord(e).status(); });
  HeadersColumnStore store(clock);
  Envelope deep_payload = Event("deep-payload", DeepArrays());
  Envelope deep_headers = Event("deep-headers", "{}");
  Envelope nul_junk = Event("nul-junk", std::string("{}\0garbage", 10));
  Commit(store,
         {Event("a", "1"), deep_payload, Event("b", "1"), deep_headers, nul_junk, Event("a", "2"), Event("c", "1")});
  store.SetHeadersColumn(deep_headers.id, std::string(200'000, '['));

  OutboxRelay relay(store, bus, FastOptions(clock));
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(4));
  EXPECT_THAT(Payloads(fake.published()), ElementsAre("a:1", "b:1", "a:2", "c:1"));
  RelayStats stats = relay.Stats();
  EXPECT_EQ(stats.parked, 3);
  EXPECT_EQ(stats.outbox.parked, 3);
  EXPECT_EQ(stats.outbox.pending, 0);

  absl::StatusOr<std::vector<OutboxRecord>> parked = store.ListParked(10);
  ASSERT_THAT(parked, IsOk());
  std::map<std::string, std::string> reasons;
  for (const OutboxRecord& r : *parked) reasons[r.envelope.id] = r.last_error;
  ASSERT_EQ(reasons.size(), 3u);
  EXPECT_THAT(reasons[deep_payload.id],
              ::testing::AllOf(::testing::HasSubstr("INVALID_ARGUMENT"), ::testing::HasSubstr("kMaxJsonDepth = 128")));
  EXPECT_THAT(reasons[deep_headers.id], ::testing::AllOf(::testing::HasSubstr("malformed row: headers column"),
                                                         ::testing::HasSubstr("kMaxJsonDepth = 128")));
  EXPECT_THAT(reasons[nul_junk.id], ::testing::HasSubstr("NUL byte"));

  // Later rounds (a restarted relay re-claims what is due) relay new rows and
  // leave the parked ones parked.
  clock.Advance(absl::Hours(1));
  Commit(store, {Event("b", "2")});
  OutboxRelay restarted(store, bus, FastOptions(clock));
  EXPECT_THAT(restarted.RunOnce(), IsOkAndHolds(1));
  EXPECT_THAT(Payloads(fake.published()).back(), "b:2");
  EXPECT_EQ(restarted.Stats().outbox.parked, 3);
}

// Subject, dataschema and extensions have no column: they travel in the
// headers column (EncodeOutboxHeaders), whether Append wrote it or another
// program did, and reach the handler through the relay. A column whose
// reserved entry breaks the contract parks its row only.
TEST(RelayCloudEventsAttributes, ReachTheHandlerFromTheHeadersColumnWhoeverWroteIt) {
  testing::FakeClock clock;
  Bus bus(std::make_unique<inmemory::InMemoryTransport>(inmemory::InMemoryTransportOptions{.deterministic = true}));
  std::vector<Envelope> handled;
  ASSERT_THAT(bus.Subscribe({.group = "attributes", .topics = {"relay-test"}},
                            [&](const Message& m) {
                              handled.push_back(m.envelope);
                              return absl::OkStatus();
                            }),
              IsOk());
  ASSERT_THAT(bus.Start(), IsOk());
  HeadersColumnStore store(clock);
  Envelope appended = Event("a", R"({"n":1})");
  appended.subject = "orders/a";
  appended.dataschema = "https://schemas.example.com/test/v2.json";
  appended.extensions = {{"region", "eu-1"}, {"tenant", "t-42"}};
  // A header that reuses a reserved name loses to the field, as on Kafka.
  appended.headers = {{"correlation-id", "req-7"}, {"ce_subject", "not the subject"}, {"x", "1"}};
  Envelope foreign = Event("b", R"({"n":2})");
  Envelope broken = Event("c", R"({"n":3})");
  Commit(store, {appended, foreign, broken});
  // What a program in another language writes into the column.
  store.SetHeadersColumn(foreign.id,
                         R"([["correlation-id","req-8"],["ce_subject","orders/b"],["ce_dataschema","urn:test:v1"],)"
                         R"(["ce_region","us-2"],["ce_partitionkey","pk-b"]])");
  store.SetHeadersColumn(broken.id, R"([["CE_Subject","orders/c"]])");

  OutboxRelay relay(store, bus, FastOptions(clock));
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(2));
  bus.transport<inmemory::InMemoryTransport>().RunPending();
  ASSERT_EQ(handled.size(), 2u);
  EXPECT_EQ(handled[0].id, appended.id);
  EXPECT_EQ(handled[0].subject, "orders/a");
  EXPECT_EQ(handled[0].dataschema, "https://schemas.example.com/test/v2.json");
  EXPECT_EQ(handled[0].extensions, (Extensions{{"region", "eu-1"}, {"tenant", "t-42"}}));
  EXPECT_EQ(handled[0].headers, (Headers{{"correlation-id", "req-7"}, {"x", "1"}}));
  EXPECT_EQ(handled[1].id, foreign.id);
  EXPECT_EQ(handled[1].subject, "orders/b");
  EXPECT_EQ(handled[1].dataschema, "urn:test:v1");
  EXPECT_EQ(handled[1].extensions, (Extensions{{"region", "us-2"}, {"partitionkey", "pk-b"}}));
  EXPECT_EQ(handled[1].headers, (Headers{{"correlation-id", "req-8"}}));

  absl::StatusOr<std::vector<OutboxRecord>> parked = store.ListParked(10);
  ASSERT_THAT(parked, IsOk());
  ASSERT_EQ(parked->size(), 1u);
  EXPECT_EQ((*parked)[0].envelope.id, broken.id);
  EXPECT_THAT((*parked)[0].last_error, ::testing::AllOf(::testing::HasSubstr("malformed row: headers column"),
                                                        ::testing::HasSubstr("CE_Subject")));
  EXPECT_THAT(bus.Stop(absl::Seconds(5)), IsOk());
}

}  // namespace
}  // namespace herald
