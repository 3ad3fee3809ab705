// The code examples of herald/sqlite's public headers, compiled and run (see
// scripts/check-header-examples.py and core/src/core_header_examples_test.cc).
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/core/relay.h"
#include "herald/core/status.h"
#include "herald/sqlite/sqlite_outbox_store.h"
#include "herald/sqlite/sqlite_status.h"
#include "herald/testing/eventually.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/status_matchers.h"

namespace snippets {

struct OrderPlaced {
  std::string order_id;
  int64_t amount_cents = 0;
  static constexpr std::string_view kType = "order.placed";
  static constexpr std::string_view kTopic = "order-events";
  static constexpr auto JsonFields() {
    return herald::json::Fields(herald::json::Field("order_id", &OrderPlaced::order_id),
                                herald::json::Field("amount_cents", &OrderPlaced::amount_cents));
  }
};

// The caller's own sqlite3_exec wrapper, as the header says.
absl::Status Exec(sqlite3* db, const char* sql) {
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? absl::OkStatus() : herald::sqlite::SqliteErrorToStatus(rc, sql, db);
}

// Runs the header's example in the current directory; `bus` receives the
// relayed events. Returns the number relayed.
absl::StatusOr<int64_t> StoreExample(herald::Bus& bus) {
  herald::sqlite::SqliteOptions options;
  options.path = "orders.db";  // a local file (WAL mode)
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::sqlite::SqliteOutboxStore> store,
                          herald::sqlite::SqliteOutboxStore::Open(options));
  sqlite3* my_db = nullptr;
  if (sqlite3_open("orders.db", &my_db) != SQLITE_OK) return absl::InternalError("open");
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> owned(my_db, &sqlite3_close_v2);
  sqlite3_busy_timeout(my_db, 5000);
  HERALD_RETURN_IF_ERROR(Exec(my_db, "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY)"));

  // Business rows and events commit (or roll back) together:
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::sqlite::Transaction> tx, store->BeginTransaction());
  HERALD_RETURN_IF_ERROR(Exec(tx->db(), "INSERT INTO orders (id) VALUES ('o-1')"));
  HERALD_RETURN_IF_ERROR(store->Append(*tx, OrderPlaced{.order_id = "o-1", .amount_cents = 4200}));
  HERALD_RETURN_IF_ERROR(tx->Commit());  // the destructor rolls back otherwise

  // Or join a transaction the caller opened on its own handle:
  HERALD_RETURN_IF_ERROR(Exec(my_db, "BEGIN IMMEDIATE"));
  HERALD_RETURN_IF_ERROR(Exec(my_db, "INSERT INTO orders (id) VALUES ('o-2')"));
  HERALD_RETURN_IF_ERROR(store->Append(my_db, OrderPlaced{.order_id = "o-2", .amount_cents = 100}));
  HERALD_RETURN_IF_ERROR(Exec(my_db, "COMMIT"));

  herald::OutboxRelay relay(*store, bus);  // moves committed rows to the bus
  HERALD_RETURN_IF_ERROR(relay.Start());
  bool relayed = herald::testing::Eventually([&] { return relay.Stats().published == 2; });
  relay.Stop();
  if (!relayed) return absl::DeadlineExceededError("not relayed");
  return relay.Stats().published;
}

absl::Status StatusExample(sqlite3* db) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, "INSERT INTO t (id) VALUES (1)", -1, &raw, nullptr) != SQLITE_OK) {
    return absl::InternalError("prepare");
  }
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt_owner(raw, &sqlite3_finalize);
  sqlite3_stmt* stmt = stmt_owner.get();
  int rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE) return herald::sqlite::SqliteErrorToStatus(rc, "append", db);
  return absl::OkStatus();
}

namespace {

using ::herald::testing::IsOk;
using ::herald::testing::IsOkAndHolds;
using ::herald::testing::StatusIs;

TEST(SqliteHeaderExamples, StoreTransactionsJoinedHandleAndRelay) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("herald_sqlite_examples_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::filesystem::path before = std::filesystem::current_path();
  std::filesystem::current_path(dir);
  herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
  EXPECT_THAT(StoreExample(bus), IsOkAndHolds(2));
  EXPECT_EQ(bus.transport<herald::testing::FakeTransport>().published("order-events").size(), 2u);
  std::filesystem::current_path(before);
  std::filesystem::remove_all(dir);
}

TEST(SqliteHeaderExamples, ErrorToStatus) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> owned(db, &sqlite3_close_v2);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY)", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_THAT(StatusExample(db), IsOk());
  EXPECT_THAT(StatusExample(db), StatusIs(absl::StatusCode::kAlreadyExists));  // the same id again
}

}  // namespace
}  // namespace snippets
