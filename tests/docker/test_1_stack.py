"""The stack as a user gets it: every service healthy, Grafana locked, every datasource and dashboard
working through Grafana itself (the real image: the only place Grafana runs)."""
from __future__ import annotations

import pytest
import yaml

from tests.dashboards import dashlib
from tests.docker.composectl import http
from tests.docker.conftest import URL
from tests.e2e import smoke
from tests.harness import compose

DATASOURCES = [d["uid"] for d in yaml.safe_load(
    (compose.ROOT / "grafana/provisioning/datasources/datasources.yml").read_text())["datasources"]]


def test_every_service_is_running_and_healthy(stack):
    rows = {r["Service"]: r for r in stack.ps()}
    want = set(compose.load_compose()["services"])
    assert set(rows) == want, f"services: {sorted(rows)} vs compose {sorted(want)}"
    bad = [f"{s}: {r.get('State')}/{r.get('Health')}" for s, r in rows.items()
           if r.get("State") != "running" or r.get("Health") != "healthy"]
    assert not bad, f"{bad}\n{stack.diagnosis()}"


def test_grafana_refuses_anonymous_access_and_accepts_the_generated_password(stack, admin):
    status, _ = http(f"{URL['grafana']}/api/search")
    assert status == 401, f"anonymous /api/search answered {status}"
    status, _ = http(f"{URL['grafana']}/api/search", auth=("admin", "admin"))
    assert status == 401, "Grafana accepted its built-in default admin password"
    status, body = http(f"{URL['grafana']}/api/user", auth=admin)
    assert status == 200 and body["login"] == "admin", body


# A datasource whose plugin has no backend health check (Grafana answers 404/501) is tested the way its
# "Save & test" button does, through Grafana's datasource proxy: Alertmanager's status, Tempo's echo.
PROXY_TEST = {"alertmanager": ("/api/v2/status", lambda body: isinstance(body, dict) and body.get("cluster")),
              "tempo": ("/api/echo", lambda body: isinstance(body, str) and body.strip() == "echo")}


@pytest.mark.parametrize("uid", DATASOURCES)
def test_datasource_health(stack, admin, uid):
    def healthy():
        status, body = http(f"{URL['grafana']}/api/datasources/uid/{uid}/health", auth=admin)
        if status == 200 and isinstance(body, dict) and str(body.get("status", "")).upper() == "OK":
            return body
        if status in (404, 501) and uid in PROXY_TEST:
            path, ok = PROXY_TEST[uid]
            status, body = http(f"{URL['grafana']}/api/datasources/proxy/uid/{uid}{path}", auth=admin)
            return body if status == 200 and ok(body) else None
        return None

    smoke.poll(f"Grafana's health check of datasource {uid}", healthy, timeout=120, every=5)


def test_every_provisioned_dashboard_loads(stack, admin):
    files = dashlib.dashboards()
    assert files
    for uid, d in files.items():
        status, body = http(f"{URL['grafana']}/api/dashboards/uid/{uid}", auth=admin)
        assert status == 200, f"dashboard {uid} ({d['_path']}): HTTP {status} {str(body)[:300]}"
        got = body["dashboard"]
        assert got["title"] == d["title"]
        assert len(dashlib.panels(got)) == len(dashlib.panels(d)), f"{uid}: panels differ from {d['_path']}"
    status, found = http(f"{URL['grafana']}/api/search?type=dash-db&limit=500", auth=admin)
    assert status == 200 and {f["uid"] for f in found} >= set(files), "search does not list every dashboard"


def test_every_prometheus_target_is_up(stack):
    def all_up():
        t = smoke.get_json(f"{URL['prometheus']}/api/v1/targets?state=active")["data"]["activeTargets"]
        down = [f"{x['labels'].get('job')} {x['scrapeUrl']}: {x.get('lastError')}" for x in t if x["health"] != "up"]
        assert t and not down, f"targets down: {down}"  # poll() reports the last one
        return t

    smoke.poll("every Prometheus target up", all_up, timeout=180, every=5)
