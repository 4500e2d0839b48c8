"""Static checks of what compose and CI build: exact pins, the Dockerfile contract, the bench script."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dependencies_are_exact_pins():
    for pp in ("instrumentation/pyproject.toml", "demo/pyproject.toml"):
        data = tomllib.loads((ROOT / pp).read_text())["project"]
        deps = data["dependencies"] + [d for ds in data.get("optional-dependencies", {}).values() for d in ds]
        assert deps and all(re.fullmatch(r"[A-Za-z0-9_.\[\]-]+==[0-9][\w.]*", d) for d in deps), (pp, deps)


def test_dockerfile_contract():
    df = (ROOT / "demo/Dockerfile").read_text()
    assert "ARG PYTHON_IMAGE_VERSION" in df and "FROM python:${PYTHON_IMAGE_VERSION}" in df
    assert re.search(r"^USER 10001:10001$", df, re.M)
    assert '"python", "-m", "obs_demo"' in df
    ignore = (ROOT / "demo/Dockerfile.dockerignore").read_text().split()
    assert ignore[ignore.index("*") + 1:ignore.index("*") + 3] == ["!instrumentation", "!demo"], "secrets/ stays out"


def test_cli_rejects_unknown_command():
    r = subprocess.run([sys.executable, "-m", "obs_demo", "nope"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "usage" in r.stderr


def test_bench_script_runs(tmp_path):
    """Not a timed test: a tiny run so the benchmark script keeps working (numbers are not asserted)."""
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, str(ROOT / "demo/bench/bench.py"), "--duration", "0.5", "--concurrency", "2",
                        "--latency-requests", "50", "--inproc-requests", "50", "--json", str(out)],
                       capture_output=True, text=True, timeout=150)
    assert r.returncode == 0, r.stdout + r.stderr
    import json
    res = json.loads(out.read_text())
    for mode in ("without_helper", "with_helper"):
        assert res[mode]["requests"] > 0 and res[mode]["errors"] == 0
    assert "p99_ms" in res["added"]


def test_error_mix_script_runs(tmp_path):
    """A tiny run of demo/bench/error_mix.py (the README's error-mix numbers): it counts every series the
    ratio rule counts, route templates with braces included, and sees the broken report's 500 (scenario 1)."""
    out = tmp_path / "mix.json"
    r = subprocess.run([sys.executable, str(ROOT / "demo/bench/error_mix.py"), "--duration", "6", "--scrape", "1",
                        "--json", str(out)], capture_output=True, text=True, timeout=150)
    assert r.returncode == 0, r.stdout + r.stderr
    import json
    res = json.loads(out.read_text())
    assert res["requests"] > 0 and res["errors_by_series"].get("GET /api/reports/{report_id} 500", 0) >= 1, res
