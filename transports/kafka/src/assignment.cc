#include "assignment.h"

#include "kafka_status.h"
#include "rdkafka_handles.h"

namespace herald::kafka {

absl::Status ApplyRebalance(rd_kafka_t* rk, AssignmentChange change, bool cooperative,
                            const rd_kafka_topic_partition_list_t* partitions) {
  if (cooperative) {
    if (change == AssignmentChange::kAssign) {
      return KafkaErrorToStatus(ErrorPtr(rd_kafka_incremental_assign(rk, partitions)).get(), "incremental assign");
    }
    return KafkaErrorToStatus(ErrorPtr(rd_kafka_incremental_unassign(rk, partitions)).get(), "incremental unassign");
  }
  if (change == AssignmentChange::kAssign) return KafkaErrorToStatus(rd_kafka_assign(rk, partitions), "assign");
  return KafkaErrorToStatus(rd_kafka_assign(rk, nullptr), "unassign");
}

}  // namespace herald::kafka
