// The relay crash test at production scale, PostgreSQL (or SQLite) to a
// real Kafka broker, with the real `herald relay` daemon.
//
// Writer threads commit at least kMinEvents events on kKeys keys into the
// outbox: most through herald's Append, a quarter as the seed's Go writer
// does (a 3-column INSERT whose event_payload is the whole
// {"id","type","timestamp","payload"} envelope, no key; the daemon's
// --key-from gives them their key). Meanwhile `herald relay` runs as a child
// process and is SIGKILLed at least kMinKills times at random points, each
// time after it has relayed something, and restarted; the broker is
// restarted once mid-stream (and, on PostgreSQL, the database too). A reader
// follows the whole topic from the beginning as it fills. Then the count:
// nothing lost, nothing unexpected, no key's event first delivered after a
// later event of that key (order = commit order per key), duplicates within
// the bound below, and the longest gap between consecutive first
// deliveries (outside the server restarts) within the takeover bound. One line of counts, "[crash relay <store>] ...",
// goes to stdout (scripts/run-tests.sh shows it).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "crash_harness.h"
#include "gtest/gtest.h"
#include "herald/core/envelope.h"
#include "herald/core/mutex.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/core/uuid.h"
#include "herald/testing/status_matchers.h"
#ifdef HERALD_CRASH_POSTGRES
#include <libpq-fe.h>

#include "herald/postgres/postgres_outbox_store.h"
#else
#include <sqlite3.h>

#include "herald/sqlite/sqlite_outbox_store.h"
#endif

namespace herald::crash {
namespace {

using herald::testing::IsOk;

#ifdef HERALD_CRASH_POSTGRES
using Store = postgres::PostgresOutboxStore;
using StoreTransaction = postgres::Transaction;
constexpr const char* kStoreName = "postgres";
constexpr int kWriters = 4;
#else
using Store = sqlite::SqliteOutboxStore;
using StoreTransaction = sqlite::Transaction;
constexpr const char* kStoreName = "sqlite";
constexpr int kWriters = 2;  // SQLite has one writer at a time anyway
#endif

constexpr int kKeys = 64;
constexpr int64_t kMinEvents = 100000;
// Writers go on past kMinEvents until the kills are done, keeping about
// kBacklog events pending, up to kMaxEvents.
constexpr int64_t kBacklog = 10000;
constexpr int64_t kMaxEvents = 300000;
constexpr int kMinKills = 20;
constexpr int kPartitions = 4;
// `herald relay --batch`: the relay has at most one batch in flight, and a
// batch that is published but not marked (the relay killed, the mark failing
// because the database restarts, the delivery outlasting publish_timeout
// while the broker restarts) is published again, whole. So each kill and each
// disruption duplicates at most kBatch events, which is the bound asserted.
constexpr int kBatch = 200;
// Writers pace themselves to about this many events per second, so the kills
// (each after the relay has made progress) land while rows keep arriving.
constexpr int64_t kEventsPerSecond = 3000;
// The longest the relay may relay nothing between kills, outside the server
// restarts. SQLite: a restarted relay takes over from the dead holder at once
// (the lease is a lock held by a live process, not only a TTL); asserted
// generously. PostgreSQL: the advisory lock dies with the killed session.
constexpr absl::Duration kMaxGap = absl::Seconds(15);
// A relay that shows no progress this long (outside a server restart) ends
// the kill phase early: the run then only drains and counts.
constexpr absl::Duration kStallLimit = absl::Seconds(20);
constexpr absl::Duration kStallLimitDuringRestart = absl::Seconds(120);

std::string KeyName(int k) { return StrCat("key-", k < 10 ? "0" : "", k); }

std::string GoEnvelope(const std::string& id, const std::string& type, absl::Time time, const std::string& payload) {
  // What the seed's evt.ToJSON() writes: RFC 3339 with nanoseconds, UTC as Z.
  return StrCat("{\"id\":\"", id, "\",\"type\":\"", type, "\",\"timestamp\":\"",
                absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", time, absl::UTCTimeZone()), "\",\"payload\":", payload, "}");
}

struct Event {
  std::string id;
  std::string key;
  int64_t n = 0;
  bool go = false;      // written as the seed's Go writer does
  std::string payload;  // herald: the payload; go: the whole envelope
};

class RelayCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    brokers_ = Env("HERALD_TEST_KAFKA_BROKERS");
    kafka_ctl_ = Env("HERALD_TEST_KAFKA_CTL");
    ASSERT_FALSE(brokers_.empty()) << "HERALD_TEST_KAFKA_BROKERS is not set: run `make test` or scripts/servers-up.sh";
    ASSERT_FALSE(kafka_ctl_.empty()) << "HERALD_TEST_KAFKA_CTL is not set (scripts/kafka-ctl.sh)";
    unique_ = StrCat("crash_", kStoreName, "_", getpid(), "_", absl::ToUnixSeconds(absl::Now()));
    dir_ = std::filesystem::temp_directory_path() / unique_;
    std::filesystem::create_directories(dir_);
    topic_ = StrCat("crash-", unique_);
    std::replace(topic_.begin(), topic_.end(), '_', '-');
#ifdef HERALD_CRASH_POSTGRES
    pg_ctl_ = Env("HERALD_TEST_PG_CTL");
    ASSERT_FALSE(Env("HERALD_TEST_PG_DSN").empty()) << "HERALD_TEST_PG_DSN is not set: run `make test`";
    ASSERT_FALSE(pg_ctl_.empty()) << "HERALD_TEST_PG_CTL is not set (scripts/pg-ctl.sh)";
    postgres::PostgresOptions options;
    options.conninfo = Env("HERALD_TEST_PG_DSN");
    options.schema = unique_;  // a fresh schema: the store creates its tables
    auto store = Store::Open(options);
#else
    sqlite::SqliteOptions options;
    options.path = (dir_ / "outbox.db").string();
    options.busy_timeout = absl::Seconds(30);
    auto store = Store::Open(options);
#endif
    ASSERT_THAT(store, IsOk());
    store_ = *std::move(store);
  }
  void TearDown() override {
#ifdef HERALD_CRASH_POSTGRES
    if (store_ != nullptr && !HasFailure()) {
      auto tx = store_->BeginTransaction();
      if (tx.ok()) {
        PQclear(PQexec((*tx)->conn(), StrCat("DROP SCHEMA \"", unique_, "\" CASCADE").c_str()));
        (void)(*tx)->Commit();
      }
    }
#endif
    store_.reset();
    if (HasFailure()) {
      std::printf("kept for inspection: %s (relay.log, servers.log)\n", dir_.c_str());
    } else {
      std::filesystem::remove_all(dir_);
    }
  }

