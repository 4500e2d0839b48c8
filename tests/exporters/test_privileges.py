"""Started as root with OBS_RUN_AS (Railway with a volume: RAILWAY_RUN_UID=0), a bridge gives its state
directory, and the cursor a previous deployment left in it, to the image's user and drops to that user
(obs_bridges/privileges.py): real chown, setgid and setuid calls in a child process."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from obs_bridges import config, privileges

CHILD = ("import json, os, sys; from obs_bridges import privileges; "
         "r = privileges.drop_if_root(dict(os.environ)); "
         "print(json.dumps([r, os.getuid(), os.getgid(), os.getgroups()]))")


def run_child(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=30)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root (CI and scripts/test run as root)")
def test_root_gives_the_state_dir_to_the_user_and_drops(tmp_path):
    state = tmp_path / "railway-logs"
    state.mkdir(mode=0o700)
    (state / "railway-logs-state.json").write_text("{}")  # left by a deployment that ran as root
    tmp_path.chmod(0o755)
    p = run_child({"OBS_RUN_AS": "10001:10001", "RAILWAY_LOGS_STATE_DIR": str(state)})
    assert p.returncode == 0, p.stderr
    dropped, uid, gid, groups = json.loads(p.stdout)
    assert dropped == [10001, 10001] and (uid, gid) == (10001, 10001) and groups == []
    for path in (state, state / "railway-logs-state.json"):
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (10001, 10001), path


def test_no_drop_without_run_as_or_when_not_root(tmp_path):
    p = run_child({"OBS_RUN_AS": ""})
    assert p.returncode == 0 and json.loads(p.stdout)[0] is None
    assert json.loads(p.stdout)[1] == os.getuid()


@pytest.mark.parametrize("raw", ["0:0", "root", "10001:x", ":5"])
def test_run_as_must_be_a_numeric_non_root_user(raw):
    with pytest.raises(config.ConfigError, match="OBS_RUN_AS"):
        privileges.parse_run_as(raw)
