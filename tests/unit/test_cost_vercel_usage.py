"""Vercel billing charges (vercel_usage.py): the FOCUS JSON-lines parser, the month's sums by service and project,
the request the poller makes and its errors, with an injected clock and a fake client."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from obs_bridges import config, vercel, vercel_usage as vu
from obs_bridges.httpclient import ApiError
from obs_bridges.parsing import ParseError
from tests.support.clock import FakeClock


def ts(*a) -> float:
    return datetime(*a, tzinfo=timezone.utc).timestamp()


def line(day="2026-11-02", cost=1.5, service="Edge Requests", project=("prj_1", "web"), currency="USD", **kw):
    # vercel.com/docs/rest-api/billing/list-focus-billing-charges: FOCUS v1.3 columns (PascalCase on the wire)
    x = {"BilledCost": cost, "BillingCurrency": currency, "ChargeCategory": "Usage",
         "ChargePeriodStart": f"{day}T00:00:00.000Z", "ChargePeriodEnd": f"{day}T23:59:59.999Z",
         "ConsumedQuantity": 1000, "ConsumedUnit": "Requests", "EffectiveCost": cost, "ServiceName": service,
         "ServiceCategory": "Networking", "ServiceProviderName": "Vercel", "PricingCategory": "Standard",
         "PricingCurrency": "USD", "PricingQuantity": 1000, "PricingUnit": "Requests",
         "Tags": {"ProjectId": project[0], "ProjectName": project[1]} if project else {}}
    x.update(kw)
    return json.dumps(x)


def test_parse_charges_reads_lines_and_skips_blank_ones():
    body = (line() + "\n\n" + line(cost=2, project=None, ConsumedQuantity=None) + "\r\n").encode()
    cs = vu.parse_charges(body)
    assert [c.cost for c in cs] == [1.5, 2.0]
    assert cs[0].start == ts(2026, 11, 2) and cs[0].project_id == "prj_1" and cs[0].project_name == "web"
    assert cs[1].project_id is None and cs[1].project_name is None
    assert vu.parse_charges(b"") == []


@pytest.mark.parametrize("body", [b"{not json}\n", b"[1, 2]\n", b'"x"\n', b"\xff\xfe\n",
                                  (line() + "\n" + line(BilledCost="1.5")).encode(),
                                  line(ChargePeriodStart=None).encode(), line(ChargePeriodStart="yesterday").encode(),
                                  line(Tags=["ProjectId"]).encode(), line(BilledCost=None).encode(),
                                  b"[" * 100000 + b"\n"])
def test_a_malformed_line_is_a_parse_error(body):
    with pytest.raises(ParseError):
        vu.parse_charges(body)


def test_month_bounds():
    assert vu.month_bounds(ts(2026, 11, 29, 6)) == (ts(2026, 11, 1), ts(2026, 12, 1))
    assert vu.month_bounds(ts(2026, 12, 31, 23, 59)) == (ts(2026, 12, 1), ts(2027, 1, 1))


def test_sums_by_day_service_and_project_within_the_range():
    projects = {"prj_1": "web", "prj_2": "docs"}
    body = "\n".join([
        line(cost=1.0), line(cost=0.5, service="Fast Data Transfer"),
        line(cost=2.0, project=("prj_2", None)),  # a name from the bridge's projects
        line(cost=4.0, project=("prj_9", "elsewhere")),  # not a project the bridge polls
        line(cost=8.0, project=None),  # team level
        line(day="2026-11-03", cost=0.25),
        line(day="2026-10-31", cost=100.0),  # before the range
        line(cost=16.0, currency="EUR"),  # cannot be added to dollars
    ]).encode()
    days = vu.by_day(vu.parse_charges(body), ts(2026, 11, 1), ts(2026, 12, 1), projects)
    assert sorted(days) == [ts(2026, 11, 2), ts(2026, 11, 3)]
    assert days[ts(2026, 11, 2)].foreign == 1 and days[ts(2026, 11, 3)].service == {"Edge Requests": 0.25}
    by_service, by_project, foreign = vu.totals(days)
    assert by_service == {"Edge Requests": 15.25, "Fast Data Transfer": 0.5}
    assert by_project == {"docs": 2.0, "none": 8.0, "other": 4.0, "web": 1.75}
    assert foreign == 1


def test_with_an_allow_list_only_its_projects_are_named():
    body = "\n".join([line(cost=1.0), line(cost=4.0, project=("prj_9", "elsewhere")), line(cost=8.0, project=None)])
    days = vu.by_day(vu.parse_charges(body.encode()), ts(2026, 11, 1), ts(2026, 12, 1), {"prj_1": "web"}, True)
    by_service, by_project, _ = vu.totals(days)
    assert by_project == {"web": 1.0} and by_service == {"Edge Requests": 13.0}  # the team's bill stays whole


def test_services_are_bounded_keeping_the_costliest():
    body = "\n".join(line(service=f"Service {i}", cost=1.0 + i) for i in range(vu.MAX_SERVICES + 7)).encode()
    by_service, _, _ = vu.totals(vu.by_day(vu.parse_charges(body), ts(2026, 11, 1), ts(2026, 12, 1), {}))
    assert len(by_service) == vu.MAX_SERVICES + 1 and "Service 0" not in by_service
    assert by_service["other"] == sum(1.0 + i for i in range(7))
    assert sum(by_service.values()) == sum(1.0 + i for i in range(vu.MAX_SERVICES + 7))


def test_ranges_cover_the_span_in_chunks():
    assert vu.ranges(ts(2026, 11, 1), ts(2026, 11, 16), 7) == [(ts(2026, 11, 1), ts(2026, 11, 8)),
                                                               (ts(2026, 11, 8), ts(2026, 11, 15)),
                                                               (ts(2026, 11, 15), ts(2026, 11, 16))]
    assert vu.ranges(ts(2026, 11, 1), ts(2026, 11, 1), 7) == []


class FakeClient:
    def __init__(self, answers):
        self.answers = answers
        self.calls: list[tuple[str, dict]] = []

    def request(self, method, path, endpoint, params=None, **kw):
        self.calls.append((path, dict(params or {})))
        a = self.answers[path]
        if isinstance(a, ApiError):
            raise a
        return None, a if isinstance(a, bytes) else json.dumps(a).encode()

    def get_json(self, path, endpoint, **kw):
        return json.loads(self.request("GET", path, endpoint, **kw)[1]), None


PROJECTS = {"projects": [{"id": "prj_1", "name": "web"}], "pagination": {"count": 1, "next": None}}


def build(env=None, clock=None):
    exp = vercel.build({"VERCEL_TOKEN": "vc_unit", "VERCEL_TEAM_ID": "team_x", **(env or {})},
                       clock=clock or FakeClock(ts(2026, 11, 29, 6, 30)))
    up = {u.name: u for u in exp.upstreams}
    return exp, up, (up["billing"].fn.__self__ if "billing" in up else None)


def samples(exp, name):
    return {tuple(sorted(s.labels.items())): s.value for f in exp.registry.collect() for s in f.samples
            if s.name == name}


def test_settings():
    exp, up, _ = build()
    assert up["billing"].interval == 600.0 < 900  # under ExporterDataStale's 15 minutes
    _, up, _ = build({"VERCEL_BILLING": "off"})
    assert "billing" not in up
    with pytest.raises(config.ConfigError, match="VERCEL_BILLING_INTERVAL_SECONDS"):
        build({"VERCEL_BILLING_INTERVAL_SECONDS": "5"})


class Charges:
    """A charges endpoint over a fixed set of lines: answers the lines whose day is in [from, to)."""

    def __init__(self, lines):
        self.lines = lines

    def __call__(self, params):
        a, b = (datetime.fromisoformat(params[k].replace("Z", "+00:00")).timestamp() for k in ("from", "to"))
        return "\n".join(x for x in self.lines if a <= ts(*map(int, json.loads(x)["ChargePeriodStart"][:10].split("-"))) < b).encode()


class RangeClient(FakeClient):
    def request(self, method, path, endpoint, params=None, **kw):
        if path == vu.CHARGES_PATH and callable(self.answers.get(path)):
            self.calls.append((path, dict(params or {})))
            return None, self.answers[path](params)
        return super().request(method, path, endpoint, params, **kw)


def spans(client):
    return [(c[1]["from"][:10], c[1]["to"][:10]) for c in client.calls if c[0] == vu.CHARGES_PATH]


def test_first_poll_reads_the_month_in_weeks_then_only_the_last_two_days():
    clock = FakeClock(ts(2026, 11, 29, 6, 30))
    exp, up, poller = build(clock=clock)
    lines = [line(day=f"2026-11-{d:02d}", cost=1.0) for d in range(1, 30)] + [
        line(day="2026-11-10", cost=2.0, service="Fluid Active CPU", project=None)]
    poller.client = RangeClient({"/v10/projects": PROJECTS, vu.CHARGES_PATH: Charges(lines)})
    exp.poll_once(up["billing"])
    assert up["billing"].ok, up["billing"].last_error
    assert poller.client.calls[0][0] == "/v10/projects"
    assert spans(poller.client) == [("2026-11-01", "2026-11-08"), ("2026-11-08", "2026-11-15"),
                                    ("2026-11-15", "2026-11-22"), ("2026-11-22", "2026-11-29"),
                                    ("2026-11-29", "2026-11-30")]
    assert all(c[1]["teamId"] == "team_x" for c in poller.client.calls[1:])
    assert samples(exp, "vercel_billing_cost_dollars") == {(("service", "Edge Requests"),): 29.0,
                                                           (("service", "Fluid Active CPU"),): 2.0}
    assert samples(exp, "vercel_billing_project_cost_dollars") == {(("project", "web"),): 29.0,
                                                                   (("project", "none"),): 2.0}
    # an hour later: today and yesterday only, the older days from what was read; yesterday grew by 0.5
    clock.advance(3600)
    poller.client = RangeClient({vu.CHARGES_PATH: Charges(lines + [line(day="2026-11-28", cost=0.5)])})
    exp.poll_once(up["billing"])
    assert spans(poller.client) == [("2026-11-28", "2026-11-30")]
    assert samples(exp, "vercel_billing_cost_dollars")[(("service", "Edge Requests"),)] == 29.5
    # yesterday's lines are gone (fully credited): the day re-read has no charges any more
    clock.advance(3600)
    poller.client = RangeClient({vu.CHARGES_PATH: Charges([x for x in lines if "2026-11-28" not in x])})
    exp.poll_once(up["billing"])
    assert samples(exp, "vercel_billing_cost_dollars")[(("service", "Edge Requests"),)] == 28.0
    # a day later the whole month is read again (late corrections): the 10th was credited
    clock.advance(86400)
    poller.client = RangeClient({vu.CHARGES_PATH: Charges(lines[:-1])})
    exp.poll_once(up["billing"])
    assert len(spans(poller.client)) == 5
    assert samples(exp, "vercel_billing_cost_dollars") == {(("service", "Edge Requests"),): 29.0}


@pytest.mark.parametrize("now, last", [((2026, 11, 30, 23, 0), ("2026-11-29", "2026-12-01")),
                                       ((2026, 12, 1, 0, 10), ("2026-12-01", "2026-12-02"))])
def test_the_end_and_the_start_of_a_month(now, last):
    exp, up, poller = build(clock=FakeClock(ts(*now)))
    exp.projects = {"prj_1": "web"}
    poller.client = RangeClient({vu.CHARGES_PATH: Charges([line(day="2026-11-30", cost=3.0)])})
    exp.poll_once(up["billing"])
    assert spans(poller.client)[-1] == last
    want = {} if now[1] == 12 else {(("service", "Edge Requests"),): 3.0}  # November's charges are not December's
    assert samples(exp, "vercel_billing_cost_dollars") == want


def test_a_token_without_the_billing_role_marks_the_upstream_down_and_says_which_roles():
    exp, up, poller = build()
    exp.projects = {"prj_1": "web"}
    poller.client = FakeClient({vu.CHARGES_PATH: ApiError("auth", "vercel billing_charges: HTTP 403", 403)})
    exp.poll_once(up["billing"])
    err = up["billing"].last_error
    assert not up["billing"].ok and "team team_x" in err and "Billing" in err and "VERCEL_BILLING=false" in err
    assert samples(exp, "vercel_exporter_poll_errors_total")[(("reason", "auth"), ("upstream", "billing"))] == 1


def test_no_team_and_a_404_say_so():
    exp, up, poller = build({"VERCEL_TEAM_ID": ""})
    exp.projects = {"prj_1": "web"}
    poller.client = FakeClient({vu.CHARGES_PATH: ApiError("http", "vercel billing_charges: HTTP 404", 404)})
    exp.poll_once(up["billing"])
    assert "VERCEL_TEAM_ID is unset" in up["billing"].last_error and "HTTP 404" in up["billing"].last_error
    assert "teamId" not in poller.client.calls[0][1]
