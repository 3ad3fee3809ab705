#include "herald/core/tracing.h"

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/core/relay.h"
#include "herald/core/strings.h"
#include "herald/core/uuid.h"
#include "herald/testing/fake_clock.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/in_memory_outbox_store.h"
#include "herald/testing/recording_handler.h"
#include "herald/testing/recording_tracer.h"
#include "herald/testing/sample_events.h"
#include "herald/testing/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::CustomerEvent;
using ::herald::testing::FakeTransport;
using ::herald::testing::IsOk;
using ::herald::testing::RecordedSpan;
using ::herald::testing::RecordingTracer;
using ::testing::Optional;
using ::testing::SizeIs;

constexpr std::string_view kExample = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

TEST(Traceparent, ParsesTheSpecExampleAndFormatsItBack) {
  std::optional<TraceContext> c = ParseTraceparent(kExample);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(TraceIdHex(*c), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(SpanIdHex(*c), "b7ad6b7169203331");
  EXPECT_EQ(c->flags, 1);
  EXPECT_TRUE(c->sampled());
  EXPECT_EQ(FormatTraceparent(*c), kExample);
  std::optional<TraceContext> unsampled = ParseTraceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
  ASSERT_TRUE(unsampled.has_value());
  EXPECT_FALSE(unsampled->sampled());
}

TEST(Traceparent, ReadsALaterVersionAsVersion00) {
  EXPECT_TRUE(ParseTraceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").has_value());
  std::optional<TraceContext> c =
      ParseTraceparent("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-the-future-holds");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(FormatTraceparent(*c), kExample) << "written back as version 00";
  EXPECT_FALSE(ParseTraceparent("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x").has_value());
}

TEST(Traceparent, RefusesHostileAndMalformedValues) {
  const std::string tail = "-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  for (const std::string& bad : std::vector<std::string>{
           "", "00", std::string(kExample.substr(0, 54)),                                // one short
           std::string(kExample) + "-",                                                  // version 00 has four fields
           std::string(kExample) + "0",                                                  // one long
           "ff" + tail,                                                                  // version ff is invalid
           "0g" + tail,                                                                  // not hex
           "00-00000000000000000000000000000000-b7ad6b7169203331-01",                    // all-zero trace id
           "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",                    // all-zero span id
           "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",                    // uppercase
           "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",                    // separators
           "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g",                    // flags not hex
           "00-0af7651916cd43dd8448eb211c8031-9c-b7ad6b7169203331-01",                   // a dash moved
           " 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",                   // leading space
           std::string("00-0af7651916cd43dd8448eb211c80319\0-b7ad6b7169203331-01", 55),  // NUL
           "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-\xff\xff",              // high bytes
           std::string(100000, '0'),                                                     // huge
       }) {
    EXPECT_FALSE(ParseTraceparent(bad).has_value()) << "accepted: \"" << bad << "\"";
  }
}

TEST(Traceparent, EveryByteValueRoundTrips) {
  TraceContext c;
  for (size_t i = 0; i < c.trace_id.size(); ++i) c.trace_id[i] = static_cast<uint8_t>(i * 17 + 1);
  for (size_t i = 0; i < c.span_id.size(); ++i) c.span_id[i] = static_cast<uint8_t>(255 - i * 31);
  for (int flags : {0x00, 0x01, 0x7f, 0xff}) {
    c.flags = static_cast<uint8_t>(flags);
    EXPECT_THAT(ParseTraceparent(FormatTraceparent(c)), Optional(c));
  }
}

TEST(ScopedTraceContext, SetsTheCurrentContextAndRestoresTheOuterOne) {
  EXPECT_FALSE(CurrentTraceContext().has_value());
  TraceContext outer = *ParseTraceparent(kExample);
  TraceContext inner = outer;
  inner.span_id[0] = 0x42;
  {
    ScopedTraceContext a(outer);
    EXPECT_THAT(CurrentTraceContext(), Optional(outer));
    {
      ScopedTraceContext b(inner);
      EXPECT_THAT(CurrentTraceContext(), Optional(inner));
      std::thread other([] { EXPECT_FALSE(CurrentTraceContext().has_value()) << "per thread"; });
      other.join();
    }
    EXPECT_THAT(CurrentTraceContext(), Optional(outer));
    Headers headers;
    PropagateContext(headers);
    EXPECT_THAT(FindHeader(headers, kTraceparentHeader), Optional(std::string_view(kExample)))
        << "events made inside the scope carry its context";
  }
  EXPECT_FALSE(CurrentTraceContext().has_value());
}

