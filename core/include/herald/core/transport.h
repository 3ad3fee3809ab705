// herald/core/transport.h: what a transport plugin implements.
//
// A Transport only moves bytes: it publishes records and reports their
// delivery, hands every record it reads to the one handler the Bus gave it,
// and does what the returned Verdict says (commit past it, or deliver the
// same record again after a delay). It decides nothing: decoding, retries,
// backoff, dead letters, skipping and handler exceptions are the Bus's
// (bus.h), written once in core, so every transport behaves the same.
//
// Application code never calls a Transport's Subscribe; it makes a Bus that
// owns the transport and uses the Bus:
//
//   herald::Bus bus(std::make_unique<herald::inmemory::InMemoryTransport>());
//   HERALD_RETURN_IF_ERROR(bus.Subscribe<CustomerEvent>("event-reader", handler));
//
// Implementations: herald::inmemory::InMemoryTransport,
// herald::kafka::KafkaTransport, herald::testing::FakeTransport. A new
// transport proves itself with the public conformance suite
// (herald/testing/transport_conformance.h).
//
// Thread-safety: every method may be called from any thread, concurrently.
#ifndef HERALD_CORE_TRANSPORT_H_
#define HERALD_CORE_TRANSPORT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "herald/core/envelope.h"
#include "herald/core/message.h"
#include "herald/core/metrics.h"
#include "herald/core/wire.h"

namespace herald {

// Where a published record was stored.
struct DeliveryReport {
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
};

// Called exactly once per publish, on a transport thread or the calling
// thread, when the record is durably accepted (OK) or definitively failed.
using PublishCallback = absl::AnyInvocable<void(absl::StatusOr<DeliveryReport>)>;

// One record as a transport read it, handed to the Bus. The views and
// pointers are valid only during the call.
struct ReceivedRecord {
  std::string_view topic;
  int32_t partition = 0;
  int64_t offset = 0;
  // The consumer group it is delivered to.
  std::string_view group;
  // 1 on first delivery; the transport adds one on each redelivery.
  int attempt = 1;
  // Transports that move envelopes (in-process, fakes) set `envelope`;
  // transports that move wire bytes (Kafka) set `key`, `value` and
  // `headers` instead, and the Bus decodes them (wire.h).
  const Envelope* envelope = nullptr;
  std::string_view key;
  std::string_view value;
  const Headers* headers = nullptr;
};

// The Bus's handler for one subscription. Never throws. Called serially per
// partition, in offset order.
using RecordHandler = std::function<Verdict(const ReceivedRecord&)>;

// What the Bus attaches to a transport.
struct TransportSubscription {
  // Topics to read; not empty, no empty name.
  std::vector<std::string> topics;
  // Consumer group: each group receives every record once; within a group
  // each partition is read by one subscription. Not empty.
  std::string group;
  // kAck: commit past the record. kRetry: deliver the same record again
  // after the delay (attempt + 1), holding back the rest of its partition
  // only.
  RecordHandler handler;
};

// The Message a record stands for: its envelope (decoded from the wire
// bytes when the transport moved bytes) and coordinates. kInvalidArgument
// when the bytes do not decode (DecodeRecord's reason).
absl::StatusOr<Message> DecodeReceivedRecord(const ReceivedRecord& record);

// The same, into `message`, reusing the storage its strings and envelope
// already hold (a consumer that decodes record after record into one Message
// allocates nothing once it has grown). On an error `message` holds the
// record's coordinates and an unspecified envelope.
absl::Status DecodeReceivedRecordInto(const ReceivedRecord& record, Message& message);

// A publish whose record is larger than its destination accepts (Kafka's
// MSG_SIZE_TOO_LARGE, a broker's or topic's size limit) fails with this:
// kInvalidArgument (permanent) carrying a marker IsRecordTooLarge finds.
// Every transport with a size limit reports it so; the dispatcher then cuts a
// dead letter down until it fits (CutDeadLetter, delivery_policy.h).
absl::Status RecordTooLargeError(std::string_view message);
bool IsRecordTooLarge(const absl::Status& status);

// Checks the fields every transport requires: kInvalidArgument naming the
// problem (no topics, an empty topic, an empty group, no handler).
absl::Status ValidateSubscription(const TransportSubscription& subscription);

class Transport {
 public:
  virtual ~Transport() = default;

  // Hands `envelope` to the transport (encoded for the wire as the
  // transport's options say) and returns at once, or blocks while a bounded
  // queue is full as the transport's options say. `done` runs once with the
  // outcome; it may be empty. After Stop(): kFailedPrecondition. A record
  // over the destination's size limit: RecordTooLargeError.
  virtual void Publish(Envelope envelope, PublishCallback done) = 0;
  // Publishes a record exactly as given (key, value, headers) to `topic`; an
  // empty value is written as an empty value, not as a null one. The Bus
  // writes the dead letters of records read as bytes this way, keeping their
  // bytes. Transports that carry envelopes decode it first and fail with
  // kInvalidArgument when it does not decode.
  virtual void PublishRecord(std::string topic, Record record, PublishCallback done) = 0;
  // Attaches a subscription (see TransportSubscription); it starts reading
  // at Start(), or at once when already started. kInvalidArgument from
  // ValidateSubscription; kFailedPrecondition after Stop().
  virtual absl::Status Subscribe(TransportSubscription subscription) = 0;
  // Starts reading. Idempotent.
  virtual absl::Status Start() = 0;
  // Stops reading and publishing: stops fetching, lets running handlers
  // finish until `drain_deadline`, delivers what publishers had accepted,
  // commits, leaves the consumer groups. kDeadlineExceeded when work was
  // abandoned (it is redelivered to the group later). Idempotent.
  virtual absl::Status Stop(absl::Duration drain_deadline) = 0;
  // Waits until every accepted publish has its outcome, up to `timeout`.
  virtual absl::Status Flush(absl::Duration timeout) = 0;
  // The transport's own bound on one publish: every accepted publish gets
  // its outcome (delivered, or failed for good) within this long, and is
  // never delivered after reporting a failure. The relay waits this long
  // (plus a margin) for a batch instead of giving up earlier and publishing
  // again what may still be delivered (relay.h, RelayTimeouts). Kafka:
  // KafkaTransportOptions::delivery_timeout (delivery.timeout.ms).
  // Default: absl::InfiniteDuration(), no bound stated.
  virtual absl::Duration DeliveryTimeout() const { return absl::InfiniteDuration(); }
  // Reports the transport's own metrics (Kafka: consumer lag, rebalances,
  // the producer's queue) to `metrics`, which outlives the transport. The
  // Bus calls it once, from its constructor, when BusOptions::metrics is
  // set; what the Bus measures itself (publishes, handler outcomes) is not
  // repeated here. Default: nothing.
  virtual void ReportMetricsTo(Metrics& metrics) {}
};

}  // namespace herald

#endif  // HERALD_CORE_TRANSPORT_H_
