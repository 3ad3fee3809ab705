// herald/core/event.h: typed events.
//
// A typed event is a plain value struct. herald needs four facts about it:
// its type name(s), its topic, its key, and its JSON mapping. Write them as
// static members of the struct (no base class):
//
//   // One struct per event type (recommended):
//   struct OrderPlaced {
//     std::string order_id;
//     int64_t amount_cents = 0;
//     static constexpr std::string_view kType = "order.placed";
//     static constexpr std::string_view kTopic = "order-events";
//     static constexpr int kSchemaVersion = 2;           // optional, default 1
//     std::string_view key() const { return order_id; }   // optional, default ""
//     static constexpr auto JsonFields() {
//       return herald::json::Fields(
//           herald::json::Field("order_id", &OrderPlaced::order_id),
//           herald::json::Field("amount_cents", &OrderPlaced::amount_cents));
//     }
//   };
//
//   // One struct carrying several type names, chosen by a typed enum held in
//   // a member called `type` (the enum is not part of the payload JSON):
//   struct CustomerEvent {
//     enum class Type { kCreated, kUpdated, kDeleted };
//     Type type = Type::kCreated;
//     std::string customer_id;
//     std::string details;
//     static constexpr herald::TypeNames<Type, 3> kTypes{{
//         {Type::kCreated, "customer.created"},
//         {Type::kUpdated, "customer.updated"},
//         {Type::kDeleted, "customer.deleted"}}};
//     static constexpr std::string_view kTopic = "customer-events";
//     std::string_view key() const { return customer_id; }
//     static constexpr auto JsonFields() {
//       return herald::json::Fields(
//           herald::json::Field("customer_id", &CustomerEvent::customer_id),
//           herald::json::Field("details", &CustomerEvent::details));
//     }
//   };
//
// For a struct you cannot change, specialize herald::EventTraits<T> with the
// same static functions as the primary template below.
//
// Then: herald::MakeEnvelope(event) gives an Envelope with a UUIDv7 id and the
// clock's time, and herald::DecodeEvent<T>(envelope) reads it back.
#ifndef HERALD_CORE_EVENT_H_
#define HERALD_CORE_EVENT_H_

#include <array>
#include <concepts>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "herald/core/strings.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "herald/core/clock.h"
#include "herald/core/envelope.h"
#include "herald/core/json.h"
#include "herald/core/uuid.h"

