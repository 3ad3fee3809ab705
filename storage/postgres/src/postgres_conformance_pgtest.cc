// herald::postgres against the public OutboxStore conformance suite, on the
// real test server (HERALD_TEST_PG_DSN). Each test gets its own schema.
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/postgres/postgres_outbox_store.h"
#include "herald/postgres/status.h"
#include "herald/testing/outbox_store_conformance.h"
#include "postgres_test_support.h"

namespace herald::postgres {
namespace {

herald::testing::OutboxStoreFactory PostgresFactory() {
  herald::testing::OutboxStoreFactory f;
  f.name = "postgres";
  f.supports_shards = true;
  f.make = [](const std::string& unique_name) -> absl::StatusOr<std::unique_ptr<OutboxStore>> {
    const std::string dsn = testing::TestDsn();
    if (dsn.empty()) return absl::FailedPreconditionError(testing::kNoServerMessage);
    PostgresOptions options;
    options.conninfo = dsn;
    options.schema = StrCat("conf_", unique_name).substr(0, 63);
    HERALD_ASSIGN_OR_RETURN(auto store, PostgresOutboxStore::Open(options));
    return std::unique_ptr<OutboxStore>(std::move(store));
  };
  f.raw_three_column_insert = [](OutboxStore& store, std::string_view topic, std::string_view type,
                                 std::string_view payload) -> absl::Status {
    auto* pg = dynamic_cast<PostgresOutboxStore*>(&store);
    if (pg == nullptr) return absl::InvalidArgumentError("not a PostgresOutboxStore");
    testing::RawConn conn = testing::Connect();
    if (PQstatus(conn.get()) != CONNECTION_OK) return PgConnectionToStatus(conn.get(), "raw insert");
    // The seed's Go writer: three columns, autocommit.
    const std::string sql =
        StrCat("INSERT INTO ", pg->qualified_table(), " (event_type, topic, event_payload) VALUES ($1, $2, $3)");
    const std::string t(type), tp(topic), p(payload);
    const char* params[] = {t.c_str(), tp.c_str(), p.c_str()};
    PGresult* r = PQexecParams(conn.get(), sql.c_str(), 3, nullptr, params, nullptr, nullptr, 0);
    absl::Status status = PgResultToStatus(conn.get(), r, "raw insert");
    PQclear(r);
    return status;
  };
  f.drop = [](const std::string& unique_name) {
    testing::RawConn conn = testing::Connect();
    testing::Exec(conn.get(), StrCat("DROP SCHEMA IF EXISTS \"", StrCat("conf_", unique_name).substr(0, 63),
                                     "\" CASCADE"));
  };
  return f;
}

}  // namespace
}  // namespace herald::postgres

using herald::testing::OutboxStoreConformanceTest;
INSTANTIATE_TEST_SUITE_P(Postgres, OutboxStoreConformanceTest,
                         ::testing::Values(herald::postgres::PostgresFactory()),
                         herald::testing::OutboxStoreFactoryName);
