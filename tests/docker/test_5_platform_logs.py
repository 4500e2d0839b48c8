"""Platform logs on the real images (issue 16): the simulator's Vercel and Supabase drains pass the ingest and
the collector into the real Loki, where LogQL finds them by the bounded labels, every label value stays in
its enum, Vercel records keep their trace ids as structured metadata, and the Speed Insights Web Vitals
reach Prometheus from the ingest."""
from __future__ import annotations

import time
import urllib.parse

from tests.docker.conftest import URL
from tests.e2e import smoke

LEVELS = {"debug", "info", "warning", "error", "critical", "unknown"}
PLATFORMS = {"vercel", "railway", "supabase", "compose"}
VERCEL_SOURCES = {"build", "edge", "lambda", "static", "external", "firewall", "redirect", "other"}


def _logql(query: str, limit: int = 200) -> list[dict]:
    now = time.time_ns()
    r = smoke.get_json(f"{URL['loki']}/loki/api/v1/query_range?" + urllib.parse.urlencode(
        {"query": query, "start": now - 900 * 10**9, "end": now + 60 * 10**9, "limit": limit}))
    assert r["status"] == "success", r
    return r["data"]["result"]


def _label_values(name: str) -> set[str]:
    r = smoke.get_json(f"{URL['loki']}/loki/api/v1/label/{name}/values")
    return set(r.get("data") or [])


def test_vercel_drain_logs_are_in_loki_with_trace_ids(stack):
    streams = smoke.poll("Vercel drain logs in Loki", lambda: _logql('{platform="vercel"}'), timeout=180, every=5)
    for s in streams:
        labels = s["stream"]
        assert labels["source"] in VERCEL_SOURCES and labels["level"] in LEVELS, labels
        assert labels["project"] and labels["service_name"] == labels["project"], labels
    smoke.poll("a Vercel record with its trace id (structured metadata)",
               lambda: _logql('{platform="vercel"} | trace_id!=""', limit=5), timeout=60, every=5)


def test_supabase_drain_logs_are_in_loki_by_project(stack):
    streams = smoke.poll("Supabase drain logs in Loki", lambda: _logql('{platform="supabase", project=~".+"}'),
                         timeout=180, every=5)
    assert all(s["stream"]["level"] in LEVELS for s in streams)


def test_stream_labels_stay_in_their_enums(stack):
    smoke.poll("platform logs in Loki", lambda: _label_values("platform") & {"vercel", "supabase"}, timeout=180,
               every=5)
    assert _label_values("platform") <= PLATFORMS
    assert _label_values("level") <= LEVELS


def test_speed_insights_reach_prometheus(stack):
    smoke.poll("Speed Insights Web Vitals from the ingest", lambda: smoke.prom_query(
        URL["prometheus"], 'sum(web_vitals_lcp_seconds_count{job="ingest"}) > 0'), timeout=180, every=5)
