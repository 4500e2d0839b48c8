"""The simulator's world and API handlers on an injected clock: no sockets, no sleeps, no wall time.

Seeded determinism (pinned to what the simulator produced before its split into per-platform modules), the
catch-up of arrivals, rates, the inject/re-run operations, status transitions over fake time, and requests
through the routing table (server.route_for / server.respond) without HTTP."""
from __future__ import annotations

import base64
import hashlib
import json
import time

import pytest

from obs_bridges.simulator import control as ctl
from obs_bridges.simulator import server
from obs_bridges.simulator.common import ApiRequest, Reply
from obs_bridges.simulator.faults import SimState
from obs_bridges.simulator.world import SB_SERVICES, World
from tests.support.clock import T0
from tests.support.clock import FakeClock as Clock

GH = {"Authorization": "Bearer ghp_unit"}


@pytest.fixture
def no_wall_clock(monkeypatch):
    """Any read of time.time() by the simulator fails the test: it must read the world's clock."""
    def boom():
        raise AssertionError("the simulator read time.time() instead of the world's clock")
    monkeypatch.setattr(time, "time", boom)


def world(clock=None, **kw) -> World:
    return World(clock=clock or Clock(), **kw)


def runs(w: World) -> list:
    return sorted((r for rs in w.github.runs.values() for r in rs), key=lambda r: r.id)


def fingerprint(w: World) -> dict:
    return {"gh": [(r.id, r.repo, r.workflow_name, r.created, r.finished, r.conclusion, r.branch, r.sha,
                    [(j.id, j.started, j.completed) for j in r.jobs]) for r in runs(w)],
            "vc": [(d.uid, d.project, d.target, d.created, d.ended, d.outcome) for d in w.vercel.deployments],
            "rw": [(d.id, d.service_id, d.created, d.steps, d.outcome, d.removed_at, d.crashed_at)
                   for d in w.railway.deployments],
            "sb": [p["ref"] for p in w.supabase.projects], "ws": w.railway.workspace}


# ---------------------------------------------------------------- determinism

def test_a_seed_gives_the_same_world_as_before_the_split(no_wall_clock):
    w = world(seed=42)
    rs = runs(w)
    assert len(rs) == 35 and sum(r.workflow_name == "Smoke tests" for r in rs) == 4
    assert [(r.id, r.repo, r.workflow_name, r.event, r.branch, r.conclusion, r.sha[:12], round(r.created - T0, 3))
            for r in rs[:3]] == [
        (1001, "demo-org/repo-birch", "CI", "pull_request", "main", "success", "93cd59bf5c94", -21600.0),
        (1002, "demo-org/repo-cedar", "Nightly", "pull_request", "main", "success", "10435a1098ae", -21471.87),
        (1003, "demo-org/repo-cedar", "Deploy", "pull_request", "feature/delta-699", "skipped", "4b22d3081c8e",
         -21180.417)]
    vc = w.vercel.deployments
    assert len(vc) == 34 and [(d.uid, d.project, d.target, d.outcome, round(d.created - T0, 3)) for d in vc[:2]] == [
        ("dpl_19db3ad0ddd1dfb23b982ef8", "web-amber", "production", "READY", -21600.0),
        ("dpl_8a175dfebfc00dc804f64d86", "web-birch", None, "READY", -21327.68)]
    assert w.railway.workspace == "bdd640fb-0667-1ad1-1c80-317fa3b1799d" and len(w.railway.deployments) == 61
    assert [(d.id, d.outcome, round(d.created - T0, 3)) for d in w.railway.deployments[:2]] == [
        ("8fb5d27b-beb7-9919-3f22-faf823bed01d", "SUCCESS", -21600.0),
        ("aab612c9-415d-174a-75a6-69814104a8b5", "SUCCESS", -21321.249)]
    assert [p["ref"] for p in w.supabase.projects] == ["stjerujesuoxmapwmbqx", "stjesujesvejusejtsdi"]
    assert w.vercel.projects == [("prj_154679380000", "web-amber"), ("prj_624149ae0000", "web-birch"),
                                 ("prj_fb4818140000", "web-cedar")]
    assert [round(x - T0, 3) for x in (w.railway.deployments[0].finished, rs[0].finished, vc[0].ended)] == \
        [-21452.637, -21176.234, -21455.587]
    # every timeline (times rounded to the millisecond), in one digest
    fp = json.dumps([[(r.id, r.repo, r.workflow_name, round(r.created, 3), round(r.finished, 3), r.conclusion, r.branch)
                      for r in rs],
                     [(d.uid, round(d.created, 3), round(d.ended, 3), d.outcome, d.target) for d in vc],
                     [(d.id, [(s, round(a, 3), round(b, 3)) for s, a, b in d.steps], d.outcome, d.removed_at is not None,
                       d.crashed_at) for d in w.railway.deployments]])
    assert hashlib.sha256(fp.encode()).hexdigest() == "5acff8c3e4b329c8e555058623b2ee753883b8c2a45f66e5312a582a1bab7aa8"


