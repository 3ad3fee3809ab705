#include "herald/core/transport.h"

#include "absl/strings/cord.h"
#include "herald/core/strings.h"

namespace herald {

absl::StatusOr<Message> DecodeReceivedRecord(const ReceivedRecord& record) {
  Message message;
  message.topic = std::string(record.topic);
  message.partition = record.partition;
  message.offset = record.offset;
  message.group = std::string(record.group);
  message.attempt = record.attempt;
  if (record.envelope != nullptr) {
    message.envelope = *record.envelope;
    return message;
  }
  static const Headers kNoHeaders;
  absl::StatusOr<Envelope> envelope =
      DecodeRecord(record.topic, record.key, record.value, record.headers != nullptr ? *record.headers : kNoHeaders);
  if (!envelope.ok()) return envelope.status();
  message.envelope = *std::move(envelope);
  return message;
}

namespace {
// The payload key that marks RecordTooLargeError.
constexpr char kRecordTooLargeUrl[] = "herald/record-too-large";
}  // namespace

absl::Status RecordTooLargeError(std::string_view message) {
  absl::Status status = absl::InvalidArgumentError(ToAbsl(message));
  status.SetPayload(kRecordTooLargeUrl, absl::Cord("1"));
  return status;
}

bool IsRecordTooLarge(const absl::Status& status) {
  return !status.ok() && status.GetPayload(kRecordTooLargeUrl).has_value();
}

absl::Status ValidateSubscription(const TransportSubscription& subscription) {
  if (subscription.topics.empty()) return absl::InvalidArgumentError("subscription has no topics");
  for (const std::string& topic : subscription.topics) {
    if (topic.empty()) return absl::InvalidArgumentError("subscription has an empty topic name");
  }
  if (subscription.group.empty()) return absl::InvalidArgumentError("subscription has an empty consumer group");
  if (!subscription.handler) return absl::InvalidArgumentError("subscription has no handler");
  return absl::OkStatus();
}

}  // namespace herald
