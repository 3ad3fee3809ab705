// herald/core/envelope.h: the wire form of one event.
//
// An Envelope is what every transport moves and every outbox row stores. It is
// a plain value: copy it, move it, compare it.
//
//   herald::Envelope e;
//   e.id = herald::NewUuidV7(absl::Now());
//   e.type = "customer.created";
//   e.topic = "customer-events";
//   e.key = "cust-42";          // decides the partition and the ordering
//   e.payload = R"({"customer_id":"cust-42","details":"..."})";
//   herald::SetHeader(e.headers, "correlation-id", "req-7");
//   e.subject = "cust-42";      // CloudEvents attributes, kept on the wire
//   e.extensions = {{"region", "eu-1"}};
//
// Typed events become envelopes through herald::MakeEnvelope (event.h).
#ifndef HERALD_CORE_ENVELOPE_H_
#define HERALD_CORE_ENVELOPE_H_

#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace herald {

// Ordered headers; names are case-sensitive and may repeat, as on Kafka.
using Headers = std::vector<std::pair<std::string, std::string>>;

// The value of the first header called `name`, if any.
std::optional<std::string_view> FindHeader(const Headers& headers, std::string_view name);
// Replaces every header called `name` with one header `name: value`, kept at
// the position of the first one (or appended).
void SetHeader(Headers& headers, std::string_view name, std::string_view value);

// CloudEvents extension attributes: (name, value) pairs in order, the value
// in the attribute's canonical string form ("42", "true", text). Names are
// lowercase ASCII letters and digits (CloudEvents 1.0); see wire.h for the
// names herald maps to its own fields instead.
using Extensions = std::vector<std::pair<std::string, std::string>>;

// Well-known header names.
inline constexpr std::string_view kCorrelationIdHeader = "correlation-id";
inline constexpr std::string_view kTraceparentHeader = "traceparent";
inline constexpr std::string_view kTracestateHeader = "tracestate";

struct Envelope {
  // UUIDv7, unique per event; consumers deduplicate on it.
  std::string id;
  // Event type name, e.g. "customer.created".
  std::string type;
  // Destination topic, e.g. "customer-events".
  std::string topic;
  // Entity id: decides the partition and so the ordering. May be empty.
  std::string key;
  // Producer identity (CloudEvents `source`), e.g. "customer-service".
  std::string source;
  // When the event happened.
  absl::Time time = absl::UnixEpoch();
  // Schema version of `payload` for this type; see TypeRegistry upcasters.
  int schema_version = 1;
  // Application headers (traceparent, correlation id, ...), in order.
  Headers headers;
  // The payload bytes; JSON unless `content_type` says otherwise.
  std::string payload;
  std::string content_type = "application/json";
  // CloudEvents `subject`: what the event is about, within `source` (e.g.
  // the entity id). Empty: none.
  std::string subject;
  // CloudEvents `dataschema`: the URI of the schema `payload` follows.
  // Empty: none.
  std::string dataschema;
  // CloudEvents extension attributes, in order (e.g. "region", "sequence").
  // Not here, because they have fields or headers of their own:
  // `schemaversion` (schema_version), `partitionkey` when it equals `key`
  // (key), and `traceparent`/`tracestate` (the headers of those names).
  Extensions extensions;

  friend bool operator==(const Envelope&, const Envelope&) = default;
};

// One line for logs and test failures: type, id, topic, key, time, header
// count and payload size; subject, dataschema and extensions when set.
std::string DebugString(const Envelope& envelope);
std::ostream& operator<<(std::ostream& os, const Envelope& envelope);

}  // namespace herald

#endif  // HERALD_CORE_ENVELOPE_H_
