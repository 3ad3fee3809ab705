// Unit tests: librdkafka's own log and errors reach KafkaTransportOptions::log
// with component "kafka", its levels mapped, and no secret in any record.
// No broker: nothing listens on 127.0.0.1:1, which gives errors to log.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/kafka/kafka_transport.h"
#include "herald/testing/eventually.h"
#include "herald/testing/recording_log_sink.h"
#include "herald/testing/status_matchers.h"

namespace herald::kafka {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::RecordedLog;
using ::herald::testing::RecordingLogSink;

constexpr char kPassword[] = "s3cret-Sasl-Pw";
constexpr char kKeyPassword[] = "s3cret-Key-Pw";
constexpr char kOauth[] = "principal=svc clientSecret=s3cret-Oauth";

KafkaTransportOptions Options(LogSink* log) {
  KafkaTransportOptions options;
  options.brokers = "127.0.0.1:1";
  options.log = log;
  options.properties = {{"security.protocol", "sasl_plaintext"},
                        {"sasl.mechanism", "PLAIN"},
                        {"sasl.username", "svc"},
                        {"sasl.password", kPassword},
                        {"ssl.key.password", kKeyPassword},
                        {"sasl.oauthbearer.config", kOauth},
                        {"debug", "conf,broker,security"},
                        {"reconnect.backoff.ms", "10"}};
  return options;
}

// Every record's message and field values, one string each.
std::vector<std::string> Texts(const std::vector<RecordedLog>& records) {
  std::vector<std::string> out;
  for (const RecordedLog& r : records) {
    std::string text = absl::StrCat(r.component, " ", r.message);
    for (const auto& [key, value] : r.fields) absl::StrAppend(&text, " ", key, "=", value);
    out.push_back(std::move(text));
  }
  return out;
}

TEST(KafkaLog, LibrdkafkaLogAndErrorsGoToTheSinkWithoutSecrets) {
  RecordingLogSink log;
  absl::StatusOr<std::unique_ptr<KafkaTransport>> transport = KafkaTransport::Create(Options(&log));
  ASSERT_THAT(transport, IsOk());
  // The configuration dump (debug=conf) is written while the producer is
  // created; the refused connection follows, through the error callback.
  ASSERT_TRUE(testing::Eventually(
      [&] {
        for (const RecordedLog& r : log.records()) {
          if (r.level == LogLevel::kInfo && r.message.find("Connection refused") != std::string::npos) return true;
        }
        return false;
      },
      absl::Seconds(20)));
  transport->reset();

  const std::vector<RecordedLog> records = log.records();
  bool conf_dump = false, debug = false;
  for (const RecordedLog& r : records) {
    EXPECT_EQ(r.component, "kafka");
    if (r.level == LogLevel::kDebug) debug = true;
    if (r.Field("facility") == "CONF" && r.message.find("sasl.password") != std::string::npos) conf_dump = true;
  }
  EXPECT_TRUE(debug) << "librdkafka's debug lines (syslog level 7) map to kDebug";
  EXPECT_TRUE(conf_dump) << "debug=conf dumps the configuration through the sink";
  for (const std::string& text : Texts(records)) {
    EXPECT_EQ(text.find(kPassword), std::string::npos) << text;
    EXPECT_EQ(text.find(kKeyPassword), std::string::npos) << text;
    EXPECT_EQ(text.find("s3cret-Oauth"), std::string::npos) << text;
  }
}

TEST(KafkaLog, SinkLevelFiltersLibrdkafkaDebugLines) {
  RecordingLogSink log(LogLevel::kInfo);
  absl::StatusOr<std::unique_ptr<KafkaTransport>> transport = KafkaTransport::Create(Options(&log));
  ASSERT_THAT(transport, IsOk());
  ASSERT_TRUE(testing::Eventually([&] { return !log.records().empty(); }, absl::Seconds(20)));
  transport->reset();
  for (const RecordedLog& r : log.records()) EXPECT_GE(r.level, LogLevel::kInfo) << r.message;
}

TEST(KafkaLog, TheErrorCallbackOfABrokerThatDoesNotAnswerIsInfo) {
  // librdkafka retries on its own and the failing call's Status says it, so
  // what its error callback reports is kept (Stats().last_error) and logged
  // at info: the default sink (warnings and errors) does not repeat it, as
  // nothing did before. librdkafka's own log lines keep their level.
  RecordingLogSink log;
  KafkaTransportOptions options = Options(&log);
  options.properties.erase("debug");
  absl::StatusOr<std::unique_ptr<KafkaTransport>> transport = KafkaTransport::Create(options);
  ASSERT_THAT(transport, IsOk());
  ASSERT_TRUE(testing::Eventually([&] { return !(*transport)->Stats().last_error.empty(); }, absl::Seconds(20)));
  transport->reset();
  bool from_callback = false;
  for (const RecordedLog& r : log.records()) {
    if (!r.Field("facility").empty()) continue;  // librdkafka's log line
    if (r.message.find("Connection refused") == std::string::npos) continue;
    from_callback = true;
    EXPECT_EQ(r.level, LogLevel::kInfo) << r.message;
  }
  EXPECT_TRUE(from_callback);
}

}  // namespace
}  // namespace herald::kafka
