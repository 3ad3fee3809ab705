#include "herald/core/dispatcher.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/core/strings.h"
#include "herald/core/type_registry.h"
#include "herald/core/wire.h"
#include "herald/testing/event_matchers.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/fake_clock.h"
#include "herald/testing/recording_handler.h"
#include "herald/testing/recording_log_sink.h"
#include "herald/testing/sample_events.h"
#include "herald/testing/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::FakeTransport;
using ::herald::testing::FakeTransportOptions;
using ::herald::testing::FakeClock;
using ::herald::testing::HasHeader;
using ::herald::testing::HasPayload;
using ::herald::testing::HasType;
using ::herald::testing::IsOk;
using ::herald::testing::RecordingHandler;
using ::herald::testing::RecordingRawHandler;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

using ::herald::testing::CustomerEvent;

Message MessageOn(std::string topic, std::string type = "customer.created", int attempt = 1) {
  Message m;
  m.envelope.id = "0190a6f2-3c1e-7b3a-9f4e-2b8c1d0e5a77";
  m.envelope.type = std::move(type);
  m.envelope.topic = topic;
  m.envelope.key = "cust-1";
  m.envelope.payload = R"({"customer_id":"cust-1","details":{"note":"d"}})";
  m.envelope.headers = {{"correlation-id", "req-1"}};
  m.topic = std::move(topic);
  m.partition = 3;
  m.offset = 42;
  m.group = "reader";
  m.attempt = attempt;
  return m;
}

SubscribeOptions Options(RetryPolicy retry = {}) {
  SubscribeOptions o;
  o.group = "reader";
  o.topics = {"customer-events"};
  o.retry = retry;
  return o;
}

Handler Returning(absl::Status s) {
  return [s](const Message&) { return s; };
}

TEST(RetryPolicy, BaseBackoffGrowsAndIsCapped) {
  RetryPolicy p{.max_attempts = 10, .initial_backoff = absl::Milliseconds(100), .max_backoff = absl::Seconds(1),
                .multiplier = 2.0};
  EXPECT_EQ(p.BaseBackoff(2), absl::Milliseconds(100));
  EXPECT_EQ(p.BaseBackoff(3), absl::Milliseconds(200));
  EXPECT_EQ(p.BaseBackoff(5), absl::Milliseconds(800));
  EXPECT_EQ(p.BaseBackoff(6), absl::Seconds(1));
  EXPECT_EQ(p.BaseBackoff(60), absl::Seconds(1));
  EXPECT_EQ(p.BaseBackoff(1), absl::Milliseconds(100));  // defensive: never below the initial backoff
}

TEST(Dispatcher, AcksWhenTheHandlerSucceeds) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  FakeClock clock;
  Dispatcher d(bus.transport(), Options(), Returning(absl::OkStatus()));
  EXPECT_EQ(d.Dispatch(MessageOn("customer-events")), Verdict::Ack());
  EXPECT_EQ(d.stats().handled.load(), 1);
  EXPECT_EQ(d.stats().failed.load(), 0);
  EXPECT_THAT(fake.published(), IsEmpty());
}

TEST(Dispatcher, RetryableErrorBacksOffWithJitterGrowingAndCapped) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  FakeClock clock;
  RetryPolicy policy{.max_attempts = 10, .initial_backoff = absl::Milliseconds(100),
                     .max_backoff = absl::Milliseconds(500), .multiplier = 2.0, .jitter = 0.2};
  Dispatcher d(bus.transport(), Options(policy), Returning(absl::UnavailableError("db down")));
  for (int round = 0; round < 50; ++round) {
    for (int attempt = 1; attempt < 10; ++attempt) {
      Verdict v = d.Dispatch(MessageOn("customer-events", "customer.created", attempt));
      ASSERT_EQ(v.kind, Verdict::Kind::kRetry) << attempt;
      absl::Duration base = policy.BaseBackoff(attempt + 1);
      EXPECT_GE(v.delay, base * 0.8) << attempt;
      EXPECT_LE(v.delay, base * 1.2) << attempt;
      EXPECT_LE(v.delay, policy.max_backoff * 1.2);
    }
  }
  EXPECT_THAT(fake.published(), IsEmpty());
  EXPECT_EQ(d.stats().retried.load(), 50 * 9);
}

TEST(Dispatcher, NoJitterGivesExactBackoff) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeClock clock;
  RetryPolicy policy{.max_attempts = 5, .initial_backoff = absl::Milliseconds(10), .jitter = 0};
  Dispatcher d(bus.transport(), Options(policy), Returning(absl::AbortedError("conflict")));
  EXPECT_EQ(d.Dispatch(MessageOn("customer-events", "customer.created", 1)), Verdict::RetryAfter(absl::Milliseconds(10)));
  EXPECT_EQ(d.Dispatch(MessageOn("customer-events", "customer.created", 3)), Verdict::RetryAfter(absl::Milliseconds(40)));
}

