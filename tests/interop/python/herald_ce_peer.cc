// herald_ce_peer: herald's side of the CloudEvents Python SDK interop test
// (tests/interop/python/run.sh). Each subcommand prints what it checked and
// exits non-zero on a mismatch.
//
//   herald_ce_peer publish BROKERS N OUT_FILE ENVELOPE_TOPIC BINARY_TOPIC STRUCTURED_TOPIC
//       one Bus over one KafkaTransport whose wire_mode_by_topic makes
//       BINARY_TOPIC pure binary and STRUCTURED_TOPIC structured (ENVELOPE_TOPIC
//       keeps the default JSON envelope) publishes N events to each, with
//       subject, dataschema, extensions, traceparent/tracestate headers and a
//       key; OUT_FILE gets one JSON line per event (what the SDK must read)
//   herald_ce_peer consume BROKERS EXPECT_FILE TOPIC...
//       a raw handler reads TOPIC... and checks every envelope against the
//       JSON line with its id (written by the Python peer): type, source,
//       time, subject, dataschema, key, content type, payload bytes,
//       traceparent/tracestate headers and extensions
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/time/clock.h"
#include "herald/core/bus.h"
#include "herald/core/json.h"
#include "herald/core/mutex.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/core/uuid.h"
#include "herald/kafka/kafka_transport.h"

