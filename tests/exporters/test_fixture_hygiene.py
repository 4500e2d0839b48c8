"""The exporter fixtures leave nothing behind: a pytest that is killed (a CI timeout, SIGKILL) takes its
simulator and bridge processes with it (PR_SET_PDEATHSIG: tests/support/pdeathsig.py)."""
from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.exporters.bridgetest import group_members
from tests.harness.inner_pytest import inner_pytest, survivors_of_sigkill

ROOT = Path(__file__).resolve().parents[2]  # the inner pytest imports tests.exporters.bridgetest from here

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
    (tmp_path / "conftest.py").write_text("from tests.exporters.bridgetest import procs  # noqa: F401\n")
    (tmp_path / "test_inner.py").write_text(INNER)
    out = tmp_path / "pids.json"
    env = {**os.environ, "PIDS_OUT": str(out),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    pids: list = []
    try:
        with inner_pytest([str(tmp_path)], tmp_path, env, out, 90, "simulator and bridge") as (inner, pids):
            # each process leads its own group (start_new_session): its group is it and its children
            assert set(pids) <= set(group_members(pids)), "the processes were not running before the kill"
            survivors = survivors_of_sigkill(inner, lambda: group_members(pids))
            assert not survivors, f"processes outlived the killed pytest: {survivors}"
    finally:
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
