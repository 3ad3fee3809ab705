// herald: the command-line program.
//
//   herald relay   --sqlite edge.db --kafka 127.0.0.1:9092     relay daemon
//   herald relay   --postgres-env HERALD_PG_DSN --stdout --drain
//   herald relay   ... --key-from customer-events=/customer_id   keys for keyless rows
//   herald outbox  stats|parked|retry|purge  --sqlite edge.db
//   herald outbox  migrate --postgres --schema outbox --table outbox --dry-run
//   herald tail    --kafka 127.0.0.1:9092 --topic customer-events   read-only
//   herald tail    ... -X security.protocol=SASL_SSL --kafka-config kafka.properties
//   herald relay   --config /etc/herald/herald.toml [--check-config]
//
// A PostgreSQL DSN may hold a password, so it is read from an environment
// variable (--postgres-env NAME, default HERALD_PG_DSN) rather than argv;
// Kafka secrets (sasl.password, ...) come from an environment variable
// (--kafka-secret-env PROPERTY=VAR) or the --kafka-config file, never from -X
// or the --config file (config_file.h).
// Exit codes and signals: docs/cli.md (and flags.h).
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/escaping.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "config_file.h"
#include "dlq_command.h"
#include "flags.h"
#include "herald/core/log.h"
#include "herald/core/metrics.h"
#include "herald/core/relay.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/core/wire.h"
#include "herald/otlp/json_lines_tracer.h"
#include "herald/prometheus/metrics_server.h"
#include "json_line.h"
#include "kafka_flags.h"
#include "outbox_migrate.h"
#include "stdout_transport.h"
#ifdef HERALD_CLI_WITH_SQLITE
#include "herald/sqlite/sqlite_outbox_store.h"
#endif
#ifdef HERALD_CLI_WITH_POSTGRES
#include "herald/postgres/postgres_outbox_store.h"
#endif
#ifdef HERALD_CLI_WITH_KAFKA
#include "herald/kafka/kafka_transport.h"
#include "herald/kafka/topic_reader.h"
#endif

namespace {

using herald::tools::DurationFloor;

// SIGTERM/SIGINT ask for a graceful stop; a second one ends the process at
// once (128 + signal number), leaving unconfirmed rows pending.
volatile std::sig_atomic_t stop_requested = 0;
void OnSignal(int signal) {
  if (stop_requested) _exit(128 + signal);
  stop_requested = 1;
}
void CatchStopSignals() {
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
}

// --log-format / --log-level, and the one sink the daemon's diagnostics,
// the relay, the bus and librdkafka write through (stderr).
struct LogFlags {
  std::string format = "text";
  std::string level = "info";

  void Add(CLI::App* app) {
    app->add_option("--log-format", format, "diagnostics on stderr as text lines or JSON lines (one object a line)")
        ->check(CLI::IsMember({"text", "json"}))
        ->capture_default_str();
    app->add_option("--log-level", level,
                    "least severe diagnostics written: debug (also librdkafka's debug contexts, -X debug=...), info, "
                    "warning, error")
        ->check(CLI::IsMember({"debug", "info", "warning", "error"}))
        ->capture_default_str();
  }
};

std::unique_ptr<herald::StreamLogSink> cli_log_sink;  // set by UseLogFlags

// The daemon's sink: text at info until UseLogFlags.
herald::LogSink& CliLog() {
  static herald::StreamLogSink text(stderr, {.format = herald::LogFormat::kText, .min_level = herald::LogLevel::kInfo});
  return cli_log_sink != nullptr ? *cli_log_sink : text;
}

void UseLogFlags(const LogFlags& flags) {
  cli_log_sink = std::make_unique<herald::StreamLogSink>(
      stderr,
      herald::StreamLogOptions{.format = flags.format == "json" ? herald::LogFormat::kJson : herald::LogFormat::kText,
                               .min_level = herald::ParseLogLevel(flags.level).value_or(herald::LogLevel::kInfo)});
}

// One diagnostic of `component` ("relay", "tail") at info.
void Note(std::string_view component, const std::string& message, herald::LogLevel level = herald::LogLevel::kInfo) {
  herald::Log(CliLog(), level, component, message);
}

struct StoreFlags {
  std::string sqlite_path;
  bool postgres = false;
  std::string postgres_env = "HERALD_PG_DSN";
  std::string schema = "herald";
  std::string table;

  void Add(CLI::App* app) {
    app->add_option("--sqlite", sqlite_path, "SQLite database file of the outbox");
    app->add_flag("--postgres", postgres, "use the PostgreSQL outbox (DSN from --postgres-env)");
    app->add_option("--postgres-env", postgres_env,
                    "environment variable holding the PostgreSQL DSN (never the command line: it may hold a "
                    "password); `make test`'s servers export HERALD_TEST_PG_DSN")
        ->capture_default_str();
    app->add_option("--schema", schema, "PostgreSQL schema of the outbox")->capture_default_str();
    app->add_option("--table", table, "outbox table (default: herald_outbox on SQLite, outbox on PostgreSQL)");
  }

