#!/usr/bin/env python3
"""Draws the scaling charts of a benchmark run with gnuplot (SVG).

    bench/charts.py build/bench/results.jsonl docs/

Reads kafka_bench's and bench/peers' JSON lines and writes
  bench-publish-vs-record-size.svg   publish events/s against record size
  bench-consume-vs-partitions.svg    consume events/s against partitions
                                     (at the smallest record size measured)
  bench-consume-vs-processes.svg     consume events/s against consumer
                                     processes in one group (6 partitions)
  bench-latency-vs-load.svg          commit-to-handler p50/p99 through Kafka
                                     against offered load, per store
  bench-rss.svg                      RSS of the relay and consumer processes
                                     against events done
  bench-relay-vs-shards.svg          relay events/s against relay shards
                                     (relay_bench, PostgreSQL, retention 0)
Each point is the median over the rounds, with min..max as error bars; the
y axis is logarithmic. Needs gnuplot (scripts/install-deps.sh --bench).
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from table import is_spread, objects  # noqa: E402


def series(objs, bench, x_key, figures, where=None):
    """{figure: [(x, median, min, max)]} sorted by x."""
    out = {f: [] for f in figures}
    for o in objs:
        if o.get("bench") != bench or (where and not where(o)):
            continue
        for f in figures:
            v = o.get(f)
            # A median of 0 is a run that measured nothing (--only_consume
            # prints the publish lines empty) or failed: no point on a log axis.
            if is_spread(v) and v["median"] > 0:
                out[f].append((o[x_key], v["median"], v["min"], v["max"]))
    return {f: sorted(p) for f, p in out.items() if p}


def plot(data, title, xlabel, output, logx, workdir):
    if not data:
        print(f"charts: nothing to draw for {output}", file=sys.stderr)
        return False
    plots = []
    for i, (name, points) in enumerate(data.items()):
        path = os.path.join(workdir, f"{os.path.basename(output)}.{i}.dat")
        with open(path, "w", encoding="utf-8") as f:
            for x, med, lo, hi in points:
                f.write(f"{x} {med} {lo} {hi}\n")
        label = name.replace("_per_s", "").replace("_", " ")
        plots.append(f"'{path}' using 1:2:3:4 with yerrorlines title '{label}'")
    script = "\n".join([
        "set terminal svg size 800,480 dynamic enhanced font 'sans,11' background rgb 'white'",
        f"set output '{output}'",
        f"set title '{title}'",
        f"set xlabel '{xlabel}'",
        "set ylabel 'events/s (median, min..max over rounds)'",
        "set logscale y",
        "set format y '%.0s %c'",
        "set logscale x 10\nset format x '%.0s %cB'" if logx else "set xtics 1",
        "set grid",
        "set key below",
        "plot " + ", ".join(plots),
    ])
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    print(f"charts: wrote {output}", file=sys.stderr)
    return True


def plot_lines(data, title, xlabel, ylabel, output, logx, logy, workdir, settings=()):
    """data: {label: [(x, y)]}, drawn as lines with points; `settings`: more
    gnuplot set commands (axes, ranges)."""
    data = {k: v for k, v in data.items() if v}
    if not data:
        print(f"charts: nothing to draw for {output}", file=sys.stderr)
        return False
    plots = []
    for i, (name, points) in enumerate(data.items()):
        path = os.path.join(workdir, f"{os.path.basename(output)}.{i}.dat")
        with open(path, "w", encoding="utf-8") as f:
            for x, y in sorted(points):
                f.write(f"{x} {y}\n")
        plots.append(f"'{path}' using 1:2 with linespoints title '{name}'")
    script = "\n".join([
        "set terminal svg size 800,480 dynamic enhanced font 'sans,11' background rgb 'white'",
        f"set output '{output}'",
        f"set title '{title}'",
        f"set xlabel '{xlabel}'",
        f"set ylabel '{ylabel}'",
        "set logscale x" if logx else "",
        "set logscale y" if logy else "",
        *settings,
        "set grid",
        "set key below",
        "plot " + ", ".join(plots),
    ])
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    print(f"charts: wrote {output}", file=sys.stderr)
    return True


def latency_series(objs):
    """{"<store> p50": [(offered, ms)], ...} from kafka_latency_load lines."""
    out = {}
    for o in objs:
        if o.get("bench") != "kafka_latency_load":
            continue
        for p in ("p50_ms", "p99_ms"):
            out.setdefault(f"{o.get('store')} {p[:-3]}", []).append((o["offered_per_s"], o[p]))
    return out


def rss_series(objs):
    """{"<role> (<store>)": [(events, MiB)]} from rss lines."""
    out = {}
    for o in objs:
        if o.get("bench") == "rss":
            out[f"{o.get('role')} ({o.get('store')})"] = [tuple(p) for p in o.get("curve", [])]
    return out


def relay_shard_series(objs):
    """{label: [(shards, events/s)]} from relay_bench's PostgreSQL lines with
    retention 0: the relay to Kafka and to the in-process bus per number of
    distinct keys (a key's rows go one acknowledgement at a time), and the bare
    claim-and-mark loop (one loop, nothing published) measured in the same
    runs, as the store's limit. Several lines for one point: their median."""
    points = {}
    for o in objs:
        if o.get("benchmark") != "relay" or o.get("store") != "postgres" or o.get("retention_s", 0) != 0:
            continue
        shards = o.get("shards", 1)
        bus = o.get("bus", "inmemory")
        target = "Kafka" if bus == "kafka" else "in-process bus"
        keys = o.get("keys", 64)
        points.setdefault(f"relay to {target}, {keys} keys", {}).setdefault(shards, []).append(
            o["relay_events_per_s"])
        if bus == "kafka":
            points.setdefault("bare claim-and-mark loop (one, nothing published)", {}).setdefault(
                shards, []).append(o["baseline_claim_mark_events_per_s"])
    return {label: [(x, statistics.median(ys)) for x, ys in by_x.items()] for label, by_x in points.items()}


def main():
    results = sys.argv[1] if len(sys.argv) > 1 else "build/bench/results.jsonl"
    outdir = sys.argv[2] if len(sys.argv) > 2 else "docs"
    if shutil.which("gnuplot") is None:
        print("charts: gnuplot is missing (scripts/install-deps.sh --bench): no charts", file=sys.stderr)
        return 0
    with open(results, encoding="utf-8") as f:
        objs = list(objects(f.read()))
    with tempfile.TemporaryDirectory() as work:
        publish = series(objs, "kafka_publish", "message_bytes",
                         ["raw_prebuilt_per_s", "raw_hand_work_per_s", "herald_async_per_s", "herald_blocking_per_s"])
        publish.update(series(objs, "peer_kafka_publish", "message_bytes",
                              ["watermill_sync_per_s", "watermill_concurrent_per_s"]))
        plot(publish, "Kafka publish, acks=all, idempotent: throughput against record size", "record size (bytes)",
             os.path.join(outdir, "bench-publish-vs-record-size.svg"), True, work)
        sizes = [o["message_bytes"] for o in objs if o.get("bench") == "kafka_consume"]
        if sizes:
            smallest = min(sizes)
            same = lambda o: o.get("message_bytes") == smallest  # noqa: E731
            consume = series(objs, "kafka_consume", "partitions",
                             ["raw_touch_nothing_per_s", "raw_parse_at_least_once_per_s", "herald_typed_per_s"], same)
            consume.update(series(objs, "peer_kafka_consume", "partitions", ["watermill_per_s"], same))
            plot(consume, f"Kafka consume ({smallest} B records): throughput against partitions", "partitions",
                 os.path.join(outdir, "bench-consume-vs-partitions.svg"), False, work)
        procs = series(objs, "kafka_consume_processes", "processes",
                       ["raw_parse_at_least_once_per_s", "herald_typed_per_s"])
        if procs:
            size = min(o["message_bytes"] for o in objs if o.get("bench") == "kafka_consume_processes")
            plot(procs, f"Kafka consume ({size} B records, 6 partitions): throughput against consumer processes",
                 "consumer processes in one group", os.path.join(outdir, "bench-consume-vs-processes.svg"), False,
                 work)
        else:
            print("charts: nothing to draw for bench-consume-vs-processes.svg", file=sys.stderr)
        plot_lines(latency_series(objs), "Commit to handler through Kafka, relay wake-up on: latency against load",
                   "offered load (events/s)", "latency (ms)", os.path.join(outdir, "bench-latency-vs-load.svg"),
                   True, True, work)
        plot_lines(relay_shard_series(objs), "Outbox relay from PostgreSQL (retention 0): throughput against shards",
                   "relay shards (relays in one process)", "events/s", os.path.join(outdir, "bench-relay-vs-shards.svg"),
                   False, False, work, ("set xtics 1", "set yrange [0:*]", "set format y '%.0s %c'"))
        plot_lines(rss_series(objs), "Resident memory over a long run (one process each)", "events done",
                   "RSS (MiB)", os.path.join(outdir, "bench-rss.svg"), False, False, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
