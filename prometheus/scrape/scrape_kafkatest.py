#!/usr/bin/env python3
"""A real Prometheus scrapes a running relay and consumer (ctest: prometheus_scrape_*kafkatest).

Starts Debian's `prometheus` on a free loopback port (temporary data dir,
scrape and rule evaluation every second, the shipped herald.rules.yml loaded)
scraping two targets:
  herald-relay     `herald relay --sqlite DB --kafka BROKERS --metrics-address`
                   (--store postgres: `--postgres`, a schema of its own in
                   HERALD_TEST_PG_DSN's database, dropped at the end)
  herald-consumer  scrape_consumer: a Bus over Kafka with BusOptions::metrics,
                   a typed Subscribe and herald::prometheus::MetricsServer
Then, asking only Prometheus' HTTP API (/api/v1/query, /rules, /alerts):
  1. N rows inserted into the outbox are relayed: published == N, pending 0,
     lag 0, the relay is the leader and its store is up;
  2. the consumer's handler prints N events, and handled == N (no retries, no
     dead letters), consumer lag 0; both targets are up;
  3. the rules loaded and evaluate without error, and no herald alert is
     active while all is well;
  4. a row the relay must park (schema_version 0) and a row created ten
     minutes ago that may not be relayed yet (available_at in an hour) show
     as parked 1, pending 1, lag of ten minutes, and make the shipped
     HeraldOutboxParkedRows and HeraldOutboxLagHigh alerts go active;
  5. SIGTERM stops the consumer and the relay with exit code 0.
Every wait is for a condition Prometheus reports, with a deadline; on failure
the logs of Prometheus, the relay and the consumer are printed. Every process
started is stopped on exit. Needs HERALD_TEST_KAFKA_BROKERS (make test's
broker), with --store postgres HERALD_TEST_PG_DSN and psql, and prometheus
(scripts/install-deps.sh --servers).
"""
import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

N = 20
RULES = ["HeraldOutboxLagHigh", "HeraldOutboxParkedRows", "HeraldDeadLetters", "HeraldConsumerLagHigh",
         "HeraldRelayNoLeader", "HeraldOutboxStoreDown", "HeraldRelayDown"]