TEST(Dispatcher, PermanentErrorDeadLettersAtOnceWithAllHeaders) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  FakeClock clock;
  Dispatcher d(bus.transport(), Options(), Returning(absl::InvalidArgumentError("bad customer")));
  Message m = MessageOn("customer-events");
  EXPECT_EQ(d.Dispatch(m), Verdict::Ack());
  std::vector<Envelope> dlq = fake.published("customer-events.dlq");
  ASSERT_THAT(dlq, SizeIs(1));
  const Envelope& dead = dlq[0];
  EXPECT_EQ(dead.id, m.envelope.id);
  EXPECT_EQ(dead.type, m.envelope.type);
  EXPECT_EQ(dead.key, m.envelope.key);
  EXPECT_EQ(dead.payload, m.envelope.payload);
  EXPECT_THAT(dead.headers,
              ElementsAre(std::pair<std::string, std::string>("correlation-id", "req-1"),
                          std::pair<std::string, std::string>("herald-dlq-reason", "bad customer"),
                          std::pair<std::string, std::string>("herald-dlq-code", "INVALID_ARGUMENT"),
                          std::pair<std::string, std::string>("herald-dlq-attempts", "1"),
                          std::pair<std::string, std::string>("herald-dlq-topic", "customer-events"),
                          std::pair<std::string, std::string>("herald-dlq-partition", "3"),
                          std::pair<std::string, std::string>("herald-dlq-offset", "42"),
                          std::pair<std::string, std::string>("herald-dlq-group", "reader")));
  EXPECT_EQ(d.stats().dead_lettered.load(), 1);
  EXPECT_EQ(d.stats().retried.load(), 0);
}

TEST(Dispatcher, ExhaustedRetriesDeadLetter) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  FakeClock clock;
  Dispatcher d(bus.transport(), Options({.max_attempts = 3}), Returning(absl::UnavailableError("still down")));
  EXPECT_EQ(d.Dispatch(MessageOn("customer-events", "customer.created", 2)).kind, Verdict::Kind::kRetry);
  EXPECT_EQ(d.Dispatch(MessageOn("customer-events", "customer.created", 3)), Verdict::Ack());
  EXPECT_THAT(fake.published("customer-events.dlq"),
              ElementsAre(AllOf(HasHeader("herald-dlq-attempts", "3"), HasHeader("herald-dlq-code", "UNAVAILABLE"),
                                HasHeader("herald-dlq-reason", "still down"))));
}

TEST(Dispatcher, ThrownExceptionsBecomeInternalAndDeadLetter) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  FakeClock clock;
  Dispatcher d(bus.transport(), Options(), [](const Message&) -> absl::Status { throw std::runtime_error("boom"); });
  EXPECT_EQ(d.Dispatch(MessageOn("customer-events")), Verdict::Ack());
  Dispatcher odd(bus.transport(), Options(), [](const Message&) -> absl::Status { throw 42; });
  EXPECT_EQ(odd.Dispatch(MessageOn("customer-events")), Verdict::Ack());
  EXPECT_THAT(fake.published("customer-events.dlq"),
              ElementsAre(AllOf(HasHeader("herald-dlq-code", "INTERNAL"), HasHeader("herald-dlq-reason", "handler threw: boom")),
                          AllOf(HasHeader("herald-dlq-code", "INTERNAL"),
                                HasHeader("herald-dlq-reason", HasSubstr("non-std::exception")))));
}

TEST(Dispatcher, LogsHandlerFailuresAndDeadLettersAsWarningsAndOutcomesAtDebug) {
  Bus bus(std::make_unique<FakeTransport>());
  testing::RecordingLogSink log;
  Dispatcher d(
      bus.transport(), Options(), [](const Message&) -> absl::Status { throw std::runtime_error("boom"); },
      /*metrics=*/nullptr, /*tracer=*/nullptr, &log);
  EXPECT_EQ(d.Dispatch(MessageOn("customer-events")), Verdict::Ack());
  std::vector<testing::RecordedLog> failed = log.Find("bus", "handler failed");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].level, LogLevel::kWarning);
  EXPECT_EQ(failed[0].Field("error"), "INTERNAL: handler threw: boom");
  EXPECT_EQ(failed[0].Field("topic"), "customer-events");
  EXPECT_EQ(failed[0].Field("partition"), "3");
  EXPECT_EQ(failed[0].Field("offset"), "42");
  EXPECT_EQ(failed[0].Field("group"), "reader");
  EXPECT_EQ(failed[0].Field("id"), "0190a6f2-3c1e-7b3a-9f4e-2b8c1d0e5a77");
  std::vector<testing::RecordedLog> dead = log.Find("bus", "event dead-lettered");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].level, LogLevel::kWarning);
  std::vector<testing::RecordedLog> done = log.Find("bus", "delivery done");
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].level, LogLevel::kDebug);
  EXPECT_EQ(done[0].Field("outcome"), "dead-lettered");

  Dispatcher ok(bus.transport(), Options(), Returning(absl::OkStatus()), nullptr, nullptr, &log);
  EXPECT_EQ(ok.Dispatch(MessageOn("customer-events")), Verdict::Ack());
  done = log.Find("bus", "delivery done");
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[1].Field("outcome"), "handled");
}

TEST(Dispatcher, FailedDeadLetterPublishRetriesInsteadOfDropping) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  FakeClock clock;
  fake.FailPublishesTo("customer-events.dlq", absl::UnavailableError("dlq down"));
  Dispatcher d(bus.transport(), Options(), Returning(absl::InvalidArgumentError("bad")));
  Verdict v = d.Dispatch(MessageOn("customer-events"));
  EXPECT_EQ(v.kind, Verdict::Kind::kRetry);
  EXPECT_GT(v.delay, absl::ZeroDuration());
  EXPECT_EQ(d.stats().dead_lettered.load(), 0);
  fake.FailPublishesTo("customer-events.dlq", absl::OkStatus());
  EXPECT_EQ(d.Dispatch(MessageOn("customer-events", "customer.created", 2)), Verdict::Ack());
  EXPECT_THAT(fake.published("customer-events.dlq"), SizeIs(1));
}

