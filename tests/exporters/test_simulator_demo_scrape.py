"""What the simulator adds so that `docker compose up` shows every dashboard panel: the files Prometheus'
demo scrape of Supabase's metrics endpoint reads (SIM_PROMETHEUS_DIR, job supabase-metrics-demo in
prometheus/prometheus.yml), and the post-deploy "Smoke tests" workflow (the Smoke checks panel, SmokeCheckFailed)."""
from __future__ import annotations

import base64
import json
import os
import subprocess

import yaml

from obs_bridges.simulator.world import GH_SMOKE_WORKFLOW, World
from tests.conftest import ROOT, require_tool
from tests.exporters.bridgetest import http, wait_for

KEY, TARGETS = "supabase-service-role-key", "supabase-metrics-targets.json"
SMOKE = GH_SMOKE_WORKFLOW[0]


def _basic(key: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"service_role:{key}".encode()).decode()}


def test_prometheus_files_let_prometheus_scrape_every_project(procs, tmp_path):
    d = tmp_path / "obs-demo"
    d.mkdir(mode=0o750)
    sim = procs.sim("--supabase-projects", "3", "--prometheus-dir", str(d))
    key = (d / KEY).read_text()
    targets = json.loads((d / TARGETS).read_text())
    world = sim.world("supabase")["projects"]
    assert len(targets) == len(world) == 3
    assert {t["targets"][0] for t in targets} == {p["ref"] for p in world}
    assert {t["labels"]["supabase_project"] for t in targets} == {p["name"] for p in world}
    assert {p["service_role_key"] for p in world} == {key} and len(key) >= 40
    for t in targets:
        url = sim.url + t["labels"]["__metrics_path__"]
        st, body = http("GET", url, headers=_basic(key))
        assert st == 200 and f'pg_up{{supabase_project_ref="{t["targets"][0]}"'.encode() in body, (st, body[:200])
        assert http("GET", url, headers=_basic(key[:-1] + "x"))[0] == 401
        assert http("GET", url)[0] == 401
    for name in (KEY, TARGETS):
        st = os.stat(d / name)
        assert st.st_mode & 0o777 == 0o640, oct(st.st_mode)
        assert st.st_gid == os.stat(d).st_gid  # Prometheus reads through the directory's group
    assert not [p for p in d.iterdir() if p.name not in (KEY, TARGETS)], "temporary files left behind"
    assert key not in sim.logs()
    assert any("wrote the Prometheus file_sd targets" in line.get("msg", "") for line in sim.log_lines())
    # A stopped simulator leaves no target (nor key) behind; the next start has a new key.
    sim.stop()
    assert not list(d.iterdir())
    sim2 = procs.sim("--supabase-projects", "3", "--prometheus-dir", str(d))
    key2 = (d / KEY).read_text()
    assert key2 != key
    assert http("GET", sim2.url + targets[0]["labels"]["__metrics_path__"], headers=_basic(key))[0] == 401


