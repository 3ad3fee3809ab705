#include "stdout_transport.h"

#include <cstdio>

#include "herald/core/wire.h"

namespace herald::tools {

void StdoutTransport::PublishRecord(std::string topic, Record record, PublishCallback done) {
  absl::StatusOr<Envelope> envelope = DecodeRecord(topic, record.key, record.value, record.headers);
  if (!envelope.ok()) {
    if (done) done(envelope.status());
    return;
  }
  envelope->topic = std::move(topic);
  Publish(*std::move(envelope), std::move(done));
}

void StdoutTransport::Publish(Envelope envelope, PublishCallback done) {
  if (!done) done = [](absl::StatusOr<DeliveryReport>) {};
  absl::StatusOr<std::string> line = EncodeJsonEnvelope(envelope);
  if (!line.ok()) {
    done(line.status());
    return;
  }
  int64_t offset;
  {
    MutexLock lock(mu_);
    std::fwrite(line->data(), 1, line->size(), stdout);
    std::fputc('\n', stdout);
    offset = offset_++;
  }
  done(DeliveryReport{envelope.topic, 0, offset});
}

absl::Status StdoutTransport::Flush(absl::Duration) {
  MutexLock lock(mu_);
  std::fflush(stdout);
  return absl::OkStatus();
}

}  // namespace herald::tools
