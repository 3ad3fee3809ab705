#include "herald/prometheus/metrics_server.h"

#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/status_matchers.h"
#include "httplib.h"

namespace herald::prometheus {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(ParseHostPort, ReadsHostAndPortAndRefusesTheRest) {
  EXPECT_THAT(ParseHostPort("127.0.0.1:9464"), ::herald::testing::IsOkAndHolds(Pair("127.0.0.1", 9464)));
  EXPECT_THAT(ParseHostPort("0.0.0.0:0"), ::herald::testing::IsOkAndHolds(Pair("0.0.0.0", 0)));
  EXPECT_THAT(ParseHostPort("[::1]:80"), ::herald::testing::IsOkAndHolds(Pair("::1", 80)));
  for (const char* bad : {"", "9464", ":9464", "host:", "host:http", "host:70000", "::1:80", "[]:80", "host:-1"}) {
    EXPECT_THAT(ParseHostPort(bad), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("HOST:PORT"))) << bad;
  }
}

TEST(MetricsServer, ServesMetricsHealthAndReadiness) {
  std::unique_ptr<Transport> transport = std::make_unique<herald::testing::FakeTransport>();
  std::atomic<bool> ready{false};
  herald::MetricsRegistry metrics;
  herald::Bus bus(std::move(transport), {.metrics = &metrics});
  herald::prometheus::MetricsServerOptions options;
  options.address = "127.0.0.1:0";  // a free port, (*server)->port(); default 127.0.0.1:9464
  options.readiness_checks.push_back(
      {"bus", [&] { return ready ? absl::OkStatus() : absl::UnavailableError("starting"); }});
  absl::StatusOr<std::unique_ptr<herald::prometheus::MetricsServer>> server =
      herald::prometheus::MetricsServer::Start(metrics, options);
  ASSERT_THAT(server, IsOk());
  ASSERT_GT((*server)->port(), 0);
  ASSERT_THAT(bus.PublishRaw("orders", "order.placed", "{}"), IsOk());

  httplib::Client client("127.0.0.1", (*server)->port());
  httplib::Result page = client.Get("/metrics");
  ASSERT_TRUE(page) << httplib::to_string(page.error());
  EXPECT_EQ(page->status, 200);
  EXPECT_THAT(page->get_header_value("Content-Type"), HasSubstr("version=0.0.4"));
  EXPECT_THAT(page->body, HasSubstr("herald_published_total{topic=\"orders\"} 1\n"));
  EXPECT_EQ(page->body, metrics.ExportPrometheusText());

  httplib::Result health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  httplib::Result not_ready = client.Get("/readyz");
  ASSERT_TRUE(not_ready);
  EXPECT_EQ(not_ready->status, 503);
  EXPECT_EQ(not_ready->body, "bus: UNAVAILABLE: starting\n");
  ready = true;
  httplib::Result now_ready = client.Get("/readyz");
  ASSERT_TRUE(now_ready);
  EXPECT_EQ(now_ready->status, 200);
  httplib::Result missing = client.Get("/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);

  (*server)->Stop();
  (*server)->Stop();  // idempotent
  EXPECT_FALSE(client.Get("/healthz")) << "nothing listens after Stop";
}

TEST(MetricsServer, AnAddressInUseIsUnavailableNamingIt) {
  herald::MetricsRegistry metrics;
  MetricsServerOptions options;
  options.address = "127.0.0.1:0";
  absl::StatusOr<std::unique_ptr<MetricsServer>> first = MetricsServer::Start(metrics, options);
  ASSERT_THAT(first, IsOk());
  options.address = herald::StrCat("127.0.0.1:", (*first)->port());
  EXPECT_THAT(MetricsServer::Start(metrics, options),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr(options.address)));
  options.address = "nonsense";
  EXPECT_THAT(MetricsServer::Start(metrics, options), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace herald::prometheus
