// `herald outbox migrate` (herald/postgres/outbox_migration.h) on a table
// shaped as the seed's Go services have it: explicit, no rewrite, row times
// kept, idempotent; and the store refusing such a table until then.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/core/bus.h"
#include "herald/postgres/outbox_migration.h"
#include "herald/postgres/postgres_outbox_store.h"
#include "herald/testing/drain.h"
#include "herald/testing/fake_transport.h"
#include "herald/testing/status_matchers.h"
#include "postgres_test_support.h"

namespace herald::postgres {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::IsOkAndHolds;
using ::herald::testing::StatusIs;
using testing::Exec;
using ::testing::HasSubstr;
using testing::PostgresTest;
using testing::Query;
using ::testing::SizeIs;

constexpr int kGoRows = 2500;

class OutboxMigrationTest : public PostgresTest {
 protected:
  // The table the seed's Go services write (its writer inserts event_type,
  // topic, event_payload; its publisher marks published_at), holding rows
  // of known created_at, one minute apart from 2026-01-01, the last 10 of
  // them pending, the rest published by the Go publisher.
  void CreateGoTable() {
    ASSERT_EQ(Exec(admin_.get(),
                   StrCat("CREATE SCHEMA \"", schema_, "\"; CREATE TABLE ", Table(),
                          " (id BIGSERIAL PRIMARY KEY, event_type TEXT NOT NULL, topic TEXT NOT NULL,"
                          " event_payload JSONB NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
                          " published_at TIMESTAMPTZ NULL);"
                          "INSERT INTO ",
                          Table(),
                          " (event_type, topic, event_payload, created_at, published_at)"
                          " SELECT 'customer.created', 'customer-events', jsonb_build_object('customer_id', 'c' || g),"
                          " timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute',"
                          " CASE WHEN g <= ",
                          kGoRows - 10, " THEN now() END FROM generate_series(1, ", kGoRows, ") g")),
              "");
  }
  // The seed's Go writer, exactly: its INSERT inside a transaction.
  std::string GoInsert(const std::string& customer) {
    return Exec(admin_.get(), StrCat("BEGIN; INSERT INTO ", Table(),
                                     " (event_type, topic, event_payload) VALUES ('customer.updated', "
                                     "'customer-events', '{\"customer_id\":\"",
                                     customer, "\"}'); COMMIT"));
  }
  std::string Columns() {
    return Query(admin_.get(), StrCat("SELECT string_agg(column_name, ',' ORDER BY column_name) FROM "
                                      "information_schema.columns WHERE table_schema = '",
                                      schema_, "' AND table_name = 'outbox'"));
  }
  std::string Indexes() {
    return Query(admin_.get(), StrCat("SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE "
                                      "schemaname = '",
                                      schema_, "'"));
  }
  std::string FileNode() {
    return Query(admin_.get(), StrCat("SELECT relfilenode FROM pg_class WHERE oid = '", Table(), "'::regclass"));
  }
  PostgresOptions GoOptions() const {
    PostgresOptions o = Options();
    o.table = "outbox";
    return o;
  }
};

TEST_F(OutboxMigrationTest, OpenRefusesAGoTableNamingMigrateAndChangesNothing) {
  CreateGoTable();
  const std::string columns = Columns();
  auto store = PostgresOutboxStore::Open(GoOptions());
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("herald outbox migrate")));
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("missing columns seq, event_id")));
  EXPECT_EQ(Columns(), columns);
  EXPECT_EQ(Columns(), "created_at,event_payload,event_type,id,published_at,topic");
  EXPECT_EQ(Query(admin_.get(), StrCat("SELECT count(*) FROM pg_trigger WHERE tgrelid = '", Table(), "'::regclass")),
            "0");
  EXPECT_EQ(Query(admin_.get(), StrCat("SELECT to_regclass('\"", schema_, "\".inbox') IS NULL")), "t");
}