// The context a header carries, for comparisons.
TraceContext HeaderContext(const Envelope& e) {
  std::optional<std::string_view> header = FindHeader(e.headers, kTraceparentHeader);
  EXPECT_TRUE(header.has_value()) << DebugString(e);
  std::optional<TraceContext> c = ParseTraceparent(header.value_or(""));
  EXPECT_TRUE(c.has_value()) << *header;
  return c.value_or(TraceContext{});
}

TEST(BusTracing, AHandlersSpanIsAChildOfThePublishSpan) {
  herald::testing::RecordingTracer tracer;
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>(), {.tracer = &tracer});
  herald::testing::RecordingHandler<CustomerEvent> seen;
  ASSERT_THAT(bus.Subscribe<CustomerEvent>("event-reader", seen), IsOk());
  ASSERT_THAT(bus.Publish(CustomerEvent{.customer_id = "cust-1"}), IsOk());
  ASSERT_EQ(seen.count(), 1);

  std::vector<RecordedSpan> send = tracer.Ended("send customer-events");
  std::vector<RecordedSpan> process = tracer.Ended("process customer-events");
  ASSERT_THAT(send, SizeIs(1));
  ASSERT_THAT(process, SizeIs(1));
  EXPECT_EQ(send[0].kind, SpanKind::kProducer);
  EXPECT_FALSE(send[0].parent.has_value()) << "no traceparent, no current context: a new trace";
  EXPECT_THAT(send[0].Attribute("messaging.destination.name"), Optional(std::string("customer-events")));
  EXPECT_THAT(send[0].Attribute("messaging.destination.partition.id"), Optional(std::string("0")));
  EXPECT_THAT(send[0].status, IsOk());
  EXPECT_EQ(process[0].kind, SpanKind::kConsumer);
  EXPECT_THAT(process[0].parent, Optional(send[0].context)) << "the handler continues from the publish";
  EXPECT_EQ(process[0].context.trace_id, send[0].context.trace_id);
  EXPECT_THAT(process[0].Attribute("herald.outcome"), Optional(std::string("handled")));
  EXPECT_THAT(process[0].Attribute("messaging.consumer.group.name"), Optional(std::string("event-reader")));
  EXPECT_THAT(process[0].Attribute("messaging.message.id"), Optional(seen.messages()[0].envelope.id));
  EXPECT_EQ(HeaderContext(seen.messages()[0].envelope), send[0].context) << "the record's traceparent";
}

TEST(BusTracing, APublishContinuesTheEnvelopesTraceparentAndReplacesIt) {
  RecordingTracer tracer;
  Bus bus(std::make_unique<FakeTransport>(), {.tracer = &tracer});
  Envelope e = MakeEnvelope(CustomerEvent{.customer_id = "cust-1"});
  SetHeader(e.headers, kTraceparentHeader, kExample);
  SetHeader(e.headers, kTracestateHeader, "vendor=1");
  ASSERT_THAT(bus.Publish(e), IsOk());
  std::vector<RecordedSpan> send = tracer.Ended("send customer-events");
  ASSERT_THAT(send, SizeIs(1));
  EXPECT_THAT(send[0].parent, Optional(*ParseTraceparent(kExample)));
  std::vector<Envelope> published = bus.transport<FakeTransport>().published();
  ASSERT_THAT(published, SizeIs(1));
  EXPECT_EQ(HeaderContext(published[0]), send[0].context);
  EXPECT_THAT(FindHeader(published[0].headers, kTracestateHeader), Optional(std::string_view("vendor=1")));

  // A traceparent that does not parse restarts the trace, without its tracestate.
  SetHeader(e.headers, kTraceparentHeader, "00-garbage");
  ASSERT_THAT(bus.Publish(e), IsOk());
  send = tracer.Ended("send customer-events");
  ASSERT_THAT(send, SizeIs(2));
  EXPECT_FALSE(send[1].parent.has_value());
  published = bus.transport<FakeTransport>().published();
  EXPECT_EQ(HeaderContext(published[1]), send[1].context);
  EXPECT_FALSE(FindHeader(published[1].headers, kTracestateHeader).has_value());
}

TEST(BusTracing, AFailedPublishEndsItsSpanWithTheError) {
  RecordingTracer tracer;
  Bus bus(std::make_unique<FakeTransport>(), {.tracer = &tracer});
  bus.transport<FakeTransport>().FailNextPublishes(1, absl::UnavailableError("broker down"));
  EXPECT_FALSE(bus.Publish(CustomerEvent{.customer_id = "cust-1"}).ok());
  std::vector<RecordedSpan> send = tracer.Ended("send customer-events");
  ASSERT_THAT(send, SizeIs(1));
  EXPECT_EQ(send[0].status.code(), absl::StatusCode::kUnavailable);
}

