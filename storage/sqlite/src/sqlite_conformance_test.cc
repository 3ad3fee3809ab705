// The public OutboxStore conformance suite, run against SqliteOutboxStore on
// real files in a temporary directory, in WAL mode.
#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "herald/core/status.h"
#include "herald/sqlite/sqlite_outbox_store.h"
#include "herald/sqlite/sqlite_status.h"
#include "herald/testing/outbox_store_conformance.h"

namespace herald::sqlite {
namespace {

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  if (dir == nullptr || *dir == '\0') dir = std::getenv("TMPDIR");
  return (dir == nullptr || *dir == '\0') ? std::string("/tmp") : std::string(dir);
}

std::string PathFor(const std::string& unique_name) { return TempDir() + "/herald_conformance_" + unique_name + ".db"; }

// What a Go service does, on its own connection: the seed's 3-column INSERT.
absl::Status RawThreeColumnInsert(OutboxStore& store, std::string_view topic, std::string_view type,
                                  std::string_view payload) {
  auto& sqlite_store = dynamic_cast<SqliteOutboxStore&>(store);
  sqlite3* db = nullptr;
  int rc = sqlite3_open(sqlite_store.options().path.c_str(), &db);
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> owned(db, &sqlite3_close_v2);
  if (rc != SQLITE_OK) return SqliteErrorToStatus(rc, "open", db);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* stmt = nullptr;
  rc = sqlite3_prepare_v2(db, "INSERT INTO herald_outbox (event_type, topic, event_payload) VALUES (?, ?, ?)", -1,
                          &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteErrorToStatus(rc, "prepare", db);
  sqlite3_bind_text(stmt, 1, type.data(), static_cast<int>(type.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt, 2, topic.data(), static_cast<int>(topic.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt, 3, payload.data(), static_cast<int>(payload.size()), SQLITE_TRANSIENT);
  rc = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  return rc == SQLITE_DONE ? absl::OkStatus() : SqliteErrorToStatus(rc, "insert", db);
}

// The example in herald/testing/outbox_store_conformance.h is this code.
herald::testing::OutboxStoreFactory SqliteFactory() {
  herald::testing::OutboxStoreFactory factory;
  factory.name = "sqlite_wal";
  factory.make = [](const std::string& unique_name) -> absl::StatusOr<std::unique_ptr<OutboxStore>> {
    SqliteOptions options;
    options.path = PathFor(unique_name);
    HERALD_ASSIGN_OR_RETURN(std::unique_ptr<SqliteOutboxStore> store, SqliteOutboxStore::Open(options));
    return std::unique_ptr<OutboxStore>(std::move(store));
  };
  // What a Go service does, on its own connection: the seed's 3-column INSERT.
  factory.raw_three_column_insert = RawThreeColumnInsert;
  factory.drop = [](const std::string& unique_name) {
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((PathFor(unique_name) + suffix).c_str());
  };
  return factory;
}

using herald::testing::OutboxStoreConformanceTest;  // gtest needs the bare name
INSTANTIATE_TEST_SUITE_P(Sqlite, OutboxStoreConformanceTest, ::testing::Values(SqliteFactory()),
                         herald::testing::OutboxStoreFactoryName);

}  // namespace
}  // namespace herald::sqlite
