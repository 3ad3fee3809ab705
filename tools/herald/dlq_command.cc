#include "dlq_command.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "flags.h"
#include "herald/core/config.h"
#include "herald/core/dispatcher.h"
#include "herald/core/json.h"
#include "herald/core/mutex.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/core/transport.h"
#include "json_line.h"
#include "rapidjson/prettywriter.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#ifdef HERALD_CLI_WITH_KAFKA
#include <librdkafka/rdkafka.h>

#include "error_log.h"  // herald::kafka private: the clients' last error
#include "herald/kafka/kafka_transport.h"
#include "kafka_config.h"  // herald::kafka private: one config builder, secrets redacted
#include "kafka_status.h"  // herald::kafka private: one librdkafka error mapping
#include "rdkafka_handles.h"
#endif

namespace herald::tools {

// ---------------------------------------------------------------------------
// Pure parts.

namespace {

bool ParseWhole(std::string_view text, int64_t& out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return !text.empty() && ec == std::errc() && ptr == end;
}

// Text safe to print on one line, or inside a JSON string: as it is when it
// is printable UTF-8, else C-escaped.
std::string Printable(std::string_view text) {
  bool plain = IsUtf8(text);
  for (char c : text) plain = plain && static_cast<unsigned char>(c) >= 0x20 && c != 0x7F;
  return plain ? std::string(text) : absl::CHexEscape(ToAbsl(text));
}

std::string OrDash(std::string text) { return text.empty() ? "-" : text; }

std::string Cut(std::string text, size_t width) {
  if (text.size() <= width) return text;
  size_t cut = width;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  text.resize(cut);
  return text + "...";
}

std::string Age(absl::Duration d) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  return absl::FormatDuration(absl::Trunc(d, d < absl::Minutes(1) ? absl::Milliseconds(1) : absl::Seconds(1)));
}

std::string TimeText(absl::Time t) { return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone()); }

}  // namespace

absl::StatusOr<RecordPosition> ParseRecordPosition(std::string_view text) {
  const size_t colon = text.find(':');
  int64_t partition = -1, offset = -1;
  if (colon == std::string_view::npos || !ParseWhole(text.substr(0, colon), partition) ||
      !ParseWhole(text.substr(colon + 1), offset) || partition < 0 || offset < 0 || partition > INT32_MAX) {
    return absl::InvalidArgumentError(
        StrCat("\"", text, "\" is not a record position: write PARTITION:OFFSET, two whole numbers, e.g. 0:17"));
  }
  return RecordPosition{static_cast<int32_t>(partition), offset};
}

absl::StatusOr<absl::Time> ParseTimeBound(std::string_view text, absl::Time now) {
  const std::string trimmed(absl::StripAsciiWhitespace(ToAbsl(text)));
  absl::Time t;
  std::string error;
  if (!trimmed.empty() && absl::ParseTime(absl::RFC3339_full, trimmed, &t, &error)) return t;
  if (absl::StatusOr<absl::Duration> ago = ParseDurationFlag(trimmed, DurationFloor::kZero); ago.ok()) {
    return now - *ago;
  }
  return absl::InvalidArgumentError(StrCat("\"", text,
                                           "\" is not a time: write a duration back from now (1h, 30m, 2h30m) or "
                                           "an RFC 3339 time (2026-12-01T10:00:00Z)"));
}

absl::StatusOr<double> ParseRate(std::string_view text) {
  std::string_view number = text;
  if (absl::EndsWith(ToAbsl(number), "/s")) number.remove_suffix(2);
  double rate = 0;
  if (!absl::SimpleAtod(ToAbsl(number), &rate) || !(rate > 0) || rate > 1e9) {
    return absl::InvalidArgumentError(
        StrCat("\"", text, "\" is not a rate: write records per second, e.g. 50/s or 0.5/s (more than 0)"));
  }
  return rate;
}

DeadLetterEntry MakeDeadLetterEntry(std::string_view topic, int32_t partition, int64_t offset, absl::Time written,
                                    Record record) {
  ReceivedRecord received;
  received.topic = topic;
  received.partition = partition;
  received.offset = offset;
  received.key = record.key;
  received.value = record.value;
  received.headers = &record.headers;
  DeadLetterEntry entry;
  entry.letter = ReadDeadLetter(received);
  entry.written = written;
  absl::StatusOr<Envelope> original = entry.letter.Decode();
  if (original.ok()) {
    entry.event_id = original->id;
    entry.event_type = original->type;
  } else {
    entry.decode_error = std::string(original.status().message());
  }
  return entry;
}

bool DeadLetterFilter::Matches(const DeadLetterEntry& entry) const {
  if (!type.empty() && entry.event_type != type) return false;
  if (!id.empty() && entry.event_id != id) return false;
  if (!reason_contains.empty() &&
      !absl::StrContains(absl::AsciiStrToLower(entry.letter.reason), absl::AsciiStrToLower(reason_contains)))
    return false;
  if (since.has_value() && entry.written < *since) return false;
  if (until.has_value() && entry.written >= *until) return false;
  return true;
}

std::string ReplayMarker(std::string_view topic, int32_t partition, int64_t offset) {
  return StrCat(topic, "/", partition, "/", offset);
}

std::string ReplayedKey(int32_t partition, int64_t offset) { return StrCat(partition, "/", offset); }

absl::StatusOr<Record> ReplayRecord(const DeadLetter& letter) {
  if (letter.value_dropped) {
    return absl::FailedPreconditionError(StrCat("written without its value (", letter.value_size,
                                                " bytes, too large for the dead-letter topic): the original is at ",
                                                letter.original_topic, "/", letter.original_partition, "@",
                                                letter.original_offset));
  }
  Record out;
  out.key = letter.record.key;
  out.value = letter.record.value;
  out.headers = letter.OriginalHeaders();
  // A record replayed before and dead-lettered again names only its latest
  // dead letter.
  SetHeader(out.headers, kReplayedFromHeader, ReplayMarker(letter.topic, letter.partition, letter.offset));
  return out;
}

absl::StatusOr<std::string> ReplayDestination(const DeadLetter& letter, std::string_view to) {
  if (!to.empty()) return std::string(to);
  if (letter.original_topic.empty()) {
    return absl::InvalidArgumentError(
        StrCat("it has no herald-dlq-topic header (not written by herald): name the destination with --to"));
  }
  return letter.original_topic;
}

