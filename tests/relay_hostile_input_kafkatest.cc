// Hostile outbox rows for the relay (label kafka;sqlite): rows a careless or
// broken writer puts in the table, written with raw SQL as another service
// would, relayed by the OutboxRelay to the real broker. Each row must end up
// where the docs say (published, or parked with its reason), the relay must
// never crash or stall, a good row of another key in the same batch must
// still arrive, and the good row behind a parked row of the same key must
// wait for an operator's skip (docs/outbox.md, "Ordering"), then arrive.
// A table row per case, so a new case is one line.
#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/core/relay.h"
#include "herald/core/strings.h"
#include "herald/core/wire.h"
#include "herald/kafka/kafka_transport.h"
#include "herald/kafka/topic_reader.h"
#include "herald/sqlite/sqlite_outbox_store.h"
#include "herald/testing/eventually.h"
#include "herald/testing/status_matchers.h"

namespace {

using herald::testing::IsOk;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

struct RowCase {
  std::string name;
  std::string type = "order.placed";
  std::optional<std::string> topic;  // std::nullopt: the test's topic
  std::string payload;
  std::string content_type = "application/json";
  std::optional<std::string> headers;  // the headers column as written; nullopt = NULL
  int schema_version = 1;
  bool parked = true;  // else published
  std::string reason;  // expected in last_error (case-insensitive) when parked; "" = any
};

std::vector<RowCase> Cases() {
  std::string nul = R"({"order_id":"x"})";
  nul.push_back('\0');
  nul += "junk";
  return {
      {.name = "nested 200 KB", .payload = std::string(200000, '['), .reason = "kMaxJsonDepth"},
      {.name = "NUL byte then junk", .payload = nul, .reason = "NUL"},
      {.name = "over the broker's size limit",
       .payload = "\"" + std::string(2 * 1024 * 1024, 'x') + "\"",
       .reason = "too large"},
      {.name = "empty JSON payload", .payload = "", .reason = "JSON"},
      {.name = "JSON null payload", .payload = "null", .parked = false},
      {.name = "unknown type (the relay does not read types)", .type = "no.such.type", .payload = "{}", .parked = false},
      {.name = "empty type", .type = "", .payload = "{}", .reason = "type"},
      {.name = "malformed headers column", .payload = "{}", .headers = "[[\"a\",1]", .reason = "malformed row"},
      {.name = "schema version 0", .payload = "{}", .schema_version = 0, .reason = "schema_version 0"},
      {.name = "invalid topic name", .topic = "bad topic!", .payload = "{}", .reason = ""},
      {.name = "empty topic", .topic = "", .payload = "{}", .reason = ""},
  };
}

class SqliteDb {
 public:
  explicit SqliteDb(const std::string& path) {
    sqlite3_open(path.c_str(), &db_);
    sqlite3_busy_timeout(db_, 10000);
  }
  ~SqliteDb() { sqlite3_close_v2(db_); }
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // The row as another service writes it: every column bound as given.
  absl::Status Insert(const std::string& type, const std::string& topic, const std::string& key,
                      const std::string& payload, const std::string& content_type,
                      const std::optional<std::string>& headers, int schema_version) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_,
                                "INSERT INTO herald_outbox (event_type, topic, event_key, event_payload, content_type, "
                                "headers, schema_version) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                -1, &stmt, nullptr);
    if (rc != SQLITE_OK) return absl::InternalError(sqlite3_errmsg(db_));
    sqlite3_bind_text(stmt, 1, type.data(), static_cast<int>(type.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, topic.data(), static_cast<int>(topic.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 4, payload.data(), static_cast<int>(payload.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 5, content_type.data(), static_cast<int>(content_type.size()), SQLITE_TRANSIENT);
    if (headers.has_value()) {
      sqlite3_bind_text(stmt, 6, headers->data(), static_cast<int>(headers->size()), SQLITE_TRANSIENT);
    } else {
      sqlite3_bind_null(stmt, 6);
    }
    sqlite3_bind_int(stmt, 7, schema_version);
    rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? absl::OkStatus() : absl::InternalError(sqlite3_errmsg(db_));
  }

 private:
  sqlite3* db_ = nullptr;
};

TEST(RelayHostileInput, EveryRowEndsWherePromisedAndGoodRowsStillArrive) {
  const std::string brokers = Env("HERALD_TEST_KAFKA_BROKERS");
  ASSERT_FALSE(brokers.empty()) << "HERALD_TEST_KAFKA_BROKERS is not set: run `make test` or scripts/kafka-up.sh";
  const std::string unique = herald::StrCat("relay_hostile_", getpid(), "_", absl::ToUnixSeconds(absl::Now()));
  const std::string topic = herald::StrCat("relay-hostile-", getpid(), "-", absl::ToUnixSeconds(absl::Now()));
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / unique;
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "outbox.db").string();

  auto store = herald::sqlite::SqliteOutboxStore::Open({.path = path});
  ASSERT_THAT(store, IsOk());
  herald::kafka::KafkaTransportOptions kafka;
  kafka.brokers = brokers;
  kafka.client_id = unique;
  kafka.delivery_timeout = absl::Seconds(20);  // an invalid topic fails within it
  auto transport = herald::kafka::KafkaTransport::Create(kafka);
  ASSERT_THAT(transport, IsOk());
  herald::Bus bus(*std::move(transport));
  // The topic exists before the reader opens (it starts at the beginning).
  ASSERT_THAT(bus.PublishRaw(topic, "order.placed", R"({"order_id":"warm-up"})", "warm-up"), IsOk());
  herald::kafka::TopicReaderOptions read;
  read.topics = {topic};
  read.start = herald::kafka::TopicReaderOptions::Start::kBeginning;
  read.connect_timeout = absl::Seconds(30);
  auto reader = herald::kafka::KafkaTopicReader::Open(kafka, read);
  ASSERT_THAT(reader, IsOk());

  // Per case i: the hostile row (key h<i>), a good row of another key (g<i>)
  // in the same batch, and a good row of the same key (h<i>) behind it.
  const std::vector<RowCase> cases = Cases();
  SqliteDb db(path);
  for (size_t i = 0; i < cases.size(); ++i) {
    const RowCase& c = cases[i];
    const std::string h = herald::StrCat("h", i), g = herald::StrCat("g", i);
    ASSERT_THAT(db.Insert(c.type, c.topic.value_or(topic), h, c.payload, c.content_type, c.headers, c.schema_version),
                IsOk())
        << c.name;
    ASSERT_THAT(db.Insert("order.placed", topic, g, herald::StrCat(R"({"order_id":")", g, R"("})"),
                          "application/json", std::nullopt, 1),
                IsOk());
    ASSERT_THAT(db.Insert("order.placed", topic, h, herald::StrCat(R"({"order_id":")", h, R"(","after":true})"),
                          "application/json", std::nullopt, 1),
                IsOk());
  }

  herald::RelayOptions options;
  options.batch_size = 500;  // every row in one batch
  options.retry.max_attempts = 2;
  options.retry.initial_backoff = absl::Milliseconds(100);
  options.retry.max_backoff = absl::Milliseconds(200);
  options.poll_interval = absl::Milliseconds(100);
  herald::OutboxRelay relay(**store, bus, options);
  ASSERT_THAT(relay.Start(), IsOk());

  // What arrives on the topic: key -> payloads, in offset order per key.
  std::map<std::string, std::vector<std::string>> arrived;
  auto read_for = [&](absl::Duration d) {
    const absl::Time until = absl::Now() + d;
    while (absl::Now() < until) {
      absl::StatusOr<std::optional<herald::kafka::TopicRecord>> r = (*reader)->Next(absl::Milliseconds(100));
      if (!r.ok() || !r->has_value()) continue;
      arrived[(*r)->record.key].push_back((*r)->record.value);
    }
  };
  size_t want_parked = 0;
  for (const RowCase& c : cases) want_parked += c.parked ? 1 : 0;
  ASSERT_TRUE(herald::testing::Eventually(
      [&] {
        read_for(absl::Milliseconds(200));
        absl::StatusOr<herald::OutboxStats> s = (*store)->Stats();
        return s.ok() && static_cast<size_t>(s->parked) == want_parked;
      },
      absl::Seconds(120), absl::Milliseconds(10)))
      << "parked rows: want " << want_parked;
  read_for(absl::Seconds(2));

  absl::StatusOr<std::vector<herald::OutboxRecord>> parked = (*store)->ListParked(100);
  ASSERT_THAT(parked, IsOk());
  std::map<std::string, std::string> reason_by_key;
  std::vector<int64_t> to_skip;
  for (const herald::OutboxRecord& r : *parked) {
    reason_by_key[r.envelope.key] = r.last_error;
    to_skip.push_back(r.sequence);
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    const RowCase& c = cases[i];
    SCOPED_TRACE(c.name);
    const std::string h = herald::StrCat("h", i), g = herald::StrCat("g", i);
    EXPECT_EQ(arrived[g].size(), 1u) << "the good row of another key in the batch arrives";
    if (c.parked) {
      ASSERT_TRUE(reason_by_key.contains(h)) << "not parked";
      EXPECT_TRUE(absl::StrContains(absl::AsciiStrToLower(reason_by_key[h]), absl::AsciiStrToLower(c.reason)))
          << "reason: " << reason_by_key[h];
      EXPECT_FALSE(reason_by_key[h].empty());
      EXPECT_TRUE(arrived[h].empty()) << "the row behind a parked row of its key waits for the operator";
    } else {
      EXPECT_FALSE(reason_by_key.contains(h)) << "parked: " << reason_by_key[h];
      ASSERT_EQ(arrived[h].size(), 2u) << "the row and the one behind it, in order";
      EXPECT_THAT(arrived[h][1], ::testing::HasSubstr("\"after\":true"));
    }
  }

  // The operator skips the parked rows: the rows behind them arrive.
  relay.Stop();
  EXPECT_THAT((*store)->SkipParked(to_skip, "relay_hostile_input test"), IsOk());
  ASSERT_THAT(relay.Start(), IsOk());
  EXPECT_TRUE(herald::testing::Eventually(
      [&] {
        read_for(absl::Milliseconds(200));
        absl::StatusOr<herald::OutboxStats> s = (*store)->Stats();
        return s.ok() && s->pending == 0;
      },
      absl::Seconds(60), absl::Milliseconds(10)));
  relay.Stop();
  read_for(absl::Seconds(2));
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string h = herald::StrCat("h", i);
    ASSERT_FALSE(arrived[h].empty()) << cases[i].name << ": the row behind the skipped one never arrived";
    EXPECT_THAT(arrived[h].back(), ::testing::HasSubstr("\"after\":true")) << cases[i].name;
  }
  std::cout << "[hostile relay] " << cases.size() << " hostile rows on SQLite to Kafka: " << want_parked
            << " parked with their reason, " << cases.size() - want_parked
            << " published; every good row of another key arrived in the same batch, every row behind a parked "
               "one arrived after the operator's skip\n";
  EXPECT_THAT(bus.Stop(absl::Seconds(10)), IsOk());
  std::filesystem::remove_all(dir);
}

}  // namespace
