// `herald dlq list | show | replay | purge`: inspect, re-publish and delete
// the dead letters of a Kafka dead-letter topic (docs/cli.md, "herald dlq").
//
//   herald dlq list   --kafka B --topic orders.dlq --type order.placed --since 1h --json
//   herald dlq show   --kafka B --topic orders.dlq 0:17
//   herald dlq replay --kafka B --topic orders.dlq --reason-contains timeout --rate 50/s
//   herald dlq purge  --kafka B --topic orders.dlq --older-than 168h --yes
//
// Reading joins no consumer group and commits nothing; `list` and `replay`
// read each partition from its start to the end it had when the command
// started, then stop. `replay` records each replayed dead letter in the
// compacted topic `<dlq topic>.replayed` (key "PARTITION/OFFSET") after the
// publish is acknowledged, and skips those recorded there, so running it
// twice over the same range replays nothing the second time.
//
// The pure parts (parsing flags, filtering, the replay record) are free
// functions below, tested without a broker (dlq_command_test.cc).
#ifndef HERALD_TOOLS_HERALD_DLQ_COMMAND_H_
#define HERALD_TOOLS_HERALD_DLQ_COMMAND_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "herald/core/delivery_policy.h"
#include "herald/core/wire.h"
#include "kafka_flags.h"

namespace herald::tools {

// The header a replayed record carries: "<dlq topic>/<partition>/<offset>"
// of the dead letter it came from.
inline constexpr std::string_view kReplayedFromHeader = "herald-replayed-from";

// A record's place in a topic, as written on the command line: "3:17".
struct RecordPosition {
  int32_t partition = 0;
  int64_t offset = 0;
};

// Parses "PARTITION:OFFSET" (both whole numbers, at least 0).
// kInvalidArgument saying the form for anything else.
absl::StatusOr<RecordPosition> ParseRecordPosition(std::string_view text);

// Parses a time bound of --since / --until: a duration back from `now`
// ("1h", "30m", "2h30m": ParseDurationFlag's forms) or an RFC 3339 time
// ("2026-12-01T10:00:00Z", "2026-12-01T11:00:00+01:00"). kInvalidArgument
// saying both forms for anything else.
absl::StatusOr<absl::Time> ParseTimeBound(std::string_view text, absl::Time now);

// Parses --rate: records per second, "N/s" or "N" (N > 0, may have a
// fraction: "0.5/s"). kInvalidArgument otherwise.
absl::StatusOr<double> ParseRate(std::string_view text);

// What `list` and `replay` know of one dead letter: the DeadLetter view
// (its coordinates, the record as read and the parsed herald-dlq-* headers),
// when it was written (the record's timestamp) and the original event's
// fields where it decodes.
struct DeadLetterEntry {
  DeadLetter letter;
  absl::Time written = absl::InfinitePast();
  std::string event_id;      // "" when the original does not decode
  std::string event_type;    // likewise
  std::string decode_error;  // why it does not decode, else ""
};

// Builds the entry of a record read at topic/partition/offset.
DeadLetterEntry MakeDeadLetterEntry(std::string_view topic, int32_t partition, int64_t offset, absl::Time written,
                                    Record record);

// The selection flags of `list` and `replay`; an unset field selects
// everything.
struct DeadLetterFilter {
  std::string type;                 // exact event type
  std::string reason_contains;      // substring of the reason, ignoring case
  std::string id;                   // exact event id
  std::optional<absl::Time> since;  // written at or after
  std::optional<absl::Time> until;  // written before

  bool Matches(const DeadLetterEntry& entry) const;
};

// The original record of a dead letter, as `replay` publishes it: key and
// value as they are, the original headers in order (herald-dlq-* removed),
// and kReplayedFromHeader set to ReplayMarker(...). kFailedPrecondition when
// the dead letter was written without its value (too large: the original is
// still at its original coordinates).
absl::StatusOr<Record> ReplayRecord(const DeadLetter& letter);
// "<topic>/<partition>/<offset>".
std::string ReplayMarker(std::string_view topic, int32_t partition, int64_t offset);
// The key of a dead letter's entry in `<dlq topic>.replayed`:
// "<partition>/<offset>".
std::string ReplayedKey(int32_t partition, int64_t offset);
// Where `replay` writes: `to` when set, else the original topic.
// kInvalidArgument when neither is known (not a herald dead letter).
absl::StatusOr<std::string> ReplayDestination(const DeadLetter& letter, std::string_view to);

// One line of `dlq list`: coordinates, original coordinates, id, type, key,
// attempts, age and the reason cut to `reason_width` bytes.
std::string ListLine(const DeadLetterEntry& entry, absl::Time now, size_t reason_width = 100);
// One JSON object (one line) of `dlq list --json`.
std::string ListJson(const DeadLetterEntry& entry, absl::Time now);
// The value for a reader: pretty JSON when it parses as JSON, else C-escaped
// text when it is mostly printable, else a hex dump; cut after `limit`
// bytes, saying so.
std::string DescribeValue(std::string_view value, size_t limit = 64 * 1024);

// The `dlq` command and its subcommands.
class DlqCommand {
 public:
  // Registers `dlq` and its subcommands on `app`; `app` must outlive this.
  explicit DlqCommand(CLI::App& app);

  bool parsed() const { return command_->parsed(); }
  // Runs the subcommand that was parsed. kInvalidArgument for a bad flag
  // value found after parsing (exit code 2); kNotFound for a missing topic
  // or record; the broker's mapped error otherwise.
  absl::Status Run() const;

  // The Kafka flags every subcommand takes.
  struct KafkaFlags {
    std::string brokers;                         // --kafka
    absl::Duration timeout = absl::Seconds(10);  // --timeout
    KafkaConfigFlags config;                     // -X, --kafka-config
  };
  // The selection flags of list and replay, as given.
  struct FilterFlags {
    std::string type, reason_contains, id, since, until;
    absl::StatusOr<DeadLetterFilter> Parse(absl::Time now) const;
  };

 private:
  absl::Status List() const;
  absl::Status Show() const;
  absl::Status Replay() const;
  absl::Status Purge() const;

  CLI::App* command_;
  CLI::App* list_;
  CLI::App* show_;
  CLI::App* replay_;
  CLI::App* purge_;
  KafkaFlags kafka_;
  std::string topic_;
  FilterFlags filter_;
  int64_t limit_ = 0;
  bool json_ = false;
  std::string position_;
  std::string to_;
  bool dry_run_ = false;
  std::string rate_;
  std::vector<std::string> before_;
  std::optional<absl::Duration> older_than_;
  bool yes_ = false;
};

}  // namespace herald::tools

#endif  // HERALD_TOOLS_HERALD_DLQ_COMMAND_H_