std::string ListLine(const DeadLetterEntry& entry, absl::Time now, size_t reason_width) {
  const DeadLetter& d = entry.letter;
  std::string original = d.is_herald_dead_letter()
                             ? StrCat(d.original_topic, "/", d.original_partition, "@", d.original_offset)
                             : std::string("-");
  std::string reason = d.reason.empty() ? entry.decode_error : d.reason;
  return StrCat(d.topic, "/", d.partition, "@", d.offset, " ", original, " id=", OrDash(Printable(entry.event_id)),
                " type=", OrDash(Printable(entry.event_type)), " key=", Printable(d.record.key),
                " attempts=", d.attempts, " age=", Age(now - entry.written), d.value_dropped ? " value=dropped" : "",
                " reason=", Cut(Printable(reason), reason_width));
}

std::string ListJson(const DeadLetterEntry& entry, absl::Time now) {
  const DeadLetter& d = entry.letter;
  JsonLine w;
  w.String("topic", d.topic).Int("partition", d.partition).Int("offset", d.offset);
  w.String("written", TimeText(entry.written));
  w.Double("age_seconds", std::max(0.0, absl::ToDoubleSeconds(now - entry.written)));
  w.String("original_topic", d.original_topic)
      .Int("original_partition", d.original_partition)
      .Int("original_offset", d.original_offset)
      .String("original_group", d.original_group);
  w.String("id", entry.event_id).String("type", entry.event_type).String("key", d.record.key);
  w.Int("attempts", d.attempts);
  w.String("code", d.is_herald_dead_letter() ? absl::StatusCodeToString(d.code) : "");
  w.String("reason", d.reason);
  if (!entry.decode_error.empty()) w.String("decode_error", entry.decode_error);
  w.Bool("value_dropped", d.value_dropped);
  return w.Finish();
}

std::string DescribeValue(std::string_view value, size_t limit) {
  if (value.empty()) return "(empty)";
  rapidjson::Document document;
  if (json::Parse(value, document).ok()) {
    rapidjson::StringBuffer buffer;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
    w.SetIndent(' ', 2);
    document.Accept(w);
    std::string text(buffer.GetString(), buffer.GetSize());
    return text.size() > limit ? StrCat(Cut(text, limit), "\n(cut: ", text.size(), " bytes in all)") : text;
  }
  const std::string_view shown = value.substr(0, limit);
  const std::string more = value.size() > limit ? StrCat("\n(cut: ", value.size(), " bytes in all)") : "";
  size_t printable = 0;
  for (char c : shown) printable += (c >= 0x20 && c < 0x7F) || c == '\n' || c == '\t' ? 1 : 0;
  if (printable * 10 >= shown.size() * 9 || IsUtf8(shown)) return absl::CHexEscape(ToAbsl(shown)) + more;
  // Mostly binary: a hex dump, 16 bytes a line.
  std::string out;
  for (size_t i = 0; i < shown.size(); i += 16) {
    char offset[24];
    std::snprintf(offset, sizeof(offset), "%08zx ", i);
    out += offset;
    for (size_t k = i; k < std::min(i + 16, shown.size()); ++k) {
      char byte[4];
      std::snprintf(byte, sizeof(byte), " %02x", static_cast<unsigned char>(shown[k]));
      out += byte;
    }
    out += "\n";
  }
  out.pop_back();
  return out + more;
}

absl::StatusOr<DeadLetterFilter> DlqCommand::FilterFlags::Parse(absl::Time now) const {
  DeadLetterFilter filter;
  filter.type = type;
  filter.reason_contains = reason_contains;
  filter.id = id;
  if (!since.empty()) {
    absl::StatusOr<absl::Time> t = ParseTimeBound(since, now);
    if (!t.ok()) return absl::InvalidArgumentError(StrCat("--since: ", t.status().message()));
    filter.since = *t;
  }
  if (!until.empty()) {
    absl::StatusOr<absl::Time> t = ParseTimeBound(until, now);
    if (!t.ok()) return absl::InvalidArgumentError(StrCat("--until: ", t.status().message()));
    filter.until = *t;
  }
  if (filter.since && filter.until && *filter.since >= *filter.until) {
    return absl::InvalidArgumentError(StrCat("--since ", since, " is not before --until ", until));
  }
  return filter;
}

// ---------------------------------------------------------------------------
// The command line.

namespace {

CLI::Validator PositionValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        absl::StatusOr<RecordPosition> p = ParseRecordPosition(text);
        return p.ok() ? std::string() : std::string(p.status().message());
      },
      "PARTITION:OFFSET");
}

CLI::Validator TimeBoundValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        absl::StatusOr<absl::Time> t = ParseTimeBound(text, absl::Now());
        return t.ok() ? std::string() : std::string(t.status().message());
      },
      "DURATION|RFC3339");
}

CLI::Validator RateValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        absl::StatusOr<double> r = ParseRate(text);
        return r.ok() ? std::string() : std::string(r.status().message());
      },
      "N/s");
}

void AddKafkaFlags(CLI::App* app, DlqCommand::KafkaFlags& flags, std::string& topic) {
  app->add_option("--kafka", flags.brokers, "Kafka bootstrap servers (host:port,...)")->required();
  flags.config.Add(app);
  app->add_option("--topic", topic, "the dead-letter topic, e.g. orders.dlq")->required();
  AddDurationOption(app, "--timeout", flags.timeout,
                    "how long to wait for the brokers to answer each request (connecting, end offsets, deleting)",
                    DurationFloor::kPositive);
}

void AddFilterFlags(CLI::App* app, DlqCommand::FilterFlags& filter, int64_t& limit, const std::string& limit_help) {
  app->add_option("--type", filter.type, "only dead letters of this event type");
  app->add_option("--reason-contains", filter.reason_contains, "only those whose reason contains this (any case)");
  app->add_option("--id", filter.id, "only the dead letter of this event id");
  app->add_option("--since", filter.since,
                  "only those written at or after this: a duration back from now (1h) or an RFC 3339 time")
      ->check(TimeBoundValidator());
  app->add_option("--until", filter.until, "only those written before this (same forms as --since)")
      ->check(TimeBoundValidator());
  app->add_option("--limit", limit, limit_help)->check(AtLeast(1));
}

}  // namespace

