#include "config_file.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "flags.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/strings.h"

namespace herald::tools {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// A program shaped like herald's: `relay` with flags of each kind, and
// `other` with a flag relay does not have.
struct Program {
  CLI::App app{"test"};
  CLI::App* relay = nullptr;
  std::string sqlite;
  int batch = 500;
  bool drain = false;
  absl::Duration poll = absl::Seconds(1);
  std::vector<std::string> topics;
  std::vector<std::string> properties;  // -X,--kafka-property
  std::string required_text;
  std::string other_only;

  explicit Program(bool with_required = false) {
    relay = app.add_subcommand("relay");
    ConfigFileOptions options;
    options.table_checks["kafka-property"] = [](const std::string& key, const std::string&) {
      if (key == "sasl.password") return absl::InvalidArgumentError("a secret is never taken from the config file");
      return absl::OkStatus();
    };
    AddConfigOption(relay, options);
    relay->add_option("--sqlite", sqlite);
    relay->add_option("--batch", batch)->check(AtLeast(1));
    relay->add_flag("--drain", drain);
    AddDurationOption(relay, "--poll", poll, "poll", DurationFloor::kPositive);
    relay->add_option("--topic", topics);
    relay->add_option("-X,--kafka-property", properties)->type_name("KEY=VALUE")->allow_extra_args(false);
    if (with_required) relay->add_option("--required", required_text)->required();
    CLI::App* other = app.add_subcommand("other");
    other->add_option("--other-only", other_only);
  }

  // Parses `args` after "relay"; "" when it went through, else the error.
  std::string Parse(std::vector<std::string> args) {
    args.insert(args.begin(), "relay");
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    try {
      app.parse(reversed);
    } catch (const CLI::ParseError& e) {
      return e.what();
    }
    return "";
  }
};

class ConfigFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& text) {
    path_ = StrCat(::testing::TempDir(), "/herald-config-", getpid(), "-", counter_++, ".toml");
    std::ofstream(path_) << text;
    return path_;
  }
  void TearDown() override {
    if (!path_.empty()) std::remove(path_.c_str());
  }
  std::string path_;
  int counter_ = 0;
};

TEST_F(ConfigFileTest, SetsEveryKindOfFlagFromKeysNamedAfterThem) {
  Program p;
  const std::string path = Write(
      "# a comment\n"
      "[store]\n"
      "sqlite = \"edge.db\"\n"
      "[relay]\n"
      "batch = 42\n"
      "drain = true\n"
      "poll = \"250ms\"\n"
      "topic = [\"a\", \"b\"]\n"
      "[kafka-property]\n"
      "\"security.protocol\" = \"SASL_SSL\"\n"
      "sasl.mechanism = \"SCRAM-SHA-512\"\n"
      "linger.ms = 5\n"
      "[logging]\n"
      "other-only = \"ignored: a flag of another command\"\n");
  ASSERT_EQ(p.Parse({"--config", path}), "");
  EXPECT_EQ(p.sqlite, "edge.db");
  EXPECT_EQ(p.batch, 42);
  EXPECT_TRUE(p.drain);
  EXPECT_EQ(p.poll, absl::Milliseconds(250));
  EXPECT_THAT(p.topics, ElementsAre("a", "b"));
  EXPECT_THAT(p.properties, ElementsAre("linger.ms=5", "sasl.mechanism=SCRAM-SHA-512", "security.protocol=SASL_SSL"));
  EXPECT_EQ(p.other_only, "");
}

TEST_F(ConfigFileTest, TheCommandLineWinsOverTheFileFlagByFlagAndPropertyByProperty) {
  Program p;
  const std::string path = Write(
      "[relay]\nbatch = 42\npoll = \"5s\"\n"
      "[kafka-property]\n\"linger.ms\" = \"5\"\n\"acks\" = \"1\"\n");
  ASSERT_EQ(p.Parse({"--batch", "7", "--config", path, "-X", "acks=all"}), "");
  EXPECT_EQ(p.batch, 7);
  EXPECT_EQ(p.poll, absl::Seconds(5));
  EXPECT_THAT(p.properties, ElementsAre("acks=all", "linger.ms=5"));
}

TEST_F(ConfigFileTest, TheFileMayGiveARequiredFlag) {
  Program p(/*with_required=*/true);
  EXPECT_THAT(p.Parse({}), HasSubstr("--required"));
  Program q(/*with_required=*/true);
  ASSERT_EQ(q.Parse({"--config", Write("required = \"given\"\n")}), "");
  EXPECT_EQ(q.required_text, "given");
}