  absl::StatusOr<std::unique_ptr<herald::OutboxStore>> Open() const {
    if (!sqlite_path.empty() && postgres) return absl::InvalidArgumentError("choose one of --sqlite and --postgres");
    if (!sqlite_path.empty()) {
#ifdef HERALD_CLI_WITH_SQLITE
      herald::sqlite::SqliteOptions options;
      options.path = sqlite_path;
      if (!table.empty()) options.outbox_table = table;
      HERALD_ASSIGN_OR_RETURN(auto store, herald::sqlite::SqliteOutboxStore::Open(options));
      return std::unique_ptr<herald::OutboxStore>(std::move(store));
#else
      return absl::UnimplementedError("this herald was built without SQLite (HERALD_WITH_SQLITE=OFF)");
#endif
    }
    if (postgres) {
#ifdef HERALD_CLI_WITH_POSTGRES
      const char* dsn = std::getenv(postgres_env.c_str());
      if (dsn == nullptr) {
        return absl::InvalidArgumentError(herald::StrCat(
            "environment variable ", postgres_env,
            " is not set: put the PostgreSQL DSN there (a DSN may hold a password, so it is never taken from the "
            "command line), or name another variable with --postgres-env (the test servers export "
            "HERALD_TEST_PG_DSN)"));
      }
      herald::postgres::PostgresOptions options;
      options.conninfo = dsn;
      options.log = &CliLog();
      options.schema = schema;
      if (!table.empty()) options.table = table;
      HERALD_ASSIGN_OR_RETURN(auto store, herald::postgres::PostgresOutboxStore::Open(options));
      return std::unique_ptr<herald::OutboxStore>(std::move(store));
#else
      return absl::UnimplementedError("this herald was built without PostgreSQL (HERALD_WITH_POSTGRES=OFF)");
#endif
    }
    return absl::InvalidArgumentError("name an outbox: --sqlite FILE or --postgres");
  }
};

struct BusFlags {
  std::string kafka_brokers;
  bool to_stdout = false;
  herald::tools::KafkaConfigFlags kafka_config;
  // Read from kafka_config after parsing (CheckKafkaConfig).
  std::map<std::string, std::string> kafka_properties;

  void Add(CLI::App* app) {
    app->add_option("--kafka", kafka_brokers,
                    "Kafka bootstrap servers (host:port,...); or bootstrap.servers in -X / --kafka-config");
    app->add_flag("--stdout", to_stdout, "write events to stdout as JSON envelope lines instead");
    kafka_config.Add(app);
  }

  // Reads and checks -X and --kafka-config: kInvalidArgument (exit code 2)
  // before anything runs.
  absl::Status CheckKafkaConfig() {
    HERALD_ASSIGN_OR_RETURN(kafka_properties, kafka_config.Properties());
    if (to_stdout && !kafka_config.empty()) {
      return absl::InvalidArgumentError("-X and --kafka-config configure Kafka; --stdout does not take them");
    }
    return absl::OkStatus();
  }

  bool kafka() const { return !to_stdout && (!kafka_brokers.empty() || kafka_properties.count("bootstrap.servers")); }

  // The bus, reporting to `metrics` when not null.
  absl::StatusOr<std::unique_ptr<herald::Bus>> Open(herald::Metrics* metrics = nullptr) const {
    const herald::BusOptions bus_options{.metrics = metrics, .log = &CliLog()};
    if (to_stdout) {
      return std::make_unique<herald::Bus>(std::make_unique<herald::tools::StdoutTransport>(), bus_options);
    }
    if (kafka()) {
#ifdef HERALD_CLI_WITH_KAFKA
      herald::kafka::KafkaTransportOptions options;
      options.brokers = kafka_brokers;
      options.client_id = "herald-cli";
      options.properties = kafka_properties;
      options.log = &CliLog();
      HERALD_ASSIGN_OR_RETURN(auto transport, herald::kafka::KafkaTransport::Create(options));
      return std::make_unique<herald::Bus>(std::move(transport), bus_options);
#else
      return absl::UnimplementedError("this herald was built without Kafka (HERALD_WITH_KAFKA=OFF)");
#endif
    }
    return absl::InvalidArgumentError(
        "name a bus: --kafka BROKERS (or bootstrap.servers in -X / --kafka-config) or --stdout");
  }