@pytest.mark.parametrize("seed", [1, 7, 1234])
def test_same_seed_same_world_other_seed_other_world(seed, no_wall_clock):
    a, b, other = world(seed=seed), world(seed=seed), world(seed=seed + 1)
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a)["gh"] != fingerprint(other)["gh"] and fingerprint(a)["ws"] != fingerprint(other)["ws"]
    # the service-role key is a credential: random at every start, never from the seed
    assert a.supabase.service_role_key != b.supabase.service_role_key


def test_the_same_timeline_whether_time_passes_or_is_advanced(no_wall_clock):
    ca, cb = Clock(), Clock()
    a, b = world(ca, seed=3, gh_rate=20, vc_rate=20, rw_rate=10), world(cb, seed=3, gh_rate=20, vc_rate=20, rw_rate=10)
    before = len(runs(a))
    a.advance(1800)
    cb.t += 1800
    b.tick()
    assert a.now() == b.now() == T0 + 1800 and a.offset == 1800 and b.offset == 0
    assert fingerprint(a) == fingerprint(b)
    assert len(runs(a)) > before
    # back-filled history starts history_hours before the clock; nothing is listed ahead of its time
    assert a.history_start == T0 - 6 * 3600
    assert min(r.created for r in runs(a)) >= a.history_start
    assert max(r.created for r in runs(a)) <= a.now()
    assert max(d.created for d in a.vercel.deployments) <= a.now()


def test_tick_without_time_passing_adds_nothing_and_arrivals_follow_the_rate(no_wall_clock):
    c = Clock()
    w = world(c, seed=5, history_hours=0, gh_rate=0, vc_rate=0, rw_rate=0)
    assert fingerprint(w)["gh"] == [] and w.vercel.deployments == [] and w.railway.deployments == []
    w.set_rate("vercel", 60)  # 60 per project-hour, 3 projects: about 3 a minute
    first = len(w.vercel.deployments)
    assert first == 1  # the first arrival is due at once (now)
    w.tick()
    assert len(w.vercel.deployments) == first
    c.t += 3600
    w.tick()
    n = len(w.vercel.deployments)
    assert 120 < n < 250, n  # Poisson with mean 180 (+1): far outside this band means the rate is not applied
    assert w.railway.deployments == [] and runs(w) == []  # the other platforms stayed off


def test_smoke_runs_appear_when_due_not_only_at_the_next_arrival(no_wall_clock):
    c = Clock()
    w = world(c, seed=42, gh_rate=200, history_hours=0.5)
    for _ in range(600):
        c.t += 1
        w.tick()
        assert all(f[0] > w.now() for f in w.github.follow_ups), "a smoke run due by now is still pending"
    smoke = [r for r in runs(w) if r.workflow_name == "Smoke tests"]
    assert smoke and all(r.event == "workflow_run" for r in smoke)


def test_set_rate_zero_stops_arrivals_and_pending_smoke_runs(no_wall_clock):
    c = Clock()
    w = world(c, seed=42, gh_rate=200, history_hours=1)
    assert w.github.follow_ups, "no smoke run pending: the test would prove nothing"
    w.set_rate("github", 0)
    assert w.github.follow_ups == [] and w._next_arrival["github"] == float("inf") and w.rates["github"] == 0
    n = len(runs(w))
    c.t += 7200
    w.tick()
    assert len(runs(w)) == n
    w.set_rate("railway", 0)
    m = len(w.railway.deployments)
    w.advance(7200)
    assert len(w.railway.deployments) == m
    assert len(w.vercel.deployments) > 0  # vercel kept its rate


# ---------------------------------------------------------------- status transitions and inject

