// `herald tail` against the real broker (label kafka): it starts at the end
// (--from-beginning reads what is there), prints an undecodable record raw
// with the reason, and leaves no trace: no `<topic>.dlq`, no consumer group,
// no committed offset. A missing topic is an error, not silence.
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
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/core/strings.h"
#include "herald/kafka/kafka_transport.h"
#include "herald/testing/sample_events.h"
#include "herald/testing/status_matchers.h"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

std::string UniqueTopic(const char* prefix) {
  static int counter = 0;
  return herald::StrCat(prefix, "-", getpid(), "-", absl::ToUnixMillis(absl::Now()) % 100000000, "-", counter++);
}

// A running `herald` with its stdout and stderr read line by line.
class Cli {
 public:
  explicit Cli(const std::vector<std::string>& args) {
    int out[2], err[2];
    if (pipe(out) != 0 || pipe(err) != 0) std::abort();
    pid_ = fork();
    if (pid_ == 0) {
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
    fds_[0] = out[0];
    fds_[1] = err[0];
  }
  ~Cli() {
    if (pid_ > 0 && exit_code_ < 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(fds_[0]);
    close(fds_[1]);
  }

  // Reads until a line of stdout (stream 0) or stderr (1) contains `text`,
  // or `timeout` passes.
  bool WaitFor(int stream, const std::string& text, absl::Duration timeout = absl::Seconds(30)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      if (absl::StrContains(text_[stream], text)) return true;
      if (absl::Now() >= deadline) return false;
      ReadSome(deadline);
    }
  }
  // Sends SIGTERM and waits for the exit code (-1 if it has not exited
  // within `timeout`).
  int Terminate(absl::Duration timeout = absl::Seconds(15)) {
    kill(pid_, SIGTERM);
    return Wait(timeout);
  }
  int Wait(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        while (ReadSome(absl::Now() + absl::Milliseconds(100))) {
        }
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return exit_code_;
      }
      ReadSome(absl::Now() + absl::Milliseconds(50));
    }
    return -1;
  }
  const std::string& out() const { return text_[0]; }
  const std::string& err() const { return text_[1]; }
  pid_t pid() const { return pid_; }

 private:
  // Reads what arrives within 200 ms (at most until `deadline`); false
  // when nothing came.
  bool ReadSome(absl::Time deadline) {
    pollfd p[2] = {{fds_[0], POLLIN, 0}, {fds_[1], POLLIN, 0}};
    int ms = static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
    if (poll(p, 2, std::min(ms, 200)) <= 0) return false;
    bool got = false;
    for (int i = 0; i < 2; ++i) {
      if ((p[i].revents & (POLLIN | POLLHUP)) == 0) continue;
      char buffer[4096];
      ssize_t n = read(fds_[i], buffer, sizeof(buffer));
      if (n > 0) {
        text_[i].append(buffer, static_cast<size_t>(n));
        got = true;
      }
    }
    return got;
  }

  pid_t pid_ = -1;
  int fds_[2] = {-1, -1};
  std::string text_[2];
  int exit_code_ = -1;
};

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using Handle = std::unique_ptr<rd_kafka_t, HandleDeleter>;

