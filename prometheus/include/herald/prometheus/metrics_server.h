// herald/prometheus/metrics_server.h: serves a MetricsRegistry to Prometheus,
// with the health and readiness endpoints an orchestrator polls.
//
//   herald::MetricsRegistry metrics;
//   herald::Bus bus(std::move(transport), {.metrics = &metrics});
//   herald::prometheus::MetricsServerOptions options;
//   options.address = "127.0.0.1:0";  // a free port, (*server)->port(); default 127.0.0.1:9464
//   options.readiness_checks.push_back(
//       {"bus", [&] { return ready ? absl::OkStatus() : absl::UnavailableError("starting"); }});
//   absl::StatusOr<std::unique_ptr<herald::prometheus::MetricsServer>> server =
//       herald::prometheus::MetricsServer::Start(metrics, options);
//
// Endpoints (HTTP/1.1, GET):
//   /metrics  200, the registry in the Prometheus text format (0.0.4)
//   /healthz  200 "ok" while the process serves at all (liveness)
//   /readyz   200 "ready" when every readiness check returns OK; otherwise
//             503 with one line per failing check: "<name>: <message>"
//   other     404
// The server runs its own threads; it reads the registry and runs the
// checks on them (checks must be thread-safe and quick: a probe times out).
//
// Thread-safety: Start, port and Stop may be called from any thread.
#ifndef HERALD_PROMETHEUS_METRICS_SERVER_H_
#define HERALD_PROMETHEUS_METRICS_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "herald/core/metrics.h"

namespace herald::prometheus {

struct MetricsServerOptions {
  // HOST:PORT to listen on. Port 0 picks a free port (see port()). Use
  // 0.0.0.0 to be scraped from other hosts. Default: "127.0.0.1:9464"
  // (9464 is the port Prometheus' registry lists for OpenTelemetry-style
  // exporters).
  std::string address = "127.0.0.1:9464";
  // Named checks /readyz runs in order; all OK means ready. Default: none
  // (always ready).
  std::vector<std::pair<std::string, std::function<absl::Status()>>> readiness_checks;
};

class MetricsServer {
 public:
  // Listens on options.address and serves until Stop() or destruction.
  // `registry` must outlive the server. kInvalidArgument for an address
  // that is not HOST:PORT; kUnavailable when the address cannot be bound
  // (in use, not local), naming it.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const MetricsRegistry& registry,
                                                              MetricsServerOptions options);
  ~MetricsServer();  // Stop()s
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The port it listens on (the picked one when options.address asked for 0).
  int port() const;
  // Stops listening and waits for requests in progress. Idempotent.
  void Stop();

  class Impl;

 private:
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// HOST and PORT of "HOST:PORT" ("[::1]:9464" for IPv6); kInvalidArgument
// naming the address otherwise. Used by Start and by the CLI's
// --metrics-address.
absl::StatusOr<std::pair<std::string, int>> ParseHostPort(std::string_view address);

}  // namespace herald::prometheus

#endif  // HERALD_PROMETHEUS_METRICS_SERVER_H_
