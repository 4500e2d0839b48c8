"""The GitHub Actions workflows pass the real actionlint (with shellcheck on their run: scripts), so a
broken workflow fails here and not only on GitHub; every action is pinned to an exact release."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import require_tool
from tests.harness.compose import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def actionlint(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(require_tool("actionlint")), "-no-color", *map(str, paths)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_there_is_a_workflow():
    assert WORKFLOWS, "no .github/workflows/*.yml"


def test_shellcheck_is_there_for_run_scripts():
    assert shutil.which("shellcheck"), "shellcheck missing: scripts/install-system-packages installs it"


@pytest.mark.parametrize("wf", WORKFLOWS, ids=[w.name for w in WORKFLOWS])
def test_actionlint_finds_nothing(wf):
    p = actionlint(wf)
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize("broken,finding", [
    (lambda t: t.replace("runs-on: ubuntu-24.04", "runs-on: ubuntu-2404", 1), "label"),
    (lambda t: t.replace("timeout-minutes: 90", "timeout-minutes: ninety", 1), "timeout-minutes"),
    (lambda t: t.replace("${{ runner.temp }}", "${{ runner.tmp }}", 1), "tmp"),
    (lambda t: t.replace("if: failure()", "if: failure(", 1), "if"),
    (lambda t: t.replace("run: docker version && docker compose version",
                         "run: cd $HOME/x; [ $A == 1 ] && echo ok", 1), "shellcheck"),
])
def test_actionlint_catches_a_broken_copy(tmp_path, broken, finding):
    src = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    copy = tmp_path / ".github" / "workflows" / "ci.yml"
    copy.parent.mkdir(parents=True)
    mutated = broken(src)
    assert mutated != src, "the mutation no longer applies: update this test"
    copy.write_text(mutated)
    p = actionlint(copy)
    assert p.returncode != 0 and finding in p.stdout, p.stdout + p.stderr


@pytest.mark.parametrize("wf", WORKFLOWS, ids=[w.name for w in WORKFLOWS])
def test_actions_pinned_to_exact_releases(wf):
    doc = yaml.safe_load(wf.read_text())
    uses = [s["uses"] for job in doc["jobs"].values() for s in job.get("steps", []) if "uses" in s]
    assert uses
    loose = [u for u in uses if not re.fullmatch(r"[\w.-]+/[\w.-]+@(v\d+\.\d+\.\d+|[0-9a-f]{40})", u)]
    assert not loose, f"actions not pinned to an exact release: {loose}"