DlqCommand::DlqCommand(CLI::App& app) {
  command_ = app.add_subcommand(
      "dlq",
      "inspect, replay and purge the dead letters of a Kafka dead-letter topic. Reads join no consumer group; list "
      "and replay read up to the end each partition had at start, then stop.");
  command_->require_subcommand(1);

  list_ = command_->add_subcommand(
      "list", "one line per dead letter: where it is, where it came from, id, type, key, attempts, age, reason");
  AddKafkaFlags(list_, kafka_, topic_);
  AddFilterFlags(list_, filter_, limit_, "list at most this many (default: all)");
  list_->add_flag("--json", json_, "one JSON object per line instead");

  show_ = command_->add_subcommand("show", "everything about one dead letter: every header and the value");
  AddKafkaFlags(show_, kafka_, topic_);
  show_->add_option("position", position_, "the dead letter's PARTITION:OFFSET in the dead-letter topic")
      ->required()
      ->check(PositionValidator());

  replay_ = command_->add_subcommand(
      "replay",
      "publish the original records of the selected dead letters again (key, value and headers kept, "
      "herald-dlq-* removed, herald-replayed-from added), to their original topic or --to. A dead letter "
      "replayed before (recorded in <topic>.replayed) is not replayed again.");
  AddKafkaFlags(replay_, kafka_, topic_);
  AddFilterFlags(replay_, filter_, limit_,
                 "replay at most this many; those replayed before do not count, so repeated runs go on where the "
                 "last stopped (default: all)");
  replay_->add_option("--to", to_, "publish to this topic instead of each one's original topic");
  replay_->add_flag("--dry-run", dry_run_, "print what would be replayed; write nothing");
  replay_->add_option("--rate", rate_, "at most this many records per second, e.g. 50/s (default: no limit)")
      ->check(RateValidator());

  purge_ = command_->add_subcommand(
      "purge",
      "delete dead letters for good (Kafka's DeleteRecords: only a prefix of each partition can be deleted). "
      "Prints what it deletes first; asks on a terminal, else needs --yes.");
  AddKafkaFlags(purge_, kafka_, topic_);
  purge_
      ->add_option("--before", before_,
                   "PARTITION:OFFSET: delete the records of that partition below that offset (repeatable)")
      ->check(PositionValidator());
  purge_->add_option_function<std::string>(
      "--older-than", [this](const std::string& text) { older_than_ = *ParseDurationFlag(text, DurationFloor::kZero); },
      "delete, in every partition, the records before the first one written less than this long ago");
  purge_->get_option("--older-than")->check(DurationValidator(DurationFloor::kZero))->type_name("DURATION");
  purge_->add_flag("--dry-run", dry_run_, "print what would be deleted; delete nothing");
  purge_->add_flag("--yes", yes_, "delete without asking");
}

absl::Status DlqCommand::Run() const {
  if (list_->parsed()) return List();
  if (show_->parsed()) return Show();
  if (replay_->parsed()) return Replay();
  if (purge_->parsed()) return Purge();
  return absl::InvalidArgumentError("name a dlq command: list, show, replay or purge");
}

#ifdef HERALD_CLI_WITH_KAFKA

// ---------------------------------------------------------------------------
// Kafka.

namespace {

namespace kafka = herald::kafka;

// The options of every Kafka client `herald dlq` makes (reader, producer,
// admin requests): the one place they are filled in.
absl::StatusOr<kafka::KafkaTransportOptions> KafkaClientOptions(const DlqCommand::KafkaFlags& flags) {
  kafka::KafkaTransportOptions options;
  HERALD_ASSIGN_OR_RETURN(options.properties, flags.config.Properties());
  options.brokers = flags.brokers;
  options.client_id = "herald-dlq";
  // A replayed record that cannot be delivered fails within this (the
  // producer retries until then), so a broker that goes away mid-run ends
  // the run instead of hanging it.
  options.delivery_timeout = std::max(absl::Seconds(30), flags.timeout);
  return options;
}

int Millis(absl::Duration d) {
  return static_cast<int>(std::clamp<int64_t>(absl::ToInt64Milliseconds(d), 1, 24 * 3600 * 1000));
}

void OnError(rd_kafka_t*, int err, const char* reason, void* opaque) {
  static_cast<kafka::ErrorLog*>(opaque)->Record(
      StrCat(rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)), ": ", reason != nullptr ? reason : ""),
      LogLevel::kInfo);  // kept for the error the command returns; not a warning line of its own
}

struct PartitionRange {
  int32_t partition = 0;
  int64_t low = 0;   // first offset still in the partition
  int64_t high = 0;  // end offset when the command started
};

// One record read back, with its timestamp.
struct ReadRecord {
  int32_t partition = 0;
  int64_t offset = 0;
  absl::Time written = absl::InfinitePast();
  Record record;
};

// A read-only client of one topic (a consumer that only assigns, never
// joins a group or commits), which also sends the admin requests.
class TopicClient {
 public:
  // Connects, checks that `topic` exists and looks up the offsets of each
  // partition. kUnavailable when no broker answers within `timeout`;
  // kNotFound for a missing topic unless `missing_ok` (then exists() is
  // false).
  static absl::StatusOr<std::unique_ptr<TopicClient>> Open(const kafka::KafkaTransportOptions& options,
                                                           std::string topic, absl::Duration timeout,
                                                           bool missing_ok = false) {
    HERALD_RETURN_IF_ERROR(ValidateTopicName(topic));
    auto client = std::unique_ptr<TopicClient>(new TopicClient(options, std::move(topic), timeout));
    HERALD_RETURN_IF_ERROR(client->Connect(missing_ok));
    return client;
  }
  ~TopicClient() {
    if (rk_ != nullptr) rd_kafka_consumer_close(rk_.get());
  }

  const std::string& topic() const { return topic_; }
  bool exists() const { return exists_; }
  const std::vector<PartitionRange>& partitions() const { return partitions_; }
  int64_t records() const {
    int64_t n = 0;
    for (const PartitionRange& p : partitions_) n += p.high - p.low;
    return n;
  }
  const PartitionRange* partition(int32_t id) const {
    for (const PartitionRange& p : partitions_) {
      if (p.partition == id) return &p;
    }
    return nullptr;
  }

