"""grafana/entrypoint.sh: the admin password comes from a file, never a default, and is never logged.

A password file that exists but the container user cannot read (or that is blank) stops Grafana with one
JSON line naming the file and the uid: the image's /run.sh would otherwise read nothing and Grafana would
start with its built-in default admin password. The script runs for real under dash and under busybox ash with only busybox's
applets on PATH (like grafana/grafana's Alpine image), as uid 472 with gid 0 like compose's `user: "472:0"`
when the tests run as root (root reads every file, so it could never see the problem)."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.harness import compose
from tests.support.logschema import check as check_log_line

SCRIPT = compose.ROOT / "grafana" / "entrypoint.sh"
ROOT_USER = os.geteuid() == 0
# The container user. Without root the tests run as themselves: mode 0 files are unreadable to them too.
GRAFANA_UID = 472 if ROOT_USER else os.getuid()
OTHER_UID = 10472 if ROOT_USER else os.getuid()
MARKER = "pw-Marker-7f3a9c"  # a password that must never appear in the output

SHELLS = [pytest.param("dash", id="dash"),
          pytest.param("busybox", id="busybox-ash",
                       marks=pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox is not installed"))]


class Box:
    """A secrets folder, a Grafana data folder and a fake /run.sh, under a directory every uid can traverse
    (pytest's tmp_path is private to root)."""

    def __init__(self, base: Path, shell: str):
        self.base = base
        self.secrets, self.data = base / "secrets", base / "data"
        self.secrets.mkdir()
        self.data.mkdir()
        self.user_file = self.secrets / "grafana_admin_password"
        self.gen_file = self.data / ".admin_password"
        self.fake_run = base / "run.sh"
        self.fake_run.write_text('#!/bin/sh\necho "RAN FILE=$GF_SECURITY_ADMIN_PASSWORD__FILE '
                                 'INLINE=${GF_SECURITY_ADMIN_PASSWORD:-unset}"\n')
        self.fake_run.chmod(0o755)
        self.path = os.environ["PATH"]
        self.argv = ["dash"]
        if shell == "busybox":
            # Only busybox applets first on PATH, so grep/head/base64/tr/sed/id are the image's, not GNU's.
            applets = base / "bb"
            applets.mkdir()
            bb = shutil.which("busybox")
            for name in subprocess.run([bb, "--list"], capture_output=True, text=True, check=True).stdout.split():
                (applets / name).symlink_to(bb)
            self.path = f"{applets}:{self.path}"
            self.argv = [bb, "sh"]

    def run(self, uid: int = GRAFANA_UID, path_prefix: str = "") -> subprocess.CompletedProcess:
        if ROOT_USER:
            os.chown(self.data, uid, 0)

        def drop():
            if ROOT_USER:
                os.setgroups([])
                os.setgid(0)
                os.setuid(uid)

        env = {"PATH": path_prefix + self.path, "OBS_SECRETS_DIR": str(self.secrets), "GF_PATHS_DATA": str(self.data),
               "GRAFANA_RUN": str(self.fake_run), "GF_SECURITY_ADMIN_PASSWORD": "admin"}
        return subprocess.run([*self.argv, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=20,
                              preexec_fn=drop, cwd=self.base)


@pytest.fixture(params=SHELLS)
def box(request):
    base = Path(tempfile.mkdtemp(prefix="grafana-entrypoint-"))
    try:
        base.chmod(0o755)
        yield Box(base, request.param)
    finally:
        for d, dirs, _ in os.walk(base):  # a test may leave a mode-0 directory behind
            for name in dirs:
                Path(d, name).chmod(0o755)
        shutil.rmtree(base)


def ok(p: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert p.returncode == 0, p.stderr
    assert "RAN " in p.stdout, "Grafana's /run.sh was not started"
    return p


def refused(p: subprocess.CompletedProcess, file: Path, uid: int = GRAFANA_UID) -> dict:
    """Exit != 0 before /run.sh, and exactly one JSON error line naming the file, the uid and a fix."""
    assert p.returncode != 0, f"started Grafana anyway: {p.stdout}"
    assert "RAN " not in p.stdout, "Grafana's /run.sh was started"
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    line = check_log_line(lines[0], "grafana")  # the stack's one log schema (docs/logging.md)
    assert line["level"] == "error" and line["logger"] == "obs-entrypoint"
    assert line["file"] == str(file) and str(file) in line["msg"]
    assert line["uid"] == uid and f"uid {uid} " in line["msg"]
    assert line["fix"]
    assert MARKER not in p.stdout + p.stderr
    return line


# ---------------------------------------------------------------- the operator's password file

def test_generates_random_password_once_and_never_logs_it(box):
    p = ok(box.run())
    password = box.gen_file.read_text()
    assert len(password) >= 20 and password != "admin"
    assert stat.S_IMODE(box.gen_file.stat().st_mode) == 0o600
    assert f"FILE={box.gen_file}" in p.stdout and "INLINE=unset" in p.stdout
    assert password not in p.stdout + p.stderr
    p2 = ok(box.run())
    assert box.gen_file.read_text() == password, "a restart must keep the generated password"
    assert "generated" not in p2.stdout
    generated = [ln for ln in p.stdout.splitlines() if "generated the Grafana admin password" in ln]
    assert len(generated) == 1, p.stdout
    assert check_log_line(generated[0], "grafana")["level"] == "info"


@pytest.mark.parametrize("mode", [0o644, 0o640])
def test_operator_file_wins(box, mode):
    """0644, or 0640 with group 0 (compose runs Grafana as 472:0): both readable, both used."""
    box.user_file.write_text(MARKER + "\n")
    box.user_file.chmod(mode)
    p = ok(box.run())
    assert f"FILE={box.user_file}" in p.stdout
    assert not box.gen_file.exists()
    assert MARKER not in p.stdout + p.stderr


def test_two_installs_get_different_passwords(box):
    ok(box.run())
    first = box.gen_file.read_text()
    box.gen_file.unlink()
    ok(box.run())
    assert box.gen_file.read_text() != first


def test_unreadable_password_file_stops_grafana(box):
    """The bug: `-s` accepted a file uid 472 cannot read; /run.sh read nothing; Grafana used its built-in default password."""
    box.user_file.write_text(MARKER)
    box.user_file.chmod(0)
    line = refused(box.run(), box.user_file)
    assert "not readable" in line["msg"]
    assert "chmod 0644" in line["fix"] and "chmod 0640" in line["fix"]
    assert not box.gen_file.exists(), "an operator's password must not be replaced by a generated one"


def test_the_message_names_the_uid_actually_running(box):
    box.user_file.write_text(MARKER)
    box.user_file.chmod(0)
    refused(box.run(uid=OTHER_UID), box.user_file, uid=OTHER_UID)


@pytest.mark.parametrize("kind", ["directory", "dangling symlink"])
def test_password_path_that_is_no_file_stops_grafana(box, kind):
    """A directory (e.g. compose creating a missing bind source) or a broken link is not "no password"."""
    if kind == "directory":
        box.user_file.mkdir()
        (box.user_file / "x").write_text(MARKER)
    else:
        box.user_file.symlink_to(box.base / "nowhere")
    line = refused(box.run(), box.user_file)
    assert ("not a regular file" if kind == "directory" else "dangling symbolic link") in line["msg"]
    assert not box.gen_file.exists()


@pytest.mark.parametrize("content", ["", " \n\t\n"])
def test_blank_password_file_stops_grafana(box, content):
    box.user_file.write_text(content)
    line = refused(box.run(), box.user_file)
    assert "is empty" in line["msg"]
    assert not box.gen_file.exists()


def test_unsearchable_secrets_folder_stops_grafana(box):
    """Whether a password was provided cannot be told: guessing "no" would silently ignore it."""
    box.user_file.write_text(MARKER)
    box.secrets.chmod(0)
    line = refused(box.run(), box.user_file)
    assert "cannot search" in line["msg"] and str(box.secrets) in line["fix"]


# ---------------------------------------------------------------- the generated password in the volume

def test_unreadable_generated_password_is_not_replaced(box):
    """Grafana sets the admin password only when it creates its database: a new file would not match it."""
    box.gen_file.write_text(MARKER)
    box.gen_file.chmod(0)
    line = refused(box.run(), box.gen_file)
    assert "not readable" in line["msg"] and "chown" in line["fix"]
    assert box.gen_file.read_text() == MARKER


def test_generated_password_path_that_is_a_directory_stops_grafana(box):
    box.gen_file.mkdir()
    refused(box.run(), box.gen_file)


def test_blank_generated_password_is_generated_again(box):
    """Ours and blank (e.g. the first start was interrupted): nothing to keep, so a new one is written."""
    box.gen_file.write_text(" \n")
    if ROOT_USER:
        os.chown(box.gen_file, GRAFANA_UID, 0)  # written by Grafana's uid on the earlier start
    p = ok(box.run())
    password = box.gen_file.read_text()
    assert len(password.strip()) >= 20 and f"FILE={box.gen_file}" in p.stdout and "generated" in p.stdout
    assert password not in p.stdout + p.stderr


def test_failed_generation_stops_grafana(box):
    """A `head` that writes nothing would leave an empty file, and Grafana would fall back to its built-in default password."""
    stubs = box.base / "stubs"
    stubs.mkdir()
    (stubs / "head").write_text("#!/bin/sh\nexit 1\n")
    (stubs / "head").chmod(0o755)
    line = refused(box.run(path_prefix=f"{stubs}:"), box.gen_file)
    assert "after generating" in line["msg"]