TEST(Dispatcher, DisabledDeadLettersRetryAtMaxBackoff) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  FakeClock clock;
  SubscribeOptions o = Options({.max_attempts = 2, .max_backoff = absl::Seconds(7)});
  o.dead_letter.enabled = false;
  Dispatcher d(bus.transport(), o, Returning(absl::InvalidArgumentError("bad")));
  EXPECT_EQ(d.Dispatch(MessageOn("customer-events", "customer.created", 9)), Verdict::RetryAfter(absl::Seconds(7)));
  EXPECT_THAT(fake.published(), IsEmpty());
}

TEST(Dispatcher, CustomDeadLetterTopicAndSuffix) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  FakeClock clock;
  SubscribeOptions fixed = Options();
  fixed.dead_letter.topic = "all-dead";
  Dispatcher a(bus.transport(), fixed, Returning(absl::NotFoundError("x")));
  a.Dispatch(MessageOn("customer-events"));
  SubscribeOptions suffixed = Options();
  suffixed.dead_letter.suffix = "-dead";
  Dispatcher b(bus.transport(), suffixed, Returning(absl::NotFoundError("x")));
  b.Dispatch(MessageOn("customer-events"));
  EXPECT_THAT(fake.published("all-dead"), SizeIs(1));
  EXPECT_THAT(fake.published("customer-events-dead"), SizeIs(1));
}

TEST(Dispatcher, UnknownTypesAreSkippedOrDeadLettered) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  FakeClock clock;
  RecordingRawHandler handler;
  SubscribeOptions skip = Options();
  skip.accepted_types = {"customer.created"};
  skip.skip_unknown_types = true;
  Dispatcher skipping(bus.transport(), skip, handler.handler());
  EXPECT_EQ(skipping.Dispatch(MessageOn("customer-events", "product.created")), Verdict::Ack());
  EXPECT_EQ(skipping.stats().skipped.load(), 1);
  EXPECT_EQ(handler.count(), 0);
  EXPECT_THAT(fake.published(), IsEmpty());
  EXPECT_EQ(skipping.Dispatch(MessageOn("customer-events", "customer.created")), Verdict::Ack());
  EXPECT_EQ(handler.count(), 1);

  SubscribeOptions strict = skip;
  strict.skip_unknown_types = false;
  Dispatcher dead_lettering(bus.transport(), strict, handler.handler());
  EXPECT_EQ(dead_lettering.Dispatch(MessageOn("customer-events", "product.created")), Verdict::Ack());
  EXPECT_EQ(handler.count(), 1);
  EXPECT_THAT(fake.published("customer-events.dlq"),
              ElementsAre(AllOf(HasType("product.created"), HasHeader("herald-dlq-code", "INVALID_ARGUMENT"),
                                HasHeader("herald-dlq-reason", HasSubstr("no handler")))));
}

TEST(Dispatcher, MiddlewareRunsOutermostFirstAndMayShortCircuit) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  FakeClock clock;
  std::vector<std::string> log;
  auto logging = [&log](std::string name) -> Middleware {
    return [&log, name](const Message& m, const Handler& next) {
      log.push_back(name + ":before");
      absl::Status s = next(m);
      log.push_back(name + ":after");
      return s;
    };
  };
  SubscribeOptions o = Options();
  o.middleware = {logging("outer"), logging("inner")};
  Dispatcher d(bus.transport(), o,
               [&log](const Message&) {
                 log.push_back("handler");
                 return absl::OkStatus();
               });
  d.Dispatch(MessageOn("customer-events"));
  EXPECT_THAT(log, ElementsAre("outer:before", "inner:before", "handler", "inner:after", "outer:after"));

  log.clear();
  SubscribeOptions guarded = Options();
  guarded.middleware = {[](const Message&, const Handler&) { return absl::PermissionDeniedError("nope"); }};
  Dispatcher g(bus.transport(), guarded,
               [&log](const Message&) {
                 log.push_back("handler");
                 return absl::OkStatus();
               });
  EXPECT_EQ(g.Dispatch(MessageOn("customer-events")), Verdict::Ack());
  EXPECT_THAT(log, IsEmpty());
  EXPECT_THAT(fake.published("customer-events.dlq"), ElementsAre(HasHeader("herald-dlq-code", "PERMISSION_DENIED")));
}

TEST(Dispatcher, HandlerSeesCurrentMessage) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeClock clock;
  const Message* seen = nullptr;
  Dispatcher d(bus.transport(), Options(),
               [&](const Message& m) {
                 seen = CurrentMessage();
                 EXPECT_EQ(seen, &m);
                 return absl::OkStatus();
               });
  d.Dispatch(MessageOn("customer-events"));
  EXPECT_NE(seen, nullptr);
  EXPECT_EQ(CurrentMessage(), nullptr);
}

class CountingHandler : public EventHandler<CustomerEvent> {
 public:
  absl::Status Handle(const CustomerEvent& e, const Message& m) override {
    ids.push_back(e.customer_id);
    topics.push_back(m.topic);
    return absl::OkStatus();
  }
  std::vector<std::string> ids, topics;
};

