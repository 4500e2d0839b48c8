"""Hygiene tests' common part: run a test in an inner pytest until it reports what it started, SIGKILL the
inner pytest (no teardown runs) and see which of its processes outlive it."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable, Collection, Iterator

from tests.support.wait import StopWaiting, WaitTimeout, wait_for


@contextlib.contextmanager
def inner_pytest(args: list[str], cwd: Path, env: dict, report: Path, timeout: float,
                 what: str) -> Iterator[tuple[subprocess.Popen, object]]:
    """Start `pytest args` in its own session and yield (process, JSON in `report`) once the inner test
    has written `report` (within `timeout` s; `what` names what it starts). The inner run is killed at exit."""
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=cwd,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    def reported() -> bool:
        if report.exists():
            return True
        if proc.poll() is not None:
            raise StopWaiting(f"the inner pytest ended before its {what} was up")
        return False

    try:
        wait_for(reported, timeout, 0.2, f"the inner pytest to start its {what}")
        yield proc, json.loads(report.read_text())
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def survivors_of_sigkill(proc: subprocess.Popen, alive: Callable[[], Collection],
                         timeout: float = 10) -> Collection:
    """SIGKILL the inner pytest (only the kernel's death signal can clean up then) and return what
    `alive()` still reports after up to `timeout` s."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    with contextlib.suppress(WaitTimeout):
        wait_for(lambda: not alive(), timeout, 0.1, "the inner pytest's processes to die")
    return alive()
