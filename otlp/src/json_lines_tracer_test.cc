#include "herald/otlp/json_lines_tracer.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/core/relay.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/testing/fake_clock.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/in_memory_outbox_store.h"
#include "herald/testing/recording_handler.h"
#include "herald/testing/sample_events.h"
#include "herald/testing/status_matchers.h"
#include "rapidjson/document.h"

namespace herald::otlp {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;

class JsonLinesTracerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           herald::StrCat("json_lines_tracer_test_", getpid(), "_",
                          ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path = (dir_ / "spans.jsonl").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::vector<std::string> Lines() const {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  std::string path;

 private:
  std::filesystem::path dir_;
};

// The one span of an OTLP JSON line, checked for the envelope around it.
const rapidjson::Value& OnlySpan(const rapidjson::Document& d) {
  EXPECT_TRUE(d.IsObject());
  const rapidjson::Value& rs = d["resourceSpans"];
  EXPECT_EQ(rs.Size(), 1u);
  const rapidjson::Value& ss = rs[0]["scopeSpans"];
  EXPECT_EQ(ss.Size(), 1u);
  EXPECT_STREQ(ss[0]["scope"]["name"].GetString(), "herald");
  EXPECT_EQ(ss[0]["spans"].Size(), 1u);
  return ss[0]["spans"][0];
}

// key -> the AnyValue object of an attributes array.
std::map<std::string, const rapidjson::Value*> AttributeMap(const rapidjson::Value& attributes) {
  std::map<std::string, const rapidjson::Value*> out;
  for (const rapidjson::Value& a : attributes.GetArray()) {
    EXPECT_EQ(a.MemberCount(), 2u);
    EXPECT_EQ(a["value"].MemberCount(), 1u) << "one of stringValue, intValue, boolValue, doubleValue";
    out[a["key"].GetString()] = &a["value"];
  }
  return out;
}

bool IsLowerHex(std::string_view s, size_t length) {
  return s.size() == length && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

TEST_F(JsonLinesTracerTest, WritesEachFinishedSpanAsOneOtlpJsonLine) {
  absl::StatusOr<std::unique_ptr<JsonLinesTracer>> tracer = JsonLinesTracer::Open(
      {.path = path, .service_name = "orders", .resource_attributes = {{"service.version", std::string("1.2.3")}}});
  ASSERT_THAT(tracer, IsOk());
  const TraceContext parent = *ParseTraceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  const absl::Time before = absl::Now();
  std::unique_ptr<Span> span =
      (*tracer)->StartSpan({.name = "process orders",
                            .kind = SpanKind::kConsumer,
                            .parent = parent,
                            .attributes = {{"messaging.destination.name", std::string("orders")},
                                           {"herald.attempt", int64_t{2}},
                                           {"herald.redelivered", true},
                                           {"herald.delay_seconds", 0.25}}});
  ASSERT_NE(span, nullptr);
  EXPECT_EQ(span->context().trace_id, parent.trace_id) << "a child stays in its parent's trace";
  EXPECT_NE(span->context().span_id, parent.span_id);
  span->SetAttribute("herald.outcome", std::string("retry"));
  span->SetAttribute("herald.attempt", int64_t{3});  // replaces
  const std::string span_id = SpanIdHex(span->context());
  EXPECT_THAT((*tracer)->spans_written(), 0) << "written at End";
  span->End(absl::UnavailableError("db down"));
  const absl::Time after = absl::Now();
  EXPECT_EQ((*tracer)->spans_written(), 1);

  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  rapidjson::Document d;
  ASSERT_FALSE(d.Parse(lines[0].c_str()).HasParseError()) << lines[0];
  const rapidjson::Value& resource = d["resourceSpans"][0]["resource"];
  auto resource_attributes = AttributeMap(resource["attributes"]);
  EXPECT_STREQ((*resource_attributes["service.name"])["stringValue"].GetString(), "orders");
  EXPECT_STREQ((*resource_attributes["service.version"])["stringValue"].GetString(), "1.2.3");

  const rapidjson::Value& s = OnlySpan(d);
  EXPECT_STREQ(s["traceId"].GetString(), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_STREQ(s["parentSpanId"].GetString(), "b7ad6b7169203331");
  EXPECT_EQ(s["spanId"].GetString(), span_id);
  EXPECT_TRUE(IsLowerHex(s["spanId"].GetString(), 16));
  EXPECT_STREQ(s["name"].GetString(), "process orders");
  EXPECT_EQ(s["kind"].GetInt(), 5) << "SPAN_KIND_CONSUMER";
  EXPECT_EQ(s["flags"].GetUint(), 1u);
  ASSERT_TRUE(s["startTimeUnixNano"].IsString()) << "fixed64 is a string in the JSON mapping";
  ASSERT_TRUE(s["endTimeUnixNano"].IsString());
  const int64_t start = std::stoll(s["startTimeUnixNano"].GetString());
  const int64_t end = std::stoll(s["endTimeUnixNano"].GetString());
  EXPECT_LE(absl::ToUnixNanos(before), start);
  EXPECT_LE(start, end);
  EXPECT_LE(end, absl::ToUnixNanos(after));
  auto attributes = AttributeMap(s["attributes"]);
  EXPECT_STREQ((*attributes["messaging.destination.name"])["stringValue"].GetString(), "orders");
  EXPECT_STREQ((*attributes["herald.attempt"])["intValue"].GetString(), "3") << "int64 is a string";
  EXPECT_TRUE((*attributes["herald.redelivered"])["boolValue"].GetBool());
  EXPECT_DOUBLE_EQ((*attributes["herald.delay_seconds"])["doubleValue"].GetDouble(), 0.25);
  EXPECT_STREQ((*attributes["herald.outcome"])["stringValue"].GetString(), "retry");
  EXPECT_STREQ((*attributes["error.type"])["stringValue"].GetString(), "UNAVAILABLE");
  EXPECT_EQ(s["status"]["code"].GetInt(), 2) << "STATUS_CODE_ERROR";
  EXPECT_STREQ(s["status"]["message"].GetString(), "UNAVAILABLE: db down");
}

TEST_F(JsonLinesTracerTest, ARootSpanStartsASampledTraceWithFreshIdsAndAnUnsetStatus) {
  auto tracer = JsonLinesTracer::Open({.path = path});
  ASSERT_THAT(tracer, IsOk());
  std::set<std::string> trace_ids, span_ids;
  for (int i = 0; i < 100; ++i) {
    std::unique_ptr<Span> span = (*tracer)->StartSpan({.name = "send orders", .kind = SpanKind::kProducer});
    EXPECT_TRUE(span->context().valid());
    EXPECT_TRUE(span->context().sampled());
    trace_ids.insert(TraceIdHex(span->context()));
    span_ids.insert(SpanIdHex(span->context()));
    span->End(absl::OkStatus());
  }
  EXPECT_EQ(trace_ids.size(), 100u);
  EXPECT_EQ(span_ids.size(), 100u);
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 100u);
  rapidjson::Document d;
  ASSERT_FALSE(d.Parse(lines[0].c_str()).HasParseError());
  const rapidjson::Value& s = OnlySpan(d);
  EXPECT_FALSE(s.HasMember("parentSpanId"));
  EXPECT_EQ(s["kind"].GetInt(), 4) << "SPAN_KIND_PRODUCER";
  EXPECT_EQ(s["status"].MemberCount(), 0u) << "OK: STATUS_CODE_UNSET, as instrumentation leaves it";
  EXPECT_TRUE(IsLowerHex(s["traceId"].GetString(), 32));
  auto resource_attributes = AttributeMap(d["resourceSpans"][0]["resource"]["attributes"]);
  EXPECT_STREQ((*resource_attributes["service.name"])["stringValue"].GetString(), "herald");
}

TEST_F(JsonLinesTracerTest, HostileTextAndNumbersStayValidJson) {
  auto tracer = JsonLinesTracer::Open({.path = path});
  ASSERT_THAT(tracer, IsOk());
  const std::string hostile = std::string("quote\" backslash\\ newline\n nul") + '\0' + " bad utf8 \xff\xfe \xc3( end";
  std::unique_ptr<Span> span = (*tracer)->StartSpan(
      {.name = hostile,
       .attributes = {{hostile, hostile}, {"nan", std::nan("")}, {"inf", -std::numeric_limits<double>::infinity()}}});
  span->End(absl::InternalError(hostile));
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u) << "a newline in the text is escaped, not written";
  rapidjson::Document d;
  ASSERT_FALSE(d.Parse<rapidjson::kParseValidateEncodingFlag>(lines[0].c_str()).HasParseError()) << lines[0];
  const rapidjson::Value& s = OnlySpan(d);
  const std::string name(s["name"].GetString(), s["name"].GetStringLength());
  EXPECT_EQ(name, std::string("quote\" backslash\\ newline\n nul") + '\0' +
                      " bad utf8 \xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd( end")
      << "each bad byte is U+FFFD, the rest kept";
  auto attributes = AttributeMap(s["attributes"]);
  EXPECT_STREQ((*attributes["nan"])["doubleValue"].GetString(), "NaN");
  EXPECT_STREQ((*attributes["inf"])["doubleValue"].GetString(), "-Infinity");
}

TEST_F(JsonLinesTracerTest, ASpanDestroyedWithoutEndIsWrittenOnce) {
  auto tracer = JsonLinesTracer::Open({.path = path});
  ASSERT_THAT(tracer, IsOk());
  { std::unique_ptr<Span> forgotten = (*tracer)->StartSpan({.name = "forgotten"}); }
  std::unique_ptr<Span> ended = (*tracer)->StartSpan({.name = "ended"});
  ended->End(absl::OkStatus());
  ended->End(absl::InternalError("twice"));
  ended.reset();
  EXPECT_EQ(Lines().size(), 2u);
}

TEST_F(JsonLinesTracerTest, ConcurrentSpansAreWholeLines) {
  auto tracer = JsonLinesTracer::Open({.path = path});
  ASSERT_THAT(tracer, IsOk());
  constexpr int kThreads = 4, kSpans = 250;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kSpans; ++i) {
        (*tracer)
            ->StartSpan({.name = herald::StrCat("t", t, "-", i),
                         .attributes = {{"payload", std::string(static_cast<size_t>(i) * 10, 'x')}}})
            ->End(absl::OkStatus());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kSpans));
  std::set<std::string> names;
  for (const std::string& line : lines) {
    rapidjson::Document d;
    ASSERT_FALSE(d.Parse(line.c_str()).HasParseError()) << line.substr(0, 200);
    names.insert(OnlySpan(d)["name"].GetString());
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(kThreads * kSpans));
  EXPECT_EQ((*tracer)->spans_written(), kThreads * kSpans);
  EXPECT_THAT((*tracer)->write_error(), IsOk());
}

