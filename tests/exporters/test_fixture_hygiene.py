"""The exporter fixtures leave nothing behind: a pytest that is killed (a CI timeout, SIGKILL) takes its
simulator and bridge processes with it (PR_SET_PDEATHSIG in bridgetest's launcher)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bridgetest import group_members

HERE = Path(__file__).resolve().parent

INNER = '''
import json, os, time

def test_hang(procs):
    sim = procs.sim()
    exp = procs.exporter("github", {"GITHUB_API_URL": sim.url + "/github", "GITHUB_TOKEN": "ghp_x",
                                    "GITHUB_REPOSITORIES": "demo-org"})
    with open(os.environ["PIDS_OUT"] + ".tmp", "w") as f:
        json.dump([sim.p.pid, exp.p.pid], f)
    os.rename(os.environ["PIDS_OUT"] + ".tmp", os.environ["PIDS_OUT"])
    time.sleep(120)
'''


def test_killed_pytest_leaves_no_simulator_or_bridge(tmp_path):
    (tmp_path / "conftest.py").write_text(f"import sys\nsys.path.insert(0, {str(HERE)!r})\n"
                                          "from bridgetest import procs  # noqa: F401\n")
    (tmp_path / "test_inner.py").write_text(INNER)
    out = tmp_path / "pids.json"
    inner = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                             cwd=tmp_path, env={**os.environ, "PIDS_OUT": str(out)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not out.exists():
            assert inner.poll() is None, "the inner pytest ended before its processes were up"
            assert time.monotonic() < deadline, "the inner pytest never started its simulator and bridge"
            time.sleep(0.2)
        pids = json.loads(out.read_text())
        # each process leads its own group (start_new_session): its group is it and its children
        assert set(pids) <= set(group_members(pids)), "the processes were not running before the kill"
        os.kill(inner.pid, signal.SIGKILL)  # no teardown runs: only the kernel's death signal can clean up
        inner.wait(10)
        deadline = time.monotonic() + 10
        while group_members(pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = group_members(pids)
        assert not survivors, f"processes outlived the killed pytest: {survivors}"
    finally:
        if inner.poll() is None:
            os.killpg(inner.pid, signal.SIGKILL)
            inner.wait(10)
        for p in json.loads(out.read_text()) if out.exists() else []:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