namespace {

// One event either side sent, as the other side must find it.
struct Expected {
  std::string mode;  // "envelope", "binary", "structured"
  std::string topic;
  std::string id;
  std::string type;
  std::string source;
  absl::Time time;
  std::string subject;     // "" = none
  std::string dataschema;  // "" = none
  std::string key;         // the key herald must see (from the record or partitionkey)
  std::string content_type;
  std::string traceparent;  // "" = none
  std::string tracestate;   // "" = none
  std::map<std::string, std::string> extensions;
  std::string payload_base64;          // the payload bytes herald sends or must decode
  herald::json::RawJson payload = {};  // herald -> SDK: the JSON payload
  static constexpr auto JsonFields() {
    using herald::json::Field;
    return herald::json::Fields(
        Field("mode", &Expected::mode), Field("topic", &Expected::topic), Field("id", &Expected::id),
        Field("type", &Expected::type), Field("source", &Expected::source), Field("time", &Expected::time),
        Field("subject", &Expected::subject), Field("dataschema", &Expected::dataschema), Field("key", &Expected::key),
        Field("content_type", &Expected::content_type), Field("traceparent", &Expected::traceparent),
        Field("tracestate", &Expected::tracestate), Field("extensions", &Expected::extensions),
        Field("payload_base64", &Expected::payload_base64), Field("payload", &Expected::payload));
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

absl::StatusOr<std::unique_ptr<herald::Bus>> MakeBus(const std::string& brokers,
                                                     std::map<std::string, herald::WireMode, std::less<>> modes) {
  herald::kafka::KafkaTransportOptions options;
  options.brokers = brokers;
  options.client_id = "herald-ce-interop";
  options.wire_mode_by_topic = std::move(modes);
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::kafka::KafkaTransport> transport,
                          herald::kafka::KafkaTransport::Create(std::move(options)));
  return std::make_unique<herald::Bus>(std::move(transport), herald::BusOptions{.source = "herald-interop"});
}

absl::Status Publish(const std::string& brokers, int n, const std::string& out_path,
                     const std::vector<std::pair<std::string, std::string>>& topics) {
  std::map<std::string, herald::WireMode, std::less<>> modes;
  for (const auto& [mode, topic] : topics) {
    if (mode == "binary") modes[topic] = herald::WireMode::kBinary;
    if (mode == "structured") modes[topic] = herald::WireMode::kCloudEventsStructured;
  }
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::Bus> bus, MakeBus(brokers, std::move(modes)));
  HERALD_RETURN_IF_ERROR(bus->Start());
  std::ofstream out(out_path);
  int published = 0;
  for (const auto& [mode, topic] : topics) {
    for (int i = 0; i < n; ++i) {
      herald::Envelope e;
      e.time = absl::Now() + absl::Nanoseconds(i * 111);  // nanoseconds: the SDK reads microseconds
      e.id = herald::NewUuidV7(e.time);
      e.type = i % 3 == 1 ? "customer.updated" : "customer.created";
      e.topic = topic;
      e.key = herald::StrCat("cust-", i % 5);
      e.source = "herald-interop";
      e.subject = herald::StrCat("customers/", e.key);
      if (i % 2 == 0) e.dataschema = "https://schemas.example.com/customer/v1.json";
      e.extensions = {{"region", i % 2 == 0 ? "eu1" : "us2"}, {"sequence", herald::StrCat(i)}};
      if (i % 4 == 3) e.extensions.emplace_back("comexampleflag", "on");
      std::string trace_id = herald::StrCat("0af7651916cd43dd8448eb211c8", 10000 + i);
      e.headers = {{"correlation-id", herald::StrCat("req-", i)},
                   {"traceparent", herald::StrCat("00-", trace_id, "-b7ad6b7169203331-01")}};
      if (i % 2 == 1) e.headers.emplace_back("tracestate", herald::StrCat("herald=", i));
      e.payload = herald::StrCat(R"({"customer_id":")", e.key, R"(","details":{"name":"Zoë <)", i, R"(> & co"}})");
      HERALD_RETURN_IF_ERROR(bus->Publish(e).status());
      ++published;
      Expected x;
      x.mode = mode;
      x.topic = topic;
      x.id = e.id;
      x.type = e.type;
      x.source = e.source;
      x.time = e.time;
      x.subject = e.subject;
      x.dataschema = e.dataschema;
      x.key = e.key;
      x.content_type = e.content_type;
      x.traceparent = std::string(*herald::FindHeader(e.headers, "traceparent"));
      x.tracestate = std::string(herald::FindHeader(e.headers, "tracestate").value_or(""));
      x.extensions = std::map<std::string, std::string>(e.extensions.begin(), e.extensions.end());
      x.payload_base64 = absl::Base64Escape(e.payload);
      x.payload.text = e.payload;
      out << herald::json::Encode(x) << "\n";
    }
  }
  HERALD_RETURN_IF_ERROR(bus->Flush(absl::Seconds(30)));
  HERALD_RETURN_IF_ERROR(bus->Stop(absl::Seconds(10)));
  std::cout << "herald-ce-peer: herald published " << published << " events (" << n << " per topic) in "
            << topics.size() << " wire modes: envelope (default), binary and structured chosen by "
            << "KafkaTransportOptions::wire_mode_by_topic" << std::endl;
  return absl::OkStatus();
}

// The problems of one decoded envelope against what the Python peer sent.
void Check(const herald::Envelope& env, const Expected& x, std::vector<std::string>& problems) {
  auto expect = [&](std::string_view what, std::string_view got, std::string_view want) {
    if (got != want)
      problems.push_back(herald::StrCat(x.mode, " ", env.id, ": ", what, " \"", got, "\", want \"", want, "\""));
  };
  expect("type", env.type, x.type);
  expect("source", env.source, x.source);
  if (env.time != x.time) {
    problems.push_back(herald::StrCat(x.mode, " ", env.id, ": time ", absl::FormatTime(env.time), ", want ",
                                      absl::FormatTime(x.time)));
  }
  expect("subject", env.subject, x.subject);
  expect("dataschema", env.dataschema, x.dataschema);
  expect("key", env.key, x.key);
  expect("content type", env.content_type, x.content_type);
  std::string payload;
  if (!absl::Base64Unescape(x.payload_base64, &payload)) problems.push_back(herald::StrCat(env.id, ": bad base64"));
  expect("payload", absl::CEscape(env.payload), absl::CEscape(payload));
  expect("traceparent header", herald::FindHeader(env.headers, "traceparent").value_or(""), x.traceparent);
  expect("tracestate header", herald::FindHeader(env.headers, "tracestate").value_or(""), x.tracestate);
  std::map<std::string, std::string> extensions;
  for (const auto& [name, value] : env.extensions) {
    if (!extensions.emplace(name, value).second)
      problems.push_back(herald::StrCat(env.id, ": extension ", name, " twice"));
  }
  if (extensions != x.extensions) {
    problems.push_back(herald::StrCat(x.mode, " ", env.id, ": extensions ", herald::json::Encode(extensions), ", want ",
                                      herald::json::Encode(x.extensions)));
  }
}

absl::Status Consume(const std::string& brokers, const std::string& expect_path, std::vector<std::string> topics) {
  HERALD_ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadLines(expect_path));
  std::map<std::string, Expected> expected;
  for (const std::string& line : lines) {
    HERALD_ASSIGN_OR_RETURN(Expected e, herald::json::Decode<Expected>(line));
    expected.emplace(e.id, std::move(e));
  }
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::Bus> bus, MakeBus(brokers, {}));
  herald::Mutex mu;
  std::vector<std::string> problems;
  std::set<std::string> seen;
  std::map<std::string, int> by_mode;
  herald::SubscribeOptions options;
  options.group = herald::StrCat("herald-ce-interop-", topics.front());
  options.topics = topics;
  HERALD_RETURN_IF_ERROR(bus->Subscribe(options, [&](const herald::Message& m) {
    herald::MutexLock lock(mu);
    const herald::Envelope& env = m.envelope;
    auto it = expected.find(env.id);
    if (it == expected.end()) {
      problems.push_back(herald::StrCat("unexpected id ", env.id, " (", env.type, ") on ", m.topic));
      return absl::OkStatus();
    }
    if (!seen.insert(env.id).second) problems.push_back(herald::StrCat("duplicate id ", env.id));
    Check(env, it->second, problems);
    ++by_mode[it->second.mode];
    return absl::OkStatus();
  }));
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
  std::vector<herald::Bus::SubscriptionStats> stats = bus->Stats();
  herald::MutexLock lock(mu);
  if (seen.size() != expected.size()) {
    problems.push_back(herald::StrCat(seen.size(), " of ", expected.size(), " expected ids arrived"));
  }
  for (const auto& s : stats) {
    if (s.undecodable != 0 || s.dead_lettered != 0) {
      problems.push_back(herald::StrCat(s.undecodable, " undecodable, ", s.dead_lettered, " dead-lettered records"));
    }
  }
  if (!problems.empty()) {
    for (const std::string& p : problems) std::cerr << "  " << p << "\n";
    return absl::InternalError(herald::StrCat("herald handler: ", problems.size(), " problems"));
  }
  std::cout << "herald-ce-peer: a herald handler decoded " << seen.size() << "/" << expected.size()
            << " records from the CloudEvents Python SDK (";
  const char* sep = "";
  for (const auto& [mode, count] : by_mode) {
    std::cout << sep << mode << " " << count;
    sep = ", ";
  }
  std::cout << "): id, type, source, time, subject, dataschema, key (record key or partitionkey), content type, "
            << "payload bytes (data and data_base64), traceparent/tracestate and every extension match" << std::endl;
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::Status status = absl::InvalidArgumentError(
      "usage: herald_ce_peer publish BROKERS N OUT ENVELOPE_TOPIC BINARY_TOPIC STRUCTURED_TOPIC | "
      "consume BROKERS EXPECT TOPIC...");
  if (args.size() == 7 && args[0] == "publish") {
    status = Publish(args[1], std::stoi(args[2]), args[3],
                     {{"envelope", args[4]}, {"binary", args[5]}, {"structured", args[6]}});
  } else if (args.size() >= 4 && args[0] == "consume") {
    status = Consume(args[1], args[2], std::vector<std::string>(args.begin() + 3, args.end()));
  }
  if (!status.ok()) {
    std::cerr << "herald-ce-peer: FAIL: " << status << std::endl;
    return 1;
  }
  return 0;
}
