#!/usr/bin/env python3
"""Checks every line of an OTLP JSON-lines file against the real OTLP schema:
each line must parse, with no unknown field, into
opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest through
protobuf's json_format (the protobuf JSON mapping). OTLP/JSON differs from
that mapping in one point, which is checked here too: trace and span ids are
lowercase hex (not base64), so they are decoded from hex and must be 16 and 8
bytes.

Usage: check_otlp_json.py FILE.jsonl [EXPECTED_LINES]
"""
import base64
import json
import sys

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

ID_LENGTHS = {"traceId": 16, "spanId": 8, "parentSpanId": 8}


def hex_ids_to_base64(span, where):
    for field, length in ID_LENGTHS.items():
        if field not in span:
            continue
        text = span[field]
        raw = bytes.fromhex(text)
        if len(raw) != length or text != raw.hex():
            raise ValueError(f"{where}: {field} {text!r} is not {2 * length} lowercase hex digits")
        span[field] = base64.b64encode(raw).decode()


def main():
    path = sys.argv[1]
    expected = int(sys.argv[2]) if len(sys.argv) > 2 else None
    count = 0
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            where = f"{path}:{number}"
            document = json.loads(line)
            for rs in document.get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    for span in ss.get("spans", []):
                        hex_ids_to_base64(span, where)
            request = trace_service_pb2.ExportTraceServiceRequest()
            json_format.Parse(json.dumps(document), request, ignore_unknown_fields=False)
            spans = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
            if len(spans) != 1:
                raise ValueError(f"{where}: {len(spans)} spans, want 1")
            span = spans[0]
            if span.kind not in (trace_pb2.Span.SPAN_KIND_INTERNAL, trace_pb2.Span.SPAN_KIND_PRODUCER,
                                 trace_pb2.Span.SPAN_KIND_CONSUMER):
                raise ValueError(f"{where}: kind {span.kind}")
            if not 0 < span.start_time_unix_nano <= span.end_time_unix_nano:
                raise ValueError(f"{where}: times {span.start_time_unix_nano}..{span.end_time_unix_nano}")
            names = [a.key for a in request.resource_spans[0].resource.attributes]
            if "service.name" not in names:
                raise ValueError(f"{where}: no service.name resource attribute")
            count += 1
            print(f"check_otlp_json: {where}: {span.name!r} kind={trace_pb2.Span.SpanKind.Name(span.kind)} "
                  f"trace={span.trace_id.hex()} span={span.span_id.hex()} parent={span.parent_span_id.hex() or '-'} "
                  f"status={trace_pb2.Status.StatusCode.Name(span.status.code)} attributes={len(span.attributes)}")
    if expected is not None and count != expected:
        raise ValueError(f"{path}: {count} lines, want {expected}")
    print(f"check_otlp_json: {count} lines are valid ExportTraceServiceRequest messages")


if __name__ == "__main__":
    main()
