#include "herald/core/transport.h"

#include "absl/strings/cord.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"

namespace herald {

absl::StatusOr<Message> DecodeReceivedRecord(const ReceivedRecord& record) {
  Message message;
  HERALD_RETURN_IF_ERROR(DecodeReceivedRecordInto(record, message));
  return message;
}

absl::Status DecodeReceivedRecordInto(const ReceivedRecord& record, Message& message) {
  message.topic.assign(record.topic);
  message.partition = record.partition;
  message.offset = record.offset;
  message.group.assign(record.group);
  message.attempt = record.attempt;
  if (record.envelope != nullptr) {
    message.envelope = *record.envelope;
    return absl::OkStatus();
  }
  static const Headers kNoHeaders;
  return DecodeRecordInto(record.topic, record.key, record.value,
                          record.headers != nullptr ? *record.headers : kNoHeaders, message.envelope);
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
