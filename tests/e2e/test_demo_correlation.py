"""Issue 6 on the native stack: one request to the demo app (real collector, real Prometheus, shipped
configs) yields a log line carrying its trace id and a trace at the trace backend, and a latency metric
whose exemplars lead to traces and their logs. The log and trace backends are the OTLP sink standing in
for Loki and Tempo (tests/harness/stack.py STAND_INS): the records are what the collector delivered to
loki:3100 and tempo:4317. Finding them through LogQL and TraceQL is the Docker tier's (tests/docker)."""
from __future__ import annotations

import secrets
import time
import urllib.parse
import urllib.request

import pytest

from tests.e2e import smoke
from tests.harness import otlp_sink


@pytest.fixture(scope="module")
def demo_request(native_stack):
    if "demo-app" not in native_stack.running:
        pytest.fail(f"demo-app not running: {native_stack.skipped.get('demo-app')}")
    trace_id = secrets.token_hex(16)
    req = urllib.request.Request(native_stack.url("demo-app", 8000, "/api/items/7"),
                                 headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
    return trace_id


def logs_for_trace(stack, trace_id: str) -> list[dict]:
    return otlp_sink.query(stack.url("loki", 3100), "logs", trace_id=trace_id, service_name="obs-demo")


def spans_for_trace(stack, trace_id: str) -> list[dict]:
    return otlp_sink.query(stack.url("tempo", 3200), "spans", trace_id=trace_id, service_name="obs-demo")


def test_demo_log_line_carries_the_trace_id(native_stack, demo_request):
    recs = smoke.poll("the demo app's log line at the log backend by trace_id",
                      lambda: logs_for_trace(native_stack, demo_request), timeout=60)
    assert any(r["body"] == "GET /api/items/{item_id} 200" for r in recs), recs
    # ... and the span it names is one of the request's spans at the trace backend.
    spans = smoke.poll("the demo request's spans at the trace backend",
                       lambda: spans_for_trace(native_stack, demo_request), timeout=60)
    assert {r["span_id"] for r in recs} <= {s["span_id"] for s in spans}, (recs, spans)
    assert any(s["name"] == "GET /api/items/{item_id}" for s in spans), [s["name"] for s in spans]


def test_latency_exemplars_lead_to_traces_and_their_logs(native_stack, demo_request):
    """Exemplars on the latency histogram carry trace ids, and those ids lead to the request's trace and logs.

    client libraries keep one exemplar per bucket (the latest), and the load generator keeps writing, so
    the exemplar for one given request can be replaced before the next scrape; the test therefore
    follows whichever exemplars Prometheus stored to their traces and log lines."""
    prom = native_stack.url("prometheus", 9090)

    def exemplars():
        now = time.time()
        q = 'http_request_duration_seconds_bucket{job="demo-app"}'
        r = smoke.get_json(f"{prom}/api/v1/query_exemplars?" + urllib.parse.urlencode(
            {"query": q, "start": now - 600, "end": now + 60}))
        return [e for s in r["data"] for e in s["exemplars"] if len(e["labels"].get("trace_id", "")) == 32]

    found = smoke.poll("latency exemplars with trace ids", exemplars, timeout=60)

    def linked():
        out = []
        for e in found[-10:]:
            tid, sid = e["labels"]["trace_id"], e["labels"].get("span_id")
            spans = spans_for_trace(native_stack, tid)
            if any(s["span_id"] == sid for s in spans) and logs_for_trace(native_stack, tid):
                out.append(e)
        return out

    hits = smoke.poll("an exemplar whose trace (its span) and log lines reached the backends", linked,
                      timeout=45, every=3)
    assert hits, found[-10:]
    ids = {e["labels"]["trace_id"] for e in found}
    print(f"{len(found)} exemplars; own request's trace among them: {demo_request in ids}")
