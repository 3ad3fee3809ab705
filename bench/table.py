#!/usr/bin/env python3
"""Prints one table of every figure and ratio in a benchmark results file.

    bench/table.py build/bench/results.jsonl

The file holds the JSON objects herald's benchmarks and bench/peers print
(one per line, or spread over lines). A figure measured over rounds is
{"min","median","max","rounds"}; the table shows min / median / max. After
the benchmarks' own rows come herald-vs-Watermill ratios of medians, taken
from objects of the same run (herald's figure over Watermill's).
"""
import json
import sys

FIGURE_HINTS = ("per_s", "per_second", "ratio", "_us", "_ms", "_mib")
CONTEXT_KEYS = ("message_bytes", "partitions", "processes", "store", "events", "synchronous_commit", "role",
                "offered_per_s", "bus", "shards", "keys", "retention_s", "writers")


def objects(text):
    decoder = json.JSONDecoder()
    i = 0
    while True:
        while i < len(text) and text[i] not in "{":
            i += 1
        if i >= len(text):
            return
        try:
            obj, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            i += 1
            continue
        if isinstance(obj, dict):
            yield obj


def is_spread(v):
    return isinstance(v, dict) and {"min", "median", "max"} <= v.keys()


def fmt(x):
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def rows(obj):
    name = obj.get("bench") or obj.get("benchmark") or "?"
    context = " ".join(f"{k}={obj[k]}" for k in CONTEXT_KEYS if k in obj and not isinstance(obj[k], dict))

    def walk(prefix, v):
        if is_spread(v):
            yield prefix, fmt(v["min"]), fmt(v["median"]), fmt(v["max"])
        elif isinstance(v, dict):
            for k, w in v.items():
                yield from walk(f"{prefix}.{k}" if prefix else k, w)
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and any(h in prefix for h in FIGURE_HINTS):
            yield prefix, "", fmt(v), ""

    for key, value in obj.items():
        if key in CONTEXT_KEYS or key in ("bench", "benchmark"):
            continue
        for label, lo, mid, hi in walk(key, value):
            yield name, context, label, lo, mid, hi


def median(v):
    return v["median"] if is_spread(v) else v


def cross_ratios(objs):
    """herald / Watermill, medians of the same run."""
    by = {}
    for o in objs:
        b = o.get("bench") or o.get("benchmark")
        by.setdefault(b, []).append(o)
    out = []

    def add(label, herald, peer):
        if herald and peer:
            out.append(("herald_vs_watermill", "", label, "", fmt(herald / peer), ""))

    for h in by.get("inmemory_bus_throughput", []):
        for p in by.get("peer_gochannel", []):
            add("inmemory bus (metrics off) / GoChannel", median(h["herald_metrics_off_per_s"]),
                median(p["watermill_gochannel_per_s"]))
    for h in by.get("kafka_publish", []):
        for p in by.get("peer_kafka_publish", []):
            if p.get("message_bytes") == h.get("message_bytes"):
                size = h["message_bytes"]
                add(f"publish {size} B: PublishAsync / watermill sync publisher",
                    median(h["herald_async_per_s"]), median(p["watermill_sync_per_s"]))
                add(f"publish {size} B: PublishAsync / watermill {p.get('goroutines')} goroutines",
                    median(h["herald_async_per_s"]), median(p["watermill_concurrent_per_s"]))
                add(f"publish {size} B: blocking Publish {h.get('publish_threads')} threads / watermill "
                    f"{p.get('goroutines')} goroutines",
                    median(h["herald_blocking_per_s"]), median(p["watermill_concurrent_per_s"]))
    for h in by.get("kafka_consume", []):
        for p in by.get("peer_kafka_consume", []):
            if (p.get("message_bytes"), p.get("partitions")) == (h.get("message_bytes"), h.get("partitions")):
                add(f"consume {h['message_bytes']} B, {h['partitions']} partitions: Subscribe<T> / watermill",
                    median(h["herald_typed_per_s"]), median(p["watermill_per_s"]))
    # Watermill's forwarder publishes to Kafka: compare herald's relay to
    # Kafka (one relay, rows deleted as marked), else to the in-process bus.
    relays = [h for h in by.get("relay", []) if h.get("store") == "postgres" and h.get("shards", 1) == 1
              and h.get("retention_s", 0) == 0]
    to_kafka = [h for h in relays if h.get("bus") == "kafka"]
    for h in to_kafka or relays:
        for p in by.get("peer_sql_forwarder", []):
            bus = "Kafka" if h.get("bus") == "kafka" else "the in-process bus"
            add(f"outbox relay PostgreSQL (relay_bench, to {bus}) / watermill SQL forwarder to Kafka",
                h.get("relay_events_per_s"), median(p["watermill_sql_forwarder_per_s"]))
    return out


def relay_shard_ratios(objs):
    """relay_bench: events/s of N relay shards over one relay, same store, bus and retention."""
    relays = [o for o in objs if o.get("benchmark") == "relay"]
    out = []
    for o in relays:
        if o.get("shards", 1) <= 1:
            continue
        same = [b for b in relays if b.get("shards", 1) == 1 and all(
            b.get(k) == o.get(k) for k in ("store", "bus", "retention_s", "events", "keys"))]
        if same and same[-1].get("relay_events_per_s"):
            context = f"store={o.get('store')} bus={o.get('bus')} retention_s={o.get('retention_s')} keys={o.get('keys')}"
            out.append(("relay", context, f"{o['shards']} shards / 1 shard", "",
                        fmt(o["relay_events_per_s"] / same[-1]["relay_events_per_s"]), ""))
    return out


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "build/bench/results.jsonl"
    with open(path, encoding="utf-8") as f:
        objs = list(objects(f.read()))
    # Settings objects say how a run was made; they hold no figures.
    figures = [o for o in objs if not str(o.get("bench", "")).endswith("_settings")]
    table = [r for o in figures for r in rows(o)] + relay_shard_ratios(objs) + cross_ratios(objs)
    header = ("bench", "context", "figure", "min", "median", "max")
    widths = [max(len(str(r[i])) for r in table + [header]) for i in range(len(header))]
    line = "  ".join("{:<%d}" % w for w in widths[:3]) + "  " + "  ".join("{:>%d}" % w for w in widths[3:])
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for r in table:
        print(line.format(*r))


if __name__ == "__main__":
    main()
