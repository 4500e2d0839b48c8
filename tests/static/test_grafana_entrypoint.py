"""grafana/entrypoint.sh: the admin password comes from a file, never a default, and is never logged."""
from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from tests.harness import compose

SCRIPT = compose.ROOT / "grafana" / "entrypoint.sh"


def run(tmp: Path, user_password: str | None = None) -> tuple[subprocess.CompletedProcess, Path]:
    secrets, data = tmp / "secrets", tmp / "data"
    secrets.mkdir(exist_ok=True)
    data.mkdir(exist_ok=True)
    if user_password is not None:
        (secrets / "grafana_admin_password").write_text(user_password)
    fake_run = tmp / "run.sh"
    fake_run.write_text('#!/bin/sh\necho "FILE=$GF_SECURITY_ADMIN_PASSWORD__FILE INLINE=${GF_SECURITY_ADMIN_PASSWORD:-unset}"\n')
    fake_run.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "OBS_SECRETS_DIR": str(secrets), "GF_PATHS_DATA": str(data),
           "GRAFANA_RUN": str(fake_run), "GF_SECURITY_ADMIN_PASSWORD": "admin"}
    p = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    return p, data / ".admin_password"


def test_generates_random_password_once_and_never_logs_it(tmp_path):
    p, gen = run(tmp_path)
    password = gen.read_text()
    assert len(password) >= 20 and password != "admin"
    assert stat.S_IMODE(gen.stat().st_mode) == 0o600
    assert f"FILE={gen}" in p.stdout and "INLINE=unset" in p.stdout
    assert password not in p.stdout + p.stderr
    p2, _ = run(tmp_path)
    assert gen.read_text() == password, "a restart must keep the generated password"
    assert "generated" not in p2.stdout


def test_operator_file_wins(tmp_path):
    p, gen = run(tmp_path, user_password="s3cret-from-file")
    assert f"FILE={tmp_path / 'secrets' / 'grafana_admin_password'}" in p.stdout
    assert not gen.exists()
    assert "s3cret-from-file" not in p.stdout + p.stderr


def test_two_installs_get_different_passwords(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    assert run(a)[1].read_text() != run(b)[1].read_text()
