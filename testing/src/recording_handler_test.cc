#include "herald/testing/recording_handler.h"

#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "herald/core/bus.h"
#include "gtest/gtest.h"
#include "herald/core/dispatcher.h"
#include "herald/core/event.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/status_matchers.h"

namespace herald::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::SizeIs;

struct Ping {
  int n = 0;
  static constexpr std::string_view kType = "ping";
  static constexpr std::string_view kTopic = "pings";
  static constexpr auto JsonFields() { return json::Fields(json::Field("n", &Ping::n)); }
};

Message MessageWithId(std::string id) {
  Message m;
  m.envelope.id = std::move(id);
  m.topic = "pings";
  return m;
}

TEST(RecordingHandler, RecordsEventsAndMessagesInOrder) {
  RecordingHandler<Ping> seen;
  EXPECT_THAT(seen(Ping{1}, MessageWithId("a")), IsOk());
  EXPECT_THAT(seen(Ping{2}, MessageWithId("b")), IsOk());
  EXPECT_EQ(seen.count(), 2);
  ASSERT_THAT(seen.events(), SizeIs(2));
  EXPECT_EQ(seen.events()[1].n, 2);
  EXPECT_EQ(seen.messages()[0].envelope.id, "a");
  EXPECT_THAT(seen.statuses(), ElementsAre(IsOk(), IsOk()));
}

TEST(RecordingHandler, CopiesShareTheRecord) {
  RecordingHandler<Ping> seen;
  // The copy is what this test is about.
  RecordingHandler<Ping> copy = seen;  // NOLINT(performance-unnecessary-copy-initialization)
  std::function<absl::Status(const Ping&, const Message&)> f = seen.handler();
  EXPECT_THAT(copy(Ping{1}, {}), IsOk());
  EXPECT_THAT(f(Ping{2}, {}), IsOk());
  EXPECT_THAT(seen.AsEventHandler()->Handle(Ping{3}, {}), IsOk());
  EXPECT_EQ(seen.count(), 3);
  seen.Clear();
  EXPECT_EQ(copy.count(), 0);
}

TEST(RecordingHandler, FailNextFailsThatManyCallsAndRecordsThem) {
  RecordingHandler<Ping> seen;
  seen.FailNext(2, absl::UnavailableError("down"));
  EXPECT_THAT(seen(Ping{1}, {}), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(seen(Ping{2}, {}), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(seen(Ping{3}, {}), IsOk());
  EXPECT_EQ(seen.count(), 3);
  EXPECT_THAT(seen.statuses(),
              ElementsAre(StatusIs(absl::StatusCode::kUnavailable), StatusIs(absl::StatusCode::kUnavailable), IsOk()));
}

TEST(RecordingHandler, FailWithDecidesPerEventAndCanBeCleared) {
  RecordingHandler<Ping> seen;
  seen.FailWith([](const Ping& p) { return p.n % 2 ? absl::InvalidArgumentError("odd") : absl::OkStatus(); });
  EXPECT_THAT(seen(Ping{1}, {}), StatusIs(absl::StatusCode::kInvalidArgument, "odd"));
  EXPECT_THAT(seen(Ping{2}, {}), IsOk());
  seen.FailNext(1, absl::AbortedError("first"));  // FailNext wins over FailWith
  EXPECT_THAT(seen(Ping{2}, {}), StatusIs(absl::StatusCode::kAborted));
  seen.FailWith(nullptr);
  EXPECT_THAT(seen(Ping{1}, {}), IsOk());
}

TEST(RecordingHandler, WaitForCountTimesOutWhenTooFew) {
  RecordingHandler<Ping> seen;
  EXPECT_THAT(seen(Ping{1}, {}), IsOk());
  EXPECT_TRUE(seen.WaitForCount(1, absl::ZeroDuration()));
  EXPECT_FALSE(seen.WaitForCount(2, absl::Milliseconds(20)));
}

TEST(RecordingHandler, WaitForCountWakesOnCallsFromOtherThreads) {
  RecordingHandler<Ping> seen;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([seen, t] {
      for (int i = 0; i < 50; ++i) EXPECT_THAT(seen(Ping{t * 100 + i}, {}), IsOk());
    });
  }
  EXPECT_TRUE(seen.WaitForCount(200, absl::Seconds(30)));
  for (auto& t : threads) t.join();
  EXPECT_EQ(seen.count(), 200);
  EXPECT_THAT(seen.events(), SizeIs(200));
}

TEST(RecordingHandler, WorksAsTypedSubscriptionHandlerInEveryForm) {
  Bus bus(std::make_unique<FakeTransport>());
  RecordingHandler<Ping> by_value, by_function, as_event_handler;
  ASSERT_THAT(bus.Subscribe<Ping>("a", by_value), IsOk());
  ASSERT_THAT(bus.Subscribe<Ping>("b", by_function.handler()), IsOk());
  ASSERT_THAT(bus.Subscribe<Ping>("c", as_event_handler.AsEventHandler()), IsOk());
  ASSERT_THAT(bus.Publish(Ping{9}), IsOk());
  for (const auto* h : {&by_value, &by_function, &as_event_handler}) {
    ASSERT_EQ(h->count(), 1);
    EXPECT_EQ(h->events()[0].n, 9);
    EXPECT_EQ(h->messages()[0].envelope.type, "ping");
  }
}

TEST(RecordingHandler, FailuresDriveTheDispatcherRetries) {
  Bus bus(std::make_unique<FakeTransport>());
  RecordingHandler<Ping> seen;
  seen.FailNext(2, absl::UnavailableError("flaky"));
  ASSERT_THAT(bus.Subscribe<Ping>("g", seen), IsOk());
  ASSERT_THAT(bus.Publish(Ping{1}), IsOk());
  EXPECT_EQ(seen.count(), 3);
  std::vector<int> attempts;
  for (const Message& m : seen.messages()) attempts.push_back(m.attempt);
  EXPECT_THAT(attempts, ElementsAre(1, 2, 3));
}

TEST(RecordingRawHandler, RecordsMessagesAndFails) {
  RecordingRawHandler raw;
  raw.FailWith([](const Message& m) {
    return m.envelope.id == "bad" ? absl::InvalidArgumentError("bad id") : absl::OkStatus();
  });
  EXPECT_THAT(raw(MessageWithId("ok")), IsOk());
  EXPECT_THAT(raw(MessageWithId("bad")), StatusIs(absl::StatusCode::kInvalidArgument));
  raw.FailNext(1, absl::InternalError("once"));
  EXPECT_THAT(raw.handler()(MessageWithId("ok")), StatusIs(absl::StatusCode::kInternal));
  raw.FailWith(nullptr);
  EXPECT_THAT(raw(MessageWithId("bad")), IsOk());
  EXPECT_EQ(raw.count(), 4);
  EXPECT_EQ(raw.messages()[1].envelope.id, "bad");
  EXPECT_TRUE(raw.WaitForCount(4, absl::ZeroDuration()));
}

TEST(RecordingRawHandler, WorksWithRawSubscribe) {
  Bus bus(std::make_unique<FakeTransport>());
  RecordingRawHandler raw;
  ASSERT_THAT(bus.Subscribe({.group = "g", .topics = {"t1", "t2"}}, raw.handler()), IsOk());
  ASSERT_THAT(bus.PublishRaw("t1", "x", "{}"), IsOk());
  ASSERT_THAT(bus.PublishRaw("t2", "y", "{}"), IsOk());
  ASSERT_EQ(raw.count(), 2);
  EXPECT_EQ(raw.messages()[1].topic, "t2");
}

}  // namespace
}  // namespace herald::testing
