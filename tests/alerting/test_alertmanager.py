"""Alertmanager: the shipped config checked by amtool, every severity path routed, and a real
Alertmanager run proving inhibition and delivery to the local webhook sink."""
from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from types import SimpleNamespace

import pytest

from tests.conftest import ROOT, require_tool, running_stack
from tests.e2e.smoke import poll

CONFIG = ROOT / "alertmanager" / "alertmanager.yml"


def amtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(require_tool("alertmanager", "amtool")), *args], capture_output=True,
                          text=True, timeout=60)


def test_config_loads_without_secret_files():
    for f in ("pagerduty_routing_key", "slack_critical_webhook_url"):
        assert not (ROOT / "secrets" / f).exists(), "the demo has no secrets; this test assumes so"
    p = amtool("check-config", str(CONFIG))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "1 templates" in p.stdout


# Default (demo) mode: alerts carry no `notifications` label, so only the webhook sink receives.
@pytest.mark.parametrize("labels,receiver", [
    (["severity=critical", "alertname=APIDown", "service=api", "environment=prod"], "critical"),
    (["severity=high", "alertname=APIHighErrorRate", "service=api", "environment=prod"], "ops"),
    (["severity=medium", "alertname=APIHighLatency", "service=api", "environment=beta"], "dev"),
    (["severity=low", "alertname=DeploymentInProgress", "service=api"], "silent"),
    (["alertname=Unlabelled"], "default"),
    # any value but exactly "on" keeps the integrations off
    (["severity=critical", "alertname=APIDown", "notifications=off"], "critical"),
    (["severity=critical", "alertname=APIDown", "notifications=true"], "critical"),
])
def test_routes(labels, receiver):
    p = amtool("config", "routes", "test", f"--config.file={CONFIG}", f"--verify.receivers={receiver}", *labels)
    assert p.returncode == 0, p.stdout + p.stderr


# OBS_NOTIFICATIONS=on: Prometheus adds notifications="on"; Slack/PagerDuty receive and the sink still does.
@pytest.mark.parametrize("labels,receivers", [
    (["severity=critical", "alertname=APIDown", "service=api"], "critical-pagerduty-slack,critical"),
    (["severity=high", "alertname=APIHighErrorRate", "service=api"], "ops-slack,ops"),
    (["severity=medium", "alertname=APIHighLatency", "service=api"], "dev-slack,dev"),
    (["severity=low", "alertname=DeploymentInProgress", "service=api"], "silent,silent"),
    (["alertname=Unlabelled"], "silent,default"),
])
def test_routes_with_notifications_on(labels, receivers):
    p = amtool("config", "routes", "test", f"--config.file={CONFIG}", f"--verify.receivers={receivers}",
               "notifications=on", *labels)
    assert p.returncode == 0, p.stdout + p.stderr


def test_integrations_only_behind_the_notifications_route():
    """Slack/PagerDuty configs live only in receivers reached through notifications="on"; every other
    receiver is the webhook sink (or nothing), so the demo never attempts a send that needs a secret."""
    import yaml
    doc = yaml.safe_load(CONFIG.read_text())
    gated = doc["route"]["routes"][0]
    assert gated["matchers"] == ['notifications="on"'] and gated["continue"] is True
    gated_receivers = {r["receiver"] for r in gated["routes"]} | {gated["receiver"]}
    for rcv in doc["receivers"]:
        integrations = {k for k in rcv if k.endswith("_configs")}
        if integrations - {"webhook_configs"}:
            assert rcv["name"] in gated_receivers, rcv["name"]
            assert "webhook_configs" not in rcv, "the sink is posted by the always-on routes, not twice"
        elif rcv["name"] != "silent":
            assert [w["url"] for w in rcv["webhook_configs"]] == [f"http://webhook-sink:9097/alerts/{rcv['name']}"]
    # The label that route matches is Prometheus's external label, fed by compose's OBS_NOTIFICATIONS.
    prom = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    assert prom["global"]["external_labels"]["notifications"] == "${OBS_NOTIFICATIONS}"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["prometheus"]["environment"]["OBS_NOTIFICATIONS"] == "${OBS_NOTIFICATIONS:-}"


def test_route_mismatch_fails():
    p = amtool("config", "routes", "test", f"--config.file={CONFIG}", "--verify.receivers=ops", "severity=critical")
    assert p.returncode != 0


# ---------------------------------------------------------------- real Alertmanager run

def _get(url: str):
    with urllib.request.urlopen(url, timeout=3) as r:
        return json.loads(r.read())


def _post(url: str, body) -> None:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200


class Sink:
    """The compose webhook-sink service (alertmanager/webhook_sink.py, SINK_PORT 9097) as the harness runs
    it: in its own network namespace, so port 9097 is its own and two test runs on one machine never meet."""

    def __init__(self, url: str):
        self.url = url

    def notifications(self) -> list[dict]:
        return _get(self.url + "/notifications")


@pytest.fixture
def am_and_sink():
    """The real alertmanager binary and the webhook sink as compose runs them (tests/harness): the shipped
    config byte-for-byte at /etc/alertmanager with the compose mounts (templates, secrets), each service in
    its own network namespace with an /etc/hosts naming the compose services. Alertmanager therefore posts
    to the URLs written in alertmanager.yml (http://webhook-sink:9097/alerts/<receiver>) unchanged, and no
    fixed host port is bound."""
    from tests.harness.stack import NativeStack
    require_tool("alertmanager", "alertmanager")
    with running_stack(NativeStack(["alertmanager", "webhook-sink"])) as st:
        am = SimpleNamespace(url=st.url("alertmanager", 9093))
        yield am, Sink(st.url("webhook-sink", 9097))