TEST(TypedHandler, AcceptsEveryHandlerForm) {
  Message m = MessageOn("customer-events", "customer.updated");
  std::vector<std::string> calls;
  Handler by_event = TypedHandler<CustomerEvent>([&](const CustomerEvent& e) {
    calls.push_back("event:" + e.customer_id);
    EXPECT_EQ(e.type, CustomerEvent::Type::kUpdated);
    return absl::OkStatus();
  });
  Handler with_message = TypedHandler<CustomerEvent>([&](const CustomerEvent& e, const Message& msg) {
    calls.push_back("message:" + msg.group);
    return absl::OkStatus();
  });
  CountingHandler object;
  Handler by_reference = TypedHandler<CustomerEvent>(object);
  auto shared = std::make_shared<CountingHandler>();
  Handler by_shared = TypedHandler<CustomerEvent>(std::shared_ptr<EventHandler<CustomerEvent>>(shared));
  for (Handler* h : {&by_event, &with_message, &by_reference, &by_shared}) EXPECT_THAT((*h)(m), IsOk());
  EXPECT_THAT(calls, ElementsAre("event:cust-1", "message:reader"));
  EXPECT_THAT(object.ids, ElementsAre("cust-1"));
  EXPECT_THAT(shared->topics, ElementsAre("customer-events"));
}

TEST(TypedHandler, DecodeFailureIsInvalidArgumentAndDeadLetters) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  FakeClock clock;
  RecordingHandler<CustomerEvent> seen;
  Dispatcher d(bus.transport(), Options(), TypedHandler<CustomerEvent>(seen));
  Message m = MessageOn("customer-events");
  m.envelope.payload = R"({"customer_id":12})";
  EXPECT_EQ(d.Dispatch(m), Verdict::Ack());
  EXPECT_EQ(seen.count(), 0);
  EXPECT_THAT(fake.published("customer-events.dlq"),
              ElementsAre(AllOf(HasHeader("herald-dlq-code", "INVALID_ARGUMENT"),
                                HasHeader("herald-dlq-reason", HasSubstr("customer_id")),
                                HasPayload(R"({"customer_id":12})"))));
}

struct Versioned {
  int64_t cents = 0;
  static constexpr std::string_view kType = "v.event";
  static constexpr int kSchemaVersion = 2;
  static constexpr auto JsonFields() { return json::Fields(json::Field("cents", &Versioned::cents)); }
};