  std::vector<std::string> RelayArgs() const {
    std::vector<std::string> args = {HERALD_CLI_PATH, "relay"};
#ifdef HERALD_CRASH_POSTGRES
    args.insert(args.end(),
                {"--postgres", "--postgres-env", "HERALD_TEST_PG_DSN", "--schema", unique_, "--poll", "100ms"});
#else
    // Rows committed by another process are found by polling (docs/outbox.md).
    args.insert(args.end(), {"--sqlite", (dir_ / "outbox.db").string(), "--poll", "20ms"});
#endif
    args.insert(args.end(),
                {"--kafka", brokers_, "--batch", StrCat(kBatch), "--key-from", "crash.go=/k", "--report-every", "1h"});
    return args;
  }

  // The seed's Go INSERT, in the caller's transaction.
  absl::Status InsertLikeGo(StoreTransaction& tx, const std::string& envelope) {
#ifdef HERALD_CRASH_POSTGRES
    std::string sql =
        StrCat("INSERT INTO \"", unique_, "\".outbox (event_type, topic, event_payload) VALUES ($1, $2, $3)");
    const char* values[3] = {"crash.go", topic_.c_str(), envelope.c_str()};
    PGresult* r = PQexecParams(tx.conn(), sql.c_str(), 3, nullptr, values, nullptr, nullptr, 0);
    absl::Status s = PQresultStatus(r) == PGRES_COMMAND_OK
                         ? absl::OkStatus()
                         : absl::UnavailableError(StrCat("go-style insert: ", PQerrorMessage(tx.conn())));
    PQclear(r);
    return s;
#else
    sqlite3_stmt* stmt = nullptr;
    const char* sql = "INSERT INTO herald_outbox (event_type, topic, event_payload) VALUES ('crash.go', ?1, ?2)";
    if (sqlite3_prepare_v2(tx.db(), sql, -1, &stmt, nullptr) != SQLITE_OK) {
      return absl::UnavailableError(StrCat("go-style insert: ", sqlite3_errmsg(tx.db())));
    }
    sqlite3_bind_text(stmt, 1, topic_.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, envelope.c_str(), static_cast<int>(envelope.size()), SQLITE_TRANSIENT);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? absl::OkStatus()
                             : absl::UnavailableError(StrCat("go-style insert: ", sqlite3_errmsg(tx.db())));
#endif
  }