TEST_F(JsonLinesTracerTest, OpenSaysWhatIsWrong) {
  EXPECT_THAT(JsonLinesTracer::Open({}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(JsonLinesTracer::Open({.path = path + "/no/such/dir/spans.jsonl"}),
              StatusIs(absl::StatusCode::kUnavailable, ::testing::HasSubstr("no/such/dir")));
}

TEST_F(JsonLinesTracerTest, AWriteErrorIsKeptAndNeverThrown) {
  auto tracer = JsonLinesTracer::Open({.path = "/dev/full"});
  ASSERT_THAT(tracer, IsOk());
  (*tracer)->StartSpan({.name = "lost"})->End(absl::OkStatus());
  EXPECT_THAT((*tracer)->write_error(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ((*tracer)->spans_written(), 0);
}

// The examples of json_lines_tracer.h and tracing.h, compiled and run.
absl::Status HeaderExample(const std::string& path) {
  std::unique_ptr<Transport> transport = std::make_unique<herald::testing::FakeTransport>();
  absl::StatusOr<std::unique_ptr<herald::otlp::JsonLinesTracer>> tracer =
      herald::otlp::JsonLinesTracer::Open({.path = path, .service_name = "orders"});
  HERALD_RETURN_IF_ERROR(tracer.status());
  herald::Bus bus(std::move(transport), {.tracer = tracer->get()});
  return bus.Publish(herald::testing::CustomerEvent{.customer_id = "cust-42"}).status();
}

absl::Status TracingHeaderExample(Tracer& tracer, std::unique_ptr<Transport> transport, OutboxStore& store) {
  herald::Bus bus(std::move(transport), {.tracer = &tracer});
  herald::OutboxRelay relay(store, bus, {.tracer = &tracer});
  using herald::testing::CustomerEvent;
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<Transaction> tx, store.Begin());
  std::unique_ptr<herald::Span> span = tracer.StartSpan({.name = "create customer"});
  {
    herald::ScopedTraceContext in_span(span->context());
    HERALD_RETURN_IF_ERROR(store.Append(*tx, CustomerEvent{.customer_id = "cust-42"}));
  }
  span->End(absl::OkStatus());
  HERALD_RETURN_IF_ERROR(tx->Commit());
  return relay.RunOnce().status();
}

TEST_F(JsonLinesTracerTest, HeaderExamplesRun) {
  ASSERT_THAT(HeaderExample(path), IsOk());
  EXPECT_EQ(Lines().size(), 1u);
  auto tracer = JsonLinesTracer::Open({.path = path});
  ASSERT_THAT(tracer, IsOk());
  herald::testing::FakeClock clock;
  herald::testing::InMemoryOutboxStore store(clock);
  ASSERT_THAT(TracingHeaderExample(**tracer, std::make_unique<herald::testing::FakeTransport>(), store), IsOk());
  // "create customer", then its child "relay customer-events".
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 3u);
  rapidjson::Document create, relay;
  ASSERT_FALSE(create.Parse(lines[1].c_str()).HasParseError());
  ASSERT_FALSE(relay.Parse(lines[2].c_str()).HasParseError());
  EXPECT_STREQ(OnlySpan(relay)["name"].GetString(), "relay customer-events");
  EXPECT_STREQ(OnlySpan(relay)["parentSpanId"].GetString(), OnlySpan(create)["spanId"].GetString());
}

TEST_F(JsonLinesTracerTest, ABusPublishAndItsHandlerAreParentAndChildInTheFile) {
  absl::StatusOr<std::unique_ptr<herald::otlp::JsonLinesTracer>> tracer =
      herald::otlp::JsonLinesTracer::Open({.path = path, .service_name = "orders"});
  HERALD_ASSERT_OK(tracer.status());
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>(), {.tracer = tracer->get()});
  herald::testing::RecordingHandler<herald::testing::CustomerEvent> seen;
  ASSERT_THAT(bus.Subscribe<herald::testing::CustomerEvent>("event-reader", seen), IsOk());
  ASSERT_THAT(bus.Publish(herald::testing::CustomerEvent{.customer_id = "cust-1"}), IsOk());
  std::map<std::string, std::pair<std::string, std::string>> by_name;  // name -> (span id, parent id)
  std::set<std::string> traces;
  for (const std::string& line : Lines()) {
    rapidjson::Document d;
    ASSERT_FALSE(d.Parse(line.c_str()).HasParseError());
    const rapidjson::Value& s = OnlySpan(d);
    by_name[s["name"].GetString()] = {s["spanId"].GetString(),
                                      s.HasMember("parentSpanId") ? s["parentSpanId"].GetString() : ""};
    traces.insert(s["traceId"].GetString());
  }
  ASSERT_EQ(by_name.size(), 2u);
  EXPECT_EQ(traces.size(), 1u);
  EXPECT_EQ(by_name["process customer-events"].second, by_name["send customer-events"].first);
  EXPECT_EQ(by_name["send customer-events"].second, "");
}

}  // namespace
}  // namespace herald::otlp