def test_sink_is_reached_by_the_configured_url():
    """What the fixture relies on: every always-on receiver posts to the compose service name and the port
    the sink service listens on, so the harness's /etc/hosts entry is what routes the real sends."""
    import yaml
    urls = [w["url"] for r in yaml.safe_load(CONFIG.read_text())["receivers"] for w in r.get("webhook_configs", [])]
    assert urls and all(u.startswith("http://webhook-sink:9097/alerts/") for u in urls), urls
    from tests.harness import compose
    sink = compose.services()["webhook-sink"]
    assert sink.environment.get("SINK_PORT") == "9097" and sink.health_url.endswith(":9097/healthz")


def alert(name: str, severity: str, **labels) -> dict:
    return {"labels": {"alertname": name, "severity": severity, **labels},
            "annotations": {"summary": f"{name} summary", "description": f"{name} on {labels.get('service')}",
                            "runbook_url": "https://github.com/obs-stack/obs-stack/blob/main/runbooks/api-down.md",
                            "dashboard_url": "http://127.0.0.1:3000/d/obs-api"}}


def test_inhibition_and_delivery(am_and_sink):
    am, sink = am_and_sink
    t0 = time.monotonic()
    _post(am.url + "/api/v2/alerts", [
        # deployment window for "web": mutes medium/low of web, not of "shop", never high.
        alert("DeploymentInProgress", "low", service="web"),
        alert("APIHighLatency", "medium", service="web", environment="prod"),
        alert("APIHighLatency", "medium", service="shop", environment="prod"),
        alert("RailwayDeploymentFailed", "high", service="web", environment="prod"),
        # ladder: critical mutes high of the same alert and service.
        alert("APIHighErrorRate", "critical", service="api", environment="prod"),
        alert("APIHighErrorRate", "high", service="api", environment="prod"),
        alert("APIHighErrorRate", "high", service="billing", environment="prod"),
    ])

    def state():
        out = {}
        for a in _get(am.url + "/api/v2/alerts"):
            lb = a["labels"]
            out[(lb["alertname"], lb["severity"], lb.get("service"))] = a["status"]
        return out if len(out) == 7 else None

    st = poll("7 alerts in Alertmanager", state, 20, 0.25)

    def inhibited(key):
        return bool(st[key]["inhibitedBy"])

    # Inhibition is computed when alerts are read; poll until it settles.
    def settled():
        nonlocal st
        st = state() or st
        return inhibited(("APIHighLatency", "medium", "web")) and inhibited(("APIHighErrorRate", "high", "api"))

    poll("inhibition of the deployment-window and ladder targets", settled, 15, 0.25)
    assert not inhibited(("APIHighLatency", "medium", "shop")), "other service must not be muted"
    assert not inhibited(("RailwayDeploymentFailed", "high", "web")), "high is not muted by a deploy window"
    assert not inhibited(("APIHighErrorRate", "critical", "api"))
    assert not inhibited(("APIHighErrorRate", "high", "billing")), "other service's high must not be muted"
    assert not inhibited(("DeploymentInProgress", "low", "web")), "the source never mutes itself"

    def delivered(receiver, alertname, service):
        return [n for n in sink.notifications() if n["receiver"] == receiver
                and any(a["labels"].get("alertname") == alertname and a["labels"].get("service") == service
                        for a in n["alerts"])]

    crit = poll("critical notification", lambda: delivered("critical", "APIHighErrorRate", "api"), 20, 0.25)
    latency = time.monotonic() - t0
    assert crit[0]["path"] == "/alerts/critical" and crit[0]["status"] == "firing"
    a = crit[0]["alerts"][0]
    assert a["runbook_url"].endswith("/runbooks/api-down.md") and a["dashboard_url"] and a["summary"]
    assert latency < 10, f"critical group_wait is 0s; took {latency:.1f}s"
    poll("high notification to ops", lambda: delivered("ops", "APIHighErrorRate", "billing"), 40, 0.25)
    poll("high notification to ops", lambda: delivered("ops", "RailwayDeploymentFailed", "web"), 40, 0.25)
    # Muted alerts never reach a receiver; low goes nowhere. The muted rung's group (ops, same group_wait as
    # billing's) has flushed once Alertmanager counts a notification suppressed by inhibition.
    def suppressed_by_inhibition() -> float:
        with urllib.request.urlopen(am.url + "/metrics", timeout=3) as r:
            return sum(float(ln.rsplit(" ", 1)[1]) for ln in r.read().decode().splitlines()
                       if ln.startswith("alertmanager_notifications_suppressed_total{") and 'reason="inhibition"' in ln)

    poll("the muted ladder rung's group to flush (suppressed by inhibition)", suppressed_by_inhibition, 20, 0.25)
    notes = sink.notifications()
    assert not delivered("ops", "APIHighErrorRate", "api"), "muted ladder rung was delivered"
    assert not any(n["receiver"] == "silent" for n in notes)
    assert not any(a["labels"]["alertname"] == "DeploymentInProgress" for n in notes for a in n["alerts"])
    # Default mode: no Slack/PagerDuty send was even attempted (so none can fail without secret files).
    with urllib.request.urlopen(am.url + "/metrics", timeout=3) as r:
        metrics = r.read().decode()
    attempts = {}
    for line in metrics.splitlines():
        if line.startswith("alertmanager_notification_requests_total{"):
            integ = line.split('integration="', 1)[1].split('"', 1)[0]
            attempts[integ] = attempts.get(integ, 0) + float(line.rsplit(" ", 1)[1])
    assert attempts.get("webhook", 0) > 0, attempts
    assert attempts.get("slack", 0) == 0 and attempts.get("pagerduty", 0) == 0, attempts
