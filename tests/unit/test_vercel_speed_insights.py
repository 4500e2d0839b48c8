"""Vercel Speed Insights drain -> web_vitals_* (issue 16): the same series as the beacon endpoint plus a bounded
`service`, the route template as page (never the raw path), and clear refusals."""
from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry

from obs_bridges import vercel_speed_insights as si
from obs_bridges.parsing import ParseError
from obs_instrument import webvitals

PID = "QmProjectShop000000000000000000000000000000000"


def rec(**kw) -> dict:
    base = {"schema": "vercel.speed_insights.v1", "timestamp": "2026-11-29T09:30:00.000Z", "projectId": PID,
            "ownerId": "team_x", "deviceId": 12345, "metricType": "LCP", "value": 1834.2,
            "origin": "https://shop.example.com", "path": "/products/42", "route": "/products/[id]",
            "country": "US", "region": "CA", "city": "San Francisco", "osName": "macOS", "clientName": "Chrome",
            "deviceType": "desktop", "vercelEnvironment": "production", "vercelUrl": "shop-abc.vercel.app",
            "deploymentId": "dpl_1"}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def make(**kw) -> tuple[si.SpeedInsights, CollectorRegistry]:
    reg = CollectorRegistry()
    names = si.ProjectNames({PID: "shop", "QmOther": "blog"})
    return si.SpeedInsights(reg, project_names=names, **kw), reg


def body(*records) -> bytes:
    return json.dumps(list(records)).encode()


def hist_count(reg, metric, **labels) -> float:
    return reg.get_sample_value(si.METRIC_NAMES[metric] + "_count", labels) or 0.0


def test_buckets_names_and_limits_are_the_beacon_endpoints():
    assert si.BUCKETS == webvitals.BUCKETS
    assert si.METRIC_NAMES == webvitals.METRIC_NAMES
    assert si.MAX_VALUE == webvitals.MAX_VALUE
    reasons_in_both = set(si.REASONS) & set(webvitals.REASONS)
    assert {"too_large", "unsupported_media_type", "invalid_json", "not_an_object", "unknown_metric",
            "invalid_value", "invalid_field"} <= reasons_in_both


def test_the_series_carry_the_beacon_labels_plus_service():
    s, reg = make()
    assert s.record(body(rec()), "application/json") == 1
    labels = {"page": "/products/[id]", "device_type": "desktop", "environment": "production", "service": "shop"}
    assert hist_count(reg, "LCP", **labels) == 1
    # the bucket boundaries are the beacon's: 1.8342 s falls in le=2.0, not le=1.5
    assert reg.get_sample_value("web_vitals_lcp_seconds_bucket", {**labels, "le": "2.0"}) == 1
    assert reg.get_sample_value("web_vitals_lcp_seconds_bucket", {**labels, "le": "1.5"}) == 0
    assert reg.get_sample_value("web_vitals_beacons_total",
                                {"metric": "LCP", "environment": "production", "service": "shop"}) == 1
    for fam in reg.collect():
        for smp in fam.samples:
            if fam.name.startswith("web_vitals_lcp"):
                assert set(smp.labels) - {"le"} == {"page", "device_type", "environment", "service"}


def test_milliseconds_become_seconds_and_cls_stays_unitless():
    s, reg = make()
    s.record(body(rec(metricType="TTFB", value=350), rec(metricType="CLS", value=0.12)), "application/json")
    labels = {"page": "/products/[id]", "device_type": "desktop", "environment": "production", "service": "shop"}
    assert reg.get_sample_value("web_vitals_ttfb_seconds_sum", labels) == pytest.approx(0.35)
    assert reg.get_sample_value("web_vitals_cls_sum", labels) == pytest.approx(0.12)


