"""Fixtures for the demo/instrumentation tests: an in-test OTLP receiver and the demo app as a real
`python -m obs_demo serve` process on 127.0.0.1, exporting to that receiver."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.demo.otlp_receiver import OtlpReceiver
from tests.support.ports import free_port
from tests.support.wait import StopWaiting, WaitTimeout, wait_for


class DemoProcess:
    def __init__(self, tmp: Path, otlp_endpoint: str, extra_env: dict | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / "demo-app.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update({
            "LISTEN_HOST": "127.0.0.1", "LISTEN_PORT": str(self.port), "OBS_DEMO_DB": str(tmp / "demo.sqlite"),
            "OBS_DEMO_SPEED": "0.05", "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
            "OTEL_SERVICE_NAME": "obs-demo-test", "DEPLOYMENT_ENVIRONMENT": "test",
            "OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_BLRP_SCHEDULE_DELAY": "100",
            "OBS_USER_ID_SALT": "test-salt", "PYTHONUNBUFFERED": "1", "OBS_WEBVITALS_TRUSTED_PROXY_HOPS": "1",
        })
        env.update(extra_env or {})
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "obs_demo", "serve"], env=env, stdout=self.logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 45.0) -> None:
        def healthy() -> bool:
            if self.proc.poll() is not None:
                raise StopWaiting(f"exited {self.proc.returncode}")
            with urllib.request.urlopen(self.base + "/healthz", timeout=2) as r:
                return r.status == 200

        try:
            wait_for(healthy, timeout, 0.2, "the demo app's /healthz")
        except WaitTimeout as e:
            raise WaitTimeout(f"{e}:\n{self.log_tail()}") from None

    def log_lines(self) -> list[dict]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"_not_json": line})
        return out

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.logf.close()


@pytest.fixture(scope="module")
def otlp_receiver():
    with OtlpReceiver() as r:
        yield r


@pytest.fixture(scope="module")
def demo_app(otlp_receiver, tmp_path_factory):
    d = DemoProcess(tmp_path_factory.mktemp("demo"), otlp_receiver.endpoint)
    try:
        d.wait_ready()
        yield d
    finally:
        d.stop()


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
         timeout: float = 15) -> tuple[int, bytes, dict]:
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as e:
        return e.code, e.read(), {k.lower(): v for k, v in e.headers.items()}
