// edge: one process, one SQLite file, forwarding to Kafka when it can.
//
// Sensor readings are written to a local SQLite outbox in the same
// transaction as the device's own state, so nothing is lost while the
// network is down. The relay forwards them to Kafka in per-device order;
// while the broker is unreachable the rows stay pending and are retried with
// backoff, and the outbox lag (age of the oldest pending row) shows how far
// behind the device is.
//
// Configuration: HERALD_KAFKA_BROKERS or HERALD_TEST_KAFKA_BROKERS; the
// database file is created in a temporary directory.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <string>

#include "absl/time/clock.h"
#include "common/example_env.h"
#include "herald/core/relay.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/kafka/kafka_transport.h"
#include "herald/sqlite/sqlite_outbox_store.h"

namespace {

struct ReadingTaken {
  std::string device_id;
  int64_t sequence = 0;
  double celsius = 0;
  static constexpr std::string_view kType = "sensor.reading_taken";
  static constexpr std::string_view kTopic = "sensor-readings";
  std::string_view key() const { return device_id; }
  static constexpr auto JsonFields() {
    return herald::json::Fields(herald::json::Field("device_id", &ReadingTaken::device_id),
                                herald::json::Field("sequence", &ReadingTaken::sequence),
                                herald::json::Field("celsius", &ReadingTaken::celsius));
  }
};

absl::Status Run(const std::string& path) {
  HERALD_ASSIGN_OR_RETURN(std::string brokers,
                          example::FromEnv({"HERALD_KAFKA_BROKERS", "HERALD_TEST_KAFKA_BROKERS"}, "Kafka"));
  std::string topic = herald::StrCat("sensor-readings-", getpid());
  HERALD_ASSIGN_OR_RETURN(auto store, herald::sqlite::SqliteOutboxStore::Open({.path = path}));

  // Readings are taken before the uplink is configured: they wait in the outbox.
  constexpr int kDevices = 3, kReadings = 20;
  for (int i = 0; i < kReadings; ++i) {
    HERALD_ASSIGN_OR_RETURN(auto tx, store->BeginTransaction());
    for (int d = 0; d < kDevices; ++d) {
      ReadingTaken r{herald::StrCat("device-", d), i, 20.0 + d + i * 0.1};
      HERALD_RETURN_IF_ERROR(store->Append(*tx, r, {.source = "edge-gateway", .topic = topic}));
    }
    HERALD_RETURN_IF_ERROR(tx->Commit());
  }
  HERALD_ASSIGN_OR_RETURN(herald::OutboxStats before, store->Stats());
  std::cout << "offline: " << before.pending << " readings pending, lag "
            << absl::FormatDuration(before.oldest_pending_age) << std::endl;

  herald::kafka::KafkaTransportOptions options;
  options.brokers = brokers;
  options.client_id = "edge-gateway";
  HERALD_ASSIGN_OR_RETURN(auto uplink_transport, herald::kafka::KafkaTransport::Create(options));
  herald::Bus uplink(std::move(uplink_transport));
  herald::OutboxRelay relay(*store, uplink);
  HERALD_RETURN_IF_ERROR(relay.Start());

  // The cloud side reads them back, in order per device.
  HERALD_ASSIGN_OR_RETURN(auto cloud_transport, herald::kafka::KafkaTransport::Create(options));
  herald::Bus cloud(std::move(cloud_transport));
  std::mutex mu;
  std::map<std::string, int64_t> next;
  std::atomic<int> received{0}, out_of_order{0};
  herald::SubscribeOptions sub;
  sub.topics = {topic};
  HERALD_RETURN_IF_ERROR(cloud.Subscribe<ReadingTaken>(
      "cloud-ingest",
      [&](const ReadingTaken& r) {
        std::lock_guard<std::mutex> lock(mu);
        if (r.sequence != next[r.device_id]) out_of_order.fetch_add(1);
        next[r.device_id] = r.sequence + 1;
        received.fetch_add(1);
        return absl::OkStatus();
      },
      sub));
  HERALD_RETURN_IF_ERROR(cloud.Start());
  absl::Time deadline = absl::Now() + absl::Seconds(90);
  while (received.load() < kDevices * kReadings && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
  relay.Stop();
  HERALD_ASSIGN_OR_RETURN(herald::OutboxStats after, store->Stats());
  std::cout << "online: relayed " << relay.Stats().published << ", cloud received " << received.load()
            << ", out of order " << out_of_order.load() << ", pending now " << after.pending << std::endl;
  HERALD_RETURN_IF_ERROR(cloud.Stop(absl::Seconds(10)));
  HERALD_RETURN_IF_ERROR(uplink.Stop(absl::Seconds(10)));
  if (received.load() != kDevices * kReadings || out_of_order.load() != 0 || after.pending != 0) {
    return absl::InternalError("edge: not every reading arrived in order");
  }
  return absl::OkStatus();
}

}  // namespace

int main() {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("herald-edge-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  absl::Status status = Run((dir / "edge.db").string());
  std::filesystem::remove_all(dir);
  if (!status.ok()) {
    std::cerr << "edge example failed: " << status << std::endl;
    return 1;
  }
  std::cout << "edge example: OK" << std::endl;
  return 0;
}
