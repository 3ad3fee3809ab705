// The code examples of the public headers of core, testing and inmemory,
// compiled and run. scripts/check-header-examples.py (ctest
// header_examples_check) fails when a header's example is not found here (or
// in another test) line for line, so an example cannot drift from the API.
// Each example is copied verbatim; the code around it gives it its context.
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/core/config.h"
#include "herald/core/delivery_policy.h"
#include "herald/core/envelope.h"
#include "herald/core/event.h"
#include "herald/core/inbox.h"
#include "herald/core/json.h"
#include "herald/core/message.h"
#include "herald/core/mutex.h"
#include "herald/core/outbox.h"
#include "herald/core/relay.h"
#include "herald/core/router.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/core/transport.h"
#include "herald/core/type_registry.h"
#include "herald/core/typed_handler.h"
#include "herald/core/uuid.h"
#include "herald/inmemory/inmemory_broker.h"
#include "herald/inmemory/inmemory_transport.h"
#include "herald/testing/drain.h"
#include "herald/testing/event_matchers.h"
#include "herald/testing/eventually.h"
#include "herald/testing/fake_clock.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/in_memory_outbox_store.h"
#include "herald/testing/mocks.h"
#include "herald/testing/recording_handler.h"
#include "herald/testing/status_matchers.h"

namespace snippets {

// ---- herald/core/event.h ----------------------------------------------------

// One struct per event type (recommended):
struct OrderPlaced {
  std::string order_id;
  int64_t amount_cents = 0;
  static constexpr std::string_view kType = "order.placed";
  static constexpr std::string_view kTopic = "order-events";
  static constexpr int kSchemaVersion = 2;           // optional, default 1
  std::string_view key() const { return order_id; }  // optional, default ""
  static constexpr auto JsonFields() {
    return herald::json::Fields(herald::json::Field("order_id", &OrderPlaced::order_id),
                                herald::json::Field("amount_cents", &OrderPlaced::amount_cents));
  }
};

// One struct carrying several type names, chosen by a typed enum held in
// a member called `type` (the enum is not part of the payload JSON):
struct CustomerEvent {
  enum class Type { kCreated, kUpdated, kDeleted };
  Type type = Type::kCreated;
  std::string customer_id;
  std::string details;
  static constexpr herald::TypeNames<Type, 3> kTypes{{{Type::kCreated, "customer.created"},
                                                      {Type::kUpdated, "customer.updated"},
                                                      {Type::kDeleted, "customer.deleted"}}};
  static constexpr std::string_view kTopic = "customer-events";
  std::string_view key() const { return customer_id; }
  static constexpr auto JsonFields() {
    return herald::json::Fields(herald::json::Field("customer_id", &CustomerEvent::customer_id),
                                herald::json::Field("details", &CustomerEvent::details));
  }
};

struct ProductEvent {
  std::string product_id;
  static constexpr std::string_view kType = "product.created";
  static constexpr std::string_view kTopic = "product-events";
  static constexpr auto JsonFields() {
    return herald::json::Fields(herald::json::Field("product_id", &ProductEvent::product_id));
  }
};

absl::Status Project(const CustomerEvent& e) {
  return e.customer_id.empty() ? absl::InvalidArgumentError("no customer id") : absl::OkStatus();
}
absl::Status Restock(const ProductEvent&) { return absl::OkStatus(); }

// ---- herald/core/json.h -----------------------------------------------------

struct Address {
  std::string city;
  std::optional<std::string> zip;
  static constexpr auto JsonFields() {
    return herald::json::Fields(herald::json::Field("city", &Address::city), herald::json::Field("zip", &Address::zip));
  }
};

enum class Color { kRed, kGreen };
constexpr auto JsonEnumNames(Color) {
  return std::array{std::pair{Color::kRed, std::string_view("red")},
                    std::pair{Color::kGreen, std::string_view("green")}};
}
struct Paint {
  Color color = Color::kRed;
  static constexpr auto JsonFields() { return herald::json::Fields(herald::json::Field("color", &Paint::color)); }
};

// ---- herald/core/message.h --------------------------------------------------

class OnCustomerCreated : public herald::EventHandler<CustomerEvent> {
 public:
  absl::Status Handle(const CustomerEvent& e, const herald::Message& m) override;
};
absl::Status OnCustomerCreated::Handle(const CustomerEvent& e, const herald::Message& m) {
  return m.envelope.type == "customer.created" ? Project(e) : absl::OkStatus();
}

// ---- herald/core/mutex.h ----------------------------------------------------

class Counter {
 public:
  void Add() {
    herald::MutexLock lock(mu_);
    ++count_;
  }

