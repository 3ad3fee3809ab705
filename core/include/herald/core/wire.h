// herald/core/wire.h: the record format on the wire (Kafka and alike).
//
// Default (WireMode::kJsonEnvelope), readable by the Go services that parse
// the JSON envelope and by CloudEvents SDKs that read binary-mode headers:
//   key     = envelope.key (the entity id)
//   value   = {"id":"…","type":"customer.created",
//              "timestamp":"2026-11-27T07:01:29.123Z","payload":{…}}
//   headers = ce_specversion: 1.0, ce_id, ce_source, ce_type, ce_time,
//             content-type: application/json, [ce_schemaversion when not 1],
//             [ce_subject], [ce_dataschema], [ce_partitionkey = key],
//             [ce_traceparent, ce_tracestate], ce_<extension>…,
//             then the envelope's own headers in order.
// A CloudEvents SDK reads this record in binary mode: it gets every
// attribute from the ce_ headers, and its `data` is the whole JSON envelope
// (the value), not the payload. For topics whose consumers are CloudEvents
// SDKs, use WireMode::kBinary (or kCloudEventsStructured) on those topics,
// e.g. KafkaTransportOptions::wire_mode_by_topic; herald's consumers read
// every mode alike, so a topic can switch without touching them.
// Header names are lowercase and appear once each; an application header that
// reuses a reserved name (ce_*, content-type) is dropped on encode.
//
// WireMode::kCloudEventsStructured puts a CloudEvents 1.0 JSON event in the
// value (content-type: application/cloudevents+json) and no ce_ headers: the
// attributes above are members, a JSON payload is `data`, a text/* payload
// that is UTF-8 is `data` as a string, and any other payload is
// `data_base64` (the CloudEvents JSON format's rule for binary data).
// WireMode::kBinary puts only the payload in the value, with the ce_ headers.
//
// CloudEvents attributes (every mode, both ways):
// - subject and dataschema are Envelope::subject and ::dataschema.
// - Extension attributes are Envelope::extensions, in order, values in their
//   canonical string form (a structured event's 42 or true are read as "42"
//   and "true", and written as strings). Names are lowercase letters a-z and
//   digits (CloudEvents 1.0): a ce_ header or structured member with another
//   name, an object or array value, or both `data` and `data_base64` make
//   the record invalid. EncodeRecord rejects such extension names, one given
//   twice, and the names it writes from the envelope (id, subject,
//   traceparent, ...).
// - partitionkey: the record's key when the record has none; kept as an
//   extension when it differs from the key. Written from the extension, or
//   else from a non-empty key.
// - The distributed-tracing extension (traceparent, tracestate) is the
//   `traceparent` and `tracestate` headers, as herald propagates them
//   (message.h): a record's own `traceparent` header wins over the
//   extension (it is the current hop's); without one, ce_traceparent (or the
//   structured member) becomes that header, and likewise tracestate. Both
//   are written as headers and as the extension.
// - data_base64 is decoded into the payload bytes; the content type is
//   datacontenttype, or application/octet-stream without one. No data is
//   application/cloudevents+json (in binary mode that content-type would
//   make the record structured): DecodeRecord and EncodeRecord (binary and
//   structured) reject it.
//
// In kJsonEnvelope mode a payload whose content type is not JSON travels as a
// JSON string and decodes with content type "text/plain" (the JSON envelope
// has no field for it); use kBinary or kCloudEventsStructured for binary
// payloads. Where a JSON payload is embedded (kJsonEnvelope and
// kCloudEventsStructured), the JSON white space around it is not part of the
// value and is not written: it decodes without it.
//
// DecodeRecord accepts all three, and also a bare JSON envelope with no
// headers at all (what a Go producer writes). ce_ header names are read as
// CloudEvents SDKs read them (any case, lowercased; the first of a repeated
// name wins), and in structured mode ce_ headers are not read. Malformed
// input is kInvalidArgument with a reason, never a crash; so is a record
// whose id or type is empty (nothing could deduplicate or route it: the
// consumer dead-letters it).
//
// Limits (herald/core/json.h): every JSON text is parsed iteratively, whole
// (a NUL byte and junk after a value are invalid JSON, not ignored), and at
// most herald::kMaxJsonDepth (128) levels of arrays and objects deep in the
// payload; the JSON envelope's or structured CloudEvent's own level does not
// count. EncodeRecord rejects a JSON payload over the limit (the relay parks
// its outbox row); DecodeRecord rejects a record whose value, or whose JSON
// payload in binary mode, is over it (the consumer dead-letters the record).
// Either way the message names kMaxJsonDepth.
#ifndef HERALD_CORE_WIRE_H_
#define HERALD_CORE_WIRE_H_

