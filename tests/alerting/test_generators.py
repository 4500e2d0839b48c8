"""SLO rules are the real sloth's output for the specs in slo/ (sloth is built by scripts/install-tools at
SLOTH_VERSION); pint lints the rules when it can be obtained (the module proxy refuses it)."""
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


def test_slo_specs_pass_sloth_validate():
    sloth = _tool("sloth")
    p = subprocess.run([str(sloth), "validate", "-i", str(ROOT / "slo")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr


def test_slo_rules_are_real_sloth_output():
    """The committed rules equal a fresh `sloth generate` of the specs, so a spec edit without a re-render
    (or a hand edit of the rules) fails."""
    _tool("sloth")
    p = subprocess.run([sys.executable, str(GEN), "--check"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, "rules are not sloth's output; run scripts/generate-slo-rules\n" + p.stdout[-4000:] \
        + p.stderr[-2000:]


def test_the_check_fails_on_drift(tmp_path):
    """--check really compares: a spec whose objective changed makes it fail."""
    _tool("sloth")
    import shutil as sh
    root = tmp_path / "repo"
    for d in ("slo", "prometheus/rules", "scripts"):
        sh.copytree(ROOT / d, root / d)
    sh.copy(ROOT / ".env", root / ".env")
    spec = sorted((root / "slo").glob("*.yml"))[0]
    doc = yaml.safe_load(spec.read_text())
    doc["slos"][0]["objective"] = 97.25
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    p = subprocess.run([sys.executable, str(root / "scripts" / "generate-slo-rules"), "--check"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and "stale SLO rules" in p.stderr, p.stdout[-2000:] + p.stderr


def test_pint_lint_clean():
    pint = _tool("pint")
    p = subprocess.run([str(pint), "-n", "-o", "-l", "WARN", "--config", str(ROOT / ".pint.hcl"), "lint",
                        str(ROOT / "prometheus" / "rules")], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert p.returncode == 0 and not p.stdout.strip(), p.stdout + p.stderr