 private:
  herald::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
};

class Ready {
 public:
  void Set() {
    herald::MutexLock lock(mu_);
    ready_ = true;
    cv_.NotifyAll();
  }
  void Await() {
    herald::MutexLock lock(mu_);
    cv_.Wait(mu_, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return ready_; });
  }

 private:
  herald::Mutex mu_;
  herald::CondVar cv_;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
};

// ---- herald/core/status.h ---------------------------------------------------

struct Row {
  int id = 0;
};
absl::Status Use(const Row& row) { return row.id > 0 ? absl::OkStatus() : absl::NotFoundError("no row"); }

absl::StatusOr<Row> LoadRow(int id);
absl::Status Work() {
  HERALD_ASSIGN_OR_RETURN(Row row, LoadRow(7));
  HERALD_RETURN_IF_ERROR(Use(row));
  return absl::OkStatus();
}
absl::StatusOr<Row> LoadRow(int id) { return Row{id}; }

// ---- herald/core/strings.h --------------------------------------------------

absl::Status CheckType(std::string_view type) {
  if (!type.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(herald::StrCat("bad type \"", type, "\""));
}

// ---- herald/core/bus.h ------------------------------------------------------

absl::Status BusExample() {
  herald::Bus bus(std::make_unique<herald::inmemory::InMemoryTransport>());
  HERALD_RETURN_IF_ERROR(
      bus.Subscribe<CustomerEvent>("event-reader", [](const CustomerEvent& e) -> absl::Status { return Project(e); }));
  HERALD_RETURN_IF_ERROR(bus.Start());
  absl::StatusOr<herald::DeliveryReport> r = bus.Publish(CustomerEvent{.customer_id = "cust-42"});
  HERALD_RETURN_IF_ERROR(r.status());
  HERALD_RETURN_IF_ERROR(bus.Stop(absl::Seconds(5)));
  return absl::OkStatus();
}

// ---- herald/core/transport.h ------------------------------------------------

absl::Status TransportExample(std::function<absl::Status(const CustomerEvent&)> handler) {
  herald::Bus bus(std::make_unique<herald::inmemory::InMemoryTransport>());
  HERALD_RETURN_IF_ERROR(bus.Subscribe<CustomerEvent>("event-reader", handler));
  return bus.Stop(absl::Seconds(5));
}

// ---- herald/core/config.h ---------------------------------------------------

absl::StatusOr<std::string> ConfigExample() {
  HERALD_ASSIGN_OR_RETURN(herald::ServiceConfig config, herald::ServiceConfig::FromEnv());
  // HERALD_SERVICE_NAME=customer-service
  // HERALD_WRITE_TOPIC=customer-events
  // HERALD_READ_TOPICS=customer-events,product-events
  // HERALD_CONSUMER_GROUP=event-reader   (default: the service name)
  return config.write_topic;
}

// ---- herald/core/inbox.h ----------------------------------------------------

struct WelcomeMailer {
  herald::Inbox& inbox;
  int mails = 0;
  absl::Status SendWelcome(herald::Transaction&, const CustomerEvent&) {
    ++mails;
    return absl::OkStatus();
  }

  absl::Status Handle(const CustomerEvent& e, const herald::Message& m) {
    HERALD_ASSIGN_OR_RETURN(auto tx, inbox.Begin());
    HERALD_ASSIGN_OR_RETURN(bool first, inbox.MarkProcessed(*tx, "event-reader", m.envelope.id));
    if (!first) return absl::OkStatus();          // seen before: do nothing
    HERALD_RETURN_IF_ERROR(SendWelcome(*tx, e));  // its own writes, same transaction
    return tx->Commit();
  }
};

// ---- herald/core/outbox.h and relay.h ---------------------------------------

absl::Status OutboxExample(herald::OutboxStore& store) {
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::Transaction> tx, store.Begin());
  // business rows: through the plugin's native handle (see the plugin)
  HERALD_RETURN_IF_ERROR(store.Append(*tx, CustomerEvent{.customer_id = "cust-42"}));
  HERALD_RETURN_IF_ERROR(tx->Commit());  // destructor rolls back otherwise
  return absl::OkStatus();
}

