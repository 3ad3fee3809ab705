#include "herald/core/relay.h"

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/strings.h"
#include "herald/core/wire.h"
#include "herald/testing/eventually.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/fake_clock.h"
#include "herald/testing/in_memory_outbox_store.h"
#include "herald/testing/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::FakeTransport;
using ::herald::testing::FakeClock;
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

  // a:1 fails; a:2 is delivered but not marked (it must follow a:1); b:1 is done.
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(1));
  EXPECT_EQ(store_.Pending().size(), 2u);
  RelayStats stats = relay.Stats();
  EXPECT_EQ(stats.failed, 1);
  EXPECT_EQ(stats.outbox.pending, 2);

  // Before its backoff (1 s) a:1 is not due, and a:2 waits for it.
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(0));
  clock_.Advance(absl::Seconds(2));
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(2));
  EXPECT_TRUE(store_.Pending().empty());
  // The last delivery of each key is in commit order: a:1 then a:2.
  EXPECT_THAT(Payloads(fake_.published()), ElementsAre("a:2", "b:1", "a:1", "a:2"));
  std::vector<OutboxRow> rows = store_.Rows();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].record.attempts, 1);
  EXPECT_THAT(rows[0].record.last_error, ::testing::HasSubstr("broker down"));
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
  Headers headers = {{"traceparent", "00-abc"}, {"x", "1"}, {"x", "2"}};
  EXPECT_THAT(DecodeOutboxHeaders(EncodeOutboxHeaders(headers)), IsOkAndHolds(headers));
  EXPECT_EQ(EncodeOutboxHeaders({}), "");
  EXPECT_THAT(DecodeOutboxHeaders(""), IsOkAndHolds(::testing::IsEmpty()));
  EXPECT_THAT(DecodeOutboxHeaders("null"), IsOkAndHolds(::testing::IsEmpty()));
  EXPECT_THAT(DecodeOutboxHeaders(R"([["a", "b"]])"), IsOkAndHolds(ElementsAre(std::pair<std::string, std::string>("a", "b"))));
  for (const char* bad : {"not json", R"({"a":"b"})", R"([["a", 7]])", R"([["a"]])", R"(["a","b"])"}) {
    EXPECT_THAT(DecodeOutboxHeaders(bad), herald::testing::StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
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
    EXPECT_THAT(DecodeOutboxHeaders(deep),
                herald::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                          ::testing::AllOf(::testing::HasSubstr("headers column"),
                                                           ::testing::HasSubstr("kMaxJsonDepth = 128"))));
  }
  EXPECT_THAT(DecodeOutboxHeaders(std::string(R"([["a","b"]])") + std::string("\0[[\"c\",\"d\"]]", 12)),
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
      absl::StatusOr<Headers> headers = DecodeOutboxHeaders(column->second);
      if (headers.ok()) {
        row.envelope.headers = *std::move(headers);
      } else {
        row.malformed = std::string(headers.status().message());
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

}  // namespace
}  // namespace herald