  // Reads every record from the start of each partition to the end it had
  // at Open, in offset order per partition, and hands it to `fn`, which
  // returns false to stop. Progress on stderr every few seconds, prefixed
  // with `label`. kUnavailable when nothing arrives for the timeout.
  absl::Status Scan(const std::function<bool(ReadRecord)>& fn, std::string_view label) {
    std::map<int32_t, int64_t> pending;  // partition -> end at Open
    PartitionListPtr assignment(rd_kafka_topic_partition_list_new(static_cast<int>(partitions_.size())));
    for (const PartitionRange& p : partitions_) {
      if (p.high <= p.low) continue;
      pending[p.partition] = p.high;
      rd_kafka_topic_partition_list_add(assignment.get(), topic_.c_str(), p.partition)->offset = p.low;
    }
    if (pending.empty()) return absl::OkStatus();
    if (rd_kafka_resp_err_t err = rd_kafka_assign(rk_.get(), assignment.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka::KafkaErrorToStatus(err, StrCat("read ", topic_));
    }
    const absl::Time start = absl::Now();
    absl::Time last_record = start, next_progress = start + absl::Seconds(3);
    int64_t scanned = 0;
    const int64_t total = records();
    std::string last_error;
    absl::Status status;
    while (!pending.empty()) {
      MessagePtr m(rd_kafka_consumer_poll(rk_.get(), 200));
      const absl::Time now = absl::Now();
      if (now >= next_progress) {
        std::cerr << label << ": scanned " << scanned << " of " << total << " records of " << topic_ << std::endl;
        next_progress = now + absl::Seconds(3);
      }
      if (m == nullptr || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ||
          (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)) {
        if (m != nullptr && m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
          pending.erase(m->partition);
          last_record = now;
        } else if (m != nullptr) {
          last_error = StrCat(rd_kafka_err2name(m->err), ": ", rd_kafka_message_errstr(m.get()));
        }
        if (now - last_record > timeout_) {
          std::string errors = last_error.empty() ? errors_.last() : last_error;
          status = absl::UnavailableError(StrCat(
              "reading ", topic_, " stalled: nothing arrived for ", absl::FormatDuration(timeout_), " with ",
              pending.size(), " partition(s) unfinished", errors.empty() ? "" : StrCat(" (last error: ", errors, ")")));
          break;
        }
        continue;
      }
      last_record = now;
      auto it = pending.find(m->partition);
      if (it == pending.end()) continue;
      if (m->offset >= it->second) {
        pending.erase(it);
        continue;
      }
      if (m->offset >= it->second - 1) pending.erase(it);
      ++scanned;
      if (!fn(ToRecord(*m))) break;
      last_record = absl::Now();  // the callback may take long (replay waits for its batch)
    }
    if (absl::Status unassigned = Unassign(); status.ok()) status = unassigned;
    return status;
  }

  // The record at `position`. kNotFound when the partition or the record
  // is not there (deleted, compacted away, not written yet).
  absl::StatusOr<ReadRecord> ReadAt(RecordPosition position) {
    const PartitionRange* p = partition(position.partition);
    if (p == nullptr) {
      return absl::NotFoundError(
          StrCat(topic_, " has no partition ", position.partition, " (it has ", partitions_.size(), ")"));
    }
    if (position.offset < p->low || position.offset >= p->high) {
      return absl::NotFoundError(StrCat("no record at ", topic_, " ", position.partition, ":", position.offset,
                                        p->low < p->high
                                            ? StrCat(" (the partition holds offsets ", p->low, " to ", p->high - 1, ")")
                                            : std::string(" (the partition is empty)")));
    }
    PartitionListPtr assignment(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(assignment.get(), topic_.c_str(), position.partition)->offset = position.offset;
    if (rd_kafka_resp_err_t err = rd_kafka_assign(rk_.get(), assignment.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka::KafkaErrorToStatus(err, StrCat("read ", topic_));
    }
    const absl::Time deadline = absl::Now() + timeout_;
    absl::StatusOr<ReadRecord> out =
        absl::DeadlineExceededError(StrCat("no answer from the brokers within ", absl::FormatDuration(timeout_)));
    while (absl::Now() < deadline) {
      MessagePtr m(rd_kafka_consumer_poll(rk_.get(), 200));
      if (m == nullptr || m->partition != position.partition) continue;
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        out = absl::NotFoundError(StrCat("no record at ", topic_, " ", position.partition, ":", position.offset));
        break;
      }
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
      if (m->offset != position.offset) {
        out = absl::NotFoundError(StrCat("no record at ", topic_, " ", position.partition, ":", position.offset,
                                         " (compacted away or a transaction marker; the next is at ", m->offset, ")"));
      } else {
        out = ToRecord(*m);
      }
      break;
    }
    if (absl::Status unassigned = Unassign(); out.ok() && !unassigned.ok()) out = unassigned;
    // kDeadlineExceeded is exit code 3 ("work unconfirmed"): a read that
    // got no answer is a broker failure.
    if (absl::IsDeadlineExceeded(out.status())) return absl::UnavailableError(out.status().message());
    return out;
  }

  // The offset of the first record written at or after `t` in `partition`,
  // or the partition's end when there is none.
  absl::StatusOr<int64_t> OffsetForTime(const PartitionRange& p, absl::Time t) {
    PartitionListPtr list(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(list.get(), topic_.c_str(), p.partition)->offset = absl::ToUnixMillis(t);
    if (rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk_.get(), list.get(), Millis(timeout_));
        err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka::KafkaErrorToStatus(err, StrCat("look up offsets by time in ", topic_));
    }
    const rd_kafka_topic_partition_t& found = list->elems[0];
    if (found.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka::KafkaErrorToStatus(found.err, StrCat("look up offsets by time in ", topic_, "/", p.partition));
    }
    return found.offset < 0 ? p.high : std::clamp(found.offset, p.low, p.high);
  }

  // DeleteRecords: every record of each partition below its offset.
  // Returns the new start of each partition.
  absl::StatusOr<std::map<int32_t, int64_t>> DeleteBefore(const std::map<int32_t, int64_t>& before) {
    PartitionListPtr offsets(rd_kafka_topic_partition_list_new(static_cast<int>(before.size())));
    for (const auto& [partition, offset] : before) {
      rd_kafka_topic_partition_list_add(offsets.get(), topic_.c_str(), partition)->offset = offset;
    }
    rd_kafka_DeleteRecords_t* request = rd_kafka_DeleteRecords_new(offsets.get());
    absl::StatusOr<AdminEvent> result = Admin(RD_KAFKA_ADMIN_OP_DELETERECORDS, [&](auto* o, auto* q) {
      rd_kafka_DeleteRecords(rk_.get(), &request, 1, o, q);
    });
    rd_kafka_DeleteRecords_destroy(request);
    HERALD_RETURN_IF_ERROR(result.status());
    const rd_kafka_topic_partition_list_t* done =
        rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(result->get()));
    std::map<int32_t, int64_t> out;
    for (int i = 0; done != nullptr && i < done->cnt; ++i) {
      const rd_kafka_topic_partition_t& p = done->elems[i];
      if (p.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return kafka::KafkaErrorToStatus(
            p.err,
            StrCat("delete the records of ", topic_, "/", p.partition,
                   p.err == RD_KAFKA_RESP_ERR_POLICY_VIOLATION ? " (a compacted topic cannot delete records)" : ""));
      }
      out[p.partition] = p.offset;
    }
    return out;
  }

  // Creates `name` as a compacted topic of one partition (the broker's
  // replication factor); OK when it exists already.
  absl::Status CreateCompactedTopic(const std::string& name) {
    char errstr[512] = {0};
    rd_kafka_NewTopic_t* topic = rd_kafka_NewTopic_new(name.c_str(), 1, -1, errstr, sizeof(errstr));
    if (topic == nullptr) return absl::InvalidArgumentError(StrCat("create topic ", name, ": ", errstr));
    rd_kafka_NewTopic_set_config(topic, "cleanup.policy", "compact");
    absl::StatusOr<AdminEvent> result = Admin(
        RD_KAFKA_ADMIN_OP_CREATETOPICS, [&](auto* o, auto* q) { rd_kafka_CreateTopics(rk_.get(), &topic, 1, o, q); });
    rd_kafka_NewTopic_destroy(topic);
    HERALD_RETURN_IF_ERROR(result.status());
    size_t count = 0;
    const rd_kafka_topic_result_t** topics =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(result->get()), &count);
    for (size_t i = 0; i < count; ++i) {
      rd_kafka_resp_err_t err = rd_kafka_topic_result_error(topics[i]);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        return kafka::KafkaErrorToStatus(err, StrCat("create topic ", name));
      }
    }
    return absl::OkStatus();
  }

 private:
  struct EventDeleter {
    void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
  };
  using AdminEvent = std::unique_ptr<rd_kafka_event_t, EventDeleter>;

  // Drops the partitions a read assigned, so the next read starts clean.
  absl::Status Unassign() {
    if (rd_kafka_resp_err_t err = rd_kafka_assign(rk_.get(), nullptr); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka::KafkaErrorToStatus(err, StrCat("stop reading ", topic_));
    }
    return absl::OkStatus();
  }

  TopicClient(const kafka::KafkaTransportOptions& options, std::string topic, absl::Duration timeout)
      : options_(options), topic_(std::move(topic)), timeout_(timeout), errors_(options) {}

  // Sends one admin request (`send(options, queue)`) and waits for its
  // result event up to the timeout.
  template <typename Send>
  absl::StatusOr<AdminEvent> Admin(rd_kafka_admin_op_t op, Send send) {
    QueuePtr queue(rd_kafka_queue_new(rk_.get()));
    rd_kafka_AdminOptions_t* admin = rd_kafka_AdminOptions_new(rk_.get(), op);
    char errstr[512] = {0};
    rd_kafka_AdminOptions_set_request_timeout(admin, Millis(timeout_), errstr, sizeof(errstr));
    rd_kafka_AdminOptions_set_operation_timeout(admin, Millis(timeout_), errstr, sizeof(errstr));
    send(admin, queue.get());
    rd_kafka_AdminOptions_destroy(admin);
    AdminEvent event(rd_kafka_queue_poll(queue.get(), Millis(timeout_ + absl::Seconds(2))));
    if (event == nullptr) {
      return absl::UnavailableError(
          StrCat("the brokers did not answer within ", absl::FormatDuration(timeout_), " (", errors_.last(), ")"));
    }
    if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka::KafkaErrorToStatus(
          rd_kafka_event_error(event.get()),
          StrCat(rd_kafka_event_name(event.get()), " on ", topic_, ": ", rd_kafka_event_error_string(event.get())));
    }
    return event;
  }

  absl::Status Connect(bool missing_ok) {
    const absl::Time deadline = absl::Now() + timeout_;
    // Never joined: a name for librdkafka's assign() only (BuildReaderConf).
    const std::string group = StrCat("herald-dlq-", getpid(), "-", absl::ToUnixNanos(absl::Now()));
    HERALD_ASSIGN_OR_RETURN(ConfPtr conf, kafka::BuildReaderConf(options_, group));
    char errstr[512] = {0};
    // A scan stops at the end of each partition.
    rd_kafka_conf_set(conf.get(), "enable.partition.eof", "true", errstr, sizeof(errstr));
    rd_kafka_conf_set_opaque(conf.get(), &errors_);
    rd_kafka_conf_set_error_cb(conf.get(), &OnError);
    // librdkafka's log lines would come before our one-line error; what
    // matters of them reaches errors_ through the error callback.
    rd_kafka_conf_set_log_cb(conf.get(), [](const rd_kafka_t*, int, const char*, const char*) {});
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), errstr, sizeof(errstr));
    if (rk == nullptr) {
      return absl::InvalidArgumentError(
          StrCat("cannot create the Kafka client: ", kafka::RedactSecrets(options_, errstr)));
    }
    static_cast<void>(conf.release());  // rd_kafka_new owns it now
    rk_.reset(rk);
    rd_kafka_poll_set_consumer(rk);

    // Metadata of the whole cluster: asking for one topic could create it.
    const rd_kafka_metadata_t* metadata = nullptr;
    if (rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &metadata, Millis(deadline - absl::Now()));
        err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_consumer_poll(rk, 0);  // serves the error callback
      std::string last = errors_.last();
      return absl::UnavailableError(StrCat("no Kafka broker at ", options_.brokers, " answered within ",
                                           absl::FormatDuration(timeout_), " (", rd_kafka_err2name(err),
                                           last.empty() ? "" : StrCat("; last error: ", last),
                                           "). Hint: check --kafka and that the brokers are up"));
    }
    absl::Status status;
    for (int i = 0; i < metadata->topic_cnt; ++i) {
      const rd_kafka_metadata_topic_t& t = metadata->topics[i];
      if (topic_ != t.topic || t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || t.partition_cnt == 0) continue;
      if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        status = kafka::KafkaErrorToStatus(t.err, StrCat("read topic \"", topic_, "\""));
        break;
      }
      exists_ = true;
      for (int p = 0; p < t.partition_cnt; ++p) partitions_.push_back(PartitionRange{t.partitions[p].id});
    }
    rd_kafka_metadata_destroy(metadata);
    HERALD_RETURN_IF_ERROR(status);
    if (!exists_) {
      if (missing_ok) return absl::OkStatus();
      return absl::NotFoundError(StrCat("topic \"", topic_, "\" does not exist on ", options_.brokers));
    }
    std::sort(partitions_.begin(), partitions_.end(),
              [](const PartitionRange& a, const PartitionRange& b) { return a.partition < b.partition; });
    for (PartitionRange& p : partitions_) {
      if (rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, topic_.c_str(), p.partition, &p.low, &p.high,
                                                                     Millis(deadline - absl::Now()));
          err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return kafka::KafkaErrorToStatus(err, StrCat("find the offsets of ", topic_, "/", p.partition));
      }
    }
    return absl::OkStatus();
  }

  static ReadRecord ToRecord(const rd_kafka_message_t& m) {
    ReadRecord out;
    out.partition = m.partition;
    out.offset = m.offset;
    rd_kafka_timestamp_type_t type;
    const int64_t ms = rd_kafka_message_timestamp(&m, &type);
    if (ms >= 0) out.written = absl::FromUnixMillis(ms);
    if (m.key != nullptr) out.record.key.assign(static_cast<const char*>(m.key), m.key_len);
    if (m.payload != nullptr) out.record.value.assign(static_cast<const char*>(m.payload), m.len);
    rd_kafka_headers_t* headers = nullptr;
    if (rd_kafka_message_headers(&m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR && headers != nullptr) {
      const char* name = nullptr;
      const void* value = nullptr;
      size_t size = 0;
      for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
        out.record.headers.emplace_back(
            name, value != nullptr ? std::string(static_cast<const char*>(value), size) : std::string());
      }
    }
    return out;
  }

  using ConfPtr = kafka::ConfPtr;
  using MessagePtr = kafka::MessagePtr;
  using PartitionListPtr = kafka::PartitionListPtr;
  using QueuePtr = kafka::QueuePtr;

  const kafka::KafkaTransportOptions options_;
  const std::string topic_;
  const absl::Duration timeout_;
  kafka::ErrorLog errors_;  // before rk_: librdkafka's callback writes here until rk_ is gone
  kafka::HandlePtr rk_;
  bool exists_ = false;
  std::vector<PartitionRange> partitions_;
};