  // Publishes the bus Open() made has accepted and not yet reported on.
  int64_t InFlight(herald::Bus& bus) const {
#ifdef HERALD_CLI_WITH_KAFKA
    if (kafka()) return bus.transport<herald::kafka::KafkaTransport>().Stats().in_flight;
#endif
    return 0;  // the stdout transport reports every publish at once
  }

  // Gives up the publishes not confirmed yet (their callbacks report
  // kAborted, retryable); the bus stays open.
  void AbandonPublishes(herald::Bus& bus) const {
#ifdef HERALD_CLI_WITH_KAFKA
    if (kafka()) bus.transport<herald::kafka::KafkaTransport>().AbandonPublishes();
#endif
  }
};

void PrintStats(const herald::RelayStats& s) {
  std::string line = herald::StrCat(s.leader ? "leader" : "standby", ", published ", s.published, ", failed ", s.failed,
                                    ", parked ", s.parked, "; outbox pending ", s.outbox.pending, ", parked ",
                                    s.outbox.parked, ", lag ", absl::FormatDuration(s.outbox.oldest_pending_age));
  if (!s.last_error.ok()) herald::StrAppend(&line, "; last error: ", s.last_error.ToString());
  Note("relay", line);
}

// --key-from TYPE_OR_TOPIC=/json/pointer, repeatable (RelayOptions::key_from).
absl::StatusOr<std::map<std::string, std::string>> ParseKeyFrom(const std::vector<std::string>& flags) {
  std::map<std::string, std::string> out;
  for (const std::string& flag : flags) {
    size_t eq = flag.find('=');
    if (eq == 0 || eq == std::string::npos || !out.emplace(flag.substr(0, eq), flag.substr(eq + 1)).second) {
      return absl::InvalidArgumentError(
          herald::StrCat("--key-from \"", flag, "\": want TYPE_OR_TOPIC=/json/pointer, once per name"));
    }
  }
  return out;
}

// --drain: relays what is pending under this relay's lease (waiting for a
// running relay to let it go), then exits: OK only when nothing is left
// pending or parked.
absl::Status Drain(herald::OutboxStore& store, herald::Bus& bus, herald::OutboxRelay& relay,
                   const herald::RelayOptions& options, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Time next_note = absl::InfinitePast();
  HERALD_RETURN_IF_ERROR(relay.AcquireLease(timeout, [&](const absl::Status& why) {
    if (absl::Now() < next_note) return;
    Note("relay", herald::StrCat("waiting up to ", absl::FormatDuration(deadline - absl::Now()),
                                 " for the lease (another relay holds it): ", why.message()));
    next_note = absl::Now() + absl::Seconds(5);
  }));
  int64_t total = 0;
  herald::OutboxStats left;
  while (true) {
    HERALD_ASSIGN_OR_RETURN(int n, relay.RunOnce());
    total += n;
    if (n > 0) continue;
    HERALD_ASSIGN_OR_RETURN(left, store.Stats());
    // Rows left pending wait for their retry time after a failure: wait for
    // them until the deadline.
    if (left.pending == 0 || absl::Now() + options.poll_interval > deadline || stop_requested) break;
    absl::SleepFor(options.poll_interval);
  }
  relay.ReleaseLease();
  absl::Status flushed = bus.Flush(absl::Seconds(30));
  herald::RelayStats stats = relay.Stats();
  PrintStats(stats);
  absl::Status stopped = bus.Stop(absl::Seconds(30));
  if (left.pending > 0 || left.parked > 0) {
    std::string reason = stats.last_error.ok() ? "" : herald::StrCat("; last error: ", stats.last_error.ToString());
    return absl::FailedPreconditionError(herald::StrCat("drain incomplete: published ", total, ", ", left.pending,
                                                        " still pending (failed and waiting for a retry, ",
                                                        "or not yet due) after ", absl::FormatDuration(timeout), ", ",
                                                        left.parked, " parked (see `herald outbox parked`)", reason));
  }
  HERALD_RETURN_IF_ERROR(flushed);
  Note("relay", herald::StrCat("drained ", total, " events"));
  return stopped;
}

// The signal path of `herald relay`: the relay stops claiming rows at once;
// the batch in flight and every other outstanding publish get until
// `timeout` to be confirmed; what is still unconfirmed then is given up
// (kAborted), which also releases the relay if it still waits for its
// batch. Their rows stay pending (relayed again at the next start).
// kDeadlineExceeded, with the count, when anything was left unconfirmed.
absl::Status StopRelay(herald::OutboxRelay& relay, herald::Bus& bus, const BusFlags& bus_flags,
                       absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  Note("relay", herald::StrCat("stopping within ", absl::FormatDuration(timeout),
                               " (--shutdown-timeout; a second signal exits at once)"));
  absl::Notification relay_stopped;
  std::thread stopper([&relay, &relay_stopped] {
    relay.Stop();
    relay_stopped.Notify();
  });
  const bool relay_in_time = relay_stopped.WaitForNotificationWithDeadline(deadline);
  absl::Status flushed = bus.Flush(std::max(deadline - absl::Now(), absl::ZeroDuration()));
  const int64_t unconfirmed = flushed.ok() ? 0 : bus_flags.InFlight(bus);
  // Give up what is left, without closing the bus yet: a relay still
  // publishing its batch must not get "bus stopped" errors (they are
  // permanent: it would park those rows). The outcomes reach the relay at
  // once; marking its rows is one store statement.
  if (!flushed.ok()) bus_flags.AbandonPublishes(bus);
  if (!relay_stopped.WaitForNotificationWithTimeout(absl::Seconds(5))) {
    Note("relay",
         "the relay thread did not stop within 5s of the shutdown deadline (is the store reachable?); exiting "
         "without waiting: unmarked rows stay pending",
         herald::LogLevel::kError);
    std::fflush(stdout);
    std::_Exit(herald::tools::kExitUnfinished);
  }
  stopper.join();
  absl::Status stopped = bus.Stop(absl::ZeroDuration());
  PrintStats(relay.Stats());
  if (!relay_in_time || unconfirmed > 0 || !flushed.ok()) {
    return absl::DeadlineExceededError(
        herald::StrCat("stopped at the shutdown deadline (", absl::FormatDuration(timeout), "): ", unconfirmed,
                       " publishes not confirmed", relay_in_time ? "" : " (the relay was still waiting for its batch)",
                       "; their rows stay pending and are relayed again at the next start"));
  }
  return stopped;
}

// --metrics-address and what /readyz requires of the relay.
struct MetricsFlags {
  std::string address;
  herald::RelayReadiness readiness;