TEST(TypedHandler, UsesTheRegistryToUpcast) {
  TypeRegistry registry;
  ASSERT_THAT(registry.Register<Versioned>(), IsOk());
  ASSERT_THAT(registry.AddUpcaster("v.event", 1,
                                   [](rapidjson::Document& d) {
                                     int64_t units = d["units"].GetInt64();
                                     d.AddMember("cents", units * 100, d.GetAllocator());
                                     return absl::OkStatus();
                                   }),
              IsOk());
  int64_t got = 0;
  Handler h = TypedHandler<Versioned>(
      [&](const Versioned& v) {
        got = v.cents;
        return absl::OkStatus();
      },
      &registry);
  Message m = MessageOn("v", "v.event");
  m.envelope.schema_version = 1;
  m.envelope.payload = R"({"units":3})";
  EXPECT_THAT(h(m), IsOk());
  EXPECT_EQ(got, 300);
  Handler without = TypedHandler<Versioned>([](const Versioned&) { return absl::OkStatus(); });
  EXPECT_THAT(without(m), ::herald::testing::StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(Dispatcher, ThroughTheBusRetriesThenSucceeds) {
  FakeClock clock;
  Bus bus(std::make_unique<FakeTransport>(FakeTransportOptions{.clock_to_advance = &clock}), BusOptions{.clock = &clock});
  FakeTransport& fake = bus.transport<FakeTransport>();
  RecordingHandler<CustomerEvent> seen;
  seen.FailNext(3, absl::DeadlineExceededError("slow"));
  ASSERT_THAT(bus.Subscribe<CustomerEvent>("reader", seen,
                                           {.retry = {.initial_backoff = absl::Seconds(1), .jitter = 0}}),
              IsOk());
  absl::Time before = clock.Now();
  ASSERT_THAT(bus.Publish(CustomerEvent{CustomerEvent::Type::kCreated, "c1"}), IsOk());
  EXPECT_EQ(seen.count(), 4);
  EXPECT_THAT(fake.retry_delays(), ElementsAre(absl::Seconds(1), absl::Seconds(2), absl::Seconds(4)));
  EXPECT_EQ(clock.Now() - before, absl::Seconds(7));
  EXPECT_THAT(fake.published("customer-events.dlq"), IsEmpty());
  std::vector<Bus::SubscriptionStats> stats = bus.Stats();
  ASSERT_THAT(stats, SizeIs(1));
  EXPECT_EQ(stats[0].handled, 1);
  EXPECT_EQ(stats[0].retried, 3);
  EXPECT_EQ(stats[0].failed, 3);
}

TEST(Dispatcher, ConcurrentDispatchCountsEverything) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  FakeClock clock;
  std::atomic<int> calls{0};
  Dispatcher d(bus.transport(), Options(),
               [&](const Message& m) {
                 calls.fetch_add(1);
                 return m.offset % 2 ? absl::InvalidArgumentError("odd") : absl::OkStatus();
               });
  constexpr int kThreads = 4, kPerThread = 250;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Message m = MessageOn("customer-events");
        m.partition = t;
        m.offset = i;
        EXPECT_EQ(d.Dispatch(m), Verdict::Ack());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(calls.load(), kThreads * kPerThread);
  EXPECT_EQ(d.stats().handled.load(), kThreads * kPerThread / 2);
  EXPECT_EQ(d.stats().dead_lettered.load(), kThreads * kPerThread / 2);
  EXPECT_THAT(fake.published("customer-events.dlq"), SizeIs(kThreads * kPerThread / 2));
}

// ---- Dead letters that do not fit, and dead letters read back (issue 8) ----

// A transport that moves bytes, as Kafka does: records what the dispatcher
// publishes, and refuses records over `limit` bytes (key + value + headers)
// with RecordTooLargeError, as a broker with max.message.bytes does.
class BytesTransport final : public Transport {
 public:
  struct Published {
    std::string topic;
    Record record;
  };
  explicit BytesTransport(size_t limit = SIZE_MAX) : limit_(limit) {}

  void Publish(Envelope envelope, PublishCallback done) override {
    absl::StatusOr<Record> record = EncodeRecord(envelope);
    if (!record.ok()) {
      done(record.status());
      return;
    }
    PublishRecord(envelope.topic, *std::move(record), std::move(done));
  }
  void PublishRecord(std::string topic, Record record, PublishCallback done) override {
    size_t size = record.key.size() + record.value.size();
    for (const auto& [name, value] : record.headers) size += name.size() + value.size();
    if (size > limit_) {
      ++refused;
      done(RecordTooLargeError(herald::StrCat("record of ", size, " bytes is over ", limit_)));
      return;
    }
    published.push_back({topic, std::move(record)});
    done(DeliveryReport{published.back().topic, 0, static_cast<int64_t>(published.size() - 1)});
  }
  absl::Status Subscribe(TransportSubscription) override { return absl::OkStatus(); }
  absl::Status Start() override { return absl::OkStatus(); }
  absl::Status Stop(absl::Duration) override { return absl::OkStatus(); }
  absl::Status Flush(absl::Duration) override { return absl::OkStatus(); }

  std::vector<Published> published;
  int refused = 0;

 private:
  const size_t limit_;
};

// A record as Kafka hands it over: bytes and headers.
struct BytesRecord {
  std::string key = "cust-1";
  std::string value;
  Headers headers;
  ReceivedRecord View(std::string_view topic = "customer-events") const {
    ReceivedRecord r;
    r.topic = topic;
    r.partition = 2;
    r.offset = 77;
    r.group = "reader";
    r.key = key;
    r.value = value;
    r.headers = &headers;
    return r;
  }
};

BytesRecord DecodableRecordWithEveryKindOfHeader() {
  Envelope e = MessageOn("customer-events").envelope;
  absl::StatusOr<Record> encoded = EncodeRecord(e);
  EXPECT_THAT(encoded, IsOk());
  BytesRecord r;
  r.key = encoded->key;
  r.value = encoded->value;
  r.headers = encoded->headers;
  // CloudEvents attributes and extensions herald's envelope does not model,
  // and an application header.
  r.headers.emplace_back("ce_subject", "cust-1/address");
  r.headers.emplace_back("ce_dataschema", "https://schemas.example/customer/1");
  r.headers.emplace_back("ce_tenant", "acme");
  r.headers.emplace_back("x-app", "kept");
  return r;
}

TEST(DeadLetter, BytesRecordIsDeadLetteredAsReadWithEveryHeader) {
  BytesTransport transport;
  Dispatcher d(transport, Options(), Returning(absl::InvalidArgumentError("bad customer")));
  BytesRecord r = DecodableRecordWithEveryKindOfHeader();
  EXPECT_EQ(d.Dispatch(r.View()), Verdict::Ack());
  ASSERT_THAT(transport.published, SizeIs(1));
  const BytesTransport::Published& dead = transport.published[0];
  EXPECT_EQ(dead.topic, "customer-events.dlq");
  EXPECT_EQ(dead.record.key, r.key);
  EXPECT_EQ(dead.record.value, r.value);  // the same bytes, not re-encoded
  // Every original header, in order, then herald's.
  ASSERT_GE(dead.record.headers.size(), r.headers.size());
  EXPECT_EQ(Headers(dead.record.headers.begin(), dead.record.headers.begin() + r.headers.size()), r.headers);
  EXPECT_EQ(FindHeader(dead.record.headers, kDlqReasonHeader), "bad customer");
  EXPECT_EQ(FindHeader(dead.record.headers, kDlqTopicHeader), "customer-events");
  EXPECT_EQ(FindHeader(dead.record.headers, kDlqPartitionHeader), "2");
  EXPECT_EQ(FindHeader(dead.record.headers, kDlqOffsetHeader), "77");
}

// The dispatcher decodes each record into a Message it reuses on its thread:
// what one record carried must never show in the next, and a Dispatch nested
// in a handler on the same thread must not overwrite the outer message.
TEST(Dispatcher, EachRecordIsDecodedAfreshAndNestedDispatchKeepsTheOuterMessage) {
  BytesTransport transport;
  BytesRecord full = DecodableRecordWithEveryKindOfHeader();
  Envelope plain_envelope = MessageOn("customer-events").envelope;
  plain_envelope.id = "0190a6f2-3c1e-7b3a-9f4e-2b8c1d0e5a78";
  plain_envelope.headers.clear();
  plain_envelope.payload = R"({"customer_id":"cust-2"})";
  absl::StatusOr<Record> plain_encoded = EncodeRecord(plain_envelope);
  ASSERT_THAT(plain_encoded, IsOk());
  BytesRecord plain{plain_encoded->key, plain_encoded->value, plain_encoded->headers};

  std::vector<Message> seen;
  std::unique_ptr<Dispatcher> inner;
  Dispatcher outer(transport, Options(), [&](const Message& m) {
    Message before = m;
    if (m.envelope.id == plain_envelope.id) {
      EXPECT_EQ(inner->Dispatch(full.View()), Verdict::Ack());
    }
    EXPECT_EQ(m.envelope, before.envelope);  // untouched by the nested decode
    seen.push_back(m);
    return absl::OkStatus();
  });
  inner = std::make_unique<Dispatcher>(transport, Options(), [&](const Message& m) {
    seen.push_back(m);
    return absl::OkStatus();
  });
  EXPECT_EQ(outer.Dispatch(full.View()), Verdict::Ack());
  EXPECT_EQ(outer.Dispatch(plain.View()), Verdict::Ack());
  EXPECT_EQ(outer.Dispatch(full.View()), Verdict::Ack());
  ASSERT_THAT(seen, SizeIs(4));

  absl::StatusOr<Envelope> want_full = DecodeRecord("customer-events", full.key, full.value, full.headers);
  absl::StatusOr<Envelope> want_plain = DecodeRecord("customer-events", plain.key, plain.value, plain.headers);
  ASSERT_THAT(want_full, IsOk());
  ASSERT_THAT(want_plain, IsOk());
  EXPECT_EQ(seen[0].envelope, *want_full);
  EXPECT_EQ(seen[1].envelope, *want_full);   // the nested one, handled first
  EXPECT_EQ(seen[2].envelope, *want_plain);  // no subject, extension or header left from the first record
  EXPECT_EQ(seen[3].envelope, *want_full);
  EXPECT_EQ(seen[2].topic, "customer-events");
  EXPECT_EQ(seen[2].group, "reader");
  EXPECT_EQ(seen[2].offset, 77);
}

TEST(DeadLetter, EmptyValueStaysEmpty) {
  BytesTransport transport;
  Dispatcher d(transport, Options(), Returning(absl::OkStatus()));
  BytesRecord r;
  r.headers = {{"x-app", "kept"}};
  EXPECT_EQ(d.Dispatch(r.View()), Verdict::Ack());  // undecodable: dead-lettered as it is
  ASSERT_THAT(transport.published, SizeIs(1));
  EXPECT_EQ(transport.published[0].record.value, "");
  EXPECT_EQ(transport.published[0].record.key, "cust-1");
  EXPECT_EQ(FindHeader(transport.published[0].record.headers, "x-app"), "kept");
  EXPECT_THAT(FindHeader(transport.published[0].record.headers, kDlqReasonHeader),
              ::testing::Optional(HasSubstr("undecodable")));
}

TEST(DeadLetter, TooLargeIsWrittenWithoutItsValueAndThePartitionMovesOn) {
  // The original fits; with herald's headers added, its dead letter does not.
  BytesRecord r;
  r.value = std::string(1000, '[');  // undecodable
  r.headers = {{"x-app", "kept"}};
  BytesTransport transport(/*limit=*/1000 + 50);
  Dispatcher d(transport, Options(), Returning(absl::OkStatus()));
  EXPECT_EQ(d.Dispatch(r.View()), Verdict::Ack());
  EXPECT_EQ(transport.refused, 1);
  ASSERT_THAT(transport.published, SizeIs(1));
  const Record& dead = transport.published[0].record;
  EXPECT_EQ(dead.value, "");
  EXPECT_EQ(dead.key, "cust-1");
  EXPECT_EQ(FindHeader(dead.headers, "x-app"), "kept");
  EXPECT_EQ(FindHeader(dead.headers, kDlqDroppedHeader), "value");
  EXPECT_EQ(FindHeader(dead.headers, kDlqValueSizeHeader), "1000");
  EXPECT_EQ(FindHeader(dead.headers, kDlqTopicHeader), "customer-events");
  EXPECT_EQ(FindHeader(dead.headers, kDlqPartitionHeader), "2");
  EXPECT_EQ(FindHeader(dead.headers, kDlqOffsetHeader), "77");
  EXPECT_THAT(FindHeader(dead.headers, kDlqReasonHeader), ::testing::Optional(HasSubstr("undecodable")));
  EXPECT_EQ(d.stats().dead_lettered.load(), 1);
  EXPECT_EQ(d.stats().dead_letters_cut.load(), 1);
}

TEST(DeadLetter, HandlerFailureTooLargeWithHugeHeadersDropsKeyAndHeadersToo) {
  BytesRecord r = DecodableRecordWithEveryKindOfHeader();
  r.headers.emplace_back("x-huge", std::string(5000, 'h'));
  BytesTransport transport(/*limit=*/4000);
  Dispatcher d(transport, Options(), Returning(absl::InvalidArgumentError("bad customer")));
  EXPECT_EQ(d.Dispatch(r.View()), Verdict::Ack());
  EXPECT_EQ(transport.refused, 2);
  ASSERT_THAT(transport.published, SizeIs(1));
  const Record& dead = transport.published[0].record;
  EXPECT_EQ(dead.value, "");
  EXPECT_EQ(dead.key, "");
  EXPECT_FALSE(FindHeader(dead.headers, "x-huge").has_value());
  for (const auto& [name, value] : dead.headers) EXPECT_TRUE(IsDeadLetterHeader(name)) << name;
  EXPECT_EQ(FindHeader(dead.headers, kDlqDroppedHeader), "value,key,headers");
  EXPECT_EQ(FindHeader(dead.headers, kDlqValueSizeHeader), herald::StrCat(r.value.size()));
  EXPECT_EQ(FindHeader(dead.headers, kDlqReasonHeader), "bad customer");
  EXPECT_EQ(FindHeader(dead.headers, kDlqOffsetHeader), "77");
}

TEST(DeadLetter, OtherPublishErrorsStillRetryInsteadOfCutting) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  fake.FailPublishesTo("customer-events.dlq", absl::InvalidArgumentError("not a size problem"));
  Dispatcher d(bus.transport(), Options(), Returning(absl::InvalidArgumentError("bad")));
  EXPECT_EQ(d.Dispatch(MessageOn("customer-events")).kind, Verdict::Kind::kRetry);
  EXPECT_EQ(d.stats().dead_letters_cut.load(), 0);
}