TEST(BusTracing, EachDeliveryAttemptIsASpanEndedWithItsOutcome) {
  RecordingTracer tracer;
  Bus bus(std::make_unique<FakeTransport>(), {.tracer = &tracer});
  herald::testing::RecordingHandler<CustomerEvent> seen;
  seen.FailNext(2, absl::UnavailableError("db down"));
  SubscribeOptions options;
  options.retry.max_attempts = 5;
  ASSERT_THAT(bus.Subscribe<CustomerEvent>("event-reader", seen, options), IsOk());
  herald::testing::RecordingHandler<CustomerEvent> doomed;
  doomed.FailNext(1, absl::InvalidArgumentError("bad customer"));
  ASSERT_THAT(bus.Subscribe<CustomerEvent>("auditor", doomed), IsOk());
  ASSERT_THAT(bus.Publish(CustomerEvent{.customer_id = "cust-1"}), IsOk());
  ASSERT_EQ(seen.count(), 3);

  const RecordedSpan send = tracer.Ended("send customer-events").at(0);
  std::vector<RecordedSpan> process = tracer.Ended("process customer-events");
  std::vector<std::string> outcomes;
  for (const RecordedSpan& s : process) {
    EXPECT_THAT(s.parent, Optional(send.context)) << "every attempt is a child of the publish";
    outcomes.push_back(*s.Attribute("messaging.consumer.group.name") + ":" + *s.Attribute("herald.attempt") + ":" +
                       *s.Attribute("herald.outcome") + ":" + std::string(absl::StatusCodeToString(s.status.code())));
  }
  EXPECT_THAT(outcomes,
              ::testing::UnorderedElementsAre("event-reader:1:retry:UNAVAILABLE", "event-reader:2:retry:UNAVAILABLE",
                                              "event-reader:3:handled:OK", "auditor:1:dead_letter:INVALID_ARGUMENT"));
}

TEST(BusTracing, WhatAHandlerPublishesIsAChildOfTheHandlersSpan) {
  RecordingTracer tracer;
  Bus bus(std::make_unique<FakeTransport>(), {.tracer = &tracer});
  SubscribeOptions options;
  options.group = "forwarder";
  options.topics = {"customer-events"};
  ASSERT_THAT(
      bus.Subscribe(
          options,
          [&](const Message& m) -> absl::Status {
            if (m.envelope.type == "customer.deleted") return absl::OkStatus();
            return bus.Publish(CustomerEvent{.type = CustomerEvent::Type::kDeleted, .customer_id = "cust-1"}).status();
          }),
      IsOk());
  ASSERT_THAT(bus.Publish(CustomerEvent{.customer_id = "cust-1"}), IsOk());
  std::vector<RecordedSpan> spans = tracer.spans();
  // send(created) -> process(created) -> send(deleted) -> process(deleted)
  ASSERT_THAT(spans, SizeIs(4));
  EXPECT_EQ(spans[1].name, "process customer-events");
  EXPECT_EQ(spans[2].name, "send customer-events");
  EXPECT_THAT(spans[1].parent, Optional(spans[0].context));
  EXPECT_THAT(spans[2].parent, Optional(spans[1].context)) << "the follow-up is published inside the handler's span";
  EXPECT_THAT(spans[3].parent, Optional(spans[2].context));
}

TEST(BusTracing, WithoutATracerTheTraceparentIsLeftAsItIs) {
  Bus bus(std::make_unique<FakeTransport>());
  Envelope e = MakeEnvelope(CustomerEvent{.customer_id = "cust-1"});
  SetHeader(e.headers, kTraceparentHeader, "not a traceparent");
  ASSERT_THAT(bus.Publish(e), IsOk());
  EXPECT_EQ(bus.transport<FakeTransport>().published().at(0), e);
}

// Append refuses schema_version 0; another program's SQL can write it.
class VersionZeroStore : public herald::testing::InMemoryOutboxStore {
 public:
  using InMemoryOutboxStore::InMemoryOutboxStore;
  absl::StatusOr<std::vector<OutboxRecord>> FetchPendingBatch(const PendingBatchOptions& options) override {
    absl::StatusOr<std::vector<OutboxRecord>> rows = InMemoryOutboxStore::FetchPendingBatch(options);
    if (rows.ok()) {
      for (OutboxRecord& r : *rows) {
        if (r.envelope.payload == "\"v0\"") r.envelope.schema_version = 0;
      }
    }
    return rows;
  }
};

