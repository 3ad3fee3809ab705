#include "herald/core/strings.h"
#include "herald/core/type_registry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "herald/core/json.h"

namespace herald {

absl::Status TypeRegistry::Add(std::string_view name, std::type_index type, int version) {
  if (name.empty()) return absl::InvalidArgumentError("TypeRegistry: empty event type name");
  if (version < 1) return absl::InvalidArgumentError(herald::StrCat("TypeRegistry: \"", name, "\" has schema version < 1"));
  auto [it, inserted] = entries_.try_emplace(std::string(name), Entry{type, version, {}});
  if (!inserted) {
    if (it->second.cpp_type != type) {
      return absl::AlreadyExistsError(herald::StrCat("TypeRegistry: event type \"", name,
                                                   "\" is already registered for another C++ type"));
    }
    if (it->second.version != version) {
      return absl::AlreadyExistsError(herald::StrCat("TypeRegistry: event type \"", name, "\" registered twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status TypeRegistry::AddUpcaster(std::string_view type, int from_version, Upcaster upcaster) {
  auto it = entries_.find(ToAbsl(type));
  if (it == entries_.end()) {
    return absl::NotFoundError(herald::StrCat("TypeRegistry: register \"", type, "\" before adding upcasters"));
  }
  if (from_version < 1 || from_version >= it->second.version) {
    return absl::InvalidArgumentError(herald::StrCat("TypeRegistry: upcaster for \"", type, "\" from version ",
                                                   from_version, " does not lead to the registered version ",
                                                   it->second.version));
  }
  if (!upcaster) return absl::InvalidArgumentError("TypeRegistry: empty upcaster");
  if (!it->second.upcasters.emplace(from_version, std::move(upcaster)).second) {
    return absl::AlreadyExistsError(
        herald::StrCat("TypeRegistry: upcaster for \"", type, "\" from version ", from_version, " already added"));
  }
  return absl::OkStatus();
}

bool TypeRegistry::Contains(std::string_view type) const { return entries_.contains(ToAbsl(type)); }

const TypeRegistry::Entry* TypeRegistry::Find(std::string_view type) const {
  auto it = entries_.find(ToAbsl(type));
  return it == entries_.end() ? nullptr : &it->second;
}

std::vector<std::string> TypeRegistry::Types() const {
  std::vector<std::string> out;
  for (const auto& [name, entry] : entries_) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

absl::Status TypeRegistry::UnknownType(std::string_view type) const {
  return absl::NotFoundError(herald::StrCat("unknown event type \"", type, "\"; registered: ",
                                          absl::StrJoin(Types(), ", ")));
}

absl::StatusOr<rapidjson::Document> TypeRegistry::Upcast(const Envelope& envelope, int target_version) const {
  rapidjson::Document payload;
  if (absl::Status s = json::Parse(envelope.payload, payload); !s.ok()) {
    return absl::InvalidArgumentError(
        herald::StrCat("payload of \"", envelope.type, "\" event ", envelope.id, ": ", s.message()));
  }
  int version = envelope.schema_version;
  if (version == target_version) return payload;
  if (version > target_version) {
    return absl::FailedPreconditionError(herald::StrCat("event \"", envelope.type, "\" has schema version ", version,
                                                      ", newer than the version ", target_version,
                                                      " this build reads; upgrade the consumer"));
  }
  const Entry* entry = Find(envelope.type);
  if (entry == nullptr) return UnknownType(envelope.type);
  for (; version < target_version; ++version) {
    auto step = entry->upcasters.find(version);
    if (step == entry->upcasters.end()) {
      return absl::FailedPreconditionError(herald::StrCat("no upcaster for \"", envelope.type, "\" from version ",
                                                        version, " to ", version + 1));
    }
    if (absl::Status s = step->second(payload); !s.ok()) {
      return absl::InvalidArgumentError(herald::StrCat("upcasting \"", envelope.type, "\" from version ", version,
                                                     " failed: ", s.message()));
    }
  }
  return payload;
}

namespace internal {
absl::StatusOr<rapidjson::Document> UpcastPayload(const TypeRegistry* registry, const Envelope& envelope,
                                                  int target_version) {
  return registry->Upcast(envelope, target_version);
}
}  // namespace internal

}  // namespace herald
