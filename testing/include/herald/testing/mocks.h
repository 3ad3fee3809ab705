// herald/testing/mocks.h: gMock mocks of every abstract interface in core.
//
// Prefer the fakes (FakeTransport, InMemoryOutboxStore, FakeClock) for behaviour;
// use these mocks to check interactions: that a call happened, with which
// arguments, how often, in which order.
//
//   auto mock = std::make_unique<herald::testing::MockTransport>();
//   EXPECT_CALL(*mock, Publish(HasType("customer.created"), _))
//       .WillOnce([](herald::Envelope, herald::PublishCallback done) {
//         done(herald::DeliveryReport{"customer-events", 0, 7});
//       });
//   herald::Bus bus(std::move(mock));
//   EXPECT_THAT(bus.Publish(CustomerEvent{.customer_id = "cust-1"}), IsOk());
//
// MockTransport mocks the transport interface; the Bus over it is the real
// one. A Publish expectation must run `done` (exactly once) or the blocking
// Bus::Publish never returns.
//
// Thread-safety: as gMock mocks are (calls may come from any thread;
// expectations are set before).
#ifndef HERALD_TESTING_MOCKS_H_
#define HERALD_TESTING_MOCKS_H_

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "gmock/gmock.h"
#include "herald/core/transport.h"
#include "herald/core/clock.h"
#include "herald/core/inbox.h"
#include "herald/core/message.h"
#include "herald/core/outbox.h"

namespace herald::testing {

class MockTransport : public herald::Transport {
 public:
  MOCK_METHOD(void, Publish, (Envelope envelope, PublishCallback done), (override));
  MOCK_METHOD(void, PublishRecord, (std::string topic, Record record, PublishCallback done), (override));
  MOCK_METHOD(absl::Status, Subscribe, (TransportSubscription subscription), (override));
  MOCK_METHOD(absl::Status, Start, (), (override));
  MOCK_METHOD(absl::Status, Stop, (absl::Duration drain_deadline), (override));
  MOCK_METHOD(absl::Status, Flush, (absl::Duration timeout), (override));
};

template <typename T>
class MockEventHandler : public herald::EventHandler<T> {
 public:
  MOCK_METHOD(absl::Status, Handle, (const T& event, const Message& message), (override));
};

class MockTransaction : public herald::Transaction {
 public:
  MOCK_METHOD(absl::Status, Commit, (), (override));
  MOCK_METHOD(absl::Status, Rollback, (), (override));
};

class MockLease : public herald::Lease {
 public:
  MOCK_METHOD(absl::Status, Check, (), (override));
};

class MockOutboxStore : public herald::OutboxStore {
 public:
  using OutboxStore::Append;

  MOCK_METHOD(absl::StatusOr<std::unique_ptr<Transaction>>, Begin, (), (override));
  MOCK_METHOD(absl::Status, Append, (Transaction & tx, const Envelope& envelope), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<OutboxRecord>>, FetchPendingBatch, (const PendingBatchOptions& options),
              (override));
  MOCK_METHOD(absl::Status, MarkPublished, (absl::Span<const int64_t> sequences), (override));
  MOCK_METHOD(absl::Status, MarkFailed, (int64_t sequence, std::string_view error, absl::Time retry_at, bool park),
              (override));
  MOCK_METHOD(absl::StatusOr<int64_t>, RetryParked, (absl::Span<const int64_t> sequences), (override));
  MOCK_METHOD(absl::StatusOr<int64_t>, SkipParked, (absl::Span<const int64_t> sequences, std::string_view reason),
              (override));
  MOCK_METHOD(absl::StatusOr<std::vector<std::string>>, KeysWithEarlierRows,
              (absl::Span<const KeyPosition> positions, absl::Span<const int64_t> exclude), (override));
  MOCK_METHOD(absl::StatusOr<int64_t>, AssignKey, (absl::Span<const int64_t> sequences, std::string_view key),
              (override));
  MOCK_METHOD(absl::StatusOr<int64_t>, PurgePublished, (absl::Time before, int limit), (override));
  MOCK_METHOD(absl::StatusOr<OutboxStats>, Stats, (), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<OutboxRecord>>, ListParked, (int limit), (override));
  MOCK_METHOD(absl::Status, WaitForWork, (absl::Duration timeout), (override));
  MOCK_METHOD(void, Interrupt, (), (override));
  MOCK_METHOD(absl::StatusOr<std::unique_ptr<Lease>>, TryAcquireLease, (std::string_view name), (override));
};

class MockInbox : public herald::Inbox {
 public:
  MOCK_METHOD(absl::StatusOr<std::unique_ptr<Transaction>>, Begin, (), (override));
  MOCK_METHOD(absl::StatusOr<bool>, MarkProcessed,
              (Transaction & tx, std::string_view consumer, std::string_view event_id), (override));
  MOCK_METHOD(absl::StatusOr<int64_t>, PurgeProcessed, (absl::Time before, int limit), (override));
};

class MockClock : public herald::Clock {
 public:
  MOCK_METHOD(absl::Time, Now, (), (const, override));
  MOCK_METHOD(void, SleepFor, (absl::Duration d), (const, override));
};

}  // namespace herald::testing

#endif  // HERALD_TESTING_MOCKS_H_
