"""The demo app as a real process: one request yields a trace with the caller's trace id exported over
OTLP, a log line (OTLP and stdout JSON) carrying that trace id, and a latency sample whose exemplar
points to it on /metrics (OpenMetrics)."""
from __future__ import annotations

import json
import secrets

from prometheus_client.openmetrics.parser import text_string_to_metric_families

from tests.demo.conftest import http

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def scrape(base: str, accept: str = OPENMETRICS) -> tuple[str, str]:
    status, body, headers = http("GET", base + "/metrics", headers={"Accept": accept})
    assert status == 200
    return body.decode(), headers.get("content-type", "")


def samples(text: str, name: str) -> list:
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples if s.name == name]


def test_request_trace_log_and_exemplar_share_the_trace_id(demo_app, otlp_receiver):
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    status, body, _ = http("GET", demo_app.base + "/api/items/42",
                           headers={"traceparent": f"00-{trace_id}-{parent}-01"})
    assert status == 200, body
    assert json.loads(body)["id"] == 42

    # 1. The server span, exported over OTLP/HTTP protobuf, continues the caller's trace.
    server = otlp_receiver.wait_for("the server span", lambda: [
        s for s in otlp_receiver.spans if s["trace_id"] == trace_id and s["parent_span_id"] == parent])
    span = server[0]
    assert span["name"] == "GET /api/items/{item_id}"
    assert span["attributes"]["http.route"] == "/api/items/{item_id}"
    assert span["attributes"]["http.response.status_code"] == 200
    assert span["resource"]["service.name"] == "obs-demo-test"
    assert span["resource"]["deployment.environment.name"] == "test"
    # ... with the SQL query as a child span.
    db = otlp_receiver.wait_for("the SQL child span", lambda: [
        s for s in otlp_receiver.spans if s["trace_id"] == trace_id and s["parent_span_id"] == span["span_id"]])
    assert db[0]["name"] == "SELECT items"
    assert db[0]["attributes"]["db.system.name"] == "sqlite"
    assert "42" not in db[0]["attributes"]["db.query.text"], "statements are recorded parameterised"

    # 2. A log record over OTLP with the same trace and span ids ...
    logs = otlp_receiver.wait_for("the access log record", lambda: [
        r for r in otlp_receiver.logs if r["trace_id"] == trace_id])
    assert logs[0]["span_id"] == span["span_id"]
    assert logs[0]["body"] == "GET /api/items/{item_id} 200"
    assert logs[0]["attributes"]["endpoint"] == "/api/items/{item_id}"
    # ... and the same line as JSON on stdout.
    lines = [line for line in demo_app.log_lines() if line.get("trace_id") == trace_id]
    assert lines, demo_app.log_tail()
    assert lines[0]["span_id"] == span["span_id"]
    assert lines[0]["level"] == "info" and lines[0]["component"] == "obs-demo-test"
    assert all("_not_json" not in line for line in demo_app.log_lines()), "every log line is JSON"

    # 3. The latency histogram's exemplar points to the trace (OpenMetrics exposition).
    text, ctype = scrape(demo_app.base)
    assert ctype.startswith("application/openmetrics-text")
    buckets = [s for s in samples(text, "http_request_duration_seconds_bucket")
               if s.labels["endpoint"] == "/api/items/{item_id}" and s.exemplar is not None]
    assert any(s.exemplar.labels["trace_id"] == trace_id and s.exemplar.labels["span_id"] == span["span_id"]
               for s in buckets), [s.exemplar for s in buckets]
    assert {"0.15", "0.2", "0.3"} <= {s.labels["le"] for s in samples(text, "http_request_duration_seconds_bucket")}
    counts = [s for s in samples(text, "http_requests_total") if s.labels["endpoint"] == "/api/items/{item_id}"]
    assert counts and counts[0].labels == {"method": "GET", "endpoint": "/api/items/{item_id}",
                                           "status_code": "200", "environment": "test"}
    assert "/api/items/42" not in text, "raw paths never become label values"


def test_classic_prometheus_text_still_served(demo_app):
    text, ctype = scrape(demo_app.base, accept="text/plain;version=0.0.4")
    assert ctype.startswith("text/plain")
    assert "http_requests_total{" in text and " # {" not in text


def test_llm_chat_exports_genai_span_tokens_and_cost(demo_app, otlp_receiver):
    trace_id = secrets.token_hex(16)
    body = json.dumps({"user_id": "alice@example.com", "message": "summarise the incident " * 20,
                       "model": "demo-large"}).encode()
    for _ in range(6):  # the fake provider fails ~1% of calls with a 502
        status, resp, _ = http("POST", demo_app.base + "/api/chat", body, {
            "Content-Type": "application/json", "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
        if status == 200:
            break
    assert status == 200, resp
    usage = json.loads(resp)["usage"]
    spans = otlp_receiver.wait_for("the GenAI span", lambda: [
        s for s in otlp_receiver.spans if s["trace_id"] == trace_id and s["name"] == "chat demo-large"
        and s["attributes"].get("gen_ai.usage.output_tokens") == usage["output_tokens"]])
    a = spans[0]["attributes"]
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "fake"
    assert a["gen_ai.usage.input_tokens"] == usage["input_tokens"]
    assert "alice" not in json.dumps(otlp_receiver.spans) + json.dumps(otlp_receiver.logs)
    assert len(a["user.hash"]) == 32

    text, _ = scrape(demo_app.base)
    toks = {s.labels["gen_ai_token_type"]: s.value for s in samples(text, "gen_ai_client_token_usage_sum")
            if s.labels["gen_ai_request_model"] == "demo-large"}
    assert toks["input"] >= usage["input_tokens"] and toks["output"] >= usage["output_tokens"]
    cost = [s.value for s in samples(text, "api_cost_usd_total") if s.labels["model"] == "demo-large"]
    # demo-large: $3 / $15 per million input / output tokens
    assert cost and cost[0] >= (usage["input_tokens"] * 3 + usage["output_tokens"] * 15) / 1e6 - 1e-12
    assert "alice" not in text


def test_database_pool_queue_and_auth_metrics(demo_app):
    http("POST", demo_app.base + "/api/login", json.dumps({"username": "user1", "password": "nope"}).encode(),
         {"Content-Type": "application/json"})
    http("POST", demo_app.base + "/api/jobs?count=3")
    text, _ = scrape(demo_app.base)
    assert [s for s in samples(text, "auth_failures_total") if s.labels["reason"] == "invalid_password"]
    assert samples(text, "queue_depth_messages")[0].labels["queue"] == "jobs"
    assert samples(text, "database_connections_max")[0].value == 10
    ops = {(s.labels["operation"], s.labels["table"]) for s in samples(text, "database_query_duration_seconds_count")}
    assert ("SELECT", "users") in ops and ("SELECT", "items") in ops