absl::Status RelayExample(herald::OutboxStore& store, herald::Bus& bus) {
  // Here the service runs until everything is relayed.
  auto WaitForShutdownSignal = [&store] {
    EXPECT_TRUE(herald::testing::Eventually([&] {
      absl::StatusOr<herald::OutboxStats> stats = store.Stats();
      return stats.ok() && stats->pending == 0;
    }));
  };
  herald::OutboxRelay relay(store, bus, {.batch_size = 500});
  HERALD_RETURN_IF_ERROR(relay.Start());  // background thread
  WaitForShutdownSignal();                // the service runs
  relay.Stop();                           // finishes the batch in flight
  return absl::OkStatus();
}

// ---- herald/core/delivery_policy.h -----------------------------------------

absl::Status DeadLetterExample(herald::Bus& bus) {
  HERALD_RETURN_IF_ERROR(bus.SubscribeDeadLetters(
      {.group = "dlq-audit", .topics = {"order-events.dlq"}}, [](const herald::DeadLetter& d) -> absl::Status {
        absl::StatusOr<OrderPlaced> order = d.As<OrderPlaced>();  // when it decodes
        std::cerr << d.original_topic << "@" << d.original_offset << ": " << d.reason
                  << (order.ok() ? " (order " + order->order_id + ")" : "") << "\n";
        return absl::OkStatus();
      }));
  return absl::OkStatus();
}

// ---- herald/core/router.h ---------------------------------------------------

struct Repo {
  int projected = 0;
};
struct OnCustomerEvent {
  Repo& repo;
  absl::Status operator()(const CustomerEvent& e) {
    ++repo.projected;
    return Project(e);
  }
};

absl::Status RouterExample(herald::Bus& bus, Repo& repo) {
  herald::EventRouter router(bus, "event-reader");
  HERALD_RETURN_IF_ERROR(router.Handle<CustomerEvent>(OnCustomerEvent{repo}));
  HERALD_RETURN_IF_ERROR(router.Handle<ProductEvent>([](const ProductEvent& e) { return Restock(e); }));
  HERALD_RETURN_IF_ERROR(router.Subscribe());
  HERALD_RETURN_IF_ERROR(bus.Publish(CustomerEvent{.customer_id = "cust-1"}).status());
  // The router must outlive the bus's subscriptions: stop the bus first.
  return bus.Stop(absl::Seconds(5));
}

// ---- herald/core/type_registry.h --------------------------------------------

absl::StatusOr<OrderPlaced> RegistryExample(const herald::Envelope& envelope) {
  herald::TypeRegistry registry;
  HERALD_RETURN_IF_ERROR(registry.Register<OrderPlaced>());  // version 2
  HERALD_RETURN_IF_ERROR(registry.AddUpcaster("order.placed", 1, [](rapidjson::Document& payload) -> absl::Status {
    // v1 had "amount" in whole units; v2 has "amount_cents".
    if (!payload.IsObject() || !payload.HasMember("amount") || !payload["amount"].IsInt64()) {
      return absl::InvalidArgumentError("v1 order.placed without an integer \"amount\"");
    }
    int64_t cents = payload["amount"].GetInt64() * 100;
    payload.RemoveMember("amount");
    payload.AddMember("amount_cents", cents, payload.GetAllocator());
    return absl::OkStatus();
  }));
  absl::StatusOr<OrderPlaced> e = registry.Decode<OrderPlaced>(envelope);
  return e;
}

// ---- herald/inmemory/inmemory_broker.h and inmemory_transport.h -------------