TEST_F(OutboxMigrationTest, DryRunPlanPrintsTheDdlAndChangesNothing) {
  CreateGoTable();
  const std::string columns = Columns(), indexes = Indexes(), node = FileNode();
  auto plan = PlanOutboxMigration(GoOptions());
  ASSERT_THAT(plan, IsOk());
  EXPECT_EQ(plan->mode, OutboxMigrationPlan::Mode::kAdopt);
  const std::string script = plan->Script();
  EXPECT_THAT(script, HasSubstr("ADD COLUMN IF NOT EXISTS seq BIGINT,"));
  EXPECT_THAT(script, HasSubstr("ADD COLUMN IF NOT EXISTS occurred_at TIMESTAMPTZ,"));
  EXPECT_THAT(script, HasSubstr("occurred_at = coalesce(occurred_at, created_at, now())"));
  EXPECT_THAT(script, HasSubstr("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"outbox_event_id_key\""));
  EXPECT_THAT(script, HasSubstr("CHECK (seq IS NOT NULL) NOT VALID"));
  EXPECT_THAT(script, HasSubstr("-- locks: "));
  // No volatile default is added with a column (that would rewrite the table).
  EXPECT_THAT(script, ::testing::Not(::testing::ContainsRegex("ADD COLUMN[^,;]*DEFAULT now")));
  EXPECT_THAT(script, ::testing::Not(HasSubstr("IDENTITY")));
  EXPECT_EQ(Columns(), columns);
  EXPECT_EQ(Indexes(), indexes);
  EXPECT_EQ(FileNode(), node);
}

TEST_F(OutboxMigrationTest, MigrateKeepsRowTimesAndOrderWithoutRewriteThenIsANoOp) {
  CreateGoTable();
  const std::string node = FileNode();
  std::vector<OutboxMigrationProgress> batches;
  OutboxMigrationOptions m;
  m.batch_size = 500;
  m.on_progress = [&](const OutboxMigrationProgress& p) {
    if (p.current != nullptr && p.current->kind == OutboxMigrationStep::Kind::kBackfill && p.batch > 0) {
      batches.push_back(p);
    }
  };
  auto plan = MigrateOutbox(GoOptions(), m);
  ASSERT_THAT(plan, IsOk());
  EXPECT_EQ(plan->mode, OutboxMigrationPlan::Mode::kAdopt);
  // Bounded batches, counted.
  ASSERT_GT(batches.size(), 3u);
  EXPECT_EQ(batches.back().rows, kGoRows);
  EXPECT_EQ(batches.back().batch, batches.back().batches);
  for (size_t i = 1; i + 1 < batches.size(); ++i) EXPECT_LE(batches[i].rows - batches[i - 1].rows, 500);

  // Not rewritten; each row keeps its time; seq follows the rows' order.
  EXPECT_EQ(FileNode(), node);
  EXPECT_EQ(Query(admin_.get(), StrCat("SELECT count(*) FROM ", Table(),
                                       " WHERE occurred_at = created_at AND available_at = created_at")),
            std::to_string(kGoRows));
  EXPECT_EQ(Query(admin_.get(), StrCat("SELECT count(*) FROM (SELECT seq, lag(seq) OVER (ORDER BY id) AS prev FROM ",
                                       Table(), ") s WHERE prev IS NOT NULL AND seq <= prev")),
            "0");
  EXPECT_EQ(Query(admin_.get(), StrCat("SELECT count(DISTINCT event_id) FROM ", Table())), std::to_string(kGoRows));
  EXPECT_EQ(Query(admin_.get(), StrCat("SELECT string_agg(attname, ',' ORDER BY attname) FROM pg_attribute WHERE "
                                       "attrelid = '",
                                       Table(), "'::regclass AND attnum > 0 AND attnotnull")),
            "attempts,available_at,content_type,created_at,event_id,event_payload,event_type,id,occurred_at,"
            "schema_version,seq,topic");
  EXPECT_EQ(Query(admin_.get(), StrCat("SELECT count(*) FROM pg_constraint WHERE conrelid = '", Table(),
                                       "'::regclass AND conname LIKE 'herald%'")),
            "0");

  // Twice: nothing to do.
  auto again = MigrateOutbox(GoOptions(), m);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->mode, OutboxMigrationPlan::Mode::kUpToDate);
  EXPECT_THAT(again->steps, SizeIs(0));
  EXPECT_THAT(again->Script(), HasSubstr("nothing to do"));
  EXPECT_EQ(FileNode(), node);

  // The Go writer's INSERT still works, and its rows come after the old ones.
  ASSERT_EQ(GoInsert("after-1"), "");
  ASSERT_EQ(GoInsert("after-2"), "");
  auto store = PostgresOutboxStore::Open(GoOptions());
  ASSERT_THAT(store, IsOk());
  auto pending = (*store)->FetchPendingBatch({.limit = 100});
  ASSERT_THAT(pending, IsOk());
  ASSERT_THAT(*pending, SizeIs(12));
  EXPECT_EQ((*pending)[0].envelope.payload, StrCat("{\"customer_id\": \"c", kGoRows - 9, "\"}"));
  EXPECT_EQ((*pending)[0].envelope.time,
            absl::FromCivil(absl::CivilMinute(2026, 1, 1, 0, 0), absl::UTCTimeZone()) + absl::Minutes(kGoRows - 9));
  EXPECT_EQ((*pending)[10].envelope.payload, "{\"customer_id\": \"after-1\"}");
  EXPECT_EQ((*pending)[11].envelope.payload, "{\"customer_id\": \"after-2\"}");

  // And the relay relays them all, in order.
  Bus bus(std::make_unique<herald::testing::FakeTransport>());
  EXPECT_THAT(herald::testing::DrainOutbox(**store, bus), IsOkAndHolds(12));
  std::vector<Envelope> published = bus.transport<herald::testing::FakeTransport>().published();
  ASSERT_THAT(published, SizeIs(12));
  EXPECT_EQ(published.back().payload, "{\"customer_id\": \"after-2\"}");
  EXPECT_EQ(Query(admin_.get(), StrCat("SELECT count(*) FROM ", Table(), " WHERE published_at IS NULL")), "0");
}

