#include "herald/core/log.h"

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/core/relay.h"
#include "herald/testing/fake_clock.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/in_memory_outbox_store.h"
#include "herald/testing/recording_log_sink.h"
#include "herald/testing/status_matchers.h"
#include "rapidjson/document.h"

namespace herald {
namespace {

LogRecord Record(LogLevel level, std::string_view component, std::string_view message, const LogFields& fields) {
  return LogRecord{absl::FromUnixMillis(1764615300123), level, component, message, &fields};
}

// What a StreamLogSink wrote to a temporary file.
class SinkFile {
 public:
  SinkFile() : file_(std::tmpfile()) {}
  ~SinkFile() { std::fclose(file_); }
  std::FILE* get() { return file_; }
  std::string Read() {
    std::fflush(file_);
    std::rewind(file_);
    std::string out;
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof(buffer), file_)) > 0) out.append(buffer, n);
    return out;
  }

 private:
  std::FILE* file_;
};

TEST(LogLevel, NamesRoundTrip) {
  for (LogLevel level : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarning, LogLevel::kError}) {
    EXPECT_EQ(ParseLogLevel(LogLevelName(level)), level);
  }
  EXPECT_EQ(ParseLogLevel("WARN"), LogLevel::kWarning);
  EXPECT_EQ(ParseLogLevel("verbose"), std::nullopt);
  EXPECT_EQ(ParseLogLevel(""), std::nullopt);
}

TEST(StreamLogSink, TextLineHasTimeLevelComponentMessageAndFields) {
  const LogFields fields = {{"topic", "orders"}, {"partition", "3"}};
  EXPECT_EQ(StreamLogSink::Format(Record(LogLevel::kWarning, "relay", "row parked", fields), LogFormat::kText),
            "2025-12-01T18:55:00.123Z WARN relay: row parked topic=orders partition=3\n");
}

TEST(StreamLogSink, TextQuotesHostileFieldsAndKeepsOneLine) {
  const LogFields fields = {{"error", "a \"b\"\nc=d"}, {"empty", ""}};
  const std::string line = StreamLogSink::Format(
      Record(LogLevel::kError, "postgres", "connection lost\nreconnecting", fields), LogFormat::kText);
  EXPECT_EQ(line,
            "2025-12-01T18:55:00.123Z ERROR postgres: connection lost reconnecting error=\"a \\\"b\\\"\\nc=d\" "
            "empty=\"\"\n");
}

TEST(StreamLogSink, JsonLinesParseBackWithHostileStrings) {
  static constexpr char kHostile[] = "quote\" back\\slash \n newline \t tab \x01 ctl \xc3\xa9 {}[],:";
  const std::string hostile(kHostile, sizeof(kHostile) - 1);
  const LogFields fields = {{"topic", hostile}, {hostile, "key too"}, {"message", "shadow"}, {"level", "x"}};
  const std::string line = StreamLogSink::Format(Record(LogLevel::kDebug, "kafka", hostile, fields), LogFormat::kJson);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one record, one line";
  rapidjson::Document doc;
  doc.Parse(line.data(), line.size() - 1);
  ASSERT_FALSE(doc.HasParseError()) << line;
  EXPECT_STREQ(doc["time"].GetString(), "2025-12-01T18:55:00.123Z");
  EXPECT_STREQ(doc["level"].GetString(), "debug");
  EXPECT_STREQ(doc["component"].GetString(), "kafka");
  EXPECT_EQ(std::string(doc["message"].GetString(), doc["message"].GetStringLength()), hostile);
  EXPECT_EQ(std::string(doc["topic"].GetString(), doc["topic"].GetStringLength()), hostile);
  EXPECT_STREQ(doc[rapidjson::Value(hostile.data(), static_cast<rapidjson::SizeType>(hostile.size()))].GetString(),
               "key too");
  EXPECT_STREQ(doc["field.message"].GetString(), "shadow");
  EXPECT_STREQ(doc["field.level"].GetString(), "x");
}

