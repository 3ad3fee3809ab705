#include "herald/core/router.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/recording_handler.h"
#include "herald/testing/sample_events.h"
#include "herald/testing/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::CustomerEvent;
using ::herald::testing::FakeTransport;
using ::herald::testing::IsOk;
using ::herald::testing::RecordingHandler;
using ::herald::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::SizeIs;

struct EmailChanged {
  std::string customer_id;
  std::string email;
  static constexpr std::string_view kType = "customer.email_changed";
  static constexpr std::string_view kTopic = "customer-events";
  std::string_view key() const { return customer_id; }
  static constexpr auto JsonFields() {
    return json::Fields(json::Field("customer_id", &EmailChanged::customer_id), json::Field("email", &EmailChanged::email));
  }
};

struct InvoiceSent {
  std::string invoice_id;
  static constexpr std::string_view kType = "invoice.sent";
  static constexpr std::string_view kTopic = "billing-events";
  static constexpr auto JsonFields() { return json::Fields(json::Field("invoice_id", &InvoiceSent::invoice_id)); }
};

TEST(EventRouter, DispatchesEachTypeToItsHandlerAcrossTopics) {
  Bus bus(std::make_unique<FakeTransport>());
  RecordingHandler<CustomerEvent> customers;
  RecordingHandler<EmailChanged> emails;
  RecordingHandler<InvoiceSent> invoices;
  EventRouter router(bus, "reader");
  ASSERT_THAT(router.Handle<CustomerEvent>(customers), IsOk());
  ASSERT_THAT(router.Handle<EmailChanged>(emails), IsOk());
  ASSERT_THAT(router.Handle<InvoiceSent>(invoices), IsOk());
  ASSERT_THAT(router.Subscribe(), IsOk());

  ASSERT_THAT(bus.Publish(CustomerEvent{CustomerEvent::Type::kUpdated, "c1", CustomerEvent::Details{{"note", "Ada"}}}),
              IsOk());
  ASSERT_THAT(bus.Publish(EmailChanged{"c1", "ada@example.com"}), IsOk());
  ASSERT_THAT(bus.Publish(InvoiceSent{"i-9"}), IsOk());
  ASSERT_THAT(customers.events(), SizeIs(1));
  EXPECT_EQ(customers.events()[0].type, CustomerEvent::Type::kUpdated);
  ASSERT_THAT(emails.events(), SizeIs(1));
  EXPECT_EQ(emails.events()[0].email, "ada@example.com");
  ASSERT_THAT(invoices.events(), SizeIs(1));
  EXPECT_THAT(bus.Stats(), SizeIs(2)) << "one subscription per topic";
}

TEST(EventRouter, DeadLettersTypesWithoutAHandler) {
  Bus bus(std::make_unique<FakeTransport>());
  FakeTransport& fake = bus.transport<FakeTransport>();
  RecordingHandler<CustomerEvent> customers;
  EventRouter router(bus, "reader");
  ASSERT_THAT(router.Handle<CustomerEvent>(customers), IsOk());
  ASSERT_THAT(router.Subscribe(), IsOk());
  ASSERT_THAT(bus.PublishRaw("customer-events", "customer.merged", "{}", "c1"), IsOk());
  EXPECT_EQ(customers.count(), 0);
  std::vector<Envelope> dead = fake.published("customer-events.dlq");
  ASSERT_THAT(dead, SizeIs(1));
  EXPECT_THAT(std::string(*FindHeader(dead[0].headers, kDlqReasonHeader)), HasSubstr("customer.merged"));
}

TEST(EventRouter, RegistrationErrorsAreClear) {
  Bus bus(std::make_unique<FakeTransport>());
  RecordingHandler<CustomerEvent> customers;

  EventRouter no_group(bus, "");
  EXPECT_THAT(no_group.Handle<CustomerEvent>(customers), StatusIs(absl::StatusCode::kInvalidArgument));

  EventRouter router(bus, "reader");
  ASSERT_THAT(router.Handle<CustomerEvent>(customers), IsOk());
  EXPECT_THAT(router.Handle<CustomerEvent>(customers),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("customer.created")));
  EXPECT_THAT(router.HandleRaw("customer-events", "customer.merged", [](const Message&) { return absl::OkStatus(); }),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("unknown event type")));
  EXPECT_THAT(router.HandleRaw("customer-events", "customer.created", nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(router.HandleRaw("customer-events", "customer.created", [](const Message&) { return absl::OkStatus(); }),
              StatusIs(absl::StatusCode::kAlreadyExists));
  ASSERT_THAT(router.Subscribe(), IsOk());
  EXPECT_THAT(router.Handle<EmailChanged>(RecordingHandler<EmailChanged>()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("before Subscribe")));

  EventRouter empty(bus, "reader");
  EXPECT_THAT(empty.Subscribe(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no handlers")));
}

TEST(EventRouter, RawHandlersServeRegisteredTypes) {
  Bus bus(std::make_unique<FakeTransport>());
  EventRouter router(bus, "reader");
  ASSERT_THAT(router.registry().Register<EmailChanged>(), IsOk());
  int calls = 0;
  ASSERT_THAT(router.HandleRaw("customer-events", "customer.email_changed",
                               [&](const Message& m) {
                                 ++calls;
                                 EXPECT_EQ(m.envelope.type, "customer.email_changed");
                                 return absl::OkStatus();
                               }),
              IsOk());
  ASSERT_THAT(router.Subscribe(), IsOk());
  ASSERT_THAT(bus.Publish(EmailChanged{"c1", "x@example.com"}), IsOk());
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace herald
