"""The Docker tier's fixtures: the stack as `docker compose up -d --wait` starts it from this repo, and the
Grafana admin password it generated. Skips, with the reason, where no Docker engine answers."""
from __future__ import annotations

import os

import pytest

from tests.docker.composectl import Compose, log, started

PROJECT = os.environ.get("OBS_DOCKER_PROJECT", "obs-docker-tier")
URL = {"prometheus": "http://127.0.0.1:9090", "alertmanager": "http://127.0.0.1:9093",
       "grafana": "http://127.0.0.1:3000", "loki": "http://127.0.0.1:3100", "tempo": "http://127.0.0.1:3200",
       "otlp": "http://127.0.0.1:4318", "sink": "http://127.0.0.1:9097", "demo": "http://127.0.0.1:8000"}


@pytest.fixture(scope="session")
def stack():
    """The main stack, up once for the session and removed with its volumes at the end."""
    yield from started(Compose(PROJECT))


@pytest.fixture(scope="session")
def admin(stack) -> tuple[str, str]:
    """Grafana's admin credentials: the password entrypoint.sh generated into the grafana-data volume."""
    pw = stack.exec("grafana", "cat", "/var/lib/grafana/.admin_password").strip()
    assert len(pw) >= 16, "the generated Grafana admin password is missing or short"
    log("read the generated Grafana admin password from the grafana-data volume")
    return "admin", pw
