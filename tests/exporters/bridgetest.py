"""Helpers and the `procs` fixture: the simulator and exporters as subprocesses on 127.0.0.1 with free ports, always torn down.

Teardown kills each process's whole process group (every process is started in its own session), also
when a test fails mid-start or a readiness wait times out (that process is stopped at once, its log in the
failure). The fixture then checks that no process of those groups is left and errors the test if one is.
When the test process itself dies (killed by a runner's timeout, SIGKILL, os._exit), the kernel kills every
started process: each is exec'd with PR_SET_PDEATHSIG=SIGKILL through tests/support/pdeathsig.py (the death
signal follows the thread that started it, so start processes from the test's own thread)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import pdeathsig
from tests.support.ports import free_port
from tests.support.wait import WaitTimeout, wait_for

PY = sys.executable


def group_members(pgids) -> dict[int, str]:
    """Live (non-zombie) processes whose process group is in `pgids`: pid -> command line."""
    pgids = set(pgids)
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", encoding="utf-8", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            if fields[0] == "Z" or int(fields[2]) not in pgids:  # state, pgrp
                continue
            with open(f"/proc/{d}/cmdline", "rb") as fh:
                out[int(d)] = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()[:200]
        except (OSError, IndexError, ValueError):
            continue  # exited while we looked
    return out


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


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
        self._stopped = False
        self._log = open(log_path, "wb")
        try:
            self.p = subprocess.Popen(pdeathsig.launcher(argv), env=env,
                                      stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        except BaseException:
            self._log.close()
            raise
        self.pgid = self.p.pid  # start_new_session: the process leads its own group

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        if not self._log.closed:
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

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM to the whole process group, SIGKILL to whatever of it is left after `grace` seconds
        (also when the leader has already exited); never raises, so one stop cannot skip the others."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.p.poll() is None:
                _killpg(self.pgid, signal.SIGTERM)
                try:
                    self.p.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    pass
            if self.p.poll() is None or group_members([self.pgid]):
                _killpg(self.pgid, signal.SIGKILL)
                try:
                    self.p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass  # reported by the fixture's survivor check
        finally:
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

    def more_polls(self, upstream, n: int = 2, every: float = 1.0, timeout: float = 20) -> None:
        """Wait for n more successful polls (poll interval `every`), so that a check that nothing changed
        (nothing counted twice) has seen fresh polls instead of an arbitrary sleep."""
        after = time.time() + (n - 1) * every + 0.05
        wait_for(lambda: self.polled(upstream, after), timeout, what=f"{n} more polls of {upstream}")


def _base_env(extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "VERCEL_", "RAILWAY_",
                                                                      "SUPABASE_", "OBS_", "SIM_"))}
    env.update({"PYTHONUNBUFFERED": "1", "LISTEN_ADDR": "127.0.0.1", "LOG_LEVEL": "info"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _ready_or_stop(proc: Proc, fn, timeout: float, what: str) -> None:
    """wait_for(fn); if it fails (or the wait is interrupted) the process is stopped at once and its log
    tail is part of the failure."""
    try:
        wait_for(fn, timeout, what=what)
    except AssertionError as e:
        proc.stop()
        raise AssertionError(f"{e}\nlog tail:\n{proc.logs()[-2000:]}") from None
    except BaseException:
        proc.stop()
        raise


def stop_all(started: list[Proc], settle: float = 5.0) -> dict[int, str]:
    """Stop every process (each stop is independent of the others), then return what is left of their
    process groups after up to `settle` seconds (SIGKILLed once more); {} when teardown was clean."""
    for p in reversed(started):
        try:
            p.stop()
        except BaseException:  # noqa: BLE001 - stop() does not raise; never let one skip the others
            pass
    pgids = [p.pgid for p in started]

    def gone() -> bool:
        if not group_members(pgids):
            return True
        for g in pgids:
            _killpg(g, signal.SIGKILL)
        return False

    with contextlib.suppress(WaitTimeout):
        wait_for(gone, settle, 0.1, "the process groups to be gone")
    return group_members(pgids)


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
            _ready_or_stop(s, lambda: http("GET", s.url + "/_control/health", timeout=1)[0] == 200, 20,
                           "simulator readiness")
        return s

    def start_exporter(platform: str, env: dict, wait_upstream: str | None = None, timeout=20.0) -> Exporter:
        port = free_port()
        e = Exporter([PY, "-m", "obs_bridges", platform], _base_env({"LISTEN_PORT": port, **env}), port,
                     str(tmp_path / f"{platform}-{port}.log"))
        started.append(e)
        _ready_or_stop(e, lambda: http("GET", e.url + "/healthz", timeout=1)[0] == 200, timeout,
                       f"{platform} exporter readiness")
        if wait_upstream:
            _ready_or_stop(e, lambda: e.upstream_ok(wait_upstream), timeout, f"first {wait_upstream} poll")
        return e

    class P:
        sim = staticmethod(start_sim)
        exporter = staticmethod(start_exporter)
        tmp = tmp_path

    try:
        yield P
    finally:
        left = stop_all(started)
        if left:
            pytest.fail(f"processes survived teardown (killed now): {left}")


def new_tmp_file(content: str) -> str:
    fd, path = tempfile.mkstemp()
    with os.fdopen(fd, "w") as fh:
        fh.write(content)
    return path
