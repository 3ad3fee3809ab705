// quickstart: the seed's customer flow on herald's embedded defaults, SQLite
// and the in-process bus, no servers.
//
//   customer-service  CustomerRepository writes a customer row and its
//                     customer.created event in one SQLite transaction
//                     (the transactional outbox); a failed insert leaves
//                     neither.
//   relay             OutboxRelay moves committed events to the bus, woken
//                     at once by the commit.
//   event-reader      typed handlers in one consumer group: a customer
//                     projection that fails once with a retryable error
//                     (herald retries it with backoff), and a welcome mailer
//                     made idempotent by the inbox (a redelivered event sends
//                     no second mail). A malformed row written by "another
//                     service" is dead-lettered, not dropped.
//   go-service        the seed's Go outbox Writer: a 3-column INSERT whose
//                     event_payload is the whole evt.ToJSON() envelope. The
//                     relay publishes it as the envelope it is: the handler
//                     sees the Go event's own id and timestamp.
//
// Run: make demo
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>
#include <unistd.h>
#include <string>

#include "absl/time/clock.h"
#include "common/seed_events.h"
#include "herald/core/bus.h"
#include "herald/core/relay.h"
#include "herald/core/router.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/inmemory/inmemory_transport.h"
#include "herald/sqlite/sqlite_outbox_store.h"

namespace {

std::mutex print_mu;
template <typename... Args>
void Say(const Args&... args) {
  std::lock_guard<std::mutex> lock(print_mu);
  (std::cout << ... << args) << std::endl;
}

absl::Status Exec(sqlite3* db, const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    absl::Status s = absl::InternalError(herald::StrCat(sql.substr(0, 40), "...: ", error ? error : "?"));
    sqlite3_free(error);
    return s;
  }
  return absl::OkStatus();
}

int64_t Count(sqlite3* db, const char* table) {
  sqlite3_stmt* stmt = nullptr;
  std::string sql = herald::StrCat("SELECT count(*) FROM ", table);
  sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr);
  int64_t n = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
  sqlite3_finalize(stmt);
  return n;
}

// The seed's insertCustomerWithRelations: the business row and the event
// commit together or not at all. RAII rolls back on every early return.
class CustomerRepository {
 public:
  explicit CustomerRepository(herald::sqlite::SqliteOutboxStore& store) : store_(store) {}

  absl::Status Insert(const std::string& id, const std::string& name) {
    HERALD_ASSIGN_OR_RETURN(auto tx, store_.BeginTransaction());
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(tx->db(), "INSERT INTO customers (id, name) VALUES (?, ?)", -1, &stmt, nullptr);
    sqlite3_bind_text(stmt, 1, id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name.c_str(), -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
      return absl::AlreadyExistsError(herald::StrCat("customer ", id, ": ", sqlite3_errmsg(tx->db())));
    }
    HERALD_RETURN_IF_ERROR(
        store_.Append(*tx, seed::CustomerCreated(id, seed::Details{{"name", name}}), {.source = "customer-service"}));
    return tx->Commit();
  }

 private:
  herald::sqlite::SqliteOutboxStore& store_;
};

// The event the Go service writes below, as its evt.ToJSON() marshals it.
constexpr std::string_view kGoEventId = "5b0e2f8c-3a71-4d2e-9c4b-7e1f0a2d6c93";
const absl::Time kGoEventTime = absl::FromUnixSeconds(1796033472) + absl::Nanoseconds(123456789);
constexpr std::string_view kGoEventJson =
    R"({"id":"5b0e2f8c-3a71-4d2e-9c4b-7e1f0a2d6c93","type":"customer.created",)"
    R"("timestamp":"2026-11-30T10:11:12.123456789Z","payload":{"customer_id":"cust-3","details":{"name":"Alan Turing"}}})";

// Projection of customers in the event reader; fails once for cust-2.
class OnCustomerEvent : public herald::EventHandler<seed::CustomerEvent> {
 public:
  absl::Status Handle(const seed::CustomerEvent& e, const herald::Message& m) override {
    if (e.customer_id == "cust-2" && !failed_once.exchange(true)) {
      Say("  [event-reader] ", m.envelope.type, " ", e.customer_id, ": projection store busy -> retry");
      return absl::UnavailableError("projection store busy");
    }
    Say("  [event-reader] ", m.envelope.type, " ", e.customer_id, " (", seed::Detail(e, "name"), "), id ",
        m.envelope.id, ", attempt ", m.attempt);
    handled.fetch_add(1);
    if (m.envelope.id == kGoEventId && m.envelope.time == kGoEventTime) go_event_kept.store(true);
    return absl::OkStatus();
  }
  std::atomic<int> handled{0};
  std::atomic<bool> failed_once{false};
  std::atomic<bool> go_event_kept{false};  // the Go row arrived with its own id and time
};

