// herald_peer: herald's side of the Go interop test (tests/interop/go/run.sh).
// Each subcommand prints what it checked and exits non-zero on a mismatch.
//
//   herald_peer consume      BROKERS TOPIC EXPECT_FILE [--check-key]
//       a typed handler on a KafkaTransport for CustomerEvent decodes every record; ids,
//       types, times, customer ids, details (and keys) must match the file
//   herald_peer publish      BROKERS TOPIC N OUT_FILE
//       a Bus over a KafkaTransport publishes N CustomerEvents; writes what it sent to OUT_FILE
//   herald_peer produce-keys BROKERS TOPIC KEYS_FILE TAG
//       one record per key (type TAG), partitioned by herald's producer
//
// The expectations file is JSON lines {"id","type","timestamp","customer_id",
// "details","key"}, shared with the Go program.
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "herald/core/json.h"
#include "herald/core/mutex.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/core/bus.h"
#include "herald/kafka/kafka_transport.h"
#include "herald/testing/sample_events.h"

namespace {

using herald::testing::CustomerEvent;

struct Expected {
  std::string id;
  std::string type;
  absl::Time timestamp;
  std::string customer_id;
  std::optional<CustomerEvent::Details> details;
  std::string key;
  static constexpr auto JsonFields() {
    return herald::json::Fields(herald::json::Field("id", &Expected::id), herald::json::Field("type", &Expected::type),
                                herald::json::Field("timestamp", &Expected::timestamp),
                                herald::json::Field("customer_id", &Expected::customer_id),
                                herald::json::Field("details", &Expected::details),
                                herald::json::Field("key", &Expected::key));
  }
};

absl::StatusOr<std::vector<std::string>> ReadLines(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(herald::StrCat("cannot open ", path));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

absl::StatusOr<std::unique_ptr<herald::Bus>> MakeBus(const std::string& brokers) {
  herald::kafka::KafkaTransportOptions options;
  options.brokers = brokers;
  options.client_id = "herald-interop";
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::kafka::KafkaTransport> transport,
                          herald::kafka::KafkaTransport::Create(std::move(options)));
  return std::make_unique<herald::Bus>(std::move(transport), herald::BusOptions{.source = "herald-interop"});
}

absl::Status Consume(const std::string& brokers, const std::string& topic, const std::string& expect_path,
                     bool check_key) {
  HERALD_ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadLines(expect_path));
  std::map<std::string, Expected> expected;
  for (const std::string& line : lines) {
    HERALD_ASSIGN_OR_RETURN(Expected e, herald::json::Decode<Expected>(line));
    expected.emplace(e.id, std::move(e));
  }
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::Bus> bus, MakeBus(brokers));
  herald::Mutex mu;
  std::vector<std::string> problems;
  std::set<std::string> seen;
  int handled = 0;
  herald::SubscribeOptions options;
  options.topics = {topic};
  HERALD_RETURN_IF_ERROR(bus->Subscribe<CustomerEvent>(
      herald::StrCat("herald-interop-", topic),
      [&](const CustomerEvent& event, const herald::Message& m) {
        herald::MutexLock lock(mu);
        ++handled;
        const herald::Envelope& env = m.envelope;
        auto it = expected.find(env.id);
        if (it == expected.end()) {
          problems.push_back(herald::StrCat("unexpected id ", env.id, " (", env.type, ")"));
          return absl::OkStatus();
        }
        const Expected& e = it->second;
        if (!seen.insert(env.id).second) problems.push_back(herald::StrCat("duplicate id ", env.id));
        if (env.type != e.type) problems.push_back(herald::StrCat(env.id, ": type ", env.type, ", want ", e.type));
        if (env.time != e.timestamp) {
          problems.push_back(
              herald::StrCat(env.id, ": time ", absl::FormatTime(env.time), ", want ", absl::FormatTime(e.timestamp)));
        }
        if (event.customer_id != e.customer_id || event.details != e.details) {
          problems.push_back(herald::StrCat(env.id, ": payload ", env.payload, " decoded to customer ",
                                            event.customer_id, ", ", herald::json::Encode(event.details)));
        }
        if (check_key && env.key != e.key) {
          problems.push_back(herald::StrCat(env.id, ": key \"", env.key, "\", want \"", e.key, "\""));
        }
        return absl::OkStatus();
      },
      options));
  HERALD_RETURN_IF_ERROR(bus->Start());
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    {
      herald::MutexLock lock(mu);
      if (seen.size() >= expected.size()) break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  absl::SleepFor(absl::Milliseconds(500));  // a duplicate or stray record shows up here
  HERALD_RETURN_IF_ERROR(bus->Stop(absl::Seconds(10)));
  herald::MutexLock lock(mu);
  if (seen.size() != expected.size()) {
    problems.push_back(herald::StrCat(seen.size(), " of ", expected.size(), " expected ids arrived"));
  }
  if (!problems.empty()) {
    for (const std::string& p : problems) std::cerr << "  " << p << "\n";
    return absl::InternalError(herald::StrCat("herald typed handler on ", topic, ": ", problems.size(), " problems"));
  }
  std::cout << "herald-peer: typed handler decoded " << seen.size() << "/" << expected.size() << " records on " << topic
            << " into CustomerEvent (" << handled << " handled): ids, types, times, customer ids and "
            << "details match" << (check_key ? ", keys match" : "") << std::endl;
  return absl::OkStatus();
}