TEST(DeadLetter, FakeTransportTooLargeEnvelopeIsWrittenWithoutItsPayload) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  // The fake stands for a dead-letter topic whose size limit the payload
  // does not fit.
  fake.SetPublishHook([](const Envelope& e) {
    return e.topic == "customer-events.dlq" && !e.payload.empty() ? RecordTooLargeError("over max.message.bytes")
                                                                  : absl::OkStatus();
  });
  Dispatcher d(bus.transport(), Options(), Returning(absl::InvalidArgumentError("bad customer")));
  Message m = MessageOn("customer-events");
  EXPECT_EQ(d.Dispatch(m), Verdict::Ack());
  std::vector<Envelope> dlq = fake.published("customer-events.dlq");
  ASSERT_THAT(dlq, SizeIs(1));
  EXPECT_EQ(dlq[0].payload, "");
  EXPECT_EQ(dlq[0].id, m.envelope.id);
  EXPECT_EQ(dlq[0].key, "cust-1");
  EXPECT_THAT(dlq[0], AllOf(HasHeader("correlation-id", "req-1"), HasHeader("herald-dlq-dropped", "value"),
                            HasHeader("herald-dlq-value-size", herald::StrCat(m.envelope.payload.size())),
                            HasHeader("herald-dlq-reason", "bad customer"), HasHeader("herald-dlq-offset", "42")));
  EXPECT_EQ(d.stats().dead_letters_cut.load(), 1);
}