// Sends a welcome mail once per customer: the inbox records the event id in
// the same transaction as the mail row.
class WelcomeMailer {
 public:
  struct Seen {
    std::mutex mu;
    std::optional<herald::Envelope> first;  // kept to redeliver it on purpose
    std::atomic<int> mails{0};
    std::atomic<int> duplicates{0};
  };
  WelcomeMailer(herald::sqlite::SqliteOutboxStore& store, std::shared_ptr<Seen> seen)
      : store_(store), seen_(std::move(seen)) {}

  absl::Status operator()(const seed::CustomerEvent& e, const herald::Message& m) {
    if (e.type != seed::CustomerEvent::Type::kCreated) return absl::OkStatus();
    HERALD_ASSIGN_OR_RETURN(auto tx, store_.BeginTransaction());
    HERALD_ASSIGN_OR_RETURN(bool first, store_.MarkProcessed(*tx, "welcome-mailer", m.envelope.id));
    if (!first) {
      Say("  [welcome-mailer] ", e.customer_id, ": event ", m.envelope.id, " seen before, no second mail");
      seen_->duplicates.fetch_add(1);
      return absl::OkStatus();
    }
    HERALD_RETURN_IF_ERROR(Exec(tx->db(), herald::StrCat("INSERT INTO welcome_mails (customer_id) VALUES ('",
                                                         e.customer_id, "')")));
    HERALD_RETURN_IF_ERROR(tx->Commit());
    Say("  [welcome-mailer] mail sent to ", e.customer_id);
    seen_->mails.fetch_add(1);
    std::lock_guard<std::mutex> lock(seen_->mu);
    if (!seen_->first) seen_->first = m.envelope;
    return absl::OkStatus();
  }

 private:
  herald::sqlite::SqliteOutboxStore& store_;
  std::shared_ptr<Seen> seen_;
};

template <typename Pred>
bool WaitFor(Pred pred) {
  for (int i = 0; i < 1000 && !pred(); ++i) absl::SleepFor(absl::Milliseconds(10));
  return pred();
}

