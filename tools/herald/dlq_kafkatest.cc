// `herald dlq` against the real broker (label kafka). The dead letters are
// real: a Bus subscriber whose handler fails permanently writes them, and an
// undecodable record is dead-lettered by the Bus too. Then list finds them
// with their fields and filters, --json parses, show prints every header and
// the value, replay --dry-run writes nothing, replay re-publishes exactly the
// selected originals (id, key and headers kept, herald-dlq-* removed, the
// replay marker added), a second replay replays nothing, purge deletes a
// prefix, and each bad input has its exit code and one-line message.
//
// The program under test is $HERALD_CLI; the broker is
// $HERALD_TEST_KAFKA_BROKERS.
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/core/delivery_policy.h"
#include "herald/core/strings.h"
#include "herald/core/uuid.h"
#include "herald/core/wire.h"
#include "herald/kafka/kafka_transport.h"
#include "herald/kafka/topic_reader.h"
#include "herald/testing/status_matchers.h"
#include "rapidjson/document.h"

namespace {

using ::herald::testing::IsOk;
using ::testing::HasSubstr;

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

std::string Brokers() { return Env("HERALD_TEST_KAFKA_BROKERS"); }

std::string UniqueTopic(const char* prefix) {
  static int counter = 0;
  return herald::StrCat(prefix, "-", getpid(), "-", absl::ToUnixMillis(absl::Now()) % 100000000, "-", counter++);
}

struct Result {
  int code = -1;
  std::string out, err;
  std::vector<std::string> OutLines() const {
    std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
    return lines;
  }
};

// Runs `herald args...` with stdin from /dev/null, to its end (killed after
// `timeout`).
Result Herald(const std::vector<std::string>& args, absl::Duration timeout = absl::Seconds(90)) {
  int out[2], err[2];
  if (pipe(out) != 0 || pipe(err) != 0) std::abort();
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(out[0]);
    close(err[0]);
    std::vector<char*> argv;
    std::string program = Env("HERALD_CLI");
    argv.push_back(program.data());
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(program.c_str(), argv.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  Result r;
  std::string* text[2] = {&r.out, &r.err};
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  const absl::Time deadline = absl::Now() + timeout;
  int open_fds = 2;
  while (open_fds > 0 && absl::Now() < deadline) {
    if (poll(fds, 2, 200) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP)) == 0) continue;
      char buffer[4096];
      ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        text[i]->append(buffer, static_cast<size_t>(n));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  if (open_fds > 0) kill(pid, SIGKILL);
  for (pollfd& p : fds) {
    if (p.fd >= 0) close(p.fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string Explain(const Result& r) {
  return herald::StrCat("exit ", r.code, "\nstdout:\n", r.out, "stderr:\n", r.err);
}

// Every record a topic holds now (read until nothing arrives for 3 s).
std::vector<herald::kafka::TopicRecord> ReadAll(const std::string& topic) {
  herald::kafka::KafkaTransportOptions connection;
  connection.brokers = Brokers();
  herald::kafka::TopicReaderOptions options;
  options.topics = {topic};
  options.start = herald::kafka::TopicReaderOptions::Start::kBeginning;
  options.connect_timeout = absl::Seconds(30);
  std::vector<herald::kafka::TopicRecord> out;
  absl::StatusOr<std::unique_ptr<herald::kafka::KafkaTopicReader>> reader =
      herald::kafka::KafkaTopicReader::Open(connection, options);
  EXPECT_THAT(reader, IsOk());
  if (!reader.ok()) return out;
  absl::Time idle_until = absl::Now() + absl::Seconds(3);
  while (absl::Now() < idle_until) {
    absl::StatusOr<std::optional<herald::kafka::TopicRecord>> r = (*reader)->Next(absl::Milliseconds(200));
    if (r.ok() && r->has_value()) {
      out.push_back(**r);
      idle_until = absl::Now() + absl::Seconds(3);
    }
  }
  return out;
}

// Records of `topic` that carry the replay marker.
std::vector<herald::kafka::TopicRecord> Replayed(const std::string& topic) {
  std::vector<herald::kafka::TopicRecord> out;
  for (herald::kafka::TopicRecord& r : ReadAll(topic)) {
    if (herald::FindHeader(r.record.headers, "herald-replayed-from").has_value()) out.push_back(std::move(r));
  }
  return out;
}

// Topic names the cluster has (asking for all creates none).
bool TopicExists(const std::string& topic) {
  char errstr[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", Brokers().c_str(), errstr, sizeof(errstr));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  const rd_kafka_metadata_t* metadata = nullptr;
  bool found = false;
  if (rd_kafka_metadata(rk, 1, nullptr, &metadata, 30000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (int i = 0; i < metadata->topic_cnt; ++i) found = found || topic == metadata->topics[i].topic;
    rd_kafka_metadata_destroy(metadata);
  }
  rd_kafka_destroy(rk);
  return found;
}

// Produces plain records (not herald events) to partition 0, with the given
// timestamps.
void ProducePlain(const std::string& topic, const std::vector<std::pair<std::string, absl::Time>>& values) {
  char errstr[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", Brokers().c_str(), errstr, sizeof(errstr));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  ASSERT_NE(rk, nullptr) << errstr;
  for (const auto& [value, time] : values) {
    ASSERT_EQ(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(0),
                                RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                                RD_KAFKA_V_TIMESTAMP(absl::ToUnixMillis(time)),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    // One at a time, so that the offsets follow the list.
    ASSERT_EQ(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  rd_kafka_destroy(rk);
}

// Consumer groups the cluster knows.
std::vector<std::string> Groups() {
  char errstr[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", Brokers().c_str(), errstr, sizeof(errstr));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  const rd_kafka_group_list* groups = nullptr;
  std::vector<std::string> out;
  EXPECT_EQ(rd_kafka_list_groups(rk, nullptr, &groups, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  if (groups != nullptr) {
    for (int i = 0; i < groups->group_cnt; ++i) out.emplace_back(groups->groups[i].group);
    rd_kafka_group_list_destroy(groups);
  }
  rd_kafka_destroy(rk);
  return out;
}

// The dead letters every test reads, made once: four events published
// through a Bus, three of which its subscriber refuses for good, plus one
// record that is not a herald event.
class DlqTest : public ::testing::Test {
 protected:
  struct Original {
    std::string id, type, key;
  };

  static void SetUpTestSuite() {
    if (Brokers().empty() || Env("HERALD_CLI").empty()) return;
    topic_ = new std::string(UniqueTopic("orders"));
    dlq_ = new std::string(*topic_ + ".dlq");
    originals_ = new std::map<std::string, Original>;
    herald::kafka::KafkaTransportOptions options;
    options.brokers = Brokers();
    options.client_id = "dlq-test";
    absl::StatusOr<std::unique_ptr<herald::kafka::KafkaTransport>> transport =
        herald::kafka::KafkaTransport::Create(options);
    ASSERT_THAT(transport, IsOk());
    herald::Bus bus(*std::move(transport));
    herald::SubscribeOptions sub;
    sub.group = UniqueTopic("order-handler");
    sub.topics = {*topic_};
    ASSERT_THAT(bus.Subscribe(sub,
                              [](const herald::Message& m) -> absl::Status {
                                const std::string& key = m.envelope.key;
                                if (key == "bad-1") return absl::InvalidArgumentError("bad order bad-1: total < 0");
                                if (key == "bad-2") return absl::FailedPreconditionError("stale order bad-2");
                                if (key == "bad-3") return absl::InvalidArgumentError("Bad Order bad-3: no items");
                                return absl::OkStatus();
                              }),
                IsOk());
    ASSERT_THAT(bus.Start(), IsOk());
    const std::vector<std::pair<std::string, std::string>> events = {
        {"bad-1", "order.placed"}, {"bad-2", "order.cancelled"}, {"good-1", "order.placed"}, {"bad-3", "order.placed"}};
    for (const auto& [key, type] : events) {
      herald::Envelope e;
      e.id = herald::NewUuidV7(absl::Now());
      e.type = type;
      e.topic = *topic_;
      e.key = key;
      e.time = absl::Now();
      e.payload = herald::StrCat("{\"order_id\":\"", key, "\",\"total\":-5}");
      e.headers = {{"correlation-id", "corr-" + key}, {"x-tenant", "acme"}};
      ASSERT_THAT(bus.Publish(e), IsOk());
      (*originals_)[key] = Original{e.id, type, key};
    }
    // Not a herald event: the Bus dead-letters it as it is.
    ProducePlain(*topic_, {{"not json at all", absl::Now()}});
    // Wait for the four dead letters.
    const absl::Time deadline = absl::Now() + absl::Seconds(90);
    while (absl::Now() < deadline) {
      Result r = Herald({"dlq", "list", "--kafka", Brokers(), "--topic", *dlq_});
      if (r.code == 0 && r.OutLines().size() == 4) break;
      absl::SleepFor(absl::Milliseconds(500));
    }
    ASSERT_THAT(bus.Stop(absl::Seconds(30)), IsOk());
    std::cerr << "dead letters of " << *topic_ << " are in " << *dlq_ << std::endl;
  }

  void SetUp() override {
    ASSERT_FALSE(Brokers().empty()) << "HERALD_TEST_KAFKA_BROKERS is not set: run scripts/servers-up.sh kafka and eval "
                                       "\"$(scripts/servers-env.sh)\"";
    ASSERT_FALSE(Env("HERALD_CLI").empty()) << "HERALD_CLI (the herald program) is not set";
    ASSERT_NE(topic_, nullptr);
  }

  static std::vector<std::string> List(std::vector<std::string> extra) {
    std::vector<std::string> args = {"dlq", "list", "--kafka", Brokers(), "--topic", *dlq_};
    args.insert(args.end(), extra.begin(), extra.end());
    Result r = Herald(args);
    EXPECT_EQ(r.code, 0) << Explain(r);
    return r.OutLines();
  }

  // The dead letter of `key` as `dlq list --json` describes it.
  static rapidjson::Document JsonOf(const std::string& key) {
    rapidjson::Document found;
    for (const std::string& line : List({"--json"})) {
      rapidjson::Document d;
      d.Parse(line.c_str());
      EXPECT_FALSE(d.HasParseError()) << line;
      if (!d.HasParseError() && d.IsObject() && d["key"].GetString() == key) found.CopyFrom(d, found.GetAllocator());
    }
    return found;
  }

  static std::string* topic_;
  static std::string* dlq_;
  static std::map<std::string, Original>* originals_;
};
std::string* DlqTest::topic_ = nullptr;
std::string* DlqTest::dlq_ = nullptr;
std::map<std::string, DlqTest::Original>* DlqTest::originals_ = nullptr;

TEST_F(DlqTest, ListShowsEveryDeadLetterWithItsFields) {
  std::vector<std::string> lines = List({});
  ASSERT_EQ(lines.size(), 4u);
  const Original& bad1 = originals_->at("bad-1");
  std::string line;
  for (const std::string& l : lines) {
    if (absl::StrContains(l, "key=bad-1")) line = l;
  }
  ASSERT_FALSE(line.empty()) << absl::StrJoin(lines, "\n");
  EXPECT_TRUE(absl::StartsWith(line, *dlq_ + "/")) << line;
  EXPECT_THAT(line, HasSubstr(" " + *topic_ + "/"));
  EXPECT_THAT(line, HasSubstr("id=" + bad1.id));
  EXPECT_THAT(line, HasSubstr("type=order.placed"));
  EXPECT_THAT(line, HasSubstr("attempts=1"));
  EXPECT_THAT(line, HasSubstr("age="));
  EXPECT_THAT(line, HasSubstr("reason=bad order bad-1: total < 0"));
  // The record that was not an event: listed with why it does not decode.
  int raw = 0;
  for (const std::string& l : lines) raw += absl::StrContains(l, "id=- type=-") ? 1 : 0;
  EXPECT_EQ(raw, 1) << absl::StrJoin(lines, "\n");
  // Read-only: no consumer group is left behind.
  for (const std::string& group : Groups()) EXPECT_FALSE(absl::StartsWith(group, "herald-dlq")) << group;
}

TEST_F(DlqTest, ListFilters) {
  std::vector<std::string> lines = List({"--type", "order.cancelled"});
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("key=bad-2"));
  // The reason is matched ignoring case.
  lines = List({"--reason-contains", "BAD ORDER"});
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(absl::StrJoin(lines, "\n"), HasSubstr("key=bad-1"));
  EXPECT_THAT(absl::StrJoin(lines, "\n"), HasSubstr("key=bad-3"));
  lines = List({"--id", originals_->at("bad-3").id});
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("key=bad-3"));
  EXPECT_EQ(List({"--since", "1h"}).size(), 4u);
  EXPECT_EQ(List({"--until", "1h"}).size(), 0u);
  EXPECT_EQ(List({"--since", "2000-01-01T00:00:00Z", "--until", "2100-01-01T00:00:00+01:00"}).size(), 4u);
  EXPECT_EQ(List({"--limit", "2"}).size(), 2u);
  EXPECT_EQ(List({"--type", "order.placed", "--reason-contains", "no items"}).size(), 1u);
}

TEST_F(DlqTest, ListJsonIsOneObjectPerLine) {
  std::vector<std::string> lines = List({"--json"});
  ASSERT_EQ(lines.size(), 4u);
  rapidjson::Document d = JsonOf("bad-2");
  ASSERT_TRUE(d.IsObject());
  EXPECT_EQ(std::string(d["topic"].GetString()), *dlq_);
  EXPECT_EQ(std::string(d["original_topic"].GetString()), *topic_);
  EXPECT_GE(d["original_offset"].GetInt64(), 0);
  EXPECT_EQ(std::string(d["id"].GetString()), originals_->at("bad-2").id);
  EXPECT_EQ(std::string(d["type"].GetString()), "order.cancelled");
  EXPECT_EQ(d["attempts"].GetInt(), 1);
  EXPECT_EQ(std::string(d["code"].GetString()), "FAILED_PRECONDITION");
  EXPECT_EQ(std::string(d["reason"].GetString()), "stale order bad-2");
  EXPECT_GE(d["age_seconds"].GetDouble(), 0.0);
  EXPECT_FALSE(d["value_dropped"].GetBool());
}

TEST_F(DlqTest, ShowPrintsEveryHeaderAndTheValue) {
  rapidjson::Document d = JsonOf("bad-1");
  ASSERT_TRUE(d.IsObject());
  const std::string position = herald::StrCat(d["partition"].GetInt(), ":", d["offset"].GetInt64());
  Result r = Herald({"dlq", "show", "--kafka", Brokers(), "--topic", *dlq_, position});
  ASSERT_EQ(r.code, 0) << Explain(r);
  EXPECT_THAT(r.out, HasSubstr("herald-dlq-reason: bad order bad-1: total < 0"));
  EXPECT_THAT(r.out, HasSubstr("herald-dlq-code: INVALID_ARGUMENT"));
  EXPECT_THAT(r.out, HasSubstr("herald-dlq-topic: " + *topic_));
  EXPECT_THAT(r.out, HasSubstr("herald-dlq-attempts: 1"));
  EXPECT_THAT(r.out, HasSubstr("correlation-id: corr-bad-1"));
  EXPECT_THAT(r.out, HasSubstr("x-tenant: acme"));
  EXPECT_THAT(r.out, HasSubstr("ce_id: " + originals_->at("bad-1").id));
  // The JSON envelope, pretty.
  EXPECT_THAT(r.out, HasSubstr("\n  \"id\": \"" + originals_->at("bad-1").id + "\""));
  EXPECT_THAT(r.out, HasSubstr("\"total\": -5"));

  rapidjson::Document raw;
  for (const std::string& line : List({"--json"})) {
    rapidjson::Document j;
    j.Parse(line.c_str());
    if (std::string(j["id"].GetString()).empty()) raw.CopyFrom(j, raw.GetAllocator());
  }
  ASSERT_TRUE(raw.IsObject());
  r = Herald({"dlq", "show", "--kafka", Brokers(), "--topic", *dlq_,
              herald::StrCat(raw["partition"].GetInt(), ":", raw["offset"].GetInt64())});
  ASSERT_EQ(r.code, 0) << Explain(r);
  EXPECT_THAT(r.out, HasSubstr("does not decode"));
  EXPECT_THAT(r.out, HasSubstr("value (15 bytes):\nnot json at all"));

  r = Herald(
      {"dlq", "show", "--kafka", Brokers(), "--topic", *dlq_, herald::StrCat(d["partition"].GetInt(), ":99999")});
  EXPECT_EQ(r.code, 1) << Explain(r);
  EXPECT_THAT(r.err, HasSubstr("no record at " + *dlq_));
}

TEST_F(DlqTest, ReplayRepublishesTheSelectedOriginalsOnce) {
  const std::vector<std::string> base = {"dlq", "replay", "--kafka", Brokers(), "--topic", *dlq_};
  auto replay = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return Herald(args);
  };
  // --dry-run: says what it would do, writes nothing.
  Result r = replay({"--type", "order.placed", "--dry-run"});
  ASSERT_EQ(r.code, 0) << Explain(r);
  int would = 0;
  for (const std::string& line : r.OutLines()) would += absl::StartsWith(line, "would replay " + *dlq_ + "/") ? 1 : 0;
  EXPECT_EQ(would, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("selected 2, would replay 2, already replayed 0, failed 0"));
  EXPECT_FALSE(TopicExists(*dlq_ + ".replayed"));
  EXPECT_TRUE(Replayed(*topic_).empty());
  EXPECT_EQ(ReadAll(*topic_).size(), 5u);  // the four events and the plain record

  // The two order.placed dead letters go back to the original topic.
  r = replay({"--type", "order.placed", "--rate", "20/s"});
  ASSERT_EQ(r.code, 0) << Explain(r);
  EXPECT_THAT(r.out, HasSubstr("dlq replay: selected 2, replayed 2, already replayed 0, failed 0"));
  std::vector<herald::kafka::TopicRecord> replayed = Replayed(*topic_);
  ASSERT_EQ(replayed.size(), 2u);
  EXPECT_EQ(ReadAll(*topic_).size(), 7u);        // and nothing else
  std::map<std::string, std::string> marker_of;  // key -> marker
  for (const herald::kafka::TopicRecord& rec : replayed) {
    absl::StatusOr<herald::Envelope> e =
        herald::DecodeRecord(rec.topic, rec.record.key, rec.record.value, rec.record.headers);
    ASSERT_THAT(e, IsOk());
    ASSERT_TRUE(e->key == "bad-1" || e->key == "bad-3") << e->key;
    EXPECT_EQ(e->id, originals_->at(e->key).id);
    EXPECT_EQ(e->type, "order.placed");
    EXPECT_EQ(rec.record.key, e->key);
    EXPECT_EQ(herald::FindHeader(rec.record.headers, "correlation-id").value_or(""), "corr-" + e->key);
    EXPECT_EQ(herald::FindHeader(rec.record.headers, "x-tenant").value_or(""), "acme");
    for (const auto& [name, value] : rec.record.headers) EXPECT_FALSE(herald::IsDeadLetterHeader(name)) << name;
    marker_of[e->key] = std::string(*herald::FindHeader(rec.record.headers, "herald-replayed-from"));
  }
  rapidjson::Document bad1 = JsonOf("bad-1");
  EXPECT_EQ(marker_of["bad-1"], herald::StrCat(*dlq_, "/", bad1["partition"].GetInt(), "/", bad1["offset"].GetInt64()));
  EXPECT_TRUE(TopicExists(*dlq_ + ".replayed"));

  // Twice over the same range: nothing is replayed again.
  r = replay({"--type", "order.placed"});
  ASSERT_EQ(r.code, 0) << Explain(r);
  EXPECT_THAT(r.out, HasSubstr("dlq replay: selected 2, replayed 0, already replayed 2, failed 0"));
  EXPECT_EQ(ReadAll(*topic_).size(), 7u);

  // --to another topic, one dead letter by id.
  const std::string other = UniqueTopic("orders-retry");
  r = replay({"--id", originals_->at("bad-2").id, "--to", other});
  ASSERT_EQ(r.code, 0) << Explain(r);
  EXPECT_THAT(r.out, HasSubstr("selected 1, replayed 1, already replayed 0, failed 0"));
  std::vector<herald::kafka::TopicRecord> moved = Replayed(other);
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].record.key, "bad-2");

  // --limit counts what is left to replay, not what was replayed before.
  r = replay({"--limit", "1", "--dry-run"});
  ASSERT_EQ(r.code, 0) << Explain(r);
  EXPECT_THAT(r.out, HasSubstr(", would replay 1, "));
  int listed = 0;
  for (const std::string& line : r.OutLines()) listed += absl::StartsWith(line, "would replay " + *dlq_ + "/") ? 1 : 0;
  EXPECT_EQ(listed, 1) << r.out;

  // Everything: only the one left (the record that is not an event) goes.
  r = replay({});
  ASSERT_EQ(r.code, 0) << Explain(r);
  EXPECT_THAT(r.out, HasSubstr("dlq replay: selected 4, replayed 1, already replayed 3, failed 0"));
  replayed = Replayed(*topic_);
  ASSERT_EQ(replayed.size(), 3u);
  int raw = 0;
  for (const auto& rec : replayed) raw += rec.record.value == "not json at all" ? 1 : 0;
  EXPECT_EQ(raw, 1);
}

TEST_F(DlqTest, PurgeDeletesAPrefix) {
  const std::string topic = UniqueTopic("purge");
  const absl::Time old = absl::Now() - absl::Hours(3);
  ProducePlain(topic, {{"a", old}, {"b", old}, {"c", absl::Now()}, {"d", absl::Now()}, {"e", absl::Now()}});
  const std::vector<std::string> base = {"dlq", "purge", "--kafka", Brokers(), "--topic", topic};
  auto purge = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return Herald(args);
  };
  auto values = [&] {
    std::string out;
    for (const auto& r : ReadAll(topic)) out += r.record.value;
    return out;
  };
  ASSERT_EQ(values(), "abcde");

  Result r = purge({"--older-than", "1h", "--dry-run"});
  ASSERT_EQ(r.code, 0) << Explain(r);
  EXPECT_THAT(r.out, HasSubstr("would delete " + topic + " 0:0 to 0:1 (2 records; 3 kept)"));
  EXPECT_EQ(values(), "abcde");
  // Not on a terminal and no --yes: it shows the plan and deletes nothing.
  r = purge({"--older-than", "1h"});
  EXPECT_EQ(r.code, 2) << Explain(r);
  EXPECT_THAT(r.err, HasSubstr("add --yes"));
  EXPECT_EQ(values(), "abcde");

  r = purge({"--older-than", "1h", "--yes"});
  ASSERT_EQ(r.code, 0) << Explain(r);
  EXPECT_THAT(r.out, HasSubstr(topic + " 0 now starts at offset 2"));
  EXPECT_EQ(values(), "cde");

  r = purge({"--before", "0:3", "--yes"});
  ASSERT_EQ(r.code, 0) << Explain(r);
  EXPECT_THAT(r.out, HasSubstr("dlq purge: deleted 1 record(s)"));
  EXPECT_EQ(values(), "de");
  // Past the end: refused, nothing deleted.
  r = purge({"--before", "0:99", "--yes"});
  EXPECT_EQ(r.code, 2) << Explain(r);
  EXPECT_THAT(r.err, HasSubstr("is past the end"));
  EXPECT_EQ(values(), "de");
}

// A bad input: its exit code and a one-line message saying what is wrong.
void ExpectError(const std::vector<std::string>& args, int code, const std::string& message) {
  const absl::Time start = absl::Now();
  Result r = Herald(args, absl::Seconds(60));
  EXPECT_EQ(r.code, code) << Explain(r);
  EXPECT_THAT(r.err, HasSubstr(message)) << Explain(r);
  std::vector<std::string> lines = absl::StrSplit(r.err, '\n', absl::SkipEmpty());
  EXPECT_EQ(lines.size(), 1u) << Explain(r);
  EXPECT_TRUE(r.out.empty()) << Explain(r);
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
}

TEST_F(DlqTest, BadInputIsOneLineWithItsExitCode) {
  const std::string b = Brokers();
  ExpectError({"dlq", "show", "--kafka", b, "--topic", *dlq_, "zero:1"}, 2, "PARTITION:OFFSET");
  ExpectError({"dlq", "show", "--kafka", b, "--topic", *dlq_, "0:-1"}, 2, "PARTITION:OFFSET");
  ExpectError({"dlq", "list", "--kafka", b, "--topic", *dlq_, "--since", "yesterday"}, 2, "--since");
  ExpectError({"dlq", "list", "--kafka", b, "--topic", *dlq_, "--since", "1h", "--until", "2h"}, 2,
              "is not before --until");
  ExpectError({"dlq", "list", "--kafka", b, "--topic", *dlq_, "--timeout", "10"}, 2, "--timeout");
  ExpectError({"dlq", "list", "--kafka", b, "--topic", *dlq_, "--limit", "0"}, 2, "--limit");
  ExpectError({"dlq", "replay", "--kafka", b, "--topic", *dlq_, "--rate", "0/s"}, 2, "--rate");
  ExpectError({"dlq", "purge", "--kafka", b, "--topic", *dlq_, "--older-than", "5"}, 2, "--older-than");
  ExpectError({"dlq", "purge", "--kafka", b, "--topic", *dlq_}, 2, "either --before PARTITION:OFFSET or --older-than");
  ExpectError({"dlq", "purge", "--kafka", b, "--topic", *dlq_, "--before", "0:1", "--older-than", "1h"}, 2,
              "either --before");
  ExpectError({"dlq", "list", "--kafka", b}, 2, "--topic");
  ExpectError({"dlq", "list", "--kafka", b, "--topic", "bad topic name"}, 2, "bad topic name");
  const std::string missing = UniqueTopic("missing") + ".dlq";
  ExpectError({"dlq", "list", "--kafka", b, "--topic", missing}, 1, "topic \"" + missing + "\" does not exist");
  ExpectError({"dlq", "replay", "--kafka", b, "--topic", missing}, 1, "does not exist");
  EXPECT_FALSE(TopicExists(missing));
  // Brokers down: a clear error within --timeout, never a hang.
  ExpectError({"dlq", "list", "--kafka", "127.0.0.1:1", "--topic", *dlq_, "--timeout", "2s"}, 1,
              "no Kafka broker at 127.0.0.1:1 answered within 2s");
  ExpectError({"dlq", "purge", "--kafka", "127.0.0.1:1", "--topic", *dlq_, "--before", "0:1", "--timeout", "2s"}, 1,
              "no Kafka broker");
}

}  // namespace
