"""The expected-skips gate (tests/skipcheck.py): with CI=true an unlisted skip fails the run and is
named; a listed one passes; without CI the run is unchanged. Runs a real inner pytest in tmp_path."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests import skipcheck
from tests.harness.compose import ROOT

INNER = '''
import pytest
def test_runs():
    assert True
def test_docker():
    pytest.skip("Docker tier: no Docker engine answers (test)")
def test_missing_package():
    pytest.skip("busybox is not installed")
'''
LISTED = '''
- test: "test_inner.py::test_docker"
  reason: "Docker tier: no Docker engine answers*"
  why: no engine in this test
'''


def run_inner(tmp_path, ci: str, expected: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_inner.py").write_text(INNER)
    (tmp_path / "skips.yml").write_text(expected)
    env = {**os.environ, "CI": ci, "OBS_EXPECTED_SKIPS": str(tmp_path / "skips.yml"), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.skipcheck", "-q", "-p", "no:cacheprovider",
                           "test_inner.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_unlisted_skip_fails_ci_and_is_named(tmp_path):
    p = run_inner(tmp_path, "true", LISTED)
    assert p.returncode == 1, p.stdout
    assert "UNEXPECTED SKIP test_inner.py::test_missing_package: busybox is not installed" in p.stdout
    assert "test_docker" not in p.stdout.split("unexpected skips")[-1]


def test_listed_skips_pass_ci(tmp_path):
    p = run_inner(tmp_path, "true", LISTED + '''
- test: "*"
  reason: "busybox is not installed"
  why: listed for this test
''')
    assert p.returncode == 0, p.stdout
    assert "UNEXPECTED" not in p.stdout


def test_outside_ci_skips_are_only_reported(tmp_path):
    p = run_inner(tmp_path, "", LISTED)
    assert p.returncode == 0, p.stdout
    assert "2 skipped" in p.stdout


def test_every_entry_has_a_reason(tmp_path):
    entries = skipcheck.load(skipcheck.LIST)
    assert entries, "tests/expected-skips.yml is empty"
    bad = tmp_path / "bad.yml"
    bad.write_text('- test: "x"\n  reason: "y"\n  why: ""\n')
    with pytest.raises(ValueError, match="non-empty why"):
        skipcheck.load(bad)