def test_github_inject_states_and_transitions(no_wall_clock):
    c = Clock()
    w = world(c, seed=9, gh_rate=0, history_hours=0)
    done = w.github.inject("demo-org/repo-amber", 3, "failure", "completed", duration=95)
    live = w.github.inject("demo-org/repo-amber", 1, "success", "in_progress", finish_in=30)
    queued = w.github.inject(None, 1, None, "queued", finish_in=20)
    by = w.github.run_by_id
    assert len(set(done + live + queued)) == 5 and done == sorted(done)
    assert all(by[i].status(w.now()) == "completed" and by[i].conclusion == "failure" for i in done)
    # a failed run: every job but the last succeeded
    assert [j.conclusion for j in by[done[0]].jobs][-1] == "failure"
    assert set(j.conclusion for j in by[done[0]].jobs[:-1]) <= {"success"}
    r = by[live[0]]
    assert r.status(w.now()) == "in_progress" and r.finished == T0 + 29  # its jobs' end (1 s queue, 2 s less)
    c.t += 28.9
    assert r.status(w.now()) == "in_progress"
    c.t += 0.1
    assert r.status(w.now()) == "completed" and r.conclusion == "success"
    q = by[queued[0]]
    assert q.status(T0 + 19) == "queued" and q.status(T0 + 20.5) == "in_progress" and q.status(T0 + 22) == "completed"
    assert w.github.list_runs("demo-org/repo-amber", None, w.now())[0].created >= \
        w.github.list_runs("demo-org/repo-amber", None, w.now())[-1].created


def test_rerun_keeps_the_earlier_attempt(no_wall_clock):
    c = Clock()
    w = world(c, seed=9, gh_rate=0, history_hours=0)
    rid = w.github.inject("demo-org/repo-amber", 1, "success", "in_progress", finish_in=600)[0]
    c.t += 10
    assert w.github.rerun(rid, "failure", "success", 20) == 2
    r, past = w.github.run_by_id[rid], w.github.past_attempts[(rid, 1)]
    assert past.conclusion == "failure" and past.finished == T0 + 10 and past.status(w.now()) == "completed"
    assert r.attempt == 2 and r.status(w.now()) == "queued"
    c.t += 1
    assert r.status(w.now()) == "in_progress"
    c.t += 20
    assert r.status(w.now()) == "completed" and r.conclusion == "success"
    assert {j.id for j in r.jobs}.isdisjoint({j.id for j in past.jobs})
    with pytest.raises(KeyError):
        w.github.rerun(999999)


def test_vercel_inject_same_millisecond_and_outcome_list(no_wall_clock):
    c = Clock()
    w = world(c, seed=2, vc_rate=0, history_hours=0)
    uids = w.vercel.inject("web-birch", 4, ["READY", "ERROR"], "completed", spacing=0)
    ds = {d.uid: d for d in w.vercel.deployments}
    got = [ds[u] for u in uids]
    assert [d.outcome for d in got] == ["READY", "ERROR", "READY", "ERROR"]
    assert len({int(d.created * 1000) for d in got}) == 1 and [d.created for d in got] == sorted(d.created for d in got)
    assert all(d.project == "web-birch" and d.target == "production" and d.state(w.now()) == d.outcome for d in got)
    live = ds.get(w.vercel.inject(None, 1, "READY", "in_progress", finish_in=5, target=None)[0]) or \
        w.vercel.deployments[-1]
    assert live.state(T0 - 1.5) == "QUEUED" and live.state(T0 + 1) == "BUILDING" and live.state(T0 + 5) == "READY"


def test_railway_deployments_over_time_and_superseding(no_wall_clock):
    c = Clock()
    w = world(c, seed=4, rw_rate=0, history_hours=0)
    failed = w.railway.by_id[w.railway.inject(1, "FAILED", "completed", "shop-amber")[0]]
    assert failed.status(w.now()) == "FAILED" and [s for s, _, _ in failed.steps][-1] == "BUILD_IMAGE"
    d = w.railway.by_id[w.railway.inject(1, "SUCCESS", "in_progress", "shop-amber")[0]]
    seen = []
    assert d.finished == pytest.approx(T0 + 4.4)  # five 0.2 s steps from +0.4 s, the last stretched by 3 s
    for dt in (0, 0.5, 0.9, 1.2, 4.3, 4.5):
        st = d.status(T0 + dt)
        if not seen or seen[-1] != st:
            seen.append(st)
    assert seen == ["QUEUED", "BUILDING", "DEPLOYING", "SUCCESS"], seen
    # a later successful deployment of the same service and environment removes the earlier one when it is live
    where = (w.railway.projects[0], d.service_id, d.environment_id)
    c.t += 60
    nxt = w.railway.new_deployment(w.inject_rng, w.now(), where, "SUCCESS", fast=True)
    assert d.removed_at == nxt.finished
    assert d.status(nxt.finished - 0.01) == "SUCCESS" and d.status(nxt.finished) == "REMOVED"
    crash = w.railway.new_deployment(w.inject_rng, w.now(), (w.railway.projects[1], *w.railway.projects[1]["services"][0][:1],
                                                             w.railway.projects[1]["envs"][0][0]), "CRASHED")
    assert crash.outcome == "SUCCESS" and crash.crashed_at > crash.finished
    assert crash.status(crash.crashed_at - 0.01) == "SUCCESS" and crash.status(crash.crashed_at) == "CRASHED"


