#include "stdout_bus.h"

#include <cstdio>

#include "herald/core/wire.h"

namespace herald::tools {

void StdoutBus::PublishAsync(Envelope envelope, PublishCallback done) {
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

absl::Status StdoutBus::Flush(absl::Duration) {
  MutexLock lock(mu_);
  std::fflush(stdout);
  return absl::OkStatus();
}

}  // namespace herald::tools