TEST_F(OutboxMigrationTest, TheGoWriterKeepsInsertingDuringTheMigration) {
  CreateGoTable();
  std::atomic<bool> done{false};
  std::atomic<int> written{0};
  std::string writer_error;
  std::thread writer([&] {
    testing::RawConn conn = testing::Connect();
    while (!done.load()) {
      // The seed's INSERT, in its own transaction, as the Go service runs it.
      std::string error = Exec(conn.get(), StrCat("BEGIN; INSERT INTO ", Table(),
                                                  " (event_type, topic, event_payload) VALUES ('customer.updated', "
                                                  "'customer-events', '{\"customer_id\":\"live\"}'); COMMIT"));
      if (!error.empty()) {
        writer_error = error;
        return;
      }
      ++written;
    }
  });
  OutboxMigrationOptions m;
  m.batch_size = 200;
  auto plan = MigrateOutbox(GoOptions(), m);
  done = true;
  writer.join();
  ASSERT_THAT(plan, IsOk());
  EXPECT_EQ(writer_error, "");
  EXPECT_GT(written.load(), 0);
  // Every row is complete; the old ones keep their time; every row written
  // during the migration comes after every old one.
  EXPECT_EQ(Query(admin_.get(), StrCat("SELECT count(*) FROM ", Table())), std::to_string(kGoRows + written.load()));
  EXPECT_EQ(Query(admin_.get(),
                  StrCat("SELECT count(*) FROM ", Table(), " WHERE id <= ", kGoRows, " AND occurred_at = created_at")),
            std::to_string(kGoRows));
  EXPECT_EQ(Query(admin_.get(), StrCat("SELECT (SELECT max(seq) FROM ", Table(), " WHERE id <= ", kGoRows,
                                       ") < (SELECT min(seq) FROM ", Table(), " WHERE id > ", kGoRows, ")")),
            "t");
  EXPECT_THAT(PostgresOutboxStore::Open(GoOptions()), IsOk());
}

TEST_F(OutboxMigrationTest, OpenDoesNotUpgradeAnOlderHeraldTableTheMigrationDoes) {
  ASSERT_THAT(PostgresOutboxStore::Open(GoOptions()), IsOk());
  // A table from before migration 2.
  ASSERT_EQ(Exec(admin_.get(), StrCat("DROP INDEX \"", schema_, "\".outbox_key_waiting_idx")), "");
  EXPECT_THAT(PostgresOutboxStore::Open(GoOptions()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("missing indexes outbox_key_waiting_idx")));
  EXPECT_EQ(Indexes().find("outbox_key_waiting_idx"), std::string::npos);
  auto plan = MigrateOutbox(GoOptions());
  ASSERT_THAT(plan, IsOk());
  EXPECT_THAT(plan->Script(), HasSubstr("CREATE INDEX CONCURRENTLY IF NOT EXISTS \"outbox_key_waiting_idx\""));
  EXPECT_THAT(plan->Script(), ::testing::Not(HasSubstr("ALTER TABLE")));
  EXPECT_THAT(PostgresOutboxStore::Open(GoOptions()), IsOk());
}

