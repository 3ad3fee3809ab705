"""The CloudEvents Python SDK's side of herald's interop test (run.sh).

    peer.py create-topics --brokers B TOPIC...
    peer.py read    --brokers B --expect FILE
        reads herald's records with confluent-kafka and the SDK's Kafka binding
        (cloudevents.core.bindings.kafka.from_kafka: binary mode when ce_
        headers are present, else structured) and checks every event against
        FILE (JSON lines written by herald_ce_peer publish)
    peer.py produce --brokers B --binary-topic T --structured-topic T --n N --out FILE
        produces N binary-mode and N structured-mode CloudEvents with the SDK
        (data as JSON, bytes, text and JSON bytes; subject, dataschema,
        extensions, traceparent, partitionkey) and writes what herald must
        decode to FILE

Each command prints what it checked with counts and exits 1 on a mismatch.
"""

import argparse
import base64
import datetime
import json
import sys
import time

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from dateutil.parser import isoparse


def say(*parts):
    print("python-peer:", *parts, flush=True)


def create_topics(brokers, topics, partitions=3):
    admin = AdminClient({"bootstrap.servers": brokers})
    futures = admin.create_topics([NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics])
    for topic, future in futures.items():
        try:
            future.result(30)
        except KafkaException as e:
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise
    say(f"created {len(topics)} topics with {partitions} partitions")


def kafka_message(msg):
    # The SDK takes headers as a dict; herald writes each name once.
    headers = {}
    for name, value in msg.headers() or []:
        headers.setdefault(name, value if value is not None else b"")
    return ce_kafka.KafkaMessage(headers=headers, key=msg.key(), value=msg.value() or b"")


