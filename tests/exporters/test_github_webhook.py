"""obs-bridge github-webhook against the simulator over real HTTP on 127.0.0.1 (issue 15): the simulator
delivers signed webhooks to the bridge's receiver while the bridge polls the same simulated API. Each run and
job is counted once whichever feed reports it first; a restart counts no history; forged, unsigned and
oversized deliveries are refused and counted; out-of-order deliveries never leave a run active."""

from __future__ import annotations

import http.client
import time

from tests.exporters.bridgetest import wait_for
from tests.exporters.test_bridge_github import gh_env
from tests.support.ports import free_port

REPO = "demo-org/repo-amber"


def start(procs, *sim_args, reorder="0", **env):
    hook_port = free_port()
    secret = procs.tmp / "webhook-secret"
    sim = procs.sim("--github-repos", "3", "--github-webhook-url", f"http://127.0.0.1:{hook_port}/webhook",
                    "--github-webhook-secret-file", str(secret), "--github-webhook-redeliver-rate", "0",
                    "--github-webhook-reorder-rate", reorder, *sim_args)
    sim.ctl("POST", "rate", {"platform": "github", "per_hour": 0})
    exp = exporter(procs, sim, hook_port, **env)
    return sim, exp, hook_port


def exporter(procs, sim, hook_port, **env):
    env = {"GITHUB_WEBHOOK_PORT": hook_port, "GITHUB_WEBHOOK_SECRET_FILE": procs.tmp / "webhook-secret",
           "GITHUB_WEBHOOK_TRUST_SECONDS": "600", **env}
    exp = procs.exporter("github-webhook", gh_env(sim, **env), wait_upstream="runs")
    # The simulator dates an injected completed run a second back; what finished before the bridge started
    # is history to it (never counted). Inject only once the bridge is older than that.
    exp.more_polls("runs", n=3)
    return exp


def counted(exp) -> float:
    return exp.value("github_actions_workflow_runs_total") or 0.0


def deliveries(exp, result, event="workflow_run") -> float:
    return exp.value("github_webhook_deliveries_total", event=event, result=result) or 0.0


def jobs_of(sim, ids) -> int:
    world = {r["id"]: r for r in sim.world("github")["runs"]}
    return sum(len(world[i]["jobs"]) for i in ids)


def runs_listed(sim, since: float) -> list[float]:
    return [r["t"] for r in sim.requests("github", since=since) if r["path"] == f"/github/repos/{REPO}/actions/runs"]


def test_deliveries_count_at_once_and_reconciliation_counts_nothing_again(procs):
    sim, exp, _ = start(procs, GITHUB_RECONCILE_INTERVAL_SECONDS="8")
    first = sim.inject("github", repo=REPO, count=1, conclusion="success", state="completed", duration=30)["ids"]
    wait_for(lambda: counted(exp) == 1 and exp.value("github_webhook_repositories") == 1, 15,
             what="the first delivery counted and the repository hooked")
    t_hooked = time.time()
    wait_for(lambda: runs_listed(sim, t_hooked), 15, what="a reconciliation poll of the hooked repository")
    ids = sim.inject("github", repo=REPO, count=5, conclusion="failure", state="completed", duration=40)["ids"]
    t0 = time.time()
    wait_for(lambda: counted(exp) == 6, 5, 0.1, what="the 5 runs counted from their deliveries")
    delay = time.time() - t0
    assert delay < 5, f"{delay:.1f} s from the runs completing to /metrics"
    assert not runs_listed(sim, t0), "counted before any poll of the repository: by the webhooks"
    wait_for(lambda: exp.value("github_actions_job_duration_seconds_count") == jobs_of(sim, ids + first), 10,
             what="every job observed from its delivery")
    t1 = time.time()
    wait_for(lambda: runs_listed(sim, t1), 15, what="the next reconciliation poll")
    exp.more_polls("runs")
    assert counted(exp) == 6, "the reconciliation poll counted the delivered runs again"
    assert exp.value("github_actions_job_duration_seconds_count") == jobs_of(sim, ids + first)
    job_reads = [r for r in sim.requests("github", since=t0) if r["path"].endswith("/jobs")]
    assert not job_reads, "runs counted from deliveries never cost a job list"
    assert deliveries(exp, "counted") == 6 and deliveries(exp, "duplicate") == 0


