"""The Railway images boot too: the stack with every Dockerfile-built Railway image in place of the
upstream image plus mounts (tests/docker/railway-images.compose.yml) comes up healthy and every
Prometheus target is up. Runs after the main stack's tests (it takes the same ports)."""
from __future__ import annotations

import os

import pytest

from tests.docker.composectl import Compose, started
from tests.docker.conftest import PROJECT, URL
from tests.e2e import smoke

OVERRIDE = "tests/docker/railway-images.compose.yml"


@pytest.fixture(scope="module")
def railway_stack():
    yield from started(Compose(os.environ.get("OBS_DOCKER_RAILWAY_PROJECT", PROJECT + "-railway"), [OVERRIDE]))


def test_railway_images_come_up_healthy_with_every_target_up(railway_stack):
    rows = railway_stack.ps()
    images = {r["Service"]: r.get("Image", "") for r in rows}
    assert images["loki"].startswith("obs-railway/") and images["tempo"].startswith("obs-railway/"), images
    bad = [r["Service"] for r in rows if r.get("State") != "running" or r.get("Health") != "healthy"]
    assert not bad, railway_stack.diagnosis()

    def all_up():
        t = smoke.get_json(f"{URL['prometheus']}/api/v1/targets?state=active")["data"]["activeTargets"]
        return t if t and all(x["health"] == "up" for x in t) else None

    smoke.poll("every Prometheus target up on the Railway images", all_up, timeout=180, every=5)
