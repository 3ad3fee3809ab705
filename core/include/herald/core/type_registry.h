// herald/core/type_registry.h: type names, schema versions and upcasters.
//
// A TypeRegistry knows which event types a service reads, at which schema
// version, and how to turn an older payload into the current one:
//
//   herald::TypeRegistry registry;
//   HERALD_RETURN_IF_ERROR(registry.Register<OrderPlaced>());   // version 2
//   HERALD_RETURN_IF_ERROR(registry.AddUpcaster("order.placed", 1,
//       [](rapidjson::Document& payload) -> absl::Status {
//         // v1 had "amount" in whole units; v2 has "amount_cents".
//         if (!payload.IsObject() || !payload.HasMember("amount") || !payload["amount"].IsInt64()) {
//           return absl::InvalidArgumentError("v1 order.placed without an integer \"amount\"");
//         }
//         int64_t cents = payload["amount"].GetInt64() * 100;
//         payload.RemoveMember("amount");
//         payload.AddMember("amount_cents", cents, payload.GetAllocator());
//         return absl::OkStatus();
//       }));
//   absl::StatusOr<OrderPlaced> e = registry.Decode<OrderPlaced>(envelope);
//
// Registration is checked: the same type name registered for two different
// C++ types is kAlreadyExists. Decoding an unregistered type name is
// kNotFound, a version newer than the registered one kFailedPrecondition, a
// gap in the upcaster chain kFailedPrecondition naming the missing step, and
// a payload that does not match kInvalidArgument. Never a crash.
//
// Thread-safety: register everything before sharing; after that, const
// methods are safe from any thread.
#ifndef HERALD_CORE_TYPE_REGISTRY_H_
#define HERALD_CORE_TYPE_REGISTRY_H_

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <typeindex>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "herald/core/typed_handler.h"
#include "herald/core/envelope.h"
#include "herald/core/event.h"
#include "rapidjson/document.h"

namespace herald {

// Rewrites a payload from version N to N + 1 in place.
using Upcaster = std::function<absl::Status(rapidjson::Document& payload)>;

class TypeRegistry {
 public:
  struct Entry {
    std::type_index cpp_type;
    int version = 1;
    std::map<int, Upcaster> upcasters;  // from version -> step to version + 1
  };

  // Registers every type name of T at T's schema version.
  template <Event T>
  absl::Status Register() {
    for (std::string_view name : EventTraits<T>::TypeNames()) {
      if (absl::Status s = Add(name, std::type_index(typeid(T)), EventTraits<T>::SchemaVersion()); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // Adds the step from `from_version` to `from_version + 1` for `type`.
  // kNotFound for an unregistered type; kInvalidArgument when the step would
  // go past the registered version; kAlreadyExists for a duplicate step.
  absl::Status AddUpcaster(std::string_view type, int from_version, Upcaster upcaster);

  bool Contains(std::string_view type) const;
  // The registered entry for `type`, or null.
  const Entry* Find(std::string_view type) const;
  // Every registered type name.
  std::vector<std::string> Types() const;

  // Parses the payload and upcasts it to `target_version`.
  absl::StatusOr<rapidjson::Document> Upcast(const Envelope& envelope, int target_version) const;

  // Decodes `envelope` as T, upcasting old versions. See the file comment for
  // the errors.
  template <Event T>
  absl::StatusOr<T> Decode(const Envelope& envelope) const {
    if (!Contains(envelope.type)) return UnknownType(envelope.type);
    return DecodeWithRegistry<T>(this, envelope);
  }

 private:
  absl::Status Add(std::string_view name, std::type_index type, int version);
  absl::Status UnknownType(std::string_view type) const;

  absl::flat_hash_map<std::string, Entry> entries_;
};

}  // namespace herald

#endif  // HERALD_CORE_TYPE_REGISTRY_H_