@pytest.mark.parametrize("ctype,payload", [
    ("application/json", lambda rs: json.dumps(rs).encode()),
    ("application/json", lambda rs: json.dumps(rs[0], indent=2).encode()),  # one pretty-printed object
    ("application/x-ndjson", lambda rs: "\n".join(json.dumps(r) for r in rs).encode()),
    ("application/json", lambda rs: ("\n".join(json.dumps(r) for r in rs) + "\n").encode()),  # NDJSON, no type
    (None, lambda rs: json.dumps(rs).encode()),
])
def test_json_array_object_and_ndjson_are_all_read(ctype, payload):
    s, reg = make()
    records = [rec(metricType="INP", value=120), rec(metricType="FCP", value=900)]
    n = s.record(payload(records), ctype)
    assert n == (1 if b"\n  " in payload(records) else 2)
    assert hist_count(reg, "INP", page="/products/[id]", device_type="desktop", environment="production",
                      service="shop") == 1


def test_the_page_is_the_route_template_never_the_path():
    s, reg = make()
    s.record(body(rec(route=None), rec(route=""), rec(route="/a b <script>"), rec(route="/ok/[slug]")), None)
    other = {"page": "other", "device_type": "desktop", "environment": "production", "service": "shop"}
    assert hist_count(reg, "LCP", **other) == 3
    assert hist_count(reg, "LCP", **{**other, "page": "/ok/[slug]"}) == 1
    text = b"".join(f.name.encode() + repr(f.samples).encode() for f in reg.collect())
    assert b"/products/42" not in text


@pytest.mark.parametrize("given,expected", [("mobile", "mobile"), ("Tablet", "tablet"), ("DESKTOP", "desktop"),
                                            ("smart-tv", "unknown"), (None, "unknown")])
def test_device_type_is_a_small_enum(given, expected):
    s, reg = make()
    s.record(body(rec(deviceType=given)), None)
    assert hist_count(reg, "LCP", page="/products/[id]", device_type=expected, environment="production",
                      service="shop") == 1


@pytest.mark.parametrize("given,expected", [("preview", "preview"), ("production", "production"),
                                            ("staging-7", "other"), (None, "other")])
def test_environment_is_vercel_environment_bounded(given, expected):
    s, reg = make()
    s.record(body(rec(vercelEnvironment=given)), None)
    assert hist_count(reg, "LCP", page="/products/[id]", device_type="desktop", environment=expected,
                      service="shop") == 1


def test_an_unknown_project_id_is_unknown_never_the_id():
    s, reg = make()
    s.record(body(rec(projectId="QmNeverSeen"), rec(projectId=None)), None)
    assert hist_count(reg, "LCP", page="/products/[id]", device_type="desktop", environment="production",
                      service="unknown") == 2
    assert "QmNeverSeen" not in repr([f.samples for f in reg.collect()])


def test_project_names_are_learnt_and_bounded():
    names = si.ProjectNames(max_entries=2)
    names.learn("a", "alpha")
    names.learn("b", "beta")
    names.learn("c", "gamma")
    names.learn("d", "")  # ignored
    assert (names("a"), names("b"), names("c"), names("d"), names(None)) == (None, "beta", "gamma", None, None)
    names.learn("x", "y" * 500)
    assert len(names("x")) == 64


def test_services_over_the_cap_are_other():
    reg = CollectorRegistry()
    names = si.ProjectNames({f"id{i}": f"proj-{i}" for i in range(5)})
    s = si.SpeedInsights(reg, max_services=2, project_names=names)
    s.record(body(*[rec(projectId=f"id{i}") for i in range(5)]), None)
    services = {smp.labels["service"] for f in reg.collect() if f.name == "web_vitals_lcp_seconds"
                for smp in f.samples}
    assert services == {"proj-0", "proj-1", "other"}
    assert hist_count(reg, "LCP", page="/products/[id]", device_type="desktop", environment="production",
                      service="other") == 3
    s.record(body(rec(projectId="id0"), rec(projectId="id4")), None)  # kept values keep their label
    assert hist_count(reg, "LCP", page="/products/[id]", device_type="desktop", environment="production",
                      service="proj-0") == 2


