"""The smoke assertions, shared by the native tier and the Docker tier: given where each service
answers, prove the pipeline end to end (targets up, OTLP span/log/metric found in Tempo/Loki/Prometheus).

loki_has_log and tempo_has_trace ask the real Loki and Tempo HTTP APIs (Docker tier); sink_has_log and
sink_has_trace ask the OTLP sink that stands in for them on the native stack (tests/harness/otlp_sink.py)."""
from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from typing import Callable

from tests.e2e import otlp
from tests.harness import otlp_sink
from tests.support.wait import wait_for


def get_json(url: str, timeout: float = 10) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def poll(what: str, fn: Callable[[], object], timeout: float = 60, every: float = 1.0):
    """Call fn until it returns something truthy; fail with the last value/exception after timeout."""
    return wait_for(fn, timeout, every, what)


def prom_query(prom: str, q: str) -> list:
    r = get_json(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": q}))
    assert r["status"] == "success", r
    return r["data"]["result"]


def send_signals(otlp_http: str, service: str) -> dict:
    trace_id, span_id = otlp.ids()
    smoke_id = trace_id[:12]
    assert otlp.post(otlp_http, "traces", otlp.span_payload(service, trace_id, span_id)) == 200
    assert otlp.post(otlp_http, "logs", otlp.log_payload(service, trace_id, span_id, f"smoke log {smoke_id}")) == 200
    assert otlp.post(otlp_http, "metrics", otlp.counter_payload(service, "obs_smoke_requests", 3,
                                                                 {"smoke_id": smoke_id})) == 200
    return {"trace_id": trace_id, "span_id": span_id, "smoke_id": smoke_id, "service": service}


def loki_has_log(loki: str, sent: dict) -> list:
    q = f'{{service_name="{sent["service"]}"}} | trace_id="{sent["trace_id"]}"'
    now = time.time_ns()
    r = get_json(f"{loki}/loki/api/v1/query_range?" + urllib.parse.urlencode(
        {"query": q, "start": now - 600 * 10**9, "end": now + 60 * 10**9, "limit": 10}))
    lines = [v[1] for s in r["data"]["result"] for v in s["values"]]
    return [line for line in lines if sent["smoke_id"] in line]


def prometheus_has_metric(prom: str, sent: dict) -> list:
    res = prom_query(prom, f'obs_smoke_requests_total{{smoke_id="{sent["smoke_id"]}"}}')
    return [r for r in res if float(r["value"][1]) == 3.0]


def tempo_has_trace(tempo: str, sent: dict) -> dict:
    r = get_json(f"{tempo}/api/v2/traces/{sent['trace_id']}")
    return r if "smoke-span" in json.dumps(r) else {}


def sink_has_log(sink: str, sent: dict) -> list:
    """The log record of send_signals at the sink standing in for Loki, with its trace and span ids."""
    return [r for r in otlp_sink.query(sink, "logs", trace_id=sent["trace_id"], service_name=sent["service"])
            if r["span_id"] == sent["span_id"] and sent["smoke_id"] in str(r["body"])]


def sink_has_trace(sink: str, sent: dict) -> list:
    """The span of send_signals at the sink standing in for Tempo."""
    return otlp_sink.query(sink, "spans", trace_id=sent["trace_id"], span_id=sent["span_id"],
                           service_name=sent["service"], name="smoke-span")
