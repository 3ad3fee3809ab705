#include "crash_harness.h"

#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <set>

#include "absl/time/clock.h"
#include "herald/core/strings.h"
#include "herald/core/wire.h"

namespace herald::crash {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

std::string Payload(const std::string& key, int64_t n) { return StrCat("{\"k\":\"", key, "\",\"n\":", n, "}"); }

bool ParsePayload(const std::string& text, std::string* key, int64_t* n) {
  static constexpr std::string_view kKey = "{\"k\":\"";
  static constexpr std::string_view kN = "\",\"n\":";
  if (text.compare(0, kKey.size(), kKey) != 0 || text.empty() || text.back() != '}') return false;
  size_t end = text.find(kN, kKey.size());
  if (end == std::string::npos) return false;
  *key = text.substr(kKey.size(), end - kKey.size());
  std::string digits = text.substr(end + kN.size(), text.size() - 1 - end - kN.size());
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return false;
  *n = std::strtoll(digits.c_str(), nullptr, 10);
  return true;
}

// ---- Child ----

absl::StatusOr<Child> Child::Spawn(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execv(args[0], args.data());
    _exit(127);
  }
  return Child(pid);
}

bool Child::Ended(int* status) {
  if (pid_ <= 0) return true;
  pid_t r = waitpid(pid_, status, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    return true;
  }
  return false;
}

int Child::KillAndReap(int signal) {
  int status = 0;
  if (pid_ <= 0) return status;
  kill(pid_, signal);
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

int Child::WaitOrKill(absl::Duration timeout) {
  int status = 0;
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (Ended(&status)) return status;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return KillAndReap(SIGKILL);
}

int Child::Terminate(absl::Duration grace) {
  if (pid_ > 0) kill(pid_, SIGTERM);
  return WaitOrKill(grace);
}

std::string Tail(const std::string& path, int lines) {
  std::ifstream in(path);
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (static_cast<int>(last.size()) > lines) last.pop_front();
  }
  std::string out;
  for (const std::string& l : last) out += l + "\n";
  return out;
}

// ---- librdkafka handles ----

namespace {

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using KafkaHandle = std::unique_ptr<rd_kafka_t, KafkaDeleter>;

absl::StatusOr<KafkaHandle> NewClient(rd_kafka_type_t type, const std::map<std::string, std::string>& properties) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // The broker restarts on purpose: keep its connection errors out of the log.
  rd_kafka_conf_set_error_cb(conf, [](rd_kafka_t*, int, const char*, void*) {});
  char err[512];
  for (const auto& [name, value] : properties) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return absl::InvalidArgumentError(StrCat(name, ": ", err));
    }
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof(err));  // takes conf on success
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InternalError(StrCat("rd_kafka_new: ", err));
  }
  return KafkaHandle(rk);
}

}  // namespace

