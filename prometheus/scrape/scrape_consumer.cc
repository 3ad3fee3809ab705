// scrape_consumer: a consumer service as a user writes one, for the
// Prometheus scrape test (scrape_kafkatest.py): a herald::Bus over the Kafka
// transport reporting to a MetricsRegistry (BusOptions::metrics), one typed
// subscription, and herald::prometheus::MetricsServer serving the registry.
//
//   scrape_consumer BROKERS TOPIC GROUP HOST:PORT
//
// Prints "consumer: metrics on http://HOST:PORT/metrics" once it serves,
// then "handled <order_id>" for each event its handler takes, and runs until
// SIGTERM or SIGINT (then it stops the bus, draining for up to 10 s).
// Exit codes: 0 stopped by a signal, 1 failed, 2 bad arguments.
#include <pthread.h>
#include <signal.h>

#include <cstdint>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "herald/core/bus.h"
#include "herald/core/event.h"
#include "herald/core/metrics.h"
#include "herald/core/status.h"
#include "herald/kafka/kafka_transport.h"
#include "herald/prometheus/metrics_server.h"

namespace {

// What the outbox rows of the test hold: {"order_id": ..., "amount_cents": ...}.
struct OrderPlaced {
  std::string order_id;
  int64_t amount_cents = 0;
  static constexpr std::string_view kType = "order.placed";
  static constexpr std::string_view kTopic = "orders";
  std::string_view key() const { return order_id; }
  static constexpr auto JsonFields() {
    return herald::json::Fields(herald::json::Field("order_id", &OrderPlaced::order_id),
                                herald::json::Field("amount_cents", &OrderPlaced::amount_cents));
  }
};

absl::Status Run(const std::string& brokers, const std::string& topic, const std::string& group,
                 const std::string& address, const sigset_t& stop_signals) {
  // The registry outlives the bus and the server (declared first).
  herald::MetricsRegistry metrics;
  herald::kafka::KafkaTransportOptions options;
  options.brokers = brokers;
  options.client_id = "scrape-consumer";
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::kafka::KafkaTransport> transport,
                          herald::kafka::KafkaTransport::Create(options));
  herald::Bus bus(std::move(transport), {.metrics = &metrics});

  std::mutex out_mu;  // handlers run on one thread per partition
  herald::SubscribeOptions subscription;
  subscription.topics = {topic};
  HERALD_RETURN_IF_ERROR(bus.Subscribe<OrderPlaced>(
      group,
      [&](const OrderPlaced& order) {
        std::lock_guard<std::mutex> lock(out_mu);
        std::cout << "handled " << order.order_id << std::endl;
        return absl::OkStatus();
      },
      subscription));
  HERALD_RETURN_IF_ERROR(bus.Start());

  herald::prometheus::MetricsServerOptions server_options;
  server_options.address = address;
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::prometheus::MetricsServer> server,
                          herald::prometheus::MetricsServer::Start(metrics, server_options));
  {
    std::lock_guard<std::mutex> lock(out_mu);
    std::cout << "consumer: metrics on http://" << address << "/metrics" << std::endl;
  }

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  server->Stop();
  return bus.Stop(absl::Seconds(10));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: scrape_consumer BROKERS TOPIC GROUP HOST:PORT" << std::endl;
    return 2;
  }
  // Blocked before any thread starts, so every thread inherits the mask and
  // only sigwait takes them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  absl::Status status = Run(argv[1], argv[2], argv[3], argv[4], stop_signals);
  if (!status.ok()) {
    std::cerr << "scrape_consumer: " << status << std::endl;
    return 1;
  }
  return 0;
}