absl::Status Publish(const std::string& brokers, const std::string& topic, int n, const std::string& out_path) {
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::Bus> bus, MakeBus(brokers));
  HERALD_RETURN_IF_ERROR(bus->Start());
  std::ofstream out(out_path);
  for (int i = 0; i < n; ++i) {
    CustomerEvent event;
    event.type = i % 4 == 1 ? CustomerEvent::Type::kUpdated : CustomerEvent::Type::kCreated;
    event.customer_id = herald::StrCat("herald-cust-", i % 5);
    if (i % 3 != 2) event.details = CustomerEvent::Details{{"name", herald::StrCat("Zoë <", i, "> & co")}};
    herald::Envelope e = herald::MakeEnvelope(event, {.source = "herald-interop", .topic = topic});
    // Times with nanoseconds, so Go's time.Time is checked to the last digit.
    e.time += absl::Nanoseconds(i * 111);
    HERALD_RETURN_IF_ERROR(bus->Publish(e).status());
    Expected x{e.id, e.type, e.time, event.customer_id, event.details, e.key};
    out << herald::json::Encode(x) << "\n";
  }
  HERALD_RETURN_IF_ERROR(bus->Flush(absl::Seconds(30)));
  HERALD_RETURN_IF_ERROR(bus->Stop(absl::Seconds(10)));
  std::cout << "herald-peer: herald published " << n << " CustomerEvents to " << topic << std::endl;
  return absl::OkStatus();
}

absl::Status ProduceKeys(const std::string& brokers, const std::string& topic, const std::string& keys_path,
                         const std::string& tag) {
  HERALD_ASSIGN_OR_RETURN(std::vector<std::string> keys, ReadLines(keys_path));
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::Bus> bus, MakeBus(brokers));
  HERALD_RETURN_IF_ERROR(bus->Start());
  for (const std::string& key : keys) HERALD_RETURN_IF_ERROR(bus->PublishRaw(topic, tag, "{}", key).status());
  HERALD_RETURN_IF_ERROR(bus->Flush(absl::Seconds(30)));
  HERALD_RETURN_IF_ERROR(bus->Stop(absl::Seconds(10)));
  std::cout << "herald-peer: herald produced " << keys.size() << " keyed records to " << topic << std::endl;
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::Status status = absl::InvalidArgumentError(
      "usage: herald_peer consume BROKERS TOPIC EXPECT [--check-key] | publish BROKERS TOPIC N OUT | "
      "produce-keys BROKERS TOPIC KEYS TAG");
  if (args.size() >= 4 && args[0] == "consume") {
    status = Consume(args[1], args[2], args[3], args.size() > 4 && args[4] == "--check-key");
  } else if (args.size() == 5 && args[0] == "publish") {
    status = Publish(args[1], args[2], std::stoi(args[3]), args[4]);
  } else if (args.size() == 5 && args[0] == "produce-keys") {
    status = ProduceKeys(args[1], args[2], args[3], args[4]);
  }
  if (!status.ok()) {
    std::cerr << "herald-peer: FAIL: " << status << std::endl;
    return 1;
  }
  return 0;
}
