// Unit tests: PostgreSQL passwords never survive redaction, in any form of
// connection string libpq takes. No server needed.
#include "herald/postgres/redact.h"

#include <iostream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald::postgres {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct Case {
  std::string conninfo;
  std::string want;                  // RedactConnectionString(conninfo)
  std::vector<std::string> secrets;  // as libpq reads them
};

class RedactConnectionStringTest : public ::testing::TestWithParam<Case> {};

TEST_P(RedactConnectionStringTest, HidesEverySecretAndKeepsTheRest) {
  const Case& c = GetParam();
  const std::string redacted = RedactConnectionString(c.conninfo);
  EXPECT_EQ(redacted, c.want);
  for (const std::string& secret : c.secrets) {
    EXPECT_THAT(redacted, Not(HasSubstr(secret)));
    // A message that quotes the secret as libpq read it, or the whole
    // connection string, loses it too.
    const std::string message = "could not connect: " + secret + " / " + c.conninfo;
    const std::string clean = RedactConnectionSecrets(c.conninfo, message);
    EXPECT_THAT(clean, Not(HasSubstr(secret))) << clean;
    EXPECT_THAT(clean, HasSubstr("[redacted]"));
    EXPECT_THAT(clean, HasSubstr("could not connect: "));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Forms, RedactConnectionStringTest,
    ::testing::Values(
        Case{"host=db user=svc password=hunter2 dbname=orders",
             "host=db user=svc password=[redacted] dbname=orders",
             {"hunter2"}},
        Case{"host=db password = 'two words' sslpassword='k\\'ey\\\\pw' dbname=x",
             "host=db password = [redacted] sslpassword=[redacted] dbname=x",
             {"two words", "k'ey\\pw"}},
        Case{"password=a\\ b\\\\c host=db", "password=[redacted] host=db", {"a b\\c"}},
        Case{"  sslpassword=KeyPass1\tpassword=Pw1  ",
             "  sslpassword=[redacted]\tpassword=[redacted]  ",
             {"KeyPass1", "Pw1"}},
        Case{"postgresql://svc:hunter2@db:5432/orders", "postgresql://svc:[redacted]@db:5432/orders", {"hunter2"}},
        Case{"postgres://svc:p%40ss%3Aw@db/orders?sslmode=require&sslpassword=k%26y",
             "postgres://svc:[redacted]@db/orders?sslmode=require&sslpassword=[redacted]",
             {"p@ss:w", "p%40ss%3Aw", "k&y", "k%26y"}},
        Case{"postgresql://db/orders?user=svc&password=QueryPw&sslpassword=QuerySslPw",
             "postgresql://db/orders?user=svc&password=[redacted]&sslpassword=[redacted]",
             {"QueryPw", "QuerySslPw"}},
        Case{"postgresql://svc@db,db2:5433/orders?password=Pw2",
             "postgresql://svc@db,db2:5433/orders?password=[redacted]",
             {"Pw2"}},
        Case{"host=db user=svc dbname=orders", "host=db user=svc dbname=orders", {}},
        Case{"postgresql:///orders", "postgresql:///orders", {}}));

TEST(RedactConnectionString, AStringLibpqRefusesStillLosesItsPassword) {
  const std::string bad = "host=db password='unterminated secret";
  EXPECT_THAT(RedactConnectionString(bad), Not(HasSubstr("unterminated secret")));
  EXPECT_THAT(RedactConnectionString("postgresql://svc:pw@@db/x?=&&password"), Not(HasSubstr("pw@")));
}

TEST(RedactConnectionString, KeywordsAreExactLikeLibpqs) {
  // user is no secret, even when it looks like one; "mypassword" is not a
  // keyword libpq knows.
  EXPECT_EQ(RedactConnectionString("user=password host=db"), "user=password host=db");
}

TEST(ConnectionStringSecrets, ListsEachFormOnceLongestFirst) {
  const std::vector<std::string> secrets = ConnectionStringSecrets("password='a b' sslpassword=a");
  EXPECT_EQ(secrets, (std::vector<std::string>{"'a b'", "a b", "a"}));
}

// The example of redact.h.
TEST(RedactHeaderExample, PrintsAConnectionStringWithoutItsPasswords) {
  const std::string dsn = "host=db user=svc password=hunter2";
  ::testing::internal::CaptureStderr();
  std::cerr << herald::postgres::RedactConnectionString(dsn);
  // "host=db user=svc password=[redacted]"
  // "postgresql://svc:[redacted]@db/orders?sslpassword=[redacted]"
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "host=db user=svc password=[redacted]");
  EXPECT_EQ(RedactConnectionString("postgresql://svc:pw@db/orders?sslpassword=kp"),
            "postgresql://svc:[redacted]@db/orders?sslpassword=[redacted]");
}

}  // namespace
}  // namespace herald::postgres
