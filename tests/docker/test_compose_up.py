"""Docker tier: `docker compose up` of the real images, then the same smoke assertions as the native
tier. Runs only where a Docker engine answers; elsewhere it skips and says why (pytest -rs)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.e2e import smoke
from tests.harness import compose


def docker_unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "no docker CLI on PATH"
    p = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                       timeout=20)
    if p.returncode != 0:
        return f"no Docker engine answers (`docker info`: {p.stderr.strip()[:200]})"
    return None


@pytest.fixture(scope="module")
def compose_stack():
    reason = docker_unavailable()
    if reason:
        pytest.skip(f"Docker tier: {reason}")
    from testcontainers.compose import DockerCompose

    stack = DockerCompose(str(compose.ROOT), compose_file_name="docker-compose.yml", build=True, wait=True)
    with stack:
        yield {"prometheus": "http://127.0.0.1:9090", "loki": "http://127.0.0.1:3100",
               "tempo": "http://127.0.0.1:3200", "otlp": "http://127.0.0.1:4318"}


def test_all_targets_up(compose_stack):
    prom = compose_stack["prometheus"]

    def all_up():
        t = smoke.get_json(f"{prom}/api/v1/targets?state=active")["data"]["activeTargets"]
        return t if t and all(x["health"] == "up" for x in t) else None

    smoke.poll("every Prometheus target up", all_up, timeout=180, every=5)


def test_otlp_signals_reach_every_store(compose_stack):
    sent = smoke.send_signals(compose_stack["otlp"], "obs-smoke-docker")
    smoke.poll("log in Loki", lambda: smoke.loki_has_log(compose_stack["loki"], sent), timeout=90)
    smoke.poll("metric in Prometheus", lambda: smoke.prometheus_has_metric(compose_stack["prometheus"], sent),
               timeout=90)
    smoke.poll("trace in Tempo", lambda: smoke.tempo_has_trace(compose_stack["tempo"], sent), timeout=90)
