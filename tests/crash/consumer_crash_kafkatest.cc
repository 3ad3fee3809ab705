// The consumer crash test at production scale: a typed Kafka consumer
// (consumer_crash_child: herald's Bus + KafkaTransport, Subscribe<CrashEvent>)
// is SIGKILLed at least kMinKills times mid-stream while kEvents events on
// kKeys keys are published, and restarted each time. Its handler appends
// "<incarnation> <key> <n> <id>" per handled event to a file. Then:
// - every published event was handled at least once;
// - per key, the first handlings come in publish order (0, 1, 2, ...);
// - per key, handling never skips ahead: within one incarnation each event
//   is the next one (n, n+1, ...) or a step back to repeat a suffix of what
//   was handled (the records after the last commit: after a kill in the next
//   incarnation, or when a live consumer rejoins its group), and an
//   incarnation starts at most one past the highest event handled;
// - redeliveries, and the rewinds that happened without a kill, are
//   reported.
// One line of counts, "[crash consumer] ...", goes to stdout (scripts/run-tests.sh
// shows it).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "consumer_crash_event.h"
#include "crash_harness.h"
#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/core/strings.h"
#include "herald/kafka/kafka_transport.h"
#include "herald/testing/status_matchers.h"

namespace herald::crash {
namespace {

using herald::testing::IsOk;

constexpr int kKeys = 20;
constexpr int kEvents = 20000;
constexpr int kMinKills = 10;
constexpr int kPartitions = 4;
// Published at about this rate, so the stream lasts through the kills.
constexpr int kEventsPerSecond = 1000;

struct Handled {
  int incarnation = 0;
  std::string key;
  int64_t n = 0;
  std::string id;
};

std::vector<Handled> ReadHandled(const std::string& path) {
  std::vector<Handled> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    Handled h;
    if (fields >> h.incarnation >> h.key >> h.n >> h.id) out.push_back(std::move(h));
  }
  return out;
}

std::string ChildPath() {
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "consumer_crash_child").string();
}

