// herald/testing/sample_events.h: a sample event for tests.
//
// `CustomerEvent` has the seed services' shape: one struct carrying three type
// names (customer.created / .updated / .deleted) chosen by a typed enum, on
// the topic customer-events, keyed by the customer id. Its payload is what
// Go's json.Marshal writes for the seed's CustomerEventPayload (CustomerID
// string tagged "customer_id", Details map[string]string tagged "details";
// a nil map is null, so `details` is optional). herald's own tests use it;
// so can yours, when a test needs "some event" rather than its own.
#ifndef HERALD_TESTING_SAMPLE_EVENTS_H_
#define HERALD_TESTING_SAMPLE_EVENTS_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "herald/core/event.h"

namespace herald::testing {

struct CustomerEvent {
  enum class Type { kCreated, kUpdated, kDeleted };
  using Details = std::map<std::string, std::string>;
  Type type = Type::kCreated;
  std::string customer_id;
  std::optional<Details> details;  // Go's nil map: null

  static constexpr TypeNames<Type, 3> kTypes{{{Type::kCreated, "customer.created"},
                                              {Type::kUpdated, "customer.updated"},
                                              {Type::kDeleted, "customer.deleted"}}};
  static constexpr std::string_view kTopic = "customer-events";
  std::string_view key() const { return customer_id; }
  static constexpr auto JsonFields() {
    return json::Fields(json::Field("customer_id", &CustomerEvent::customer_id),
                        json::Field("details", &CustomerEvent::details));
  }
};

}  // namespace herald::testing

#endif  // HERALD_TESTING_SAMPLE_EVENTS_H_
