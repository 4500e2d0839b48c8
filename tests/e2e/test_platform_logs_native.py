"""Platform drains on the native stack, wired exactly as docker-compose.yml wires them (issue 16): the simulator
pushes Vercel log and Speed Insights drains and Supabase OTLP and Loki drains to the ingest with its per-start
secrets; the ingest verifies them and hands them to the real collector, whose Loki exporter delivers to the
Loki stand-in. What arrives carries only the bounded stream labels, keeps trace ids, and Prometheus has the
Speed Insights Web Vitals from the ingest's /metrics."""
from __future__ import annotations

import json
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e import smoke
from tests.harness.otlp_sink import query

LABELS = {"service.name", "deployment.environment", "platform", "project", "source", "level"}
LEVELS = {"debug", "info", "warning", "error", "critical", "unknown"}
VERCEL_SOURCES = {"build", "edge", "lambda", "static", "external", "firewall", "redirect", "other"}


def _metric(url: str, name: str, **labels) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def _platform_logs(loki: str, platform: str) -> list[dict]:
    return [r for r in query(loki, "logs") if r["resource"].get("platform") == platform]


def test_vercel_log_drains_reach_loki_on_bounded_streams(native_stack):
    loki, ingest = native_stack.url("loki", 3100), native_stack.url("ingest", 9606)
    recs = smoke.poll("Vercel drain records at the Loki stand-in", lambda: _platform_logs(loki, "vercel"),
                      timeout=60)
    for r in recs:
        res = r["resource"]
        assert LABELS <= set(res), res
        assert res["source"] in VERCEL_SOURCES and res["level"] in LEVELS, res
        assert res["deployment.environment"] in ("production", "preview", "other") and res["project"] != "unknown"
        assert not set(r["attributes"]) & {"platform", "project", "source", "level", "service_name"}, r["attributes"]
    assert any(r["trace_id"].strip("0") for r in recs), "no Vercel record kept its trace id"
    assert any(r["attributes"].get("request_id") for r in recs)
    assert _metric(ingest, "ingest_requests_total", route="vercel_logs", result="accepted") >= 1
    assert _metric(ingest, "ingest_requests_total", result="bad_signature") == 0
    assert _metric(ingest, "ingest_requests_total", result="unauthorized") == 0


def test_supabase_drains_reach_loki_labelled_by_project(native_stack):
    loki, ingest = native_stack.url("loki", 3100), native_stack.url("ingest", 9606)
    sim = native_stack.url("simulator", 8600)
    with urllib.request.urlopen(sim + "/_control/drains", timeout=10) as r:
        sent = json.loads(r.read())
    recs = smoke.poll("Supabase drain records (OTLP and Loki) at the Loki stand-in",
                      lambda: _platform_logs(loki, "supabase"), timeout=60)
    projects = {r["resource"]["project"] for r in recs}
    assert projects and "unknown" not in projects, projects
    for r in recs:
        assert LABELS <= set(r["resource"]) and r["resource"]["level"] in LEVELS, r["resource"]
    for route in ("supabase_otlp", "supabase_loki"):
        assert smoke.poll(f"{route} accepted by the ingest", lambda route=route: _metric(
            ingest, "ingest_requests_total", route=route, result="accepted") >= 1, timeout=30)
    assert sent, "the simulator reports what it pushed"


def test_speed_insights_reach_prometheus_as_web_vitals(native_stack):
    prom = native_stack.url("prometheus", 9090)
    smoke.poll("Speed Insights Web Vitals in Prometheus", lambda: smoke.prom_query(
        prom, 'sum(web_vitals_lcp_seconds_count{job="ingest"}) > 0'), timeout=90)
    assert smoke.prom_query(prom, 'count(count by (service) (web_vitals_lcp_seconds_count{job="ingest"})) <= 21')


def test_railway_logs_reach_loki_from_the_bridge(native_stack):
    """The Railway bridge reads the simulator's environmentLogs and ships them through the collector."""
    loki, bridge = native_stack.url("loki", 3100), native_stack.url("railway-exporter", 9601)
    recs = smoke.poll("Railway log records at the Loki stand-in", lambda: _platform_logs(loki, "railway"),
                      timeout=90)
    for r in recs:
        res = r["resource"]
        assert LABELS <= set(res) and res["source"] == "deploy" and res["level"] in LEVELS, res
        assert res["project"] != "unknown" and res["service.name"] != "unknown", res
    keys = [(r["time_unix_nano"], r["body"], r["resource"]["service.name"], json.dumps(r["attributes"], sort_keys=True))
            for r in recs]
    assert len(keys) == len(set(keys)), f"{len(keys) - len(set(keys))} Railway lines arrived twice"
    # Read after the records: everything at the stand-in was counted as shipped, once.
    assert _metric(bridge, "railway_logs_records_shipped_total") >= len(recs)