// Publishes records and waits for their outcomes.
class Publisher {
 public:
  explicit Publisher(std::unique_ptr<kafka::KafkaTransport> transport) : transport_(std::move(transport)) {}
  ~Publisher() { static_cast<void>(transport_->Stop(absl::Seconds(5))); }

  // Publishes `record` to `topic`; `done` runs with the outcome on the
  // producer's thread.
  void Publish(std::string topic, Record record, std::function<void(absl::StatusOr<DeliveryReport>)> done) {
    {
      MutexLock lock(mu_);
      ++in_flight_;
    }
    transport_->PublishRecord(std::move(topic), std::move(record),
                              [this, done = std::move(done)](absl::StatusOr<DeliveryReport> report) {
                                done(std::move(report));
                                MutexLock lock(mu_);
                                --in_flight_;
                                cv_.NotifyAll();
                              });
  }
  // Waits until every publish has its outcome (their callbacks have run).
  // The producer reports each within its delivery timeout.
  absl::Status Wait(absl::Duration timeout) {
    MutexLock lock(mu_);
    if (cv_.WaitFor(mu_, timeout, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; })) {
      return absl::OkStatus();
    }
    return absl::UnavailableError(
        StrCat(in_flight_, " publishes have no outcome after ", absl::FormatDuration(timeout)));
  }

 private:
  std::unique_ptr<kafka::KafkaTransport> transport_;
  Mutex mu_;
  CondVar cv_;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