absl::Status CreateTopic(const std::string& brokers, const std::string& topic, int partitions) {
  absl::StatusOr<KafkaHandle> rk = NewClient(RD_KAFKA_PRODUCER, {{"bootstrap.servers", brokers}, {"log_level", "3"}});
  if (!rk.ok()) return rk.status();
  char err[512];
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, err, sizeof(err));
  if (nt == nullptr) return absl::InvalidArgumentError(err);
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk->get());
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk->get(), RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(options, 30000, err, sizeof(err));
  rd_kafka_CreateTopics(rk->get(), &nt, 1, options, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, 60000);
  absl::Status result = absl::OkStatus();
  if (event == nullptr) {
    result = absl::DeadlineExceededError("CreateTopics: no answer in 60 s");
  } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    result = absl::UnavailableError(StrCat("CreateTopics: ", rd_kafka_event_error_string(event)));
  } else {
    size_t n = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &n);
    for (size_t i = 0; i < n; ++i) {
      rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        result = absl::UnavailableError(StrCat("CreateTopics ", topic, ": ", rd_kafka_err2str(e)));
      }
    }
  }
  if (event != nullptr) rd_kafka_event_destroy(event);
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_queue_destroy(queue);
  if (!result.ok()) return result;
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  for (int p = 0; p < partitions; ++p) {
    while (true) {
      int64_t low = -1, high = -1;
      rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk->get(), topic.c_str(), p, &low, &high, 5000);
      if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (absl::Now() >= give_up) {
        return absl::DeadlineExceededError(
            StrCat("CreateTopics ", topic, ": partition ", p, " has no leader after 30 s: ", rd_kafka_err2str(e)));
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  return result;
}

// ---- TopicReader ----

struct TopicReader::Handle {
  KafkaHandle rk;
};

TopicReader::TopicReader(std::string brokers, std::string topic, int partitions)
    : brokers_(std::move(brokers)), topic_(std::move(topic)), partitions_(partitions) {
  MutexLock lock(mu_);
  next_offset_.assign(partitions_, 0);
}

TopicReader::~TopicReader() { Stop(); }

absl::Status TopicReader::Start() {
  absl::StatusOr<KafkaHandle> rk = NewClient(RD_KAFKA_CONSUMER, {{"bootstrap.servers", brokers_},
                                                                 {"group.id", StrCat("crash-reader-", getpid())},
                                                                 {"enable.auto.commit", "false"},
                                                                 {"enable.partition.eof", "false"},
                                                                 {"reconnect.backoff.max.ms", "500"},
                                                                 {"log_level", "0"}});
  if (!rk.ok()) return rk.status();
  rd_kafka_poll_set_consumer(rk->get());
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions_);
  for (int p = 0; p < partitions_; ++p) {
    rd_kafka_topic_partition_list_add(list, topic_.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_resp_err_t e = rd_kafka_assign(rk->get(), list);
  rd_kafka_topic_partition_list_destroy(list);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return absl::InternalError(StrCat("assign: ", rd_kafka_err2str(e)));
  handle_ = std::make_unique<Handle>(Handle{*std::move(rk)});
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void TopicReader::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (handle_ != nullptr) {
    rd_kafka_consumer_close(handle_->rk.get());
    handle_.reset();
  }
}

void TopicReader::Loop() {
  while (!stop_) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(handle_->rk.get(), 100);
    if (m == nullptr) continue;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_message_destroy(m);
      continue;
    }
    Delivery d;
    d.partition = m->partition;
    d.offset = m->offset;
    if (m->key != nullptr) d.record_key.assign(static_cast<const char*>(m->key), m->key_len);
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    d.produced = absl::FromUnixMillis(ts);
    d.read = absl::Now();
    Headers headers;
    rd_kafka_headers_t* hdrs = nullptr;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* name;
      const void* value;
      size_t size;
      for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
        headers.emplace_back(name,
                             value == nullptr ? std::string() : std::string(static_cast<const char*>(value), size));
      }
    }
    std::string_view value =
        m->payload == nullptr ? std::string_view() : std::string_view(static_cast<const char*>(m->payload), m->len);
    absl::StatusOr<Envelope> e = DecodeRecord(topic_, d.record_key, value, headers);
    if (!e.ok()) {
      d.error = std::string(e.status().message());
    } else {
      d.id = e->id;
      d.type = e->type;
      if (!ParsePayload(e->payload, &d.key, &d.n)) d.error = StrCat("payload not of the test's form: ", e->payload);
    }
    rd_kafka_message_destroy(m);
    MutexLock lock(mu_);
    if (d.partition >= 0 && d.partition < partitions_) next_offset_[d.partition] = d.offset + 1;
    if (!d.id.empty()) ++seen_[d.id];
    latest_produced_ = std::max(latest_produced_, d.produced);
    deliveries_.push_back(std::move(d));
  }
}

int64_t TopicReader::distinct() const {
  MutexLock lock(mu_);
  return static_cast<int64_t>(seen_.size());
}

bool TopicReader::Seen(const std::string& id) const {
  MutexLock lock(mu_);
  return seen_.count(id) != 0;
}

absl::Time TopicReader::latest_produced() const {
  MutexLock lock(mu_);
  return latest_produced_;
}

