// A Transport that "delivers" by appending one line per event to a file, for
// crash tests: a relay in a child process publishes through it, the parent
// reads the file after SIGKILLs and counts. One write(2) per event on an
// O_APPEND descriptor, so a delivered line survives the process being killed.
//
// Line format: <event id> \t <key> \t <payload> \n
//
// Failure injection: while the file `<path>.fail` exists, every publish fails
// with kUnavailable (the transport is "down").
//
// Test-only; not part of herald's public API.
#ifndef HERALD_TESTS_SUPPORT_FILE_TRANSPORT_H_
#define HERALD_TESTS_SUPPORT_FILE_TRANSPORT_H_

#include <string>
#include <vector>

#include "herald/core/transport.h"

namespace herald::tests {

class FileTransport final : public Transport {
 public:
  // Each publish first sleeps `delay` (a slow broker).
  explicit FileTransport(std::string path, absl::Duration delay = absl::ZeroDuration());
  ~FileTransport() override;

  void Publish(Envelope envelope, PublishCallback done) override;
  void PublishRecord(std::string topic, Record record, PublishCallback done) override;
  absl::Status Subscribe(TransportSubscription subscription) override;
  absl::Status Start() override { return absl::OkStatus(); }
  absl::Status Stop(absl::Duration) override { return absl::OkStatus(); }
  absl::Status Flush(absl::Duration) override { return absl::OkStatus(); }

  struct Line {
    std::string id;
    std::string key;
    std::string payload;
  };
  // Every complete line of the file at `path`.
  static std::vector<Line> Read(const std::string& path);

 private:
  std::string path_;
  std::string fail_path_;
  absl::Duration delay_;
  int fd_ = -1;
  int64_t offset_ = 0;
};

}  // namespace herald::tests

#endif  // HERALD_TESTS_SUPPORT_FILE_TRANSPORT_H_
