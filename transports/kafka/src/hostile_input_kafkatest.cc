// Hostile input for a herald consumer on a real broker (label kafka): one
// partition carries, between good events of one key, every kind of record a
// careless or broken producer writes. Each hostile record must end up in the
// dead-letter topic with its reason, its original coordinates and its bytes
// (or, where a dead letter cannot carry them, without its value and saying
// so), and the good event after it must still be handled: no crash, no
// stall, no silent drop. A table row per case, so a new case is one line.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/core/delivery_policy.h"
#include "herald/core/mutex.h"
#include "herald/core/strings.h"
#include "herald/core/wire.h"
#include "herald/kafka/kafka_transport.h"
#include "herald/testing/status_matchers.h"
#include "kafka_real_broker.h"
#include "kafka_test_support.h"

namespace herald::kafka {
namespace {

using ::herald::kafka::test::OrderPlaced;
using ::herald::kafka::test::PlainRecord;
using ::herald::kafka::test::UniqueName;
using ::herald::kafka::test::WaitUntil;
using ::herald::testing::IsOk;

const auto* const kRequireBroker = ::testing::AddGlobalTestEnvironment(new test::RequireRealBroker);

struct HostileCase {
  std::string name;
  std::optional<std::string> value;  // std::nullopt: a null value (tombstone)
  Headers headers;
  std::string reason;  // expected in herald-dlq-reason (case-insensitive); "" = any
};

std::string Envelope(std::string_view id, std::string_view type, std::string_view payload,
                     std::string_view timestamp = "2026-11-30T10:11:12Z") {
  return herald::StrCat(R"({"id":")", id, R"(","type":")", type, R"(","timestamp":")", timestamp, R"(","payload":)",
                        payload, "}");
}

std::vector<HostileCase> Cases() {
  const Headers binary = {{"ce_specversion", "1.0"},
                          {"ce_id", "b-1"},
                          {"ce_type", "order.placed"},
                          {"ce_source", "hostile"},
                          {"content-type", "application/json"}};
  auto with = [&](std::string_view name, std::string_view value) {  // replaced or added
    Headers h = binary;
    bool replaced = false;
    for (auto& [n, v] : h) {
      if (n == name) {
        v = std::string(value);
        replaced = true;
      }
    }
    if (!replaced) h.emplace_back(std::string(name), std::string(value));
    return h;
  };
  std::string nul = Envelope("n-1", "order.placed", R"({"order_id":"k","seq":0})");
  nul.push_back('\0');
  nul += "junk";
  return {
      {"nested 200 KB (not an envelope)", std::string(200000, '['), {}, "neither a JSON envelope"},
      {"nested 200 KB inside an envelope",
       "{\"id\":\"n\",\"type\":\"order.placed\",\"payload\":" + std::string(200000, '['),
       {},
       "kMaxJsonDepth"},
      {"nested payload in binary mode", std::string(200000, '['), binary, "kMaxJsonDepth"},
      {"NUL byte then junk", nul, {}, "NUL"},
      {"empty value", std::string(), {}, ""},
      {"null value (tombstone)", std::nullopt, {}, ""},
      {"not JSON", std::string("hello"), {}, "neither a JSON envelope"},
      {"unknown type", Envelope("u-1", "no.such.type", "{}"), {}, "no handler for event type"},
      {"payload of the wrong shape", Envelope("w-1", "order.placed", R"({"order_id":7})"), {}, "order_id"},
      {"empty ce_id", std::string(R"({"order_id":"k","seq":0})"), with("ce_id", ""), "ce_id"},
      {"empty ce_type", std::string(R"({"order_id":"k","seq":0})"), with("ce_type", ""), "ce_type"},
      {"bad ce_time", std::string(R"({"order_id":"k","seq":0})"), with("ce_time", "yesterday"), "time"},
      {"bad timestamp", Envelope("t-1", "order.placed", "{}", "2026-13-45T99:00:00Z"), {}, "time"},
      {"schema version 0", std::string(R"({"order_id":"k","seq":0})"), with("ce_schemaversion", "0"), "schemaversion"},
  };
}

std::string HeaderOf(const Headers& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return "";
}

TEST(HostileInputRealBroker, EveryHostileRecordIsDeadLetteredWithItsReasonAndThePartitionMovesOn) {
  const std::string brokers = test::RealBrokers();
  const std::string topic = UniqueName("hostile");
  ASSERT_TRUE(test::CreateTopicOnBroker(brokers, topic, 1)) << "could not create " << topic;

  // One partition: good(0), hostile(0), good(1), hostile(1), ... good(N).
  const std::vector<HostileCase> cases = Cases();
  std::vector<Record> good;
  for (size_t i = 0; i <= cases.size(); ++i) {
    EnvelopeOptions eo;
    eo.topic = topic;
    absl::StatusOr<Record> r = EncodeRecord(MakeEnvelope(OrderPlaced{"k", static_cast<int64_t>(i)}, eo));
    ASSERT_THAT(r, IsOk());
    good.push_back(*std::move(r));
  }
  for (size_t i = 0; i <= cases.size(); ++i) {
    ASSERT_TRUE(test::ProduceRawRecord(brokers, topic, "k", good[i].value, good[i].headers)) << i;
    if (i < cases.size()) {
      ASSERT_TRUE(test::ProduceRawRecord(brokers, topic, "k", cases[i].value, cases[i].headers)) << cases[i].name;
    }
  }

  // A service's consumer with herald's default policy: order.placed is
  // handled, any other type is dead-lettered as unknown (as an EventRouter
  // does), a payload that does not decode is a permanent error.
  absl::StatusOr<std::unique_ptr<KafkaTransport>> transport = KafkaTransport::Create(test::RealBrokerOptions(topic));
  ASSERT_THAT(transport, IsOk());
  Bus bus(*std::move(transport));
  Mutex mu;
  std::vector<int64_t> handled;
  SubscribeOptions policy;
  policy.group = UniqueName("hostile-reader");
  policy.topics = {topic};
  policy.accepted_types = {std::string(OrderPlaced::kType)};
  policy.skip_unknown_types = false;
  policy.retry.max_attempts = 2;
  policy.retry.initial_backoff = absl::Milliseconds(10);
  ASSERT_THAT(bus.Subscribe(policy,
                            [&](const Message& m) -> absl::Status {
                              absl::StatusOr<OrderPlaced> e = DecodeEvent<OrderPlaced>(m.envelope);
                              if (!e.ok()) return e.status();
                              MutexLock lock(mu);
                              handled.push_back(e->seq);
                              return absl::OkStatus();
                            }),
              IsOk());
  ASSERT_THAT(bus.Start(), IsOk());
  EXPECT_TRUE(WaitUntil(
      [&] {
        MutexLock lock(mu);
        return handled.size() >= good.size();
      },
      absl::Seconds(90)))
      <<
      [&] {
        const Bus::SubscriptionStats s = bus.Stats().at(0);
        MutexLock lock(mu);
        return herald::StrCat("stalled after ", handled.size(), " good events (the next hostile case: ",
                              handled.size() - 1 < cases.size() ? cases[handled.size() - 1].name : "?", "); handled ",
                              s.handled, ", retried ", s.retried, ", dead-lettered ", s.dead_lettered, ", undecodable ",
                              s.undecodable, ", failed ", s.failed, "; seq handled: ", absl::StrJoin(handled, " "));
      }();
  ASSERT_THAT(bus.Stop(absl::Seconds(10)), IsOk());
  {
    MutexLock lock(mu);
    std::vector<int64_t> want;
    for (size_t i = 0; i < good.size(); ++i) want.push_back(static_cast<int64_t>(i));
    EXPECT_EQ(handled, want) << "every good event, in order, each once";
  }

  // Every hostile record is in <topic>.dlq, found by its original offset.
  std::vector<PlainRecord> dead =
      test::ReadWithPlainConsumer(brokers, herald::StrCat(topic, ".dlq"), 4, cases.size(), absl::Seconds(30));
  std::map<int64_t, PlainRecord> by_offset;
  for (PlainRecord& r : dead) by_offset[std::stoll(HeaderOf(r.headers, kDlqOffsetHeader))] = std::move(r);
  int checked = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    const int64_t offset = static_cast<int64_t>(2 * i + 1);
    auto it = by_offset.find(offset);
    ASSERT_NE(it, by_offset.end()) << "no dead letter for offset " << offset;
    const PlainRecord& r = it->second;
    EXPECT_EQ(HeaderOf(r.headers, kDlqTopicHeader), topic);
    EXPECT_EQ(HeaderOf(r.headers, kDlqPartitionHeader), "0");
    const std::string reason = HeaderOf(r.headers, kDlqReasonHeader);
    EXPECT_FALSE(reason.empty());
    if (!cases[i].reason.empty()) {
      EXPECT_TRUE(absl::StrContains(absl::AsciiStrToLower(reason), absl::AsciiStrToLower(cases[i].reason)))
          << "reason: " << reason;
    }
    // The original bytes as they were: an empty value stays empty (not a
    // tombstone), every original header is kept. A null value (a tombstone)
    // is dead-lettered as an empty value (docs/semantics.md).
    EXPECT_FALSE(r.value_is_null);
    EXPECT_EQ(r.value, cases[i].value.value_or(""));
    EXPECT_EQ(r.key, "k");
    for (const auto& [name, value] : cases[i].headers) {
      EXPECT_EQ(HeaderOf(r.headers, name), value) << "header " << name;
    }
    ++checked;
  }
  EXPECT_EQ(dead.size(), cases.size()) << "one dead letter per hostile record, no more";
  std::cout << "[hostile kafka] " << cases.size() << " hostile records between " << good.size()
            << " good events on one partition: " << checked << " dead-lettered with reason and coordinates, "
            << handled.size() << " good events handled in order\n";
}

}  // namespace
}  // namespace herald::kafka
