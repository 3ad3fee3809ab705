#include "herald/kafka/properties.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/kafka/kafka_transport.h"
#include "herald/testing/status_matchers.h"
#include "kafka_config.h"

namespace herald::kafka {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(IsSecretProperty, MatchesEverySensitiveLibrdkafkaProperty) {
  for (const char* name :
       {"sasl.password", "ssl.key.password", "ssl.keystore.password", "ssl.truststore.password", "ssl.key.pem",
        "ssl_key", "ssl_key.pem", "sasl.oauthbearer.config", "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.assertion.private.key.passphrase", "sasl.oauthbearer.assertion.private.key.pem",
        "SSL.Keystore.Password", "Sasl.OAuthBearer.Config", "my.custom.secret.token", "plugin.password.file"}) {
    EXPECT_TRUE(IsSecretProperty(name)) << name;
  }
}

TEST(IsSecretProperty, LeavesOrdinaryPropertiesVisible) {
  for (const char* name :
       {"sasl.username", "sasl.mechanisms", "security.protocol", "ssl.ca.location", "ssl.key.location",
        "ssl.certificate.location", "ssl.certificate.pem", "ssl.keystore.location", "bootstrap.servers", "client.id"}) {
    EXPECT_FALSE(IsSecretProperty(name)) << name;
  }
}

TEST(RedactSecretValues, ReplacesEverySecretValueInText) {
  const std::map<std::string, std::string> properties = {{"sasl.password", "pw-123"},
                                                         {"ssl.key.pem", "KEYDATA"},
                                                         {"sasl.oauthbearer.config", "clientSecret=abc"},
                                                         {"sasl.username", "svc"},
                                                         {"ssl.key.password", ""}};
  const std::string out = RedactSecretValues(properties, "user svc pw pw-123 key KEYDATA cfg clientSecret=abc pw-123");
  EXPECT_EQ(out, "user svc pw [redacted] key [redacted] cfg [redacted] [redacted]");
}

TEST(RedactSecrets, CoversEveryPropertyMapOfTheOptions) {
  KafkaTransportOptions options;
  options.properties["sasl.password"] = "common-pw";
  options.producer_properties["ssl.key.password"] = "producer-pw";
  options.consumer_properties["sasl.oauthbearer.client.secret"] = "consumer-secret";
  EXPECT_EQ(RedactSecrets(options, "a common-pw b producer-pw c consumer-secret"),
            "a [redacted] b [redacted] c [redacted]");
}

TEST(CheckProperty, AcceptsWhatLibrdkafkaTakes) {
  EXPECT_THAT(CheckProperty("security.protocol", "SASL_SSL"), IsOk());
  EXPECT_THAT(CheckProperty("sasl.mechanisms", "SCRAM-SHA-512"), IsOk());
  EXPECT_THAT(CheckProperty("sasl.password", "anything"), IsOk());
  EXPECT_THAT(CheckProperty("acks", "all"), IsOk());  // a topic-level property
}

TEST(CheckProperty, UnknownNameIsNamed) {
  EXPECT_THAT(CheckProperty("no.such.property", "1"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"no.such.property\"")));
}

TEST(CheckProperty, BadValueIsNamedAndShownUnlessSecret) {
  EXPECT_THAT(
      CheckProperty("security.protocol", "TLS_PLEASE"),
      StatusIs(absl::StatusCode::kInvalidArgument, AllOf(HasSubstr("\"security.protocol\""), HasSubstr("TLS_PLEASE"))));
  // No secret property has a value librdkafka checks when it is set; a
  // refused property whose name makes it a secret never shows its value.
  absl::Status status = CheckProperty("no.such.secret", "topsecret-value");
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no.such.secret")));
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr("topsecret-value")));
}

TEST(ParseProperties, ReadsKeyValueLinesCommentsAndBlankLines) {
  absl::StatusOr<std::map<std::string, PropertyFromFile>> parsed = ParseProperties(
      "# a librdkafka config\n"
      "\n"
      "security.protocol=SASL_SSL\n"
      "  sasl.mechanisms = SCRAM-SHA-512  \r\n"
      "sasl.password=p=a#ss\n"
      "   # indented comment\n"
      "ssl.ca.location=\n",
      "kafka.properties");
  ASSERT_THAT(parsed, IsOk());
  ASSERT_EQ(parsed->size(), 4u);
  EXPECT_EQ(parsed->at("security.protocol").value, "SASL_SSL");
  EXPECT_EQ(parsed->at("security.protocol").line, 3);
  EXPECT_EQ(parsed->at("sasl.mechanisms").value, "SCRAM-SHA-512");
  EXPECT_EQ(parsed->at("sasl.mechanisms").line, 4);
  EXPECT_EQ(parsed->at("sasl.password").value, "p=a#ss");  // split at the first '='; '#' only starts a line
  EXPECT_EQ(parsed->at("ssl.ca.location").value, "");
}

