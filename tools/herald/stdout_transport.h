// A Transport that writes each published event as one JSON envelope line to
// stdout: `herald relay --stdout` uses it to show what a relay would publish,
// and to pipe an outbox into other tools.
#ifndef HERALD_TOOLS_HERALD_STDOUT_TRANSPORT_H_
#define HERALD_TOOLS_HERALD_STDOUT_TRANSPORT_H_

#include "herald/core/transport.h"
#include "herald/core/mutex.h"

namespace herald::tools {

class StdoutTransport final : public Transport {
 public:
  void Publish(Envelope envelope, PublishCallback done) override;
  void PublishRecord(std::string topic, Record record, PublishCallback done) override;
  absl::Status Subscribe(TransportSubscription) override {
    return absl::UnimplementedError("the stdout transport only publishes");
  }
  absl::Status Start() override { return absl::OkStatus(); }
  absl::Status Stop(absl::Duration) override { return absl::OkStatus(); }
  absl::Status Flush(absl::Duration) override;

 private:
  Mutex mu_;
  int64_t offset_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace herald::tools

#endif  // HERALD_TOOLS_HERALD_STDOUT_TRANSPORT_H_
