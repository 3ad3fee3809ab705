// The seed services' events, defined with herald.
//
// The seed's Go services exchange `CustomerEvent` and `ProductEvent` on the
// topics customer-events and product-events as the JSON envelope
//   {"id","type","timestamp","payload":{"customer_id","details"}}
// herald keeps that wire form (the envelope is herald's default record value);
// the struct is the payload, and its typed enum picks the type name. The
// payload decodes exactly what Go's json.Marshal writes for
//   CustomerEventPayload{CustomerID string `json:"customer_id"`;
//                        Details map[string]string `json:"details"`}
// including a nil map (`null`, as NewCustomerCreatedEvent(id, nil) writes).
#ifndef HERALD_EXAMPLES_COMMON_SEED_EVENTS_H_
#define HERALD_EXAMPLES_COMMON_SEED_EVENTS_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "herald/core/event.h"

namespace seed {

// Go's map[string]string; std::nullopt is Go's nil map (JSON null).
using Details = std::map<std::string, std::string>;

// One struct, three type names: customer.created / .updated / .deleted.
struct CustomerEvent {
  enum class Type { kCreated, kUpdated, kDeleted };
  Type type = Type::kCreated;
  std::string customer_id;
  std::optional<Details> details;

  static constexpr herald::TypeNames<Type, 3> kTypes{{
      {Type::kCreated, "customer.created"},
      {Type::kUpdated, "customer.updated"},
      {Type::kDeleted, "customer.deleted"},
  }};
  static constexpr std::string_view kTopic = "customer-events";
  std::string_view key() const { return customer_id; }
  static constexpr auto JsonFields() {
    return herald::json::Fields(herald::json::Field("customer_id", &CustomerEvent::customer_id),
                                herald::json::Field("details", &CustomerEvent::details));
  }
};

struct ProductEvent {
  enum class Type { kCreated, kUpdated, kDeleted };
  Type type = Type::kCreated;
  std::string product_id;
  std::optional<Details> details;

  static constexpr herald::TypeNames<Type, 3> kTypes{{
      {Type::kCreated, "product.created"},
      {Type::kUpdated, "product.updated"},
      {Type::kDeleted, "product.deleted"},
  }};
  static constexpr std::string_view kTopic = "product-events";
  std::string_view key() const { return product_id; }
  static constexpr auto JsonFields() {
    return herald::json::Fields(herald::json::Field("product_id", &ProductEvent::product_id),
                                herald::json::Field("details", &ProductEvent::details));
  }
};

// The recommended shape for new events: one struct per event type.
struct CustomerEmailChanged {
  std::string customer_id;
  std::string old_email;
  std::string new_email;

  static constexpr std::string_view kType = "customer.email_changed";
  static constexpr std::string_view kTopic = "customer-events";
  std::string_view key() const { return customer_id; }
  static constexpr auto JsonFields() {
    return herald::json::Fields(herald::json::Field("customer_id", &CustomerEmailChanged::customer_id),
                                herald::json::Field("old_email", &CustomerEmailChanged::old_email),
                                herald::json::Field("new_email", &CustomerEmailChanged::new_email));
  }
};

// Convenience constructors in the seed's style (NewCustomerCreatedEvent).
inline CustomerEvent CustomerCreated(std::string id, std::optional<Details> details = std::nullopt) {
  return {CustomerEvent::Type::kCreated, std::move(id), std::move(details)};
}
inline CustomerEvent CustomerUpdated(std::string id, std::optional<Details> details = std::nullopt) {
  return {CustomerEvent::Type::kUpdated, std::move(id), std::move(details)};
}
inline CustomerEvent CustomerDeleted(std::string id) {
  return {CustomerEvent::Type::kDeleted, std::move(id), std::nullopt};
}

// One detail, or "" when absent.
inline std::string Detail(const CustomerEvent& e, const std::string& name) {
  if (!e.details.has_value()) return "";
  auto it = e.details->find(name);
  return it == e.details->end() ? "" : it->second;
}

}  // namespace seed

#endif  // HERALD_EXAMPLES_COMMON_SEED_EVENTS_H_