  void Add(CLI::App* app) {
    app->add_option("--metrics-address", address,
                    "HOST:PORT to serve Prometheus metrics on (/metrics, /healthz, /readyz), e.g. 0.0.0.0:9464; "
                    "off when not given")
        ->check([](const std::string& text) {
          absl::StatusOr<std::pair<std::string, int>> parsed = herald::prometheus::ParseHostPort(text);
          return parsed.ok() ? std::string() : std::string(parsed.status().message());
        });
    AddDurationOption(app, "--ready-max-lag", readiness.max_lag,
                      "/readyz fails while the oldest pending row is older than this (default: no limit)",
                      DurationFloor::kPositive);
    app->add_flag("--ready-requires-leader", readiness.require_leader,
                  "/readyz fails on a standby that does not hold the relay lease (default: a standby is ready)");
  }
};

// --trace-file: the relay's spans (tracing.h) as OTLP JSON lines.
struct TraceFlags {
  std::string path;

  void Add(CLI::App* app) {
    app->add_option("--trace-file", path,
                    "append a span per relayed row to this file as OTLP JSON lines (the OpenTelemetry Collector's "
                    "otlpjsonfile receiver reads it; docs/operations.md, \"Tracing\"). Default: no tracing");
  }

  // The tracer, or null without --trace-file.
  absl::StatusOr<std::unique_ptr<herald::otlp::JsonLinesTracer>> Open() const {
    if (path.empty()) return nullptr;
    return herald::otlp::JsonLinesTracer::Open({.path = path, .service_name = "herald-relay"});
  }
};

absl::Status RunRelay(const StoreFlags& store_flags, const BusFlags& bus_flags, const MetricsFlags& metrics_flags,
                      const TraceFlags& trace_flags, int batch, int shards, int shard, absl::Duration poll,
                      absl::Duration report_every, absl::Duration shutdown_timeout, bool drain,
                      absl::Duration drain_timeout, const std::vector<std::string>& key_from) {
  // Declared first: it outlives the bus and the relay that report to it.
  std::unique_ptr<herald::MetricsRegistry> metrics;
  if (!metrics_flags.address.empty()) metrics = std::make_unique<herald::MetricsRegistry>();
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::otlp::JsonLinesTracer> tracer, trace_flags.Open());
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::OutboxStore> store, store_flags.Open());
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::Bus> bus, bus_flags.Open(metrics.get()));
  herald::RelayOptions options;
  options.metrics = metrics.get();
  options.tracer = tracer.get();
  options.log = &CliLog();
  options.batch_size = batch;
  options.shard_count = shards;
  options.shard = shard;
  options.poll_interval = poll;
  HERALD_ASSIGN_OR_RETURN(options.key_from, ParseKeyFrom(key_from));
  herald::OutboxRelay relay(*store, *bus, options);
  if (drain) {
    CatchStopSignals();
    return Drain(*store, *bus, relay, options, drain_timeout);
  }
  CatchStopSignals();
  std::unique_ptr<herald::prometheus::MetricsServer> server;
  if (metrics != nullptr) {
    herald::prometheus::MetricsServerOptions server_options;
    server_options.address = metrics_flags.address;
    server_options.readiness_checks.push_back(
        {"relay", [&relay, readiness = metrics_flags.readiness] { return relay.Readiness(readiness); }});
    HERALD_ASSIGN_OR_RETURN(server, herald::prometheus::MetricsServer::Start(*metrics, std::move(server_options)));
    Note("relay",
         herald::StrCat("metrics on http://", metrics_flags.address.substr(0, metrics_flags.address.rfind(':')), ":",
                        server->port(), "/metrics (/healthz, /readyz)"));
  }
  HERALD_RETURN_IF_ERROR(relay.Start());
  Note("relay", "running (SIGTERM or Ctrl-C stops it)");
  absl::Time next = absl::Now() + report_every;
  while (!stop_requested) {
    absl::SleepFor(absl::Milliseconds(100));
    if (absl::Now() >= next) {
      PrintStats(relay.Stats());
      next = absl::Now() + report_every;
    }
  }
  absl::Status stopped = StopRelay(relay, *bus, bus_flags, shutdown_timeout);
  if (server != nullptr) server->Stop();  // before the relay its readiness check asks goes
  return stopped;
}