def test_late_deliveries_of_runs_the_poller_counted_are_duplicates(procs):
    sim, exp, _ = start(procs)
    assert sim.ctl("POST", "webhooks/github", {"kind": "pause", "seconds": 6})["paused_until"] > 0
    ids = sim.inject("github", repo=REPO, count=4, conclusion="success", state="completed", duration=20)["ids"]
    wait_for(lambda: counted(exp) == 4, 5, what="the poller counts the runs while deliveries are delayed")
    assert deliveries(exp, "counted") == 0
    jobs = jobs_of(sim, ids)
    wait_for(lambda: deliveries(exp, "duplicate") == 4, 15, what="the late completed deliveries, as duplicates")
    wait_for(lambda: deliveries(exp, "duplicate", "workflow_job") == jobs, 10, what="their jobs, as duplicates")
    exp.more_polls("runs")
    assert counted(exp) == 4
    assert exp.value("github_actions_job_duration_seconds_count") == jobs
    assert (exp.value("github_actions_workflow_runs_active", repo=REPO) or 0) == 0


def test_a_restart_counts_no_history_even_when_github_redelivers_it(procs):
    sim, exp, hook_port = start(procs)
    sim.inject("github", repo=REPO, count=3, conclusion="success", state="completed", duration=20)
    wait_for(lambda: counted(exp) == 3, 10, what="3 runs counted")
    completed = [d["id"] for d in sim.ctl("GET", "webhooks/github")["recent"]
                 if d["event"] == "workflow_run" and d["action"] == "completed"]
    assert len(completed) == 3
    exp.stop()
    exp = exporter(procs, sim, hook_port)
    for delivery_id in completed:
        assert sim.ctl("POST", "webhooks/github", {"kind": "redeliver", "id": delivery_id})["status"] == 200
    # History to the new process: seeded (finished before it started) or already seeded by its first poll.
    wait_for(lambda: deliveries(exp, "seeded") + deliveries(exp, "duplicate") == 3, 10,
             what="the redeliveries taken as history, not counted")
    exp.more_polls("runs")
    assert counted(exp) == 0
    sim.inject("github", repo=REPO, count=1, conclusion="success", state="completed", duration=20)
    wait_for(lambda: counted(exp) == 1, 10, what="a new run counted after the restart")


def test_forged_unsigned_and_oversized_deliveries_are_refused_and_never_processed(procs):
    sim, exp, hook_port = start(procs)
    assert sim.ctl("POST", "webhooks/github", {"kind": "forged"})["status"] == 401
    assert sim.ctl("POST", "webhooks/github", {"kind": "unsigned"})["status"] == 401
    conn = http.client.HTTPConnection("127.0.0.1", hook_port, timeout=10)
    conn.putrequest("POST", "/webhook")
    for k, v in (("Content-Type", "application/json"), ("Content-Length", str(2 * 1024 * 1024)),
                 ("X-GitHub-Event", "workflow_run"), ("X-GitHub-Delivery", "big-1")):
        conn.putheader(k, v)
    conn.endheaders()  # no body sent: the answer must not wait for it
    r = conn.getresponse()
    assert r.status == 413 and r.getheader("Connection") == "close"
    conn.close()
    assert sim.ctl("POST", "webhooks/github", {"kind": "ping"})["status"] == 200
    wait_for(lambda: deliveries(exp, "bad_signature") == 2 and deliveries(exp, "too_large") == 1
             and deliveries(exp, "pong", "ping") == 1, 10, what="the refusals counted")
    assert counted(exp) == 0 and deliveries(exp, "counted") == 0
    sim.inject("github", repo=REPO, count=1, conclusion="success", state="completed", duration=20)
    wait_for(lambda: counted(exp) == 1, 10, what="a genuine delivery still counted")
    assert sim.ctl("POST", "webhooks/github", {"kind": "redeliver"})["status"] == 200
    wait_for(lambda: deliveries(exp, "redelivery") + deliveries(exp, "redelivery", "workflow_job") == 1, 10,
             what="GitHub's redelivery acknowledged")
    assert counted(exp) == 1
    lines = [ln for ln in exp.log_lines() if "refused" in ln.get("msg", "")]
    assert lines and all(ln["level"] == "warning" for ln in lines)
    secret = (procs.tmp / "webhook-secret").read_text()
    assert secret not in exp.logs() and secret not in sim.logs()


def test_in_progress_after_completed_leaves_no_run_active(procs):
    sim, exp, _ = start(procs, reorder="1")
    sim.inject("github", repo=REPO, count=2, conclusion="success", state="in_progress", finish_in=3, created_ago=2)
    wait_for(lambda: counted(exp) == 2, 15, what="both runs counted")
    wait_for(lambda: deliveries(exp, "stale") >= 2, 10, what="the late in_progress deliveries, as stale")
    assert sim.ctl("GET", "webhooks/github")["reordered"] == 2
    assert (exp.value("github_actions_workflow_runs_active", repo=REPO, status="in_progress") or 0) == 0
    exp.more_polls("runs")
    assert counted(exp) == 2
