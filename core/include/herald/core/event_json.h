// herald/core/event_json.h: one whole event as a JSON text, the way the seed's
// Go services write it with `evt.ToJSON()` and read it with
// `factory.FromJSON(data)`:
//
//   {"id":"…","type":"customer.created","timestamp":"2026-11-30T10:11:12.5Z",
//    "payload":{"customer_id":"cust-42","details":{"tier":"gold"}}}
//
// herald's typed events are the payload only; the id, type and time live in
// the Envelope. ToJson and FromJson join the two for code that hands whole
// events to or takes them from a Go service outside a Bus (a file, an HTTP
// body, a column). On a Bus or through the outbox nothing needs them: the
// JSON envelope is herald's default record value (wire.h), and Go rows are
// unwrapped by the relay (UnwrapJsonEnvelope).
//
// Thread-safety: plain functions of their arguments.
#ifndef HERALD_CORE_EVENT_JSON_H_
#define HERALD_CORE_EVENT_JSON_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "herald/core/event.h"
#include "herald/core/strings.h"
#include "herald/core/wire.h"

namespace herald {

// The JSON envelope of `event`, as MakeEnvelope(event, options) makes it: a
// new UUIDv7 id and the clock's time (UTC, written with "Z"). What Go's
// CustomerEventFactory.FromJSON reads. kInvalidArgument when the payload
// cannot be written (over the nesting limit of json.h).
template <Event T>
absl::StatusOr<std::string> ToJson(const T& event, EnvelopeOptions options = {}) {
  return EncodeJsonEnvelope(MakeEnvelope(event, std::move(options)));
}

// Reads a whole event written by Go's `evt.ToJSON()` (or by ToJson) as a T.
// When `envelope` is not null it receives the event's id, type, time and
// payload bytes (its topic is left empty: a JSON envelope does not name it).
// Accepts what DecodeRecord accepts as a record value without headers: the
// JSON envelope, and also a structured CloudEvent. Errors are
// kInvalidArgument (not JSON, over the nesting limit, not an envelope, a type
// that is not one of T's, a payload that does not match T's mapping) or
// kFailedPrecondition (a schema version T does not read), as for
// DecodeEvent.
template <Event T>
absl::StatusOr<T> FromJson(std::string_view json, Envelope* envelope = nullptr) {
  absl::StatusOr<Envelope> decoded = DecodeRecord(/*topic=*/"", /*key=*/"", json, /*headers=*/{});
  if (!decoded.ok()) {
    return absl::InvalidArgumentError(herald::StrCat("not a JSON event: ", decoded.status().message()));
  }
  absl::StatusOr<T> event = DecodeEvent<T>(*decoded);
  if (event.ok() && envelope != nullptr) *envelope = *std::move(decoded);
  return event;
}

}  // namespace herald

#endif  // HERALD_CORE_EVENT_JSON_H_
