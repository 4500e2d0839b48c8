"""The measured processes: a real binary from the tool cache, started on loopback (the attack tooling's Service:
log in a file, ready check, SIGTERM then SIGKILL), its CPU and memory read from /proc, its own metrics over HTTP."""
from __future__ import annotations

import os
import threading
import urllib.request
from pathlib import Path

from scripts import install_tools
from scripts.attack._common import Service, answers

CLK_TCK = os.sysconf("SC_CLK_TCK")


def tool(name: str) -> Path:
    """The pinned binary from scripts/install_tools.py's cache; exits with the reason when it is missing."""
    p = install_tools.tool_path(name, name)
    if p is None:
        raise SystemExit(install_tools.unavailable_reason(name))
    return p


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads), /proc/<pid>/stat fields 14 and 15."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def get(url: str, timeout: float = 10) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


class PeakRss:
    """The highest RSS of a process, sampled every 0.2 s while in the `with` block."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            self._stop.wait(0.2)

    def __enter__(self) -> "PeakRss":
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()


def start(argv: list[str], log: Path, env: dict, ready_url: str) -> Service:
    """A real binary on loopback (os.environ plus `env`), its output in `log`; returns once `ready_url` answers
    200, else stops it and fails with the end of its log."""
    return Service(argv, {**os.environ, **env}, log, lambda _: answers(ready_url), timeout=60)