  // After a COMMIT whose outcome is unknown (the database restarting): was
  // the transaction whose first event is `e` committed? Its rows are in the
  // table, or already relayed and purged (then the reader has seen it).
  absl::StatusOr<bool> WasCommitted(const Event& e, TopicReader& reader) {
#ifdef HERALD_CRASH_POSTGRES
    HERALD_ASSIGN_OR_RETURN(auto tx, store_->BeginTransaction());
    std::string sql =
        StrCat("SELECT count(*) FROM \"", unique_, "\".outbox WHERE event_id = $1 OR event_payload LIKE $2");
    std::string like = StrCat("%\"id\":\"", e.id, "\"%");
    const char* values[2] = {e.id.c_str(), like.c_str()};
    PGresult* r = PQexecParams(tx->conn(), sql.c_str(), 2, nullptr, values, nullptr, nullptr, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    bool in_table = ok && std::atoi(PQgetvalue(r, 0, 0)) > 0;
    PQclear(r);
    if (!ok) return absl::UnavailableError("existence check failed");
    if (in_table) return true;
    // Not in the table: relayed and purged, or never committed. A relayed
    // row reaches the reader within moments.
    for (int i = 0; i < 40 && !reader.Seen(e.id); ++i) absl::SleepFor(absl::Milliseconds(50));
    return reader.Seen(e.id);
#else
    (void)reader;
    (void)e;
    return false;  // a failed SQLite COMMIT is rolled back
#endif
  }

  void Write(int writer, TopicReader& reader) {
    std::mt19937 rng(writer + 1);
    std::vector<std::string> keys;
    for (int k = writer; k < kKeys; k += kWriters) keys.push_back(KeyName(k));
    std::map<std::string, int64_t> next;
    while (true) {
      int64_t total = events_.load();
      if ((total >= kMinEvents && done_killing_.load()) || total >= kMaxEvents || abort_.load()) break;
      double elapsed = absl::ToDoubleSeconds(absl::Now() - start_);
      // Past kMinEvents, write only to keep rows pending while the kills go
      // on: every kill should land on a relay with work to do.
      bool enough = total >= kMinEvents && total - reader.distinct() >= kBacklog;
      if (enough || static_cast<double>(total) > elapsed * kEventsPerSecond) {
        absl::SleepFor(absl::Milliseconds(2));
        continue;
      }
      std::vector<Event> batch;
      int size = 1 + static_cast<int>(rng() % 16);
      for (int i = 0; i < size; ++i) {
        Event e;
        e.key = keys[rng() % keys.size()];
        e.n = next[e.key]++;
        e.go = rng() % 4 == 0;
        absl::Time now = absl::Now();
        e.id = NewUuidV7(now);
        e.payload = e.go ? GoEnvelope(e.id, "crash.go", now, Payload(e.key, e.n)) : Payload(e.key, e.n);
        batch.push_back(std::move(e));
      }
      absl::Time give_up = absl::Now() + absl::Seconds(90);
      while (true) {
        if (absl::Now() > give_up) {
          Fail(StrCat("writer ", writer, " could not commit for 90 s"));
          return;
        }
        auto tx = store_->BeginTransaction();
        absl::Status s = tx.status();
        for (size_t i = 0; s.ok() && i < batch.size(); ++i) {
          if (batch[i].go) {
            s = InsertLikeGo(**tx, batch[i].payload);
          } else {
            Envelope e;
            e.id = batch[i].id;
            e.type = "crash.herald";
            e.topic = topic_;
            e.key = batch[i].key;
            e.time = absl::Now();
            e.payload = batch[i].payload;
            s = store_->Append(**tx, e);
          }
        }
        if (!s.ok()) {  // nothing committed: roll back, try again
          absl::SleepFor(absl::Milliseconds(50));
          continue;
        }
        s = (*tx)->Commit();
        if (s.ok()) break;
        // Unknown outcome: find out before writing the events again.
        absl::StatusOr<bool> committed = WasCommitted(batch[0], reader);
        while (!committed.ok() && absl::Now() < give_up) {
          absl::SleepFor(absl::Milliseconds(100));
          committed = WasCommitted(batch[0], reader);
        }
        if (committed.ok() && *committed) break;
        rewritten_ += static_cast<int64_t>(batch.size());
      }
      {
        MutexLock lock(mu_);
        for (const Event& e : batch) committed_[e.id] = Committed{e.key, e.n};
        go_events_ += std::count_if(batch.begin(), batch.end(), [](const Event& e) { return e.go; });
      }
      events_ += static_cast<int64_t>(batch.size());
    }
  }

  void Fail(std::string why) {
    MutexLock lock(mu_);
    if (failure_.empty()) failure_ = std::move(why);
    abort_ = true;
  }

  // Runs `ctl restart` (kafka-ctl.sh / pg-ctl.sh) on a thread; the window it
  // took is recorded.
  std::thread Restart(const std::string& ctl, const char* what) {
    return std::thread([this, ctl, what] {
      absl::Time begin = absl::Now();
      int rc = std::system(StrCat(ctl, " restart >>", (dir_ / "servers.log").string(), " 2>&1").c_str());
      absl::Time end = absl::Now();
      if (rc != 0) Fail(StrCat(what, " restart failed (", ctl, ")"));
      MutexLock lock(mu_);
      windows_.push_back({begin, end, what});
    });
  }

  std::string brokers_, kafka_ctl_, pg_ctl_, unique_, topic_;
  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  absl::Time start_;
  std::atomic<int64_t> events_{0};
  std::atomic<int64_t> rewritten_{0};
  std::atomic<bool> done_killing_{false};
  std::atomic<bool> abort_{false};
  Mutex mu_;
  std::map<std::string, Committed> committed_ ABSL_GUARDED_BY(mu_);
  int64_t go_events_ ABSL_GUARDED_BY(mu_) = 0;
  std::string failure_ ABSL_GUARDED_BY(mu_);
  std::vector<Window> windows_ ABSL_GUARDED_BY(mu_);
};

TEST_F(RelayCrashTest, KilledDaemonAndServerRestartsLoseNothingAndKeepKeyOrder) {
  ASSERT_THAT(CreateTopic(brokers_, topic_, kPartitions), IsOk());
  TopicReader reader(brokers_, topic_, kPartitions);
  ASSERT_THAT(reader.Start(), IsOk());
  const std::string log = (dir_ / "relay.log").string();
  start_ = absl::Now();

  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) writers.emplace_back([this, w, &reader] { Write(w, reader); });

