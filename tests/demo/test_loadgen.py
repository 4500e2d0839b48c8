"""The load generator against the real demo process: mixed traffic (2xx, 4xx, LLM, SQL, beacons)."""
from __future__ import annotations

import collections

from prometheus_client.openmetrics.parser import text_string_to_metric_families

from obs_demo import loadgen
from tests.demo.conftest import http


def test_loadgen_produces_realistic_mixed_traffic(demo_app):
    counts = loadgen.run(demo_app.base, rps=40, duration=5, concurrency=4, seed=11, ready_timeout=20)
    by_kind = collections.Counter()
    for key, n in counts.items():
        kind, status = key.split()
        by_kind[kind] += n
        assert status != "0", f"connection failures: {counts}"
    assert sum(counts.values()) >= 60, counts
    assert {"items", "item", "search", "chat", "vitals"} <= set(by_kind), counts
    assert any(k.endswith(" 204") and k.startswith("vitals") for k in counts), counts

    _, body, _ = http("GET", demo_app.base + "/metrics",
                      headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    s = [x for f in text_string_to_metric_families(body.decode()) for x in f.samples]
    statuses = {x.labels["status_code"] for x in s if x.name == "http_requests_total"}
    assert {"200", "404"} <= statuses, statuses
    assert any(x.name == "gen_ai_client_token_usage_count" and x.value > 0 for x in s)
    assert any(x.name == "api_cost_usd_total" and x.value > 0 for x in s)
    assert any(x.name == "database_query_duration_seconds_count" and x.value > 0 for x in s)
    assert any(x.name == "web_vitals_lcp_seconds_count" and x.value > 0 for x in s)
    assert any(x.name == "web_vitals_beacons_total" and x.value > 0 for x in s)
    # Paths with ids collapse to templates: no label carries a number from the raw URL.
    endpoints = {x.labels["endpoint"] for x in s if x.name == "http_requests_total"}
    assert not [e for e in endpoints if any(ch.isdigit() for ch in e)], endpoints
