#include "herald/testing/drain.h"

#include "herald/core/status.h"

namespace herald::testing {

absl::StatusOr<int> DrainOutbox(OutboxStore& store, Bus& bus, RelayOptions options, int max_rounds) {
  OutboxRelay relay(store, bus, std::move(options));
  int total = 0;
  for (int round = 0; round < max_rounds; ++round) {
    HERALD_ASSIGN_OR_RETURN(int published, relay.RunOnce());
    if (published == 0) break;
    total += published;
  }
  return total;
}

}  // namespace herald::testing