  std::mt19937 rng(7);
  int kills = 0, relay_exits = 0, stalls = 0;
  absl::Duration longest_wait;
  std::vector<std::thread> restarts;
  std::atomic<int> restarts_running{0};
  auto restart = [&](const std::string& ctl, const char* what) {
    ++restarts_running;
    std::thread t = Restart(ctl, what);
    restarts.emplace_back([&restarts_running, t = std::move(t)]() mutable {
      t.join();
      --restarts_running;
    });
  };
  int kafka_restarts = 0, pg_restarts = 0;
  absl::Time last_restart_seen = absl::InfinitePast();
  while (!abort_.load()) {
    absl::StatusOr<Child> relay = Child::Spawn(RelayArgs(), log);
    ASSERT_THAT(relay, IsOk());
    absl::Time spawned = absl::Now();
    // Wait until this relay has published something: a record produced
    // after it started (the previous one is dead and reaped).
    bool progressed = false;
    while (!abort_.load()) {
      if (reader.latest_produced() > spawned) {
        progressed = true;
        break;
      }
      int status = 0;
      if (relay->Ended(&status)) {
        ++relay_exits;
        std::printf("relay exited by itself (wait status %d); restarting it. Log tail:\n%s", status,
                    Tail(log, 5).c_str());
        relay = Child::Spawn(RelayArgs(), log);
        ASSERT_THAT(relay, IsOk());
      }
      if (restarts_running.load() > 0) last_restart_seen = absl::Now();
      absl::Duration limit =
          absl::Now() - last_restart_seen < absl::Seconds(30) ? kStallLimitDuringRestart : kStallLimit;
      if (absl::Now() - spawned > limit) break;
      absl::SleepFor(absl::Milliseconds(10));
    }
    longest_wait = std::max(longest_wait, absl::Now() - spawned);
    if (!progressed) {
      ++stalls;
      relay->KillAndReap(SIGKILL);
      std::printf("relay %d: no progress for %s after start; log tail:\n%s", kills,
                  absl::FormatDuration(absl::Now() - spawned).c_str(), Tail(log, 10).c_str());
      break;
    }
    // A random point in the stream.
    absl::SleepFor(absl::Milliseconds(static_cast<int>(rng() % 1000)));
    relay->KillAndReap(SIGKILL);
    ++kills;
    if (kills == 4) {
      restart(kafka_ctl_, "kafka");
      ++kafka_restarts;
    }
#ifdef HERALD_CRASH_POSTGRES
    if (kills == 12) {
      restart(pg_ctl_, "postgres");
      ++pg_restarts;
    }
#endif
    if (kills >= kMinKills && events_.load() >= kMinEvents && restarts_running.load() == 0) break;
  }
  done_killing_ = true;
  for (std::thread& t : writers) t.join();
  for (std::thread& t : restarts) t.join();
  absl::Time writes_done = absl::Now();
  const int64_t backlog_at_writes_done = -reader.distinct();
  int64_t committed_count = 0;
  {
    MutexLock lock(mu_);
    committed_count = static_cast<int64_t>(committed_.size());
  }

