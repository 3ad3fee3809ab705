// The store logs through PostgresOptions::log, and neither its log nor its
// errors ever show a password (label postgres: the notices need the test
// server; the failing connections go to a port where nothing listens).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/postgres/postgres_outbox_store.h"
#include "herald/testing/recording_log_sink.h"
#include "postgres_test_support.h"

namespace herald::postgres {
namespace {

using ::herald::testing::RecordedLog;
using ::herald::testing::RecordingLogSink;
using ::testing::HasSubstr;
using ::testing::Not;

// A port on loopback where nothing listens (bound, never listened on).
int DeadPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  socklen_t size = sizeof(address);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size), 0);
  return ntohs(address.sin_port);  // fd stays open: nobody else takes the port
}

std::string AllText(const std::vector<RecordedLog>& records) {
  std::string text;
  for (const RecordedLog& r : records) {
    absl::StrAppend(&text, r.component, " ", r.message);
    for (const auto& [k, v] : r.fields) absl::StrAppend(&text, " ", k, "=", v);
    text += "\n";
  }
  return text;
}

TEST(PostgresLog, AConnectionThatFailsIsLoggedAndReturnedWithoutItsSecrets) {
  const int port = DeadPort();
  const std::vector<std::string> dsns = {
      StrCat("host=127.0.0.1 port=", port, " user=svc password='Pw One' sslpassword=SslPwOne connect_timeout=2"),
      StrCat("postgresql://svc:Pw%2DTwo@127.0.0.1:", port, "/db?sslpassword=SslPw%2DTwo&connect_timeout=2"),
  };
  for (const std::string& dsn : dsns) {
    RecordingLogSink log;
    PostgresOptions options;
    options.conninfo = dsn;
    options.log = &log;
    absl::StatusOr<std::unique_ptr<PostgresOutboxStore>> store = PostgresOutboxStore::Open(options);
    ASSERT_FALSE(store.ok());
    const std::vector<RecordedLog> failed = log.Find("postgres", "connection failed");
    ASSERT_FALSE(failed.empty()) << dsn;
    EXPECT_EQ(failed[0].level, LogLevel::kWarning);
    EXPECT_THAT(failed[0].Field("error"), HasSubstr("Connection refused"));
    const std::string everything = AllText(log.records()) + std::string(store.status().message());
    for (const char* secret : {"Pw One", "SslPwOne", "Pw-Two", "Pw%2DTwo", "SslPw-Two", "SslPw%2DTwo"}) {
      EXPECT_THAT(everything, Not(HasSubstr(secret))) << dsn;
    }
  }
}

TEST(PostgresLog, ServerNoticesAreDebugRecords) {
  const std::string dsn = testing::TestDsn();
  ASSERT_FALSE(dsn.empty()) << testing::kNoServerMessage;
  RecordingLogSink log;
  PostgresOptions options;
  options.conninfo = dsn;
  options.schema = testing::UniqueSchema("log");
  options.log = &log;
  // Creating the schema sends NOTICEs ("... does not exist, skipping").
  ASSERT_TRUE(PostgresOutboxStore::Open(options).ok());
  const std::vector<RecordedLog> notices = log.Find("postgres", "server notice");
  ASSERT_FALSE(notices.empty()) << AllText(log.records());
  EXPECT_EQ(notices[0].level, LogLevel::kDebug);
  EXPECT_THAT(notices[0].Field("notice"), HasSubstr("NOTICE:"));
  for (const RecordedLog& r : log.records()) EXPECT_NE(r.level, LogLevel::kWarning) << r.message;
}

}  // namespace
}  // namespace herald::postgres
