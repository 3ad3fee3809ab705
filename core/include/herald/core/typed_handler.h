// herald/core/typed_handler.h: typed handlers on top of raw ones.
//
// TypedHandler<T> adapts a handler written for one event struct to the raw
// Handler the dispatcher calls: it decodes the envelope into T first (with
// upcasting through a TypeRegistry when one is given). Bus::Subscribe<T> and
// EventRouter use it; call it directly only to build a Handler by hand.
//
//   herald::Handler h = herald::TypedHandler<CustomerEvent>(
//       [](const CustomerEvent& e) -> absl::Status { return Project(e); });
#ifndef HERALD_CORE_TYPED_HANDLER_H_
#define HERALD_CORE_TYPED_HANDLER_H_

#include <memory>
#include <type_traits>
#include <utility>

#include "absl/status/statusor.h"
#include "herald/core/event.h"
#include "herald/core/message.h"

namespace herald {

class TypeRegistry;

// Decodes with upcasting when `registry` is set (defined in type_registry.cc).
template <Event T>
absl::StatusOr<T> DecodeWithRegistry(const TypeRegistry* registry, const Envelope& envelope);

namespace internal {
absl::StatusOr<rapidjson::Document> UpcastPayload(const TypeRegistry* registry, const Envelope& envelope,
                                                  int target_version);
}  // namespace internal

template <Event T>
absl::StatusOr<T> DecodeWithRegistry(const TypeRegistry* registry, const Envelope& envelope) {
  if (registry == nullptr) return DecodeEvent<T>(envelope);
  absl::StatusOr<rapidjson::Document> payload =
      internal::UpcastPayload(registry, envelope, EventTraits<T>::SchemaVersion());
  if (!payload.ok()) return payload.status();
  return DecodeEventPayload<T>(envelope.type, *payload);
}

// Adapts a typed handler (callable taking (const T&) or (const T&, const
// Message&), EventHandler<T>&, or shared_ptr<EventHandler<T>>) to a Handler
// that decodes first. Decode errors are kInvalidArgument (dead-lettered).
// An EventHandler<T>& is borrowed: it must outlive the subscription.
template <Event T, typename F>
Handler TypedHandler(F&& handler, const TypeRegistry* registry = nullptr) {
  using D = std::remove_cvref_t<F>;
  if constexpr (std::is_base_of_v<EventHandler<T>, D>) {
    EventHandler<T>* target = &handler;
    return [target, registry](const Message& m) -> absl::Status {
      absl::StatusOr<T> event = DecodeWithRegistry<T>(registry, m.envelope);
      if (!event.ok()) return event.status();
      return target->Handle(*event, m);
    };
  } else if constexpr (std::is_convertible_v<D, std::shared_ptr<EventHandler<T>>>) {
    std::shared_ptr<EventHandler<T>> target = handler;
    return [target, registry](const Message& m) -> absl::Status {
      absl::StatusOr<T> event = DecodeWithRegistry<T>(registry, m.envelope);
      if (!event.ok()) return event.status();
      return target->Handle(*event, m);
    };
  } else if constexpr (std::is_invocable_r_v<absl::Status, D&, const T&, const Message&>) {
    return [f = D(std::forward<F>(handler)), registry](const Message& m) mutable -> absl::Status {
      absl::StatusOr<T> event = DecodeWithRegistry<T>(registry, m.envelope);
      if (!event.ok()) return event.status();
      return f(*event, m);
    };
  } else {
    static_assert(std::is_invocable_r_v<absl::Status, D&, const T&>,
                  "a typed handler takes (const T&) or (const T&, const herald::Message&) and returns absl::Status, "
                  "or is an EventHandler<T>");
    return [f = D(std::forward<F>(handler)), registry](const Message& m) mutable -> absl::Status {
      absl::StatusOr<T> event = DecodeWithRegistry<T>(registry, m.envelope);
      if (!event.ok()) return event.status();
      return f(*event);
    };
  }
}

}  // namespace herald

#endif  // HERALD_CORE_TYPED_HANDLER_H_
