"""Driving `docker compose` for the Docker tier through its CLI: one project at a time (the stack publishes
fixed ports on 127.0.0.1), `up -d --wait --build` with a bound and live progress, and on failure the state
and logs of what did not come up. Every project is removed with its volumes at the end.

Environment:
  OBS_DOCKER_TIER=skip     skip the tier (the workflow's native job; the docker job runs it)
  OBS_DOCKER_TIER=require  fail instead of skipping where no engine answers (the workflow's docker job)
  OBS_DOCKER_LOGS=DIR      keep every service's log there when a project goes down (the workflow uploads it)
  OBS_DOCKER_PROJECT=NAME  the main project's name (default: obs-dt-<pid>, unique per run)"""
from __future__ import annotations

import base64
import collections
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.harness import compose

ROOT = compose.ROOT
PREFIX = "obs-dt-"         # every project this tier creates; leftovers of a killed run are swept by it
WAIT_TIMEOUT = 600         # s for `up --wait` (healthchecks); the first run also builds and pulls, below
UP_TIMEOUT = 1500          # s for the whole `up` command, builds and pulls included
MIN_COMPOSE = (2, 24, 4)   # !reset / !override in the Railway-images override, `up --wait-timeout`
# What the stack is started with, whatever the caller's shell holds: the URLs the tests use, no real
# notifications, and the demo app as "prod" so the SLO views have data (docker-compose.yml's
# DEMO_ENVIRONMENT knob; the native dashboard test runs it the same way).
STACK_ENV = {"GRAFANA_BIND": "127.0.0.1", "GRAFANA_PORT": "3000", "OBS_NOTIFICATIONS": "",
             "DEMO_ENVIRONMENT": "prod"}


def docker_unavailable() -> str | None:
    """Why the Docker tier cannot run here, or None. The reasons are listed in tests/expected-skips.yml;
    keep their wording."""
    if os.environ.get("OBS_DOCKER_TIER", "").lower() == "skip":
        return "runs in its own job (OBS_DOCKER_TIER=skip)"
    if not shutil.which("docker"):
        return "no docker CLI on PATH"
    try:
        p = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                           timeout=30)
    except subprocess.TimeoutExpired:
        return "no Docker engine answers (`docker info` timed out)"
    if p.returncode != 0:
        return f"no Docker engine answers (`docker info`: {p.stderr.strip()[:200]})"
    return compose_too_old()


