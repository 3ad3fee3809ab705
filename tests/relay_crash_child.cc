// A relay process for the crash tests: relays an outbox (SQLite file or
// PostgreSQL schema) to a FileTransport until it is killed, or with --drain until
// nothing is pending. Arguments:
//   relay_crash_child sqlite <db path> <out file> [--drain]
//   relay_crash_child postgres <schema> <out file> [--drain]   (DSN from HERALD_TEST_PG_DSN)
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>

#include "file_transport.h"
#include "herald/core/relay.h"
#include "herald/core/status.h"
#ifdef HERALD_CRASH_SQLITE
#include "herald/sqlite/sqlite_outbox_store.h"
#endif
#ifdef HERALD_CRASH_POSTGRES
#include "herald/postgres/postgres_outbox_store.h"
#endif

namespace {

absl::StatusOr<std::unique_ptr<herald::OutboxStore>> OpenStore(const std::string& kind, const std::string& location) {
#ifdef HERALD_CRASH_SQLITE
  if (kind == "sqlite") {
    herald::sqlite::SqliteOptions options;
    options.path = location;
    options.lease_ttl = absl::Seconds(2);
    HERALD_ASSIGN_OR_RETURN(auto store, herald::sqlite::SqliteOutboxStore::Open(options));
    return std::unique_ptr<herald::OutboxStore>(std::move(store));
  }
#endif
#ifdef HERALD_CRASH_POSTGRES
  if (kind == "postgres") {
    const char* dsn = std::getenv("HERALD_TEST_PG_DSN");
    if (dsn == nullptr) return absl::FailedPreconditionError("HERALD_TEST_PG_DSN is not set");
    herald::postgres::PostgresOptions options;
    options.conninfo = dsn;
    options.schema = location;
    HERALD_ASSIGN_OR_RETURN(auto store, herald::postgres::PostgresOutboxStore::Open(options));
    return std::unique_ptr<herald::OutboxStore>(std::move(store));
  }
#endif
  return absl::InvalidArgumentError("unknown store kind " + kind);
}

absl::Status Run(const std::string& kind, const std::string& location, const std::string& out, bool drain) {
  std::unique_ptr<herald::OutboxStore> store;
  // The database may be restarting: keep trying to open.
  for (int i = 0;; ++i) {
    auto opened = OpenStore(kind, location);
    if (opened.ok()) {
      store = *std::move(opened);
      break;
    }
    if (i > 600) return opened.status();
    absl::SleepFor(absl::Milliseconds(100));
  }
  // Each publish takes a little time, so a SIGKILL often lands between
  // publishing a batch and marking it.
  herald::Bus bus(std::make_unique<herald::tests::FileTransport>(out, absl::Microseconds(300)));
  herald::RelayOptions options;
  options.batch_size = 100;
  options.poll_interval = absl::Milliseconds(50);
  options.error_backoff = absl::Milliseconds(50);
  options.retention = absl::Hours(1);  // keep rows so the test can inspect them
  options.retry.max_attempts = 1000000;  // a down bus must not park rows
  options.retry.initial_backoff = absl::Milliseconds(10);
  options.retry.max_backoff = absl::Milliseconds(200);
  herald::OutboxRelay relay(*store, bus, options);
  if (!drain) {
    HERALD_RETURN_IF_ERROR(relay.Start());
    while (true) absl::SleepFor(absl::Seconds(1));  // until SIGKILL
  }
  for (int idle = 0; idle < 3;) {
    absl::StatusOr<int> n = relay.RunOnce();
    if (!n.ok()) {
      absl::SleepFor(absl::Milliseconds(100));
      continue;
    }
    absl::StatusOr<herald::OutboxStats> stats = store->Stats();
    if (*n == 0 && stats.ok() && stats->pending == 0) {
      ++idle;
    } else if (*n == 0) {
      absl::SleepFor(absl::Milliseconds(20));  // rows waiting for their retry time
    }
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: relay_crash_child sqlite|postgres <db path|schema> <out file> [--drain]\n";
    return 2;
  }
  bool drain = argc > 4 && std::strcmp(argv[4], "--drain") == 0;
  absl::Status s = Run(argv[1], argv[2], argv[3], drain);
  if (!s.ok()) {
    std::cerr << "relay_crash_child: " << s << "\n";
    return 1;
  }
  return 0;
}