TEST(StreamLogSink, DropsRecordsBelowMinLevel) {
  SinkFile file;
  StreamLogSink sink(file.get(), {.format = LogFormat::kText, .min_level = LogLevel::kWarning});
  EXPECT_FALSE(sink.Enabled(LogLevel::kDebug));
  EXPECT_FALSE(sink.Enabled(LogLevel::kInfo));
  EXPECT_TRUE(sink.Enabled(LogLevel::kWarning));
  EXPECT_TRUE(sink.Enabled(LogLevel::kError));
  Log(sink, LogLevel::kInfo, "relay", "became leader");
  Log(sink, LogLevel::kDebug, "relay", "published");
  Log(sink, LogLevel::kError, "relay", "publish failed", {{"id", "42"}});
  const std::string text = file.Read();
  EXPECT_EQ(text.find("became leader"), std::string::npos);
  EXPECT_EQ(text.find("published"), std::string::npos);
  EXPECT_NE(text.find("ERROR relay: publish failed id=42\n"), std::string::npos) << text;
}

TEST(StreamLogSink, ConcurrentWritersNeverMixLines) {
  SinkFile file;
  StreamLogSink sink(file.get(), {.format = LogFormat::kJson, .min_level = LogLevel::kDebug});
  constexpr int kThreads = 4, kRecords = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&sink, t] {
      for (int i = 0; i < kRecords; ++i) {
        Log(sink, LogLevel::kDebug, "bus", std::string(100, static_cast<char>('a' + t)), {{"i", std::to_string(i)}});
      }
    });
  }
  for (auto& thread : threads) thread.join();
  int lines = 0;
  for (absl::string_view line : absl::StrSplit(file.Read(), '\n', absl::SkipEmpty())) {
    rapidjson::Document doc;
    doc.Parse(line.data(), line.size());
    ASSERT_FALSE(doc.HasParseError()) << line;
    ++lines;
  }
  EXPECT_EQ(lines, kThreads * kRecords);
}

TEST(DefaultLogSink, WritesWarningsAndErrorsOnly) {
  LogSink& sink = LogSinkOrDefault(nullptr);
  EXPECT_EQ(&sink, &DefaultLogSink());
  EXPECT_FALSE(sink.Enabled(LogLevel::kInfo));
  EXPECT_TRUE(sink.Enabled(LogLevel::kWarning));
  ::testing::internal::CaptureStderr();
  Log(sink, LogLevel::kInfo, "relay", "not shown");
  Log(sink, LogLevel::kWarning, "relay", "shown", {{"k", "v"}});
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.find("not shown"), std::string::npos);
  EXPECT_NE(err.find("WARN relay: shown k=v\n"), std::string::npos) << err;
}

// The examples of log.h and recording_log_sink.h.
TEST(LogHeaderExamples, OneSinkForTheBusAndTheRelay) {
  using ::herald::testing::IsOk;
  using ::herald::testing::IsOkAndHolds;
  herald::testing::FakeClock clock;
  herald::testing::InMemoryOutboxStore store(clock);
  {
    auto transport = std::make_unique<herald::testing::FakeTransport>();
    herald::StreamLogSink log(stderr, {.format = herald::LogFormat::kJson, .min_level = herald::LogLevel::kInfo});
    herald::Bus bus(std::move(transport), {.log = &log});
    herald::OutboxRelay relay(store, bus, {.log = &log});
    EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(0));
  }
  auto tx = store.Begin().value();
  Envelope e;
  e.type = "test.happened";
  e.topic = "log-example";
  e.payload = "{}";
  ASSERT_THAT(store.Append(*tx, e), IsOk());
  ASSERT_THAT(tx->Commit(), IsOk());
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  herald::testing::RecordingLogSink log;
  herald::OutboxRelay relay(store, bus, {.log = &log});
  EXPECT_THAT(relay.RunOnce(), IsOkAndHolds(1));
  EXPECT_FALSE(log.Find("relay", "batch relayed").empty());
}

}  // namespace
}  // namespace herald
