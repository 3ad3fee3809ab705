// The typed event of consumer_crash_kafkatest and its child consumer.
#ifndef HERALD_TESTS_CRASH_CONSUMER_CRASH_EVENT_H_
#define HERALD_TESTS_CRASH_CONSUMER_CRASH_EVENT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "herald/core/event.h"
#include "herald/core/json.h"

namespace herald::crash {

// Event n (from 0, in publish order) of entity `entity` (the record key).
struct CrashEvent {
  std::string entity;
  int64_t n = 0;
  static constexpr std::string_view kType = "crash.consumer";
  static constexpr std::string_view kTopic = "crash-consumer";  // the test overrides it per run
  std::string_view key() const { return entity; }
  static constexpr auto JsonFields() {
    return json::Fields(json::Field("key", &CrashEvent::entity), json::Field("n", &CrashEvent::n));
  }
};

}  // namespace herald::crash

#endif  // HERALD_TESTS_CRASH_CONSUMER_CRASH_EVENT_H_
