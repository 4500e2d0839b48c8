"""Vercel, Railway and Supabase exporters against the simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import collections
import time
import urllib.request

import yaml

from tests.exporters.bridgetest import http, wait_for


# ---------------------------------------------------------------- Vercel

def vc_start(procs, **kw):
    sim = procs.sim("--vercel-projects", "3")
    sim.ctl("POST", "rate", {"platform": "vercel", "per_hour": 0})
    env = {"VERCEL_API_URL": sim.url + "/vercel", "VERCEL_TOKEN": "vc_testtoken_abcdef", "VERCEL_TEAM_ID": "team_demo",
           "VERCEL_POLL_INTERVAL_SECONDS": "1", "VERCEL_PAGE_LIMIT": "4"}
    env.update(kw)
    return sim, procs.exporter("vercel", env, wait_upstream="deployments")


def vc_counted(exp):
    return exp.value("vercel_deployments_total") or 0


def test_vercel_pagination_keeps_deployments_created_in_one_millisecond(procs):
    """`until` is exclusive and `next` is the last item's created ms: deployments sharing that millisecond
    across a page boundary must not fall between the pages (limit 4: two newer, then 3 in one ms)."""
    sim, exp = vc_start(procs)
    same_ms = sim.inject("vercel", project="web-amber", count=3, outcome="READY", state="completed",
                         spacing=0)["ids"]
    world = {d["uid"]: d for d in sim.world("vercel")["deployments"]}
    assert len({int(world[u]["created"] * 1000) for u in same_ms}) == 1
    time.sleep(0.01)
    newer = sim.inject("vercel", project="web-birch", count=2, outcome="READY", state="completed")["ids"]
    wait_for(lambda: vc_counted(exp) == 5, 30, what="5 deployments counted")
    exp.more_polls("deployments")  # nothing counted twice
    assert vc_counted(exp) == 5
    assert exp.value("vercel_deployments_total", project="web-amber", target="production", state="READY") == 3
    assert len(newer) == 2


def test_vercel_values_match_world(procs):
    sim, exp = vc_start(procs)
    assert vc_counted(exp) == 0  # history seeded, not counted
    ids = []
    for outcome in ("READY", "READY", "ERROR", "CANCELED"):
        ids += sim.inject("vercel", project="web-amber", count=1, outcome=outcome, state="completed")["ids"]
    ids += sim.inject("vercel", project="web-birch", count=2, outcome="READY", state="building", finish_in=2,
                      target=None)["ids"]
    wait_for(lambda: vc_counted(exp) == 6, 30, what="6 deployments counted")
    world = {d["uid"]: d for d in sim.world("vercel")["deployments"]}
    expected = collections.Counter((world[u]["project"], world[u]["target"], world[u]["state"]) for u in ids)
    got = collections.Counter()
    for s in exp.samples():
        if s.name == "vercel_deployments_total":
            got[(s.labels["project"], s.labels["target"], s.labels["state"])] += s.value
    assert got == expected
    ready = [world[u] for u in ids if world[u]["state"] == "READY"]
    assert exp.value("vercel_deployment_build_duration_seconds_count") == len(ready)
    assert abs(exp.value("vercel_deployment_build_duration_seconds_sum")
               - sum(d["ended"] - d["building"] for d in ready)) < 0.01 * len(ready)
    assert exp.value("vercel_deployment_queue_duration_seconds_count") == 6
    # latest state per project/target, whole enum
    latest = {}
    for d in world.values():
        if d["created"] < time.time() - 7000:  # outside the exporter's 2 h look-back
            continue
        k = (d["project"], d["target"])
        if k not in latest or d["created"] >= latest[k]["created"]:
            latest[k] = d
    for (proj, target), d in latest.items():
        rows = [s for s in exp.samples() if s.name == "vercel_latest_deployment_state"
                and s.labels["project"] == proj and s.labels["target"] == target]
        assert len(rows) == 8
        assert [s.labels["state"] for s in rows if s.value == 1] == [d["state"]]
    prod_ready = max(d["ended"] for d in world.values() if d["project"] == "web-amber"
                     and d["created"] > time.time() - 7000
                     and d["target"] == "production" and d["state"] == "READY")
    assert abs(exp.value("vercel_latest_production_ready_timestamp_seconds", project="web-amber")
               - prod_ready) < 0.01
    # pagination with until=<next>
    assert any("until=" in r["query"] for r in sim.requests("vercel") if "deployments" in r["path"])
    assert all("teamId=team_demo" in r["query"] for r in sim.requests("vercel"))


def test_vercel_restart_and_churn(procs):
    sim, exp = vc_start(procs, VERCEL_PAGE_LIMIT="100", VERCEL_MAX_PAGES="50")
    sim.inject("vercel", project="web-amber", count=3, outcome="READY", state="completed")
    wait_for(lambda: vc_counted(exp) == 3, 20, what="3 counted")
    n = len(exp.samples())
    sim.inject("vercel", project="web-amber", count=1000, outcome="READY", state="completed")
    wait_for(lambda: vc_counted(exp) == 1003, 60, what="1,003 counted")
    assert len(exp.samples()) == n
    exp.stop()
    exp2 = procs.exporter("vercel", {"VERCEL_API_URL": sim.url + "/vercel", "VERCEL_TOKEN": "vc_testtoken_abcdef",
                                     "VERCEL_TEAM_ID": "team_demo", "VERCEL_POLL_INTERVAL_SECONDS": "1",
                                     "VERCEL_MAX_PAGES": "50"}, wait_upstream="deployments")
    exp2.more_polls("deployments")
    assert vc_counted(exp2) == 0


def test_vercel_project_allow_list(procs):
    sim, exp = vc_start(procs, VERCEL_PROJECTS="web-birch")
    sim.inject("vercel", project="web-amber", count=2, outcome="READY", state="completed")
    sim.inject("vercel", project="web-birch", count=1, outcome="ERROR", state="completed")
    wait_for(lambda: vc_counted(exp) == 1, 20, what="1 counted")
    exp.more_polls("deployments")
    assert vc_counted(exp) == 1
    assert {s.labels["project"] for s in exp.samples() if "project" in s.labels} == {"web-birch"}


# ---------------------------------------------------------------- Railway

def rw_start(procs, token="rw_account_token_123", **kw):
    sim = procs.sim("--railway-projects", "2")
    sim.ctl("POST", "rate", {"platform": "railway", "per_hour": 0})
    env = {"RAILWAY_API_URL": sim.url + "/railway/graphql/v2", "RAILWAY_TOKEN": token,
           "RAILWAY_POLL_INTERVAL_SECONDS": "1", "RAILWAY_METRICS_INTERVAL_SECONDS": "1",
           "RAILWAY_USAGE_INTERVAL_SECONDS": "2", "RAILWAY_PAGE_SIZE": "5"}
    env.update(kw)
    return sim, procs.exporter("railway", env, wait_upstream="deployments")


def rw_names(world):
    pn, en, sn = {}, {}, {}
    for p in world["projects"]:
        pn[p["id"]] = p["name"]
        en.update(p["envs"])
        sn.update(p["services"])
    return pn, en, sn


def test_railway_values_match_world(procs):
    sim, exp = rw_start(procs)
    assert (exp.value("railway_deployments_total") or 0) == 0
    ids = sim.inject("railway", count=3, outcome="FAILED", state="completed", project="shop-amber")["ids"]
    ids += sim.inject("railway", count=2, outcome="SUCCESS", state="building", project="shop-birch")["ids"]
    wait_for(lambda: exp.value("railway_deployments_total") == 5, 30, what="5 deployments counted")
    world = sim.world("railway")
    pn, en, sn = rw_names(world)
    deps = {d["id"]: d for d in world["deployments"]}
    got = collections.Counter()
    for s in exp.samples():
        if s.name == "railway_deployments_total":
            got[(s.labels["project"], s.labels["environment"], s.labels["service"], s.labels["status"])] += s.value
    exp_c = collections.Counter()
    steps = 0
    for i in ids:
        d = deps[i]
        st = "FAILED" if d["status"] == "FAILED" else "SUCCESS"
        exp_c[(pn[d["project_id"]], en[d["environment_id"]], sn[d["service_id"]], st)] += 1
        steps += len(d["steps"])
    assert got == exp_c
    wait_for(lambda: exp.value("railway_deployment_step_duration_seconds_count") == steps, 10,
             what="step durations")
    # latest status per service/environment, whole enum
    latest = {}
    for d in deps.values():
        if d["created"] < time.time() - 7000:
            continue
        k = (pn[d["project_id"]], en[d["environment_id"]], sn[d["service_id"]])
        if k not in latest or d["created"] >= latest[k]["created"]:
            latest[k] = d
    for k, d in latest.items():
        rows = [s for s in exp.samples() if s.name == "railway_deployment_status"
                and (s.labels["project"], s.labels["environment"], s.labels["service"]) == k]
        assert len(rows) == 13
        assert [s.labels["status"] for s in rows if s.value == 1] == [d["status"]]
    # CPU and memory: one of the last complete 30 s samples of the world's series
    for s in exp.samples():
        if s.name == "railway_service_cpu_usage_cores":
            assert 0.0 <= s.value <= 0.6
        if s.name == "railway_service_memory_limit_gigabytes":
            assert s.value == 8.0
    assert len([s for s in exp.samples() if s.name == "railway_service_cpu_usage_cores"]) == \
        sum(len(p["services"]) * len(p["envs"]) for p in world["projects"])
    # estimated cost = estimatedUsage x published prices
    wait_for(lambda: exp.value("railway_estimated_cost_dollars", project="shop-amber") is not None, 10,
             what="cost")
    m = 30 * 24 * 60
    expected_cost = 9000 * 20 / m + 20000 * 10 / m + 12.5 * 0.05 + 40000 * 0.15 / m + 5000 * 0.15 / m
    assert abs(exp.value("railway_estimated_cost_dollars", project="shop-amber") - expected_cost) < 1e-4
    # every request was a batched GraphQL POST
    assert all(r["method"] == "POST" for r in sim.requests("railway"))


def test_railway_cpu_matches_world_sample(procs):
    sim, exp = rw_start(procs)
    from obs_bridges.simulator.world import World  # same deterministic function the simulator uses

    w = World(seed=42, github_repos=0, vercel_projects=0, railway_projects=2, supabase_projects=0,
              history_hours=0, gh_rate=0, vc_rate=0, rw_rate=0)
    world = sim.world("railway")
    pn, en, sn = rw_names(world)
    inv = {(p["name"], en_name, sv_name): (sid, eid) for p in world["projects"]
           for eid, en_name in p["envs"].items() for sid, sv_name in p["services"].items()}
    now = time.time()
    for s in exp.samples():
        if s.name == "railway_service_cpu_usage_cores":
            sid, eid = inv[(s.labels["project"], s.labels["environment"], s.labels["service"])]
            candidates = {w.railway.metric("CPU_USAGE", sid, eid, now - k * 30) for k in range(0, 6)}
            assert s.value in candidates


def test_railway_project_token_header_style(procs):
    sim, exp = rw_start(procs, token="proj-0123456789")
    assert exp.value("railway_projects") == 1
    envs = {s.labels["environment"] for s in exp.samples() if s.name == "railway_service_cpu_usage_cores"}
    assert envs == {"production"}
    kinds = {r["auth"] for r in sim.requests("railway") if r["status"] == 200}
    assert "project" in kinds


# ---------------------------------------------------------------- Supabase

def sb_start(procs, **kw):
    sim = procs.sim("--supabase-projects", "3")
    # the tests poll every second: lift the simulated 60/min limit (the rate-limit path has its own test)
    sim.ctl("POST", "ratelimit", {"platform": "supabase", "limit": 100000})
    env = {"SUPABASE_API_URL": sim.url + "/supabase", "SUPABASE_ACCESS_TOKEN": "sbp_testtoken_98765",
           "SUPABASE_POLL_INTERVAL_SECONDS": "6", "SUPABASE_HEALTH_INTERVAL_SECONDS": "1",
           "SUPABASE_MAX_REQUESTS_PER_MINUTE": "60"}
    env.update(kw)
    return sim, procs.exporter("supabase", env, wait_upstream="health")


def test_supabase_values_match_world(procs):
    sim, exp = sb_start(procs)
    sim.ctl("POST", "supabase/project", {"name": "db-birch", "unhealthy": ["realtime"]})
    sim.ctl("POST", "supabase/project", {"name": "db-cedar", "status": "INACTIVE"})
    wait_for(lambda: exp.value("supabase_service_health", project="db-birch", service="realtime",
                               status="UNHEALTHY") == 1, 20, what="realtime unhealthy")
    wait_for(lambda: exp.value("supabase_project_status", project="db-cedar", status="INACTIVE") == 1, 20,
             what="paused project")
    world = sim.world("supabase")
    for p in world["projects"]:
        rows = [s for s in exp.samples() if s.name == "supabase_project_status" and s.labels["project"] == p["name"]]
        assert len(rows) == 15 and [s.labels["status"] for s in rows if s.value == 1] == [p["status"]]
        info = [s for s in exp.samples() if s.name == "supabase_project_info" and s.labels["project"] == p["name"]]
        assert info[0].labels["ref"] == p["ref"] and info[0].labels["region"] == p["region"]
    wait_for(lambda: not any(s.labels.get("project") == "db-cedar" for s in exp.samples()
                             if s.name == "supabase_service_health"), 10, what="paused project health dropped")
    for p in world["projects"]:
        if p["status"] != "ACTIVE_HEALTHY":
            continue
        for svc, st in p["health"].items():
            rows = [s for s in exp.samples() if s.name == "supabase_service_health"
                    and s.labels["project"] == p["name"] and s.labels["service"] == svc]
            assert len(rows) == 3 and [s.labels["status"] for s in rows if s.value == 1] == [st]
    # a paused project is a status, not an exporter error
    assert exp.value("supabase_up") == 1


def test_supabase_budget_stretches_health_interval(procs):
    sim, exp = sb_start(procs, SUPABASE_MAX_REQUESTS_PER_MINUTE="2", SUPABASE_POLL_INTERVAL_SECONDS="60")
    # 3 projects, 1 projects call/min, 1 spare call/min -> health every 180 s
    assert exp.value("supabase_health_poll_interval_seconds") == 180


def test_supabase_metrics_endpoint_and_scrape_config(procs, tmp_path):
    import subprocess
    import sys

    sim, exp = sb_start(procs)
    world = sim.world("supabase")
    p = world["projects"][0]
    url = f"{sim.url}/supabase-metrics/{p['ref']}/customer/v1/privileged/metrics"
    assert http("GET", url)[0] == 401
    auth = base64.b64encode(f"service_role:{p['service_role_key']}".encode()).decode()
    st, body = http("GET", url, headers={"Authorization": f"Basic {auth}"})
    assert st == 200 and b"pg_up{" in body
    from prometheus_client.parser import text_string_to_metric_families

    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert {"pg_up", "pg_stat_database_xact_commit", "pg_database_size_bytes"} <= names
    keys = tmp_path / "keys"
    # A key file left from before a rotation, world-readable: replaced whole and made 0600.
    keys.mkdir(mode=0o700)
    (keys / p["ref"]).write_text("sb_old_rotated_key")
    (keys / p["ref"]).chmod(0o644)
    env = {"PATH": "/usr/bin:/bin", "SUPABASE_API_URL": sim.url + "/supabase",
           "SUPABASE_ACCESS_TOKEN": "sbp_testtoken_98765",
           "SUPABASE_METRICS_URL_TEMPLATE": sim.url + "/supabase-metrics/{ref}/customer/v1/privileged/metrics"}
    out = subprocess.run([sys.executable, "-m", "obs_bridges", "supabase", "scrape-config", "--write-keys",
                          "--password-dir", str(keys)], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("job_name:") == 3
    assert sorted(f.name for f in keys.iterdir()) == sorted(q["ref"] for q in world["projects"]), \
        "only the key files, no temporary files left behind"
    jobs = {j["job_name"]: j for j in yaml.safe_load(out.stdout)["scrape_configs"]}
    assert jobs[f"supabase-{p['name']}"]["metrics_path"] == f"/supabase-metrics/{p['ref']}/customer/v1/privileged/metrics"
    assert (keys / p["ref"]).read_text() == p["service_role_key"]
    assert oct((keys / p["ref"]).stat().st_mode & 0o777) == "0o600"
    assert p["service_role_key"] not in out.stderr
    _ = urllib.request


def test_vercel_latest_state_on_a_same_millisecond_tie_is_the_first_listed(procs):
    """Three deployments of one project in one millisecond of the API's timestamps, listed newest first:
    the latest state is the first listed (the last injected), not whichever the loop saw last."""
    sim, exp = vc_start(procs)
    ids = sim.inject("vercel", project="web-amber", count=3, outcomes=["ERROR", "READY", "CANCELED"],
                     state="completed", spacing=0)["ids"]
    world = {d["uid"]: d for d in sim.world("vercel")["deployments"]}
    assert len({int(world[u]["created"] * 1000) for u in ids}) == 1
    assert [world[u]["state"] for u in ids] == ["ERROR", "READY", "CANCELED"]
    wait_for(lambda: vc_counted(exp) == 3, 30, what="3 deployments counted")
    rows = [s for s in exp.samples() if s.name == "vercel_latest_deployment_state"
            and s.labels["project"] == "web-amber" and s.labels["target"] == "production"]
    assert [s.labels["state"] for s in rows if s.value == 1] == ["CANCELED"]