absl::Status DlqCommand::List() const {
  const absl::Time now = absl::Now();
  HERALD_ASSIGN_OR_RETURN(DeadLetterFilter filter, filter_.Parse(now));
  HERALD_ASSIGN_OR_RETURN(const kafka::KafkaTransportOptions options, KafkaClientOptions(kafka_));
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<TopicClient> client, TopicClient::Open(options, topic_, kafka_.timeout));
  int64_t scanned = 0, listed = 0, foreign = 0;
  HERALD_RETURN_IF_ERROR(client->Scan(
      [&](ReadRecord r) {
        ++scanned;
        DeadLetterEntry entry = MakeDeadLetterEntry(topic_, r.partition, r.offset, r.written, std::move(r.record));
        if (!filter.Matches(entry)) return true;
        if (!entry.letter.is_herald_dead_letter()) ++foreign;
        std::cout << (json_ ? ListJson(entry, now) : ListLine(entry, now)) << "\n";
        ++listed;
        return limit_ == 0 || listed < limit_;
      },
      "dlq list"));
  std::cout.flush();
  std::cerr << "dlq list: " << listed << " dead letter(s) listed of " << scanned << " read from " << topic_;
  if (foreign > 0) {
    std::cerr << "; " << foreign << " of them carry no herald-dlq-* headers (not written by herald: is " << topic_
              << " a dead-letter topic?)";
  }
  std::cerr << std::endl;
  return absl::OkStatus();
}

absl::Status DlqCommand::Show() const {
  HERALD_ASSIGN_OR_RETURN(RecordPosition position, ParseRecordPosition(position_));
  HERALD_ASSIGN_OR_RETURN(const kafka::KafkaTransportOptions options, KafkaClientOptions(kafka_));
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<TopicClient> client, TopicClient::Open(options, topic_, kafka_.timeout));
  HERALD_ASSIGN_OR_RETURN(ReadRecord r, client->ReadAt(position));
  const absl::Time now = absl::Now();
  DeadLetterEntry entry = MakeDeadLetterEntry(topic_, r.partition, r.offset, r.written, std::move(r.record));
  const DeadLetter& d = entry.letter;
  std::ostream& out = std::cout;
  out << "dead letter:  " << d.topic << " " << d.partition << ":" << d.offset << "\n";
  out << "written:      " << TimeText(entry.written) << " (" << Age(now - entry.written) << " ago)\n";
  if (d.is_herald_dead_letter()) {
    out << "original:     " << d.original_topic << " " << d.original_partition << ":" << d.original_offset << " (group "
        << d.original_group << ")\n";
    out << "failure:      " << absl::StatusCodeToString(d.code) << " after " << d.attempts << " attempt(s)\n";
    out << "reason:       " << Printable(d.reason) << "\n";
  } else {
    out << "original:     unknown (no herald-dlq-* headers: not written by herald)\n";
  }
  if (d.value_dropped) {
    out << "value:        dropped (" << d.value_size << " bytes, too large for the dead-letter topic"
        << (d.key_and_headers_dropped ? "; the key and the original headers too" : "") << ")\n";
  }
  out << "event:        "
      << (entry.decode_error.empty() ? StrCat("id=", Printable(entry.event_id), " type=", Printable(entry.event_type))
                                     : StrCat("does not decode: ", entry.decode_error))
      << "\n";
  out << "key:          " << Printable(d.record.key) << "\n";
  out << "headers (" << d.record.headers.size() << "):\n";
  for (const auto& [name, value] : d.record.headers) out << "  " << Printable(name) << ": " << Printable(value) << "\n";
  out << "value (" << d.record.value.size() << " bytes):\n" << DescribeValue(d.record.value) << std::endl;
  return absl::OkStatus();
}