#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "herald/core/envelope.h"

namespace herald {

// The CloudEvents binary-mode header names: "ce_" then the attribute name,
// lowercase, as EncodeRecord writes them. The outbox's headers column
// carries subject, dataschema and extensions under these same names
// (EncodeOutboxHeaders, outbox.h).
inline constexpr std::string_view kCeHeaderPrefix = "ce_";
inline constexpr std::string_view kCeSubjectHeader = "ce_subject";
inline constexpr std::string_view kCeDataSchemaHeader = "ce_dataschema";

// Whether `name` starts with "ce_" in any case: a name CloudEvents reserves
// for attributes. EncodeRecord drops an application header so named (and
// one named content-type): the envelope's own fields win.
bool IsCloudEventsHeaderName(std::string_view name);

// OK when `envelope.extensions` can be written: every name a CloudEvents
// attribute name (one or more lowercase letters a-z and digits; CloudEvents
// recommends at most 20 characters, which herald does not enforce), none
// given twice, and none an attribute herald writes from the envelope's own
// fields or headers (specversion, id, source, type, time, subject,
// dataschema, datacontenttype, data, data_base64, schemaversion,
// traceparent, tracestate; `partitionkey` is allowed, see above).
// kInvalidArgument naming the extension, the event and the rule otherwise.
// EncodeRecord and EncodeOutboxHeaders (so every OutboxStore::Append) check
// through this.
absl::Status CheckCloudEventsExtensions(const Envelope& envelope);

enum class WireMode {
  kJsonEnvelope,
  kCloudEventsStructured,
  kBinary,
};

struct Record {
  std::string key;
  std::string value;
  Headers headers;
};

// Encodes `envelope` for the wire. kInvalidArgument when the content type is
// JSON but the payload is not valid JSON (modes that embed it).
absl::StatusOr<Record> EncodeRecord(const Envelope& envelope, WireMode mode = WireMode::kJsonEnvelope);

// Receives one header of a record being encoded; both views are valid only
// during the call.
using RecordHeaderSink = absl::FunctionRef<void(std::string_view name, std::string_view value)>;

// EncodeRecord without a Record: returns the value and hands each header, in
// order, to `header`, with no copy of the envelope's fields in between (the
// key is envelope.key). EncodeRecord is made of it, so the bytes are the
// same. For transports that copy headers into their own structures (the
// Kafka transport adds them straight to librdkafka's). On an error no header
// has been given.
absl::StatusOr<std::string> EncodeRecordValue(const Envelope& envelope, WireMode mode, RecordHeaderSink header);

// Decodes a record read from `topic`; detects the mode from headers and value.
absl::StatusOr<Envelope> DecodeRecord(std::string_view topic, std::string_view key, std::string_view value,
                                      const Headers& headers);
// DecodeRecord into `envelope`, reusing the storage of its strings (a
// consumer decodes each record into the same one): on success `envelope` is
// what DecodeRecord returns, whatever it held before; on error it holds
// unspecified values and the status is DecodeRecord's.
absl::Status DecodeRecordInto(std::string_view topic, std::string_view key, std::string_view value,
                              const Headers& headers, Envelope& envelope);

// The JSON envelope text {"id","type","timestamp","payload"} alone.
absl::StatusOr<std::string> EncodeJsonEnvelope(const Envelope& envelope);

// The seed's Go services put the whole JSON envelope (`evt.ToJSON()`) where
// herald expects a payload: in an outbox row's `event_payload`, and in the
// data of PublishRaw. When `envelope.payload` is such an envelope of
// `envelope.type`, UnwrapJsonEnvelope moves it into `envelope`: its id and
// timestamp replace envelope.id and envelope.time, and its payload's bytes
// (byte-exact; a JSON string becomes its text with content type
// "text/plain", as DecodeRecord reads it) replace envelope.payload. Returns
// true then; otherwise changes nothing and returns false (a bare payload).
//
// Recognised, and nothing else: a JSON content type, and a payload that is a
// JSON object with exactly four members, each once: "id" (a non-empty
// string), "type" (a string equal to envelope.type), "timestamp" (an RFC 3339
// string: "Z" or an offset, up to nine fractional digits) and "payload" (any
// JSON value), the names written unescaped (as Go and JSONB write them). So
// a bare payload that has an "id" but no matching "type", or any member
// beyond the four, is relayed as it is. The relay and
// Bus::PublishRaw call this; so does anything else that takes rows or bytes
// from a Go service.
bool UnwrapJsonEnvelope(Envelope& envelope);

}  // namespace herald

#endif  // HERALD_CORE_WIRE_H_