class RelayTracingTest : public ::testing::Test {
 protected:
  void Commit(std::vector<Envelope> events) {
    absl::StatusOr<std::unique_ptr<Transaction>> tx = store_.Begin();
    ASSERT_THAT(tx, IsOk());
    for (const Envelope& e : events) ASSERT_THAT(store_.Append(**tx, e), IsOk());
    ASSERT_THAT((*tx)->Commit(), IsOk());
  }
  Envelope Event(std::string key) {
    Envelope e;
    e.id = NewUuidV7(absl::Now());
    e.type = "test.happened";
    e.topic = "relay-test";
    e.key = std::move(key);
    e.payload = "{}";
    return e;
  }
  RelayOptions Options() {
    RelayOptions options;
    options.clock = &clock_;
    options.tracer = &tracer_;
    options.retry.max_attempts = 2;
    options.retry.jitter = 0;
    return options;
  }

  herald::testing::FakeClock clock_;
  VersionZeroStore store_{clock_};
  RecordingTracer tracer_;
  // The bus has the same tracer: a relayed row must still get no "send" span.
  Bus bus_{std::make_unique<FakeTransport>(), {.tracer = &tracer_}};
  FakeTransport& fake_ = bus_.transport<FakeTransport>();
};

TEST_F(RelayTracingTest, TheRecordKeepsThePublishersContextAndTheRelaySpanIsItsChild) {
  TraceContext publisher = *ParseTraceparent(kExample);
  Envelope with = Event("a");
  {
    ScopedTraceContext in_publisher(publisher);
    PropagateContext(with.headers);  // what MakeEnvelope does inside the publisher's span
  }
  Envelope without = Event("b");
  Commit({with, without});
  OutboxRelay relay(store_, bus_, Options());
  ASSERT_THAT(relay.RunOnce(), ::herald::testing::IsOkAndHolds(2));

  EXPECT_THAT(tracer_.Ended("send relay-test"), SizeIs(0)) << "the relay's span is the publish span";
  std::vector<RecordedSpan> relayed = tracer_.Ended("relay relay-test");
  ASSERT_THAT(relayed, SizeIs(2));
  EXPECT_THAT(relayed[0].parent, Optional(publisher));
  EXPECT_EQ(relayed[0].kind, SpanKind::kProducer);
  EXPECT_THAT(relayed[0].Attribute("messaging.message.id"), Optional(with.id));
  EXPECT_THAT(relayed[0].Attribute("messaging.destination.name"), Optional(std::string("relay-test")));
  EXPECT_THAT(relayed[0].Attribute("herald.outcome"), Optional(std::string("published")));
  EXPECT_FALSE(relayed[1].parent.has_value());
  std::vector<Envelope> published = fake_.published();
  ASSERT_THAT(published, SizeIs(2));
  EXPECT_EQ(HeaderContext(published[0]), publisher) << "the handler's parent will be the publisher's span";
  EXPECT_EQ(HeaderContext(published[1]), relayed[1].context) << "a row without one continues the relay's span";
}

TEST_F(RelayTracingTest, FailedAndParkedAttemptsEndTheirSpansWithTheOutcome) {
  Envelope bad = Event("a");
  bad.payload = "\"v0\"";  // schema_version 0: unrelayable, parked at once
  Commit({Event("b"), bad});
  fake_.FailNextPublishes(1, absl::UnavailableError("broker down"));
  OutboxRelay relay(store_, bus_, Options());
  ASSERT_THAT(relay.RunOnce(), ::herald::testing::IsOkAndHolds(0));
  clock_.Advance(absl::Minutes(5));
  fake_.FailNextPublishes(1, absl::UnavailableError("broker still down"));
  ASSERT_THAT(relay.RunOnce(), ::herald::testing::IsOkAndHolds(0));
  std::vector<std::string> outcomes;
  for (const RecordedSpan& s : tracer_.Ended("relay relay-test")) {
    outcomes.push_back(*s.Attribute("herald.outcome") + ":" + *s.Attribute("herald.attempt") + ":" +
                       std::string(absl::StatusCodeToString(s.status.code())));
  }
  EXPECT_THAT(outcomes, ::testing::UnorderedElementsAre("parked:1:INVALID_ARGUMENT", "retry:1:UNAVAILABLE",
                                                        "parked:2:UNAVAILABLE"));
}

}  // namespace
}  // namespace herald
