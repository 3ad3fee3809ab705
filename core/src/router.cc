#include "herald/core/router.h"

#include "herald/core/status.h"

namespace herald {

absl::Status EventRouter::CheckOpen() const {
  if (group_.empty()) return absl::InvalidArgumentError("EventRouter: consumer group is empty");
  if (subscribed_) return absl::FailedPreconditionError("EventRouter: register handlers before Subscribe()");
  return absl::OkStatus();
}

bool EventRouter::Handles(std::string_view topic, std::string_view type) const {
  auto t = routes_.find(topic);
  return t != routes_.end() && t->second.find(type) != t->second.end();
}

absl::Status EventRouter::Duplicate(std::string_view type) const {
  return absl::AlreadyExistsError(
      herald::StrCat("EventRouter: event type \"", type, "\" already has a handler in group ", group_));
}

absl::Status EventRouter::HandleRaw(std::string_view topic, std::string_view type, Handler handler) {
  HERALD_RETURN_IF_ERROR(CheckOpen());
  if (!handler) return absl::InvalidArgumentError("EventRouter: empty handler");
  if (!registry_.Contains(type)) {
    return absl::NotFoundError(herald::StrCat("EventRouter: unknown event type \"", type,
                                              "\"; register it in registry() before adding a raw handler"));
  }
  if (Handles(topic, type)) return Duplicate(type);
  routes_[std::string(topic)][std::string(type)] = std::move(handler);
  return absl::OkStatus();
}

absl::Status EventRouter::Subscribe() {
  HERALD_RETURN_IF_ERROR(CheckOpen());
  if (routes_.empty()) return absl::FailedPreconditionError("EventRouter: no handlers registered");
  for (const auto& [topic, by_type] : routes_) {
    SubscribeOptions options = options_;
    options.group = group_;
    options.topics = {topic};
    options.accepted_types.clear();
    for (const auto& [type, handler] : by_type) options.accepted_types.push_back(type);
    options.skip_unknown_types = false;  // unknown types are dead-lettered
    options.registry = &registry_;
    const auto* routes = &by_type;
    HERALD_RETURN_IF_ERROR(bus_.Subscribe(std::move(options), [routes](const Message& m) -> absl::Status {
      auto it = routes->find(m.envelope.type);
      if (it == routes->end()) {
        return absl::InvalidArgumentError(herald::StrCat("no handler for event type \"", m.envelope.type, "\""));
      }
      return it->second(m);
    }));
  }
  subscribed_ = true;
  return absl::OkStatus();
}

}  // namespace herald