Handle Client(rd_kafka_type_t type) {
  char errstr[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", Env("HERALD_TEST_KAFKA_BROKERS").c_str(), errstr, sizeof(errstr));
  return Handle(rd_kafka_new(type, conf, errstr, sizeof(errstr)));
}

// Produces a record that is not a herald event (a plain producer's bytes).
void ProduceRaw(const std::string& topic, const std::string& value) {
  Handle rk = Client(RD_KAFKA_PRODUCER);
  ASSERT_EQ(rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                              RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(rd_kafka_flush(rk.get(), 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

void PublishEvent(const std::string& topic, const std::string& customer_id) {
  herald::kafka::KafkaTransportOptions options;
  options.brokers = Env("HERALD_TEST_KAFKA_BROKERS");
  options.client_id = "tail-test";
  absl::StatusOr<std::unique_ptr<herald::kafka::KafkaTransport>> transport =
      herald::kafka::KafkaTransport::Create(options);
  ASSERT_TRUE(transport.ok()) << transport.status();
  herald::Bus bus(*std::move(transport));
  ASSERT_TRUE(
      bus.PublishRaw(topic, "customer.created", herald::StrCat("{\"customer_id\":\"", customer_id, "\"}"), customer_id)
          .ok());
  ASSERT_TRUE(bus.Stop(absl::Seconds(30)).ok());
}

// Topic names the cluster has (asking for all creates none).
std::vector<std::string> Topics() {
  Handle rk = Client(RD_KAFKA_PRODUCER);
  const rd_kafka_metadata_t* metadata = nullptr;
  std::vector<std::string> out;
  if (rd_kafka_metadata(rk.get(), 1, nullptr, &metadata, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) return out;
  for (int i = 0; i < metadata->topic_cnt; ++i) out.emplace_back(metadata->topics[i].topic);
  rd_kafka_metadata_destroy(metadata);
  return out;
}

// Consumer groups the cluster knows, with the topics they committed for.
std::vector<std::string> Groups() {
  Handle rk = Client(RD_KAFKA_PRODUCER);
  const rd_kafka_group_list* groups = nullptr;
  std::vector<std::string> out;
  EXPECT_EQ(rd_kafka_list_groups(rk.get(), nullptr, &groups, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  if (groups == nullptr) return out;
  for (int i = 0; i < groups->group_cnt; ++i) out.emplace_back(groups->groups[i].group);
  rd_kafka_group_list_destroy(groups);
  return out;
}

class TailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(Env("HERALD_TEST_KAFKA_BROKERS").empty())
        << "HERALD_TEST_KAFKA_BROKERS is not set: run scripts/kafka-up.sh and eval \"$(scripts/servers-env.sh)\"";
    ASSERT_FALSE(Env("HERALD_CLI").empty()) << "HERALD_CLI (the herald program) is not set";
  }
};

TEST_F(TailTest, StartsAtTheEndPrintsUndecodableRawAndLeavesNoTrace) {
  const std::string topic = UniqueTopic("tail");
  PublishEvent(topic, "old-customer");
  ProduceRaw(topic, "old not json");

  Cli tail({"tail", "--kafka", Env("HERALD_TEST_KAFKA_BROKERS"), "--topic", topic});
  ASSERT_TRUE(tail.WaitFor(1, "tail: reading")) << tail.err();
  PublishEvent(topic, "new-customer");
  ProduceRaw(topic, "new not json");
  ASSERT_TRUE(tail.WaitFor(0, "new not json")) << tail.out() << tail.err();
  ASSERT_TRUE(tail.WaitFor(0, "new-customer")) << tail.out() << tail.err();
  EXPECT_EQ(tail.Terminate(), 0) << tail.err();

  // Only what arrived after the start, the undecodable record raw with why.
  EXPECT_THAT(tail.out(), Not(HasSubstr("old")));
  EXPECT_THAT(tail.out(), HasSubstr("customer.created"));
  EXPECT_THAT(tail.out(), HasSubstr("RAW key= value=new not json (not a herald event: "));
  // No dead letters, no group, so no committed offsets either.
  std::vector<std::string> topics = Topics();
  EXPECT_THAT(topics, ::testing::Contains(topic));
  EXPECT_THAT(topics, Not(::testing::Contains(topic + ".dlq")));
  for (const std::string& group : Groups()) {
    EXPECT_FALSE(absl::StartsWith(group, herald::StrCat("herald-reader-", tail.pid(), "-"))) << group;
    EXPECT_FALSE(absl::StartsWith(group, "herald-tail")) << group;
  }
}

TEST_F(TailTest, FromBeginningReadsWhatIsThere) {
  const std::string topic = UniqueTopic("tail-begin");
  PublishEvent(topic, "old-customer");
  ProduceRaw(topic, "old not json");
  Cli tail({"tail", "--kafka", Env("HERALD_TEST_KAFKA_BROKERS"), "--topic", topic, "--from-beginning"});
  ASSERT_TRUE(tail.WaitFor(0, "old not json")) << tail.out() << tail.err();
  ASSERT_TRUE(tail.WaitFor(0, "old-customer")) << tail.out() << tail.err();
  EXPECT_EQ(tail.Terminate(), 0) << tail.err();
  EXPECT_THAT(Topics(), Not(::testing::Contains(topic + ".dlq")));
}

TEST_F(TailTest, MissingTopicIsAnErrorWithinSeconds) {
  const std::string topic = UniqueTopic("tail-missing");
  const absl::Time start = absl::Now();
  Cli tail({"tail", "--kafka", Env("HERALD_TEST_KAFKA_BROKERS"), "--topic", topic});
  EXPECT_EQ(tail.Wait(absl::Seconds(20)), 1) << tail.err();
  EXPECT_LT(absl::Now() - start, absl::Seconds(15));
  EXPECT_THAT(tail.err(), HasSubstr(herald::StrCat("topic \"", topic, "\" does not exist")));
  // Reading did not create it.
  EXPECT_THAT(Topics(), Not(::testing::Contains(topic)));
}

}  // namespace
