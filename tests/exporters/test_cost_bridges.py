"""The cost upstreams of the GitHub, Vercel and Railway bridges against the simulator over real HTTP on 127.0.0.1:
values equal what the billing APIs answer, the summary-to-report fallback, tokens without the billing
permission, demo mode, and month-to-date that grows with the simulated world's time."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from urllib.parse import urlencode

from obs_bridges import railway
from obs_bridges.github_billing import label
from tests.exporters.bridgetest import http, wait_for

GH_TOKEN = "ghp_costtest_0123456789"
SUMMARY = "/github/organizations/demo-org/settings/billing/usage/summary"
REPORT = "/github/organizations/demo-org/settings/billing/usage"


def ym() -> tuple[int, int]:
    d = datetime.now(timezone.utc)
    return d.year, d.month


def get(sim, path, token=GH_TOKEN, **q):
    st, body = http("GET", f"{sim.url}{path}?{urlencode(q)}", headers={"Authorization": f"Bearer {token}"})
    assert st == 200, (st, body[:300])
    return body


def gh_env(sim, **kw):
    return {"GITHUB_API_URL": sim.url + "/github", "GITHUB_TOKEN": GH_TOKEN, "GITHUB_REPOSITORIES": "demo-org",
            "GITHUB_POLL_INTERVAL_SECONDS": "5", **kw}


def gh_start(procs, **kw):
    sim = procs.sim("--github-repos", "3")
    sim.ctl("POST", "rate", {"platform": "github", "per_hour": 0})
    return sim, procs.exporter("github", gh_env(sim, **kw), wait_upstream="billing")


def by_sku(exp, name="github_billing_cost_dollars") -> dict:
    return {(s.labels["product"], s.labels["sku"]): s.value for s in exp.samples() if s.name == name}


def summary_net(sim) -> dict:
    y, m = ym()
    items = json.loads(get(sim, SUMMARY, year=y, month=m))["usageItems"]
    return {(label(i["product"]), label(i["sku"])): i["netAmount"] for i in items}


def same_as_api(got: dict, expected_fn, tol=1e-6) -> bool:
    """The exporter's values against the API's answer now or, across an hour the API settled meanwhile, before."""
    exp_now = expected_fn()
    return got.keys() == exp_now.keys() and all(abs(got[k] - exp_now[k]) <= tol for k in got)


def test_github_billing_equals_the_summary_and_never_calls_the_retired_endpoint(procs):
    sim = procs.sim("--github-repos", "3")
    sim.ctl("POST", "rate", {"platform": "github", "per_hour": 0})
    before = summary_net(sim)
    exp = procs.exporter("github", gh_env(sim), wait_upstream="billing")
    got = by_sku(exp)
    assert ("actions", "actions_linux") in got and ("copilot", "copilot_business") in got
    assert same_as_api(got, lambda: before) or same_as_api(got, lambda: summary_net(sim))
    qty = {(s.labels["sku"], s.labels["unit"]) for s in exp.samples() if s.name == "github_billing_quantity"}
    assert ("actions_linux", "minutes") in qty and ("copilot_business", "usermonths") in qty
    y, m = ym()
    billing = [r for r in sim.requests("github") if "/settings/billing" in r["path"]]
    assert billing and all(r["path"] == SUMMARY and r["status"] == 200 for r in billing)
    assert all(dict(kv.split("=") for kv in r["query"].split("&")) == {"year": str(y), "month": str(m)}
               for r in billing)
    assert exp.health()["upstreams"]["runs"]["ok"]  # the runs are polled as before
    assert exp.value("github_api_requests_total", endpoint="billing_usage_summary", code="200") >= 1


def test_github_falls_back_to_the_usage_report_when_the_summary_is_gone(procs):
    sim = procs.sim("--github-repos", "3")
    sim.ctl("POST", "rate", {"platform": "github", "per_hour": 0})
    sim.fault(platform="github", kind="http5xx", status=404, path="/billing/usage/summary")
    exp = procs.exporter("github", gh_env(sim), wait_upstream="billing")
    got = by_sku(exp)
    y, m = ym()
    report = json.loads(get(sim, REPORT, year=y, month=m))["usageItems"]
    expected: dict = {}
    for i in report:
        k = (label(i["product"]), label(i["sku"]))
        expected[k] = expected.get(k, 0.0) + i["netAmount"]
    assert got.keys() == expected.keys()
    assert all(abs(got[k] - expected[k]) < 1e-3 for k in got), (got, expected)
    paths = [r["path"] for r in sim.requests("github") if "/settings/billing" in r["path"]]
    assert paths[:2] == [SUMMARY, REPORT]
    sim.ctl("DELETE", "faults")
    # the report's sums are the summary's figures
    assert all(abs(v - summary_net(sim)[k]) < 1e-3 for k, v in got.items())


def test_github_token_without_the_billing_permission_leaves_runs_working(procs):
    token = "nobilling_ghp_costtest_42"
    sim = procs.sim("--github-repos", "2")
    sim.ctl("POST", "rate", {"platform": "github", "per_hour": 0})
    exp = procs.exporter("github", gh_env(sim, GITHUB_TOKEN=token), wait_upstream="runs")
    wait_for(lambda: exp.value("github_exporter_poll_errors_total", upstream="billing", reason="auth") == 1, 10,
             what="the billing poll's 403")
    h = exp.health()["upstreams"]
    assert h["runs"]["ok"] and not h["billing"]["ok"]
    assert '"Administration" organization permission (read)' in h["billing"]["last_error"]
    assert exp.value("github_up") == 0 and exp.value("github_billing_cost_dollars") is None
    lines = [ln for ln in exp.log_lines() if ln.get("upstream") == "billing"]
    assert lines and "Administration" in lines[0]["msg"] and lines[0]["level"] in ("warning", "warn")
    assert token not in exp.logs()
    assert exp.p.poll() is None  # still running


def test_github_month_to_date_grows_with_the_worlds_time(procs):
    sim, exp = gh_start(procs)
    first = sum(by_sku(exp).values())
    exp.stop()
    sim.ctl("POST", "advance", {"seconds": 3 * 3600})
    again = procs.exporter("github", gh_env(sim), wait_upstream="billing")
    assert sum(by_sku(again).values()) > first


def vc_env(sim, **kw):
    return {"VERCEL_API_URL": sim.url + "/vercel", "VERCEL_TOKEN": "vc_costtest", "VERCEL_TEAM_ID": "team_demo",
            "VERCEL_POLL_INTERVAL_SECONDS": "5", **kw}


def vercel_expected(sim) -> tuple[dict, dict]:
    now = datetime.now(timezone.utc)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    q = {"teamId": "team_demo", "from": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
         "to": datetime.fromtimestamp(now.timestamp() // 86400 * 86400 + 86400, timezone.utc).strftime(
             "%Y-%m-%dT%H:%M:%SZ")}
    by_service: dict = {}
    by_project: dict = {}
    for ln in get(sim, "/vercel/v1/billing/charges", "vc_costtest", **q).decode().splitlines():
        x = json.loads(ln)
        by_service[x["ServiceName"]] = by_service.get(x["ServiceName"], 0.0) + x["BilledCost"]
        p = x["Tags"]["ProjectName"]
        by_project[p] = by_project.get(p, 0.0) + x["BilledCost"]
    return by_service, by_project


def test_vercel_charges_by_service_and_project_equal_the_api(procs):
    sim = procs.sim("--vercel-projects", "3")
    before = vercel_expected(sim)
    exp = procs.exporter("vercel", vc_env(sim), wait_upstream="billing")
    svc = {s.labels["service"]: s.value for s in exp.samples() if s.name == "vercel_billing_cost_dollars"}
    proj = {s.labels["project"]: s.value for s in exp.samples() if s.name == "vercel_billing_project_cost_dollars"}
    assert set(proj) == set(sim.world("vercel")["projects"].values())
    for want in (before, vercel_expected(sim)):
        if all(abs(svc.get(k, -1) - v) < 1e-4 for k, v in want[0].items()) and svc.keys() == want[0].keys():
            assert all(abs(proj[k] - v) < 1e-4 for k, v in want[1].items())
            break
    else:
        raise AssertionError(f"exporter {svc} differs from the API {before[0]}")
    # the first poll reads the month up to the end of today a week at a time
    weeks = -(-datetime.now(timezone.utc).day // 7)
    assert exp.value("vercel_api_requests_total", endpoint="billing_charges", code="200") in (weeks, weeks + 1)
    reqs = [r for r in sim.requests("vercel") if r["path"] == "/vercel/v1/billing/charges"]
    assert all(r["status"] == 200 and "teamId=team_demo" in r["query"] for r in reqs)  # the test's own too


def test_vercel_token_without_the_billing_role(procs):
    sim = procs.sim("--vercel-projects", "2")
    exp = procs.exporter("vercel", vc_env(sim, VERCEL_TOKEN="nobilling_vc"), wait_upstream="deployments")
    wait_for(lambda: exp.value("vercel_exporter_poll_errors_total", upstream="billing", reason="auth") == 1, 10,
             what="the billing poll's 403")
    err = exp.health()["upstreams"]["billing"]["last_error"]
    assert "Billing" in err and "team team_demo" in err and exp.health()["upstreams"]["deployments"]["ok"]


def test_railway_cost_to_date_is_the_usage_so_far_at_published_prices(procs):
    sim = procs.sim("--railway-projects", "2")
    env = {"RAILWAY_API_URL": sim.url + "/railway/graphql/v2", "RAILWAY_TOKEN": "rw_costtest"}

    def expected():
        out = {}
        for p in sim.world("railway")["projects"]:
            body = {"query": "query($p: String!) { u: usage(projectId: $p, measurements: [CPU_USAGE, MEMORY_USAGE_GB, "
                             "NETWORK_TX_GB, DISK_USAGE_GB, BACKUP_USAGE_GB]) { measurement value } }",
                    "variables": {"p": p["id"]}}
            st, data = http("POST", sim.url + "/railway/graphql/v2", body, headers={"Authorization": "Bearer rw_costtest"})
            rows = json.loads(data)["data"]["u"]
            out[p["name"]] = railway.estimated_cost({r["measurement"]: r["value"] for r in rows})
        return out

    before = expected()
    exp = procs.exporter("railway", env, wait_upstream="cost_to_date")
    got = {s.labels["project"]: s.value for s in exp.samples() if s.name == "railway_cost_to_date_dollars"}
    after = expected()
    assert got in (before, after), (got, before, after)
    est = {s.labels["project"]: s.value for s in exp.samples() if s.name == "railway_estimated_cost_dollars"}
    assert all(0 < got[p] <= est[p] for p in got)  # so far, at most the estimate for the whole period


def test_demo_mode_reads_every_cost_api_of_the_simulator(procs):
    sim = procs.sim()
    demo = {"OBS_DEMO_SIMULATOR_URL": sim.url}
    for platform, upstream, metric in (("github", "billing", "github_billing_cost_dollars"),
                                       ("vercel", "billing", "vercel_billing_cost_dollars"),
                                       ("railway", "cost_to_date", "railway_cost_to_date_dollars")):
        exp = procs.exporter(platform, demo, wait_upstream=upstream)
        rows = [s for s in exp.samples() if s.name == metric]
        assert rows and all(s.labels["demo"] == "true" and s.value >= 0 for s in rows), platform
        exp.stop()
