// Applying a consumer-group rebalance to librdkafka's assignment (private to
// herald::kafka).
#ifndef HERALD_KAFKA_SRC_ASSIGNMENT_H_
#define HERALD_KAFKA_SRC_ASSIGNMENT_H_

#include <librdkafka/rdkafka.h>

#include "absl/status/status.h"

namespace herald::kafka {

enum class AssignmentChange { kAssign, kRevoke };

// Applies a rebalance's `partitions` to `rk`'s assignment: with the
// cooperative protocol incrementally (kAssign adds them, kRevoke removes
// them), with the eager one wholesale (kAssign sets them, kRevoke clears the
// assignment). Returns librdkafka's result as a Status: non-OK means the
// assignment is not what the group decided (e.g. a partition assigned twice
// or revoked while not assigned), which the caller reports as an error.
absl::Status ApplyRebalance(rd_kafka_t* rk, AssignmentChange change, bool cooperative,
                            const rd_kafka_topic_partition_list_t* partitions);

}  // namespace herald::kafka

#endif  // HERALD_KAFKA_SRC_ASSIGNMENT_H_