def test_supabase_health_incidents_and_project_control(no_wall_clock):
    w = world(seed=1, outcome_rates={"supabase_minor_incident": 1.0})
    ref = w.supabase.projects[0]["ref"]
    assert w.supabase.health(ref, "db", T0) == "ACTIVE_HEALTHY"  # minor incidents spare the database
    assert {s: w.supabase.health(ref, s, T0) for s in SB_SERVICES if s != "db"} == \
        {s: "UNHEALTHY" for s in SB_SERVICES if s != "db"}
    assert w.supabase.set_project("db-amber", unhealthy=["db"]) and w.supabase.health(ref, "db", T0) == "UNHEALTHY"
    assert w.supabase.set_project(ref, status="COMING_UP") and w.supabase.health(ref, "db", T0) == "COMING_UP"
    assert not w.supabase.set_project("nope", status="X")
    calm = world(seed=1)
    assert all(calm.supabase.health(p["ref"], s, T0 + k * 300) == "ACTIVE_HEALTHY"
               for p in calm.supabase.projects for s in SB_SERVICES for k in range(50))


# ---------------------------------------------------------------- handlers through the routing table

def call(state: SimState, method: str, url: str, headers=None, body: bytes = b"", entry=None):
    path, _, query = url.partition("?")
    q = {k: [v] for k, v in (kv.split("=", 1) for kv in query.split("&") if kv)}
    route, sub = server.route_for(path)
    assert route is not None, path
    entry = {} if entry is None else entry
    req = ApiRequest(method, sub, q, headers or {}, "http://sim" + route.prefix, body)
    return server.respond(state, route, req, None, entry)


def test_the_routing_table():
    assert server.route_for("/github/rate_limit")[0].platform == "github"
    assert server.route_for("/supabase-metrics/x/customer/v1/privileged/metrics")[0].handle.__name__ == \
        "handle_metrics"
    assert server.route_for("/supabase/v1/projects") == (server.ROUTES[3], "/v1/projects")
    assert server.route_for("/railway/graphql/v2") == (server.ROUTES[0], "/")
    assert server.route_for("/githubx/repos")[0] is None and server.route_for("/nope")[0] is None


def test_github_runs_through_the_table_with_etag_and_rate_limit(no_wall_clock):
    c = Clock()
    w = world(c, seed=42)
    state = SimState(w)
    url = "/github/repos/demo-org/repo-birch/actions/runs?per_page=2"
    entry = {}
    st, body, h = call(state, "GET", url, GH, entry=entry)
    assert st == 200 and entry == {"status": 200, "counted": True}
    data = json.loads(body)
    listed = [r for r in runs(w) if r.repo == "demo-org/repo-birch"]
    assert data["total_count"] == len(listed) and len(data["workflow_runs"]) == 2
    newest = max(listed, key=lambda r: (r.created, r.id))
    assert data["workflow_runs"][0]["id"] == newest.id and data["workflow_runs"][0]["status"] == newest.status(w.now())
    assert 'rel="next"' in h["Link"] and h["Link"].startswith("<http://sim/github/repos/demo-org/repo-birch/")
    st2, body2, h2 = call(state, "GET", url, {**GH, "If-None-Match": h["ETag"]})
    assert st2 == 304 and body2 == b"" and h2["x-ratelimit-used"] == "1"  # a 304 is not counted
    assert call(state, "GET", url, {})[0] == 401
    state.windows["github"]["limit"] = 2
    assert call(state, "GET", url, GH)[0] == 200
    st3, body3, h3 = call(state, "GET", url, GH)
    assert st3 == 403 and b"rate limit exceeded" in body3 and h3["Retry-After"] == "3600"
    c.t += 3600  # the window is the world's clock: it resets when that clock says so
    assert call(state, "GET", url, GH)[0] == 200


