"""The alert path on the native stack (tests/harness): real Prometheus and Alertmanager with the shipped
configs, the webhook sink and the demo app. Shared by test_e2e_alert_path.py and
`python -m scripts.bench_alert_latency`. Everything here talks to the harness's 127.x addresses only."""
from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from tests.e2e.smoke import poll

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ["prometheus", "alertmanager", "webhook-sink", "demo-app", "demo-loadgen"]


def get_json(url: str, timeout: float = 5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def query(prom: str, expr: str) -> list:
    r = get_json(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert r["status"] == "success", r
    return r["data"]["result"]


def notifications(sink: str, receiver: str | None = None) -> list[dict]:
    q = f"?receiver={receiver}" if receiver else ""
    return get_json(f"{sink}/notifications{q}")


def delivered(sink: str, alertname: str, **labels) -> list[tuple[dict, dict]]:
    """(notification, alert) pairs for firing alerts named `alertname` with these labels."""
    out = []
    for n in notifications(sink):
        for a in n["alerts"]:
            if a["status"] == "firing" and a["labels"].get("alertname") == alertname and \
                    all(a["labels"].get(k) == v for k, v in labels.items()):
                out.append((n, a))
    return out


def _seconds(d: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)(ms|s|m|h)", str(d)))


def floor_seconds(alertname: str = "APIDown", job: str = "demo-app", severity: str = "critical") -> dict:
    """The worst-case delay the shipped intervals allow from an outage to the webhook: scrape interval of
    `job` + evaluation interval of the alert's group + its `for` + the Alertmanager route's group_wait."""
    prom = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    g = prom.get("global", {})
    scrape = next((c.get("scrape_interval", g.get("scrape_interval", "1m")) for c in prom["scrape_configs"]
                   if c["job_name"] == job), g.get("scrape_interval", "1m"))
    evaluation = g.get("evaluation_interval", "1m")
    for_ = "0s"
    for f in sorted((ROOT / "prometheus" / "rules").glob("*.yml")):
        for grp in (yaml.safe_load(f.read_text()) or {}).get("groups", []):
            for r in grp["rules"]:
                if r.get("alert") == alertname and r.get("labels", {}).get("severity") == severity:
                    evaluation = grp.get("interval", evaluation)
                    for_ = r.get("for", "0s")
    am = yaml.safe_load((ROOT / "alertmanager" / "alertmanager.yml").read_text())
    wait = am["route"].get("group_wait", "30s")
    for r in am["route"].get("routes", []):
        if f'severity="{severity}"' in r.get("matchers", []):
            wait = r.get("group_wait", wait)
            break
    parts = {"scrape_interval": _seconds(scrape), "evaluation_interval": _seconds(evaluation),
             "for": _seconds(for_), "group_wait": _seconds(wait)}
    parts["floor"] = sum(parts.values())
    return parts


def wait_until_watching(stack, timeout: float = 90) -> None:
    """Prometheus scrapes the demo app (up == 1), has evaluated the APIDown group, and knows Alertmanager."""
    prom = stack.url("prometheus", 9090)
    poll("demo-app target up", lambda: [r for r in query(prom, 'up{job="demo-app", service="obs-demo"}')
                                        if r["value"][1] == "1"], timeout)

    def evaluated():
        groups = get_json(f"{prom}/api/v1/rules?type=alert")["data"]["groups"]
        return any(g["name"] == "api-up" and g.get("lastEvaluation", "").startswith("20") for g in groups)
    poll("the api-up rule group evaluated", evaluated, timeout)
    poll("Prometheus discovered Alertmanager",
         lambda: get_json(f"{prom}/api/v1/alertmanagers")["data"]["activeAlertmanagers"], timeout)


def active_alerts(prom: str) -> list[dict]:
    return [r["metric"] for r in query(prom, "ALERTS")]