absl::Status DlqCommand::Replay() const {
  const absl::Time now = absl::Now();
  HERALD_ASSIGN_OR_RETURN(DeadLetterFilter filter, filter_.Parse(now));
  double rate = 0;
  if (!rate_.empty()) {
    HERALD_ASSIGN_OR_RETURN(rate, ParseRate(rate_));
  }
  if (!to_.empty()) HERALD_RETURN_IF_ERROR(ValidateTopicName(to_));
  HERALD_ASSIGN_OR_RETURN(const kafka::KafkaTransportOptions options, KafkaClientOptions(kafka_));
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<TopicClient> client, TopicClient::Open(options, topic_, kafka_.timeout));

  // What earlier runs replayed.
  const std::string replayed_topic = StrCat(topic_, ".replayed");
  std::set<std::string> replayed;
  bool replayed_topic_exists = false;
  {
    HERALD_ASSIGN_OR_RETURN(std::unique_ptr<TopicClient> log,
                            TopicClient::Open(options, replayed_topic, kafka_.timeout, /*missing_ok=*/true));
    replayed_topic_exists = log->exists();
    if (replayed_topic_exists) {
      HERALD_RETURN_IF_ERROR(log->Scan(
          [&](ReadRecord r) {
            if (!r.record.value.empty()) replayed.insert(std::move(r.record.key));
            return true;
          },
          "dlq replay"));
    }
  }

  struct Counts {
    int64_t selected = 0, replayed = 0, already = 0, failed = 0, unrecorded = 0;
    int64_t to_replay = 0;  // selected and not replayed before: what --limit counts
  };
  Counts counts;
  Mutex mu;  // guards `counts` and `done` against the producer's thread
  struct Done {
    DeadLetterEntry entry;
    absl::StatusOr<DeliveryReport> report;
  };
  std::vector<Done> done;
  std::vector<DeadLetterEntry> batch;
  // Declared after what its callbacks touch, so that it goes first.
  std::unique_ptr<Publisher> publisher;
  if (!dry_run_) {
    HERALD_ASSIGN_OR_RETURN(std::unique_ptr<kafka::KafkaTransport> transport, kafka::KafkaTransport::Create(options));
    publisher = std::make_unique<Publisher>(std::move(transport));
  }
  const absl::Duration wait = options.delivery_timeout + absl::Seconds(10);
  // A batch is published, then waited for, then recorded: about two
  // seconds' worth when the rate is limited, so progress and the record of
  // what was replayed keep up.
  const size_t batch_size = rate > 0 ? static_cast<size_t>(std::clamp(rate * 2, 1.0, 500.0)) : 500;
  absl::Time next_slot = absl::Now(), next_progress = absl::Now() + absl::Seconds(5);

  auto progress = [&] {
    if (absl::Now() < next_progress) return;
    next_progress = absl::Now() + absl::Seconds(5);
    MutexLock lock(mu);
    std::cerr << "dlq replay: selected " << counts.selected << ", replayed " << counts.replayed << ", already replayed "
              << counts.already << ", failed " << counts.failed << std::endl;
  };

  // Publishes `batch`, waits for the outcomes, then records the replayed
  // ones in `<topic>.replayed` and waits for that too.
  auto flush = [&]() -> absl::Status {
    if (batch.empty()) return absl::OkStatus();
    if (!replayed_topic_exists) {
      // Made on the first replay, so that a run that replays nothing
      // writes nothing.
      HERALD_RETURN_IF_ERROR(client->CreateCompactedTopic(replayed_topic));
      replayed_topic_exists = true;
    }
    for (DeadLetterEntry& entry : batch) {
      absl::StatusOr<Record> record = ReplayRecord(entry.letter);
      absl::StatusOr<std::string> to = ReplayDestination(entry.letter, to_);
      if (!record.ok() || !to.ok()) {
        std::cerr << "dlq replay: cannot replay " << ReplayMarker(topic_, entry.letter.partition, entry.letter.offset)
                  << ": " << (record.ok() ? to.status() : record.status()).message() << std::endl;
        MutexLock lock(mu);
        ++counts.failed;
        continue;
      }
      if (rate > 0) {
        absl::SleepFor(next_slot - absl::Now());
        next_slot = std::max(next_slot, absl::Now() - absl::Seconds(1)) + absl::Seconds(1) / rate;
      }
      auto entry_ptr = std::make_shared<DeadLetterEntry>(std::move(entry));
      publisher->Publish(*to, *std::move(record), [&, entry_ptr](absl::StatusOr<DeliveryReport> report) {
        MutexLock lock(mu);
        done.push_back(Done{std::move(*entry_ptr), std::move(report)});
      });
    }
    batch.clear();
    HERALD_RETURN_IF_ERROR(publisher->Wait(wait));
    std::vector<Done> finished;
    {
      MutexLock lock(mu);
      finished.swap(done);
    }
    for (Done& d : finished) {
      const DeadLetter& letter = d.entry.letter;
      const std::string marker = ReplayMarker(topic_, letter.partition, letter.offset);
      if (!d.report.ok()) {
        std::cerr << "dlq replay: " << marker << " failed: " << d.report.status() << std::endl;
        MutexLock lock(mu);
        ++counts.failed;
        continue;
      }
      std::cout << "replayed " << marker << " -> " << d.report->topic << " " << d.report->partition << ":"
                << d.report->offset << " id=" << OrDash(Printable(d.entry.event_id))
                << " key=" << Printable(letter.record.key) << "\n";
      {
        MutexLock lock(mu);
        ++counts.replayed;
      }
      Record entry;
      entry.key = ReplayedKey(letter.partition, letter.offset);
      entry.value = StrCat("{\"dead_letter\":\"", marker, "\",\"to\":\"", d.report->topic,
                           "\",\"partition\":", d.report->partition, ",\"offset\":", d.report->offset,
                           ",\"replayed_at\":\"", TimeText(absl::Now()), "\"}");
      publisher->Publish(replayed_topic, std::move(entry), [&, marker](absl::StatusOr<DeliveryReport> report) {
        if (report.ok()) return;
        MutexLock lock(mu);
        ++counts.unrecorded;
        std::cerr << "dlq replay: " << marker << " was replayed but could not be recorded in " << replayed_topic
                  << " (a later replay will publish it again): " << report.status() << std::endl;
      });
    }
    std::cout.flush();
    HERALD_RETURN_IF_ERROR(publisher->Wait(wait));
    progress();
    return absl::OkStatus();
  };

  absl::Status flushed;
  HERALD_RETURN_IF_ERROR(client->Scan(
      [&](ReadRecord r) {
        DeadLetterEntry entry = MakeDeadLetterEntry(topic_, r.partition, r.offset, r.written, std::move(r.record));
        if (!filter.Matches(entry)) return true;
        const std::string marker = ReplayMarker(topic_, r.partition, r.offset);
        int64_t to_replay;
        {
          MutexLock lock(mu);
          ++counts.selected;
          if (replayed.count(ReplayedKey(r.partition, r.offset)) > 0) {
            ++counts.already;
            return true;
          }
          to_replay = ++counts.to_replay;
        }
        if (dry_run_) {
          absl::StatusOr<Record> record = ReplayRecord(entry.letter);
          absl::StatusOr<std::string> to = ReplayDestination(entry.letter, to_);
          if (record.ok() && to.ok()) {
            std::cout << "would replay " << marker << " -> " << *to << " id=" << OrDash(Printable(entry.event_id))
                      << " key=" << Printable(entry.letter.record.key) << "\n";
            MutexLock lock(mu);
            ++counts.replayed;
          } else {
            std::cout << "cannot replay " << marker << ": " << (record.ok() ? to.status() : record.status()).message()
                      << "\n";
            MutexLock lock(mu);
            ++counts.failed;
          }
        } else {
          batch.push_back(std::move(entry));
          if (batch.size() >= batch_size) {
            flushed = flush();
            if (!flushed.ok()) return false;
          }
        }
        progress();
        return limit_ == 0 || to_replay < limit_;
      },
      "dlq replay"));
  HERALD_RETURN_IF_ERROR(flushed);
  if (!dry_run_) HERALD_RETURN_IF_ERROR(flush());
  MutexLock lock(mu);
  std::cout << (dry_run_ ? "dlq replay (dry run, nothing written): selected " : "dlq replay: selected ")
            << counts.selected << ", " << (dry_run_ ? "would replay " : "replayed ") << counts.replayed
            << ", already replayed " << counts.already << ", failed " << counts.failed << std::endl;
  if (counts.failed > 0 || counts.unrecorded > 0) {
    return absl::UnavailableError(
        StrCat(counts.failed, " of ", counts.selected, " selected dead letters ", dry_run_ ? "cannot be" : "were not",
               " replayed",
               counts.unrecorded > 0 ? StrCat(", ", counts.unrecorded, " replayed but not recorded as replayed") : ""));
  }
  return absl::OkStatus();
}