absl::Status OutboxStats(const StoreFlags& flags, bool json) {
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::OutboxStore> store, flags.Open());
  HERALD_ASSIGN_OR_RETURN(herald::OutboxStats stats, store->Stats());
  if (json) {
    herald::tools::JsonLine line;
    line.Int("pending", stats.pending)
        .Int("parked", stats.parked)
        .Double("lag_seconds", absl::ToDoubleSeconds(stats.oldest_pending_age));
    std::cout << line.Finish() << std::endl;
    return absl::OkStatus();
  }
  std::cout << "pending " << stats.pending << "\nparked " << stats.parked << "\nlag "
            << absl::FormatDuration(stats.oldest_pending_age) << std::endl;
  return absl::OkStatus();
}

absl::Status OutboxParked(const StoreFlags& flags, int limit, bool json) {
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::OutboxStore> store, flags.Open());
  HERALD_ASSIGN_OR_RETURN(std::vector<herald::OutboxRecord> rows, store->ListParked(limit));
  for (const herald::OutboxRecord& r : rows) {
    if (json) {
      herald::tools::JsonLine line;
      line.Int("sequence", r.sequence)
          .String("id", r.envelope.id)
          .String("type", r.envelope.type)
          .String("topic", r.envelope.topic)
          .String("key", r.envelope.key)
          .Int("attempts", r.attempts)
          .String("last_error", r.last_error);
      std::cout << line.Finish() << std::endl;
      continue;
    }
    std::cout << r.sequence << "\t" << r.envelope.type << "\t" << r.envelope.topic << "\t" << r.envelope.key << "\t"
              << r.attempts << "\t" << r.last_error << std::endl;
  }
  std::cerr << rows.size() << " parked" << std::endl;
  return absl::OkStatus();
}

absl::Status OutboxRetry(const StoreFlags& flags, const std::vector<int64_t>& sequences, bool all) {
  if (sequences.empty() && !all) return absl::InvalidArgumentError("name the rows to retry, or --all");
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::OutboxStore> store, flags.Open());
  HERALD_ASSIGN_OR_RETURN(int64_t n, store->RetryParked(sequences));
  std::cout << n << " rows pending again" << std::endl;
  return absl::OkStatus();
}

// Gives up on parked rows for good, so the later rows of their keys flow;
// the skip (when, why, the last error) is recorded in each row.
absl::Status OutboxSkip(const StoreFlags& flags, const std::vector<int64_t>& sequences, const std::string& reason) {
  if (sequences.empty()) return absl::InvalidArgumentError("name the parked rows to skip (see herald outbox parked)");
  if (reason.empty()) return absl::InvalidArgumentError("say why with --reason; it is recorded in each row");
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::OutboxStore> store, flags.Open());
  HERALD_ASSIGN_OR_RETURN(int64_t n, store->SkipParked(sequences, reason));
  std::cout << n << " parked rows skipped" << std::endl;
  if (n < static_cast<int64_t>(sequences.size())) {
    return absl::NotFoundError(herald::StrCat(static_cast<int64_t>(sequences.size()) - n,
                                              " of the named rows are not parked; nothing was done to them"));
  }
  return absl::OkStatus();
}

