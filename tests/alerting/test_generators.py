"""SLO rules are generated from the Sloth specs, and pint lints the rules, whenever the tools exist."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT, install_tools

GEN = ROOT / "scripts" / "generate-slo-rules"


def _tool(name: str):
    p = install_tools.tool_path(name, name) or shutil.which(name)
    if p is None:
        pytest.skip(f"{name}: {install_tools.unavailable_reason(name)}")
    return p


def test_slo_rules_are_not_stale():
    """Committed prometheus/rules/slo-*.yml equal a fresh render with the engine in their header."""
    p = subprocess.run([sys.executable, str(GEN), "--check"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr


def test_every_spec_has_rules_and_valid_shape():
    for spec in sorted((ROOT / "slo").glob("*.yml")):
        doc = yaml.safe_load(spec.read_text())
        assert doc["version"] == "prometheus/v1" and doc["service"] and doc["slos"]
        for slo in doc["slos"]:
            assert 0 < slo["objective"] < 100
            ev = slo["sli"]["events"]
            assert "{{.window}}" in ev["error_query"] and "{{.window}}" in ev["total_query"]
            assert slo["alerting"]["name"]
        assert (ROOT / "prometheus" / "rules" / f"slo-{spec.stem}.yml").exists()


def test_slo_rules_from_real_sloth():
    sloth = _tool("sloth")
    p = subprocess.run([str(sloth), "validate", "-i", str(ROOT / "slo")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run([sys.executable, str(GEN), "--check", "--engine", "sloth"], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, "rules are not sloth's output; run scripts/generate-slo-rules\n" + p.stdout[-4000:]


def test_pint_lint_clean():
    pint = _tool("pint")
    p = subprocess.run([str(pint), "-n", "-o", "-l", "WARN", "--config", str(ROOT / ".pint.hcl"), "lint",
                        str(ROOT / "prometheus" / "rules")], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert p.returncode == 0 and not p.stdout.strip(), p.stdout + p.stderr
