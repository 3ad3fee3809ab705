// quickstart: the seed's customer flow on herald's embedded defaults.
//
// A customer service publishes CustomerEvents on the in-process bus; the
// event reader's typed handlers receive them. One handler fails once with a
// retryable error (herald retries it with backoff) and a malformed event is
// dead-lettered to customer-events.dlq instead of being dropped.
//
// Run: make demo
#include <atomic>
#include <iostream>
#include <mutex>
#include <string>

#include "absl/time/clock.h"
#include "common/seed_events.h"
#include "herald/core/bus.h"
#include "herald/core/router.h"
#include "herald/core/status.h"
#include "herald/inmemory/inmemory_bus.h"

namespace {

std::mutex print_mu;
template <typename... Args>
void Say(const Args&... args) {
  std::lock_guard<std::mutex> lock(print_mu);
  (std::cout << ... << args) << std::endl;
}

const char* Name(seed::CustomerEvent::Type t) {
  switch (t) {
    case seed::CustomerEvent::Type::kCreated: return "created";
    case seed::CustomerEvent::Type::kUpdated: return "updated";
    case seed::CustomerEvent::Type::kDeleted: return "deleted";
  }
  return "?";
}

// The event reader's handler for customer events, as a small class.
class OnCustomerEvent : public herald::EventHandler<seed::CustomerEvent> {
 public:
  absl::Status Handle(const seed::CustomerEvent& e, const herald::Message& m) override {
    if (e.customer_id == "cust-2" && m.attempt == 1) {
      Say("  [event-reader] customer ", e.customer_id, ": database busy, asking for a retry (attempt ", m.attempt, ")");
      return absl::UnavailableError("customer table locked");
    }
    Say("  [event-reader] customer ", e.customer_id, " ", Name(e.type), " (", e.details, ") attempt ", m.attempt,
        ", partition ", m.partition, " offset ", m.offset);
    handled.fetch_add(1);
    return absl::OkStatus();
  }
  std::atomic<int> handled{0};
};

absl::Status Run() {
  herald::InMemoryBusOptions options;
  options.defaults.source = "customer-service";
  herald::InMemoryBus bus(options);

  // Handlers of the event reader, registered in one place.
  OnCustomerEvent on_customer;
  herald::SubscribeOptions policy;
  policy.retry.initial_backoff = absl::Milliseconds(50);
  herald::EventRouter reader(&bus, "event-reader", policy);
  HERALD_RETURN_IF_ERROR(reader.Handle<seed::CustomerEvent>(on_customer));
  std::atomic<int> products{0};
  HERALD_RETURN_IF_ERROR(reader.Handle<seed::ProductEvent>([&](const seed::ProductEvent& e) {
    Say("  [event-reader] product ", e.product_id, " (", e.details, ")");
    products.fetch_add(1);
    return absl::OkStatus();
  }));
  HERALD_RETURN_IF_ERROR(reader.Subscribe());

  // Whatever cannot be handled ends here, with the reason in its headers.
  std::atomic<int> dead{0};
  HERALD_RETURN_IF_ERROR(bus.Subscribe({.group = "dlq-watch", .topics = {"customer-events.dlq"}},
                                       [&](const herald::Message& m) {
                                         Say("  [dlq] ", m.envelope.type, " ", m.envelope.id, ": ",
                                             herald::FindHeader(m.envelope.headers, herald::kDlqReasonHeader)
                                                 .value_or("?"));
                                         dead.fetch_add(1);
                                         return absl::OkStatus();
                                       }));
  HERALD_RETURN_IF_ERROR(bus.Start());

  Say("customer-service publishes:");
  for (const seed::CustomerEvent& e :
       {seed::CustomerCreated("cust-1", "Ada Lovelace"), seed::CustomerCreated("cust-2", "Grace Hopper"),
        seed::CustomerUpdated("cust-1", "Ada King, Countess of Lovelace"), seed::CustomerDeleted("cust-2")}) {
    HERALD_ASSIGN_OR_RETURN(herald::DeliveryReport r, bus.Publish(e));
    Say("  [customer-service] ", herald::EventTraits<seed::CustomerEvent>::TypeName(e), " ", e.customer_id,
        " -> ", r.topic, "/", r.partition, "@", r.offset);
  }
  HERALD_RETURN_IF_ERROR(bus.Publish(seed::ProductEvent{seed::ProductEvent::Type::kCreated, "prod-7", "Lamp"}).status());
  // A raw publish with a payload that does not match CustomerEvent.
  HERALD_RETURN_IF_ERROR(bus.PublishRaw("customer-events", "customer.created", R"({"customer_id": 42})", "cust-x").status());

  for (int i = 0; i < 500 && (on_customer.handled.load() < 4 || products.load() < 1 || dead.load() < 1); ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  HERALD_RETURN_IF_ERROR(bus.Stop(absl::Seconds(5)));

  Say("summary:");
  for (const auto& s : bus.Stats()) {
    Say("  group ", s.group, " on ", s.topics.front(), ": handled ", s.handled, ", retried ", s.retried,
        ", dead-lettered ", s.dead_lettered);
  }
  if (on_customer.handled.load() != 4 || products.load() != 1 || dead.load() != 1) {
    return absl::InternalError("quickstart: not every event arrived as expected");
  }
  return absl::OkStatus();
}

}  // namespace

int main() {
  absl::Status status = Run();
  if (!status.ok()) {
    std::cerr << "quickstart failed: " << status << std::endl;
    return 1;
  }
  std::cout << "quickstart: OK" << std::endl;
  return 0;
}
