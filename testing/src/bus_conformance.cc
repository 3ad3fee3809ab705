// The tests themselves are compiled where the suite is instantiated.
#define HERALD_TESTING_BUS_CONFORMANCE_FIXTURE_ONLY_
#include "herald/testing/bus_conformance.h"

#include <cctype>

#include "absl/random/random.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"

namespace herald::testing {

std::string BusFactoryName(const ::testing::TestParamInfo<BusFactory>& info) {
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

void BusConformanceTest::SetUp() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string test = info != nullptr ? info->name() : "test";
  std::string clean;
  for (char c : test) clean.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '-');
  absl::BitGen gen;
  prefix_ = herald::StrCat("herald-conf-", clean, "-", absl::Uniform<uint32_t>(gen), "-");
}

void BusConformanceTest::TearDown() {
  std::vector<std::unique_ptr<Bus>> buses;
  {
    MutexLock lock(buses_mu_);
    buses.swap(buses_);
  }
  for (auto it = buses.rbegin(); it != buses.rend(); ++it) (*it)->Stop(absl::Seconds(30)).IgnoreError();
  while (!buses.empty()) buses.pop_back();
}

Bus& BusConformanceTest::MakeBus() {
  std::unique_ptr<Bus> bus = factory().make(prefix_);
  EXPECT_NE(bus, nullptr) << "BusFactory::make returned null";
  Bus& ref = *bus;
  MutexLock lock(buses_mu_);
  buses_.push_back(std::move(bus));
  return ref;
}

absl::Status BusConformanceTest::StartAndWait(Bus& bus) {
  HERALD_RETURN_IF_ERROR(bus.Start());
  if (factory().wait_until_assigned) factory().wait_until_assigned(bus);
  return absl::OkStatus();
}

std::string BusConformanceTest::Topic(std::string_view name) const { return herald::StrCat(prefix_, name); }

std::string BusConformanceTest::Group(std::string_view name) const {
  return herald::StrCat(prefix_, "group-", name);
}

bool BusConformanceTest::WaitUntil(const std::function<bool()>& done) {
  const absl::Time deadline = absl::Now() + factory().delivery_timeout;
  while (true) {
    if (factory().run_pending) {
      std::vector<Bus*> buses;
      {
        MutexLock lock(buses_mu_);
        for (auto& b : buses_) buses.push_back(b.get());
      }
      for (Bus* b : buses) factory().run_pending(*b);
    }
    if (done()) return true;
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
}

Envelope BusConformanceTest::MakeEvent(const std::string& topic, std::string entity, int64_t sequence,
                                       std::string note) {
  EnvelopeOptions options;
  options.topic = topic;
  options.source = "conformance-suite";
  return MakeEnvelope(internal::ConformanceEvent{std::move(entity), sequence, std::move(note)}, std::move(options));
}

SubscribeOptions BusConformanceTest::Options(const std::string& group, const std::string& topic) const {
  SubscribeOptions options;
  options.group = group;
  options.topics = {topic};
  options.retry.initial_backoff = factory().retry_backoff;
  options.retry.max_backoff = factory().retry_backoff * 4;
  options.retry.jitter = 0;
  return options;
}

}  // namespace herald::testing
