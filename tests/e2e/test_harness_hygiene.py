"""The native stack leaves no service behind when its pytest is killed (a CI timeout, SIGKILL): no teardown
runs then, so the kernel's death signal set by tests/harness/launch.py must take the services with it."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess

import pytest

from tests.conftest import ROOT
from tests.harness.inner_pytest import inner_pytest, survivors_of_sigkill
from tests.harness.stack import NativeStack

INNER = '''
import json, os, time
from tests.harness.stack import NativeStack

def test_hang():
    st = NativeStack(["alertmanager"])
    st.start()
    info = {"pids": [r.proc.pid for r in st.running.values()], "netns": list(st._netns), "bridge": st.bridge,
            "dir": str(st.dir)}
    with open(os.environ["INFO_OUT"] + ".tmp", "w") as f:
        json.dump(info, f)
    os.rename(os.environ["INFO_OUT"] + ".tmp", os.environ["INFO_OUT"])
    time.sleep(120)
'''


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def test_killed_pytest_leaves_no_stack_service(tmp_path):
    reason = NativeStack.unavailable_reason()
    if reason:
        pytest.skip(f"native stack: {reason}")
    (tmp_path / "test_inner.py").write_text(INNER)
    out = tmp_path / "info.json"
    info: dict = {}
    try:
        with inner_pytest(["--rootdir", str(tmp_path), str(tmp_path / "test_inner.py")], ROOT,
                          {**os.environ, "INFO_OUT": str(out), "PYTHONPATH": str(ROOT)}, out, 120,
                          "stack") as (inner, info):
            assert info["pids"] and all(_alive(p) for p in info["pids"]), \
                "the service was not running before the kill"
            survivors = survivors_of_sigkill(inner, lambda: [p for p in info["pids"] if _alive(p)])
            assert not survivors, f"stack services outlived the killed pytest: {survivors}"
    finally:
        for p in info.get("pids", []):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # what NativeStack.stop would have removed
        for ns in info.get("netns", []):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        if info.get("bridge"):
            subprocess.run(["ip", "link", "del", info["bridge"]], capture_output=True)
        if info.get("dir"):
            subprocess.run(["umount", "-R", info["dir"]], capture_output=True)
            shutil.rmtree(info["dir"], ignore_errors=True)