def test_the_targets_file_is_valid_file_sd_for_promtool(procs, tmp_path):
    """promtool parses file_sd files named by a config (checkSDFile): the simulator's file is one."""
    promtool = require_tool("prometheus", "promtool")
    d = tmp_path / "obs-demo"
    d.mkdir()
    procs.sim("--prometheus-dir", str(d))
    shipped = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in shipped["scrape_configs"] if j["job_name"] == "supabase-metrics-demo")
    # the shipped job, pointed at this test's directory instead of the compose volume
    assert job["file_sd_configs"][0]["files"] == ["/run/obs-demo/" + TARGETS]
    assert job["basic_auth"]["password_file"] == "/run/obs-demo/" + KEY
    job["file_sd_configs"][0]["files"] = [str(d / TARGETS)]
    job["basic_auth"]["password_file"] = str(d / KEY)
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(yaml.safe_dump({"scrape_configs": [job]}))
    p = subprocess.run([str(promtool), "check", "config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "SUCCESS" in p.stdout, p.stdout + p.stderr
    assert "WARNING" not in p.stdout + p.stderr, p.stdout  # the file exists and was parsed
    (d / TARGETS).write_text('[{"targets": "not a list"}]')
    p = subprocess.run([str(promtool), "check", "config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0, "promtool does not read the file_sd file: the check above proves nothing"


def test_unwritable_prometheus_dir_is_logged_and_the_simulator_serves(procs, tmp_path):
    missing = tmp_path / "no-such-dir"
    sim = procs.sim("--prometheus-dir", str(missing))
    assert http("GET", sim.url + "/healthz")[0] == 200
    wait_for(lambda: any("SIM_PROMETHEUS_DIR" in line.get("msg", "") and line.get("level") == "error"
                         for line in sim.log_lines()), 10, what="an error naming SIM_PROMETHEUS_DIR")
    assert not missing.exists()
    key = sim.world("supabase")["projects"][0]["service_role_key"]
    assert key not in sim.logs()


def _runs(w: World, until: float) -> list:
    return sorted((r for rs in w.github.runs.values() for r in rs if r.created <= until), key=lambda r: (r.created, r.id))


def test_every_successful_deploy_triggers_the_smoke_tests():
    w = World(seed=42)
    now = w.now()
    runs = _runs(w, now)
    smoke = [r for r in runs if r.workflow_name == SMOKE]
    assert smoke and all(r.event == "workflow_run" and [j.name for j in r.jobs] == ["smoke"] for r in smoke)
    # each smoke run follows a successful Deploy of the same repository and branch, within a minute
    deploys = [r for r in runs if r.workflow_name == "Deploy" and r.conclusion == "success"]
    for d in deploys:
        after = [s for s in smoke if s.repo == d.repo and s.branch == d.branch and 0 < s.created - d.finished <= 60]
        if d.finished + 60 <= now:
            assert len(after) == 1, (d, after)
    # smoke tests are never picked at random, and the calm default world has no failing one (SmokeCheckFailed)
    assert all(any(d.repo == s.repo and 0 < s.created - d.finished <= 60 for d in deploys) for s in smoke)
    assert not [r for r in smoke if r.conclusion in ("failure", "timed_out", "startup_failure")]
    # what the demo shows right after `docker compose up`: a finished smoke run inside the GitHub bridge's
    # look-back (GITHUB_LOOKBACK_SECONDS, 2 h), so the Smoke checks panel is not empty
    assert any(r.status(now) == "completed" and r.created >= now - 7200 for r in smoke)
    # the world stays deterministic for a seed, smoke runs included
    w2 = World(seed=42, now=w.history_start + 6 * 3600)
    w3 = World(seed=42, now=w.history_start + 6 * 3600)
    key = lambda r: (r.id, r.repo, r.workflow_name, r.created, r.finished, r.conclusion, r.branch)  # noqa: E731
    t = w.history_start + 6 * 3600
    assert [key(r) for r in _runs(w2, t)] == [key(r) for r in _runs(w3, t)]
    assert any(r.workflow_name == SMOKE for r in _runs(w2, t))


def test_smoke_runs_only_follow_world_deploys():
    w = World(seed=7, gh_rate=0, history_hours=0)
    w.github.inject(None, 30, "success", "completed", fixed={"workflow": "Deploy"})
    w.github.inject(None, 30, None, "completed")
    w.advance(3600)
    assert not [r for r in _runs(w, w.now()) if r.workflow_name == SMOKE], "an injected run triggered smoke tests"
    # no new runs at all once the GitHub rate is 0, triggered ones included
    w = World(seed=42, gh_rate=200, history_hours=1)
    assert w.github.follow_ups, "no smoke run pending: this part of the test would prove nothing"
    w.set_rate("github", 0)
    before = len(_runs(w, float("inf")))
    w.advance(3600)
    assert len(_runs(w, float("inf"))) == before


def test_smoke_failure_knob_fails_smoke_runs():
    w = World(seed=42, outcome_rates={"github_smoke_failure": 1.0})
    smoke = [r for r in _runs(w, w.now()) if r.workflow_name == SMOKE]
    assert smoke and all(r.conclusion in ("failure", "cancelled", "skipped") for r in smoke)
    assert any(r.conclusion == "failure" for r in smoke)
    # the workflow list the bridges read names it (repositories' /actions/workflows)
    assert all(any(n == SMOKE for _, n, _, _ in wfs) for wfs in w.github.workflows.values())
