// The tests themselves are compiled where the suite is instantiated.
#define HERALD_TESTING_TRANSPORT_CONFORMANCE_FIXTURE_ONLY_
#include "herald/testing/transport_conformance.h"

#include <cctype>
#include <cstdlib>

#include "absl/random/random.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"

namespace herald::testing {

std::string TransportFactoryName(const ::testing::TestParamInfo<TransportFactory>& info) {
  std::string name;
  for (char c : info.param.name) name.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  return name.empty() ? herald::StrCat("Factory", info.index) : name;
}

namespace internal {

Handler MessageCollector::Record() {
  std::shared_ptr<MessageCollector> self = shared_from_this();
  return [self](const Message& m) {
    self->Add(m);
    return absl::OkStatus();
  };
}

std::function<absl::Status(const ConformanceEvent&, const Message&)> MessageCollector::RecordTyped() {
  std::shared_ptr<MessageCollector> self = shared_from_this();
  return [self](const ConformanceEvent&, const Message& m) {
    self->Add(m);
    return absl::OkStatus();
  };
}

void MessageCollector::Add(const Message& message) {
  MutexLock lock(mu_);
  messages_.push_back(message);
  ids_.insert(message.envelope.id);
}

std::vector<Message> MessageCollector::messages() const {
  MutexLock lock(mu_);
  return messages_;
}

int64_t MessageCollector::size() const {
  MutexLock lock(mu_);
  return static_cast<int64_t>(messages_.size());
}

std::set<std::string> MessageCollector::ids() const {
  MutexLock lock(mu_);
  return ids_;
}

int64_t MessageCollector::distinct() const {
  MutexLock lock(mu_);
  return static_cast<int64_t>(ids_.size());
}

PublishCallback PublishTracker::Callback(std::string id) {
  std::shared_ptr<PublishTracker> self = shared_from_this();
  return [self, id = std::move(id)](absl::StatusOr<DeliveryReport> report) {
    MutexLock lock(self->mu_);
    ++self->completed_;
    if (report.ok()) {
      self->ok_ids_.insert(id);
    } else {
      ++self->failed_;
    }
  };
}

int64_t PublishTracker::completed() const {
  MutexLock lock(mu_);
  return completed_;
}

int64_t PublishTracker::failed() const {
  MutexLock lock(mu_);
  return failed_;
}

std::set<std::string> PublishTracker::ok_ids() const {
  MutexLock lock(mu_);
  return ok_ids_;
}

}  // namespace internal

void TransportConformanceTest::SetUp() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string test = info != nullptr ? info->name() : "test";
  std::string clean;
  for (char c : test) clean.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '-');
  absl::BitGen gen;
  prefix_ = herald::StrCat("herald-conf-", clean, "-", absl::Uniform<uint32_t>(gen), "-");
}

void TransportConformanceTest::TearDown() {
  std::vector<std::unique_ptr<Bus>> buses;
  {
    MutexLock lock(buses_mu_);
    buses.swap(buses_);
  }
  for (auto it = buses.rbegin(); it != buses.rend(); ++it) (*it)->Stop(absl::Seconds(30)).IgnoreError();
  while (!buses.empty()) buses.pop_back();
}

Bus& TransportConformanceTest::MakeBus() {
  std::unique_ptr<Transport> transport = factory().make(prefix_);
  if (transport == nullptr) {
    ADD_FAILURE() << "TransportFactory::make returned null";
    std::abort();
  }
  auto bus = std::make_unique<Bus>(std::move(transport), BusOptions{.source = "conformance-suite"});
  Bus& ref = *bus;
  MutexLock lock(buses_mu_);
  buses_.push_back(std::move(bus));
  return ref;
}

absl::Status TransportConformanceTest::StartAndWait(Bus& bus) {
  HERALD_RETURN_IF_ERROR(bus.Start());
  if (factory().wait_until_assigned) factory().wait_until_assigned(bus.transport());
  return absl::OkStatus();
}

std::string TransportConformanceTest::Topic(std::string_view name) const { return herald::StrCat(prefix_, name); }

std::string TransportConformanceTest::Group(std::string_view name) const {
  return herald::StrCat(prefix_, "group-", name);
}

bool TransportConformanceTest::WaitUntil(const std::function<bool()>& done) {
  const absl::Time deadline = absl::Now() + factory().delivery_timeout;
  while (true) {
    if (factory().run_pending) {
      std::vector<Bus*> buses;
      {
        MutexLock lock(buses_mu_);
        for (auto& b : buses_) buses.push_back(b.get());
      }
      for (Bus* b : buses) factory().run_pending(b->transport());
    }
    if (done()) return true;
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
}

Envelope TransportConformanceTest::MakeEvent(const std::string& topic, std::string entity, int64_t sequence,
                                       std::string note) {
  EnvelopeOptions options;
  options.topic = topic;
  options.source = "conformance-suite";
  return MakeEnvelope(internal::ConformanceEvent{std::move(entity), sequence, std::move(note)}, std::move(options));
}

SubscribeOptions TransportConformanceTest::Options(const std::string& group, const std::string& topic) const {
  SubscribeOptions options;
  options.group = group;
  options.topics = {topic};
  options.retry.initial_backoff = factory().retry_backoff;
  options.retry.max_backoff = factory().retry_backoff * 4;
  options.retry.jitter = 0;
  return options;
}

}  // namespace herald::testing
