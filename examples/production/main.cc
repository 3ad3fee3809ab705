// production: a customer service on PostgreSQL and Kafka.
//
//   - CustomerRepository writes a customer and its customer.created /
//     .updated event in one PostgreSQL transaction (the outbox).
//   - OutboxRelay publishes committed rows to Kafka (woken by LISTEN/NOTIFY).
//     Run several processes: one leads, the others stand by.
//   - The event reader, another KafkaTransport in consumer group "event-reader",
//     handles CustomerEvents with a typed handler.
//   - A poison row written by another service (a Go-style three-column
//     INSERT with a payload that does not decode) is dead-lettered to
//     <topic>.dlq with the reason, never dropped.
//
// Configuration (environment):
//   HERALD_PG_DSN or HERALD_TEST_PG_DSN             PostgreSQL conninfo
//   HERALD_KAFKA_BROKERS or HERALD_TEST_KAFKA_BROKERS  bootstrap servers
//   HERALD_SERVICE_NAME, HERALD_WRITE_TOPIC, HERALD_READ_TOPICS  (optional;
//   defaults: customer-service, customer-events-<run>, the write topic)
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <mutex>
#include <set>
#include <string>

#include "absl/time/clock.h"
#include "common/example_env.h"
#include "common/seed_events.h"
#include "herald/core/config.h"
#include "herald/core/relay.h"
#include "herald/core/status.h"
#include "herald/core/strings.h"
#include "herald/kafka/kafka_transport.h"
#include "herald/postgres/postgres_outbox_store.h"
#include "libpq-fe.h"

namespace {

std::mutex print_mu;
template <typename... Args>
void Say(const Args&... args) {
  std::lock_guard<std::mutex> lock(print_mu);
  (std::cout << ... << args) << std::endl;
}

absl::Status Exec(PGconn* conn, const char* sql, std::initializer_list<std::string> params = {}) {
  std::vector<const char*> values;
  for (const std::string& p : params) values.push_back(p.c_str());
  PGresult* r = PQexecParams(conn, sql, static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0);
  absl::Status s;
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
    s = absl::InternalError(herald::StrCat("SQL failed: ", PQresultErrorMessage(r)));
  }
  PQclear(r);
  return s;
}

class CustomerRepository {
 public:
  CustomerRepository(herald::postgres::PostgresOutboxStore& store, std::string topic)
      : store_(store), topic_(std::move(topic)) {}

  absl::Status Upsert(const seed::CustomerEvent& event) {
    HERALD_ASSIGN_OR_RETURN(auto tx, store_.BeginTransaction());
    HERALD_RETURN_IF_ERROR(Exec(tx->conn(),
                                "INSERT INTO example_customers (id, details) VALUES ($1, $2) "
                                "ON CONFLICT (id) DO UPDATE SET details = EXCLUDED.details",
                                {event.customer_id, herald::json::Encode(event.details)}));
    HERALD_RETURN_IF_ERROR(store_.Append(*tx, event, {.source = "customer-service", .topic = topic_}));
    return tx->Commit();
  }

 private:
  herald::postgres::PostgresOutboxStore& store_;
  std::string topic_;
};

