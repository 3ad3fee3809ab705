// Tracing across the outbox and a real Kafka broker (label kafka;sqlite):
// user code appends an event inside its own span P; the relay moves the row
// to Kafka; a consumer Bus handles it. Every span goes through the OTLP
// JSON-lines adapter into one file, which the test reads back: the
// handler's span must be a child of P (same trace, parentSpanId = P's span
// id), and the relay's span P's other child (tracing.h). A direct publish
// on the same topic shows the other rule: its handler is a child of the
// publish span.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/core/relay.h"
#include "herald/core/strings.h"
#include "herald/core/tracing.h"
#include "herald/kafka/kafka_transport.h"
#include "herald/otlp/json_lines_tracer.h"
#include "herald/sqlite/sqlite_outbox_store.h"
#include "herald/testing/eventually.h"
#include "herald/testing/recording_handler.h"
#include "herald/testing/sample_events.h"
#include "herald/testing/status_matchers.h"
#include "rapidjson/document.h"

namespace {

using herald::testing::CustomerEvent;
using herald::testing::IsOk;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

struct FileSpan {
  std::string trace_id, span_id, parent_span_id, name, outcome, event_id, service;
  int kind = 0;
  int status_code = 0;
};

std::string StringAttribute(const rapidjson::Value& attributes, const char* key) {
  for (const rapidjson::Value& a : attributes.GetArray()) {
    if (std::string_view(a["key"].GetString()) == key && a["value"].HasMember("stringValue")) {
      return a["value"]["stringValue"].GetString();
    }
  }
  return "";
}

// Every span in the JSON-lines file.
std::vector<FileSpan> ReadSpans(const std::string& path) {
  std::vector<FileSpan> spans;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    rapidjson::Document d;
    EXPECT_FALSE(d.Parse(line.c_str()).HasParseError()) << line;
    if (d.HasParseError()) continue;
    const rapidjson::Value& rs = d["resourceSpans"][0];
    const rapidjson::Value& s = rs["scopeSpans"][0]["spans"][0];
    FileSpan f;
    f.service = StringAttribute(rs["resource"]["attributes"], "service.name");
    f.trace_id = s["traceId"].GetString();
    f.span_id = s["spanId"].GetString();
    if (s.HasMember("parentSpanId")) f.parent_span_id = s["parentSpanId"].GetString();
    f.name = s["name"].GetString();
    f.kind = s["kind"].GetInt();
    f.outcome = StringAttribute(s["attributes"], "herald.outcome");
    f.event_id = StringAttribute(s["attributes"], "messaging.message.id");
    f.status_code = s["status"].HasMember("code") ? s["status"]["code"].GetInt() : 0;
    spans.push_back(std::move(f));
  }
  return spans;
}

// The spans of `trace_id` as an indented tree, children under parents.
std::string Tree(const std::vector<FileSpan>& spans, const std::string& trace_id) {
  static const std::map<int, std::string> kKinds = {{1, "internal"}, {4, "producer"}, {5, "consumer"}};
  std::string out;
  std::function<void(const std::string&, int)> print = [&](const std::string& parent, int depth) {
    for (const FileSpan& s : spans) {
      if (s.trace_id != trace_id || s.parent_span_id != parent) continue;
      out += herald::StrCat(std::string(2 * static_cast<size_t>(depth), ' '), "- ", s.name, " [", kKinds.at(s.kind),
                            "] span ", s.span_id, s.outcome.empty() ? "" : " outcome=" + s.outcome, "\n");
      print(s.span_id, depth + 1);
    }
  };
  out += herald::StrCat("trace ", trace_id, "\n");
  print("", 1);
  return out;
}