def consume(brokers, topics, count, group, timeout=60.0):
    consumer = Consumer({
        "bootstrap.servers": brokers,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe(topics)
    records = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            records.append(msg)
        # A duplicate or stray record shows up here.
        extra_deadline = time.monotonic() + 1.0
        while time.monotonic() < extra_deadline:
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                records.append(msg)
    finally:
        consumer.close()
    return records


def read(args):
    expected = {}
    with open(args.expect, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                x = json.loads(line)
                expected[x["id"]] = x
    topics = sorted({x["topic"] for x in expected.values()})
    records = consume(args.brokers, topics, len(expected), f"python-peer-{topics[0]}")
    problems = []
    seen = set()
    by_mode = {}
    checks = 0

    def expect(x, what, got, want):
        nonlocal checks
        checks += 1
        if got != want:
            problems.append(f"{x['mode']} {x['id']}: {what} {got!r}, want {want!r}")

    for msg in records:
        event = ce_kafka.from_kafka(kafka_message(msg), JSONFormat())
        x = expected.get(event.get_id())
        if x is None:
            problems.append(f"unexpected id {event.get_id()} on {msg.topic()}")
            continue
        if x["id"] in seen:
            problems.append(f"duplicate id {x['id']}")
        seen.add(x["id"])
        by_mode[x["mode"]] = by_mode.get(x["mode"], 0) + 1
        mode = x["mode"]
        structured = not any(n.lower().startswith("ce_") for n, _ in (msg.headers() or []))
        expect(x, "SDK content mode", "structured" if structured else "binary",
               "structured" if mode == "structured" else "binary")
        expect(x, "specversion", event.get_specversion(), "1.0")
        expect(x, "type", event.get_type(), x["type"])
        expect(x, "source", event.get_source(), x["source"])
        expect(x, "time", event.get_time(), isoparse(x["time"]))
        expect(x, "subject", event.get_subject(), x["subject"] or None)
        expect(x, "dataschema", event.get_dataschema(), x["dataschema"] or None)
        for name, value in x["extensions"].items():
            expect(x, f"extension {name}", event.get_extension(name), value)
        expect(x, "extension traceparent", event.get_extension("traceparent"), x["traceparent"])
        expect(x, "extension tracestate", event.get_extension("tracestate"), x["tracestate"] or None)
        expect(x, "partitionkey (the key)", event.get_extension("partitionkey"), x["key"])
        payload = json.loads(x["payload"]) if isinstance(x["payload"], str) else x["payload"]
        data = event.get_data()
        if mode == "envelope":
            # The default record: the SDK's data is herald's whole JSON envelope.
            expect(x, "datacontenttype", event.get_datacontenttype(), "application/json")
            expect(x, "data (the JSON envelope's members)", sorted(data) if isinstance(data, dict) else data,
                   ["id", "payload", "timestamp", "type"])
            if isinstance(data, dict):
                expect(x, "data.id", data.get("id"), x["id"])
                expect(x, "data.type", data.get("type"), x["type"])
                expect(x, "data.timestamp", isoparse(data.get("timestamp", "1970-01-01T00:00:00Z")),
                       isoparse(x["time"]))
                expect(x, "data.payload", data.get("payload"), payload)
        else:
            expect(x, "datacontenttype", event.get_datacontenttype(), x["content_type"])
            expect(x, "data (the payload)", data, payload)
    for x in expected.values():
        if x["id"] not in seen:
            problems.append(f"{x['mode']} {x['id']} did not arrive")
    if problems:
        for p in problems[:50]:
            print("  " + p, file=sys.stderr)
        say(f"FAIL: {len(problems)} problems reading herald's records")
        return 1
    modes = ", ".join(f"{m} {n}" for m, n in sorted(by_mode.items()))
    say(f"the CloudEvents SDK read {len(seen)}/{len(expected)} herald records ({modes}), {checks} checks: "
        "id, type, source, time, subject, dataschema, extensions, traceparent/tracestate, partitionkey; "
        "data = the whole JSON envelope in the default mode, the payload in binary and structured mode")
    return 0


def produce(args):
    producer = Producer({"bootstrap.servers": args.brokers, "acks": "all",
                         "partitioner": "murmur2_random"})
    fmt = JSONFormat()
    lines = []
    kinds = {}
    for mode, topic in (("binary", args.binary_topic), ("structured", args.structured_topic)):
        for i in range(args.n):
            now = datetime.datetime.now(datetime.timezone.utc)
            key = f"py-cust-{i % 5}"
            attributes = {
                "specversion": "1.0",
                "id": f"py-{mode}-{args.run}-{i}",
                "source": "/interop/python",
                "type": "customer.updated" if i % 3 else "customer.created",
                "time": now,
                "subject": f"customers/{key}",
                "region": "eu1",
                "sequence": i,  # an integer: "7" in its canonical string form
                "traceparent": f"00-{i + 1:032x}-{i + 7:016x}-01",
                "partitionkey": key,
            }
            extensions = {"region": "eu1", "sequence": str(i)}
            if i % 2 == 0:
                attributes["dataschema"] = "https://schemas.example.com/customer/v1.json"
            if i % 3 == 2:
                attributes["tracestate"] = f"py={i}"
            if mode == "structured":
                attributes["sampled"] = True  # a boolean member: "true"
                extensions["sampled"] = "true"
            kind = i % 4
            if kind == 0:  # data: a JSON object
                content_type = "application/json"
                data = {"customer_id": key, "details": {"name": f"Zoë <{i}> & co"}}
            elif kind == 1:  # data: bytes (structured mode: data_base64)
                content_type = "application/octet-stream"
                data = bytes([0, 1, 2, 255, i % 256]) + "é".encode("utf-8")
            elif kind == 2:  # data: text
                content_type = "text/plain; charset=utf-8"
                data = f"plain text Zoë {i}"
            else:  # JSON as bytes (structured: data_base64 with a JSON content type), no record key
                content_type = "application/json"
                data = json.dumps({"customer_id": key, "n": i}).encode("utf-8")
            attributes["datacontenttype"] = content_type
            event = CloudEvent(attributes=attributes, data=data)
            # kind 3 has no record key: herald takes partitionkey as its key.
            key_mapper = (lambda e: None) if kind == 3 else None
            if mode == "binary":
                message = ce_kafka.to_binary(event, fmt, key_mapper)
            else:
                message = ce_kafka.to_structured(event, fmt, key_mapper)
            if isinstance(data, dict):
                payload = json.dumps(data).encode("utf-8")  # what the SDK writes, byte for byte
            elif isinstance(data, str):
                payload = data.encode("utf-8")
            else:
                payload = data
            if mode == "binary":
                assert message.value == payload, (message.value, payload)
            producer.produce(topic, key=message.key, value=message.value, headers=list(message.headers.items()))
            kinds[(mode, kind)] = kinds.get((mode, kind), 0) + 1
            lines.append({
                "mode": mode, "topic": topic, "id": attributes["id"], "type": attributes["type"],
                "source": attributes["source"],
                "time": now.isoformat().replace("+00:00", "Z"),
                "subject": attributes["subject"], "dataschema": attributes.get("dataschema", ""),
                "key": key, "content_type": content_type,
                "traceparent": attributes["traceparent"], "tracestate": attributes.get("tracestate", ""),
                "extensions": extensions,
                "payload_base64": base64.b64encode(payload).decode("ascii"),
            })
        producer.poll(0)
    left = producer.flush(30)
    if left:
        say(f"FAIL: {left} records not delivered")
        return 1
    with open(args.out, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    names = {0: "data JSON", 1: "data bytes", 2: "data text", 3: "JSON bytes without a record key"}
    for mode in ("binary", "structured"):
        counts = ", ".join(f"{names[k]} {kinds.get((mode, k), 0)}" for k in range(4))
        say(f"the CloudEvents SDK produced {args.n} {mode}-mode records ({counts})"
            + (" (bytes as data_base64)" if mode == "structured" else ""))
    return 0


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("create-topics")
    p.add_argument("--brokers", required=True)
    p.add_argument("topics", nargs="+")
    p = sub.add_parser("read")
    p.add_argument("--brokers", required=True)
    p.add_argument("--expect", required=True)
    p = sub.add_parser("produce")
    p.add_argument("--brokers", required=True)
    p.add_argument("--binary-topic", required=True)
    p.add_argument("--structured-topic", required=True)
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--run", default=str(int(time.time())))
    p.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.command == "create-topics":
        create_topics(args.brokers, args.topics)
        return 0
    if args.command == "read":
        return read(args)
    return produce(args)


if __name__ == "__main__":
    sys.exit(main())