def test_pages_over_the_cap_are_other():
    s, reg = make(max_pages=3)
    s.record(body(*[rec(route=f"/p{i}/[id]") for i in range(10)]), None)
    pages = {smp.labels["page"] for f in reg.collect() if f.name == "web_vitals_lcp_seconds" for smp in f.samples}
    assert pages == {"/p0/[id]", "/p1/[id]", "/p2/[id]", "other"}


@pytest.mark.parametrize("record,reason", [
    (rec(metricType="FID", value=12), "unknown_metric"),
    (rec(metricType=None), "unknown_metric"),
    (rec(value=-1), "invalid_value"),
    (rec(value=10**400), "invalid_value"),
    (rec(value="1200"), "invalid_value"),
    (rec(value=True), "invalid_value"),
    (rec(value=999_999), "invalid_value"),
    (rec(route=["/x"]), "invalid_field"),
    (rec(projectId=7), "invalid_field"),
    (rec(schema="vercel.speed_insights.v2"), "unsupported_schema"),
    ("LCP 1200", "not_an_object"),
])
def test_a_bad_record_is_counted_and_skipped_the_rest_accepted(record, reason):
    s, reg = make()
    assert s.record(body(record, rec()), "application/json") == 1
    where = ("unknown", "unknown") if reason == "not_an_object" else \
        ("production", "shop" if isinstance(record.get("projectId"), str) else "unknown")
    assert reg.get_sample_value("web_vitals_rejected_total",
                                {"reason": reason, "environment": where[0], "service": where[1]}) == 1
    assert hist_count(reg, "LCP", page="/products/[id]", device_type="desktop", environment="production",
                      service="shop") == 1


def test_a_batch_with_no_usable_record_is_refused():
    s, _ = make()
    with pytest.raises(si.SpeedInsightsError) as e:
        s.record(body(rec(metricType="FID")), None)
    assert e.value.status == 400 and e.value.reason == "unknown_metric" and "record 0" in str(e.value)
    assert s.record(b"[]", "application/json") == 0  # an empty batch is fine


@pytest.mark.parametrize("raw,ctype,reason,status", [
    (b"{not json", "application/json", "invalid_json", 400),
    (b"\xff\xfe[]", None, "invalid_json", 400),
    (b"[" * 100_000 + b"]" * 100_000, None, "invalid_json", 400),
    (b"[]", "application/x-www-form-urlencoded", "unsupported_media_type", 415),
    (b" " * (si.MAX_BODY_BYTES + 1), None, "too_large", 413),
    (json.dumps([{}] * (si.MAX_RECORDS + 1)).encode(), None, "too_many_records", 400),
])
def test_what_is_not_a_batch_is_a_parse_error_with_its_reason(raw, ctype, reason, status):
    s, reg = make()
    with pytest.raises(ParseError) as e:  # the ingest catches ParseError and answers 400
        s.record(raw, ctype)
    assert isinstance(e.value, si.SpeedInsightsError)
    assert (e.value.reason, e.value.status) == (reason, status)
    assert reg.get_sample_value("web_vitals_rejected_total",
                                {"reason": reason, "environment": "unknown", "service": "unknown"}) == 1
    assert hist_count(reg, "LCP", page="/products/[id]", device_type="desktop", environment="production",
                      service="shop") == 0


def test_every_reason_exists_from_the_start():
    _, reg = make()
    for reason in si.REASONS:
        assert reg.get_sample_value("web_vitals_rejected_total",
                                    {"reason": reason, "environment": "unknown", "service": "unknown"}) == 0


def test_the_beacon_endpoint_and_the_drain_agree_on_a_sample():
    """The same LCP observed by both lands in the same bucket of the same metric."""
    s, reg = make()
    s.record(body(rec(value=2400)), None)
    labels = {"page": "/products/[id]", "device_type": "desktop", "environment": "production", "service": "shop"}
    le = next(b for b in webvitals.BUCKETS["LCP"] if 2.4 <= b)
    assert reg.get_sample_value("web_vitals_lcp_seconds_bucket", {**labels, "le": str(le)}) == 1
