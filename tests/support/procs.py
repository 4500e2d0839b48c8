"""Programs a test starts beside the harness (a second collector, a receiving Prometheus): each writes to
its own log file, dies with the test process (pdeathsig), and stops with SIGTERM, then SIGKILL."""
from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support import pdeathsig


def terminate(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM, and SIGKILL if it has not exited within `timeout` seconds: a graceful stop that cannot hang."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@dataclass
class Proc:
    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] | None = None  # None: this process's environment
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen(pdeathsig.launcher(self.argv), stdout=f, stderr=subprocess.STDOUT,
                                         env=self.env, start_new_session=True)

    def stop(self, timeout: float = 20) -> None:
        if self.proc:
            terminate(self.proc, timeout)
        self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.text().splitlines()[-lines:])
