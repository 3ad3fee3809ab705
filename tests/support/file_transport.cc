#include "file_transport.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/time/clock.h"
#include "herald/core/strings.h"
#include "herald/core/wire.h"

namespace herald::tests {

FileTransport::FileTransport(std::string path, absl::Duration delay)
    : path_(std::move(path)), fail_path_(path_ + ".fail"), delay_(delay) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

FileTransport::~FileTransport() {
  if (fd_ >= 0) ::close(fd_);
}

void FileTransport::PublishRecord(std::string topic, Record record, PublishCallback done) {
  absl::StatusOr<Envelope> envelope = DecodeRecord(topic, record.key, record.value, record.headers);
  if (!envelope.ok()) {
    if (done) done(envelope.status());
    return;
  }
  envelope->topic = std::move(topic);
  Publish(*std::move(envelope), std::move(done));
}

void FileTransport::Publish(Envelope envelope, PublishCallback done) {
  if (!done) done = [](absl::StatusOr<DeliveryReport>) {};
  if (fd_ < 0) {
    done(absl::UnavailableError(herald::StrCat("cannot open ", path_, ": ", std::strerror(errno))));
    return;
  }
  if (::access(fail_path_.c_str(), F_OK) == 0) {
    done(absl::UnavailableError("file bus is down (fail file present)"));
    return;
  }
  if (delay_ > absl::ZeroDuration()) absl::SleepFor(delay_);  // a slow broker: kills land mid-batch
  std::string line = herald::StrCat(envelope.id, "\t", envelope.key, "\t", envelope.payload, "\n");
  ssize_t n = ::write(fd_, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) {
    done(absl::UnavailableError(herald::StrCat("short write to ", path_)));
    return;
  }
  done(DeliveryReport{envelope.topic, 0, offset_++});
}

absl::Status FileTransport::Subscribe(TransportSubscription) {
  return absl::UnimplementedError("FileTransport only publishes");
}

std::vector<FileTransport::Line> FileTransport::Read(const std::string& path) {
  std::vector<Line> lines;
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t start = 0;
  while (true) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) break;  // a torn last line is not delivered
    std::string_view row(text.data() + start, end - start);
    size_t t1 = row.find('\t');
    size_t t2 = t1 == std::string_view::npos ? t1 : row.find('\t', t1 + 1);
    if (t2 != std::string_view::npos) {
      lines.push_back({std::string(row.substr(0, t1)), std::string(row.substr(t1 + 1, t2 - t1 - 1)),
                       std::string(row.substr(t2 + 1))});
    }
    start = end + 1;
  }
  return lines;
}

}  // namespace herald::tests