TEST(ParseProperties, EmptyTextIsNoProperties) {
  absl::StatusOr<std::map<std::string, PropertyFromFile>> parsed = ParseProperties("", "f");
  ASSERT_THAT(parsed, IsOk());
  EXPECT_TRUE(parsed->empty());
}

TEST(ParseProperties, BadLinesNameTheFileAndLineButNeverTheValue) {
  EXPECT_THAT(ParseProperties("a=1\nsasl.password hunter2\n", "k.properties"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("k.properties:2:"), HasSubstr("no '='"), Not(HasSubstr("hunter2")))));
  EXPECT_THAT(ParseProperties("=hunter2\n", "k.properties"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("k.properties:1:"), HasSubstr("no key"), Not(HasSubstr("hunter2")))));
  EXPECT_THAT(ParseProperties("sasl.password=hunter2\n\nsasl.password=hunter3\n", "k.properties"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("k.properties:3:"), HasSubstr("\"sasl.password\" is set twice"),
                             HasSubstr("line 1"), Not(HasSubstr("hunter")))));
  EXPECT_THAT(ParseProperties("sasl.password=hun\\\n  ter2\n", "k.properties"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("k.properties:1:"), HasSubstr("backslash"), Not(HasSubstr("hun")))));
}

class PropertiesFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char name[] = "/tmp/herald-properties-test-XXXXXX";
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

TEST_F(PropertiesFile, ReadsAndChecksEveryProperty) {
  Write("security.protocol=SASL_SSL\nsasl.username=svc\nsasl.password=hunter2\n");
  absl::StatusOr<std::map<std::string, PropertyFromFile>> read = ReadPropertiesFile(path_);
  ASSERT_THAT(read, IsOk());
  EXPECT_EQ(read->at("sasl.password").value, "hunter2");
  EXPECT_EQ(read->at("sasl.username").line, 2);
}

TEST_F(PropertiesFile, UnknownPropertyNamesFileLineAndKey) {
  Write("# comment\nsecurity.protocol=SASL_SSL\nsasl.pasword=hunter2\n");
  absl::Status status = ReadPropertiesFile(path_).status();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr(herald::StrCat(path_, ":3:")), HasSubstr("\"sasl.pasword\""))));
  // "sasl.pasword" is not a secret name, but the value was meant as one;
  // librdkafka's "No such configuration property" never quotes values.
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr("hunter2")));
}

TEST_F(PropertiesFile, BadValueNamesFileLineAndKey) {
  Write("security.protocol=SASL_TLS\n");
  EXPECT_THAT(ReadPropertiesFile(path_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(herald::StrCat(path_, ":1:")), HasSubstr("\"security.protocol\""))));
}

// The header's example.
absl::Status AddPropertiesFrom(const std::string& path, KafkaTransportOptions& options) {
  // path: e.g. /etc/herald/kafka.properties
  HERALD_ASSIGN_OR_RETURN(auto file, herald::kafka::ReadPropertiesFile(path));
  for (const auto& [name, property] : file) options.properties[name] = property.value;
  return absl::OkStatus();
}

TEST_F(PropertiesFile, FillTransportOptions) {
  Write("security.protocol=SASL_SSL\n# a comment\nsasl.mechanisms=PLAIN\n");
  KafkaTransportOptions options;
  options.properties["client.rack"] = "r1";
  ASSERT_THAT(AddPropertiesFrom(path_, options), IsOk());
  EXPECT_EQ(options.properties, (std::map<std::string, std::string>{
                                    {"client.rack", "r1"}, {"sasl.mechanisms", "PLAIN"}, {"security.protocol", "SASL_SSL"}}));
}

TEST_F(PropertiesFile, MissingFileIsNotFound) {
  EXPECT_THAT(ReadPropertiesFile(path_ + ".absent"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(path_ + ".absent")));
}

}  // namespace
}  // namespace herald::kafka
