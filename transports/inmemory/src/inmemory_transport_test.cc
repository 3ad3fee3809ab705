#include "herald/inmemory/inmemory_transport.h"

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/core/dispatcher.h"
#include "herald/core/strings.h"
#include "herald/testing/eventually.h"
#include "herald/testing/status_matchers.h"

namespace herald::inmemory {
namespace {

using ::herald::testing::Eventually;
using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

// A clock that moves only when told or slept on.
class ManualClock final : public Clock {
 public:
  absl::Time Now() const override {
    MutexLock lock(mu_);
    return now_;
  }
  void SleepFor(absl::Duration d) const override {
    MutexLock lock(mu_);
    now_ += d;
  }

 private:
  mutable Mutex mu_;
  mutable absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::FromUnixSeconds(1700000000);
};

struct Ping {
  std::string id;
  int64_t n = 0;
  static constexpr std::string_view kType = "test.ping";
  static constexpr std::string_view kTopic = "pings";
  std::string_view key() const { return id; }
  static constexpr auto JsonFields() { return json::Fields(json::Field("id", &Ping::id), json::Field("n", &Ping::n)); }
};

Envelope MakePing(std::string topic, std::string key, int64_t n = 0) {
  EnvelopeOptions options;
  options.topic = std::move(topic);
  return MakeEnvelope(Ping{std::move(key), n}, std::move(options));
}

// Records (partition, offset, id) per subscription. Thread-safe.
struct Recorder {
  Mutex mu;
  std::vector<Message> messages ABSL_GUARDED_BY(mu);
  std::function<Verdict(const Message&)> Handler() {
    return [this](const Message& m) {
      MutexLock lock(mu);
      messages.push_back(m);
      return Verdict::Ack();
    };
  }
  std::vector<Message> Get() {
    MutexLock lock(mu);
    return messages;
  }
  std::set<int32_t> Partitions() {
    std::set<int32_t> out;
    for (const Message& m : Get()) out.insert(m.partition);
    return out;
  }
};

// A transport-level subscription whose handler sees decoded messages.
TransportSubscription MakeSubscription(std::string group, std::vector<std::string> topics,
                                       std::function<Verdict(const Message&)> handler) {
  TransportSubscription s;
  s.group = std::move(group);
  s.topics = std::move(topics);
  s.handler = [handler = std::move(handler)](const ReceivedRecord& record) {
    absl::StatusOr<Message> message = DecodeReceivedRecord(record);
    EXPECT_THAT(message, IsOk());
    return message.ok() ? handler(*message) : Verdict::Ack();
  };
  return s;
}

// What a test sets up: the transport's options, and the log options of a
// broker of its own when `broker` is null. The clock is the Bus's too.
struct TestOptions {
  InMemoryBrokerOptions log;
  std::shared_ptr<InMemoryBroker> broker;
  bool deterministic = false;
  const Clock* clock = &SystemClock();
};

TestOptions Deterministic() {
  TestOptions options;
  options.deterministic = true;
  return options;
}

// A Bus over an InMemoryTransport made from TestOptions, with the transport.
struct TestBus {
  explicit TestBus(const TestOptions& o = {})
      : bus(std::make_unique<InMemoryTransport>(
                InMemoryTransportOptions{.broker = o.broker != nullptr ? o.broker : *InMemoryBroker::Create(o.log),
                                         .deterministic = o.deterministic,
                                         .clock = o.clock}),
            BusOptions{.clock = o.clock}),
        transport(bus.transport<InMemoryTransport>()) {}
  Bus bus;
  InMemoryTransport& transport;
};

// A key that lands on `partition` of `transport`'s topics.
std::string KeyFor(const InMemoryTransport& transport, int32_t partition) {
  for (int i = 0;; ++i) {
    std::string key = herald::StrCat("key-", i);
    if (transport.broker().PartitionFor(key) == partition) return key;
  }
}

// Blocks handlers until Open().
struct Gate {
  Mutex mu;
  CondVar cv;
  bool open ABSL_GUARDED_BY(mu) = false;
  int entered ABSL_GUARDED_BY(mu) = 0;
  void Enter() {
    MutexLock lock(mu);
    ++entered;
    cv.NotifyAll();
    cv.Wait(mu, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return open; });
  }
  bool WaitEntered(int n) {
    MutexLock lock(mu);
    return cv.WaitFor(mu, absl::Seconds(30), [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return entered >= n; });
  }
  void Open() {
    MutexLock lock(mu);
    open = true;
    cv.NotifyAll();
  }
};

TEST(InMemoryBroker, PartitionsLikeKafkasMurmur2) {
  // Reference hashes from Kafka's UtilsTest.testMurmur2; with
  // INT32_MAX partitions the partition is the positive hash itself.
  InMemoryBrokerOptions options;
  options.partitions = 0x7fffffff;
  std::shared_ptr<InMemoryBroker> owned = *InMemoryBroker::Create(options);
  InMemoryBroker& broker = *owned;
  auto positive = [](int32_t h) { return static_cast<int32_t>(static_cast<uint32_t>(h) & 0x7fffffff); };
  EXPECT_EQ(broker.PartitionFor("21"), positive(-973932308));
  EXPECT_EQ(broker.PartitionFor("foobar"), positive(-790332482));
  EXPECT_EQ(broker.PartitionFor("a-little-bit-long-string"), positive(-985981536));
  EXPECT_EQ(broker.PartitionFor("a-little-bit-longer-string"), positive(-1486304829));
  EXPECT_EQ(broker.PartitionFor("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), positive(-58897971));
  EXPECT_EQ(broker.PartitionFor("abc"), positive(479470107));
  EXPECT_EQ(broker.PartitionFor(""), -1);
}

TEST(InMemoryBroker, CreateRejectsBadOptions) {
  InMemoryBrokerOptions options;
  options.partitions = 0;
  EXPECT_THAT(InMemoryBroker::Create(options), StatusIs(absl::StatusCode::kInvalidArgument));
  options.partitions = 4;
  options.max_pending_per_partition = 0;
  EXPECT_THAT(InMemoryBroker::Create(options), StatusIs(absl::StatusCode::kInvalidArgument));
  options.max_pending_per_partition = 10;
  options.publish_block_timeout = absl::Seconds(-1);
  EXPECT_THAT(InMemoryBroker::Create(options), StatusIs(absl::StatusCode::kInvalidArgument));
  options.publish_block_timeout = absl::Seconds(1);
  options.max_record_bytes = -1;
  EXPECT_THAT(InMemoryBroker::Create(options), StatusIs(absl::StatusCode::kInvalidArgument));
  options.max_record_bytes = 0;
  EXPECT_THAT(InMemoryBroker::Create(options), IsOk());
}

TEST(InMemoryTransport, SameKeyGoesToOnePartitionWithIncreasingOffsets) {
  TestBus bus_setup;
  Bus& bus = bus_setup.bus;
  InMemoryTransport& bus_transport = bus_setup.transport;
  std::vector<int64_t> offsets;
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<DeliveryReport> r = bus.Publish(MakePing("t", "customer-1", i));
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->topic, "t");
    EXPECT_EQ(r->partition, bus_transport.broker().PartitionFor("customer-1"));
    offsets.push_back(r->offset);
  }
  for (int i = 0; i < 10; ++i) EXPECT_EQ(offsets[i], i);
  EXPECT_EQ(bus_transport.broker().EndOffset("t", bus_transport.broker().PartitionFor("customer-1")), 10);
}

TEST(InMemoryTransport, EmptyKeyGoesRoundRobin) {
  TestBus bus_setup;
  Bus& bus = bus_setup.bus;
  std::map<int32_t, int> per_partition;
  for (int i = 0; i < 8; ++i) {
    absl::StatusOr<DeliveryReport> r = bus.Publish(MakePing("t", ""));
    ASSERT_THAT(r, IsOk());
    ++per_partition[r->partition];
  }
  EXPECT_THAT(per_partition, ElementsAre(std::pair(0, 2), std::pair(1, 2), std::pair(2, 2), std::pair(3, 2)));
}

TEST(InMemoryTransport, GroupSplitsPartitionsAmongItsSubscriptions) {
  TestBus bus_setup(Deterministic());
  Bus& bus = bus_setup.bus;
  InMemoryTransport& bus_transport = bus_setup.transport;
  Recorder a, b, other;
  ASSERT_THAT(bus_transport.Subscribe(MakeSubscription("g", {"t"}, a.Handler())), IsOk());
  ASSERT_THAT(bus_transport.Subscribe(MakeSubscription("g", {"t"}, b.Handler())), IsOk());
  ASSERT_THAT(bus_transport.Subscribe(MakeSubscription("other", {"t"}, other.Handler())), IsOk());
  ASSERT_THAT(bus.Start(), IsOk());
  for (int p = 0; p < 4; ++p) {
    for (int i = 0; i < 3; ++i) ASSERT_THAT(bus.Publish(MakePing("t", KeyFor(bus_transport, p), i)), IsOk());
  }
  EXPECT_EQ(bus_transport.RunPending(), 24);
  EXPECT_THAT(a.Partitions(), UnorderedElementsAre(0, 2));
  EXPECT_THAT(b.Partitions(), UnorderedElementsAre(1, 3));
  EXPECT_EQ(a.Get().size() + b.Get().size(), 12u);
  EXPECT_EQ(other.Get().size(), 12u);
  for (const Message& m : other.Get()) EXPECT_EQ(m.group, "other");
  EXPECT_EQ(bus_transport.Lag("g", "t"), 0);
  EXPECT_EQ(bus_transport.Lag("other", "t"), 0);
}

TEST(InMemoryTransport, RebalancesWhenASubscriptionJoins) {
  TestBus bus_setup(Deterministic());
  Bus& bus = bus_setup.bus;
  InMemoryTransport& bus_transport = bus_setup.transport;
  Recorder a, b;
  ASSERT_THAT(bus_transport.Subscribe(MakeSubscription("g", {"t"}, a.Handler())), IsOk());
  ASSERT_THAT(bus.Start(), IsOk());
  for (int p = 0; p < 4; ++p) ASSERT_THAT(bus.Publish(MakePing("t", KeyFor(bus_transport, p))), IsOk());
  EXPECT_EQ(bus_transport.RunPending(), 4);
  EXPECT_THAT(a.Partitions(), UnorderedElementsAre(0, 1, 2, 3));

  ASSERT_THAT(bus_transport.Subscribe(MakeSubscription("g", {"t"}, b.Handler())), IsOk());
  for (int p = 0; p < 4; ++p) ASSERT_THAT(bus.Publish(MakePing("t", KeyFor(bus_transport, p))), IsOk());
  EXPECT_EQ(bus_transport.RunPending(), 4);
  EXPECT_EQ(a.Get().size(), 6u);
  EXPECT_THAT(b.Partitions(), UnorderedElementsAre(1, 3));
}

TEST(InMemoryTransport, NewGroupReadsFromEarliestRetainedRecord) {
  TestBus bus_setup(Deterministic());
  Bus& bus = bus_setup.bus;
  InMemoryTransport& bus_transport = bus_setup.transport;
  for (int i = 0; i < 5; ++i) ASSERT_THAT(bus.Publish(MakePing("t", "k", i)), IsOk());
  Recorder late;
  ASSERT_THAT(bus_transport.Subscribe(MakeSubscription("late", {"t"}, late.Handler())), IsOk());
  EXPECT_EQ(bus_transport.RunPending(), 0) << "nothing is delivered before Start()";
  ASSERT_THAT(bus.Start(), IsOk());
  EXPECT_EQ(bus_transport.RunPending(), 5);
  std::vector<Message> got = late.Get();
  ASSERT_EQ(got.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(got[i].offset, i);
}

TEST(InMemoryTransport, RunPendingDeliversOnTheCallingThread) {
  TestBus bus_setup(Deterministic());
  Bus& bus = bus_setup.bus;
  InMemoryTransport& bus_transport = bus_setup.transport;
  std::thread::id handler_thread;
  int calls = 0;
  ASSERT_THAT(bus.Subscribe<Ping>("g",
                                  [&](const Ping& p) {
                                    handler_thread = std::this_thread::get_id();
                                    ++calls;
                                    return absl::OkStatus();
                                  }),
              IsOk());
  ASSERT_THAT(bus.Start(), IsOk());
  ASSERT_THAT(bus.Publish(Ping{"p-1", 1}), IsOk());
  ASSERT_THAT(bus.Publish(Ping{"p-2", 2}), IsOk());
  EXPECT_EQ(calls, 0) << "deterministic mode delivers only in RunPending";
  EXPECT_EQ(bus_transport.RunPending(), 2);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(handler_thread, std::this_thread::get_id());
  EXPECT_EQ(bus_transport.RunPending(), 0);
}

TEST(InMemoryTransport, DeterministicRetryWaitsOnTheBusClock) {
  ManualClock clock;
  TestOptions options = Deterministic();
  options.clock = &clock;
  TestBus bus_setup(options);
  Bus& bus = bus_setup.bus;
  InMemoryTransport& bus_transport = bus_setup.transport;
  std::vector<absl::Time> attempts_at;
  std::vector<int> attempts;
  ASSERT_THAT(bus_transport.Subscribe(MakeSubscription("g", {"t"},
                                                       [&](const Message& m) {
                                                         attempts_at.push_back(clock.Now());
                                                         attempts.push_back(m.attempt);
                                                         return m.attempt < 3 ? Verdict::RetryAfter(absl::Seconds(5))
                                                                              : Verdict::Ack();
                                                       })),
              IsOk());
  ASSERT_THAT(bus.Start(), IsOk());
  ASSERT_THAT(bus.Publish(MakePing("t", "k")), IsOk());
  EXPECT_EQ(bus_transport.RunPending(), 3);
  EXPECT_THAT(attempts, ElementsAre(1, 2, 3));
  ASSERT_EQ(attempts_at.size(), 3u);
  EXPECT_GE(attempts_at[1] - attempts_at[0], absl::Seconds(5));
  EXPECT_GE(attempts_at[2] - attempts_at[1], absl::Seconds(5));
}

TEST(InMemoryTransport, RetryHoldsBackTheRestOfItsPartitionOnly) {
  ManualClock clock;
  TestOptions options = Deterministic();
  options.clock = &clock;
  TestBus bus_setup(options);
  Bus& bus = bus_setup.bus;
  InMemoryTransport& bus_transport = bus_setup.transport;
  std::vector<std::string> order;
  const std::string slow_key = KeyFor(bus_transport, 0), fast_key = KeyFor(bus_transport, 1);
  ASSERT_THAT(
      bus_transport.Subscribe(MakeSubscription("g", {"t"},
                                               [&](const Message& m) {
                                                 order.push_back(herald::StrCat(m.envelope.key, "#", m.attempt));
                                                 if (m.envelope.key == slow_key && m.offset == 0 && m.attempt == 1) {
                                                   return Verdict::RetryAfter(absl::Seconds(1));
                                                 }
                                                 return Verdict::Ack();
                                               })),
      IsOk());
  ASSERT_THAT(bus.Start(), IsOk());
  ASSERT_THAT(bus.Publish(MakePing("t", slow_key)), IsOk());
  ASSERT_THAT(bus.Publish(MakePing("t", slow_key)), IsOk());
  ASSERT_THAT(bus.Publish(MakePing("t", fast_key)), IsOk());
  EXPECT_EQ(bus_transport.RunPending(), 4);
  // The failed record blocks its partition (slow#1 before the second slow),
  // while the other partition goes on before the retry is due.
  EXPECT_THAT(order, ElementsAre(slow_key + "#1", fast_key + "#1", slow_key + "#2", slow_key + "#1"));
}

TEST(InMemoryTransport, ThrowingRawHandlerIsDeadLetteredLikeEveryOtherFailure) {
  // One handler-call policy (InvokeHandler in core): an exception is a
  // permanent kInternal error, on this transport as on every other.
  TestBus bus_setup(Deterministic());
  Bus& bus = bus_setup.bus;
  InMemoryTransport& bus_transport = bus_setup.transport;
  Recorder dead;
  ASSERT_THAT(bus_transport.Subscribe(MakeSubscription("dlq-reader", {"t.dlq"}, dead.Handler())), IsOk());
  int calls = 0;
  ASSERT_THAT(bus.Subscribe({.group = "g", .topics = {"t"}},
                            [&](const Message&) -> absl::Status {
                              ++calls;
                              throw std::runtime_error("boom");
                            }),
              IsOk());
  ASSERT_THAT(bus.Start(), IsOk());
  ASSERT_THAT(bus.Publish(MakePing("t", "k")), IsOk());
  ASSERT_THAT(bus.Publish(MakePing("t", "k", 2)), IsOk());
  bus_transport.RunPending();
  EXPECT_EQ(calls, 2) << "each record is handled once, the partition moves on";
  ASSERT_EQ(dead.Get().size(), 2u);
  EXPECT_EQ(FindHeader(dead.Get()[0].envelope.headers, kDlqCodeHeader), "INTERNAL");
  EXPECT_EQ(bus_transport.Lag("g", "t"), 0);
}

TEST(InMemoryTransport, ThrowingTypedHandlerEndsInDeadLetterTopic) {
  TestBus bus_setup(Deterministic());
  Bus& bus = bus_setup.bus;
  InMemoryTransport& bus_transport = bus_setup.transport;
  Recorder dead;
  ASSERT_THAT(bus_transport.Subscribe(MakeSubscription("dlq-reader", {"pings.dlq"}, dead.Handler())), IsOk());
  ASSERT_THAT(bus.Subscribe<Ping>("g", [](const Ping&) -> absl::Status { throw std::runtime_error("kaboom"); }),
              IsOk());
  ASSERT_THAT(bus.Start(), IsOk());
  ASSERT_THAT(bus.Publish(Ping{"p-1", 1}), IsOk());
  bus_transport.RunPending();
  std::vector<Message> got = dead.Get();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(FindHeader(got[0].envelope.headers, kDlqCodeHeader), "INTERNAL");
  EXPECT_THAT(FindHeader(got[0].envelope.headers, kDlqReasonHeader),
              ::testing::Optional(::testing::HasSubstr("kaboom")));
  EXPECT_EQ(FindHeader(got[0].envelope.headers, kDlqTopicHeader), "pings");
  EXPECT_EQ(bus.Stats()[0].dead_lettered, 1);
}

TEST(InMemoryTransport, DeadLetterSubscriptionReadsDeadLettersAsTheyAreAndNeverDeadLettersThem) {
  // Issue 8: a herald subscriber of <topic>.dlq used to dead-letter what it
  // could not handle again, into <topic>.dlq.dlq.
  TestBus bus_setup(Deterministic());
  Bus& bus = bus_setup.bus;
  InMemoryTransport& bus_transport = bus_setup.transport;
  ASSERT_THAT(bus.Subscribe<Ping>("g",
                                  [](const Ping& p) -> absl::Status {
                                    return p.n < 0 ? absl::InvalidArgumentError("negative ping") : absl::OkStatus();
                                  }),
              IsOk());
  std::vector<DeadLetter> letters;
  int deliveries = 0;
  ASSERT_THAT(bus.SubscribeDeadLetters(
                  {.group = "dlq-audit",
                   .topics = {"pings.dlq"},
                   .retry = {.initial_backoff = absl::Milliseconds(1), .max_backoff = absl::Milliseconds(1)}},
                  [&](const DeadLetter& d) -> absl::Status {
                    ++deliveries;
                    letters.push_back(d);
                    // Fails twice for good, then lets it pass.
                    return deliveries < 3 ? absl::FailedPreconditionError("audit store full") : absl::OkStatus();
                  }),
              IsOk());
  ASSERT_THAT(bus.Start(), IsOk());
  // An empty payload and every kind of header, kept as they are.
  Envelope refused = MakePing("pings", "p-1", -5);
  refused.headers = {{"x-app", "kept"}, {"ce_subject", "pings/p-1"}, {"traceparent", "00-1-2-01"}};
  ASSERT_THAT(bus.Publish(refused), IsOk());
  Envelope empty = MakePing("pings", "p-1");
  empty.payload = "";
  empty.headers = {{"x-app", "empty"}};
  ASSERT_THAT(bus.Publish(empty), IsOk());
  bus_transport.RunPending();

  ASSERT_EQ(letters.size(), 4u);  // the first one three times, then the second
  const DeadLetter& first = letters[2];
  EXPECT_EQ(first.topic, "pings.dlq");
  EXPECT_EQ(first.attempt, 3);
  EXPECT_EQ(first.original_topic, "pings");
  EXPECT_EQ(first.original_offset, 0);
  EXPECT_EQ(first.original_group, "g");
  EXPECT_EQ(first.reason, "negative ping");
  EXPECT_EQ(first.code, absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(first.envelope.has_value());
  EXPECT_EQ(first.OriginalHeaders(), refused.headers);
  absl::StatusOr<Ping> ping = first.As<Ping>();
  ASSERT_THAT(ping, IsOk());
  EXPECT_EQ(ping->n, -5);
  absl::StatusOr<Envelope> original = first.Decode();
  ASSERT_THAT(original, IsOk());
  EXPECT_EQ(original->id, refused.id);
  EXPECT_EQ(original->topic, "pings");

  const DeadLetter& second = letters[3];
  EXPECT_EQ(second.original_offset, 1);
  ASSERT_TRUE(second.envelope.has_value());
  EXPECT_EQ(second.envelope->payload, "");
  EXPECT_EQ(second.code, absl::StatusCode::kInvalidArgument);  // the typed handler could not decode it
  EXPECT_EQ(FindHeader(second.OriginalHeaders(), "x-app"), "empty");

  EXPECT_EQ(bus_transport.broker().RetainedRecords("pings.dlq.dlq"), 0) << "a dead letter was dead-lettered again";
  std::vector<Bus::SubscriptionStats> stats = bus.Stats();
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].dead_lettered, 2);
  EXPECT_EQ(stats[1].handled, 2);
  EXPECT_EQ(stats[1].failed, 2);
  EXPECT_EQ(stats[1].dead_lettered, 0);
  EXPECT_EQ(bus_transport.Lag("dlq-audit", "pings.dlq"), 0);
}

TEST(InMemoryTransport, FailPolicyRejectsAtOnceWhenPartitionIsFull) {
  TestOptions options = Deterministic();
  options.log.partitions = 1;
  options.log.max_pending_per_partition = 3;
  options.log.overflow = OverflowPolicy::kFail;
  TestBus bus_setup(options);
  Bus& bus = bus_setup.bus;
  InMemoryTransport& bus_transport = bus_setup.transport;
  Recorder r;
  ASSERT_THAT(bus_transport.Subscribe(MakeSubscription("g", {"t"}, r.Handler())), IsOk());
  ASSERT_THAT(bus.Start(), IsOk());
  for (int i = 0; i < 3; ++i) ASSERT_THAT(bus.Publish(MakePing("t", "k")), IsOk());
  EXPECT_THAT(bus.Publish(MakePing("t", "k")), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(bus_transport.Lag("g", "t"), 3);
  EXPECT_EQ(bus_transport.RunPending(), 3);
  EXPECT_THAT(bus.Publish(MakePing("t", "k")), IsOk());
}

TEST(InMemoryTransport, CommittedRecordsAreFreedByTheNextPublishAndDoNotCountAsPending) {
  TestOptions options = Deterministic();
  options.log.partitions = 1;
  options.log.max_pending_per_partition = 3;
  options.log.overflow = OverflowPolicy::kFail;
  TestBus bus_setup(options);
  Bus& bus = bus_setup.bus;
  InMemoryTransport& bus_transport = bus_setup.transport;
  Recorder r;
  ASSERT_THAT(bus_transport.Subscribe(MakeSubscription("g", {"t"}, r.Handler())), IsOk());
  ASSERT_THAT(bus.Start(), IsOk());
  for (int i = 0; i < 3; ++i) ASSERT_THAT(bus.Publish(MakePing("t", "k", i)), IsOk());
  EXPECT_EQ(bus_transport.RunPending(2), 2);
  EXPECT_EQ(bus_transport.Lag("g", "t"), 1);
  EXPECT_EQ(bus_transport.broker().RetainedRecords("t"), 3) << "the group is behind: left to the next publish";
  // One record is pending, so two more fit; the committed ones are freed.
  ASSERT_THAT(bus.Publish(MakePing("t", "k", 3)), IsOk());
  EXPECT_EQ(bus_transport.broker().RetainedRecords("t"), 2);
  ASSERT_THAT(bus.Publish(MakePing("t", "k", 4)), IsOk());
  EXPECT_THAT(bus.Publish(MakePing("t", "k", 5)), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(bus_transport.RunPending(), 3);
  EXPECT_EQ(bus_transport.broker().RetainedRecords("t"), 0) << "caught up: freed by the delivery";
  std::vector<int64_t> offsets;
  for (const Message& m : r.Get()) offsets.push_back(m.offset);
  EXPECT_THAT(offsets, ElementsAre(0, 1, 2, 3, 4));
}

TEST(InMemoryTransport, BlockPolicyFailsAfterTimeoutWhenNobodyConsumes) {
  TestOptions options = Deterministic();
  options.log.partitions = 1;
  options.log.max_pending_per_partition = 2;
  options.log.publish_block_timeout = absl::Milliseconds(20);
  TestBus bus_setup(options);
  Bus& bus = bus_setup.bus;
  InMemoryTransport& bus_transport = bus_setup.transport;
  Recorder r;
  ASSERT_THAT(bus_transport.Subscribe(MakeSubscription("g", {"t"}, r.Handler())), IsOk());
  ASSERT_THAT(bus.Start(), IsOk());
  ASSERT_THAT(bus.Publish(MakePing("t", "k")), IsOk());
  ASSERT_THAT(bus.Publish(MakePing("t", "k")), IsOk());
  EXPECT_THAT(bus.Publish(MakePing("t", "k")),
              StatusIs(absl::StatusCode::kResourceExhausted, ::testing::HasSubstr("stayed full")));
}

TEST(InMemoryTransport, BlockedPublisherResumesWhenTheGroupCatchesUp) {
  TestOptions options = Deterministic();
  options.log.partitions = 1;
  options.log.max_pending_per_partition = 2;
  options.log.publish_block_timeout = absl::Seconds(60);
  TestBus bus_setup(options);
  Bus& bus = bus_setup.bus;
  InMemoryTransport& bus_transport = bus_setup.transport;
  Recorder r;
  ASSERT_THAT(bus_transport.Subscribe(MakeSubscription("g", {"t"}, r.Handler())), IsOk());
  ASSERT_THAT(bus.Start(), IsOk());
  ASSERT_THAT(bus.Publish(MakePing("t", "k")), IsOk());
  ASSERT_THAT(bus.Publish(MakePing("t", "k")), IsOk());
  std::atomic<bool> done{false};
  absl::Status third;
  std::thread publisher([&] {
    third = bus.Publish(MakePing("t", "k")).status();
    done = true;
  });
  ASSERT_TRUE(Eventually([&] {
    bus_transport.RunPending();
    return done.load();
  }));
  publisher.join();
  EXPECT_THAT(third, IsOk());
  bus_transport.RunPending();
  EXPECT_EQ(r.Get().size(), 3u);
}

TEST(InMemoryTransport, TopicWithoutGroupKeepsTheNewestRecords) {
  TestOptions options = Deterministic();
  options.log.partitions = 1;
  options.log.retention_per_partition = 10;
  TestBus bus_setup(options);
  Bus& bus = bus_setup.bus;
  InMemoryTransport& bus_transport = bus_setup.transport;
  for (int i = 0; i < 25; ++i) ASSERT_THAT(bus.Publish(MakePing("t", "k", i)), IsOk());
  EXPECT_EQ(bus_transport.broker().RetainedRecords("t"), 10);
  Recorder r;
  ASSERT_THAT(bus_transport.Subscribe(MakeSubscription("g", {"t"}, r.Handler())), IsOk());
  ASSERT_THAT(bus.Start(), IsOk());
  EXPECT_EQ(bus_transport.RunPending(), 10);
  std::vector<Message> got = r.Get();
  ASSERT_EQ(got.size(), 10u);
  EXPECT_EQ(got.front().offset, 15);
  EXPECT_EQ(got.back().offset, 24);
  EXPECT_EQ(bus_transport.broker().RetainedRecords("t"), 0) << "consumed by every group: trimmed";
}

TEST(InMemoryTransport, MemoryStaysBoundedUnderSustainedLoad) {
  constexpr int kEvents = 200000;
  TestOptions options;
  options.log.max_pending_per_partition = 1000;
  std::atomic<int64_t> handled{0};
  TestBus bus_setup(options);
  Bus& bus = bus_setup.bus;
  InMemoryTransport& bus_transport = bus_setup.transport;
  ASSERT_THAT(bus_transport.Subscribe(MakeSubscription("fast", {"load"},
                                                       [&](const Message&) {
                                                         handled.fetch_add(1, std::memory_order_relaxed);
                                                         return Verdict::Ack();
                                                       })),
              IsOk());
  ASSERT_THAT(bus.Start(), IsOk());
  int64_t max_retained = 0;
  int failures = 0;
  Envelope small = MakePing("load", "");
  for (int i = 0; i < kEvents; ++i) {
    Envelope e = small;
    e.key = herald::StrCat(i % 64);
    bus.PublishAsync(std::move(e), [&](absl::StatusOr<DeliveryReport> r) { failures += r.ok() ? 0 : 1; });
    if (i % 1000 == 0) max_retained = std::max(max_retained, bus_transport.broker().RetainedRecords("load"));
  }
  EXPECT_EQ(failures, 0);
  EXPECT_LE(max_retained, 4 * 1000);
  ASSERT_TRUE(Eventually([&] { return handled.load() == kEvents; }));
  EXPECT_EQ(bus_transport.Lag("fast", "load"), 0);
  EXPECT_TRUE(Eventually([&] { return bus_transport.broker().RetainedRecords("load") == 0; }));
}

TEST(InMemoryTransport, LagCountsWhatTheGroupHasNotAcknowledged) {
  TestBus bus_setup(Deterministic());
  Bus& bus = bus_setup.bus;
  InMemoryTransport& bus_transport = bus_setup.transport;
  Recorder r;
  ASSERT_THAT(bus_transport.Subscribe(MakeSubscription("g", {"t"}, r.Handler())), IsOk());
  ASSERT_THAT(bus.Start(), IsOk());
  for (int i = 0; i < 10; ++i) ASSERT_THAT(bus.Publish(MakePing("t", herald::StrCat("k", i))), IsOk());
  EXPECT_EQ(bus_transport.Lag("g", "t"), 10);
  EXPECT_EQ(bus_transport.Lag("never-subscribed", "t"), 10);
  EXPECT_EQ(bus_transport.Lag("g", "unknown-topic"), 0);
  EXPECT_EQ(bus_transport.RunPending(4), 4);
  EXPECT_EQ(bus_transport.Lag("g", "t"), 6);
  bus_transport.RunPending();
  EXPECT_EQ(bus_transport.Lag("g", "t"), 0);
}

TEST(InMemoryTransport, StopWithStuckHandlerReturnsDeadlineExceededAndGroupGetsTheMessageAgain) {
  auto broker = *InMemoryBroker::Create();
  Gate gate;
  std::atomic<int> first_bus_calls{0};
  {
    TestOptions options;
    options.broker = broker;
    TestBus bus_setup(options);
    Bus& bus = bus_setup.bus;
    InMemoryTransport& bus_transport = bus_setup.transport;
    ASSERT_THAT(bus_transport.Subscribe(MakeSubscription("g", {"t"},
                                                         [&](const Message&) {
                                                           first_bus_calls.fetch_add(1);
                                                           gate.Enter();
                                                           return Verdict::Ack();
                                                         })),
                IsOk());
    ASSERT_THAT(bus.Start(), IsOk());
    ASSERT_THAT(bus.Publish(MakePing("t", "k")), IsOk());
    ASSERT_TRUE(gate.WaitEntered(1));
    EXPECT_THAT(bus.Stop(absl::Milliseconds(20)), StatusIs(absl::StatusCode::kDeadlineExceeded));
    EXPECT_THAT(bus.Stop(absl::Milliseconds(20)), IsOk()) << "idempotent";
    EXPECT_THAT(bus.Publish(MakePing("t", "k")), StatusIs(absl::StatusCode::kFailedPrecondition));

    // The abandoned message goes to the group's next subscriber.
    TestOptions deterministic = Deterministic();
    deterministic.broker = broker;
    Recorder r;
    TestBus next_setup(deterministic);
    Bus& next = next_setup.bus;
    InMemoryTransport& next_transport = next_setup.transport;
    ASSERT_THAT(next_transport.Subscribe(MakeSubscription("g", {"t"}, r.Handler())), IsOk());
    ASSERT_THAT(next.Start(), IsOk());
    EXPECT_EQ(next_transport.RunPending(), 1);
    EXPECT_EQ(r.Get().size(), 1u);
    gate.Open();  // the stuck handler returns; ~InMemoryTransport joins its thread
  }
  EXPECT_EQ(first_bus_calls.load(), 1);
  EXPECT_EQ(broker->Lag("g", "t"), 0);
}

TEST(InMemoryTransport, AbandonedHandlerStillReadsItsRecordAfterTheGroupMovesOn) {
  auto broker = *InMemoryBroker::Create({.partitions = 1});
  Gate gate;
  std::string read_after_release;  // written by the stuck handler once the gate opens
  const Envelope published = MakePing("t", "k", 42);
  {
    InMemoryTransport first(InMemoryTransportOptions{.broker = broker});
    TransportSubscription stuck;
    stuck.group = "g";
    stuck.topics = {"t"};
    stuck.handler = [&](const ReceivedRecord& record) {
      gate.Enter();
      // Handlers read the record in the log, without a copy: it must still
      // be there although the group has committed it meanwhile.
      read_after_release = herald::StrCat(record.envelope->id, "/", record.envelope->payload);
      return Verdict::Ack();
    };
    ASSERT_THAT(first.Subscribe(std::move(stuck)), IsOk());
    ASSERT_THAT(first.Start(), IsOk());
    absl::Status published_status = absl::UnknownError("not called");
    first.Publish(published, [&](absl::StatusOr<DeliveryReport> r) { published_status = r.status(); });
    ASSERT_THAT(published_status, IsOk());
    ASSERT_TRUE(gate.WaitEntered(1));
    EXPECT_THAT(first.Stop(absl::Milliseconds(20)), StatusIs(absl::StatusCode::kDeadlineExceeded));

    InMemoryTransport next(InMemoryTransportOptions{.broker = broker, .deterministic = true});
    Recorder r;
    ASSERT_THAT(next.Subscribe(MakeSubscription("g", {"t"}, r.Handler())), IsOk());
    ASSERT_THAT(next.Start(), IsOk());
    EXPECT_EQ(next.RunPending(), 1);
    EXPECT_EQ(broker->Lag("g", "t"), 0);
    EXPECT_EQ(broker->RetainedRecords("t"), 1) << "kept for the abandoned handler";
    gate.Open();
    // The stuck handler returns, unpins the record and frees it (under the
    // partition's lock, after writing read_after_release).
    ASSERT_TRUE(Eventually([&] { return broker->RetainedRecords("t") == 0; }));
    EXPECT_EQ(read_after_release, herald::StrCat(published.id, "/", published.payload));
  }
}

TEST(InMemoryTransport, ALoneRecordAfterABurstIsDeliveredAtOnce) {
  // A burst makes the delivery thread collect records between batches
  // instead of being woken per record; when the burst ends it must go back
  // to being woken, or the lone record would wait forever.
  TestOptions options;
  options.log.partitions = 1;
  TestBus bus_setup(options);
  Bus& bus = bus_setup.bus;
  std::atomic<int64_t> handled{0};
  std::atomic<int64_t> last_n{-1};  // offset of the last record handled
  std::atomic<bool> in_order{true};
  ASSERT_THAT(bus_setup.transport.Subscribe(MakeSubscription("g", {"t"},
                                                             [&](const Message& m) {
                                                               if (m.offset != last_n.load() + 1) in_order = false;
                                                               last_n = m.offset;
                                                               handled.fetch_add(1);
                                                               return Verdict::Ack();
                                                             })),
              IsOk());
  ASSERT_THAT(bus.Start(), IsOk());
  constexpr int kBurst = 20000;
  for (int i = 0; i < kBurst; ++i) bus.PublishAsync(MakePing("t", "k", i));
  ASSERT_TRUE(Eventually([&] { return handled.load() == kBurst; }));
  for (int lone = 0; lone < 3; ++lone) {
    absl::SleepFor(absl::Milliseconds(5));
    ASSERT_THAT(bus.Publish(MakePing("t", "k", kBurst + lone)), IsOk());
    ASSERT_TRUE(Eventually([&] { return handled.load() == kBurst + lone + 1; }, absl::Seconds(5)));
  }
  EXPECT_TRUE(in_order.load());
  EXPECT_EQ(bus.publish_failures(), 0);
}

TEST(InMemoryTransport, StopLetsARunningHandlerFinish) {
  Gate gate;
  std::atomic<int> finished{0};
  TestBus bus_setup;
  Bus& bus = bus_setup.bus;
  InMemoryTransport& bus_transport = bus_setup.transport;
  ASSERT_THAT(bus_transport.Subscribe(MakeSubscription("g", {"t"},
                                                       [&](const Message&) {
                                                         gate.Enter();
                                                         finished.fetch_add(1);
                                                         return Verdict::Ack();
                                                       })),
              IsOk());
  ASSERT_THAT(bus.Start(), IsOk());
  ASSERT_THAT(bus.Publish(MakePing("t", "k")), IsOk());
  ASSERT_TRUE(gate.WaitEntered(1));
  std::thread opener([&] { gate.Open(); });
  EXPECT_THAT(bus.Stop(absl::Seconds(30)), IsOk());
  opener.join();
  EXPECT_EQ(finished.load(), 1);
  EXPECT_EQ(bus_transport.Lag("g", "t"), 0) << "the finished handler's ack is committed";
}

TEST(InMemoryTransport, StoppedBusRefusesEverything) {
  TestBus bus_setup;
  Bus& bus = bus_setup.bus;
  InMemoryTransport& bus_transport = bus_setup.transport;
  ASSERT_THAT(bus.Start(), IsOk());
  EXPECT_THAT(bus.Start(), IsOk()) << "idempotent";
  ASSERT_THAT(bus.Stop(absl::Seconds(5)), IsOk());
  EXPECT_THAT(bus.Publish(MakePing("t", "k")), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(bus.Start(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(bus_transport.Subscribe(MakeSubscription("g", {"t"}, [](const Message&) { return Verdict::Ack(); })),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(bus.Flush(absl::Seconds(1)), IsOk());
}

TEST(InMemoryTransport, RejectsEnvelopeWithoutTopic) {
  TestBus bus_setup;
  Bus& bus = bus_setup.bus;
  EXPECT_THAT(bus.Publish(Envelope{}), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(InMemoryTransport, ConcurrentPublishersAndFlush) {
  std::atomic<int64_t> handled{0};
  TestBus bus_setup;
  Bus& bus = bus_setup.bus;
  ASSERT_THAT(bus.Subscribe<Ping>("g",
                                  [&](const Ping&) {
                                    handled.fetch_add(1);
                                    return absl::OkStatus();
                                  }),
              IsOk());
  ASSERT_THAT(bus.Start(), IsOk());
  std::atomic<int64_t> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        bus.PublishAsync(Ping{herald::StrCat("p", t, "-", i % 7), i}, {}, [&](absl::StatusOr<DeliveryReport> r) {
          if (r.ok()) ok.fetch_add(1);
        });
      }
    });
  }
  EXPECT_THAT(bus.Flush(absl::Seconds(30)), IsOk());
  for (std::thread& t : threads) t.join();
  EXPECT_THAT(bus.Flush(absl::Seconds(30)), IsOk());
  EXPECT_EQ(ok.load(), 2000);
  EXPECT_TRUE(Eventually([&] { return handled.load() == 2000; }));
}

}  // namespace
}  // namespace herald::inmemory
