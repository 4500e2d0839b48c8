"""The Railway images boot too: the stack with every service in the image its Railway service builds, started
by its Railway start command, configs baked in (tests/docker/railway-images.compose.yml; what it runs is
checked statically by test_0_override.py) comes up healthy with `up -d --wait`, and every Prometheus target
is up. Runs last: it takes the main stack's ports, so the main stack goes down (with its volumes) first."""
from __future__ import annotations

import pytest

from tests.docker.composectl import Compose, started
from tests.docker.conftest import PROJECT, URL
from tests.e2e import smoke
from tests.harness import compose

OVERRIDE = "tests/docker/railway-images.compose.yml"


@pytest.fixture(scope="module")
def railway_stack():
    yield from started(Compose(PROJECT + "-railway", [OVERRIDE]))


def test_railway_images_come_up_healthy_with_every_target_up(railway_stack):
    rows = {r["Service"]: r for r in railway_stack.ps()}
    assert set(rows) == set(compose.load_compose()["services"]), sorted(rows)
    for name in ("prometheus", "alertmanager", "loki", "tempo", "grafana", "blackbox-exporter", "webhook-sink"):
        assert rows[name].get("Image", "").startswith("obs-railway/"), (name, rows[name].get("Image"))
    bad = [s for s, r in rows.items() if r.get("State") != "running" or r.get("Health") != "healthy"]
    assert not bad, f"{bad}\n{railway_stack.diagnosis()}"

    def all_up():
        t = smoke.get_json(f"{URL['prometheus']}/api/v1/targets?state=active")["data"]["activeTargets"]
        down = [f"{x['labels'].get('job')} {x['scrapeUrl']}: {x.get('lastError')}" for x in t if x["health"] != "up"]
        assert t and not down, f"targets down: {down}"  # poll() reports the last one
        return t

    smoke.poll("every Prometheus target up on the Railway images", all_up, timeout=180, every=5)
