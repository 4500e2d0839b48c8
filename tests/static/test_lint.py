"""The linter in the test command (scripts/test runs `ruff check` before pytest): the tree is clean, the
configuration covers the extension-less Python scripts, and a finding really fails the check."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def ruff() -> str:
    exe = Path(sys.executable).with_name("ruff")
    found = str(exe) if exe.exists() else shutil.which("ruff")
    if not found:
        pytest.fail("ruff is not installed: requirements-test.txt pins it (scripts/setup-venv installs it)")
    return found


def test_the_test_command_runs_the_linter():
    assert "ruff check" in (ROOT / "scripts" / "test").read_text()


def test_tree_is_clean():
    p = subprocess.run([ruff(), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr


def test_a_finding_fails_and_scripts_without_extension_are_checked(tmp_path):
    shutil.copy(ROOT / "ruff.toml", tmp_path / "ruff.toml")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "generate-slo-rules").write_text("#!/usr/bin/env python3\nimport os\n")
    (tmp_path / "ok.py").write_text("import os\n\nprint(os.sep)\n")
    p = subprocess.run([ruff(), "check", "--no-cache", "--output-format", "concise", "."], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "generate-slo-rules" in p.stdout and "F401" in p.stdout, p.stdout + p.stderr


def test_the_test_command_runs_the_unit_tier_first_and_once():
    text = (ROOT / "scripts" / "test").read_text()
    unit, rest = text.index("pytest -q tests/unit"), text.index("pytest --ignore=tests/unit")
    assert unit < rest, "the unit tier runs before the slow tiers, so a broken core fails in seconds"


def test_unit_tests_open_no_sockets_and_never_sleep():
    """tests/unit is the millisecond tier: time comes from an injected clock, never a sleep or the network."""
    for path in sorted((ROOT / "tests" / "unit").glob("*.py")):
        text = path.read_text()
        for banned in ("time.sleep(", "socket.socket(", "subprocess.", "requests.get(", "urlopen("):
            assert banned not in text, f"{path.relative_to(ROOT)} uses {banned}: it belongs in another tier"
