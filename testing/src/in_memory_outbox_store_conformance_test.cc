// The public OutboxStore conformance suite, run against the in-memory fake, so
// that unit tests written against InMemoryOutboxStore rely on the same
// behaviour as the SQLite and PostgreSQL stores.
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "herald/testing/in_memory_outbox_store.h"
#include "herald/testing/outbox_store_conformance.h"

namespace herald::testing {
namespace {

OutboxStoreFactory InMemoryFactory() {
  OutboxStoreFactory factory;
  factory.name = "in_memory";
  factory.make = [](const std::string&) -> absl::StatusOr<std::unique_ptr<OutboxStore>> {
    return std::unique_ptr<OutboxStore>(std::make_unique<InMemoryOutboxStore>());
  };
  // A row with only type, topic and payload (no id, key or headers), in its
  // own transaction: what a service in another language writes.
  factory.raw_three_column_insert = [](OutboxStore& store, std::string_view topic, std::string_view type,
                                       std::string_view payload) -> absl::Status {
    absl::StatusOr<std::unique_ptr<Transaction>> tx = store.Begin();
    if (!tx.ok()) return tx.status();
    Envelope e;
    e.topic = std::string(topic);
    e.type = std::string(type);
    e.payload = std::string(payload);
    e.time = absl::Now();  // the SQL stores default occurred_at to now()
    if (absl::Status s = store.Append(**tx, e); !s.ok()) return s;
    return (*tx)->Commit();
  };
  factory.supports_reopen = false;
  factory.supports_shards = true;
  return factory;
}

INSTANTIATE_TEST_SUITE_P(InMemory, OutboxStoreConformanceTest, ::testing::Values(InMemoryFactory()),
                         OutboxStoreFactoryName);

}  // namespace
}  // namespace herald::testing
