"""What every attack module shares: the component as a subprocess on loopback with its log in a file and
its peak memory readable, raw and plain HTTP on 127.0.0.0/8, and the report format (README.md).

Not an attack module itself (the runner skips names starting with "_")."""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Callable

from tests.support.ports import free_port  # noqa: F401 - the attack modules import it from here
from tests.support.wait import StopWaiting, WaitTimeout, wait_for

ROOT = Path(__file__).resolve().parents[2]


def result(attack: str, tried: str, held: bool, detail: str, peak: float | None) -> dict:
    return {"attack": attack, "tried": tried, "held": bool(held), "detail": detail, "peak_rss_mb": peak}


def report(component: str, results: list[dict]) -> int:
    """Print the module's one JSON document; the exit code says whether every attack held."""
    print(json.dumps({"component": component, "results": results}, indent=1))
    return 0 if results and all(r["held"] for r in results) else 1


def run_component(component: str, start: Callable[[Path], "Service"], attacks) -> int:
    """Start the component in a scratch directory, run each attack on it, stop it, print the report."""
    results = []
    with tempfile.TemporaryDirectory(prefix=f"attack-{component}-") as tmp:
        svc = start(Path(tmp))
        try:
            results = [attack(svc) for attack in attacks]
        finally:
            svc.stop()
    return report(component, results)


def listening(port: int) -> set[str]:
    """Local addresses (hex, as the kernel writes them: 0100007F is 127.0.0.1) with a socket in LISTEN state
    on `port`, from /proc/net/tcp and tcp6."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            addr, p = local.split(":")
            if state == "0A" and int(p, 16) == port:
                out.add(addr)
    return out


def addresses(third: int, n: int) -> list[str]:
    """n distinct loopback source addresses (Linux routes all of 127/8 to lo)."""
    return [f"127.0.{third}.{i}" for i in range(1, n + 1)]


def python_env(**extra: str) -> dict:
    """A child environment that can import the project's packages, without the caller's platform
    tokens or OTel settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITHUB_", "VERCEL_", "RAILWAY_", "SUPABASE_", "OBS_", "SIM_", "OTEL_"))}
    path = os.pathsep.join(p for p in [str(ROOT), *sys.path] if p)
    env.update({"PYTHONPATH": path, "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


class Service:
    """A component as a subprocess with its log in a file; ready when `ready()` is true."""

    def __init__(self, argv: list[str], env: dict, log_path: Path, ready: Callable[["Service"], bool],
                 timeout: float = 30):
        self.log_path = log_path
        with open(log_path, "wb") as f:
            self.proc = subprocess.Popen(argv, env=env, stdout=f, stderr=f, stdin=subprocess.DEVNULL,
                                         start_new_session=True)

        def up() -> bool:
            if self.proc.poll() is not None:
                raise StopWaiting(f"exited with {self.proc.returncode}")
            return ready(self)

        try:
            wait_for(up, timeout, 0.05, f"{argv[-1]} to be ready")
        except WaitTimeout as e:
            self.stop()
            raise RuntimeError(f"{argv[-1]} did not start ({e}):\n{self.log_text()[-2000:]}") from None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def records(self) -> list[dict]:
        out = []
        for line in self.log_text().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def alive(self) -> bool:
        return self.proc.poll() is None

    def reset_peak(self) -> None:
        with contextlib.suppress(OSError):  # "5" resets VmHWM (Linux >= 4.0)
            Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    def peak_mb(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except OSError:
            return None
        return None

    def stop(self) -> None:
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def answers(url: str, timeout: float = 2) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def connect(port: int, source: str = "127.0.0.1", timeout: float = 5) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def exchange(port: int, data: bytes, source: str = "127.0.0.1", timeout: float = 5) -> tuple[bytes, bool]:
    """Send raw bytes; (everything received, whether the server closed the connection within timeout)."""
    with connect(port, source, timeout) as s:
        with contextlib.suppress(OSError):
            s.sendall(data)
        out, end = b"", time.monotonic() + timeout
        while time.monotonic() < end:
            s.settimeout(max(0.01, end - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                return out, False
            except OSError:  # reset: closed too
                return out, True
            if not chunk:
                return out, True
            out += chunk
        return out, False


def statuses(raw: bytes) -> list[int]:
    """Status codes of the responses in a raw byte stream (100 Continue included)."""
    out = []
    for part in raw.split(b"HTTP/1.1 ")[1:]:
        with contextlib.suppress(ValueError):
            out.append(int(part[:3]))
    return out


def request(port: int, method: str, path: str, headers: dict | None = None, body: bytes | None = None,
            source: str = "127.0.0.1", timeout: float = 5) -> int:
    """Status of one request; 0 when the connection failed or was closed without an answer."""
    return fetch(port, method, path, headers, body, source, timeout)[0]


def fetch(port: int, method: str, path: str, headers: dict | None = None, body: bytes | None = None,
          source: str = "127.0.0.1", timeout: float = 5) -> tuple[int, bytes]:
    """(status, body) of one request; (0, b"") when the connection failed or closed without an answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        conn.close()
