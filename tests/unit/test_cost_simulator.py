"""The simulator's billing APIs (simulator/costs.py, world/costs.py) on an injected clock, through the routing
table without HTTP: real shapes, one model behind every endpoint (the GitHub summary is the sum of the usage
report), month-to-date that grows with the world's time and starts again each month, and the errors."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obs_bridges.simulator import costs as api
from obs_bridges.simulator import railway_gql, server
from obs_bridges.simulator.common import ApiRequest, Reply
from obs_bridges.simulator.faults import SimState
from obs_bridges.simulator.world import World, costs
from tests.support.clock import FakeClock

NOW = datetime(2026, 11, 20, 14, 30, tzinfo=timezone.utc).timestamp()
GH = {"Authorization": "Bearer ghp_unit"}
VC = {"Authorization": "Bearer vc_unit"}


def state(now=NOW) -> tuple[SimState, FakeClock]:
    clock = FakeClock(now)
    return SimState(World(clock=clock, seed=42)), clock


def call(st: SimState, url: str, headers=GH):
    path, _, query = url.partition("?")
    q = {k: [v] for k, v in (kv.split("=", 1) for kv in query.split("&") if kv)}
    route, sub = server.route_for(path)
    req = ApiRequest("GET", sub, q, headers, "http://sim" + route.prefix, b"")
    st_, body, h = server.respond(st, route, req, None, {})
    return st_, body, h


def gh(st, url, headers=GH):
    code, body, h = call(st, "/github" + url, headers)
    return code, json.loads(body) if body else None, h


def summary(st, month=11):
    return gh(st, f"/organizations/demo-org/settings/billing/usage/summary?year=2026&month={month}")[1]


def test_accrued_is_additive_never_negative_and_a_day_holds_per_day():
    for a, b, c in ((0, 5000, 86400), (1234, 40000, 99999)):
        assert costs.accrued(10, 1.0, a, b) + costs.accrued(10, 1.0, b, c) == pytest.approx(costs.accrued(10, 1.0, a, c))
    assert costs.accrued(10, 2.0, 500, 400) == 0
    assert costs.accrued(10, 0.3, 86400 * 7, 86400 * 8) == pytest.approx(10)
    assert all(costs.accrued(10, 0.0, t, t + 60) > 0 for t in range(0, 86400, 3600))


def test_github_summary_in_its_real_shape():
    st, _ = state()
    body = summary(st)
    assert body["timePeriod"] == {"year": 2026, "month": 11} and body["organization"] == "demo-org"
    keys = {"product", "sku", "unitType", "pricePerUnit", "grossQuantity", "grossAmount", "discountQuantity",
            "discountAmount", "netQuantity", "netAmount"}
    assert body["usageItems"] and all(set(i) == keys for i in body["usageItems"])
    linux = next(i for i in body["usageItems"] if i["sku"] == "actions_linux")
    assert linux["discountQuantity"] == 2000 and linux["netAmount"] == pytest.approx(
        (linux["grossQuantity"] - 2000) * 0.008, abs=1e-5)


def test_the_summary_is_the_sum_of_the_usage_report():
    st, _ = state()
    report = gh(st, "/organizations/demo-org/settings/billing/usage?year=2026&month=11")[1]["usageItems"]
    assert {"date", "product", "sku", "quantity", "unitType", "pricePerUnit", "grossAmount", "discountAmount",
            "netAmount", "organizationName", "repositoryName"} == set(report[0])
    assert {i["repositoryName"] for i in report} == set(st.world.github.repos) | {""}
    for item in summary(st)["usageItems"]:
        display = next(s.display for s in costs.GH_SKUS if s.sku == item["sku"])
        rows = [r for r in report if r["sku"] == display]
        assert sum(r["netAmount"] for r in rows) == pytest.approx(item["netAmount"], abs=1e-3)
        assert sum(r["grossAmount"] for r in rows) == pytest.approx(item["grossAmount"], abs=1e-3)
        assert sum(r["quantity"] for r in rows) == pytest.approx(item["grossQuantity"], abs=1e-3)


def test_month_to_date_grows_with_the_worlds_time_settles_hourly_and_restarts_each_month():
    st, clock = state(datetime(2026, 11, 30, 22, 10, tzinfo=timezone.utc).timestamp())
    net = lambda b: sum(i["netAmount"] for i in b["usageItems"])  # noqa: E731
    first = net(summary(st))
    clock.advance(20 * 60)  # 22:30: the same settled hour
    assert net(summary(st)) == first
    st.world.advance(3600)  # the world's time (/_control/advance) moves the figures, not the wall clock
    later = net(summary(st))
    assert later > first
    st.world.advance(3600)  # 00:30 on December 1st: nothing settled yet this month
    assert summary(st, 12)["usageItems"] == []
    st.world.advance(3600)
    dec = summary(st, 12)
    assert dec["timePeriod"]["month"] == 12 and 0 < net(dec) < first / 20
    assert net(summary(st, 11)) > later  # November is complete and stays


def test_github_errors_in_their_real_shape():
    st, _ = state()
    code, body, h = gh(st, "/organizations/demo-org/settings/billing/usage/summary", {"Authorization": "Bearer nobilling_x"})
    assert code == 403 and body["message"] == "Resource not accessible by personal access token"
    assert h["X-Accepted-GitHub-Permissions"] == "administration=read"
    assert gh(st, "/orgs/demo-org/settings/billing/actions")[0] == 410  # retired in 2025
    assert gh(st, "/organizations/nope/settings/billing/usage")[0] == 404
    assert gh(st, "/organizations/demo-org/settings/billing/usage/other")[0] == 404
    assert gh(st, "/organizations/demo-org/settings/billing/usage?month=13")[0] == 400
    assert gh(st, "/organizations/demo-org/settings/billing/usage?year=twenty")[0] == 400
    assert gh(st, "/organizations/demo-org/settings/billing/usage/summary", {})[0] == 401


def test_github_filters():
    st, _ = state()
    day = gh(st, "/organizations/demo-org/settings/billing/usage/summary?year=2026&month=11&day=3")[1]
    assert day["timePeriod"] == {"year": 2026, "month": 11, "day": 3}
    linux_day = next(i for i in day["usageItems"] if i["sku"] == "actions_linux")
    assert linux_day["grossQuantity"] == pytest.approx(250, rel=0.5)  # about a day's minutes
    only = gh(st, "/organizations/demo-org/settings/billing/usage/summary?product=copilot")[1]["usageItems"]
    assert [i["sku"] for i in only] == ["copilot_business"]
    rows = gh(st, "/organizations/demo-org/settings/billing/usage?year=2026&month=11&day=2")[1]["usageItems"]
    assert rows and {r["date"] for r in rows} == {"2026-11-02"}


def vc(st, query, headers=VC):
    return call(st, "/vercel/v1/billing/charges?" + query, headers)


def test_vercel_charges_are_json_lines_of_focus_columns_one_per_day_project_and_service():
    st, _ = state()
    code, body, h = vc(st, "teamId=team_demo&from=2026-11-01T00:00:00.000Z&to=2026-11-21T00:00:00.000Z")
    assert code == 200 and h["Content-Type"] == "application/jsonl"
    lines = [json.loads(x) for x in body.decode().splitlines()]
    days = 20  # the 1st to the 20th: the 20th so far
    assert len(lines) == days * len(st.world.vercel.projects) * len(costs.VC_SERVICES)
    first = lines[0]
    for k in ("BilledCost", "BillingCurrency", "ChargeCategory", "ChargePeriodStart", "ChargePeriodEnd",
              "ConsumedQuantity", "ConsumedUnit", "EffectiveCost", "ServiceName", "ServiceProviderName", "Tags",
              "PricingCategory", "PricingCurrency", "PricingQuantity", "PricingUnit"):
        assert k in first
    assert set(first["Tags"]) == {"ProjectId", "ProjectName"}
    today = [x for x in lines if x["ChargePeriodStart"].startswith("2026-11-20")]
    full = [x for x in lines if x["ChargePeriodStart"].startswith("2026-11-19")]
    assert 0 < sum(x["BilledCost"] for x in today) < sum(x["BilledCost"] for x in full)  # 14 of 24 hours


@pytest.mark.parametrize("query, headers, code", [
    ("teamId=team_demo&from=2026-11-01T00:00:00Z", VC, 400),
    ("teamId=team_demo&from=yesterday&to=2026-11-02T00:00:00Z", VC, 400),
    ("teamId=team_demo&from=2025-01-01T00:00:00Z&to=2026-11-02T00:00:00Z", VC, 400),  # over a year
    ("teamId=team_other&from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z", VC, 403),
    ("teamId=team_demo&from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z", {"Authorization": "Bearer nobilling"}, 403),
    ("teamId=team_demo&from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z", {}, 403),
])
def test_vercel_errors(query, headers, code):
    st, _ = state()
    got, body, h = vc(st, query, headers)
    assert got == code and json.loads(body)["error"]["code"] in ("bad_request", "forbidden")


def test_railway_usage_so_far_is_the_estimate_in_proportion_to_the_month_gone():
    st, _ = state()
    w = st.world
    pid = w.railway.projects[0]["id"]
    start, end = costs.month_bounds(NOW)
    frac = (NOW - start) / (end - start)
    assert costs.railway_to_date(w, pid, "CPU_USAGE", NOW) == pytest.approx(w.railway.estimated(pid, "CPU_USAGE") * frac,
                                                                            rel=1e-4)
    res = railway_gql.execute(w, {"kind": "account"}, {
        "query": "query($p: String!) { t: usage(projectId: $p, measurements: [CPU_USAGE, NETWORK_TX_GB]) "
                 "{ measurement value } g: usage(measurements: [CPU_USAGE], groupBy: [PROJECT_ID]) "
                 "{ measurement value tags { projectId } } }", "variables": {"p": pid}})
    assert "errors" not in res, res
    assert {r["measurement"] for r in res["data"]["t"]} == {"CPU_USAGE", "NETWORK_TX_GB"}
    assert {r["tags"]["projectId"] for r in res["data"]["g"]} == {p["id"] for p in w.railway.projects}


@settings(max_examples=150, deadline=None)
@given(year=st.text(max_size=6), month=st.text(max_size=4), day=st.text(max_size=4),
       frm=st.text(max_size=30), to=st.text(max_size=30))
def test_any_query_string_is_an_answer_never_a_crash(year, month, day, frm, to):
    s, _ = state()
    q = {"year": [year], "month": [month], "day": [day]}
    for summary_too in ("usage", "usage/summary"):
        req = ApiRequest("GET", "", q, GH, "http://sim/github", b"")
        try:
            code, _, _ = api.github_billing(s, req, ["organizations", "demo-org", "settings", "billing",
                                                     *summary_too.split("/")], "ghp")
        except Reply as r:
            code = r.status
        assert code in (200, 400)
    code, body, _ = api.vercel_charges(s, ApiRequest("GET", "/charges", {"teamId": ["team_demo"], "from": [frm],
                                                                        "to": [to]}, VC, "http://sim", b""))
    assert code in (200, 400) and not math.isnan(len(body))
