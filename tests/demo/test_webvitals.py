"""The Web Vitals ingest: valid Next.js beacons become histograms by page template and device type;
malformed, oversized, wrong-origin and rate-limited beacons are rejected with a 4xx and counted."""
from __future__ import annotations

import io
import json
import warnings

import pytest
from fastapi import FastAPI
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from obs_instrument import instrument_app
from obs_instrument.webvitals import PageTemplates, device_type

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
BEACON = "text/plain;charset=UTF-8"  # what navigator.sendBeacon(url, string) sends


def make(**vitals):
    app = FastAPI()
    opts = {"pages": ["/", "/chat/[id]", "/docs/[...slug]"], **vitals}
    instrument_app(app, service_name="vitals-test", environment="test", otlp_enabled=False,
                   log_stream=io.StringIO(), web_vitals=opts)
    return TestClient(app)


def metric(client, name: str) -> dict:
    text = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}).text
    return {tuple(sorted(s.labels.items())): s.value for f in text_string_to_metric_families(text)
            for s in f.samples if s.name == name}


def post(client, body, ua=DESKTOP, ctype=BEACON, **headers):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/vitals", content=data, headers={"Content-Type": ctype, "User-Agent": ua, **headers})


def test_next_js_beacons_become_histograms_by_template_and_device():
    c = make()
    # The metric object useReportWebVitals hands over, plus the page the snippet adds.
    lcp = {"name": "LCP", "value": 2130.5, "delta": 2130.5, "id": "v5-1731-123", "rating": "good",
           "navigationType": "navigate", "entries": [{}], "page": "/chat/8c1f"}
    assert post(c, lcp, ua=IPHONE).status_code == 204
    assert post(c, {"name": "CLS", "value": 0.07, "page": "/docs/api/auth"}).status_code == 204
    assert post(c, {"name": "INP", "value": 180, "page": "/"}, ctype="application/json").status_code == 204
    assert post(c, {"name": "TTFB", "value": 95.2, "page": "/orders/123"}).status_code == 204
    assert post(c, {"name": "FCP", "value": 900, "page": "/chat/[id]"}).status_code == 204

    lcp_count = metric(c, "web_vitals_lcp_seconds_count")
    assert lcp_count == {(("device_type", "mobile"), ("environment", "test"), ("page", "/chat/[id]")): 1.0}
    assert metric(c, "web_vitals_lcp_seconds_sum")[next(iter(lcp_count))] == pytest.approx(2.1305)
    assert list(metric(c, "web_vitals_cls_count"))[0][2] == ("page", "/docs/[...slug]")
    assert metric(c, "web_vitals_cls_sum")[list(metric(c, "web_vitals_cls_count"))[0]] == pytest.approx(0.07)
    assert list(metric(c, "web_vitals_inp_seconds_count"))[0][0] == ("device_type", "desktop")
    assert list(metric(c, "web_vitals_ttfb_seconds_count"))[0][2] == ("page", "/orders/[id]")
    assert list(metric(c, "web_vitals_fcp_seconds_count"))[0][2] == ("page", "/chat/[id]")
    accepted = metric(c, "web_vitals_beacons_total")
    assert sum(accepted.values()) == 5


@pytest.mark.parametrize("body,status,reason", [
    (b"{not json", 400, "invalid_json"),
    (b"\xff\xfe", 400, "invalid_json"),
    (b"[1, 2]", 422, "not_an_object"),
    ({"name": "FID", "value": 12, "page": "/"}, 422, "unknown_metric"),
    ({"value": 12, "page": "/"}, 422, "unknown_metric"),
    ({"name": "LCP", "value": "fast", "page": "/"}, 422, "invalid_value"),
    ({"name": "LCP", "value": True, "page": "/"}, 422, "invalid_value"),
    ({"name": "CLS", "value": -0.1, "page": "/"}, 422, "invalid_value"),
    ({"name": "LCP", "value": 1e12, "page": "/"}, 422, "invalid_value"),
    (b'{"name": "LCP", "value": NaN, "page": "/"}', 422, "invalid_value"),
    ({"name": "INP", "value": 100, "page": "no-leading-slash"}, 422, "invalid_field"),
    ({"name": "INP", "value": 100, "page": "/<script>alert(1)</script>"}, 422, "invalid_field"),
    ({"name": "TTFB", "value": 80, "rating": "great", "page": "/"}, 422, "invalid_field"),
    ({"name": "TTFB", "value": 80, "id": 7, "page": "/"}, 422, "invalid_field"),
])
def test_malformed_beacons_are_rejected_and_counted(body, status, reason):
    c = make()
    r = post(c, body)
    assert r.status_code == status, r.text
    assert r.json() == {"error": reason}
    rejected = metric(c, "web_vitals_rejected_total")
    assert rejected[(("environment", "test"), ("reason", reason))] == 1.0
    assert sum(rejected.values()) == 1.0
    assert metric(c, "web_vitals_beacons_total") == {}