namespace herald {

// The type-name table of a multi-type event.
template <typename Enum, std::size_t N>
using TypeNames = std::array<std::pair<Enum, std::string_view>, N>;

namespace internal {
template <typename T>
concept HasSingleType = requires {
  { T::kType } -> std::convertible_to<std::string_view>;
};
template <typename T>
concept HasTypeTable = requires(T t) {
  T::kTypes;
  t.type;
  { T::kTypes[0].second } -> std::convertible_to<std::string_view>;
};
template <typename T>
concept HasKey = requires(const T& t) {
  { t.key() } -> std::convertible_to<std::string_view>;
};
template <typename T>
concept HasSchemaVersion = requires {
  { T::kSchemaVersion } -> std::convertible_to<int>;
};
}  // namespace internal

// What herald knows about event type T. The primary template reads the static
// members shown above; specialize it for types you cannot change.
template <typename T>
struct EventTraits {
  static constexpr bool kSpecialized = false;
  // Every type name T can carry, in declaration order.
  static std::vector<std::string_view> TypeNames() {
    if constexpr (internal::HasSingleType<T>) {
      return {std::string_view(T::kType)};
    } else {
      std::vector<std::string_view> names;
      for (const auto& entry : T::kTypes) names.push_back(entry.second);
      return names;
    }
  }
  // The type name of this particular event.
  static std::string_view TypeName(const T& event) {
    if constexpr (internal::HasSingleType<T>) {
      return T::kType;
    } else {
      for (const auto& entry : T::kTypes) {
        if (entry.first == event.type) return entry.second;
      }
      return {};
    }
  }
  // Sets the event's type from a name; false when T does not carry `name`.
  static bool SetTypeName(T& event, std::string_view name) {
    if constexpr (internal::HasSingleType<T>) {
      return name == T::kType;
    } else {
      for (const auto& entry : T::kTypes) {
        if (entry.second == name) {
          event.type = entry.first;
          return true;
        }
      }
      return false;
    }
  }
  static std::string_view Topic() { return T::kTopic; }
  static std::string Key(const T& event) {
    if constexpr (internal::HasKey<T>) {
      return std::string(event.key());
    } else {
      return {};
    }
  }
  static int SchemaVersion() {
    if constexpr (internal::HasSchemaVersion<T>) {
      return T::kSchemaVersion;
    } else {
      return 1;
    }
  }
  static std::string EncodePayload(const T& event) { return json::Encode(event); }
  static absl::Status DecodePayload(const rapidjson::Value& payload, T& event) {
    return json::DecodeValue(payload, event);
  }
};

// Satisfied by every type herald can publish and decode: one with a type name
// (kType) or a type table (kTypes + member `type`), a topic and a JSON mapping,
// or a type with its own EventTraits specialization (which must define
// `static constexpr bool kSpecialized = true`).
template <typename T>
concept Event = (internal::HasSingleType<T> || internal::HasTypeTable<T> || EventTraits<T>::kSpecialized) &&
                requires(const T& e, T& m, std::string_view name, const rapidjson::Value& v) {
  { EventTraits<T>::TypeNames() } -> std::convertible_to<std::vector<std::string_view>>;
  { EventTraits<T>::TypeName(e) } -> std::convertible_to<std::string_view>;
  { EventTraits<T>::SetTypeName(m, name) } -> std::same_as<bool>;
  { EventTraits<T>::Topic() } -> std::convertible_to<std::string_view>;
  { EventTraits<T>::Key(e) } -> std::convertible_to<std::string>;
  { EventTraits<T>::EncodePayload(e) } -> std::same_as<std::string>;
  { EventTraits<T>::DecodePayload(v, m) } -> std::same_as<absl::Status>;
};

// Overrides for MakeEnvelope; everything is optional.
struct EnvelopeOptions {
  // Clock for `time` and the id. Default: SystemClock(). Must outlive the call.
  const Clock* clock = nullptr;
  // CloudEvents source. Default: "herald".
  std::string source;
  // Overrides the event's topic.
  std::string topic;
  // Extra headers, appended in order.
  Headers headers;
};

// Copies correlation id and trace context from the message being handled on
// this thread (if any) into `headers`, unless already present. Called by
// MakeEnvelope so that events published from a handler continue its trace.
// The `traceparent` is CurrentTraceContext() (tracing.h) when one is set on
// this thread (a traced handler's span, a ScopedTraceContext), else the
// handled message's.
void PropagateContext(Headers& headers);

// An Envelope for `event`: new UUIDv7 id, the clock's time, the event's type,
// topic, key and schema version, and its JSON payload.
template <Event T>
Envelope MakeEnvelope(const T& event, EnvelopeOptions options = {}) {
  const Clock& clock = options.clock != nullptr ? *options.clock : SystemClock();
  Envelope e;
  e.time = clock.Now();
  e.id = NewUuidV7(e.time);
  e.type = std::string(EventTraits<T>::TypeName(event));
  e.topic = options.topic.empty() ? std::string(EventTraits<T>::Topic()) : std::move(options.topic);
  e.key = EventTraits<T>::Key(event);
  e.source = options.source.empty() ? std::string("herald") : std::move(options.source);
  e.schema_version = EventTraits<T>::SchemaVersion();
  e.headers = std::move(options.headers);
  PropagateContext(e.headers);
  e.payload = EventTraits<T>::EncodePayload(event);
  e.content_type = "application/json";
  return e;
}

// Decodes a payload that is already at T's current schema version.
template <Event T>
absl::StatusOr<T> DecodeEventPayload(std::string_view type, const rapidjson::Value& payload) {
  T event{};
  if (!EventTraits<T>::SetTypeName(event, type)) {
    return absl::InvalidArgumentError(herald::StrCat("event type \"", type, "\" is not one of the types this handler accepts"));
  }
  if (absl::Status s = EventTraits<T>::DecodePayload(payload, event); !s.ok()) {
    return absl::InvalidArgumentError(herald::StrCat("cannot decode \"", type, "\" payload: ", s.message()));
  }
  return event;
}

// Decodes `envelope` as a T. kInvalidArgument when the type is not one of T's,
// the payload is not JSON or does not match T's mapping; kFailedPrecondition
// when the envelope's schema version differs from T's (use a TypeRegistry with
// upcasters to read old versions).
template <Event T>
absl::StatusOr<T> DecodeEvent(const Envelope& envelope) {
  if (envelope.schema_version != EventTraits<T>::SchemaVersion()) {
    return absl::FailedPreconditionError(herald::StrCat(
        "event \"", envelope.type, "\" has schema version ", envelope.schema_version, ", this build reads version ",
        EventTraits<T>::SchemaVersion(), "; register an upcaster in a TypeRegistry"));
  }
  // The document's values live in a buffer on the stack for a payload of up
  // to a few hundred members (a larger one spills to the heap), not in a
  // 64 KiB chunk allocated and freed for each event.
  char pool_buffer[2048];
  rapidjson::MemoryPoolAllocator<> pool(pool_buffer, sizeof pool_buffer);
  rapidjson::Document document(&pool);
  if (absl::Status s = json::Parse(envelope.payload, document); !s.ok()) {
    return absl::InvalidArgumentError(herald::StrCat("payload of \"", envelope.type, "\" event ", envelope.id, ": ", s.message()));
  }
  return DecodeEventPayload<T>(envelope.type, document);
}

}  // namespace herald

#endif  // HERALD_CORE_EVENT_H_
