"""Driving `docker compose` for the Docker tier: one project at a time (the stack publishes fixed ports on
127.0.0.1), `up -d --wait` with a bound, and on failure the state and logs of what did not come up.

OBS_DOCKER_LOGS=DIR keeps every service's log there when a stack goes down (the workflow uploads it)."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.harness.compose import ROOT

WAIT_TIMEOUT = 900  # s for `up --wait`: the first run builds three images and pulls the rest


def docker_unavailable() -> str | None:
    """Why the Docker tier cannot run here, or None. The reasons are listed in tests/expected-skips.yml."""
    if os.environ.get("OBS_DOCKER_TIER", "").lower() == "skip":
        return "runs in its own job (OBS_DOCKER_TIER=skip)"
    if subprocess.run(["sh", "-c", "command -v docker"], capture_output=True).returncode != 0:
        return "no docker CLI on PATH"
    try:
        p = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                           timeout=30)
    except subprocess.TimeoutExpired:
        return "no Docker engine answers (`docker info` timed out)"
    if p.returncode != 0:
        return f"no Docker engine answers (`docker info`: {p.stderr.strip()[:200]})"
    return None


def log(msg: str) -> None:
    print(f"[docker-tier {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Compose:
    """One compose project of the repo's docker-compose.yml plus optional override files."""

    active: "Compose | None" = None

    def __init__(self, project: str, overrides: list[str] = ()):
        self.project = project
        self.files = ["docker-compose.yml", *overrides]

    def cmd(self, *args: str, timeout: float = 300, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess:
        argv = ["docker", "compose", "-p", self.project]
        for f in self.files:
            argv += ["-f", f]
        argv += list(args)
        if not quiet:
            log("$ " + " ".join(argv))
        p = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"`{' '.join(argv)}` failed (exit {p.returncode}):\n{p.stderr[-3000:]}\n"
                                 f"{self.diagnosis()}")
        return p

    def up(self) -> None:
        """`up -d --wait --build`; stops any other project first (same host ports)."""
        if Compose.active is not None and Compose.active is not self:
            Compose.active.down(volumes=True)
        Compose.active = self
        start = time.monotonic()
        self.cmd("up", "-d", "--wait", "--wait-timeout", str(WAIT_TIMEOUT), "--build", "--quiet-pull",
                 timeout=WAIT_TIMEOUT + 900)
        log(f"{self.project}: every service healthy after {time.monotonic() - start:.0f} s")

    def down(self, volumes: bool) -> None:
        self.save_logs()
        self.cmd(*(["down", "-v"] if volumes else ["down"]), "--remove-orphans", timeout=300, check=False)
        if volumes and Compose.active is self:
            Compose.active = None

    def ps(self) -> list[dict]:
        out = self.cmd("ps", "--all", "--format", "json", quiet=True).stdout.strip()
        if out.startswith("["):  # older Compose: one array
            return json.loads(out)
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def logs(self, service: str, tail: int = 80) -> str:
        return self.cmd("logs", "--no-color", "--tail", str(tail), service, check=False, quiet=True).stdout

    def exec(self, service: str, *argv: str) -> str:
        return self.cmd("exec", "-T", service, *argv, quiet=True).stdout

    def diagnosis(self) -> str:
        try:
            rows = self.ps()
        except Exception as e:  # noqa: BLE001 - a diagnosis must not hide the original failure
            return f"(docker compose ps failed: {e})"
        bad = [r for r in rows if r.get("State") != "running" or r.get("Health") not in ("", "healthy")]
        lines = [f"{r.get('Service')}: state={r.get('State')} health={r.get('Health')} status={r.get('Status')}"
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


def started(c: Compose):
    """Generator for a pytest fixture: skip without an engine, `up` (failing with the diagnosis), yield,
    and always remove the project with its volumes."""
    import pytest  # noqa: PLC0415 - only fixtures use this

    reason = docker_unavailable()
    if reason:
        pytest.skip(f"Docker tier: {reason}")
    c.down(volumes=True)  # a project left behind by a killed run
    try:
        c.up()
    except AssertionError as e:
        c.down(volumes=True)
        pytest.fail(f"docker compose up -d --wait failed for {c.project}:\n{e}")
    try:
        yield c
    finally:
        c.down(volumes=True)


# ------------------------------------------------------------------ HTTP on 127.0.0.1

def http(url: str, method: str = "GET", body: dict | None = None, auth: tuple[str, str] | None = None,
         timeout: float = 30) -> tuple[int, object]:
    """(status, parsed JSON or text) of one request; HTTP errors are returned, not raised."""
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
