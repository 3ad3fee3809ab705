#include "herald/core/config.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/testing/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ServiceConfig, ReadsTopicsAndDefaultsTheGroupToTheServiceName) {
  absl::StatusOr<ServiceConfig> c = ServiceConfig::FromMap({{"HERALD_SERVICE_NAME", "customer-service"},
                                                            {"HERALD_WRITE_TOPIC", "customer-events"},
                                                            {"HERALD_READ_TOPICS", " customer-events, product-events ,"}});
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->write_topic, "customer-events");
  EXPECT_THAT(c->read_topics, ElementsAre("customer-events", "product-events"));
  EXPECT_EQ(c->consumer_group, "customer-service");
}

TEST(ServiceConfig, MissingOrInvalidValuesNameTheKey) {
  EXPECT_THAT(ServiceConfig::FromMap({{"HERALD_WRITE_TOPIC", "t"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("HERALD_SERVICE_NAME")));
  EXPECT_THAT(ServiceConfig::FromMap({{"HERALD_SERVICE_NAME", "s"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("HERALD_WRITE_TOPIC")));
  EXPECT_THAT(ServiceConfig::FromMap({{"HERALD_SERVICE_NAME", "s"}, {"HERALD_WRITE_TOPIC", "bad topic"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("HERALD_WRITE_TOPIC")));
  EXPECT_THAT(ServiceConfig::FromMap(
                  {{"HERALD_SERVICE_NAME", "s"}, {"HERALD_WRITE_TOPIC", "t"}, {"HERALD_READ_TOPICS", "ok,no/slash"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("HERALD_READ_TOPICS")));
}

TEST(ValidateTopicName, FollowsKafkasRules) {
  EXPECT_THAT(ValidateTopicName("customer-events.v2_x"), IsOk());
  for (const char* bad : {"", ".", "..", "a b", "a/b", "ü"}) {
    EXPECT_THAT(ValidateTopicName(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
  EXPECT_THAT(ValidateTopicName(std::string(250, 'a')), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ServiceConfig, FromFileAndFromEnv) {
  std::string path = ::testing::TempDir() + "/herald_config_test.env";
  {
    std::ofstream out(path);
    out << "# customer service\n\nHERALD_SERVICE_NAME = customer-service\nHERALD_WRITE_TOPIC=customer-events\n"
           "HERALD_CONSUMER_GROUP=event-reader\n";
  }
  absl::StatusOr<ServiceConfig> c = ServiceConfig::FromFile(path);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->service_name, "customer-service");
  EXPECT_EQ(c->consumer_group, "event-reader");
  {
    std::ofstream out(path);
    out << "HERALD_SERVICE_NAME\n";
  }
  EXPECT_THAT(ServiceConfig::FromFile(path), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(":1:")));
  std::remove(path.c_str());
  EXPECT_THAT(ServiceConfig::FromFile(path), StatusIs(absl::StatusCode::kNotFound));

  setenv("HERALD_SERVICE_NAME", "env-service", 1);
  setenv("HERALD_WRITE_TOPIC", "env-events", 1);
  setenv("HERALD_READ_TOPICS", "a,b", 1);
  absl::StatusOr<ServiceConfig> e = ServiceConfig::FromEnv();
  ASSERT_THAT(e, IsOk());
  EXPECT_EQ(e->service_name, "env-service");
  EXPECT_THAT(e->read_topics, ElementsAre("a", "b"));
  unsetenv("HERALD_SERVICE_NAME");
  unsetenv("HERALD_WRITE_TOPIC");
  unsetenv("HERALD_READ_TOPICS");
}

}  // namespace
}  // namespace herald
