// herald/core/uuid.h: time-ordered event ids (RFC 9562 UUIDv7).
//
//   std::string id = herald::NewUuidV7(clock.Now());
//   // "0190a6f2-3c1e-7b3a-9f4e-2b8c1d0e5a77"
//
// Ids made by one process are strictly increasing, also within one
// millisecond (the 12-bit rand_a field is a counter, RFC 9562 method 1).
// Thread-safe.
#ifndef HERALD_CORE_UUID_H_
#define HERALD_CORE_UUID_H_

#include <string>
#include <string_view>

#include "absl/time/time.h"

namespace herald {

// A new UUIDv7 in its canonical 36-character lowercase form.
std::string NewUuidV7(absl::Time now);

// True when `id` is a canonical UUID string of version 7.
bool IsUuidV7(std::string_view id);

}  // namespace herald

#endif  // HERALD_CORE_UUID_H_