class Failure(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


class Test:
    def __init__(self, args):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix="herald-scrape-")
        self.procs = []  # (name, Popen, log path)
        self.brokers = os.environ.get("HERALD_TEST_KAFKA_BROKERS", "")
        run = f"{os.getpid()}-{int(time.time())}"
        self.topic = f"scrape-orders-{run}"
        self.group = f"scrape-billing-{run}"
        self.db = os.path.join(self.dir, "outbox.db")
        # PostgreSQL: a schema of this run's own in HERALD_TEST_PG_DSN's database.
        self.schema = f"scrape_{os.getpid()}_{int(time.time())}"
        self.postgres = args.store == "postgres"
        self.pg_dsn = os.environ.get("HERALD_TEST_PG_DSN", "")
        if self.postgres:
            self.store_flags = ["--postgres", "--postgres-env", "HERALD_TEST_PG_DSN", "--schema", self.schema]
        else:
            self.store_flags = ["--sqlite", self.db]
        self.prometheus = None

    # ---- processes ----

    def start(self, name, argv):
        log = os.path.join(self.dir, f"{name}.log")
        with open(log, "w") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append((name, proc, log))
        return proc, log

    def check_running(self):
        for name, proc, _ in self.procs:
            if proc.poll() is not None:
                raise Failure(f"{name} exited with code {proc.returncode}")

    def stop_all(self):
        for _, proc, _ in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for _, proc, _ in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def dump_logs(self):
        for name, _, log in self.procs:
            print(f"---- {name} log (last 60 lines) ----")
            with open(log, errors="replace") as f:
                lines = f.readlines()
            sys.stdout.writelines(lines[-60:])

    # ---- waiting ----

    def wait_for(self, what, probe, timeout=30):
        """Calls probe() until it returns (True, value); fails after `timeout` s with the last value seen."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            self.check_running()
            try:
                ok, last = probe()
            except (urllib.error.URLError, ConnectionError, OSError, Failure) as e:
                ok, last = False, f"{type(e).__name__}: {e}"
            if ok:
                return last
            if time.monotonic() > deadline:
                raise Failure(f"timed out after {timeout}s waiting for {what}; last seen: {last}")
            time.sleep(0.2)

    # ---- Prometheus' HTTP API ----

    def api(self, path, **params):
        url = f"{self.prometheus}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        _, body = http_get(url)
        doc = json.loads(body)
        if doc.get("status") != "success":
            raise Failure(f"{url}: {body}")
        return doc["data"]

    def query(self, expr):
        """The instant vector `expr`, as {frozenset(labels): value}."""
        data = self.api("query", query=expr)
        if data["resultType"] != "vector":
            raise Failure(f"{expr}: a {data['resultType']}, not a vector")
        return {frozenset(r["metric"].items()): float(r["value"][1]) for r in data["result"]}

    def value(self, expr):
        """The one value of `expr`, or None while it has no sample."""
        result = self.query(expr)
        if len(result) > 1:
            raise Failure(f"{expr}: {len(result)} series, expected one: {result}")
        return next(iter(result.values()), None)

    def wait_value(self, expr, check, what, timeout=30):
        value = self.wait_for(f"{expr} {what}", lambda: (lambda v: (v is not None and check(v), v))(self.value(expr)),
                              timeout)
        print(f"prometheus: {expr} = {value:g}")
        return value

    def active_alerts(self):
        return {(a["labels"]["alertname"], a["state"]) for a in self.api("alerts")["alerts"]}

    # ---- the test ----

    def psql(self, sql):
        subprocess.run(["psql", self.pg_dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True,
                       stdout=subprocess.DEVNULL)

    def insert(self, rows):
        """Rows of (key, payload, schema_version, created, available): the times in seconds from now."""
        if self.postgres:
            def literal(text):
                return "'" + text.replace("'", "''") + "'"
            values = ", ".join(
                f"('order.placed', {literal(self.topic)}, {literal(key)}, {literal(payload)}, {version},"
                f" now() + make_interval(secs => {created}), now() + make_interval(secs => {available}))"
                for key, payload, version, created, available in rows)
            self.psql(f"INSERT INTO {self.schema}.outbox (event_type, topic, event_key, event_payload,"
                      f" schema_version, created_at, available_at) VALUES {values}")
            return
        now_us = int(time.time() * 1e6)
        with sqlite3.connect(self.db, timeout=10) as db:
            db.executemany(
                "INSERT INTO herald_outbox (event_type, topic, event_key, event_payload, schema_version,"
                " created_at, available_at) VALUES ('order.placed', ?, ?, ?, ?, ?, ?)",
                [(self.topic, key, payload, version, now_us + created * 1_000_000, now_us + available * 1_000_000)
                 for key, payload, version, created, available in rows])

    def run(self):
        if not self.brokers:
            raise Failure("HERALD_TEST_KAFKA_BROKERS is not set: start the broker (scripts/servers-up.sh kafka; "
                          "eval \"$(scripts/servers-env.sh)\")")
        prometheus_bin = shutil.which("prometheus")
        if prometheus_bin is None:
            raise Failure("prometheus not found: run scripts/install-deps.sh --servers")
        herald = self.args.herald
        if self.postgres and not self.pg_dsn:
            raise Failure("HERALD_TEST_PG_DSN is not set: start PostgreSQL (scripts/servers-up.sh pg; "
                          "eval \"$(scripts/servers-env.sh)\")")
        # Creates the outbox (herald's tables, in the run's own schema on PostgreSQL).
        subprocess.run([herald, "outbox", "stats"] + self.store_flags, check=True, stdout=subprocess.DEVNULL)

        relay_port, consumer_port, prometheus_port = free_port(), free_port(), free_port()
        config = os.path.join(self.dir, "prometheus.yml")
        with open(config, "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - {json.dumps(os.path.abspath(self.args.rules))}
scrape_configs:
  - job_name: herald-relay
    static_configs:
      - targets: ['127.0.0.1:{relay_port}']
  - job_name: herald-consumer
    static_configs:
      - targets: ['127.0.0.1:{consumer_port}']
""")
        self.start("prometheus", [prometheus_bin, f"--config.file={config}",
                                  f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
                                  f"--web.listen-address=127.0.0.1:{prometheus_port}"])
        self.prometheus = f"http://127.0.0.1:{prometheus_port}"
        self.wait_for("Prometheus /-/ready", lambda: (http_get(f"{self.prometheus}/-/ready")[0] == 200, "not ready"))

        self.start("relay", [herald, "relay"] + self.store_flags + ["--kafka", self.brokers,
                             "--metrics-address", f"127.0.0.1:{relay_port}", "--poll", "100ms"])
        self.insert([(f"o-{i}", json.dumps({"order_id": f"o-{i}", "amount_cents": 100 + i}), 1, 0, 0)
                     for i in range(N)])

        # 1. The relay, as Prometheus scraped it.
        relay = 'job="herald-relay"'
        self.wait_value(f"herald_relay_rows_published_total{{{relay}}}", lambda v: v == N, f"== {N}")
        self.wait_value(f'herald_published_total{{{relay},topic="{self.topic}"}}', lambda v: v == N, f"== {N}")
        self.wait_value(f"herald_outbox_pending_rows{{{relay}}}", lambda v: v == 0, "== 0")
        self.wait_value(f"herald_outbox_lag_seconds{{{relay}}}", lambda v: v == 0, "== 0")
        self.wait_value(f"herald_outbox_parked_rows{{{relay}}}", lambda v: v == 0, "== 0")
        self.wait_value(f"herald_outbox_up{{{relay}}}", lambda v: v == 1, "== 1")
        self.wait_value(f"herald_relay_leader{{{relay}}}", lambda v: v == 1, "== 1")

        # 2. The consumer: its handler's own count, then Prometheus'.
        _, consumer_log = self.start("consumer", [self.args.consumer, self.brokers, self.topic, self.group,
                                                  f"127.0.0.1:{consumer_port}"])

        def handled():
            with open(consumer_log) as f:
                ids = {line.split()[1] for line in f if line.startswith("handled ")}
            return len(ids) == N, f"{len(ids)} distinct events handled"
        print("consumer:", self.wait_for(f"the consumer's handler to see {N} events", handled))
        consumer = f'job="herald-consumer",topic="{self.topic}",group="{self.group}"'
        self.wait_value(f"herald_consumer_handled_total{{{consumer}}}", lambda v: v == N, f"== {N}")
        self.wait_value(f"herald_consumer_retries_total{{{consumer}}}", lambda v: v == 0, "== 0")
        self.wait_value(f"herald_consumer_dead_letters_total{{{consumer}}}", lambda v: v == 0, "== 0")
        self.wait_value(f'sum(herald_kafka_consumer_lag_records{{job="herald-consumer",topic="{self.topic}",'
                        f'group="{self.group}"}})', lambda v: v == 0, "== 0")
        for job in ("herald-relay", "herald-consumer"):
            self.wait_value(f'up{{job="{job}"}}', lambda v: v == 1, "== 1")
        print("prometheus: /api/v1/query?query=herald_consumer_handled_total answered",
              json.dumps(self.api("query", query=f"herald_consumer_handled_total{{{consumer}}}")))

        # 3. The shipped rules: loaded, every one evaluated without error, none active.
        def rules_ok():
            groups = self.api("rules", type="alert")["groups"]
            rules = {r["name"]: r for g in groups if g["name"] == "herald" for r in g["rules"]}
            healthy = sorted(name for name, r in rules.items() if r["health"] == "ok")
            return sorted(rules) == sorted(RULES) and healthy == sorted(RULES), {n: r["health"] for n, r in
                                                                                 rules.items()}
        print("prometheus: rules", self.wait_for("the herald rules to load and evaluate", rules_ok))
        active = self.active_alerts()
        if active:
            raise Failure(f"alerts active while the relay and the consumer are healthy: {sorted(active)}")

        # 4. A parked row and a pending row ten minutes old: what the alerts are for.
        self.insert([("bad", json.dumps({"order_id": "bad", "amount_cents": 0}), 0, 0, 0),
                     ("later", json.dumps({"order_id": "later", "amount_cents": 0}), 1, -600, 3600)])
        self.wait_value(f"herald_outbox_parked_rows{{{relay}}}", lambda v: v == 1, "== 1")
        self.wait_value(f"herald_relay_rows_parked_total{{{relay}}}", lambda v: v == 1, "== 1")
        self.wait_value(f"herald_outbox_pending_rows{{{relay}}}", lambda v: v == 1, "== 1")
        self.wait_value(f"herald_outbox_lag_seconds{{{relay}}}", lambda v: 600 <= v < 660, "in [600, 660)")
        want = {"HeraldOutboxParkedRows", "HeraldOutboxLagHigh"}
        alerts = self.wait_for(
            f"alerts {sorted(want)} to be active (pending: their for: is minutes)",
            lambda: (lambda a: ({name for name, _ in a} == want, a))(self.active_alerts()))
        print("prometheus: alerts", sorted(alerts))

        # SIGTERM stops the consumer and the relay cleanly (exit 0), servers included.
        for name, proc, _ in self.procs:
            if name in ("consumer", "relay"):
                proc.terminate()
                code = proc.wait(timeout=30)
                if code != 0:
                    raise Failure(f"{name} exited with code {code} on SIGTERM")
        print(f"scrape: Prometheus saw {N} rows relayed and {N} events handled; pending 0 and lag 0 after; "
              "parked and lagging rows raised the shipped alerts")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--herald", required=True, help="the herald CLI")
    parser.add_argument("--consumer", required=True, help="scrape_consumer")
    parser.add_argument("--rules", required=True, help="herald.rules.yml")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite",
                        help="the relay's outbox: a SQLite file, or PostgreSQL at HERALD_TEST_PG_DSN")
    test = Test(parser.parse_args())
    # ctest's timeout sends SIGTERM: stop what was started all the same.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("scrape test: terminated"))
    try:
        test.run()
        return 0
    except (Failure, subprocess.CalledProcessError, OSError) as e:
        print(f"FAILED: {e}")
        test.dump_logs()
        return 1
    finally:
        test.stop_all()
        if test.postgres and test.pg_dsn:
            try:
                test.psql(f"DROP SCHEMA IF EXISTS {test.schema} CASCADE")
            except (subprocess.CalledProcessError, OSError) as e:
                print(f"could not drop schema {test.schema}: {e}")
        shutil.rmtree(test.dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
