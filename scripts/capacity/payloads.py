"""The OTLP protobuf requests the load generator sends: one SDK batch of spans, one of log records."""
from __future__ import annotations

import time

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs, SeverityNumber
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

MARK = bytes.fromhex("5ce1ab1e5ce1ab1e5ce1ab1e")   # 12 bytes replaced by random ones in every request
BATCH = 100                                          # spans or records per request (an SDK's batch)


def kv(k: str, v: str | int) -> KeyValue:
    return KeyValue(key=k, value=AnyValue(int_value=v) if isinstance(v, int) else AnyValue(string_value=v))


def resource() -> dict:
    return {"attributes": [kv("service.name", "bench-api"), kv("deployment.environment", "local"),
                           kv("service.version", "1.2.3")]}


def span_payload() -> bytes:
    """One export of BATCH spans: 20 traces of 5 spans (a server span and 4 children), HTTP attributes."""
    now = time.time_ns()
    spans = []
    for t in range(BATCH // 5):
        trace_id = MARK + t.to_bytes(4, "big")
        root = (t + 1).to_bytes(8, "big")
        for s in range(5):
            spans.append(Span(trace_id=trace_id, span_id=root if s == 0 else (t * 8 + s + 1 << 32).to_bytes(8, "big"),
                              parent_span_id=b"" if s == 0 else root, name="GET /api/items/{id}" if s == 0 else f"db.query {s}",
                              kind=Span.SPAN_KIND_SERVER if s == 0 else Span.SPAN_KIND_CLIENT,
                              start_time_unix_nano=now, end_time_unix_nano=now + 30_000_000,
                              attributes=[kv("http.request.method", "GET"), kv("http.route", "/api/items/{id}"),
                                          kv("http.response.status_code", 200), kv("server.address", "api.example"),
                                          kv("db.system", "postgresql")]))
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=resource(), scope_spans=[ScopeSpans(scope={"name": "bench"}, spans=spans)])]).SerializeToString()


def log_payload() -> bytes:
    """One export of BATCH log records of ~150 bytes each, INFO, with trace context and 4 attributes."""
    now = time.time_ns()
    recs = [LogRecord(time_unix_nano=now, observed_time_unix_nano=now, severity_number=SeverityNumber.SEVERITY_NUMBER_INFO,
                      severity_text="INFO", trace_id=MARK + i.to_bytes(4, "big"), span_id=(i + 1).to_bytes(8, "big"),
                      body=AnyValue(string_value=f"request served route=/api/items/{{id}} status=200 duration_ms={i % 90} "
                                                 f"user=u{i % 13} items=12 cache=hit region=eu-west-1 attempt=1"),
                      attributes=[kv("http.route", "/api/items/{id}"), kv("http.response.status_code", 200),
                                  kv("component", "api"), kv("request.id", f"r-{i:08d}")])
            for i in range(BATCH)]
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=resource(), scope_logs=[ScopeLogs(scope={"name": "bench"}, log_records=recs)])]).SerializeToString()