absl::Status DlqCommand::Purge() const {
  if (before_.empty() == !older_than_.has_value()) {
    return absl::InvalidArgumentError(
        "purge: name what to delete with either --before PARTITION:OFFSET or "
        "--older-than DURATION");
  }
  std::map<int32_t, int64_t> before;
  for (const std::string& text : before_) {
    HERALD_ASSIGN_OR_RETURN(RecordPosition p, ParseRecordPosition(text));
    if (!before.emplace(p.partition, p.offset).second) {
      return absl::InvalidArgumentError(StrCat("--before names partition ", p.partition, " twice"));
    }
  }
  HERALD_ASSIGN_OR_RETURN(const kafka::KafkaTransportOptions options, KafkaClientOptions(kafka_));
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<TopicClient> client, TopicClient::Open(options, topic_, kafka_.timeout));
  // The plan: per partition, the new start.
  std::map<int32_t, int64_t> plan;
  if (older_than_.has_value()) {
    const absl::Time cutoff = absl::Now() - *older_than_;
    for (const PartitionRange& p : client->partitions()) {
      HERALD_ASSIGN_OR_RETURN(int64_t offset, client->OffsetForTime(p, cutoff));
      if (offset > p.low) plan[p.partition] = offset;
    }
  } else {
    for (const auto& [partition, offset] : before) {
      const PartitionRange* p = client->partition(partition);
      if (p == nullptr) {
        return absl::NotFoundError(
            StrCat(topic_, " has no partition ", partition, " (it has ", client->partitions().size(), ")"));
      }
      if (offset > p->high) {
        return absl::InvalidArgumentError(StrCat("--before ", partition, ":", offset, " is past the end of ", topic_,
                                                 "/", partition, " (next offset ", p->high, ")"));
      }
      if (offset > p->low) plan[partition] = offset;
    }
  }
  int64_t total = 0;
  for (const auto& [partition, offset] : plan) {
    const PartitionRange& p = *client->partition(partition);
    total += offset - p.low;
    std::cout << (dry_run_ ? "would delete " : "delete ") << topic_ << " " << partition << ":" << p.low << " to "
              << partition << ":" << offset - 1 << " (" << offset - p.low << " records; " << p.high - offset
              << " kept)\n";
  }
  std::cout << (dry_run_ ? "dlq purge (dry run, nothing deleted): would delete " : "dlq purge: deleting ") << total
            << " record(s) of " << topic_ << " in " << plan.size() << " partition(s)" << std::endl;
  if (total == 0 || dry_run_) return absl::OkStatus();
  if (!yes_) {
    if (!isatty(STDIN_FILENO)) {
      return absl::InvalidArgumentError(
          "purge deletes for good: add --yes to delete what is listed above (or --dry-run to only list it)");
    }
    std::cerr << "Delete these " << total << " records for good? [y/N] " << std::flush;
    std::string answer;
    std::getline(std::cin, answer);
    if (answer != "y" && answer != "yes") {
      std::cout << "dlq purge: nothing deleted" << std::endl;
      return absl::OkStatus();
    }
  }
  HERALD_ASSIGN_OR_RETURN(auto starts, client->DeleteBefore(plan));
  for (const auto& [partition, offset] : starts) {
    std::cout << topic_ << " " << partition << " now starts at offset " << offset << "\n";
  }
  std::cout << "dlq purge: deleted " << total << " record(s)" << std::endl;
  return absl::OkStatus();
}

#else  // !HERALD_CLI_WITH_KAFKA

absl::Status DlqCommand::List() const { return absl::UnimplementedError("this herald was built without Kafka"); }
absl::Status DlqCommand::Show() const { return List(); }
absl::Status DlqCommand::Replay() const { return List(); }
absl::Status DlqCommand::Purge() const { return List(); }

#endif  // HERALD_CLI_WITH_KAFKA

}  // namespace herald::tools