// Migration 3 (the purge's index) only makes the purge faster: Open keeps
// working on a table from before it, and the migration adds it, by itself.
TEST_F(OutboxMigrationTest, OpenAcceptsATableWithoutThePurgeIndexTheMigrationAddsIt) {
  ASSERT_THAT(PostgresOutboxStore::Open(GoOptions()), IsOk());
  EXPECT_NE(Indexes().find("outbox_published_idx"), std::string::npos);
  ASSERT_EQ(Exec(admin_.get(), StrCat("DROP INDEX \"", schema_, "\".outbox_published_idx; DELETE FROM \"", schema_,
                                      "\".herald_schema_migrations WHERE version = 3")),
            "");
  EXPECT_THAT(PostgresOutboxStore::Open(GoOptions()), IsOk());
  auto planned = PlanOutboxMigration(GoOptions());
  ASSERT_THAT(planned, IsOk());
  EXPECT_THAT(planned->Script(), HasSubstr("CREATE INDEX CONCURRENTLY IF NOT EXISTS \"outbox_published_idx\" ON \"" +
                                           schema_ + "\".\"outbox\" (published_at) WHERE published_at IS NOT NULL"));
  EXPECT_THAT(planned->Script(), ::testing::Not(HasSubstr("ALTER TABLE")));
  ASSERT_THAT(MigrateOutbox(GoOptions()), IsOk());
  EXPECT_NE(Indexes().find("outbox_published_idx"), std::string::npos);
  EXPECT_EQ(Query(admin_.get(), StrCat("SELECT string_agg(version::text, ',' ORDER BY version) FROM \"", schema_,
                                       "\".herald_schema_migrations")),
            "1,2,3");
  auto again = PlanOutboxMigration(GoOptions());
  ASSERT_THAT(again, IsOk());
  EXPECT_THAT(again->steps, SizeIs(0));
}

TEST_F(OutboxMigrationTest, ResumesAnInterruptedMigration) {
  CreateGoTable();
  // As if a run stopped after its first steps: columns added, rows half
  // filled, one NOT NULL check added but not validated.
  auto plan = PlanOutboxMigration(GoOptions());
  ASSERT_THAT(plan, IsOk());
  ASSERT_EQ(Exec(admin_.get(), StrCat("BEGIN; ", plan->steps[0].sql, "COMMIT")), "");
  ASSERT_EQ(
      Exec(admin_.get(), StrCat("UPDATE ", Table(), " SET occurred_at = created_at WHERE id <= 100; ALTER TABLE ",
                                Table(), " ADD CONSTRAINT herald_seq_not_null CHECK (seq IS NOT NULL) NOT VALID")),
      "");
  EXPECT_THAT(PostgresOutboxStore::Open(GoOptions()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("herald outbox migrate")));
  auto resumed = PlanOutboxMigration(GoOptions());
  ASSERT_THAT(resumed, IsOk());
  EXPECT_THAT(resumed->Script(), ::testing::Not(HasSubstr("ADD COLUMN")));
  EXPECT_THAT(resumed->Script(), ::testing::Not(HasSubstr("ADD CONSTRAINT herald_seq_not_null")));
  ASSERT_THAT(MigrateOutbox(GoOptions()), IsOk());
  EXPECT_EQ(Query(admin_.get(),
                  StrCat("SELECT count(*) FROM ", Table(), " WHERE occurred_at = created_at AND seq IS NOT NULL")),
            std::to_string(kGoRows));
  EXPECT_THAT(PostgresOutboxStore::Open(GoOptions()), IsOk());
}

TEST_F(OutboxMigrationTest, CreatesAFreshTableAndRefusesAnIncompatibleOne) {
  auto created = MigrateOutbox(GoOptions());
  ASSERT_THAT(created, IsOk());
  EXPECT_EQ(created->mode, OutboxMigrationPlan::Mode::kCreate);
  auto again = MigrateOutbox(GoOptions());
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->mode, OutboxMigrationPlan::Mode::kUpToDate);
  EXPECT_THAT(PostgresOutboxStore::Open(GoOptions()), IsOk());

  PostgresOptions other = GoOptions();
  other.table = "legacy";
  ASSERT_EQ(Exec(admin_.get(), StrCat("CREATE TABLE \"", schema_,
                                      "\".legacy (event_type TEXT, topic TEXT, event_payload TEXT, created_at TEXT, "
                                      "tenant TEXT NOT NULL)")),
            "");
  EXPECT_THAT(PlanOutboxMigration(other),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("column created_at is text")));
  EXPECT_THAT(MigrateOutbox(other), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("tenant")));
}

TEST_F(OutboxMigrationTest, CreateSchemaFalseCreatesNothing) {
  PostgresOptions o = GoOptions();
  o.create_schema = false;
  EXPECT_THAT(PostgresOutboxStore::Open(o),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("herald outbox migrate")));
  EXPECT_EQ(Query(admin_.get(), StrCat("SELECT count(*) FROM pg_namespace WHERE nspname = '", schema_, "'")), "0");
  ASSERT_THAT(MigrateOutbox(o), IsOk());
  EXPECT_THAT(PostgresOutboxStore::Open(o), IsOk());
}

}  // namespace
}  // namespace herald::postgres
