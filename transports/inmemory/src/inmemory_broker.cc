#include "herald/inmemory/inmemory_broker.h"

#include <algorithm>
#include <utility>

#include "broker_state.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"

namespace herald::inmemory {
namespace {

// Kafka's murmur2 (the Java client's Utils.murmur2), so a key lands on the
// same partition as from the Java client or kafka-go's Murmur2Balancer.
uint32_t Murmur2(std::string_view data) {
  const uint32_t seed = 0x9747b28c;
  const uint32_t m = 0x5bd1e995;
  const int r = 24;
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  const size_t length = data.size();
  uint32_t h = seed ^ static_cast<uint32_t>(length);
  const size_t length4 = length / 4;
  for (size_t i = 0; i < length4; ++i) {
    const size_t i4 = i * 4;
    uint32_t k = static_cast<uint32_t>(bytes[i4]) | (static_cast<uint32_t>(bytes[i4 + 1]) << 8) |
                 (static_cast<uint32_t>(bytes[i4 + 2]) << 16) | (static_cast<uint32_t>(bytes[i4 + 3]) << 24);
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  const size_t tail = length4 * 4;
  switch (length % 4) {
    case 3:
      h ^= static_cast<uint32_t>(bytes[tail + 2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<uint32_t>(bytes[tail + 1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= static_cast<uint32_t>(bytes[tail]);
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return h;
}

absl::Status ValidateOptions(const InMemoryBrokerOptions& o) {
  if (o.partitions < 1) return absl::InvalidArgumentError("InMemoryBrokerOptions: partitions must be >= 1");
  if (o.retention_per_partition < 1) {
    return absl::InvalidArgumentError("InMemoryBrokerOptions: retention_per_partition must be >= 1");
  }
  if (o.max_pending_per_partition < 1) {
    return absl::InvalidArgumentError("InMemoryBrokerOptions: max_pending_per_partition must be >= 1");
  }
  if (o.publish_block_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("InMemoryBrokerOptions: publish_block_timeout must not be negative");
  }
  if (o.max_record_bytes < 0) {
    return absl::InvalidArgumentError("InMemoryBrokerOptions: max_record_bytes must not be negative (0: no limit)");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<InMemoryBroker>> InMemoryBroker::Create(InMemoryBrokerOptions options) {
  HERALD_RETURN_IF_ERROR(ValidateOptions(options));
  return std::make_shared<InMemoryBroker>(Passkey{}, std::move(options));
}

InMemoryBroker::InMemoryBroker(Passkey, InMemoryBrokerOptions options) : options_(std::move(options)) {}

InMemoryBroker::~InMemoryBroker() = default;

int32_t InMemoryBroker::PartitionFor(std::string_view key) const {
  if (key.empty()) return -1;
  return static_cast<int32_t>((Murmur2(key) & 0x7fffffff) % static_cast<uint32_t>(options_.partitions));
}

InMemoryBroker::Topic* InMemoryBroker::GetOrCreateTopic(std::string_view name) {
  MutexLock lock(mu_);
  auto it = topics_.find(ToAbsl(name));
  if (it != topics_.end()) return it->second.get();
  auto topic = std::make_unique<Topic>();
  topic->name = std::string(name);
  for (int i = 0; i < options_.partitions; ++i) topic->partitions.push_back(std::make_unique<Partition>());
  Topic* raw = topic.get();
  topics_.emplace(std::string(name), std::move(topic));
  return raw;
}

const InMemoryBroker::Topic* InMemoryBroker::FindTopic(std::string_view name) const {
  MutexLock lock(mu_);
  auto it = topics_.find(ToAbsl(name));
  return it == topics_.end() ? nullptr : it->second.get();
}

uint64_t InMemoryBroker::NextMemberId() {
  MutexLock lock(mu_);
  return next_member_id_++;
}

std::vector<InMemoryBroker::Assignment> InMemoryBroker::Join(const Member& member) {
  std::vector<Assignment> slots;
  for (const std::string& name : member.topics) {
    Topic* topic = GetOrCreateTopic(name);
    for (size_t i = 0; i < topic->partitions.size(); ++i) {
      Partition& p = *topic->partitions[i];
      MutexLock lock(p.mu);
      GroupCursor* cursor = p.FindCursor(member.group);
      if (cursor == nullptr) {
        auto created = std::make_unique<GroupCursor>();
        created->group = member.group;
        created->next_offset = p.start_offset;  // earliest retained
        cursor = created.get();
        p.cursors.push_back(std::move(created));
      }
      slots.push_back(Assignment{&p, cursor, name, static_cast<int32_t>(i)});
    }
  }
  MutexLock lock(mu_);
  members_.push_back(member);
  for (const std::string& name : member.topics) Rebalance(member.group, name);
  return slots;
}

void InMemoryBroker::Leave(const std::vector<uint64_t>& member_ids) {
  MutexLock lock(mu_);
  std::vector<std::pair<std::string, std::string>> affected;
  for (auto it = members_.begin(); it != members_.end();) {
    if (std::find(member_ids.begin(), member_ids.end(), it->id) != member_ids.end()) {
      for (const std::string& t : it->topics) affected.emplace_back(it->group, t);
      it = members_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [group, topic] : affected) Rebalance(group, topic);
}

void InMemoryBroker::Rebalance(const std::string& group, const std::string& topic_name) {
  std::vector<uint64_t> ids;
  for (const Member& m : members_) {
    if (m.group == group && std::find(m.topics.begin(), m.topics.end(), topic_name) != m.topics.end()) {
      ids.push_back(m.id);
    }
  }
  auto it = topics_.find(topic_name);
  if (it == topics_.end()) return;
  Topic& topic = *it->second;
  for (size_t i = 0; i < topic.partitions.size(); ++i) {
    Partition& p = *topic.partitions[i];
    MutexLock lock(p.mu);
    GroupCursor* cursor = p.FindCursor(group);
    if (cursor == nullptr) continue;
    cursor->assigned = ids.empty() ? 0 : ids[i % ids.size()];
    if (cursor->waiters > 0) cursor->cv.NotifyAll();
  }
}

void InMemoryBroker::WakePublishers() {
  std::vector<Partition*> partitions;
  {
    MutexLock lock(mu_);
    for (auto& [name, topic] : topics_) {
      for (auto& p : topic->partitions) partitions.push_back(p.get());
    }
  }
  for (Partition* p : partitions) {
    MutexLock lock(p->mu);
    if (p->space_waiters > 0) p->space_cv.NotifyAll();
  }
}

int64_t InMemoryBroker::Lag(std::string_view group, std::string_view topic_name) const {
  const Topic* topic = FindTopic(topic_name);
  if (topic == nullptr) return 0;
  int64_t lag = 0;
  for (const auto& p : topic->partitions) {
    MutexLock lock(p->mu);
    GroupCursor* cursor = p->FindCursor(group);
    lag += p->end_offset() - (cursor != nullptr ? std::max(cursor->next_offset, p->start_offset) : p->start_offset);
  }
  return lag;
}

int64_t InMemoryBroker::RetainedRecords(std::string_view topic_name) const {
  const Topic* topic = FindTopic(topic_name);
  if (topic == nullptr) return 0;
  int64_t retained = 0;
  for (const auto& p : topic->partitions) {
    MutexLock lock(p->mu);
    retained += static_cast<int64_t>(p->log.size());
  }
  return retained;
}

int64_t InMemoryBroker::EndOffset(std::string_view topic_name, int32_t partition) const {
  const Topic* topic = FindTopic(topic_name);
  if (topic == nullptr || partition < 0 || partition >= static_cast<int32_t>(topic->partitions.size())) return 0;
  Partition& p = *topic->partitions[partition];
  MutexLock lock(p.mu);
  return p.end_offset();
}

}  // namespace herald::inmemory