absl::Status OutboxPurge(const StoreFlags& flags, absl::Duration age, int limit) {
  // --batch is checked at parse; a batch below 1 would never end the loop.
  if (limit < 1) return absl::InvalidArgumentError("--batch must be at least 1");
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::OutboxStore> store, flags.Open());
  int64_t total = 0;
  while (true) {
    HERALD_ASSIGN_OR_RETURN(int64_t n, store->PurgePublished(absl::Now() - age, limit));
    total += n;
    if (n < limit) break;
    std::cerr << "purged " << total << "..." << std::endl;
  }
  std::cout << total << " published rows purged" << std::endl;
  return absl::OkStatus();
}

// Read-only: a consumer with no group (every partition assigned, nothing
// committed, no group left behind) and no producer (nothing dead-lettered);
// a record that is not a herald event is printed raw, with the reason.
absl::Status Tail(const std::string& brokers, const std::map<std::string, std::string>& properties,
                  const std::vector<std::string>& topics, bool from_beginning, absl::Duration timeout) {
#ifdef HERALD_CLI_WITH_KAFKA
  herald::kafka::KafkaTransportOptions connection;
  connection.brokers = brokers;
  connection.client_id = "herald-tail";
  connection.properties = properties;
  connection.log = &CliLog();
  herald::kafka::TopicReaderOptions options;
  options.topics = topics;
  options.start = from_beginning ? herald::kafka::TopicReaderOptions::Start::kBeginning
                                 : herald::kafka::TopicReaderOptions::Start::kEnd;
  options.connect_timeout = timeout;
  CatchStopSignals();
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::kafka::KafkaTopicReader> reader,
                          herald::kafka::KafkaTopicReader::Open(connection, options));
  Note("tail", herald::StrCat("reading ", reader->partition_count(), " partition(s) from the ",
                              from_beginning ? "beginning" : "end", " (Ctrl-C to stop)"));
  std::string last_error;
  while (!stop_requested) {
    absl::StatusOr<std::optional<herald::kafka::TopicRecord>> next = reader->Next(absl::Milliseconds(200));
    if (!next.ok()) {
      // The reader goes on (a broker may come back); say each new error once.
      if (next.status().ToString() != last_error) {
        last_error = next.status().ToString();
        Note("tail", last_error, herald::LogLevel::kWarning);
      }
      continue;
    }
    if (!next->has_value()) continue;
    const herald::kafka::TopicRecord& r = **next;
    std::cout << r.topic << "/" << r.partition << "@" << r.offset << " ";
    absl::StatusOr<herald::Envelope> e = herald::DecodeRecord(r.topic, r.record.key, r.record.value, r.record.headers);
    if (e.ok()) {
      std::cout << e->type << " " << e->id << " key=" << e->key << " " << e->payload << std::endl;
    } else {
      std::cout << "RAW key=" << absl::CHexEscape(r.record.key) << " value=" << absl::CHexEscape(r.record.value)
                << " (not a herald event: " << e.status().message() << ")" << std::endl;
    }
  }
  return absl::OkStatus();
#else
  return absl::UnimplementedError("this herald was built without Kafka (HERALD_WITH_KAFKA=OFF)");
#endif
}

// The exit code for a command's outcome (docs/cli.md).
int ExitCode(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return herald::tools::kExitOk;
    case absl::StatusCode::kInvalidArgument:
      return herald::tools::kExitUsage;
    case absl::StatusCode::kDeadlineExceeded:
      return herald::tools::kExitUnfinished;
    default:
      return herald::tools::kExitFailure;
  }
}

}  // namespace

