// A Bus that "delivers" by appending one line per event to a file, for
// crash tests: a relay in a child process publishes through it, the parent
// reads the file after SIGKILLs and counts. One write(2) per event on an
// O_APPEND descriptor, so a delivered line survives the process being killed.
//
// Line format: <event id> \t <key> \t <payload> \n
//
// Failure injection: while the file `<path>.fail` exists, every publish fails
// with kUnavailable (the bus is "down").
//
// Test-only; not part of herald's public API.
#ifndef HERALD_TESTS_SUPPORT_FILE_BUS_H_
#define HERALD_TESTS_SUPPORT_FILE_BUS_H_

#include <string>
#include <vector>

#include "herald/core/bus.h"

namespace herald::tests {

class FileBus final : public Bus {
 public:
  // Each publish first sleeps `delay` (a slow broker).
  explicit FileBus(std::string path, absl::Duration delay = absl::ZeroDuration());
  ~FileBus() override;

  void PublishAsync(Envelope envelope, PublishCallback done) override;
  absl::Status AddSubscription(Subscription subscription) override;
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

#endif  // HERALD_TESTS_SUPPORT_FILE_BUS_H_