TEST(DeadLetter, LongReasonsAreCut) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  Dispatcher d(bus.transport(), Options(), Returning(absl::InvalidArgumentError(std::string(100000, 'r'))));
  EXPECT_EQ(d.Dispatch(MessageOn("customer-events")), Verdict::Ack());
  std::vector<Envelope> dlq = fake.published("customer-events.dlq");
  ASSERT_THAT(dlq, SizeIs(1));
  std::optional<std::string_view> reason = FindHeader(dlq[0].headers, kDlqReasonHeader);
  ASSERT_TRUE(reason.has_value());
  EXPECT_LE(reason->size(), kMaxDeadLetterReasonBytes);
  EXPECT_THAT(std::string(*reason), HasSubstr("[truncated]"));
}

TEST(DeadLetterSubscription, HandsUndecodableDeadLettersOverAsTheyAreAndNeverDeadLettersThem) {
  BytesTransport transport;
  // What herald wrote to customer-events.dlq for an undecodable record.
  BytesRecord original;
  original.value = "not json";
  original.headers = {{"x-app", "kept"}, {"ce_subject", "s"}};
  Record dead = Dispatcher::MakeDeadLetter(original.View(), absl::InvalidArgumentError("undecodable record: x"));
  BytesRecord on_dlq{dead.key, dead.value, dead.headers};

  std::vector<DeadLetter> seen;
  Dispatcher d(transport, Options(), DeadLetterHandler([&](const DeadLetter& letter) {
                 seen.push_back(letter);
                 return absl::OkStatus();
               }));
  EXPECT_EQ(d.Dispatch(on_dlq.View("customer-events.dlq")), Verdict::Ack());
  EXPECT_THAT(transport.published, IsEmpty());  // no customer-events.dlq.dlq
  ASSERT_THAT(seen, SizeIs(1));
  const DeadLetter& letter = seen[0];
  EXPECT_EQ(letter.topic, "customer-events.dlq");
  EXPECT_EQ(letter.offset, 77);
  EXPECT_TRUE(letter.is_herald_dead_letter());
  EXPECT_EQ(letter.original_topic, "customer-events");
  EXPECT_EQ(letter.original_partition, 2);
  EXPECT_EQ(letter.original_offset, 77);
  EXPECT_EQ(letter.original_group, "reader");
  EXPECT_EQ(letter.reason, "undecodable record: x");
  EXPECT_EQ(letter.code, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(letter.attempts, 1);
  EXPECT_FALSE(letter.value_dropped);
  EXPECT_EQ(letter.record.value, "not json");
  EXPECT_EQ(letter.record.key, "cust-1");
  EXPECT_EQ(letter.OriginalHeaders(), original.headers);
  EXPECT_THAT(letter.Decode(), ::herald::testing::StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(d.stats().handled.load(), 1);
  EXPECT_EQ(d.stats().dead_lettered.load(), 0);
}

TEST(DeadLetterSubscription, DecodesTheOriginalWhereItDecodes) {
  BytesTransport transport;
  BytesRecord original = DecodableRecordWithEveryKindOfHeader();
  Record dead = Dispatcher::MakeDeadLetter(original.View(), absl::InvalidArgumentError("bad customer"));
  BytesRecord on_dlq{dead.key, dead.value, dead.headers};
  std::optional<DeadLetter> seen;
  Dispatcher d(transport, Options(), DeadLetterHandler([&](const DeadLetter& letter) {
                 seen = letter;
                 return absl::OkStatus();
               }));
  EXPECT_EQ(d.Dispatch(on_dlq.View("customer-events.dlq")), Verdict::Ack());
  ASSERT_TRUE(seen.has_value());
  absl::StatusOr<Envelope> e = seen->Decode();
  ASSERT_THAT(e, IsOk());
  EXPECT_EQ(e->topic, "customer-events");
  EXPECT_EQ(e->id, MessageOn("customer-events").envelope.id);
  EXPECT_EQ(FindHeader(e->headers, kDlqReasonHeader), std::nullopt);  // herald's headers are not the event's
  absl::StatusOr<CustomerEvent> typed = seen->As<CustomerEvent>();
  ASSERT_THAT(typed, IsOk());
  EXPECT_EQ(typed->customer_id, "cust-1");
}

TEST(DeadLetterSubscription, HandlerErrorsRetryAndNeverDeadLetter) {
  BytesTransport transport;
  BytesRecord r;
  r.value = "{";
  Dispatcher d(transport, Options({.max_attempts = 3, .max_backoff = absl::Seconds(9), .jitter = 0}),
               DeadLetterHandler([](const DeadLetter&) { return absl::InvalidArgumentError("cannot store it"); }));
  ReceivedRecord first = r.View("customer-events.dlq");
  EXPECT_EQ(d.Dispatch(first), Verdict::RetryAfter(absl::Seconds(9)));  // permanent: slowest pace
  Dispatcher retrying(transport, Options({.max_attempts = 3, .initial_backoff = absl::Seconds(1), .jitter = 0}),
                      DeadLetterHandler([](const DeadLetter&) -> absl::Status { throw std::runtime_error("x"); }));
  EXPECT_EQ(retrying.Dispatch(first).kind, Verdict::Kind::kRetry);
  Dispatcher unavailable(transport, Options({.max_attempts = 3, .initial_backoff = absl::Seconds(1), .jitter = 0}),
                         DeadLetterHandler([](const DeadLetter&) { return absl::UnavailableError("db down"); }));
  EXPECT_EQ(unavailable.Dispatch(first), Verdict::RetryAfter(absl::Seconds(1)));
  EXPECT_THAT(transport.published, IsEmpty());
}

TEST(DeadLetterSubscription, ThroughTheBusOnTheFakeTransport) {
  Bus bus(std::make_unique<FakeTransport>(FakeTransportOptions{.max_deliveries = 3}));
  FakeTransport& fake = bus.transport<FakeTransport>();
  ASSERT_THAT(
      bus.Subscribe<CustomerEvent>("reader", [](const CustomerEvent&) { return absl::InvalidArgumentError("bad"); }),
      IsOk());
  std::vector<DeadLetter> seen;
  ASSERT_THAT(bus.SubscribeDeadLetters({.group = "dlq-reader", .topics = {"customer-events.dlq"}},
                                       [&](const DeadLetter& d) {
                                         seen.push_back(d);
                                         // Fails for good: retried, never dead-lettered again.
                                         return absl::InvalidArgumentError("audit store refuses it");
                                       }),
              IsOk());
  EnvelopeOptions eo;
  eo.headers = {{"x-app", "kept"}};
  ASSERT_THAT(bus.Publish(CustomerEvent{CustomerEvent::Type::kUpdated, "c9"}, eo), IsOk());
  ASSERT_THAT(seen, SizeIs(3));  // FakeTransport gives up after max_deliveries
  EXPECT_EQ(seen[0].original_topic, "customer-events");
  EXPECT_EQ(seen[0].reason, "bad");
  EXPECT_EQ(seen[2].attempt, 3);
  absl::StatusOr<CustomerEvent> typed = seen[0].As<CustomerEvent>();
  ASSERT_THAT(typed, IsOk());
  EXPECT_EQ(typed->type, CustomerEvent::Type::kUpdated);
  EXPECT_EQ(typed->customer_id, "c9");
  EXPECT_EQ(FindHeader(seen[0].OriginalHeaders(), "x-app"), "kept");
  EXPECT_THAT(fake.published("customer-events.dlq.dlq"), IsEmpty());
  EXPECT_THAT(fake.published("customer-events.dlq"), SizeIs(1));
}

TEST(DeadLetterSubscription, RefusesMiddlewareAndTypeFilters) {
  Bus bus(std::make_unique<FakeTransport>());
  SubscribeOptions o{.group = "g", .topics = {"t.dlq"}};
  o.accepted_types = {"customer.created"};
  EXPECT_THAT(bus.SubscribeDeadLetters(o, [](const DeadLetter&) { return absl::OkStatus(); }),
              ::herald::testing::StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bus.SubscribeDeadLetters({.group = "g", .topics = {"t.dlq"}}, nullptr),
              ::herald::testing::StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace herald
