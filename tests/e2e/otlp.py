"""Minimal OTLP/HTTP JSON payloads (the protobuf-JSON mapping the collector accepts) for smoke tests."""
from __future__ import annotations

import base64
import json
import secrets
import time
import urllib.request

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


def ids() -> tuple[str, str]:
    return secrets.token_hex(16), secrets.token_hex(8)


def _resource(service: str) -> dict:
    return {"attributes": [{"key": "service.name", "value": {"stringValue": service}},
                           {"key": "service.instance.id", "value": {"stringValue": "smoke-1"}}]}


def span_payload(service: str, trace_id: str, span_id: str, name: str = "smoke-span") -> dict:
    now = time.time_ns()
    return {"resourceSpans": [{"resource": _resource(service), "scopeSpans": [{
        "scope": {"name": "obs-smoke"},
        "spans": [{"traceId": trace_id, "spanId": span_id, "name": name, "kind": 2,
                   "startTimeUnixNano": str(now - 50_000_000), "endTimeUnixNano": str(now),
                   "attributes": [{"key": "http.route", "value": {"stringValue": "/smoke"}}],
                   "status": {"code": 1}}]}]}]}


def log_payload(service: str, trace_id: str, span_id: str, body: str) -> dict:
    return {"resourceLogs": [{"resource": _resource(service), "scopeLogs": [{
        "scope": {"name": "obs-smoke"},
        "logRecords": [{"timeUnixNano": str(time.time_ns()), "severityNumber": 9, "severityText": "INFO",
                        "body": {"stringValue": body}, "traceId": trace_id, "spanId": span_id}]}]}]}


def counter_payload(service: str, name: str, value: int, attrs: dict[str, str]) -> dict:
    now = time.time_ns()
    return {"resourceMetrics": [{"resource": _resource(service), "scopeMetrics": [{
        "scope": {"name": "obs-smoke"},
        "metrics": [{"name": name, "unit": "1", "sum": {
            "aggregationTemporality": 2, "isMonotonic": True,
            "dataPoints": [{"asInt": str(value), "startTimeUnixNano": str(now - 10_000_000_000),
                            "timeUnixNano": str(now),
                            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()]}]}}]}]}]}


def post(base_url: str, signal: str, payload: dict) -> int:
    req = urllib.request.Request(f"{base_url}/v1/{signal}", data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status


_IDS = ("traceId", "spanId", "parentSpanId")


def _b64_ids(node):
    """OTLP/JSON writes ids as hex; protobuf's JSON mapping wants base64 for bytes fields."""
    if isinstance(node, dict):
        return {k: base64.b64encode(bytes.fromhex(v)).decode() if k in _IDS else _b64_ids(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_b64_ids(v) for v in node]
    return node


def message(signal: str, payload: dict):
    """One of the payloads above as the OTLP protobuf request message ("logs" or "traces")."""
    cls = {"logs": ExportLogsServiceRequest, "traces": ExportTraceServiceRequest}[signal]
    return json_format.ParseDict(_b64_ids(payload), cls())
