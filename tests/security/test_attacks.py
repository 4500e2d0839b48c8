"""The attack script (python -m scripts.attack): every module runs against the real component on loopback,
within its time bound, and every attack holds. The runner itself reports a broken attack and a module
that breaks its contract."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scripts.attack import __main__ as runner
from tests.harness.compose import ROOT

# Issue 12: one module per network-facing component.
COMPONENTS = {"gateway", "webvitals", "bridges", "sink", "simulator"}


def test_the_attack_modules_are_there():
    assert COMPONENTS <= set(runner.modules()), f"missing: {sorted(COMPONENTS - set(runner.modules()))}"


@pytest.mark.parametrize("name", sorted(runner.modules()))
def test_attacks_hold(name):
    doc = runner.run_module(name, timeout=180)
    assert not doc.get("error"), doc.get("error")
    results = doc["results"]
    assert results, f"{name}: no attack ran"
    broken = [r for r in results if not r["held"]]
    assert not broken, json.dumps(broken, indent=1)[:3000]
    print(f"\n{name}: {len(results)} attacks held in {doc['seconds']} s; peak RSS "
          f"{max((r.get('peak_rss_mb') or 0) for r in results):.1f} MB")


FAKE = '''
import json, sys
held = {held}
print(json.dumps({{"component": "fake", "results": [{{"attack": "a", "tried": "t", "held": held, "detail": "d",
                                                     "peak_rss_mb": 1.0}}]}}))
sys.exit({code})
'''


@pytest.mark.parametrize("held,code,error", [(True, 0, False), (False, 1, False), (False, 0, True), ("x", None, True)])
def test_runner_judges_a_module(tmp_path, held, code, error):
    pkg = tmp_path / "fakeattack"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    src = FAKE.format(held=held, code=code) if code is not None else "raise SystemExit('boom')\n"
    (pkg / "m.py").write_text(src)
    doc = runner.run_module("m", timeout=30, package="fakeattack", path=tmp_path)
    assert bool(doc.get("error")) is error, doc


def test_cli_exit_code_follows_the_results():
    p = subprocess.run([sys.executable, "-m", "scripts.attack", "--only", "nonexistent"], cwd=ROOT,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "unknown module" in p.stderr
