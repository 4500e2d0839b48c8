"""The page path on the real images: the demo app dies and Alertmanager's webhook reaches the demo sink
with APIDown, within the delay the shipped intervals allow (scrape + evaluation + for + group_wait)."""
from __future__ import annotations

import time

from tests.alerting import alertpath
from tests.docker.conftest import URL
from tests.e2e import smoke


def test_killing_the_demo_app_pages_apidown(stack):
    floor = alertpath.floor_seconds("APIDown", "demo-app", "critical")
    assert not alertpath.delivered(URL["sink"], "APIDown", service="obs-demo"), "APIDown before the outage"
    killed = time.monotonic()
    # `kill` then keep it down: restart: unless-stopped would bring it back.
    stack.cmd("kill", "demo-app")
    stack.cmd("stop", "demo-app")
    hits = smoke.poll("APIDown for the demo app at the webhook sink",
                      lambda: alertpath.delivered(URL["sink"], "APIDown", service="obs-demo"), 
                      timeout=floor["floor"] + 120, every=5)
    took = time.monotonic() - killed
    n, alert = hits[0]
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"].get("runbook_url"), alert
    print(f"\nAPIDown delivered {took:.0f} s after the kill (floor {floor['floor']:.0f} s: {floor})")
