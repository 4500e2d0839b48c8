"""Helpers and the `procs` fixture: the simulator and exporters as subprocesses on 127.0.0.1 with free ports, always torn down."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(fn, timeout: float = 20.0, interval: float = 0.1, what: str = "condition"):
    """Poll fn() until it returns a truthy value; fail with the last value/exception at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = fn()
            if v:
                return v
            last = v
        except Exception as e:  # noqa: BLE001 - shown if the deadline passes
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def http(method: str, url: str, body=None, timeout: float = 10.0, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Proc:
    def __init__(self, argv, env, port, log_path):
        self.port = port
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.p = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                  start_new_session=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        self._log.flush()
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            return fh.read()

    def log_lines(self) -> list[dict]:
        out = []
        for line in self.logs().splitlines():
            line = line.strip()
            if line:
                out.append(json.loads(line))  # every line must be JSON
        return out

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(timeout=5)
        self._log.close()


class Sim(Proc):
    def ctl(self, method, path, body=None):
        st, data = http(method, self.url + "/_control/" + path, body)
        assert st == 200, (st, data)
        return json.loads(data)

    def world(self, platform):
        return self.ctl("GET", f"world/{platform}")

    def requests(self, platform=None, since=0.0):
        q = f"requests?since={since}" + (f"&platform={platform}" if platform else "")
        return self.ctl("GET", q)["requests"]

    def fault(self, **spec):
        return self.ctl("POST", "faults", spec)

    def inject(self, platform, **spec):
        return self.ctl("POST", f"inject/{platform}", spec)


class Exporter(Proc):
    def metrics_text(self) -> str:
        st, body = http("GET", self.url + "/metrics")
        assert st == 200
        return body.decode()

    def samples(self) -> list:
        out = []
        for fam in text_string_to_metric_families(self.metrics_text()):
            out.extend(fam.samples)
        return out

    def value(self, name, **labels) -> float | None:
        """Sum of the samples of ``name`` whose labels include ``labels`` (None if there are none)."""
        vals = [s.value for s in self.samples() if s.name == name
                and all(s.labels.get(k) == v for k, v in labels.items())]
        return sum(vals) if vals else None

    def health(self) -> dict:
        st, body = http("GET", self.url + "/healthz")
        assert st == 200
        return json.loads(body)

    def upstream_ok(self, upstream) -> bool:
        return self.health()["upstreams"][upstream]["ok"]

    def polled(self, upstream, after: float) -> bool:
        """True once the upstream has succeeded after wall time ``after``."""
        u = self.health()["upstreams"][upstream]
        age = u["last_success_age_seconds"]
        return age is not None and time.time() - age > after


def _base_env(extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "VERCEL_", "RAILWAY_",
                                                                      "SUPABASE_", "OBS_", "SIM_"))}
    env.update({"PYTHONUNBUFFERED": "1", "LISTEN_ADDR": "127.0.0.1", "LOG_LEVEL": "info"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture
def procs(tmp_path):
    started: list[Proc] = []

    def start_sim(*args: str, wait=True) -> Sim:
        port = free_port()
        argv = [PY, "-m", "obs_bridges", "simulator", "--listen-addr", "127.0.0.1", "--port", str(port),
                "--supabase-incidents", "0", *args]
        s = Sim(argv, _base_env({}), port, str(tmp_path / f"sim-{port}.log"))
        started.append(s)
        if wait:
            wait_for(lambda: http("GET", s.url + "/_control/health", timeout=1)[0] == 200, 20,
                     what="simulator readiness")
        return s

    def start_exporter(platform: str, env: dict, wait_upstream: str | None = None, timeout=20.0) -> Exporter:
        port = free_port()
        e = Exporter([PY, "-m", "obs_bridges", platform], _base_env({"LISTEN_PORT": port, **env}), port,
                     str(tmp_path / f"{platform}-{port}.log"))
        started.append(e)
        wait_for(lambda: http("GET", e.url + "/healthz", timeout=1)[0] == 200, timeout,
                 what=f"{platform} exporter readiness")
        if wait_upstream:
            wait_for(lambda: e.upstream_ok(wait_upstream), timeout, what=f"first {wait_upstream} poll")
        return e

    class P:
        sim = staticmethod(start_sim)
        exporter = staticmethod(start_exporter)
        tmp = tmp_path

    yield P
    for p in reversed(started):
        p.stop()


def new_tmp_file(content: str) -> str:
    fd, path = tempfile.mkstemp()
    with os.fdopen(fd, "w") as fh:
        fh.write(content)
    return path