absl::Status Run() {
  HERALD_ASSIGN_OR_RETURN(std::string dsn, example::FromEnv({"HERALD_PG_DSN", "HERALD_TEST_PG_DSN"}, "PostgreSQL"));
  HERALD_ASSIGN_OR_RETURN(std::string brokers,
                          example::FromEnv({"HERALD_KAFKA_BROKERS", "HERALD_TEST_KAFKA_BROKERS"}, "Kafka"));
  std::string run = herald::StrCat(getpid(), "-", absl::ToUnixSeconds(absl::Now()));
  std::map<std::string, std::string> settings = {{"HERALD_SERVICE_NAME", "customer-service"},
                                                 {"HERALD_WRITE_TOPIC", herald::StrCat("customer-events-", run)}};
  for (const char* key : {"HERALD_SERVICE_NAME", "HERALD_WRITE_TOPIC", "HERALD_READ_TOPICS"}) {
    if (const char* v = std::getenv(key)) settings[key] = v;
  }
  if (!settings.count("HERALD_READ_TOPICS")) settings["HERALD_READ_TOPICS"] = settings["HERALD_WRITE_TOPIC"];
  HERALD_ASSIGN_OR_RETURN(herald::ServiceConfig config, herald::ServiceConfig::FromMap(settings));
  Say("service ", config.service_name, " writes ", config.write_topic, ", reads ", config.read_topics.front());

  herald::postgres::PostgresOptions store_options;
  store_options.conninfo = dsn;
  store_options.schema = "customer_service";
  HERALD_ASSIGN_OR_RETURN(auto store, herald::postgres::PostgresOutboxStore::Open(store_options));
  {
    HERALD_ASSIGN_OR_RETURN(auto tx, store->BeginTransaction());
    HERALD_RETURN_IF_ERROR(
        Exec(tx->conn(), "CREATE TABLE IF NOT EXISTS example_customers (id TEXT PRIMARY KEY, details TEXT NOT NULL)"));
    HERALD_RETURN_IF_ERROR(tx->Commit());
  }

  herald::kafka::KafkaTransportOptions producer_options;
  producer_options.brokers = brokers;
  producer_options.client_id = config.service_name;
  HERALD_ASSIGN_OR_RETURN(auto publisher_transport, herald::kafka::KafkaTransport::Create(producer_options));
  herald::Bus publisher(std::move(publisher_transport));
  herald::OutboxRelay relay(*store, publisher);
  HERALD_RETURN_IF_ERROR(relay.Start());

  // The event reader: its own bus (in production, its own process).
  herald::kafka::KafkaTransportOptions consumer_options = producer_options;
  consumer_options.client_id = "event-reader";
  HERALD_ASSIGN_OR_RETURN(auto reader_bus_transport, herald::kafka::KafkaTransport::Create(consumer_options));
  herald::Bus reader_bus(std::move(reader_bus_transport));
  std::mutex mu;
  std::set<std::string> seen;
  herald::SubscribeOptions policy;
  policy.topics = config.read_topics;
  policy.retry.initial_backoff = absl::Milliseconds(200);
  HERALD_RETURN_IF_ERROR(reader_bus.Subscribe<seed::CustomerEvent>(
      "event-reader",
      [&](const seed::CustomerEvent& e, const herald::Message& m) {
        Say("  [event-reader] ", m.envelope.type, " ", e.customer_id, " (", seed::Detail(e, "name"), ") from ", m.topic, "/",
            m.partition, "@", m.offset);
        std::lock_guard<std::mutex> lock(mu);
        seen.insert(m.envelope.id);
        return absl::OkStatus();
      },
      policy));
  std::atomic<int> dead{0};
  HERALD_RETURN_IF_ERROR(reader_bus.Subscribe(
      {.group = "dlq-watch", .topics = {config.read_topics.front() + ".dlq"}}, [&](const herald::Message& m) {
        Say("  [dlq-watch] ", m.envelope.type, ": ",
            herald::FindHeader(m.envelope.headers, herald::kDlqReasonHeader).value_or("?"));
        dead.fetch_add(1);
        return absl::OkStatus();
      }));
  HERALD_RETURN_IF_ERROR(reader_bus.Start());

  CustomerRepository repository(*store, config.write_topic);
  Say("customer-service commits customers with their events:");
  const std::vector<seed::CustomerEvent> events = {
      seed::CustomerCreated("cust-1", seed::Details{{"name", "Ada Lovelace"}}),
      seed::CustomerCreated("cust-2", seed::Details{{"name", "Grace Hopper"}}),
      seed::CustomerUpdated("cust-1", seed::Details{{"name", "Ada King, Countess of Lovelace"}}),
      seed::CustomerCreated("cust-3", seed::Details{{"name", "Edsger"}})};
  for (const auto& e : events) HERALD_RETURN_IF_ERROR(repository.Upsert(e));
  // A poison row from another service.
  {
    HERALD_ASSIGN_OR_RETURN(auto tx, store->BeginTransaction());
    HERALD_RETURN_IF_ERROR(Exec(tx->conn(),
                                "INSERT INTO customer_service.outbox (event_type, topic, event_payload) "
                                "VALUES ('customer.created', $1, '{\"customer_id\": [1, 2]}')",
                                {config.write_topic}));
    HERALD_RETURN_IF_ERROR(tx->Commit());
  }
  Say("  committed ", events.size(), " events and one poison row; relaying through Kafka...");

  absl::Time deadline = absl::Now() + absl::Seconds(90);
  while (absl::Now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (seen.size() >= events.size() && dead.load() >= 1) break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  herald::RelayStats stats = relay.Stats();
  relay.Stop();
  absl::Status stopped = reader_bus.Stop(absl::Seconds(10));
  HERALD_RETURN_IF_ERROR(publisher.Stop(absl::Seconds(10)));
  Say("relay: published ", stats.published, ", pending ", stats.outbox.pending, ", lag ",
      absl::FormatDuration(stats.outbox.oldest_pending_age));
  std::lock_guard<std::mutex> lock(mu);
  if (seen.size() < events.size() || dead.load() < 1) {
    return absl::DeadlineExceededError(herald::StrCat("production: ", seen.size(), "/", events.size(),
                                                      " events and ", dead.load(), " dead letters after 90 s"));
  }
  return stopped;
}

}  // namespace

int main() {
  absl::Status status = Run();
  if (!status.ok()) {
    std::cerr << "production example failed: " << status << std::endl;
    return 1;
  }
  std::cout << "production example: OK" << std::endl;
  return 0;
}
