#include "herald/prometheus/metrics_server.h"

#include <sys/socket.h>

#include <chrono>
#include <thread>

#include "absl/strings/numbers.h"
#include "herald/core/mutex.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "httplib.h"

namespace herald::prometheus {

absl::StatusOr<std::pair<std::string, int>> ParseHostPort(std::string_view address) {
  const size_t colon = address.rfind(':');
  auto invalid = [&] {
    return absl::InvalidArgumentError(
        herald::StrCat("metrics address \"", address, "\" is not HOST:PORT (e.g. 127.0.0.1:9464, [::1]:9464)"));
  };
  if (colon == std::string_view::npos || colon == 0) return invalid();
  std::string_view host = address.substr(0, colon);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return invalid();
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return invalid();  // IPv6 needs brackets
  }
  int port = 0;
  if (!absl::SimpleAtoi(ToAbsl(address.substr(colon + 1)), &port) || port < 0 || port > 65535) return invalid();
  return std::make_pair(std::string(host), port);
}

class MetricsServer::Impl {
 public:
  Impl(const MetricsRegistry& registry, MetricsServerOptions options)
      : registry_(registry), options_(std::move(options)) {
    // SO_REUSEADDR only: httplib's default also sets SO_REUSEPORT, which
    // would let a second server bind a port already in use.
    server_.set_socket_options([](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    server_.Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
      response.set_content(registry_.ExportPrometheusText(), "text/plain; version=0.0.4; charset=utf-8");
    });
    server_.Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
      response.set_content("ok\n", "text/plain; charset=utf-8");
    });
    server_.Get("/readyz", [this](const httplib::Request&, httplib::Response& response) {
      std::string failures;
      for (const auto& [name, check] : options_.readiness_checks) {
        absl::Status status = check();
        if (!status.ok()) herald::StrAppend(&failures, name, ": ", status.ToString(), "\n");
      }
      if (failures.empty()) {
        response.set_content("ready\n", "text/plain; charset=utf-8");
      } else {
        response.status = 503;
        response.set_content(failures, "text/plain; charset=utf-8");
      }
    });
  }

  absl::Status Listen() {
    HERALD_ASSIGN_OR_RETURN(auto host_port, ParseHostPort(options_.address));
    const auto& [host, port] = host_port;
    int bound = port == 0 ? server_.bind_to_any_port(host) : (server_.bind_to_port(host, port) ? port : -1);
    if (bound < 0) {
      return absl::UnavailableError(herald::StrCat("metrics server: cannot listen on ", options_.address,
                                                   " (in use, or not an address of this host)"));
    }
    port_ = bound;
    // The socket listens from bind on: connections wait in its backlog until
    // the thread accepts them.
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // Stop() can end the accept loop only once it runs.
    for (int i = 0; i < 5000 && !server_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (!server_.is_running()) {
      thread_.join();
      return absl::InternalError(
          herald::StrCat("metrics server: the listener on ", options_.address, " did not start"));
    }
    return absl::OkStatus();
  }

  void Stop() {
    MutexLock lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  int port() const { return port_; }

 private:
  const MetricsRegistry& registry_;
  const MetricsServerOptions options_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  Mutex stop_mu_;
  bool stopped_ ABSL_GUARDED_BY(stop_mu_) = false;
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const MetricsRegistry& registry,
                                                                    MetricsServerOptions options) {
  auto impl = std::make_unique<Impl>(registry, std::move(options));
  HERALD_RETURN_IF_ERROR(impl->Listen());
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() { Stop(); }

int MetricsServer::port() const { return impl_->port(); }

void MetricsServer::Stop() { impl_->Stop(); }

}  // namespace herald::prometheus
