"""The Docker tier's fixtures: the stack as `docker compose up -d --wait --build` starts it from this repo
(one project per run, removed with its volumes at the end), and the Grafana admin password. Skips, with
the reason, where no Docker engine answers (tests/docker/composectl.py)."""
from __future__ import annotations

import os

import pytest

from tests.docker.composectl import PREFIX, Compose, log, started
from tests.harness.compose import ROOT

# Unique per run, with the prefix a later run sweeps if this one is killed before its `down -v`.
PROJECT = os.environ.get("OBS_DOCKER_PROJECT") or f"{PREFIX}{os.getpid()}"
URL = {"prometheus": "http://127.0.0.1:9090", "alertmanager": "http://127.0.0.1:9093",
       "grafana": "http://127.0.0.1:3000", "loki": "http://127.0.0.1:3100", "tempo": "http://127.0.0.1:3200",
       "otlp": "http://127.0.0.1:4318", "sink": "http://127.0.0.1:9097", "demo": "http://127.0.0.1:8000",
       "simulator": "http://127.0.0.1:8600"}
OPERATOR_PASSWORD = ROOT / "secrets" / "grafana_admin_password"


@pytest.fixture(scope="session")
def stack():
    """The main stack, up once for the session and removed with its volumes at the end."""
    yield from started(Compose(PROJECT))


@pytest.fixture(scope="session")
def admin(stack) -> tuple[str, str]:
    """Grafana's admin credentials, as README tells a user to find them: secrets/grafana_admin_password when
    the operator wrote one, else the password grafana/entrypoint.sh generated into the grafana-data volume."""
    if OPERATOR_PASSWORD.exists():
        log("using the operator's secrets/grafana_admin_password")
        return "admin", OPERATOR_PASSWORD.read_text().strip()
    pw = stack.exec("grafana", "cat", "/var/lib/grafana/.admin_password").strip()
    assert len(pw) >= 16, "the generated Grafana admin password is missing or short"
    log("read the generated Grafana admin password from the grafana-data volume")
    return "admin", pw