absl::Status Run(const std::string& path) {
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<herald::sqlite::SqliteOutboxStore> store,
                          herald::sqlite::SqliteOutboxStore::Open({.path = path}));
  {
    HERALD_ASSIGN_OR_RETURN(auto tx, store->BeginTransaction());
    HERALD_RETURN_IF_ERROR(Exec(tx->db(), "CREATE TABLE customers (id TEXT PRIMARY KEY, name TEXT NOT NULL);"
                                          "CREATE TABLE welcome_mails (customer_id TEXT NOT NULL);"));
    HERALD_RETURN_IF_ERROR(tx->Commit());
  }

  herald::Bus bus(std::make_unique<herald::inmemory::InMemoryTransport>(), {.source = "customer-service"});

  // The event reader's handlers, registered in one place.
  herald::SubscribeOptions policy;
  policy.retry.initial_backoff = absl::Milliseconds(50);
  OnCustomerEvent projection;
  herald::EventRouter reader(bus, "event-reader", policy);
  HERALD_RETURN_IF_ERROR(reader.Handle<seed::CustomerEvent>(projection));
  HERALD_RETURN_IF_ERROR(reader.Subscribe());
  auto mailer = std::make_shared<WelcomeMailer::Seen>();
  HERALD_RETURN_IF_ERROR(bus.Subscribe<seed::CustomerEvent>("welcome-mailer", WelcomeMailer(*store, mailer)));
  std::atomic<int> dead{0};
  HERALD_RETURN_IF_ERROR(bus.Subscribe({.group = "dlq-watch", .topics = {"customer-events.dlq"}},
                                       [&](const herald::Message& m) {
                                         Say("  [dlq] ", m.envelope.type, " from ",
                                             herald::FindHeader(m.envelope.headers, herald::kDlqGroupHeader).value_or("?"),
                                             ": ", herald::FindHeader(m.envelope.headers, herald::kDlqReasonHeader).value_or("?"));
                                         dead.fetch_add(1);
                                         return absl::OkStatus();
                                       }));
  HERALD_RETURN_IF_ERROR(bus.Start());

  herald::OutboxRelay relay(*store, bus);
  HERALD_RETURN_IF_ERROR(relay.Start());

  Say("customer-service writes customers and their events in one transaction:");
  CustomerRepository repository(*store);
  HERALD_RETURN_IF_ERROR(repository.Insert("cust-1", "Ada Lovelace"));
  Say("  [customer-service] inserted cust-1");
  HERALD_RETURN_IF_ERROR(repository.Insert("cust-2", "Grace Hopper"));
  Say("  [customer-service] inserted cust-2");
  absl::Status duplicate = repository.Insert("cust-1", "Ada again");
  Say("  [customer-service] inserting cust-1 again fails: ", duplicate.message(), " -> rolled back, no event");

  // The seed's Go service writes its event with its outbox Writer: the
  // 3-column INSERT of evt.ToJSON(), the whole envelope, in its transaction.
  {
    HERALD_ASSIGN_OR_RETURN(auto tx, store->BeginTransaction());
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(tx->db(), "INSERT INTO herald_outbox (event_type, topic, event_payload) VALUES (?, ?, ?)", -1,
                       &stmt, nullptr);
    sqlite3_bind_text(stmt, 1, "customer.created", -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, "customer-events", -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, kGoEventJson.data(), static_cast<int>(kGoEventJson.size()), SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) return absl::InternalError(herald::StrCat("go-service insert: ", sqlite3_errmsg(tx->db())));
    HERALD_RETURN_IF_ERROR(tx->Commit());
    Say("  [go-service] wrote customer.created for cust-3 as evt.ToJSON(), id ", kGoEventId);
  }

  // Another service inserts a row with three columns whose payload does not
  // match CustomerEvent.
  {
    HERALD_ASSIGN_OR_RETURN(auto tx, store->BeginTransaction());
    HERALD_RETURN_IF_ERROR(Exec(tx->db(),
                                "INSERT INTO herald_outbox (event_type, topic, event_payload) VALUES "
                                "('customer.created', 'customer-events', '{\"customer_id\": 42}')"));
    HERALD_RETURN_IF_ERROR(tx->Commit());
    Say("  [go-service] wrote a customer.created row with a numeric customer_id");
  }

  Say("relay -> bus -> event-reader (as it happens):");
  bool arrived =
      WaitFor([&] { return projection.handled.load() >= 3 && mailer->mails.load() >= 3 && dead.load() >= 2; });

  Say("the first welcomed event is delivered again (as after a consumer crash):");
  std::optional<herald::Envelope> again;
  {
    std::lock_guard<std::mutex> lock(mailer->mu);
    again = mailer->first;
  }
  if (again) HERALD_RETURN_IF_ERROR(bus.Publish(*again).status());
  arrived = arrived && WaitFor([&] { return mailer->duplicates.load() >= 1 && projection.handled.load() >= 4; });

  relay.Stop();
  HERALD_RETURN_IF_ERROR(bus.Stop(absl::Seconds(5)));

  sqlite3* db = nullptr;
  sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  int64_t customers = Count(db, "customers");
  int64_t mails = Count(db, "welcome_mails");
  sqlite3_close(db);
  herald::RelayStats stats = relay.Stats();
  Say("summary:");
  Say("  customers table: ", customers, " rows; welcome mails: ", mails);
  Say("  Go-written row relayed with its own id ", kGoEventId, ": ", projection.go_event_kept.load() ? "yes" : "NO");
  Say("  relay: published ", stats.published, ", outbox pending ", stats.outbox.pending, ", parked ",
      stats.outbox.parked);
  for (const auto& s : bus.Stats()) {
    Say("  group ", s.group, " on ", s.topics.front(), ": handled ", s.handled, ", retried ", s.retried,
        ", dead-lettered ", s.dead_lettered);
  }
  if (!arrived || customers != 2 || mails != 3 || stats.published != 4 || stats.outbox.pending != 0 ||
      !projection.go_event_kept.load()) {
    return absl::InternalError("quickstart: the flow did not end as expected (see above)");
  }
  return absl::OkStatus();
}

}  // namespace

int main() {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("herald-quickstart-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  absl::Status status = Run((dir / "customers.db").string());
  std::filesystem::remove_all(dir);
  if (!status.ok()) {
    std::cerr << "quickstart failed: " << status << std::endl;
    return 1;
  }
  std::cout << "quickstart: OK" << std::endl;
  return 0;
}
