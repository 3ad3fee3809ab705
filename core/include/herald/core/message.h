// herald/core/message.h: what a handler receives, and handler types.
//
// A Message is one delivery of an Envelope from a topic partition, with the
// coordinates needed for commits, retries and dead letters. Handlers return
// absl::Status; IsRetryable() (status.h) decides what is retried.
//
//   class OnCustomerCreated : public herald::EventHandler<CustomerEvent> {
//    public:
//     absl::Status Handle(const CustomerEvent& e, const herald::Message& m) override;
//   };
#ifndef HERALD_CORE_MESSAGE_H_
#define HERALD_CORE_MESSAGE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "herald/core/envelope.h"

namespace herald {

struct Message {
  Envelope envelope;
  // Where it was read from.
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  // Consumer group it is delivered to.
  std::string group;
  // 1 on first delivery; incremented by the transport on each redelivery.
  int attempt = 1;
};

// The Bus's answer to a transport about one delivery (transport.h).
struct Verdict {
  enum class Kind {
    kAck,    // done (handled, skipped or dead-lettered): commit past it
    kRetry,  // deliver the same message again after `delay`, attempt + 1
  };
  Kind kind = Kind::kAck;
  absl::Duration delay = absl::ZeroDuration();

  static Verdict Ack() { return {}; }
  static Verdict RetryAfter(absl::Duration delay) { return {Kind::kRetry, delay}; }
  bool is_ack() const { return kind == Kind::kAck; }
  friend bool operator==(const Verdict&, const Verdict&) = default;
};

// A raw handler: what the user's code does with one message. The policy
// (retry, dead letter) comes from the dispatcher; transports never call it.
using Handler = std::function<absl::Status(const Message&)>;

// A typed handler as a class. Implementations must be thread-safe when the
// subscription's topic has several partitions.
template <typename T>
class EventHandler {
 public:
  virtual ~EventHandler() = default;
  virtual absl::Status Handle(const T& event, const Message& message) = 0;
};

// The message being handled on the calling thread, or null outside a handler.
// Used to carry correlation id and trace context into events the handler
// publishes.
const Message* CurrentMessage();

namespace internal {
// Sets CurrentMessage() for the lifetime of the object.
class ScopedCurrentMessage {
 public:
  explicit ScopedCurrentMessage(const Message* message);
  ~ScopedCurrentMessage();
  ScopedCurrentMessage(const ScopedCurrentMessage&) = delete;
  ScopedCurrentMessage& operator=(const ScopedCurrentMessage&) = delete;

 private:
  const Message* previous_;
};
}  // namespace internal

}  // namespace herald

#endif  // HERALD_CORE_MESSAGE_H_
