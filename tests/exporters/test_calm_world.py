"""The demo world is calm: 24 simulated hours of the simulator's default world, read by the real bridges
(tests/exporters/calmworld.py: one process, a simulated clock, every upstream polled on its own interval)
and evaluated against every shipped rule file by promtool, fire no critical or high alert. Medium and low
alerts may appear (CI runs and preview deployments fail now and then). A control run with the failure
knobs raised (SIM_* flags) fires DatabaseDown and RailwayDeploymentFailed, so the check can see alerts.

Bounded: the driver samples every 2 minutes (the bridges' poll intervals are 60 s, so each sample is one
fresh poll of every upstream; states in the demo last far longer than 2 minutes), about 90 s on 2 cores."""
from __future__ import annotations

import json
import subprocess
import sys

import yaml

from tests.conftest import ROOT, require_tool

DRIVER = ROOT / "tests" / "exporters" / "calmworld.py"
RULE_FILES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))


def world_series(tmp_path, hours: float, step_s: int, *sim_args: str) -> dict:
    out = tmp_path / f"world-{hours}h.json"
    p = subprocess.run([sys.executable, str(DRIVER), str(hours), str(step_s), str(out), *sim_args],
                       capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return json.loads(out.read_text())


def firing(tmp_path, data: dict, selector: str) -> list[dict]:
    """Every alert matching `selector` that fired at any evaluation of the run (labels), via promtool."""
    step, n = data["step_seconds"], data["steps"]

    def vals(v):
        return " ".join("_" if x is None else repr(float(x)) for x in v)
    series = [{"series": k, "values": vals(v)} for k, v in data["series"].items()]
    end = f"{n * step // 60}m"
    expr = f'max by (alertname, severity) (max_over_time(ALERTS{{alertstate="firing", {selector}}}[{end}]))'
    doc = {"rule_files": [str(p) for p in RULE_FILES], "evaluation_interval": "1m",
           "tests": [{"interval": f"{step}s", "input_series": series,
                      "promql_expr_test": [{"expr": expr, "eval_time": end, "exp_samples": []}]}]}
    f = tmp_path / "calm_test.yml"
    f.write_text(yaml.safe_dump(doc, sort_keys=False, width=100000))
    p = subprocess.run([str(require_tool("prometheus", "promtool")), "test", "rules", str(f)],
                       capture_output=True, text=True, timeout=240)
    if p.returncode == 0:
        return []
    assert "got:" in p.stdout + p.stderr, p.stdout[-4000:] + p.stderr[-2000:]
    got = (p.stdout + p.stderr).split("got:", 1)[1]
    return [dict(kv.split("=", 1) for kv in m.replace('"', "").split(", "))
            for m in __import__("re").findall(r"\{([^}]*)\}", got)]


def test_a_day_of_the_default_demo_world_pages_nobody(tmp_path):
    data = world_series(tmp_path, 24, 120)
    assert data["steps"] == 720 and len(data["series"]) > 100
    stuck = {k: v for k, v in data["polls"].items() if v[1]}
    assert not stuck, f"bridges failing at the end of the run: {stuck}"
    loud = firing(tmp_path, data, 'severity=~"critical|high"')
    assert not loud, f"critical/high alerts fired in a day of the default demo world: {loud}"
    print("medium/low alerts in 24 simulated hours:", firing(tmp_path, data, 'severity=~"medium|low"'))


def test_raised_knobs_do_fire(tmp_path):
    data = world_series(tmp_path, 3, 120, "--supabase-incidents", "0.3", "--railway-failure-rate", "0.6")
    names = {a["alertname"] for a in firing(tmp_path, data, 'severity=~"critical|high"')}
    assert {"DatabaseDown", "RailwayDeploymentFailed"} <= names, names
