// A Transport that acknowledges every publish at once and counts them: the
// outbox benchmarks relay through it to measure the store, not a broker.
#ifndef HERALD_BENCH_ACKING_TRANSPORT_H_
#define HERALD_BENCH_ACKING_TRANSPORT_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "herald/core/transport.h"

namespace herald::bench {

class AckingTransport final : public Transport {
 public:
  void Publish(Envelope envelope, PublishCallback done) override {
    int64_t offset = published_.fetch_add(1) + 1;
    if (done) done(DeliveryReport{envelope.topic, 0, offset});
  }
  void PublishRecord(std::string topic, Record, PublishCallback done) override {
    int64_t offset = published_.fetch_add(1) + 1;
    if (done) done(DeliveryReport{std::move(topic), 0, offset});
  }
  absl::Status Subscribe(TransportSubscription) override {
    return absl::UnimplementedError("AckingTransport only publishes");
  }
  absl::Status Start() override { return absl::OkStatus(); }
  absl::Status Stop(absl::Duration) override { return absl::OkStatus(); }
  absl::Status Flush(absl::Duration) override { return absl::OkStatus(); }
  int64_t published() const { return published_.load(); }

 private:
  std::atomic<int64_t> published_{0};
};

}  // namespace herald::bench

#endif  // HERALD_BENCH_ACKING_TRANSPORT_H_