TEST_F(ConfigFileTest, AnUnknownKeyIsOneLineNamingFileLineAndKey) {
  Program p;
  const std::string path = Write("[relay]\nbatch = 1\nbatchsize = 5\n");
  const std::string error = p.Parse({"--config", path});
  EXPECT_THAT(error, AllOf(HasSubstr(path + ":3: relay.batchsize: no herald command has a flag --batchsize"),
                           Not(HasSubstr("\n"))));
}

TEST_F(ConfigFileTest, AnUnknownSectionIsRefused) {
  Program p;
  const std::string path = Write("batch = 3\n\n[relayy]\nbatch = 5\n");
  EXPECT_THAT(p.Parse({"--config", path}), HasSubstr(path + ":3: [relayy]: not a section"));
}

TEST_F(ConfigFileTest, AWrongTypeNamesTheKeyAndTheTypeWanted) {
  struct Case {
    std::string text;
    std::string want;
  };
  for (const Case& c : std::vector<Case>{
           {"[relay]\nbatch = \"500\"\n", ":2: relay.batch: want a whole number, not string"},
           {"[relay]\ndrain = \"yes\"\n", ":2: relay.drain: want true or false, not string"},
           {"[relay]\npoll = 5\n", ":2: relay.poll: want a string, not integer"},
           {"[store]\n\nsqlite = 1\n", ":3: store.sqlite: want a string, not integer"},
           {"[relay]\ntopic = [\"a\", 1]\n", ":2: relay.topic: want an array of strings"},
           {"kafka-property = \"acks=all\"\n", ":1: kafka-property: want a table of KEY = VALUE entries"},
           {"[kafka-property]\nacks = [1]\n", ":2: kafka-property.acks: want a string, number or true/false"},
           {"relay = 5\n", ":1: relay: a section ([relay]), not a integer"},
       }) {
    Program p;
    const std::string path = Write(c.text);
    EXPECT_THAT(p.Parse({"--config", path}), HasSubstr(path + c.want)) << c.text;
  }
}

TEST_F(ConfigFileTest, ABadValueGetsTheFlagsOwnMessageWithFileLineAndKey) {
  Program p;
  const std::string path = Write("[relay]\nbatch = 0\n");
  EXPECT_THAT(p.Parse({"--config", path}), HasSubstr(path + ":2: relay.batch: must be at least 1, not 0"));
  Program q;
  const std::string path2 = Write("[relay]\n\npoll = \"5\"\n");
  EXPECT_THAT(q.Parse({"--config", path2}), AllOf(HasSubstr(path2 + ":3: relay.poll:"), HasSubstr("250ms, 5s")));
}

TEST_F(ConfigFileTest, ATableCheckRefusesAnEntryWithFileLineAndKeyAndNotTheValue) {
  Program p;
  const std::string path = Write("[kafka-property]\nacks = \"all\"\n\"sasl.password\" = \"hunter2\"\n");
  const std::string error = p.Parse({"--config", path});
  EXPECT_THAT(error, AllOf(HasSubstr(path + ":3: kafka-property.sasl.password: a secret is never taken"),
                           Not(HasSubstr("hunter2"))));
}

TEST_F(ConfigFileTest, AMissingFileOrOneThatIsNotTomlIsRefused) {
  Program p;
  EXPECT_THAT(p.Parse({"--config", "/nonexistent/herald.toml"}),
              HasSubstr("--config /nonexistent/herald.toml: cannot read it"));
  Program q;
  const std::string path = Write("[relay]\nbatch = = 5\n");
  EXPECT_THAT(q.Parse({"--config", path}), HasSubstr(path + ":2: not TOML"));
}

TEST_F(ConfigFileTest, ConfigAndHelpAreNoKeys) {
  Program p;
  const std::string path = Write("config = \"other.toml\"\n");
  EXPECT_THAT(p.Parse({"--config", path}), HasSubstr(path + ":1: config: --config is not a key"));
}

TEST_F(ConfigFileTest, AFlagAddedLaterIsAKeyWithNoOtherCode) {
  Program p;
  std::string level;
  p.relay->add_option("--log-level", level);
  ASSERT_EQ(p.Parse({"--config", Write("[logging]\nlog-level = \"debug\"\n")}), "");
  EXPECT_EQ(level, "debug");
}

}  // namespace
}  // namespace herald::tools