TEST(ConsumerCrashTest, KilledTypedConsumerHandlesEveryEventInKeyOrder) {
  const std::string brokers = Env("HERALD_TEST_KAFKA_BROKERS");
  ASSERT_FALSE(brokers.empty()) << "HERALD_TEST_KAFKA_BROKERS is not set: run `make test` or scripts/servers-up.sh";
  const std::string unique = StrCat("crash-consumer-", getpid(), "-", absl::ToUnixSeconds(absl::Now()));
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / unique;
  std::filesystem::create_directories(dir);
  const std::string out = (dir / "handled.txt").string();
  const std::string log = (dir / "consumer.log").string();
  const std::string group = StrCat(unique, "-group");
  ASSERT_THAT(CreateTopic(brokers, unique, kPartitions), IsOk());
  const absl::Time start = absl::Now();

  // Publisher: kEvents typed events, key i % kKeys, n counting per key.
  kafka::KafkaTransportOptions options;
  options.brokers = brokers;
  options.client_id = StrCat(unique, "-publisher");
  auto transport = kafka::KafkaTransport::Create(options);
  ASSERT_THAT(transport, IsOk());
  Bus publisher(*std::move(transport));
  std::atomic<int> publish_failures{0};
  std::atomic<bool> published_all{false};
  std::set<std::string> ids;  // written by the publisher thread, read after join
  std::thread publish([&] {
    std::vector<int64_t> next(kKeys, 0);
    for (int i = 0; i < kEvents; ++i) {
      while (i > absl::ToDoubleSeconds(absl::Now() - start) * kEventsPerSecond) absl::SleepFor(absl::Milliseconds(2));
      CrashEvent e{StrCat("key-", i % kKeys), next[i % kKeys]++};
      Envelope envelope = MakeEnvelope(e, {.topic = unique});
      ids.insert(envelope.id);
      publisher.PublishAsync(std::move(envelope), [&](const absl::StatusOr<DeliveryReport>& r) {
        if (!r.ok()) ++publish_failures;
      });
    }
    if (!publisher.Flush(absl::Seconds(60)).ok()) ++publish_failures;
    published_all = true;
  });

  std::mt19937 rng(11);
  int kills = 0, stalls = 0, incarnation = 0;
  auto size_of = [&out] {
    std::error_code ec;
    auto size = std::filesystem::file_size(out, ec);
    return ec ? uintmax_t{0} : size;
  };
  while (true) {
    absl::StatusOr<Child> child = Child::Spawn({ChildPath(), brokers, unique, group, out, StrCat(++incarnation)}, log);
    ASSERT_THAT(child, IsOk());
    // Kill it once it has handled something, at a random point after that.
    uintmax_t before = size_of();
    absl::Time spawned = absl::Now();
    while (size_of() == before && absl::Now() - spawned < absl::Seconds(60)) absl::SleepFor(absl::Milliseconds(5));
    if (size_of() == before) {
      ++stalls;
      child->KillAndReap(SIGKILL);
      break;
    }
    absl::SleepFor(absl::Milliseconds(100 + static_cast<int>(rng() % 900)));
    child->KillAndReap(SIGKILL);
    ++kills;
    if (kills >= kMinKills && published_all.load()) break;
  }
  publish.join();
  ASSERT_EQ(publish_failures.load(), 0);
  ASSERT_EQ(static_cast<int>(ids.size()), kEvents);

  // A last incarnation finishes the stream.
  absl::StatusOr<Child> last = Child::Spawn({ChildPath(), brokers, unique, group, out, StrCat(++incarnation)}, log);
  ASSERT_THAT(last, IsOk());
  absl::Time deadline = absl::Now() + absl::Seconds(120);
  std::set<std::string> handled_ids;
  while (absl::Now() < deadline) {
    handled_ids.clear();
    for (const Handled& h : ReadHandled(out)) handled_ids.insert(h.id);
    if (static_cast<int>(handled_ids.size()) >= kEvents) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  absl::SleepFor(absl::Milliseconds(500));  // anything still in flight
  last->KillAndReap(SIGKILL);
  EXPECT_TRUE(publisher.Stop(absl::Seconds(10)).ok());
  absl::Duration wall = absl::Now() - start;

  // Count.
  std::vector<Handled> handled = ReadHandled(out);
  int64_t not_published = 0, first_order_violations = 0, suffix_violations = 0, rewinds_in_incarnation = 0;
  std::string first_problem;
  auto problem = [&first_problem](std::string text) {
    if (first_problem.empty()) first_problem = std::move(text);
  };
  std::set<std::string> seen;
  std::map<std::string, int64_t> highest;                   // key -> highest n handled so far
  std::map<std::pair<int, std::string>, int64_t> previous;  // (incarnation, key) -> last n
  for (const Handled& h : handled) {
    if (ids.count(h.id) == 0) {
      ++not_published;
      problem(StrCat("handled ", h.id, " which was never published"));
      continue;
    }
    auto [top, first_of_key] = highest.emplace(h.key, -1);
    if (seen.insert(h.id).second) {
      if (h.n != top->second + 1) {
        ++first_order_violations;
        problem(StrCat("key ", h.key, ": event ", h.n, " first handled after event ", top->second));
      }
    }
    // Within one incarnation a key's events come in offset order: n, n+1,
    // ... A step back is a redelivery of a suffix (the process rejoined its
    // group and resumed from the last commit); a step forward past n+1 skips
    // events, which is a violation.
    auto [prev, first_in_incarnation] = previous.emplace(std::make_pair(h.incarnation, h.key), h.n);
    if (first_in_incarnation) {
      if (h.n > top->second + 1) {
        ++suffix_violations;
        problem(StrCat("incarnation ", h.incarnation, " key ", h.key, ": started at ", h.n, " past ", top->second + 1));
      }
    } else {
      if (h.n <= prev->second) {
        ++rewinds_in_incarnation;
      } else if (h.n != prev->second + 1) {
        ++suffix_violations;
        problem(StrCat("incarnation ", h.incarnation, " key ", h.key, ": ", h.n, " after ", prev->second));
      }
      prev->second = h.n;
    }
    top->second = std::max(top->second, h.n);
  }
  int64_t missing = 0;
  for (const std::string& id : ids) missing += seen.count(id) == 0 ? 1 : 0;
  const int64_t redeliveries = static_cast<int64_t>(handled.size()) - not_published - static_cast<int64_t>(seen.size());
  std::printf(
      "[crash consumer] typed Bus consumer on Kafka: %d events on %d keys, %d SIGKILLs, %d incarnations, "
      "handled %zu times, not handled %lld, order violations %lld (first handlings) + %lld (within an "
      "incarnation), redeliveries %lld (%lld keys rewound without a kill), wall %s\n",
      kEvents, kKeys, kills, incarnation, handled.size(), static_cast<long long>(missing),
      static_cast<long long>(first_order_violations), static_cast<long long>(suffix_violations),
      static_cast<long long>(redeliveries), static_cast<long long>(rewinds_in_incarnation),
      absl::FormatDuration(absl::Trunc(wall, absl::Seconds(1))).c_str());
  std::fflush(stdout);

  EXPECT_EQ(stalls, 0) << "a restarted consumer handled nothing for 60 s; log tail:\n" << Tail(log, 20);
  EXPECT_GE(kills, kMinKills);
  EXPECT_EQ(missing, 0) << "every published event is handled at least once";
  EXPECT_EQ(not_published, 0) << first_problem;
  EXPECT_EQ(first_order_violations, 0) << first_problem;
  EXPECT_EQ(suffix_violations, 0) << first_problem;
  if (HasFailure()) {
    std::printf("kept for inspection: %s (handled.txt, consumer.log)\n", dir.c_str());
  } else {
    std::filesystem::remove_all(dir);
  }
}

}  // namespace
}  // namespace herald::crash
