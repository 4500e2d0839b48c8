"""End to end on the native stack with the shipped configs: a healthy period pages nobody, then the demo
app is stopped and APIDown reaches the critical receiver (the webhook sink's /alerts/critical) with its
labels and rendered annotations, within the floor the shipped intervals set (plus delivery slack).

APIDown is the alert exercised because its whole path fits in a test: scrape 15s + its group's 10s
evaluation + for 1m + critical group_wait 0s = 85 s worst case. Bounded: the test fails after 120 s."""
from __future__ import annotations

import time

import pytest

from tests.alerting import alertpath as ap
from tests.harness.stack import NativeStack, StackError

HEALTHY_SECONDS = 30
RATIO_GRACE_SECONDS = 60  # at most this much longer, until the demo's 5xx ratio is above 0
# Services of the compose file this test does not start: alerts about them being down are correct here
# (they can only be pending within this test: their `for` is 5m).
NOT_STARTED_JOBS = {"grafana", "loki", "tempo", "otelcol", "blackbox-exporter", "railway-exporter",
                    "vercel-exporter", "supabase-exporter", "github-exporter", "simulator"}


@pytest.fixture(scope="module")
def stack():
    reason = NativeStack.unavailable_reason()
    if reason:
        pytest.skip(f"native stack: {reason}")
    s = NativeStack(ap.SERVICES)
    try:
        s.start()
    except StackError as e:
        s.stop()
        pytest.fail(f"native stack did not start: {e}")
    yield s
    s.stop()


def _explained(a: dict) -> bool:
    """A pending alert that is right in this partial stack."""
    if a.get("service") in NOT_STARTED_JOBS:
        return True
    # /api/chat (the fake LLM) is declared an llm route and left out of HTTP latency, but the demo's slow
    # /api/search and /api/reports keep its p95 near 450 ms, so the medium rung (500 ms, `for` 20m) may
    # go pending now and then; it cannot fire within this test.
    if a["alertname"] == "APIHighLatency" and a.get("service") == "obs-demo":
        return True
    # The demo's designed 5xx share (demo/README.md, "Error mix": ~0.3 %, 5-minute p99 below 0.6 %) is
    # above the low rung's 0.1 % (ticket only, `for` 30m), which may therefore be pending; the high and
    # medium rungs (> 5 %, > 1 %) must not even be pending.
    return (a["alertname"] == "APIHighErrorRate" and a.get("service") == "obs-demo"
            and a.get("severity") == "low" and a.get("alertstate") == "pending")


def test_healthy_then_api_down_pages_the_critical_receiver(stack):
    prom, sink = stack.url("prometheus", 9090), stack.url("webhook-sink", 9097)
    try:
        ap.wait_until_watching(stack)
    except AssertionError as e:
        raise AssertionError(f"{e}\nprometheus log:\n{stack.log('prometheus', 20)}") from None

    # Healthy period (traffic from the load generator): nothing fires, nothing critical is even pending,
    # no notification reaches any receiver. It lasts until the demo's designed 5xx count in the error-ratio
    # rule (ratio > 0: the broken report is opened again, ~40 s after the load generator's first request),
    # so the APIHighErrorRate rungs are judged on real errors, not on a ratio of 0.
    ratio_expr = 'service_environment:http_requests:error_ratio_rate5m{service="obs-demo"}'
    ratios: list[float] = []
    end = time.monotonic() + HEALTHY_SECONDS
    while time.monotonic() < end or (not any(ratios) and time.monotonic() < end + RATIO_GRACE_SECONDS):
        ratios += [float(r["value"][1]) for r in ap.query(prom, ratio_expr)]
        active = ap.active_alerts(prom)
        firing = [a for a in active if a["alertstate"] == "firing"]
        assert not firing, f"alerts fire during the healthy period: {firing}"
        critical = [a for a in active if a.get("severity") == "critical"]
        assert not critical, f"a critical alert is pending during the healthy period: {critical}"
        unexplained = [a for a in active if not _explained(a)]
        assert not unexplained, f"pending alerts with no cause in this stack: {unexplained}"
        assert ap.notifications(sink) == [], "a notification was sent during the healthy period"
        time.sleep(2)
    assert ap.query(prom, 'service_environment:http_requests:rate1m{service="obs-demo"} > 0'), \
        "the healthy period had no traffic: the error-rate alerts were not exercised"
    assert any(ratios), f"{ratio_expr} not above 0 within {HEALTHY_SECONDS + RATIO_GRACE_SECONDS} s: the " \
                        f"demo's 5xx never reached the error-rate rules ({len(ratios)} reads)"
    assert max(ratios) < 0.01, f"the healthy demo's 5-minute 5xx ratio reached {max(ratios):.2%} (medium rung: 1%)"
    print(f"healthy period: 5xx ratio (5m) max {max(ratios):.3%} over {len(ratios)} reads")

    # Incident: the app stops answering.
    floor = ap.floor_seconds()["floor"]
    t0 = time.monotonic()
    stack.kill("demo-app")
    hits = ap.poll("APIDown for obs-demo at the webhook sink",
                   lambda: ap.delivered(sink, "APIDown", service="obs-demo"), timeout=floor + 35, every=0.5)
    latency = time.monotonic() - t0
    note, alert = hits[0]
    assert note["receiver"] == "critical" and note["path"] == "/alerts/critical", note
    assert note["status"] == "firing"
    want = {"alertname": "APIDown", "severity": "critical", "service": "obs-demo", "team": "platform",
            "stack": "obs-stack"}
    assert {k: alert["labels"].get(k) for k in want} == want, alert["labels"]
    assert "environment" not in alert["labels"], "the demo app's scrape job sets no environment label"
    assert alert["summary"] == "API is down"
    assert alert["description"] == "obs-demo has not answered its scrape or its probe for over 1 minute."
    assert alert["runbook_url"] == "https://github.com/obs-stack/obs-stack/blob/main/runbooks/api-down.md"
    assert alert["dashboard_url"].startswith("http://127.0.0.1:3000/d/obs-api?var-service=obs-demo")
    assert latency <= floor + 35, f"APIDown took {latency:.1f} s (floor {floor:.0f} s)"
    # Nothing else reached any receiver: the outage pages once, through the critical route only.
    others = [(n["receiver"], a["labels"].get("alertname"), a["labels"].get("service"))
              for n in ap.notifications(sink) for a in n["alerts"]
              if (a["labels"].get("alertname"), a["labels"].get("service")) != ("APIDown", "obs-demo")]
    assert not others, f"unexpected notifications: {others}"
    print(f"APIDown delivered {latency:.1f} s after the app stopped (floor {floor:.0f} s)")