def test_vercel_railway_supabase_through_the_table(no_wall_clock):
    w = world(seed=42)
    state = SimState(w)
    st, body, _ = call(state, "GET", "/vercel/v6/deployments?teamId=team_demo&limit=3", GH)
    deps = json.loads(body)["deployments"]
    newest = sorted((d for d in w.vercel.deployments if d.created <= w.now()), key=lambda d: d.created)[-3:][::-1]
    assert st == 200 and [d["uid"] for d in deps] == [d.uid for d in newest]
    assert call(state, "GET", "/vercel/v6/deployments", {"Authorization": "Bearer bad"})[0] == 403
    q = {"query": "{ projects { edges { node { name } } } }"}
    st, body, _ = call(state, "POST", "/railway/graphql/v2", GH, json.dumps(q).encode())
    assert st == 200 and [e["node"]["name"] for e in json.loads(body)["data"]["projects"]["edges"]] == \
        ["shop-amber", "shop-birch"]
    assert call(state, "GET", "/railway/graphql/v2", GH)[0] == 405
    st, body, _ = call(state, "GET", "/supabase/v1/projects", GH)
    assert st == 200 and [p["name"] for p in json.loads(body)] == ["db-amber", "db-birch"]
    ref = w.supabase.projects[0]["ref"]
    murl = f"/supabase-metrics/{ref}/customer/v1/privileged/metrics"
    assert call(state, "GET", murl)[0] == 401
    basic = {"Authorization": "Basic " + base64.b64encode(f"service_role:{w.supabase.service_role_key}".encode())
             .decode()}
    st, body, h = call(state, "GET", murl, basic)
    assert st == 200 and f'pg_up{{supabase_project_ref="{ref}",'.encode() in body and h["Content-Type"].startswith(
        "text/plain")
    w.supabase.set_project(ref, unhealthy=["db"])
    assert b'service_type="db"} 0\n' in call(state, "GET", murl, basic)[1]


def test_supabase_rate_limit_is_429_and_faults_answer_first(no_wall_clock):
    state = SimState(world(seed=42))
    state.windows["supabase"]["limit"] = 1
    assert call(state, "GET", "/supabase/v1/projects", GH)[0] == 200
    assert call(state, "GET", "/supabase/v1/projects", GH)[:2] == (429, b'{"message":"Too Many Requests"}')
    route, sub = server.route_for("/vercel/v6/deployments")
    req = ApiRequest("GET", sub, {}, GH, "http://sim/vercel")
    st, _, h = server.respond(state, route, req, {"kind": "ratelimit429", "retry_after": 7}, {})
    assert st == 429 and h["Retry-After"] == "7"
    assert server.respond(state, route, req, {"kind": "http5xx", "status": 502}, {})[0] == 502


def test_faults_expire_on_the_world_clock(no_wall_clock):
    c = Clock()
    state = SimState(world(c, seed=42))
    state.add_fault({"platform": "github", "kind": "http5xx", "duration": 10})
    assert state.take_fault("github", "/github/x")["kind"] == "http5xx"
    assert state.take_fault("vercel", "/vercel/x") is None
    c.t += 11
    assert state.take_fault("github", "/github/x") is None and state.faults == []
    state.add_fault({"platform": "vercel", "kind": "exhaust", "duration": 5})
    assert state.rate("vercel", True)[0] is False
    c.t += 5
    assert state.rate("vercel", True)[0] is True
    with pytest.raises(Reply) as e:
        state.add_fault({"kind": "nope"})
    assert e.value.status == 400


def test_control_without_http(no_wall_clock):
    c = Clock()
    w = world(c, seed=42)
    state = SimState(w)
    assert ctl.control(state, "POST", "/_control/advance", {}, b'{"seconds": 60}')[1] == {"now": T0 + 60}
    with pytest.raises(Reply) as e:
        ctl.control(state, "POST", "/_control/advance", {}, b'{"seconds": 1e300}')
    assert e.value.status == 400 and "seconds" in e.value.body["message"]
    st, out, _ = ctl.control(state, "POST", "/_control/inject/railway", {}, b'{"count": 2, "outcome": "FAILED"}')
    assert st == 200 and all(w.railway.by_id[i].status(w.now()) == "FAILED" for i in out["ids"])
    view = ctl.world_view(state, "railway")
    assert view["now"] == T0 + 60 and {d["id"] for d in view["deployments"]} >= set(out["ids"])
    with pytest.raises(Reply):
        ctl.world_view(state, "nope")
    assert ctl.control(state, "POST", "/_control/rate", {}, b'{"platform": "vercel", "per_hour": 0}')[1][
        "rates"]["vercel"] == 0.0
