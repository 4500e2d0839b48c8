"""The page path on the real images: the demo app dies (SIGKILL, and it stays dead) and Alertmanager's
webhook reaches the demo sink with APIDown within the delay the shipped intervals allow: scrape interval +
the rule group's evaluation interval + the rule's `for:` + the critical route's group_wait
(tests/alerting/alertpath.py reads them from prometheus/ and alertmanager/). Runs late: it breaks the demo."""
from __future__ import annotations

import subprocess
import time

from tests.alerting import alertpath
from tests.docker.conftest import URL
from tests.e2e import smoke

SLACK = 120  # s on top of the floor: the scrape/evaluation phase, Alertmanager's dispatch, a busy runner


def test_killing_the_demo_app_pages_apidown(stack):
    floor = alertpath.floor_seconds("APIDown", "demo-app", "critical")
    smoke.poll("Prometheus scraping the demo app", lambda: [
        r for r in smoke.prom_query(URL["prometheus"], 'up{job="demo-app", service="obs-demo"}')
        if r["value"][1] == "1"], timeout=60, every=3)
    assert not alertpath.delivered(URL["sink"], "APIDown", service="obs-demo"), "APIDown before the outage"
    # restart: unless-stopped would bring it back; a crash that stays down is what pages.
    cid = stack.container("demo-app")
    subprocess.run(["docker", "update", "--restart", "no", cid], check=True, capture_output=True, timeout=60)
    killed = time.monotonic()
    stack.cmd("kill", "-s", "SIGKILL", "demo-app")
    hits = smoke.poll("APIDown for the demo app at the webhook sink",
                      lambda: alertpath.delivered(URL["sink"], "APIDown", service="obs-demo"),
                      timeout=floor["floor"] + SLACK, every=5)
    took = time.monotonic() - killed
    state = {r["Service"]: r.get("State") for r in stack.ps()}["demo-app"]
    assert state != "running", f"the demo app came back ({state}): the alert fired for a flapping target"
    _, alert = hits[0]
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"].get("runbook_url"), alert
    print(f"\nAPIDown delivered {took:.0f} s after the kill (floor {floor['floor']:.0f} s: {floor})")
