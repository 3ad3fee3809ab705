// Private test support for herald::postgres tests: the server address from
// the environment, unique schemas, raw connections.
#ifndef HERALD_POSTGRES_SRC_POSTGRES_TEST_SUPPORT_H_
#define HERALD_POSTGRES_SRC_POSTGRES_TEST_SUPPORT_H_

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>

#include <libpq-fe.h>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "herald/core/strings.h"
#include "herald/postgres/postgres_outbox_store.h"

namespace herald::postgres::testing {

inline constexpr char kNoServerMessage[] =
    "HERALD_TEST_PG_DSN is not set: start the test server with scripts/pg-up.sh or `make test` "
    "(scripts/run-tests.sh exports it)";

// The DSN of the test server, or "" (the caller fails the test).
inline std::string TestDsn() {
  const char* dsn = std::getenv("HERALD_TEST_PG_DSN");
  return dsn == nullptr ? "" : dsn;
}

// A schema name no other test uses.
inline std::string UniqueSchema(const std::string& prefix = "t") {
  static std::atomic<int> counter{0};
  return StrCat(prefix, "_", getpid(), "_", absl::ToUnixMicros(absl::Now()) % 100000000, "_", counter++);
}

struct PGconnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using RawConn = std::unique_ptr<PGconn, PGconnCloser>;

inline RawConn Connect() {
  RawConn conn(PQconnectdb(TestDsn().c_str()));
  PQsetNoticeProcessor(conn.get(), [](void*, const char*) {}, nullptr);
  return conn;
}

// Runs `sql`; returns "" on success, else the error text.
inline std::string Exec(PGconn* conn, const std::string& sql) {
  PGresult* r = PQexec(conn, sql.c_str());
  std::string error;
  ExecStatusType s = PQresultStatus(r);
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) error = PQresultErrorMessage(r);
  PQclear(r);
  return error;
}

// The first column of the first row of `sql`, or "<error: ...>".
inline std::string Query(PGconn* conn, const std::string& sql) {
  PGresult* r = PQexec(conn, sql.c_str());
  std::string value;
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    value = StrCat("<error: ", PQresultErrorMessage(r), ">");
  } else if (PQntuples(r) > 0) {
    value = PQgetvalue(r, 0, 0);
  }
  PQclear(r);
  return value;
}

// A fixture with a fresh schema per test, dropped afterwards.
class PostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dsn_ = TestDsn();
    ASSERT_FALSE(dsn_.empty()) << kNoServerMessage;
    admin_ = Connect();
    ASSERT_EQ(PQstatus(admin_.get()), CONNECTION_OK) << PQerrorMessage(admin_.get());
    schema_ = UniqueSchema();
  }
  void TearDown() override {
    if (admin_ != nullptr && PQstatus(admin_.get()) == CONNECTION_OK && !schema_.empty()) {
      Exec(admin_.get(), StrCat("DROP SCHEMA IF EXISTS \"", schema_, "\" CASCADE"));
    }
  }
  PostgresOptions Options() const {
    PostgresOptions options;
    options.conninfo = dsn_;
    options.schema = schema_;
    return options;
  }
  std::unique_ptr<PostgresOutboxStore> OpenStore() { return OpenStore(Options()); }
  std::unique_ptr<PostgresOutboxStore> OpenStore(PostgresOptions options) {
    auto store = PostgresOutboxStore::Open(std::move(options));
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }
  std::string Table() const { return StrCat("\"", schema_, "\".outbox"); }

  std::string dsn_;
  RawConn admin_;
  std::string schema_;
};

}  // namespace herald::postgres::testing

#endif  // HERALD_POSTGRES_SRC_POSTGRES_TEST_SUPPORT_H_
