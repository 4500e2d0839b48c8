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
    # Not a configured template: `other`, however id-like its segments look.
    assert list(metric(c, "web_vitals_ttfb_seconds_count"))[0][2] == ("page", "other")
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
    c = make(rate_per_client=0.001, burst=1, trusted_proxy_hops=1)
    codes = [post(c, {"name": "LCP", "value": 1000, "page": "/"}, **{"X-Forwarded-For": f"198.51.100.{i}"}).status_code
             for i in range(4)]
    assert codes == [204] * 4


def test_rate_limit_key_is_the_entry_the_trusted_proxy_added():
    """Issue 12 item 11: a client that writes its own X-Forwarded-For entries cannot get a fresh bucket;
    the entry the trusted proxy appended (the rightmost of the trusted hops) is the key."""
    beacon = {"name": "LCP", "value": 1000, "page": "/"}
    c = make(rate_per_client=0.001, burst=2, trusted_proxy_hops=1)
    # The proxy saw 203.0.113.9 and appended it; the client prepended a new fake address each time.
    codes = [post(c, beacon, **{"X-Forwarded-For": f"10.0.{i}.1, 203.0.113.9"}).status_code for i in range(5)]
    assert codes == [204, 204, 429, 429, 429]
    # Two trusted hops: the second entry from the right is the client as the outer proxy saw it.
    c = make(rate_per_client=0.001, burst=1, trusted_proxy_hops=2)
    codes = [post(c, beacon, **{"X-Forwarded-For": f"10.9.{i}.1, 203.0.113.{i % 2}, 10.0.0.2"}).status_code
             for i in range(4)]
    assert codes == [204, 204, 429, 429]
    # Fewer entries than trusted hops (the request bypassed the proxies) or garbage: keyed by the peer,
    # so rotating such headers gets nothing either.
    c = make(rate_per_client=0.001, burst=1, trusted_proxy_hops=2)
    codes = [post(c, beacon, **{"X-Forwarded-For": f"198.51.100.{i}"}).status_code for i in range(3)]
    assert codes == [204, 429, 429]
    c = make(rate_per_client=0.001, burst=1, trusted_proxy_hops=1)
    codes = [post(c, beacon, **{"X-Forwarded-For": f"not-an-ip-{i}"}).status_code for i in range(3)]
    assert codes == [204, 429, 429]


@pytest.mark.parametrize("hops", [-1, 11, "1", True, 1.5])
def test_trusted_proxy_hops_is_checked(hops):
    with pytest.raises(ValueError, match="trusted_proxy_hops"):
        make(trusted_proxy_hops=hops)


@pytest.mark.parametrize("raw,ok", [("", 0), ("0", 0), (" 2 ", 2), ("11", None), ("yes", None), ("²", None)])
def test_trusted_proxy_hops_from_the_environment(raw, ok):
    from obs_instrument.webvitals import proxy_hops_from_env
    if ok is None:
        with pytest.raises(ValueError, match="OBS_WEBVITALS_TRUSTED_PROXY_HOPS must be a whole number"):
            proxy_hops_from_env({"OBS_WEBVITALS_TRUSTED_PROXY_HOPS": raw})
    else:
        assert proxy_hops_from_env({"OBS_WEBVITALS_TRUSTED_PROXY_HOPS": raw}) == ok


def test_origin_allow_list_and_cors():
    c = make(allowed_origins=["https://app.example.com"])
    ok = post(c, {"name": "LCP", "value": 1000, "page": "/"}, Origin="https://app.example.com")
    assert ok.status_code == 204 and ok.headers["access-control-allow-origin"] == "https://app.example.com"
    bad = post(c, {"name": "LCP", "value": 1000, "page": "/"}, Origin="https://evil.example")
    assert bad.status_code == 403
    assert metric(c, "web_vitals_rejected_total")[(("environment", "test"), ("reason", "origin_not_allowed"))] == 1.0


def test_page_labels_are_the_configured_templates_or_other():
    pages = PageTemplates(["/chat/[id]", "/docs/[...slug]", "/shop/[[...filters]]"])
    assert pages("/chat/42?tab=1#x") == "/chat/[id]"
    assert pages("/docs/a/b/c") == "/docs/[...slug]"
    assert pages("/shop") == "/shop/[[...filters]]" and pages("/shop/red/xl") == "/shop/[[...filters]]"
    assert pages("/u/550e8400-e29b-41d4-a716-446655440000/settings") == "other"
    assert {pages(f"/landing-{i}") for i in range(1000)} == {"other"}


def test_random_paths_cannot_push_real_pages_out():
    """Issue 12 item 12: 500 beacons with random paths first, then a real page still gets its label."""
    c = make(rate_per_client=1e6, burst=1e6, global_rate=1e6)
    for i in range(500):
        assert post(c, {"name": "LCP", "value": 900, "page": f"/r{i}/x"}).status_code == 204
    assert post(c, {"name": "LCP", "value": 900, "page": "/chat/77"}).status_code == 204
    pages = {dict(k)["page"]: v for k, v in metric(c, "web_vitals_lcp_seconds_count").items()}
    assert pages == {"other": 500.0, "/chat/[id]": 1.0}


NESTED = b'{"name": "LCP", "value": 1, "page": "/", "entries": ' + b"[" * 2000 + b"]" * 2000 + b"}"


@pytest.mark.parametrize("body,status,reason", [
    (NESTED, 400, "invalid_json"),
    (b"[" * 3000, 400, "invalid_json"),
    (b'{"a": ' * 500 + b"1" + b"}" * 500, 400, "invalid_json"),
    (b'{"name": "LCP", "value": ' + b"9" * 400 + b', "page": "/"}', 422, "invalid_value"),
    (b'{"name": "LCP", "value": 1, "page": "/", "delta": ' + b"9" * 400 + b"}", 204, None),
    (b'{"name": "LCP", "value": 1e400, "page": "/"}', 422, "invalid_value"),
    (b'{"name": "LCP", "value": -Infinity, "page": "/"}', 422, "invalid_value"),
    (rb'{"name": "LCP", "value": 1, "page": "/", "id": "\ud800"}', 204, None),
    (rb'{"name": "LCP", "value": 1, "page": "/\u0000"}', 422, "invalid_field"),
    (b'{"name": "LCP", "value": 1, "page": ["/"]}', 422, "invalid_field"),
    (b'{"name": ["LCP"], "value": 1, "page": "/"}', 422, "unknown_metric"),
    (b'{"name": {"x": 1}, "value": 1, "page": "/"}', 422, "unknown_metric"),
    (b'{"name": "LCP", "value": 1, "page": "/", "rating": ["good"]}', 422, "invalid_field"),
])
def test_hostile_bodies_are_4xx_never_5xx(body, status, reason):
    """Issue 12 item 10: nothing a client sends answers 5xx (which would count as a server error in
    http_requests_total and burn the API's SLO)."""
    c = make()
    r = post(c, body)
    assert r.status_code == status, r.text
    requests = metric(c, "http_requests_total")
    assert not [k for k in requests if dict(k)["status_code"].startswith("5")], requests
    if reason:
        assert r.json() == {"error": reason}


@pytest.mark.parametrize("declared", ["²", "١٢", "-1", "1e3", " 5", "99999999999999999999"])
def test_odd_content_length_is_a_4xx(declared):
    c = make()
    r = c.post("/vitals", content=b'{"name":"LCP","value":1,"page":"/"}',
               headers={"Content-Type": BEACON, "Content-Length": declared.encode()})
    assert 400 <= r.status_code < 500, (declared, r.status_code)


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