def compose_too_old() -> str | None:
    """Why the Compose plugin cannot run this tier (missing or older than MIN_COMPOSE), or None."""
    try:
        p = subprocess.run(["docker", "compose", "version", "--short"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "`docker compose version` timed out"
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", p.stdout)
    if p.returncode != 0 or not m:
        return f"no Docker Compose v2 plugin (`docker compose version`: {(p.stderr or p.stdout).strip()[:200]})"
    if tuple(map(int, m.groups())) < MIN_COMPOSE:
        return f"Docker Compose {m.group(0)} is older than {'.'.join(map(str, MIN_COMPOSE))}"
    return None


def required() -> bool:
    return os.environ.get("OBS_DOCKER_TIER", "").lower() == "require"


def log(msg: str) -> None:
    """Progress, live: the real stderr, not pytest's capture (`up` can take minutes on a cold runner)."""
    print(f"[docker-tier {time.strftime('%H:%M:%S')}] {msg}", file=sys.__stderr__, flush=True)


def published_ports() -> list[int]:
    """Host ports the stack publishes (all on 127.0.0.1), from docker-compose.yml with STACK_ENV."""
    cfg = compose.load_compose({**compose.read_env(), **STACK_ENV})
    out = []
    for svc in cfg["services"].values():
        for p in svc.get("ports", []):
            parts = str(p).split(":")
            out.append(int(parts[-2]))
    return sorted(set(out))


def busy_ports() -> list[int]:
    busy = []
    for port in published_ports():
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                busy.append(port)
    return busy


class Compose:
    """One compose project of the repo's docker-compose.yml plus optional override files."""

    active: "Compose | None" = None

    def __init__(self, project: str, overrides: list[str] = ()):
        self.project = project
        self.files = ["docker-compose.yml", *overrides]
        self.removed = True  # nothing of this project exists yet

    def argv(self, *args: str, project: str | None = None) -> list[str]:
        out = ["docker", "compose", "--ansi", "never", "-p", project or self.project]
        for f in self.files:
            out += ["-f", f]
        return out + list(args)

    def cmd(self, *args: str, timeout: float = 300, check: bool = True, quiet: bool = False,
            project: str | None = None) -> subprocess.CompletedProcess:
        argv = self.argv(*args, project=project)
        if not quiet:
            log("$ " + " ".join(argv))
        p = subprocess.run(argv, cwd=ROOT, env={**os.environ, **STACK_ENV}, capture_output=True, text=True,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"`{' '.join(argv)}` failed (exit {p.returncode}):\n{p.stderr[-3000:]}\n"
                                 f"{self.diagnosis()}")
        return p

    def stream(self, *args: str, timeout: float) -> tuple[int, str]:
        """Run a long compose command, relaying its output line by line; (exit code, last lines).
        Killed with its process group (docker and the compose plugin) after `timeout`."""
        argv = self.argv(*args)
        log("$ " + " ".join(argv))
        p = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **STACK_ENV}, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
        timed_out = threading.Event()

        def kill():
            timed_out.set()
            os.killpg(p.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        tail: collections.deque[str] = collections.deque(maxlen=60)
        try:
            for line in p.stdout:
                line = line.rstrip()
                tail.append(line)
                print(f"  {self.project}| {line}", file=sys.__stderr__, flush=True)
            rc = p.wait()
        finally:
            timer.cancel()
        if timed_out.is_set():
            tail.append(f"(killed after {timeout:.0f} s)")
        return rc, "\n".join(tail)

    def up(self) -> None:
        """`up -d --wait --build`, bounded. Stops the tier's other project first (same host ports); fails
        with the state of every service and the logs of the unhealthy ones."""
        if Compose.active is not None and Compose.active is not self:
            Compose.active.down(volumes=True)
        if Compose.active is not self:
            self.sweep()
            busy = busy_ports()
            assert not busy, (f"127.0.0.1 ports {busy} are in use before `up`: another stack runs here "
                              "(`docker compose ls`); stop it first")
        Compose.active = self
        self.removed = False
        start = time.monotonic()
        rc, tail = self.stream("up", "-d", "--wait", "--wait-timeout", str(WAIT_TIMEOUT), "--build",
                               "--quiet-pull", timeout=UP_TIMEOUT)
        if rc != 0:
            raise AssertionError(f"`docker compose up -d --wait` failed for {self.project} (exit {rc}) after "
                                 f"{time.monotonic() - start:.0f} s:\n{tail}\n{self.diagnosis()}")
        log(f"{self.project}: every service healthy after {time.monotonic() - start:.0f} s")

    def down(self, volumes: bool) -> None:
        if self.removed:
            return
        self.save_logs()
        self.cmd(*(["down", "-v"] if volumes else ["down"]), "--remove-orphans", timeout=300, check=False)
        if volumes:
            self.removed = True
            if Compose.active is self:
                Compose.active = None

    def sweep(self) -> None:
        """Remove projects a killed earlier run of this tier left behind (they hold the same ports)."""
        p = subprocess.run(["docker", "compose", "ls", "--all", "--format", "json"], capture_output=True,
                           text=True, timeout=60)
        try:
            names = [x["Name"] for x in json.loads(p.stdout or "[]")]
        except (ValueError, KeyError, TypeError):
            names = []
        for name in names:
            if name.startswith(PREFIX) or name == self.project:
                log(f"removing project {name}, left behind by an earlier run")
                self.cmd("down", "-v", "--remove-orphans", timeout=300, check=False, project=name)

    def ps(self) -> list[dict]:
        p = self.cmd("ps", "--all", "--format", "json", quiet=True, check=False)
        if p.returncode != 0:  # not through cmd's check: its failure message calls diagnosis(), i.e. ps()
            raise RuntimeError(f"docker compose ps failed (exit {p.returncode}): {p.stderr.strip()[:500]}")
        out = p.stdout.strip()
        if out.startswith("["):  # Compose before 2.21: one array
            return json.loads(out)
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def logs(self, service: str, tail: int = 80) -> str:
        return self.cmd("logs", "--no-color", "--tail", str(tail), service, check=False, quiet=True).stdout

    def exec(self, service: str, *argv: str) -> str:
        return self.cmd("exec", "-T", service, *argv, quiet=True).stdout

    def container(self, service: str) -> str:
        ids = self.cmd("ps", "-q", service, quiet=True).stdout.split()
        assert len(ids) == 1, f"{service}: containers {ids}"
        return ids[0]

    def diagnosis(self) -> str:
        """`docker compose ps` of every service and the last log lines of those not running and healthy."""
        try:
            rows = self.ps()
        except Exception as e:  # noqa: BLE001 - a diagnosis must not hide the original failure
            return f"(docker compose ps failed: {e})"
        bad = [r for r in rows if r.get("State") != "running" or r.get("Health") not in ("", "healthy")]
        lines = ["docker compose ps:"]
        lines += [f"  {r.get('Service')}: state={r.get('State')} health={r.get('Health')} status={r.get('Status')}"
                  for r in rows]
        for r in bad:
            lines.append(f"--- last log lines of {r.get('Service')} ---\n{self.logs(r.get('Service'), 40)}")
        return "\n".join(lines)

    def save_logs(self) -> None:
        target = os.environ.get("OBS_DOCKER_LOGS")
        if not target:
            return
        d = Path(target) / self.project
        d.mkdir(parents=True, exist_ok=True)
        p = self.cmd("logs", "--no-color", "--timestamps", check=False, quiet=True)
        (d / f"compose-{int(time.time())}.log").write_text(p.stdout + p.stderr)
        rows = self.cmd("ps", "--all", check=False, quiet=True)
        (d / f"ps-{int(time.time())}.txt").write_text(rows.stdout + rows.stderr)


def started(c: Compose, prepare=None):
    """Generator for a pytest fixture: skip without an engine (fail under OBS_DOCKER_TIER=require), run
    `prepare` (e.g. write a test's secret files: only where the stack will really start), `up` (failing with
    the diagnosis), yield, and always remove the project with its volumes."""
    import pytest  # only fixtures use this

    reason = docker_unavailable()
    if reason:
        if required():
            pytest.fail(f"Docker tier: {reason} (OBS_DOCKER_TIER=require: this run exists to run it)")
        pytest.skip(f"Docker tier: {reason}")
    try:
        if prepare:
            prepare()
        c.up()
        yield c
    finally:
        c.down(volumes=True)


# ------------------------------------------------------------------ HTTP on 127.0.0.1

def http(url: str, method: str = "GET", body: dict | None = None, auth: tuple[str, str] | None = None,
         timeout: float = 30) -> tuple[int, object]:
    """(status, parsed JSON or text) of one request; HTTP errors are returned, not raised."""
    assert url.startswith("http://127.0.0.1:"), url
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")
