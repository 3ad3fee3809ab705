// The code examples of herald/postgres's public headers, compiled and run
// against the test server (label postgres; see scripts/check-header-examples.py
// and core/src/core_header_examples_test.cc).
#include <libpq-fe.h>

#include <iostream>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/core/relay.h"
#include "herald/core/status.h"
#include "herald/postgres/outbox_migration.h"
#include "herald/postgres/postgres_outbox_store.h"
#include "herald/postgres/status.h"
#include "herald/testing/eventually.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/status_matchers.h"
#include "postgres_test_support.h"

namespace snippets {

struct CustomerEvent {
  std::string customer_id;
  static constexpr std::string_view kType = "customer.created";
  static constexpr std::string_view kTopic = "customer-events";
  std::string_view key() const { return customer_id; }
  static constexpr auto JsonFields() {
    return herald::json::Fields(herald::json::Field("customer_id", &CustomerEvent::customer_id));
  }
};

// The caller's own PQexec wrapper, as the header says.
absl::Status Exec(PGconn* conn, const char* sql) {
  PGresult* r = PQexec(conn, sql);
  absl::Status s = herald::postgres::PgResultToStatus(conn, r, sql);
  PQclear(r);
  return s;
}

// The header's example; returns how many events the relay published.
absl::StatusOr<int64_t> StoreExample(const std::string& dsn_from_secret_store, PGconn* conn, herald::Bus& bus) {
  HERALD_ASSIGN_OR_RETURN(auto store, herald::postgres::PostgresOutboxStore::Open(
                                          {.conninfo = dsn_from_secret_store, .schema = "billing", .table = "outbox"}));
  HERALD_RETURN_IF_ERROR(Exec(conn, "CREATE TABLE IF NOT EXISTS billing.customers (id TEXT PRIMARY KEY)"));

  // herald's own transaction; business rows go through tx->conn():
  HERALD_ASSIGN_OR_RETURN(auto tx, store->BeginTransaction());
  HERALD_RETURN_IF_ERROR(Exec(tx->conn(), "INSERT INTO customers (id) VALUES ('cust-42')"));
  HERALD_RETURN_IF_ERROR(store->Append(*tx, CustomerEvent{.customer_id = "cust-42"}));
  HERALD_RETURN_IF_ERROR(tx->Commit());  // destructor rolls back otherwise

  // or join a transaction the caller opened on its own connection:
  HERALD_RETURN_IF_ERROR(Exec(conn, "BEGIN"));
  HERALD_RETURN_IF_ERROR(Exec(conn, "INSERT INTO customers (id) VALUES ('cust-43')"));
  HERALD_RETURN_IF_ERROR(store->Append(conn, CustomerEvent{.customer_id = "cust-43"}));
  HERALD_RETURN_IF_ERROR(Exec(conn, "COMMIT"));

  herald::OutboxRelay relay(*store, bus);  // LISTEN/NOTIFY wake-up
  HERALD_RETURN_IF_ERROR(relay.Start());
  bool relayed = herald::testing::Eventually([&] { return relay.Stats().published == 2; });
  relay.Stop();
  if (!relayed) return absl::DeadlineExceededError("not relayed");
  return relay.Stats().published;
}

absl::StatusOr<herald::postgres::OutboxMigrationPlan> MigrationExample(
    const herald::postgres::PostgresOptions& options) {
  HERALD_ASSIGN_OR_RETURN(auto plan, herald::postgres::PlanOutboxMigration(options));
  std::cout << plan.Script();  // what --dry-run prints
  HERALD_ASSIGN_OR_RETURN(plan, herald::postgres::MigrateOutbox(options, {.batch_size = 10000}));
  return plan;
}

absl::Status StatusExample(herald::postgres::Transaction& tx) {
  PGresult* r = PQexec(tx.conn(), "UPDATE customers SET name = 'Ada' WHERE id = 'cust-42'");
  absl::Status s = herald::postgres::PgResultToStatus(tx.conn(), r, "update customer");
  PQclear(r);
  HERALD_RETURN_IF_ERROR(s);
  return absl::OkStatus();
}

namespace {

using herald::postgres::testing::Connect;
using herald::postgres::testing::TestDsn;
using herald::testing::IsOk;
using herald::testing::IsOkAndHolds;
using herald::testing::StatusIs;

TEST(PostgresHeaderExamples, OpenTransactionsJoinedConnectionAndRelay) {
  ASSERT_FALSE(TestDsn().empty()) << herald::postgres::testing::kNoServerMessage;
  herald::postgres::testing::RawConn conn = Connect();
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
  ASSERT_THAT(Exec(conn.get(), "DROP SCHEMA IF EXISTS billing CASCADE"), IsOk());  // an earlier run's
  // The example's business SQL names the table unqualified, as a service's
  // search_path would.
  ASSERT_THAT(Exec(conn.get(), "SET search_path TO billing"), IsOk());
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  std::string dsn = TestDsn() + " options='-c search_path=billing'";
  EXPECT_THAT(StoreExample(dsn, conn.get(), bus), IsOkAndHolds(2));
  EXPECT_EQ(bus.transport<herald::testing::FakeTransport>().published("customer-events").size(), 2u);

  // status.h: a statement's error as a Status (the column does not exist).
  auto store = herald::postgres::PostgresOutboxStore::Open({.conninfo = dsn, .schema = "billing", .table = "outbox"});
  ASSERT_THAT(store, IsOk());
  auto tx = (*store)->BeginTransaction();
  ASSERT_THAT(tx, IsOk());
  EXPECT_THAT(StatusExample(**tx), StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::HasSubstr("\"name\"")));
  EXPECT_THAT(Exec(conn.get(), "DROP SCHEMA billing CASCADE"), IsOk());
}

TEST(PostgresHeaderExamples, AdoptAGoTable) {
  ASSERT_FALSE(TestDsn().empty()) << herald::postgres::testing::kNoServerMessage;
  herald::postgres::testing::RawConn conn = Connect();
  const std::string schema = herald::postgres::testing::UniqueSchema("examples");
  ASSERT_THAT(Exec(conn.get(), herald::StrCat("CREATE SCHEMA ", schema, "; CREATE TABLE ", schema,
                                              ".outbox (id BIGSERIAL PRIMARY KEY, event_type TEXT NOT NULL, "
                                              "topic TEXT NOT NULL, event_payload JSONB NOT NULL, "
                                              "created_at TIMESTAMPTZ NOT NULL DEFAULT now())")
                                   .c_str()),
              IsOk());
  herald::postgres::PostgresOptions options{.conninfo = TestDsn(), .schema = schema, .table = "outbox"};
  EXPECT_THAT(herald::postgres::PostgresOutboxStore::Open(options),
              StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::HasSubstr("herald outbox migrate")));
  EXPECT_THAT(MigrationExample(options), IsOk());
  EXPECT_THAT(herald::postgres::PostgresOutboxStore::Open(options), IsOk());
  EXPECT_THAT(Exec(conn.get(), herald::StrCat("DROP SCHEMA ", schema, " CASCADE").c_str()), IsOk());
}

}  // namespace
}  // namespace snippets
