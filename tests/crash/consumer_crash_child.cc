// A typed Kafka consumer for consumer_crash_kafkatest: herald's Bus over a
// KafkaTransport, Subscribe<CrashEvent>, and a handler that appends one line
// per handled event to a file before returning OK (one write(2) on an
// O_APPEND descriptor, so a handled event's line survives SIGKILL). Runs
// until killed.
//
//   consumer_crash_child <brokers> <topic> <group> <out file> <incarnation>
//
// Line format: <incarnation> <key> <n> <event id>\n
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/time/clock.h"
#include "consumer_crash_event.h"
#include "herald/core/bus.h"
#include "herald/core/strings.h"
#include "herald/kafka/kafka_transport.h"

int main(int argc, char** argv) {
  if (argc != 6) {
    std::cerr << "usage: consumer_crash_child <brokers> <topic> <group> <out file> <incarnation>\n";
    return 2;
  }
  const std::string incarnation = argv[5];
  int fd = open(argv[4], O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) {
    std::cerr << "consumer_crash_child: cannot open " << argv[4] << "\n";
    return 1;
  }
  herald::kafka::KafkaTransportOptions options;
  options.brokers = argv[1];
  options.client_id = herald::StrCat("crash-consumer-", incarnation);
  // Commit often, so a kill leaves a short suffix to redeliver.
  options.commit_interval = absl::Milliseconds(200);
  // Static membership: the restarted consumer takes the killed one's place
  // (and partitions) at once instead of waiting for its session to time out,
  // as a service restarted in place by its supervisor does.
  options.consumer_properties["group.instance.id"] = "crash-consumer";
  options.session_timeout = absl::Seconds(10);
  auto transport = herald::kafka::KafkaTransport::Create(options);
  if (!transport.ok()) {
    std::cerr << "consumer_crash_child: " << transport.status() << "\n";
    return 1;
  }
  herald::Bus bus(*std::move(transport));
  herald::SubscribeOptions subscribe;
  subscribe.topics = {argv[2]};
  absl::Status s = bus.Subscribe<herald::crash::CrashEvent>(
      argv[3],
      [&](const herald::crash::CrashEvent& e, const herald::Message& m) -> absl::Status {
        std::string line = herald::StrCat(incarnation, " ", e.entity, " ", e.n, " ", m.envelope.id, "\n");
        if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
          return absl::UnavailableError("short write");  // retried
        }
        // A little work per event, so the stream lasts long enough to be
        // killed in the middle many times.
        absl::SleepFor(absl::Microseconds(200));
        return absl::OkStatus();
      },
      subscribe);
  if (s.ok()) s = bus.Start();
  if (!s.ok()) {
    std::cerr << "consumer_crash_child: " << s << "\n";
    return 1;
  }
  std::cerr << "consumer_crash_child " << incarnation << ": running" << std::endl;
  while (true) absl::SleepFor(absl::Seconds(1));  // until SIGKILL
}
