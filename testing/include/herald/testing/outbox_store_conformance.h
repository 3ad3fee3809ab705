// herald/testing/outbox_store_conformance.h: the public conformance suite
// for herald::OutboxStore (and herald::Inbox) implementations.
//
// Every storage plugin, herald's or a user's, proves the same behaviour by
// instantiating this gtest-parameterised suite with a factory. SQLite's
// (storage/sqlite/src/sqlite_conformance_test.cc):
//
//   #include "herald/testing/outbox_store_conformance.h"
//
//   herald::testing::OutboxStoreFactory SqliteFactory() {
//     herald::testing::OutboxStoreFactory factory;
//     factory.name = "sqlite_wal";
//     factory.make = [](const std::string& unique_name) -> absl::StatusOr<std::unique_ptr<OutboxStore>> {
//       SqliteOptions options;
//       options.path = PathFor(unique_name);
//       HERALD_ASSIGN_OR_RETURN(std::unique_ptr<SqliteOutboxStore> store, SqliteOutboxStore::Open(options));
//       return std::unique_ptr<OutboxStore>(std::move(store));
//     };
//     // What a Go service does, on its own connection: the seed's 3-column INSERT.
//     factory.raw_three_column_insert = RawThreeColumnInsert;
//     factory.drop = [](const std::string& unique_name) {
//       for (const char* suffix : {"", "-wal", "-shm"}) std::remove((PathFor(unique_name) + suffix).c_str());
//     };
//     return factory;
//   }
//
//   using herald::testing::OutboxStoreConformanceTest;   // gtest needs the bare name
//   INSTANTIATE_TEST_SUITE_P(Sqlite, OutboxStoreConformanceTest, ::testing::Values(SqliteFactory()),
//                            herald::testing::OutboxStoreFactoryName);
//
// What it checks: rollback (explicit and by destruction) leaves nothing;
// commit order is relay order and envelopes round-trip; concurrent writers
// (every event fetched exactly once, each writer's order kept); a crash
// between publish and mark re-publishes exactly that batch; failure
// bookkeeping (attempts, last_error, retry time, a failing row holds back
// its key only; a backing-off or parked middle row holds back every later
// row of its key); parking (Stats, ListParked, RetryParked, SkipParked);
// AssignKey; KeysWithEarlierRows (failed and parked rows count, published,
// skipped and excluded rows do not); Append refusing schema_version < 1;
// CloudEvents subject, dataschema and extensions round-tripping through the
// headers column and the relay, and Append refusing bad extension names;
// retention
// (PurgePublished); two OutboxRelays on one store (one leader at a time,
// everything published once, per-key order on the bus); the seed's
// three-column INSERT is relayed with a generated id; WaitForWork wakes
// promptly after a commit and on Interrupt; Stats; and, when the store also
// implements herald::Inbox, MarkProcessed / rollback / PurgeProcessed.
//
// Requirements on the store under test: its clock is the system clock (the
// suite compares with absl::Now()), and `make(name)` called twice with the
// same name opens the same data (a restarted process) when
// `supports_reopen` is true.
//
// Tests may take a few seconds each (they wait on conditions with generous
// timeouts, never on sleeps). The suite runs concurrent writers and relays:
// label the binary `concurrency` as well.
#ifndef HERALD_TESTING_OUTBOX_STORE_CONFORMANCE_H_
#define HERALD_TESTING_OUTBOX_STORE_CONFORMANCE_H_

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "herald/core/envelope.h"
#include "herald/core/outbox.h"

namespace herald::testing {

struct OutboxStoreFactory {
  // Names the instantiation in test names ([A-Za-z0-9_]).
  std::string name;
  // A store on fresh data named `unique_name` (a valid identifier of at most
  // 40 characters, e.g. a file name or a schema). Called again with the same
  // name it must open the same data, when supports_reopen. Required.
  std::function<absl::StatusOr<std::unique_ptr<OutboxStore>>(const std::string& unique_name)> make;
  // Inserts one row the way a service in another language does, through the
  // store's native SQL, with only event_type, topic and event_payload, in its
  // own committed transaction. Required.
  std::function<absl::Status(OutboxStore& store, std::string_view topic, std::string_view type,
                             std::string_view payload)>
      raw_three_column_insert;
  // Deletes the data named `unique_name` after a test (files, schema), once
  // every store on it is destroyed. Optional.
  std::function<void(const std::string& unique_name)> drop;
  // Whether `make(name)` twice opens the same data (false: the crash test
  // fetches again on the same instance). Default: true.
  bool supports_reopen = true;
  // Whether PendingBatchOptions.shard_count > 1 is supported. Default: false.
  bool supports_shards = false;
  // Whether the store also implements herald::Inbox (the inbox cases are
  // skipped, with that reason, when it does not). Default: true.
  bool supports_inbox = true;
};

// For INSTANTIATE_TEST_SUITE_P's name generator.
std::string OutboxStoreFactoryName(const ::testing::TestParamInfo<OutboxStoreFactory>& info);
std::ostream& operator<<(std::ostream& os, const OutboxStoreFactory& factory);

class OutboxStoreConformanceTest : public ::testing::TestWithParam<OutboxStoreFactory> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // The store under test (made in SetUp).
  OutboxStore& store() { return *store_; }
  // Destroys the store and makes it again on the same data ("restart").
  void Reopen();
  // A store on the same data as store(), for a second relay (or store()
  // itself when the factory cannot reopen).
  OutboxStore& SecondStore();

  // An envelope with a fresh UUIDv7 id, a microsecond-exact time, source,
  // headers and a JSON payload {"n": n}.
  static Envelope MakeTestEnvelope(std::string_view topic, std::string_view key, int n);
  // Appends `envelopes` in one transaction and commits it.
  absl::Status AppendCommitted(const std::vector<Envelope>& envelopes);
  // Fetches (limit `batch`) and marks published until nothing is left;
  // returns the fetched records in fetch order.
  std::vector<OutboxRecord> FetchAndMarkAll(int batch = 100);

  std::string unique_name_;
  std::unique_ptr<OutboxStore> store_;
  std::unique_ptr<OutboxStore> second_store_;
};

namespace internal {
// Referenced from this header so that linkers keep the suite's object file
// (its TEST_Ps register themselves at static initialization).
bool OutboxStoreConformanceLinked();
inline const bool kOutboxStoreConformanceLinked = OutboxStoreConformanceLinked();
}  // namespace internal

}  // namespace herald::testing

#endif  // HERALD_TESTING_OUTBOX_STORE_CONFORMANCE_H_
