// herald/core/router.h: registering a service's handlers in one place.
//
// An EventRouter collects typed handlers for one consumer group, checks the
// registration (no event type registered twice, raw handlers
// only for types the registry knows), then subscribes once per topic. On each
// topic, events are dispatched by type name; a type with no handler is a
// permanent error, so it is dead-lettered rather than dropped.
//
//   herald::EventRouter router(bus, "event-reader");
//   HERALD_RETURN_IF_ERROR(router.Handle<CustomerEvent>(OnCustomerEvent{repo}));
//   HERALD_RETURN_IF_ERROR(router.Handle<ProductEvent>([](const ProductEvent& e) { return Restock(e); }));
//   HERALD_RETURN_IF_ERROR(router.Subscribe());
//
// Errors: kFailedPrecondition for registering after
// Subscribe(); kAlreadyExists for a type handled twice; kNotFound for a raw
// handler of a type the registry does not know; kInvalidArgument for an
// empty group.
//
// Thread-safety: register and subscribe from one thread; after Subscribe the
// router is read-only and safe for the bus's threads. It must outlive the
// bus's subscriptions (stop the bus before destroying the router).
#ifndef HERALD_CORE_ROUTER_H_
#define HERALD_CORE_ROUTER_H_

#include <map>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "herald/core/bus.h"
#include "herald/core/dispatcher.h"
#include "herald/core/event.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/core/type_registry.h"

namespace herald {

class EventRouter {
 public:
  // `bus` must outlive the router; `options` is the policy of every
  // subscription the router makes (group is taken from `group`).
  EventRouter(Bus& bus, std::string group, SubscribeOptions options = {})
      : bus_(bus), group_(std::move(group)), options_(std::move(options)) {}

  // Handles every type name of T on T's topic with `handler` (any form that
  // Bus::Subscribe<T> takes). Registers T in registry().
  template <Event T, typename F>
  absl::Status Handle(F&& handler) {
    HERALD_RETURN_IF_ERROR(CheckOpen());
    HERALD_RETURN_IF_ERROR(registry_.Register<T>());
    for (std::string_view name : EventTraits<T>::TypeNames()) {
      if (Handles(EventTraits<T>::Topic(), name)) return Duplicate(name);
    }
    Handler typed = TypedHandler<T>(std::forward<F>(handler), &registry_);
    for (std::string_view name : EventTraits<T>::TypeNames()) {
      routes_[std::string(EventTraits<T>::Topic())][std::string(name)] = typed;
    }
    return absl::OkStatus();
  }

  // Handles events of `type` on `topic` with a raw handler. The type must be
  // registered in registry() first (kNotFound otherwise).
  absl::Status HandleRaw(std::string_view topic, std::string_view type, Handler handler);

  // Subscribes once per topic. Call once, after every Handle.
  absl::Status Subscribe();

  // Register extra types and upcasters here before Subscribe.
  TypeRegistry& registry() { return registry_; }

 private:
  absl::Status CheckOpen() const;
  bool Handles(std::string_view topic, std::string_view type) const;
  absl::Status Duplicate(std::string_view type) const;

  Bus& bus_;
  std::string group_;
  SubscribeOptions options_;
  TypeRegistry registry_;
  bool subscribed_ = false;
  // topic -> type -> handler
  std::map<std::string, std::map<std::string, Handler, std::less<>>, std::less<>> routes_;
};

}  // namespace herald

#endif  // HERALD_CORE_ROUTER_H_