TEST(TracingKafkaEndToEnd, AHandlersSpanIsAChildOfThePublishersSpanAcrossTheOutboxAndKafka) {
  const std::string brokers = Env("HERALD_TEST_KAFKA_BROKERS");
  ASSERT_FALSE(brokers.empty()) << "HERALD_TEST_KAFKA_BROKERS is not set: run `make test` or scripts/kafka-up.sh";
  const std::string unique = herald::StrCat("tracing_e2e_", getpid(), "_", absl::ToUnixSeconds(absl::Now()));
  const std::string topic = herald::StrCat("tracing-e2e-", getpid(), "-", absl::ToUnixSeconds(absl::Now()));
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / unique;
  std::filesystem::create_directories(dir);
  const std::string spans_path = (dir / "spans.jsonl").string();

  auto tracer = herald::otlp::JsonLinesTracer::Open({.path = spans_path, .service_name = "tracing-e2e"});
  ASSERT_THAT(tracer, IsOk());
  auto store = herald::sqlite::SqliteOutboxStore::Open({.path = (dir / "outbox.db").string()});
  ASSERT_THAT(store, IsOk());

  herald::kafka::KafkaTransportOptions kafka;
  kafka.brokers = brokers;
  kafka.client_id = unique;
  auto publisher = herald::kafka::KafkaTransport::Create(kafka);
  ASSERT_THAT(publisher, IsOk());
  // The relay's bus has the tracer too: a relayed row must get no span of its.
  herald::Bus publisher_bus(*std::move(publisher), {.tracer = tracer->get()});
  // A direct publish first (it also makes the topic).
  ASSERT_THAT(publisher_bus.PublishRaw(topic, "customer.created", R"({"customer_id":"direct"})", "direct"), IsOk());

  auto consumer = herald::kafka::KafkaTransport::Create(kafka);
  ASSERT_THAT(consumer, IsOk());
  herald::Bus consumer_bus(*std::move(consumer), {.tracer = tracer->get()});
  herald::testing::RecordingHandler<CustomerEvent> seen;
  herald::SubscribeOptions sub;
  sub.topics = {topic};
  ASSERT_THAT(consumer_bus.Subscribe<CustomerEvent>(herald::StrCat(unique, "-reader"), seen, sub), IsOk());
  ASSERT_THAT(consumer_bus.Start(), IsOk());

  // User code: span P around the business transaction that appends the event.
  std::unique_ptr<herald::Span> p = (*tracer)->StartSpan({.name = "create customer"});
  const std::string p_trace = herald::TraceIdHex(p->context()), p_span = herald::SpanIdHex(p->context());
  {
    herald::ScopedTraceContext in_p(p->context());
    auto tx = (*store)->Begin();
    ASSERT_THAT(tx, IsOk());
    ASSERT_THAT((*store)->Append(**tx, CustomerEvent{.customer_id = "outboxed"}, {.topic = topic}), IsOk());
    ASSERT_THAT((*tx)->Commit(), IsOk());
  }
  p->End(absl::OkStatus());

  herald::RelayOptions relay_options;
  relay_options.poll_interval = absl::Milliseconds(100);
  relay_options.tracer = tracer->get();
  herald::OutboxRelay relay(**store, publisher_bus, relay_options);
  ASSERT_THAT(relay.Start(), IsOk());
  ASSERT_TRUE(seen.WaitForCount(2, absl::Seconds(90))) << "handled: " << seen.count();
  relay.Stop();
  // The handler's span ends when the handler returns, just after it is seen.
  std::vector<herald::Message> messages = seen.messages();
  std::string outboxed_id, direct_id;
  for (const herald::Message& m : messages) {
    (m.envelope.key == "outboxed" ? outboxed_id : direct_id) = m.envelope.id;
  }
  ASSERT_FALSE(outboxed_id.empty());
  ASSERT_FALSE(direct_id.empty());
  auto find = [](const std::vector<FileSpan>& spans, std::string_view name_prefix, const std::string& id) {
    for (const FileSpan& s : spans) {
      if (s.name.starts_with(name_prefix) && s.event_id == id) return std::optional<FileSpan>(s);
    }
    return std::optional<FileSpan>();
  };
  std::vector<FileSpan> spans;
  ASSERT_TRUE(herald::testing::Eventually(
      [&] {
        spans = ReadSpans(spans_path);
        return find(spans, "process ", outboxed_id).has_value() && find(spans, "process ", direct_id).has_value();
      },
      absl::Seconds(10)));
  EXPECT_THAT(consumer_bus.Stop(absl::Seconds(10)), IsOk());
  EXPECT_THAT(publisher_bus.Stop(absl::Seconds(10)), IsOk());
  spans = ReadSpans(spans_path);

  // Across the outbox and Kafka: the handler is P's child; so is the relay.
  std::optional<FileSpan> handled = find(spans, "process ", outboxed_id);
  std::optional<FileSpan> relayed = find(spans, "relay ", outboxed_id);
  ASSERT_TRUE(handled.has_value());
  ASSERT_TRUE(relayed.has_value());
  EXPECT_EQ(handled->trace_id, p_trace);
  EXPECT_EQ(handled->parent_span_id, p_span) << "the handler's parent is the publisher's span";
  EXPECT_EQ(handled->kind, 5);
  EXPECT_EQ(handled->outcome, "handled");
  EXPECT_EQ(handled->service, "tracing-e2e");
  EXPECT_EQ(relayed->trace_id, p_trace);
  EXPECT_EQ(relayed->parent_span_id, p_span) << "the relay's span is the publisher's other child";
  EXPECT_EQ(relayed->kind, 4);
  EXPECT_EQ(relayed->outcome, "published");
  EXPECT_FALSE(find(spans, "send ", outboxed_id).has_value()) << "the bus starts no span for a relayed row";
  EXPECT_EQ(messages.size(), 2u);

  // A direct publish: the handler continues from the publish span.
  std::optional<FileSpan> sent = find(spans, "send ", direct_id);
  std::optional<FileSpan> direct = find(spans, "process ", direct_id);
  ASSERT_TRUE(sent.has_value());
  ASSERT_TRUE(direct.has_value());
  EXPECT_EQ(sent->parent_span_id, "");
  EXPECT_EQ(direct->trace_id, sent->trace_id);
  EXPECT_EQ(direct->parent_span_id, sent->span_id);

  std::cout << "[tracing e2e] spans in " << spans.size() << " JSON lines, through Kafka at " << brokers << ":\n"
            << Tree(spans, p_trace) << Tree(spans, sent->trace_id);
  std::filesystem::remove_all(dir);
}

}  // namespace