def test_oversized_and_wrong_type_bodies():
    c = make()
    big = json.dumps({"name": "LCP", "value": 1, "page": "/", "entries": ["x" * 5000]})
    assert post(c, big).status_code == 413
    assert post(c, b'{"name":"LCP","value":1}', ctype="application/x-www-form-urlencoded").status_code == 415
    rejected = metric(c, "web_vitals_rejected_total")
    assert rejected[(("environment", "test"), ("reason", "too_large"))] == 1.0
    assert rejected[(("environment", "test"), ("reason", "unsupported_media_type"))] == 1.0


def test_rate_limit_per_client_answers_429_and_counts():
    c = make(rate_per_client=0.001, burst=5)
    codes = [post(c, {"name": "LCP", "value": 1000, "page": "/"}).status_code for _ in range(8)]
    assert codes == [204] * 5 + [429] * 3
    assert metric(c, "web_vitals_rejected_total")[(("environment", "test"), ("reason", "rate_limited"))] == 3.0
    # Behind a trusted proxy, each browser has its own bucket.
    c = make(rate_per_client=0.001, burst=1, trust_forwarded_for=True)
    codes = [post(c, {"name": "LCP", "value": 1000, "page": "/"}, **{"X-Forwarded-For": f"198.51.100.{i}"}).status_code
             for i in range(4)]
    assert codes == [204] * 4


def test_origin_allow_list_and_cors():
    c = make(allowed_origins=["https://app.example.com"])
    ok = post(c, {"name": "LCP", "value": 1000, "page": "/"}, Origin="https://app.example.com")
    assert ok.status_code == 204 and ok.headers["access-control-allow-origin"] == "https://app.example.com"
    bad = post(c, {"name": "LCP", "value": 1000, "page": "/"}, Origin="https://evil.example")
    assert bad.status_code == 403
    assert metric(c, "web_vitals_rejected_total")[(("environment", "test"), ("reason", "origin_not_allowed"))] == 1.0


def test_page_labels_stay_bounded():
    pages = PageTemplates(["/chat/[id]", "/docs/[...slug]", "/shop/[[...filters]]"], limit=3)
    assert pages("/chat/42?tab=1#x") == "/chat/[id]"
    assert pages("/docs/a/b/c") == "/docs/[...slug]"
    assert pages("/shop") == "/shop/[[...filters]]" and pages("/shop/red/xl") == "/shop/[[...filters]]"
    assert pages("/u/550e8400-e29b-41d4-a716-446655440000/settings") == "/u/[id]/settings"
    seen = {pages(f"/landing-{i}") for i in range(10)}
    assert "other" in seen and len(seen) <= 4


@pytest.mark.parametrize("ua,kind", [
    (IPHONE, "mobile"), (DESKTOP, "desktop"), ("", "unknown"),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36", "mobile"),
    ("Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 Chrome/131.0 Safari/537.36", "tablet"),
    ("Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", "tablet"),
])
def test_device_type_from_user_agent(ua, kind):
    assert device_type(ua) == kind


def test_demo_app_rejects_malformed_beacon_over_http(demo_app):
    from tests.demo.conftest import http
    status, body, _ = http("POST", demo_app.base + "/vitals", b'{"name":"LCP","value":"x"}',
                           {"Content-Type": BEACON})
    assert status == 422 and json.loads(body) == {"error": "invalid_value"}
    status, _, _ = http("GET", demo_app.base + "/metrics", headers={"Accept": "text/plain"})
    _, text, _ = http("GET", demo_app.base + "/metrics")
    assert b'web_vitals_rejected_total{environment="test",reason="invalid_value"} 1.0' in text