absl::Status SharedBrokerExample() {
  absl::StatusOr<std::shared_ptr<herald::inmemory::InMemoryBroker>> broker =
      herald::inmemory::InMemoryBroker::Create({.partitions = 8});
  if (!broker.ok()) return broker.status();
  herald::Bus a(std::make_unique<herald::inmemory::InMemoryTransport>(
      herald::inmemory::InMemoryTransportOptions{.broker = *broker}));
  herald::Bus b(std::make_unique<herald::inmemory::InMemoryTransport>(
      herald::inmemory::InMemoryTransportOptions{.broker = *broker}));
  herald::testing::RecordingHandler<OrderPlaced> seen;
  HERALD_RETURN_IF_ERROR(b.Subscribe<OrderPlaced>("billing", seen));
  HERALD_RETURN_IF_ERROR(b.Start());
  HERALD_RETURN_IF_ERROR(a.Publish(OrderPlaced{"o-1", 4200}).status());
  if (!seen.WaitForCount(1, absl::Seconds(10))) return absl::DeadlineExceededError("not delivered through the broker");
  return b.Stop(absl::Seconds(5));
}

absl::Status InMemoryExample(std::function<absl::Status(const OrderPlaced&)> handler) {
  herald::Bus bus(std::make_unique<herald::inmemory::InMemoryTransport>());
  HERALD_RETURN_IF_ERROR(bus.Subscribe<OrderPlaced>("billing", handler));
  HERALD_RETURN_IF_ERROR(bus.Start());
  HERALD_RETURN_IF_ERROR(bus.Publish(OrderPlaced{"o-1", 4200}).status());
  HERALD_RETURN_IF_ERROR(bus.transport<herald::inmemory::InMemoryTransport>().Drain(absl::Seconds(5)));
  HERALD_RETURN_IF_ERROR(bus.Stop(absl::Seconds(5)));
  return absl::OkStatus();
}

absl::StatusOr<int> ParseCount(std::string_view text) {
  int n = 0;
  if (!absl::SimpleAtoi(herald::ToAbsl(text), &n)) return absl::InvalidArgumentError("not a count");
  return n;
}

namespace {

using ::herald::testing::Eventually;
using ::herald::testing::HasHeader;
using ::herald::testing::HasKey;
using ::herald::testing::HasType;
using ::herald::testing::IsOk;
using ::herald::testing::IsOkAndHolds;
using ::herald::testing::StatusIs;
using ::testing::_;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace testing = ::testing;

TEST(CoreHeaderExamples, EventJsonEnvelopeAndUuid) {
  herald::testing::FakeClock clock;
  std::string id = herald::NewUuidV7(clock.Now());
  // "0190a6f2-3c1e-7b3a-9f4e-2b8c1d0e5a77"
  EXPECT_EQ(id.size(), 36u);

  herald::Envelope e;
  e.id = herald::NewUuidV7(absl::Now());
  e.type = "customer.created";
  e.topic = "customer-events";
  e.key = "cust-42";  // decides the partition and the ordering
  e.payload = R"({"customer_id":"cust-42","details":"..."})";
  herald::SetHeader(e.headers, "correlation-id", "req-7");
  e.subject = "cust-42";  // CloudEvents attributes, kept on the wire
  e.extensions = {{"region", "eu-1"}};
  EXPECT_THAT(herald::DecodeEvent<CustomerEvent>(e), IsOk());

  std::string text = herald::json::Encode(Address{"Oslo", std::nullopt});
  absl::StatusOr<Address> a = herald::json::Decode<Address>(text);
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->city, "Oslo");
  EXPECT_EQ(herald::json::Encode(Paint{Color::kGreen}), R"({"color":"green"})");

