"""Child processes that die with the test process, also one killed by SIGKILL (no teardown runs then).

arm(parent): ask the kernel to SIGKILL this process when its parent dies (PR_SET_PDEATHSIG; it survives
execve but not a uid change, so arm after setuid), and exit if `parent` is already gone. The death signal
follows the parent *thread*: start such children from the test's own thread.

launcher(argv): the argv that runs `argv` through this file as a script, which arms and then execs it:
    python tests/support/pdeathsig.py PARENT_PID PROGRAM [ARGS...]

Standard library only (it runs as a script, and inside tests/harness/launch.py's namespaces)."""
from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def arm(parent: int, sig: int = signal.SIGKILL) -> None:
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        sys.exit(f"prctl(PR_SET_PDEATHSIG) failed: errno {ctypes.get_errno()}")
    if os.getppid() != parent:
        sys.exit("the parent process is gone")


def launcher(argv: list[str], python: str = sys.executable) -> list[str]:
    """Run `argv` (argv[0] a path) as a child that dies with this process."""
    return [python, os.path.abspath(__file__), str(os.getpid()), *argv]


if __name__ == "__main__":
    arm(int(sys.argv[1]))
    os.execv(sys.argv[2], sys.argv[2:])
