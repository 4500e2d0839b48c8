"""GitHub Actions exporter against the simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import collections
import time

from tests.exporters.bridgetest import wait_for

REPO = "demo-org/repo-amber"


def gh_env(sim, **kw):
    env = {"GITHUB_API_URL": sim.url + "/github", "GITHUB_TOKEN": "ghp_testtoken_0123456789",
           "GITHUB_REPOSITORIES": "demo-org", "GITHUB_POLL_INTERVAL_SECONDS": "1",
           "GITHUB_METADATA_INTERVAL_SECONDS": "30", "GITHUB_PER_PAGE": "5"}
    env.update(kw)
    return env


def start(procs, sim_args=(), **kw):
    sim = procs.sim("--github-repos", "3", *sim_args)
    sim.ctl("POST", "rate", {"platform": "github", "per_hour": 0})
    exp = procs.exporter("github", gh_env(sim, **kw), wait_upstream="runs")
    return sim, exp


def counted(exp) -> float:
    return exp.value("github_actions_workflow_runs_total") or 0.0


def test_values_match_world_and_history_is_not_counted(procs):
    sim, exp = start(procs)
    # history exists in the world but the first poll only seeds the seen-set
    assert any(r["status"] == "completed" for r in sim.world("github")["runs"])
    assert counted(exp) == 0
    done = sim.inject("github", repo=REPO, count=7, conclusion="failure", state="completed", duration=95)["ids"]
    live = sim.inject("github", repo=REPO, count=3, conclusion="success", state="in_progress", finish_in=2)["ids"]
    wait_for(lambda: counted(exp) == 10, 30, what="10 runs counted")
    exp.more_polls("runs")  # nothing may be counted twice
    assert counted(exp) == 10
    world = {r["id"]: r for r in sim.world("github")["runs"]}
    expected = collections.Counter()
    dur_sum = 0.0
    jobs = 0
    for rid in done + live:
        r = world[rid]
        branch = r["branch"] if r["branch"] in ("main", "master", "develop") else "other"
        expected[(REPO, r["workflow"], r["event"], branch, r["conclusion"])] += 1
        dur_sum += int(r["finished"]) - int(r["started"])
        jobs += len(r["jobs"])
    got = collections.Counter()
    for s in exp.samples():
        if s.name == "github_actions_workflow_runs_total":
            lb = s.labels
            got[(lb["repo"], lb["workflow"], lb["event"], lb["branch"], lb["conclusion"])] += s.value
    assert got == expected
    assert exp.value("github_actions_workflow_run_duration_seconds_count") == 10
    assert abs(exp.value("github_actions_workflow_run_duration_seconds_sum") - dur_sum) <= 10 * 1.0
    assert exp.value("github_actions_job_duration_seconds_count") == jobs
    assert exp.value("github_actions_job_queue_seconds_count") == jobs
    # whole enum on the last conclusion; the latest completed run per workflow wins (among the runs inside the
    # exporter's look-back, GITHUB_LOOKBACK_SECONDS 2 h: older ones it never lists)
    # (created_at has whole seconds; the run id breaks a tie, as in the exporter)
    latest = {}
    for r in world.values():
        if r["repo"] == REPO and r["status"] == "completed" and r["created"] >= time.time() - 7200:
            if r["workflow"] not in latest or (int(r["created"]), r["id"]) > (int(latest[r["workflow"]]["created"]),
                                                                             latest[r["workflow"]]["id"]):
                latest[r["workflow"]] = r
    for wf, r in latest.items():
        fam = [s for s in exp.samples() if s.name == "github_actions_workflow_last_conclusion"
               and s.labels["repo"] == REPO and s.labels["workflow"] == wf]
        assert len(fam) >= 9
        assert {s.labels["conclusion"] for s in fam if s.value == 1} == {r["conclusion"]}
    # no ids, SHAs or URLs in label values
    for s in exp.samples():
        for v in s.labels.values():
            assert "http" not in v and len(v) < 65
            assert not any(str(rid) == v for rid in world)


def test_active_runs_whole_enum(procs):
    sim, exp = start(procs)
    sim.inject("github", repo=REPO, count=2, state="queued", finish_in=60)
    wait_for(lambda: exp.value("github_actions_workflow_runs_active", repo=REPO, status="queued") == 2, 20,
             what="2 queued runs")
    statuses = {s.labels["status"] for s in exp.samples() if s.name == "github_actions_workflow_runs_active"
                and s.labels["repo"] == REPO}
    assert {"queued", "in_progress", "waiting", "requested", "pending"} <= statuses


def test_link_pagination_and_etag_304(procs):
    sim, exp = start(procs)
    sim.inject("github", repo=REPO, count=12, state="completed", conclusion="success")
    wait_for(lambda: counted(exp) == 12, 30, what="12 runs counted over pages of 5")
    reqs = [r for r in sim.requests("github") if "/actions/runs" in r["path"] and REPO in r["path"]
            and r["path"].endswith("/runs")]
    assert any("page=2" in r["query"] for r in reqs), "Link rel=next was followed"
    assert any("page=3" in r["query"] for r in reqs)
    # The first page's URL must not move with the look-back window (a `created` filter would), or
    # every repository would cost a counted (non-304) request each time the window moves.
    first_pages = {r["query"] for r in reqs if "page=" not in r["query"].replace("per_page=", "")}
    assert first_pages == {"per_page=5"}, first_pages
    t0 = time.time()
    wait_for(lambda: exp.polled("runs", t0 + 0.1), 10, what="a later poll")
    wait_for(lambda: any(r["status"] == 304 for r in sim.requests("github", since=t0)), 10, what="a 304")
    later = sim.requests("github", since=t0)
    conditional = [r for r in later if r["conditional"]]
    assert conditional and all(r["status"] in (200, 304) for r in conditional)
    assert not any(r["counted"] for r in later if r["status"] == 304)
    assert exp.value("github_api_requests_total", code="304") >= 1


def test_without_etags_every_request_counts(procs):
    sim, exp = start(procs, GITHUB_USE_ETAGS="false")
    t0 = time.time()
    wait_for(lambda: exp.polled("runs", t0 + 0.5), 10, what="another poll")
    later = sim.requests("github", since=t0)
    assert later and not any(r["conditional"] for r in later)
    assert all(r["counted"] for r in later if r["status"] == 200)


def test_restart_does_not_double_count(procs):
    sim, exp = start(procs)
    sim.inject("github", repo=REPO, count=4, state="completed")
    wait_for(lambda: counted(exp) == 4, 20, what="4 runs counted")
    exp.stop()
    exp2 = procs.exporter("github", gh_env(sim), wait_upstream="runs")
    exp2.more_polls("runs")
    assert counted(exp2) == 0, "the restarted exporter re-counted history"
    sim.inject("github", repo=REPO, count=2, state="completed")
    wait_for(lambda: counted(exp2) == 2, 20, what="2 new runs counted after restart")


def test_series_count_constant_under_churn(procs):
    sim, exp = start(procs, GITHUB_PER_PAGE="100", GITHUB_MAX_JOB_FETCHES_PER_POLL="0")
    fixed = dict(repo=REPO, state="completed", conclusion="success", workflow="CI", event="push")
    sim.inject("github", count=5, branch="feature/x-1", **fixed)
    wait_for(lambda: counted(exp) == 5, 20, what="warm-up runs")
    n_series = len(exp.samples())
    sim.inject("github", count=1000, branch="feature/y-2", **fixed)  # another unlisted branch: "other"
    wait_for(lambda: counted(exp) == 1005, 60, what="1,000 more runs counted")
    assert len(exp.samples()) == n_series


def test_branch_allow_list(procs):
    sim, exp = start(procs, GITHUB_BRANCHES="main,release")
    sim.inject("github", repo=REPO, count=1, state="completed", branch="release", workflow="CI", event="push")
    sim.inject("github", repo=REPO, count=1, state="completed", branch="develop", workflow="CI", event="push")
    wait_for(lambda: counted(exp) == 2, 20, what="2 runs")
    assert exp.value("github_actions_workflow_runs_total", branch="release") == 1
    assert exp.value("github_actions_workflow_runs_total", branch="other") == 1
    assert exp.value("github_actions_workflow_runs_total", branch="develop") is None


def test_explicit_repo_list_makes_no_discovery_calls(procs):
    sim, exp = start(procs, GITHUB_REPOSITORIES=REPO)
    assert not any("/orgs/" in r["path"] for r in sim.requests("github"))
    assert exp.value("github_actions_repositories") == 1


def test_run_longer_than_the_window_is_counted_once_when_it_completes(procs):
    """GITHUB_LOOKBACK_SECONDS at its minimum (600 s): a run created 590 s ago is listed for about 10 s,
    then leaves the window still in progress and completes 20 s after injection. It is followed by id and
    attempt (conditional: 304s while it runs, not counted) and counted once when it completes."""
    sim, exp = start(procs, GITHUB_LOOKBACK_SECONDS="600")
    rid = sim.inject("github", repo=REPO, count=1, conclusion="success", state="in_progress", created_ago=590,
                     finish_in=20)["ids"][0]
    wait_for(lambda: exp.value("github_actions_workflow_runs_active", repo=REPO, status="in_progress") == 1, 20,
             what="the long run active")
    wait_for(lambda: counted(exp) == 1, 45, what="the long run counted when it completes outside the window")
    by_id = [r for r in sim.requests("github") if r["path"].endswith(f"/actions/runs/{rid}/attempts/1")]
    assert by_id, "the run was read by id and attempt"
    assert any(r["status"] == 304 for r in by_id), "unchanged while running: 304s"
    assert not any(r["counted"] for r in by_id if r["status"] == 304)
    assert exp.value("github_actions_workflow_runs_active", repo=REPO, status="in_progress") == 0
    t0 = time.time()
    exp.more_polls("runs", n=3)
    assert counted(exp) == 1, "counted once"
    assert not [r for r in sim.requests("github", since=t0) if f"/runs/{rid}/" in r["path"]], \
        "a completed run is no longer followed"


def test_attempt_replaced_by_a_rerun_between_polls_is_counted(procs):
    """Attempt 1 ends (failure) and attempt 2 starts between two polls: the runs list shows only attempt 2,
    so attempt 1 is read at /runs/{id}/attempts/1 and counted, with its jobs; then attempt 2 when it ends."""
    sim, exp = start(procs)
    rid = sim.inject("github", repo=REPO, count=1, conclusion="success", state="in_progress", finish_in=600)["ids"][0]
    wait_for(lambda: exp.value("github_actions_workflow_runs_active", repo=REPO, status="in_progress") == 1, 20,
             what="attempt 1 seen in progress")
    assert sim.ctl("POST", "rerun/github", {"id": rid, "previous_conclusion": "failure", "duration": 2})["attempt"] == 2
    wait_for(lambda: counted(exp) == 2, 30, what="both attempts counted")
    by_conclusion = collections.Counter()
    for s in exp.samples():
        if s.name == "github_actions_workflow_runs_total":
            by_conclusion[s.labels["conclusion"]] += s.value
    assert by_conclusion == {"failure": 1, "success": 1}
    paths = [r["path"] for r in sim.requests("github")]
    assert any(p.endswith(f"/runs/{rid}/attempts/1") for p in paths)
    assert any(p.endswith(f"/runs/{rid}/attempts/1/jobs") for p in paths)
    assert any(p.endswith(f"/runs/{rid}/attempts/2/jobs") for p in paths)
    jobs = len(next(r for r in sim.world("github")["runs"] if r["id"] == rid)["jobs"])
    assert exp.value("github_actions_job_duration_seconds_count") == 2 * jobs
    exp.more_polls("runs", n=3)
    assert counted(exp) == 2, "counted once per attempt"


def test_followed_runs_outside_the_window_are_bounded(procs):
    """GITHUB_MAX_TRACKED_RUNS=2 with 4 long runs leaving the window unfinished: the 2 newest are followed
    and counted, the oldest 2 are dropped with a warning (bounded memory and requests per poll)."""
    sim, exp = start(procs, GITHUB_LOOKBACK_SECONDS="600", GITHUB_MAX_TRACKED_RUNS="2")
    ids = [sim.inject("github", repo=REPO, count=1, conclusion="success", state="in_progress", created_ago=590 - i,
                      finish_in=20)["ids"][0] for i in range(4)]
    wait_for(lambda: counted(exp) == 2, 45, what="the 2 followed runs counted")
    paths = [r["path"] for r in sim.requests("github")]
    followed = {rid for rid in ids if any(p.endswith(f"/runs/{rid}/attempts/1") for p in paths)}
    assert followed == set(ids[2:]), "the newest two are followed"
    exp.more_polls("runs", n=3)
    assert counted(exp) == 2
    warnings = [ln for ln in exp.log_lines() if "GITHUB_MAX_TRACKED_RUNS" in ln["msg"]]
    # Once per newly dropped run set (twice if a poll fell between the four injections), though the dropped
    # runs were listed again at each of the ~10 polls while they were in the window: no log flood.
    assert 1 <= len(warnings) <= 2 and all(w["level"] == "warning" for w in warnings), warnings