  // A last relay delivers what is left, then stops on SIGTERM.
  const int64_t backlog = backlog_at_writes_done + committed_count;
  absl::StatusOr<Child> relay = Child::Spawn(RelayArgs(), log);
  ASSERT_THAT(relay, IsOk());
  absl::Time drain_deadline = absl::Now() + absl::Seconds(180);
  while (reader.distinct() < committed_count && absl::Now() < drain_deadline) {
    int status = 0;
    if (relay->Ended(&status)) {
      ++relay_exits;
      relay = Child::Spawn(RelayArgs(), log);
      ASSERT_THAT(relay, IsOk());
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  absl::Duration drain_time = absl::Now() - writes_done;
  relay->Terminate(absl::Seconds(30));
  EXPECT_THAT(reader.CatchUp(absl::Seconds(60)), IsOk());
  reader.Stop();
  absl::Duration wall = absl::Now() - start_;

  MutexLock lock(mu_);
  RelayCount c = CountRelayRun(reader.Deliveries(), committed_, windows_);
  const int disruptions = kafka_restarts + pg_restarts + relay_exits;
  const int64_t bound = static_cast<int64_t>(kills + disruptions + 1) * kBatch + rewritten_.load();
  auto ms = [](absl::Duration d) { return absl::FormatDuration(absl::Trunc(d, absl::Milliseconds(1))); };
  std::string restarts_text = StrCat(kafka_restarts, " broker restart");
  if (pg_restarts > 0) StrAppend(&restarts_text, " + ", pg_restarts, " PostgreSQL restart");
  for (size_t i = 0; i < windows_.size(); ++i) {
    StrAppend(&restarts_text, i == 0 ? " (" : ", ", windows_[i].name, " down ", ms(windows_[i].end - windows_[i].begin),
              ", delivering again ", ms(c.recovery[i]), " later", i + 1 == windows_.size() ? ")" : "");
  }
  std::printf(
      "%s\n",
      StrCat("[crash relay ", kStoreName, "] herald relay daemon, ", kStoreName, " to Kafka: ", committed_count,
             " events (", go_events_, " go-style) on ", kKeys, " keys, ", kills, " SIGKILLs, ", restarts_text, ", ",
             relay_exits, " relay exits; lost ", c.lost, ", order violations ", c.order_violations, ", duplicates ",
             c.duplicates, " (bound ", bound, "), unexpected ", c.unexpected, ", rewritten after unknown commit ",
             rewritten_.load(), "; longest gap ", ms(c.longest_gap), " (", ms(c.longest_excluded_gap),
             " across a restart); writes ", ms(writes_done - start_), ", then ", backlog, " drained in ",
             ms(drain_time), "; wall ", absl::FormatDuration(absl::Trunc(wall, absl::Seconds(1))))
          .c_str());
  std::fflush(stdout);

  EXPECT_TRUE(failure_.empty()) << failure_;
  EXPECT_EQ(stalls, 0) << "a restarted relay relayed nothing for " << absl::FormatDuration(kStallLimit)
                       << " (see the relay log tail above)";
  EXPECT_GE(kills, kMinKills);
  EXPECT_GE(committed_count, kMinEvents);
  EXPECT_EQ(c.lost, 0) << c.first_problem;
  EXPECT_EQ(c.unexpected, 0) << c.first_problem;
  EXPECT_EQ(c.key_mismatches, 0) << c.first_problem;
  EXPECT_EQ(c.order_violations, 0) << c.first_problem;
  EXPECT_LE(c.duplicates, bound) << "at most one batch again per kill or disruption";
  EXPECT_LE(c.longest_gap, kMaxGap) << "the relay must keep relaying between kills (takeover from a dead holder)";
  if (HasFailure()) std::printf("relay log tail:\n%s", Tail(log, 20).c_str());
}

}  // namespace
}  // namespace herald::crash
