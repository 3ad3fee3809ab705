// Publishes one typed event on the in-process bus of an installed herald and
// checks that a typed handler received it.
#include <atomic>
#include <iostream>
#include <string>

#include <memory>

#include "herald/core/bus.h"
#include "herald/inmemory/inmemory_transport.h"

struct Ping {
  std::string id;
  static constexpr std::string_view kType = "ping.sent";
  static constexpr std::string_view kTopic = "pings";
  std::string_view key() const { return id; }
  static constexpr auto JsonFields() { return herald::json::Fields(herald::json::Field("id", &Ping::id)); }
};

int main() {
  herald::Bus bus(std::make_unique<herald::inmemory::InMemoryTransport>());
  std::atomic<int> received{0};
  absl::Status s = bus.Subscribe<Ping>("consumer", [&](const Ping& p) {
    if (p.id == "p-1") received.fetch_add(1);
    return absl::OkStatus();
  });
  if (!s.ok() || !bus.Start().ok() || !bus.Publish(Ping{"p-1"}).ok()) {
    std::cerr << "install consumer: setup failed: " << s << "\n";
    return 1;
  }
  for (int i = 0; i < 500 && received.load() == 0; ++i) absl::SleepFor(absl::Milliseconds(10));
  (void)bus.Stop(absl::Seconds(5));
  if (received.load() != 1) {
    std::cerr << "install consumer: handler did not receive the event\n";
    return 1;
  }
  std::cout << "install consumer: find_package(herald) works, event received\n";
  return 0;
}
