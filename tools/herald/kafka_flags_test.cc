#include "kafka_flags.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/strings.h"
#include "herald/testing/status_matchers.h"

namespace herald::tools {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using Properties = std::map<std::string, std::string>;

class KafkaPropertiesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char name[] = "/tmp/herald-kafka-flags-test-XXXXXX";
    int fd = mkstemp(name);
    ASSERT_GE(fd, 0);
    close(fd);
    path_ = name;
  }
  void TearDown() override { std::remove(path_.c_str()); }
  void Write(const std::string& text) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out << text;
  }
  std::string path_;
};

TEST_F(KafkaPropertiesTest, NothingGivenIsNoProperties) {
  absl::StatusOr<Properties> properties = KafkaProperties("", {});
  ASSERT_THAT(properties, IsOk());
  EXPECT_TRUE(properties->empty());
}

TEST_F(KafkaPropertiesTest, XOverridesTheFile) {
  Write("security.protocol=SASL_SSL\nsasl.mechanisms=SCRAM-SHA-256\nsasl.password=pw\n");
  absl::StatusOr<Properties> properties =
      KafkaProperties(path_, {"sasl.mechanisms=SCRAM-SHA-512", "sasl.username = svc", "client.rack=r1"});
  ASSERT_THAT(properties, IsOk());
  EXPECT_EQ(*properties, (Properties{{"security.protocol", "SASL_SSL"},
                                     {"sasl.mechanisms", "SCRAM-SHA-512"},
                                     {"sasl.username", "svc"},
                                     {"sasl.password", "pw"},
                                     {"client.rack", "r1"}}));
}

TEST_F(KafkaPropertiesTest, ValueMayHoldEquals) {
  absl::StatusOr<Properties> properties = KafkaProperties("", {"client.id=a=b"});
  ASSERT_THAT(properties, IsOk());
  EXPECT_EQ(properties->at("client.id"), "a=b");
}

TEST_F(KafkaPropertiesTest, BadXFlagsNameTheKeyNeverTheValue) {
  EXPECT_THAT(KafkaProperties("", {"hunter2"}),
              StatusIs(absl::StatusCode::kInvalidArgument, AllOf(HasSubstr("-X"), Not(HasSubstr("hunter2")))));
  EXPECT_THAT(KafkaProperties("", {"=hunter2"}),
              StatusIs(absl::StatusCode::kInvalidArgument, AllOf(HasSubstr("no key"), Not(HasSubstr("hunter2")))));
  EXPECT_THAT(KafkaProperties("", {"no.such.property=hunter2"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("\"no.such.property\""), Not(HasSubstr("hunter2")))));
  EXPECT_THAT(KafkaProperties("", {"security.protocol=SASL_TLS"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"security.protocol\"")));
  EXPECT_THAT(KafkaProperties("", {"client.id=a", "client.id=b"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("client.id is given twice")));
}

TEST_F(KafkaPropertiesTest, SecretsAreRefusedOnTheCommandLine) {
  for (const char* flag : {"sasl.password=hunter2", "ssl.key.password=hunter2", "ssl.key.pem=hunter2",
                           "sasl.oauthbearer.config=hunter2", "sasl.oauthbearer.client.secret=hunter2"}) {
    absl::Status status = KafkaProperties("", {flag}).status();
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--kafka-config"))) << flag;
    EXPECT_THAT(std::string(status.message()), Not(HasSubstr("hunter2"))) << flag;
  }
}

TEST_F(KafkaPropertiesTest, FileErrorsNameFileLineAndKeyAsUsageErrors) {
  Write("security.protocol=SASL_SSL\nsasl.passwrd=hunter2\n");
  absl::Status status = KafkaProperties(path_, {}).status();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr("--kafka-config"), HasSubstr(herald::StrCat(path_, ":2:")),
                                     HasSubstr("\"sasl.passwrd\""), Not(HasSubstr("hunter2")))));
  // A file that cannot be read is a command-line mistake (exit code 2) too.
  EXPECT_THAT(KafkaProperties(path_ + ".absent", {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(path_ + ".absent")));
}

TEST_F(KafkaPropertiesTest, SecretEnvReadsTheSecretFromTheVariableAfterTheFileAndBeforeX) {
  Write("sasl.password=from-file\nsasl.username=u\n");
  ASSERT_EQ(setenv("HERALD_TEST_KAFKA_SECRET", "from-env", 1), 0);
  absl::StatusOr<Properties> properties =
      KafkaProperties(path_, {"sasl.username=x"}, {"sasl.password=HERALD_TEST_KAFKA_SECRET"});
  ASSERT_THAT(properties.status(), IsOk());
  EXPECT_EQ(properties->at("sasl.password"), "from-env");
  EXPECT_EQ(properties->at("sasl.username"), "x");
  unsetenv("HERALD_TEST_KAFKA_SECRET");
}

TEST_F(KafkaPropertiesTest, SecretEnvErrorsNameFlagPropertyAndVariableNeverTheValue) {
  unsetenv("HERALD_TEST_KAFKA_UNSET");
  EXPECT_THAT(KafkaProperties("", {}, {"sasl.password=HERALD_TEST_KAFKA_UNSET"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--kafka-secret-env sasl.password=HERALD_TEST_KAFKA_UNSET: environment variable "
                                 "HERALD_TEST_KAFKA_UNSET is not set")));
  EXPECT_THAT(KafkaProperties("", {}, {"HERALD_TEST_KAFKA_UNSET"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("want PROPERTY=VARIABLE")));
  ASSERT_EQ(setenv("HERALD_TEST_KAFKA_SECRET", "hunter2", 1), 0);
  EXPECT_THAT(
      KafkaProperties("", {}, {"sasl.pasword=HERALD_TEST_KAFKA_SECRET"}),
      StatusIs(absl::StatusCode::kInvalidArgument, AllOf(HasSubstr("\"sasl.pasword\""), Not(HasSubstr("hunter2")))));
  unsetenv("HERALD_TEST_KAFKA_SECRET");
}

TEST(CheckKafkaPropertyFromConfig, RefusesSecretsAndUnknownPropertiesWithoutTheValue) {
  EXPECT_THAT(CheckKafkaPropertyFromConfig("acks", "all"), IsOk());
  EXPECT_THAT(CheckKafkaPropertyFromConfig("sasl.password", "hunter2"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("never taken from the config file"), Not(HasSubstr("hunter2")))));
  EXPECT_THAT(CheckKafkaPropertyFromConfig("no.such.property", "1"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("No such configuration property")));
  EXPECT_THAT(CheckKafkaSecretEnvFromConfig("sasl.password", "HERALD_KAFKA_PASSWORD"), IsOk());
  EXPECT_THAT(CheckKafkaSecretEnvFromConfig("sasl.password", "1BAD"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not an environment variable name")));
  EXPECT_THAT(CheckKafkaSecretEnvFromConfig("sasl.pasword", "HERALD_KAFKA_PASSWORD"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("No such configuration property")));
}

}  // namespace
}  // namespace herald::tools
