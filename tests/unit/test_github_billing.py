"""GitHub billing usage (github_billing.py): the two endpoints' parsers, the poller's fallback, errors and
month handling, with an injected clock and a fake client (no sockets, no sleeps)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obs_bridges import config, github, github_billing as gb
from obs_bridges.httpclient import ApiError
from obs_bridges.parsing import ParseError
from tests.support.clock import FakeClock

NOV = datetime(2026, 11, 20, 12, tzinfo=timezone.utc).timestamp()

# docs.github.com/rest/billing/usage, "Get billing usage summary for an organization" (example, with the month)
SUMMARY = {"timePeriod": {"year": 2026, "month": 11}, "organization": "acme", "usageItems": [
    {"product": "Actions", "sku": "actions_linux", "unitType": "minutes", "pricePerUnit": 0.008,
     "grossQuantity": 1000, "grossAmount": 8, "discountQuantity": 200, "discountAmount": 1.6,
     "netQuantity": 800, "netAmount": 6.4},
    {"product": "Copilot", "sku": "copilot_business", "unitType": "UserMonths", "pricePerUnit": 19,
     "grossQuantity": 2, "grossAmount": 38, "discountQuantity": 0, "discountAmount": 0, "netQuantity": 2,
     "netAmount": 38}]}


def report_item(date, sku="Actions Linux", repo="acme/api", quantity=100, gross=0.8, net=0.8, product="Actions"):
    # "Get billing usage report for an organization" (example): one item per day, SKU and repository
    return {"date": date, "product": product, "sku": sku, "quantity": quantity, "unitType": "minutes",
            "pricePerUnit": 0.008, "grossAmount": gross, "discountAmount": round(gross - net, 6), "netAmount": net,
            "organizationName": "acme", "repositoryName": repo}


def test_labels_are_the_same_for_both_spellings_of_a_sku():
    assert gb.label("Actions Linux") == gb.label("actions_linux") == "actions_linux"
    assert gb.label("Actions macOS 12-core") == "actions_macos_12_core"
    assert gb.label("  ") == "unknown"
    assert len(gb.label("x" * 500)) == 64


def test_month_of_is_utc():
    assert gb.month_of(datetime(2026, 12, 31, 23, 59, tzinfo=timezone.utc).timestamp()) == (2026, 12)
    assert gb.month_of(datetime(2027, 1, 1, 0, 0, tzinfo=timezone.utc).timestamp()) == (2027, 1)


def test_parse_summary():
    out = gb.parse_summary(SUMMARY, 2026, 11)
    assert out[("actions", "actions_linux")] == gb.SkuUsage("actions", "actions_linux", (("minutes", 1000.0),),
                                                             8.0, 6.4)
    assert out[("copilot", "copilot_business")].net == 38.0
    assert list(out) == sorted(out)


@pytest.mark.parametrize("period", [{"year": 2026, "month": 10}, {"year": 2025, "month": 11}, {"month": 11}, None])
def test_summary_of_another_period_is_refused(period):
    with pytest.raises(ParseError):
        gb.parse_summary({**SUMMARY, "timePeriod": period}, 2026, 11)


def test_summary_without_a_month_is_taken_as_the_month_asked_for():
    # the docs' example answers {"year": 2025} alone; the month was a query parameter
    assert gb.parse_summary({**SUMMARY, "timePeriod": {"year": 2026}}, 2026, 11)


@pytest.mark.parametrize("broken", [{"product": "Actions"}, {"sku": "x", "netAmount": 1},
                                    {"product": "Actions", "sku": "x", "netAmount": "1"},
                                    {"product": "Actions", "sku": "x", "netAmount": True},
                                    {"product": ["Actions"], "sku": "x", "netAmount": 1}, "item"])
def test_summary_item_of_the_wrong_shape_is_a_parse_error(broken):
    with pytest.raises(ParseError):
        gb.parse_summary({**SUMMARY, "usageItems": [broken]}, 2026, 11)


def test_parse_report_sums_days_and_repositories_by_sku_and_leaves_other_months_out():
    data = {"usageItems": [
        report_item("2026-11-01", quantity=100, gross=0.8, net=0.0),
        report_item("2026-11-02T03:00:00Z", repo="acme/web", quantity=50, gross=0.4, net=0.4),
        report_item("2026-10-31", quantity=9999, gross=99, net=99),  # another month
        report_item("2026-11-02", sku="Copilot Business", product="Copilot", repo="", quantity=1, gross=19, net=19),
        {**report_item("2026-11-03", quantity=10, gross=0.08, net=0.08), "date": None},  # undated: counted
    ]}
    out = gb.parse_report(data, 2026, 11)
    assert out[("actions", "actions_linux")] == gb.SkuUsage("actions", "actions_linux", (("minutes", 160.0),),
                                                             1.28, 0.48)
    assert out[("copilot", "copilot_business")].gross == 19.0
    assert set(out) == {("actions", "actions_linux"), ("copilot", "copilot_business")}


def test_a_sku_in_two_units_keeps_both_quantities():
    data = {"usageItems": [report_item("2026-11-01"), {**report_item("2026-11-01"), "unitType": "GigabyteHours",
                                                        "quantity": 5}]}
    assert gb.parse_report(data, 2026, 11)[("actions", "actions_linux")].quantity == (
        ("gigabytehours", 5.0), ("minutes", 100.0))


def test_labels_are_bounded():
    items = [{"product": "Actions", "sku": f"sku-{i}", "unitType": "minutes", "netAmount": 1.0, "grossAmount": 1.0,
              "grossQuantity": 1} for i in range(gb.MAX_SKUS + 25)]
    out = gb.parse_summary({"timePeriod": {"year": 2026, "month": 11}, "usageItems": items}, 2026, 11)
    assert len(out) == gb.MAX_SKUS + 1
    assert out[("other", "other")].net == 25.0  # nothing lost from the total
    assert sum(u.net for u in out.values()) == len(items)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["Actions Linux", "actions_linux", "Actions Windows", "Copilot"]),
                          st.floats(min_value=0, max_value=1e6), st.floats(min_value=0, max_value=1e6)), max_size=30))
def test_report_and_summary_agree_on_totals(rows):
    """The same usage, as per-day report items or as summary items: the same dollars per SKU label."""
    report = {"usageItems": [report_item("2026-11-05", sku=s, gross=g + n, net=n) for s, g, n in rows]}
    summary = {"timePeriod": {"year": 2026, "month": 11}, "usageItems": [
        {"product": "Actions", "sku": s, "grossAmount": g + n, "netAmount": n, "grossQuantity": 100}
        for s, g, n in rows]}
    a, b = gb.parse_report(report, 2026, 11), gb.parse_summary(summary, 2026, 11)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].net == pytest.approx(b[k].net) and a[k].gross == pytest.approx(b[k].gross)


# ---------------------------------------------------------------- the poller, on a fake client

class FakeClient:
    """Answers like GitHub by path: a body, or an ApiError; records every path and its parameters."""

    def __init__(self, answers):
        self.answers = answers
        self.calls: list[tuple[str, dict]] = []

    def request(self, method, path, endpoint, params=None, conditional=False, **kw):
        self.calls.append((path, dict(params or {})))
        a = self.answers.get(path)
        if a is None:
            raise ApiError("http", f"github {endpoint}: HTTP 404", 404)
        if isinstance(a, ApiError):
            raise a
        return None, json.dumps(a).encode()


def build(env=None, clock=None):
    env = {"GITHUB_TOKEN": "ghp_unit", "GITHUB_REPOSITORIES": "acme,other-org/*,solo/repo", **(env or {})}
    exp = github.build(env, clock=clock or FakeClock(NOV))
    up = {u.name: u for u in exp.upstreams}
    return exp, up, (up["billing"].fn.__self__ if "billing" in up else None)


def summary_path(org):
    return f"/organizations/{org}/settings/billing/usage/summary"


def samples(exp, name):
    return {tuple(sorted(s.labels.items())): s.value for f in exp.registry.collect() for s in f.samples
            if s.name == name}


def test_settings_enable_billing_for_the_configured_organizations_only():
    exp, up, poller = build()
    assert exp.cfg.billing_orgs == ("acme", "other-org")  # not solo (the owner of an owner/repo entry)
    assert up["billing"].interval == 600.0 < 900  # under ExporterDataStale's 15 minutes: no alert between polls
    assert poller.orgs == ("acme", "other-org")
    exp, up, _ = build({"GITHUB_BILLING": "false"})
    assert "billing" not in up
    exp, _, _ = build({"GITHUB_BILLING_ORGANIZATIONS": "solo, acme,solo", "GITHUB_BILLING_INTERVAL_SECONDS": "600"})
    assert exp.cfg.billing_orgs == ("solo", "acme") and exp.cfg.billing_interval == 600.0
    exp, up, _ = build({"GITHUB_REPOSITORIES": "acme/api"})
    assert "billing" not in up  # no organization configured


@pytest.mark.parametrize("env", [{"GITHUB_BILLING_ORGANIZATIONS": "acme/api"}, {"GITHUB_BILLING_ORGANIZATIONS": "a?b"},
                                 {"GITHUB_BILLING_INTERVAL_SECONDS": "10"}, {"GITHUB_BILLING": "maybe"}])
def test_bad_billing_settings_name_the_variable(env):
    with pytest.raises(config.ConfigError, match="GITHUB_BILLING"):
        build(env)


def test_poll_reads_the_summary_of_the_current_month_and_exports_it():
    exp, up, poller = build({"GITHUB_REPOSITORIES": "acme"})
    poller.client = FakeClient({summary_path("acme"): SUMMARY})
    exp.poll_once(up["billing"])
    assert up["billing"].ok
    assert poller.client.calls == [(summary_path("acme"), {"year": 2026, "month": 11})]
    net = samples(exp, "github_billing_cost_dollars")
    assert net[(("org", "acme"), ("product", "actions"), ("sku", "actions_linux"))] == 6.4
    assert samples(exp, "github_billing_gross_cost_dollars")[
        (("org", "acme"), ("product", "actions"), ("sku", "actions_linux"))] == 8.0
    assert samples(exp, "github_billing_quantity")[
        (("org", "acme"), ("product", "actions"), ("sku", "actions_linux"), ("unit", "minutes"))] == 1000.0


def test_summary_404_falls_back_to_the_usage_report_for_good():
    exp, up, poller = build({"GITHUB_REPOSITORIES": "acme"})
    report = {"usageItems": [report_item("2026-11-03", quantity=10, gross=0.08, net=0.08)]}
    poller.client = FakeClient({"/organizations/acme/settings/billing/usage": report})
    exp.poll_once(up["billing"])
    exp.poll_once(up["billing"])
    assert up["billing"].ok
    paths = [p for p, _ in poller.client.calls]
    assert paths == [summary_path("acme"), "/organizations/acme/settings/billing/usage",
                     "/organizations/acme/settings/billing/usage"]  # the summary is not asked again
    assert samples(exp, "github_billing_cost_dollars") == {
        (("org", "acme"), ("product", "actions"), ("sku", "actions_linux")): 0.08}
    assert not any("/billing/actions" in p for p in paths)  # the retired endpoint is never used


def test_a_token_without_the_permission_marks_the_upstream_down_and_names_the_permission():
    exp, up, poller = build({"GITHUB_REPOSITORIES": "acme"})
    poller.client = FakeClient({summary_path("acme"): ApiError("auth", "github billing: HTTP 403", 403)})
    delay = exp.poll_once(up["billing"])
    u = up["billing"]
    assert not u.ok and u.failures == 1 and delay >= 60 * 0.8  # an auth failure backs off from a minute
    assert '"Administration" organization permission (read)' in u.last_error and "acme" in u.last_error
    assert samples(exp, "github_exporter_poll_errors_total")[(("reason", "auth"), ("upstream", "billing"))] == 1
    assert not samples(exp, "github_billing_cost_dollars")


def test_a_404_on_both_endpoints_says_what_it_can_mean():
    exp, up, poller = build({"GITHUB_REPOSITORIES": "acme"})
    poller.client = FakeClient({})
    exp.poll_once(up["billing"])
    assert "HTTP 404" in up["billing"].last_error and "GITHUB_BILLING_ORGANIZATIONS" in up["billing"].last_error


def test_one_failing_organization_keeps_the_others_and_its_own_last_values():
    clock = FakeClock(NOV)
    exp, up, poller = build({"GITHUB_REPOSITORIES": "acme,beta"}, clock)
    beta = {**SUMMARY, "organization": "beta"}
    poller.client = FakeClient({summary_path("acme"): SUMMARY, summary_path("beta"): beta})
    exp.poll_once(up["billing"])
    poller.client = FakeClient({summary_path("acme"): ApiError("http", "HTTP 500 after retries", 500),
                                summary_path("beta"): {**beta, "usageItems": beta["usageItems"][:1]}})
    exp.poll_once(up["billing"])
    assert not up["billing"].ok and "HTTP 500" in up["billing"].last_error
    orgs = {dict(k)["org"] for k in samples(exp, "github_billing_cost_dollars")}
    assert orgs == {"acme", "beta"}  # acme's last values are kept
    assert len([k for k in samples(exp, "github_billing_cost_dollars") if dict(k)["org"] == "beta"]) == 1


def test_last_months_values_are_not_kept_into_a_new_month():
    clock = FakeClock(datetime(2026, 11, 30, 23, 30, tzinfo=timezone.utc).timestamp())
    exp, up, poller = build({"GITHUB_REPOSITORIES": "acme"}, clock)
    poller.client = FakeClient({summary_path("acme"): SUMMARY})
    exp.poll_once(up["billing"])
    assert samples(exp, "github_billing_cost_dollars")
    clock.advance(3600)  # December: the next poll asks for 2026-12 and fails
    poller.client = FakeClient({summary_path("acme"): ApiError("http", "HTTP 502 after retries", 502)})
    exp.poll_once(up["billing"])
    assert poller.client.calls == [(summary_path("acme"), {"year": 2026, "month": 12})]
    assert not samples(exp, "github_billing_cost_dollars")  # November's month-to-date is not December's


@pytest.mark.parametrize("err", [ApiError("ratelimit", "rate limited", 403, 120.0), ApiError("auth", "HTTP 401", 401)])
def test_rate_limits_and_a_rejected_token_stop_the_whole_poll(err):
    exp, up, poller = build({"GITHUB_REPOSITORIES": "acme,beta"})
    poller.client = FakeClient({summary_path("acme"): err, summary_path("beta"): SUMMARY})
    exp.poll_once(up["billing"])
    assert [p for p, _ in poller.client.calls] == [summary_path("acme")]  # beta is not asked: same token
    assert up["billing"].last_error == str(err)
