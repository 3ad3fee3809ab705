// herald/testing/drain.h: relay the whole outbox synchronously.
//
// For unit tests that write through the outbox and want the events on the
// bus before asserting, without a relay thread:
//
//   herald::testing::InMemoryOutboxStore store;
//   herald::Bus bus(std::make_unique<herald::testing::FakeTransport>());
//   auto tx = store.Begin().value();
//   ASSERT_THAT(store.Append(*tx, CustomerEvent{.customer_id = "cust-1"}), IsOk());
//   ASSERT_THAT(store.Append(*tx, CustomerEvent{.customer_id = "cust-2"}), IsOk());
//   ASSERT_THAT(tx->Commit(), IsOk());
//   EXPECT_THAT(herald::testing::DrainOutbox(store, bus), IsOkAndHolds(2));
//   EXPECT_EQ(bus.transport<herald::testing::FakeTransport>().published("customer-events").size(), 2);
#ifndef HERALD_TESTING_DRAIN_H_
#define HERALD_TESTING_DRAIN_H_

#include "absl/status/statusor.h"
#include "herald/core/bus.h"
#include "herald/core/outbox.h"
#include "herald/core/relay.h"

namespace herald::testing {

// Runs OutboxRelay::RunOnce (claim, publish, wait for delivery, mark, purge)
// on the calling thread until a round publishes nothing, and returns the
// number of rows published in all. Rows whose publish fails are marked failed
// with their backoff (or parked) as the relay does, and are not retried
// within this call unless their retry time has already come on
// `options.clock`; a round that publishes nothing ends the drain even if such
// rows remain. Stops after `max_rounds` rounds as a guard against a store
// that never runs dry. Errors: the first store error of a round.
// Blocks on the bus's delivery reports (up to options.publish_timeout per
// round). `store` and `bus` are borrowed for the call.
absl::StatusOr<int> DrainOutbox(OutboxStore& store, Bus& bus, RelayOptions options = {}, int max_rounds = 10000);

}  // namespace herald::testing

#endif  // HERALD_TESTING_DRAIN_H_