int main(int argc, char** argv) {
  using herald::tools::AddDurationOption;
  using herald::tools::AtLeast;
  CLI::App app{
      "herald: relay an outbox, administer it, tail topics.\n"
      "Exit codes: 0 done; 1 failed (store, broker, ...); 2 bad command line (nothing was done); "
      "3 stopped at a deadline with work unconfirmed (rows stay pending). "
      "Durations are numbers with a unit: 250ms, 5s, 1m30s, 2h."};
  app.require_subcommand(1);
  // --config FILE (config_file.h) of relay, tail and each dlq subcommand;
  // --check-config: check the command line and the file, then exit.
  herald::tools::ConfigFileOptions config_options;
  config_options.table_checks["kafka-property"] = herald::tools::CheckKafkaPropertyFromConfig;
  config_options.table_checks["kafka-secret-env"] = herald::tools::CheckKafkaSecretEnvFromConfig;
  bool check_config = false;
  auto add_check_config = [&check_config](CLI::App* command) {
    command->add_flag("--check-config", check_config,
                      "check the command line and the --config file (types, values, Kafka properties, secrets from "
                      "the environment), print what is wrong or \"configuration OK\", and exit (0 or 2) without "
                      "opening the store or the bus");
  };

  StoreFlags relay_store;
  BusFlags relay_bus;
  int batch = 500, shards = 1, shard = 0;
  absl::Duration poll = absl::Seconds(1), report_every = absl::Seconds(10), shutdown_timeout = absl::Seconds(10),
                 drain_timeout = absl::Minutes(2);
  bool drain = false;
  std::vector<std::string> key_from;
  CLI::App* relay = app.add_subcommand(
      "relay",
      "move committed outbox rows to a bus. Runs until SIGTERM or SIGINT: then it stops claiming rows, waits up to "
      "--shutdown-timeout for the publishes in flight, and exits 0 when all were confirmed, else 3 with their count "
      "(their rows stay pending). A second signal exits at once (128 + signal).");
  herald::tools::AddConfigOption(relay, config_options);
  add_check_config(relay);
  relay_store.Add(relay);
  relay_bus.Add(relay);
  MetricsFlags relay_metrics;
  relay_metrics.Add(relay);
  LogFlags relay_log;
  relay_log.Add(relay);
  TraceFlags relay_trace;
  relay_trace.Add(relay);
  relay->add_option("--batch", batch, "rows per round")->capture_default_str()->check(AtLeast(1));
  relay->add_option("--shards", shards, "number of shards (PostgreSQL)")->capture_default_str()->check(AtLeast(1));
  relay->add_option("--shard", shard, "this relay's shard, 0-based, below --shards")
      ->capture_default_str()
      ->check(AtLeast(0));
  AddDurationOption(relay, "--poll", poll, "fallback poll interval", DurationFloor::kPositive);
  AddDurationOption(relay, "--report-every", report_every, "how often to print stats", DurationFloor::kPositive);
  AddDurationOption(relay, "--shutdown-timeout", shutdown_timeout,
                    "on SIGTERM/SIGINT, how long to wait for publishes in flight before exiting (with code 3 if "
                    "some are still unconfirmed)",
                    DurationFloor::kZero);
  relay->add_flag("--drain", drain,
                  "relay what is pending under the relay lease, then exit: non-zero when rows are left pending or "
                  "parked");
  AddDurationOption(relay, "--drain-timeout", drain_timeout,
                    "--drain: how long to wait for the lease and for rows waiting for a retry",
                    DurationFloor::kPositive);
  relay
      ->add_option("--key-from", key_from,
                   "TYPE_OR_TOPIC=/json/pointer: key for keyless rows of that event type or topic, read from the "
                   "payload (a Go envelope's inner payload); repeatable")
      ->type_name("TYPE_OR_TOPIC=/json/pointer");

  StoreFlags outbox_store;
  CLI::App* outbox = app.add_subcommand("outbox", "inspect and repair an outbox");
  outbox->require_subcommand(1);
  CLI::App* stats = outbox->add_subcommand("stats", "pending and parked counts, outbox lag");
  bool outbox_json = false;
  stats->add_flag("--json", outbox_json,
                  "one JSON object instead: {\"pending\":N,\"parked\":N,\"lag_seconds\":SECONDS}");
  CLI::App* parked = outbox->add_subcommand("parked", "list parked rows");
  parked->add_flag("--json", outbox_json,
                   "one JSON object per row instead: sequence, id, type, topic, key, attempts, last_error");
  int limit = 100;
  parked->add_option("--limit", limit, "rows at most")->capture_default_str()->check(AtLeast(1));
  CLI::App* retry = outbox->add_subcommand("retry", "make parked rows pending again");
  std::vector<int64_t> sequences;
  bool all = false;
  retry->add_option("seq", sequences, "sequence numbers of parked rows")->check(AtLeast(1));
  retry->add_flag("--all", all, "every parked row");
  CLI::App* purge = outbox->add_subcommand("purge", "delete published rows");
  absl::Duration older_than = absl::Hours(24);
  int purge_limit = 1000;
  AddDurationOption(purge, "--older-than", older_than, "age of published rows to delete", DurationFloor::kZero);
  purge->add_option("--batch", purge_limit, "rows per statement")->capture_default_str()->check(AtLeast(1));
  for (CLI::App* sub : {stats, parked, retry, purge}) outbox_store.Add(sub);
  herald::tools::OutboxMigrateCommand migrate(*outbox);
  CLI::App* skip =
      outbox->add_subcommand("skip", "give up on parked rows for good so their keys flow again (recorded in the rows)");
  std::vector<int64_t> skip_sequences;
  std::string skip_reason;
  skip->add_option("seq", skip_sequences, "sequence numbers of parked rows")->required();
  skip->add_option("--reason", skip_reason, "why, recorded in each row")->required();
  outbox_store.Add(skip);

  std::string tail_brokers;
  herald::tools::KafkaConfigFlags tail_kafka_config;
  std::vector<std::string> tail_topics;
  bool tail_from_beginning = false;
  absl::Duration tail_timeout = absl::Seconds(5);
  CLI::App* tail = app.add_subcommand(
      "tail",
      "print events arriving on Kafka topics. Read-only: joins no consumer group, commits nothing, never "
      "dead-letters (a record that is not a herald event is printed raw with the reason). Exits 1 when the "
      "brokers do not answer within --timeout or a topic does not exist; 0 on SIGTERM/SIGINT.");
  herald::tools::AddConfigOption(tail, config_options);
  add_check_config(tail);
  tail->add_option("--kafka", tail_brokers, "bootstrap servers (or bootstrap.servers in -X / --kafka-config)");
  tail_kafka_config.Add(tail);
  LogFlags tail_log;
  tail_log.Add(tail);
  tail->add_option("--topic", tail_topics, "topic (repeatable)")->required();
  tail->add_flag("--from-beginning", tail_from_beginning,
                 "print the records already in the topics too (default: only those that arrive from now on)");
  AddDurationOption(tail, "--timeout", tail_timeout, "how long to wait for the brokers to answer at start",
                    DurationFloor::kPositive);

  herald::tools::DlqCommand dlq(app);
  for (CLI::App* command : app.get_subcommand("dlq")->get_subcommands([](CLI::App*) { return true; })) {
    herald::tools::AddConfigOption(command, config_options);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);  // --help
    std::cerr << "herald: " << e.what() << " (see --help)" << std::endl;
    return herald::tools::kExitUsage;
  }
  if (relay->parsed() && shard >= shards) {
    std::cerr << "herald: --shard " << shard << " is not below --shards " << shards << " (see --help)" << std::endl;
    return herald::tools::kExitUsage;
  }
  // -X and --kafka-config are checked before anything runs.
  std::map<std::string, std::string> tail_properties;
  absl::Status kafka_config;
  if (relay->parsed()) kafka_config = relay_bus.CheckKafkaConfig();
  if (tail->parsed()) {
    absl::StatusOr<std::map<std::string, std::string>> properties = tail_kafka_config.Properties();
    kafka_config = properties.status();
    if (properties.ok()) tail_properties = *std::move(properties);
    if (kafka_config.ok() && tail_brokers.empty() && tail_properties.count("bootstrap.servers") == 0) {
      kafka_config = absl::InvalidArgumentError("--kafka is required (or bootstrap.servers in -X / --kafka-config)");
    }
  }
  if (!kafka_config.ok()) {
    std::cerr << "herald: " << kafka_config.message() << " (see --help)" << std::endl;
    return herald::tools::kExitUsage;
  }
  if (check_config) {
    // The store is not opened, but its DSN's variable must be set.
    if (relay->parsed() && relay_store.postgres && std::getenv(relay_store.postgres_env.c_str()) == nullptr) {
      std::cerr << "herald: environment variable " << relay_store.postgres_env
                << " (postgres-env) is not set: the PostgreSQL DSN goes there (see --help)" << std::endl;
      return herald::tools::kExitUsage;
    }
    std::cerr << "herald: configuration OK" << std::endl;
    return herald::tools::kExitOk;
  }

  if (relay->parsed()) UseLogFlags(relay_log);
  if (tail->parsed()) UseLogFlags(tail_log);

  absl::Status status;
  if (relay->parsed()) {
    status = RunRelay(relay_store, relay_bus, relay_metrics, relay_trace, batch, shards, shard, poll, report_every,
                      shutdown_timeout, drain, drain_timeout, key_from);
  } else if (stats->parsed()) {
    status = OutboxStats(outbox_store, outbox_json);
  } else if (parked->parsed()) {
    status = OutboxParked(outbox_store, limit, outbox_json);
  } else if (retry->parsed()) {
    status = OutboxRetry(outbox_store, sequences, all);
  } else if (skip->parsed()) {
    status = OutboxSkip(outbox_store, skip_sequences, skip_reason);
  } else if (purge->parsed()) {
    status = OutboxPurge(outbox_store, older_than, purge_limit);
  } else if (migrate.parsed()) {
    status = migrate.Run();
  } else if (tail->parsed()) {
    status = Tail(tail_brokers, tail_properties, tail_topics, tail_from_beginning, tail_timeout);
  } else if (dlq.parsed()) {
    status = dlq.Run();
  }
  const bool json_log =
      (relay->parsed() && relay_log.format == "json") || (tail->parsed() && tail_log.format == "json");
  if (!status.ok() && json_log) {
    herald::Log(CliLog(), herald::LogLevel::kError, "herald", status.ToString());  // JSON lines stay JSON
  } else if (!status.ok()) {
    std::cerr << "herald: " << status << std::endl;
  }
  return ExitCode(status);
}