  herald::RetryPolicy retry{.max_attempts = 8, .initial_backoff = absl::Milliseconds(50)};
  absl::Duration wait = retry.Backoff(/*next_attempt=*/2);
  EXPECT_GT(wait, absl::ZeroDuration());
  EXPECT_THAT(CheckType(""), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad type")));
  EXPECT_THAT(Work(), IsOk());
  Counter counter;
  counter.Add();
  Ready ready;
  ready.Set();
  ready.Await();
}

TEST(CoreHeaderExamples, BusTransportConfigRouterAndRegistry) {
  EXPECT_THAT(BusExample(), IsOk());
  EXPECT_THAT(TransportExample([](const CustomerEvent& e) { return Project(e); }), IsOk());
  setenv("HERALD_SERVICE_NAME", "customer-service", 1);
  setenv("HERALD_WRITE_TOPIC", "customer-events", 1);
  setenv("HERALD_READ_TOPICS", "customer-events,product-events", 1);
  EXPECT_THAT(ConfigExample(), IsOkAndHolds("customer-events"));

  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  Repo repo;
  ASSERT_THAT(RouterExample(bus, repo), IsOk());
  EXPECT_EQ(repo.projected, 1);

  herald::Envelope v1;
  v1.id = "1";
  v1.type = "order.placed";
  v1.schema_version = 1;
  v1.payload = R"({"order_id":"o-1","amount":42})";
  absl::StatusOr<OrderPlaced> upcast = RegistryExample(v1);
  ASSERT_THAT(upcast, IsOk());
  EXPECT_EQ(upcast->amount_cents, 4200);

  herald::Handler h =
      herald::TypedHandler<CustomerEvent>([](const CustomerEvent& e) -> absl::Status { return Project(e); });
  herald::Message m;
  m.envelope = herald::MakeEnvelope(CustomerEvent{.customer_id = "cust-9"});
  EXPECT_THAT(h(m), IsOk());
  OnCustomerCreated on_created;
  EXPECT_THAT(on_created.Handle(CustomerEvent{.customer_id = "cust-9"}, m), IsOk());
}

TEST(CoreHeaderExamples, OutboxInboxRelayAndDrain) {
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  herald::testing::FakeClock clock;
  herald::testing::InMemoryOutboxStore store(clock);
  {
    auto tx = store.Begin().value();
    ASSERT_THAT(store.Append(*tx, CustomerEvent{.customer_id = "cust-1"}), IsOk());
    // destroyed without Commit: rolled back, nothing was written
  }
  auto tx = store.Begin().value();
  ASSERT_THAT(store.Append(*tx, CustomerEvent{.customer_id = "cust-1"}), IsOk());
  ASSERT_THAT(tx->Commit(), IsOk());
  EXPECT_THAT(herald::testing::DrainOutbox(store, bus), IsOkAndHolds(1));

  EXPECT_THAT(OutboxExample(store), IsOk());
  EXPECT_THAT(RelayExample(store, bus), IsOk());

  WelcomeMailer mailer{store};
  herald::Message m;
  m.envelope = herald::MakeEnvelope(CustomerEvent{.customer_id = "cust-1"});
  EXPECT_THAT(mailer.Handle(CustomerEvent{.customer_id = "cust-1"}, m), IsOk());
  EXPECT_THAT(mailer.Handle(CustomerEvent{.customer_id = "cust-1"}, m), IsOk());
  EXPECT_EQ(mailer.mails, 1) << "the inbox drops the redelivery";
}

TEST(CoreHeaderExamples, DeadLetters) {
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  herald::testing::FakeTransport& fake = bus.transport<herald::testing::FakeTransport>();
  ASSERT_THAT(bus.Subscribe<OrderPlaced>("billing",
                                         [](const OrderPlaced&) { return absl::InvalidArgumentError("no such card"); }),
              IsOk());
  ASSERT_THAT(DeadLetterExample(bus), IsOk());
  ASSERT_THAT(bus.Publish(OrderPlaced{"o-1", 4200}), IsOk());
  EXPECT_EQ(fake.published("order-events.dlq").size(), 1u);
  EXPECT_TRUE(fake.published("order-events.dlq.dlq").empty()) << "a dead letter is never dead-lettered again";
}

TEST(TestingHeaderExamples, DrainOutbox) {
  herald::testing::InMemoryOutboxStore store;
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  auto tx = store.Begin().value();
  ASSERT_THAT(store.Append(*tx, CustomerEvent{.customer_id = "cust-1"}), IsOk());
  ASSERT_THAT(store.Append(*tx, CustomerEvent{.customer_id = "cust-2"}), IsOk());
  ASSERT_THAT(tx->Commit(), IsOk());
  EXPECT_THAT(herald::testing::DrainOutbox(store, bus), IsOkAndHolds(2));
  EXPECT_EQ(bus.transport<herald::testing::FakeTransport>().published("customer-events").size(), 2);
}

TEST(TestingHeaderExamples, FakeTransportRecordingHandlerAndMatchers) {
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  herald::testing::FakeTransport& fake = bus.transport<herald::testing::FakeTransport>();
  herald::testing::RecordingHandler<CustomerEvent> seen;
  ASSERT_THAT(bus.Subscribe<CustomerEvent>("event-reader", seen), IsOk());
  ASSERT_THAT(bus.Publish(CustomerEvent{.customer_id = "cust-1"}), IsOk());  // handled already
  EXPECT_EQ(seen.count(), 1);
  EXPECT_THAT(fake.published("customer-events"), ElementsAre(HasType("customer.created")));
  EXPECT_THAT(seen.messages(), Each(HasType(testing::StartsWith("customer."))));
}

TEST(TestingHeaderExamples, EventMatchers) {
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  herald::testing::FakeTransport& fake = bus.transport<herald::testing::FakeTransport>();
  herald::testing::RecordingHandler<CustomerEvent> seen;
  ASSERT_THAT(bus.Subscribe<CustomerEvent>("event-reader", seen), IsOk());
  herald::EnvelopeOptions traced{.headers = {{"correlation-id", "req-1"}}};
  ASSERT_THAT(bus.Publish(CustomerEvent{CustomerEvent::Type::kCreated, "cust-1", ""}, traced), IsOk());
  seen.FailNext(1, absl::InvalidArgumentError("bad"));  // a permanent error: dead-lettered
  ASSERT_THAT(bus.Publish(CustomerEvent{CustomerEvent::Type::kUpdated, "cust-1", ""}, traced), IsOk());
  EXPECT_THAT(fake.published("customer-events"), ElementsAre(HasType("customer.created"), HasType("customer.updated")));
  EXPECT_THAT(fake.published("customer-events.dlq"),
              Contains(AllOf(HasKey("cust-1"), HasHeader("herald-dlq-code", "INVALID_ARGUMENT"))));
  EXPECT_THAT(seen.messages(), Each(HasHeader("correlation-id", HasSubstr("req-"))));
}

TEST(TestingHeaderExamples, RecordingHandlerEventuallyAndFakeClock) {
  // The fake delivers on the publishing thread, in publish order.
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  ASSERT_THAT(bus.Start(), IsOk());
  herald::testing::RecordingHandler<CustomerEvent> seen;
  ASSERT_THAT(bus.Subscribe<CustomerEvent>("event-reader", seen), IsOk());
  for (const char* id : {"cust-1", "cust-2", "cust-3"}) {
    ASSERT_THAT(bus.Publish(CustomerEvent{.customer_id = id}), IsOk());
  }
  ASSERT_TRUE(seen.WaitForCount(3, absl::Seconds(10)));
  EXPECT_EQ(seen.events()[0].customer_id, "cust-1");
  seen.FailNext(2, absl::UnavailableError("db down"));  // then succeed
  ASSERT_THAT(bus.Stop(absl::Seconds(5)), IsOk());

  herald::Bus fake_bus(std::make_unique<herald::testing::FakeTransport>());
  herald::testing::FakeTransport& fake = fake_bus.transport<herald::testing::FakeTransport>();
  for (int i = 0; i < 3; ++i) ASSERT_THAT(fake_bus.Publish(CustomerEvent{.customer_id = "c"}), IsOk());
  ASSERT_TRUE(herald::testing::Eventually([&] { return fake.published().size() == 3; }));
  herald::testing::InMemoryOutboxStore store;
  herald::OutboxRelay relay(store, fake_bus);
  ASSERT_THAT(relay.Start(), IsOk());
  EXPECT_TRUE(herald::testing::Eventually([&] { return relay.Stats().leader; }, absl::Seconds(30)));
  relay.Stop();
  EXPECT_TRUE(Eventually([&] { return !relay.Stats().leader; }, absl::Seconds(30)))
      << "the relay never noticed the outage";

  CustomerEvent event{.customer_id = "cust-1"};
  herald::testing::FakeClock clock;  // 2026-01-01T00:00:00Z
  herald::Envelope e = herald::MakeEnvelope(event, {.clock = &clock});
  EXPECT_EQ(e.time, clock.Now());
  clock.Advance(absl::Minutes(5));
  EXPECT_EQ(clock.Now() - e.time, absl::Minutes(5));
}

TEST(TestingHeaderExamples, FakeClusterKeepsCommittedOffsets) {
  herald::testing::RecordingHandler<CustomerEvent> seen;
  auto cluster = std::make_shared<herald::testing::FakeCluster>();
  herald::Bus producer(
      std::make_unique<herald::testing::FakeTransport>(herald::testing::FakeTransportOptions{.cluster = cluster}));
  auto consumer = std::make_unique<herald::Bus>(
      std::make_unique<herald::testing::FakeTransport>(herald::testing::FakeTransportOptions{.cluster = cluster}));
  ASSERT_THAT(consumer->Subscribe<CustomerEvent>("event-reader", seen), IsOk());
  ASSERT_THAT(consumer->Stop(absl::Seconds(1)), IsOk());                          // leaves the group
  ASSERT_THAT(producer.Publish(CustomerEvent{.customer_id = "cust-1"}), IsOk());  // retained
  herald::Bus restarted(
      std::make_unique<herald::testing::FakeTransport>(herald::testing::FakeTransportOptions{.cluster = cluster}));
  ASSERT_THAT(restarted.Subscribe<CustomerEvent>("event-reader", seen), IsOk());
  EXPECT_EQ(seen.count(), 1);  // delivered inside Subscribe
}

TEST(TestingHeaderExamples, MockTransport) {
  auto mock = std::make_unique<herald::testing::MockTransport>();
  EXPECT_CALL(*mock, Publish(HasType("customer.created"), _))
      .WillOnce([](herald::Envelope, herald::PublishCallback done) {
        done(herald::DeliveryReport{"customer-events", 0, 7});
      });
  herald::Bus bus(std::move(mock));
  EXPECT_THAT(bus.Publish(CustomerEvent{.customer_id = "cust-1"}), IsOk());
}

TEST(TestingHeaderExamples, StatusMatchers) {
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  herald::testing::InMemoryOutboxStore store;
  herald::TypeRegistry registry;
  ASSERT_THAT(registry.Register<OrderPlaced>(), IsOk());
  using Order = OrderPlaced;
  herald::Envelope env = herald::MakeEnvelope(OrderPlaced{"o-1", 1});
  env.payload = R"({"order_id":"o-1","amount_cents":"many"})";
  herald::Envelope e = herald::MakeEnvelope(OrderPlaced{"o-1", 1});
  auto tx = store.Begin().value();
  ASSERT_THAT(tx->Commit(), IsOk());
  EXPECT_THAT(bus.Start(), herald::testing::IsOk());
  EXPECT_THAT(store.Append(*tx, e), herald::testing::StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(registry.Decode<Order>(env),
              herald::testing::StatusIs(absl::StatusCode::kInvalidArgument, testing::HasSubstr("amount")));
  EXPECT_THAT(ParseCount("7"), herald::testing::IsOkAndHolds(7));
  HERALD_ASSERT_OK_AND_ASSIGN(auto next, store.Begin());  // then *next, next->Commit()
  EXPECT_THAT(next->Commit(), IsOk());
}

TEST(InMemoryHeaderExamples, SharedBrokerAndDrain) {
  EXPECT_THAT(SharedBrokerExample(), IsOk());
  int handled = 0;
  EXPECT_THAT(InMemoryExample([&](const OrderPlaced&) {
                ++handled;
                return absl::OkStatus();
              }),
              IsOk());
  EXPECT_EQ(handled, 1) << "Drain returns once the handler has run";
}

TEST(InMemoryHeaderExamples, DeterministicMode) {
  herald::Bus bus(std::make_unique<herald::inmemory::InMemoryTransport>(
      herald::inmemory::InMemoryTransportOptions{.deterministic = true}));
  herald::testing::RecordingHandler<OrderPlaced> seen;
  ASSERT_THAT(bus.Subscribe<OrderPlaced>("billing", seen), IsOk());
  ASSERT_THAT(bus.Start(), IsOk());
  ASSERT_THAT(bus.Publish(OrderPlaced{"o-1", 4200}), IsOk());
  EXPECT_EQ(bus.transport<herald::inmemory::InMemoryTransport>().RunPending(), 1);
  EXPECT_EQ(seen.count(), 1);
}

}  // namespace
}  // namespace snippets
