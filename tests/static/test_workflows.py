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


@pytest.mark.parametrize("wf", WORKFLOWS, ids=[w.name for w in WORKFLOWS])
def test_least_privilege_and_bounded(wf):
    """Read-only token, one run per branch at a time, and no job that can hang for GitHub's 6 hours."""
    doc = yaml.safe_load(wf.read_text())
    assert doc.get("permissions") == {"contents": "read"}, doc.get("permissions")
    assert doc.get("concurrency", {}).get("group"), "no concurrency group"
    unbounded = [name for name, job in doc["jobs"].items() if not job.get("timeout-minutes")]
    assert not unbounded, f"jobs without timeout-minutes: {unbounded}"


def test_ci_runs_both_tiers():
    """The native tier through .ci/run as root, the Docker tier through scripts/test-docker, required."""
    jobs = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())["jobs"]
    runs = {name: " ".join(s.get("run", "") for s in job["steps"]) for name, job in jobs.items()}
    assert any("sudo" in r and "CI=true bash .ci/run" in r for r in runs.values()), runs
    docker = next(job for job in jobs.values() if any("scripts/test-docker" in s.get("run", "") for s in job["steps"]))
    step = next(s for s in docker["steps"] if "scripts/test-docker" in s.get("run", ""))
    assert step["env"].get("OBS_DOCKER_TIER") == "require" and step["env"].get("CI") == "true", step
