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


def test_report_13_is_the_only_broken_report(demo_app):
    """The demo's designed 500 is deterministic: report 13 always crashes, every other report renders."""
    for rid in list(range(1, 41)) + [13, 13]:
        status, _, _ = http("GET", f"{demo_app.base}/api/reports/{rid}")
        assert status == (500 if rid == 13 else 200), (rid, status)


def test_loadgen_opens_the_broken_report_at_a_fixed_share(demo_app):
    """One scenario in N (counted over all workers, the first one included) is the broken report, and no
    other report request fails: the 5xx share of the demo is designed, not left to chance."""
    n = 20
    counts = loadgen.run(demo_app.base, rps=60, duration=4, concurrency=4, seed=5, ready_timeout=20,
                         broken_report_every=n)
    broken = {k: v for k, v in counts.items() if k.startswith("broken_report ")}
    assert set(broken) == {"broken_report 500"}, counts
    assert not [k for k in counts if k.startswith("report ") and k != "report 200"], counts
    # Scenarios run: every key counts one scenario, except well-formed Web Vitals views (5 beacons each).
    vitals = sum(v for k, v in counts.items() if k.startswith("vitals "))
    others = sum(v for k, v in counts.items() if not k.startswith("vitals "))
    lo, hi = others + -(-vitals // 5), others + vitals
    assert hi >= 3 * n, f"too little traffic to check the share: {counts}"
    assert -(-lo // n) <= broken["broken_report 500"] <= -(-hi // n), (broken, lo, hi, counts)

    none = loadgen.run(demo_app.base, rps=60, duration=2, concurrency=2, seed=6, ready_timeout=20,
                       broken_report_every=0)
    assert not [k for k in none if k.startswith("broken_report")], none
