// Shared parts of the production-scale crash tests (issue "Tests at
// production scale"): child processes killed with SIGKILL, a reader that
// follows a whole Kafka topic from the beginning while the test runs, and the
// counting of what arrived (lost, per-key order of first deliveries,
// duplicates, gaps).
//
// Test-only; not part of herald's public API.
#ifndef HERALD_TESTS_CRASH_CRASH_HARNESS_H_
#define HERALD_TESTS_CRASH_CRASH_HARNESS_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "herald/core/mutex.h"

namespace herald::crash {

// The value of environment variable `name`, or "" when unset.
std::string Env(const char* name);

// The payload every crash test writes: {"k":"<key>","n":<n>}, n counting the
// key's events from 0 in commit order.
std::string Payload(const std::string& key, int64_t n);
// Parses Payload's text; false when `text` is not of that form.
bool ParsePayload(const std::string& text, std::string* key, int64_t* n);

// A child process (fork + exec), its stdout and stderr appended to `log`.
class Child {
 public:
  // kInternal when fork fails; a failed exec makes the child exit 127.
  static absl::StatusOr<Child> Spawn(const std::vector<std::string>& argv, const std::string& log);
  pid_t pid() const { return pid_; }
  // True once the child has ended (reaped, with its wait status in *status).
  bool Ended(int* status);
  // Sends `signal` and reaps the child; returns its wait status.
  int KillAndReap(int signal);
  // Waits up to `timeout` for the child to end; SIGKILLs it after that.
  // Returns the wait status.
  int WaitOrKill(absl::Duration timeout);
  // SIGTERM, then WaitOrKill(grace).
  int Terminate(absl::Duration grace);

 private:
  explicit Child(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
};

// The last `lines` lines of a file, for failure messages.
std::string Tail(const std::string& path, int lines);

// Creates `topic` with `partitions` partitions, replication factor 1
// (kAlreadyExists is fine), and waits until the broker leads every partition
// (a ListOffsets answer for each, 30 s at most). Right after CreateTopics a
// broker may refuse a partition's first produce request ("not leader")
// while it accepts the next one, and a producer then reports the first
// batch not confirmed (kafka_new_topic_kafkatest); the crash tests count
// what the program under test does, not that race.
absl::Status CreateTopic(const std::string& brokers, const std::string& topic, int partitions);

// One record read from the topic.
struct Delivery {
  int32_t partition = 0;
  int64_t offset = 0;
  std::string record_key;  // the Kafka record key
  std::string id;          // envelope id
  std::string type;
  std::string key;      // "k" of the payload
  int64_t n = -1;       // "n" of the payload
  absl::Time produced;  // record timestamp (CreateTime: when the producer produced it)
  absl::Time read;      // when the reader got it
  std::string error;    // non-empty when the record did not decode
};

// Reads every partition of a topic from the beginning, on its own thread,
// from Start until Stop, through a plain librdkafka consumer (no group, no
// commits: it cannot disturb what it measures). Reconnects by itself across
// broker restarts.
class TopicReader {
 public:
  TopicReader(std::string brokers, std::string topic, int partitions);
  ~TopicReader();
  absl::Status Start();
  void Stop();

  // Distinct envelope ids read so far.
  int64_t distinct() const;
  // Whether a record with envelope id `id` has been read.
  bool Seen(const std::string& id) const;
  // The latest record timestamp read so far (InfinitePast before the first).
  absl::Time latest_produced() const;
  // Waits until the reader has read up to the high watermark of every
  // partition (queried now), or `timeout`.
  absl::Status CatchUp(absl::Duration timeout);
  // Everything read, in the order read per partition (offset order).
  std::vector<Delivery> Deliveries() const;

 private:
  void Loop();

  const std::string brokers_, topic_;
  const int partitions_;
  struct Handle;
  std::unique_ptr<Handle> handle_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  mutable Mutex mu_;
  std::vector<Delivery> deliveries_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> seen_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> next_offset_ ABSL_GUARDED_BY(mu_);
  absl::Time latest_produced_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// What the relay crash tests committed: envelope id -> (key, n).
struct Committed {
  std::string key;
  int64_t n = 0;
};

// Time windows to leave out of the gap measurement (a broker down on purpose).
struct Window {
  absl::Time begin, end;
  std::string name;  // what was down
};

// The count of a relay crash run, from the topic.
struct RelayCount {
  int64_t records = 0;                  // records read
  int64_t distinct = 0;                 // distinct committed ids among them
  int64_t lost = 0;                     // committed, never read
  int64_t unexpected = 0;               // read, never committed (or undecodable)
  int64_t duplicates = 0;               // records - first deliveries
  int64_t order_violations = 0;         // first deliveries of a key that came after a later event of that key
  int64_t key_mismatches = 0;           // record key != the payload's key, or a key on two partitions
  absl::Duration longest_gap;           // between consecutive first deliveries, outside `excluded`
  absl::Duration longest_excluded_gap;  // the same, for gaps that overlap an excluded window
  // Per excluded window: from its end to the first record read after it
  // (how long the relay took to deliver again once the server was back).
  std::vector<absl::Duration> recovery;
  std::string first_problem;  // the first violation, for the failure message
};
RelayCount CountRelayRun(const std::vector<Delivery>& deliveries, const std::map<std::string, Committed>& committed,
                         const std::vector<Window>& excluded);

}  // namespace herald::crash

#endif  // HERALD_TESTS_CRASH_CRASH_HARNESS_H_