absl::Status TopicReader::CatchUp(absl::Duration timeout) {
  absl::StatusOr<KafkaHandle> rk = NewClient(RD_KAFKA_PRODUCER, {{"bootstrap.servers", brokers_}, {"log_level", "3"}});
  if (!rk.ok()) return rk.status();
  std::vector<int64_t> high(partitions_, 0);
  for (int p = 0; p < partitions_; ++p) {
    int64_t low = 0;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk->get(), topic_.c_str(), p, &low, &high[p], 30000);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return absl::UnavailableError(StrCat("watermarks: ", rd_kafka_err2str(e)));
  }
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    {
      MutexLock lock(mu_);
      bool done = true;
      for (int p = 0; p < partitions_; ++p) done = done && next_offset_[p] >= high[p];
      if (done) return absl::OkStatus();
    }
    if (absl::Now() > deadline) return absl::DeadlineExceededError("reader did not reach the high watermarks");
    absl::SleepFor(absl::Milliseconds(50));
  }
}

std::vector<Delivery> TopicReader::Deliveries() const {
  MutexLock lock(mu_);
  return deliveries_;
}

// ---- Counting ----

RelayCount CountRelayRun(const std::vector<Delivery>& deliveries, const std::map<std::string, Committed>& committed,
                         const std::vector<Window>& excluded) {
  RelayCount c;
  c.records = static_cast<int64_t>(deliveries.size());
  auto problem = [&c](std::string text) {
    if (c.first_problem.empty()) c.first_problem = std::move(text);
  };
  // Per partition in offset order (the reader keeps each partition's order).
  std::set<std::string> seen;
  std::map<std::string, int64_t> highest;       // key -> highest n first-delivered so far
  std::map<std::string, int32_t> partition_of;  // key -> partition
  std::vector<absl::Time> first_times;
  for (const Delivery& d : deliveries) {
    if (!d.error.empty()) {
      ++c.unexpected;
      problem(StrCat("undecodable record at partition ", d.partition, " offset ", d.offset, ": ", d.error));
      continue;
    }
    auto it = committed.find(d.id);
    if (it == committed.end()) {
      ++c.unexpected;
      problem(StrCat("record ", d.id, " was never committed"));
      continue;
    }
    if (d.record_key != it->second.key || d.key != it->second.key || d.n != it->second.n) {
      ++c.key_mismatches;
      problem(StrCat("record ", d.id, ": record key '", d.record_key, "', payload ", d.key, "/", d.n, ", committed as ",
                     it->second.key, "/", it->second.n));
    }
    auto [p, inserted] = partition_of.emplace(d.record_key, d.partition);
    if (!inserted && p->second != d.partition) {
      ++c.key_mismatches;
      problem(StrCat("key ", d.record_key, " on partitions ", p->second, " and ", d.partition));
    }
    if (!seen.insert(d.id).second) continue;  // a duplicate
    first_times.push_back(d.produced);
    auto [h, first_of_key] = highest.emplace(it->second.key, it->second.n);
    if (!first_of_key) {
      if (it->second.n < h->second) {
        ++c.order_violations;
        problem(StrCat("key ", it->second.key, ": event ", it->second.n, " first delivered after event ", h->second,
                       " (partition ", d.partition, " offset ", d.offset, ")"));
      } else {
        h->second = it->second.n;
      }
    }
  }
  c.distinct = static_cast<int64_t>(seen.size());
  c.duplicates = c.records - c.unexpected - c.distinct;
  for (const auto& [id, what] : committed) {
    if (seen.count(id) == 0) {
      ++c.lost;
      problem(StrCat("lost: ", id, " (key ", what.key, ", event ", what.n, ")"));
    }
  }
  for (const Window& w : excluded) {
    absl::Time first_after = absl::InfiniteFuture();
    for (const Delivery& d : deliveries) {
      if (d.read > w.end) first_after = std::min(first_after, d.read);
    }
    c.recovery.push_back(first_after - w.end);
  }
  std::sort(first_times.begin(), first_times.end());
  for (size_t i = 1; i < first_times.size(); ++i) {
    absl::Duration gap = first_times[i] - first_times[i - 1];
    bool overlaps = false;
    for (const Window& w : excluded) overlaps = overlaps || (first_times[i - 1] < w.end && first_times[i] > w.begin);
    absl::Duration& longest = overlaps ? c.longest_excluded_gap : c.longest_gap;
    longest = std::max(longest, gap);
  }
  return c;
}

}  // namespace herald::crash
