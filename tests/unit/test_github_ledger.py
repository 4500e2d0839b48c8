"""The GitHub bridge's one ledger for its two feeds (issue 15): a run attempt or job reported by the poller and
by a webhook delivery, in either order, is counted once; a restart counts no history; deliveries out of order
never move a run back; a repository with deliveries is polled only at the reconciliation interval."""
from __future__ import annotations

import pytest

from obs_bridges import config, github
from obs_bridges.github_api import Job, Run
from obs_bridges.github_ledger import MAX_LIVE_RUNS_PER_REPO
from tests.support.clock import T0, FakeClock

REPO = "o/r"


def exporter(clock: FakeClock, **env) -> github.GitHubExporter:
    exp = github.build({"GITHUB_TOKEN": "ghp_unit", "GITHUB_API_URL": "https://gh.example",
                        "GITHUB_REPOSITORIES": REPO, **env}, clock=clock)
    exp.workflow_names[REPO] = {7: "CI"}  # what the metadata poll reads: a job payload names the same workflow
    return exp


def run(rid: int, status: str = "completed", attempt: int = 1, created: float = T0 + 10, dur: float = 30.0,
        conclusion: str | None = "success") -> Run:
    done = status == "completed"
    return Run(id=rid, attempt=attempt, workflow_id=7, name="CI", path=".github/workflows/ci.yml", branch="main",
               event="push", status=status, conclusion=conclusion if done else None, created=created,
               started=created + 1, updated=created + 1 + dur if done else created + 1)


def job(jid: int, created: float = T0 + 11, status: str = "completed") -> Job:
    done = status == "completed"
    return Job(name="build (3.12)", status=status, conclusion="success" if done else None, created=created,
               started=created + 2, completed=created + 20 if done else None, labels=["ubuntu-latest"], id=jid)


def runs_total(exp) -> float:
    return sum(s.value for m in exp.registry.collect() if m.name == "github_actions_workflow_runs"
               for s in m.samples if s.name == "github_actions_workflow_runs_total")


def jobs_observed(exp) -> float:
    return exp.registry.get_sample_value("github_actions_job_duration_seconds_count",
                                         {"repo": REPO, "workflow": "CI", "job": "build"}) or 0.0


def active(exp, status="in_progress") -> int:
    return exp.ledger.active().get(REPO, {}).get(status, 0)


def poll(exp, runs, jobs=()):
    exp._get_all = lambda *a, **k: list(jobs)  # the jobs listing of a newly counted run
    exp._process_runs(REPO, runs, [10])


def seeded(exp):
    poll(exp, [])  # the first poll of a repository seeds (counts nothing)


def test_delivery_then_poll_counts_a_run_and_its_jobs_once():
    clock = FakeClock()
    exp = exporter(clock)
    seeded(exp)
    assert exp.delivered_run(REPO, run(1)) == "counted"
    assert exp.delivered_job(REPO, 1, 501, job(501), "CI") == "counted"
    poll(exp, [run(1)], jobs=[job(501)])
    assert runs_total(exp) == 1 and jobs_observed(exp) == 1
    assert exp.delivered_run(REPO, run(1)) == "duplicate"
    assert exp.delivered_job(REPO, 1, 501, job(501), "CI") == "duplicate"
    assert runs_total(exp) == 1 and jobs_observed(exp) == 1


def test_poll_then_delivery_counts_a_run_and_its_jobs_once():
    clock = FakeClock()
    exp = exporter(clock)
    seeded(exp)
    poll(exp, [run(1)], jobs=[job(501), job(502)])
    assert runs_total(exp) == 1 and jobs_observed(exp) == 2
    assert exp.delivered_run(REPO, run(1)) == "duplicate"
    assert exp.delivered_job(REPO, 1, 502, job(502), "CI") == "duplicate"
    assert runs_total(exp) == 1 and jobs_observed(exp) == 2


def test_a_job_delivered_before_its_run_is_counted_by_the_poll_is_not_observed_again():
    clock = FakeClock()
    exp = exporter(clock)
    seeded(exp)
    assert exp.delivered_job(REPO, 1, 501, job(501), "CI") == "counted"
    poll(exp, [run(1)], jobs=[job(501), job(502)])  # the run's completion delivery was lost
    assert runs_total(exp) == 1 and jobs_observed(exp) == 2


def test_each_attempt_is_its_own_run():
    clock = FakeClock()
    exp = exporter(clock)
    seeded(exp)
    assert exp.delivered_run(REPO, run(1, conclusion="failure")) == "counted"
    assert exp.delivered_run(REPO, run(1, attempt=2)) == "counted"
    assert runs_total(exp) == 2


def test_what_finished_before_the_process_started_is_history_not_counted():
    """A restart, then GitHub redelivers (or the poll re-lists) a run that finished before it: seeded."""
    clock = FakeClock(T0 + 1000)
    exp = exporter(clock)
    assert exp.delivered_run(REPO, run(1, created=T0)) == "seeded"
    assert exp.delivered_job(REPO, 1, 501, job(501, created=T0), "CI") == "seeded"
    poll(exp, [run(1, created=T0), run(2, created=T0 + 10)])
    assert runs_total(exp) == 0 and jobs_observed(exp) == 0
    assert exp.delivered_run(REPO, run(2, created=T0 + 10)) == "duplicate"
    assert exp.delivered_run(REPO, run(3, created=T0 + 1000)) == "counted"
    assert runs_total(exp) == 1


def test_out_of_order_deliveries_never_move_a_run_back():
    clock = FakeClock()
    exp = exporter(clock)
    seeded(exp)
    assert exp.delivered_run(REPO, run(1, status="in_progress")) == "updated"
    assert active(exp) == 1
    assert exp.delivered_run(REPO, run(1, status="queued")) == "stale"
    assert active(exp) == 1 and active(exp, "queued") == 0
    assert exp.delivered_run(REPO, run(1)) == "counted"
    assert active(exp) == 0
    assert exp.delivered_run(REPO, run(1, status="in_progress")) == "stale"  # after its completion
    assert active(exp) == 0 and runs_total(exp) == 1


def test_a_rerun_replaces_the_earlier_attempt_among_active_runs():
    clock = FakeClock()
    exp = exporter(clock)
    seeded(exp)
    exp.delivered_run(REPO, run(1, status="in_progress"))
    exp.delivered_run(REPO, run(1, status="in_progress", attempt=2))
    assert active(exp) == 1


def test_the_poll_is_the_truth_for_active_runs_except_what_a_delivery_completed():
    clock = FakeClock()
    exp = exporter(clock)
    seeded(exp)
    exp.delivered_run(REPO, run(9, status="in_progress"))  # its completion was lost
    in_list = run(1, status="in_progress")
    exp.delivered_run(REPO, run(1))  # completed after the list below was read
    poll(exp, [in_list])
    assert active(exp) == 0  # run 9 is gone from the list, run 1 was completed by its delivery


def test_active_runs_from_deliveries_are_bounded():
    clock = FakeClock()
    exp = exporter(clock)
    for i in range(MAX_LIVE_RUNS_PER_REPO + 5):
        exp.delivered_run(REPO, run(i, status="in_progress"))
    assert active(exp) == MAX_LIVE_RUNS_PER_REPO


def test_a_job_delivery_takes_the_workflow_label_of_its_run():
    clock = FakeClock()
    exp = exporter(clock)
    exp.workflow_names[REPO] = {7: "Deploy"}
    exp.delivered_run(REPO, run(1, status="in_progress"))
    exp.delivered_job(REPO, 1, 501, job(501), "ignored when the run is known")
    assert exp.registry.get_sample_value("github_actions_job_duration_seconds_count",
                                         {"repo": REPO, "workflow": "Deploy", "job": "build"}) == 1
    exp.delivered_job(REPO, 2, 502, job(502), "Nightly " + "x" * 300)  # unknown run: the payload's name, bounded
    labels = [s.labels["workflow"] for m in exp.registry.collect() for s in m.samples
              if s.name == "github_actions_job_duration_seconds_count"]
    assert max(len(w) for w in labels) <= 64 and any(w.startswith("Nightly") for w in labels)


def test_deliveries_for_repositories_outside_the_allow_list_are_not_accepted():
    clock = FakeClock()
    exp = exporter(clock, GITHUB_REPOSITORIES="o/r,org2", GITHUB_REPOSITORIES_EXCLUDE="org2/secret")
    assert exp.accepts_repo("o/r") and exp.accepts_repo("org2/new-repo")
    assert not exp.accepts_repo("org2/secret") and not exp.accepts_repo("other/r")


def test_a_repository_with_deliveries_is_polled_at_the_reconciliation_interval():
    clock = FakeClock()
    exp = exporter(clock, GITHUB_RECONCILE_INTERVAL_SECONDS="900", GITHUB_WEBHOOK_TRUST_SECONDS="3600")
    assert exp._due(REPO, clock())
    exp.reconciled[REPO] = clock()
    exp.delivered_run(REPO, run(1, status="in_progress"))
    clock.advance(60)
    assert not exp._due(REPO, clock())
    clock.advance(900)
    assert exp._due(REPO, clock())
    exp.reconciled[REPO] = clock()
    clock.advance(3600)  # deliveries stopped: back to every poll
    assert exp._due(REPO, clock())


def test_the_reconciliation_interval_cannot_outgrow_the_look_back():
    with pytest.raises(config.ConfigError, match="GITHUB_RECONCILE_INTERVAL_SECONDS"):
        exporter(FakeClock(), GITHUB_LOOKBACK_SECONDS="1800", GITHUB_RECONCILE_INTERVAL_SECONDS="3600")
    exp = exporter(FakeClock(), GITHUB_LOOKBACK_SECONDS="1800")
    assert exp.cfg.reconcile_interval == 1800


def test_the_finish_time_of_the_latest_counted_run_per_workflow_branch_and_conclusion():
    clock = FakeClock()
    exp = exporter(clock)
    assert exp.delivered_run(REPO, run(1, created=T0 - 500)) == "seeded"
    assert exp.ledger.finish_times() == [], "history sets no marker"
    seeded(exp)
    exp.delivered_run(REPO, run(2, created=T0 + 100, dur=30))
    poll(exp, [run(3, created=T0 + 10, dur=30)])  # counted later, finished earlier: the time never moves back
    exp.delivered_run(REPO, run(4, created=T0 + 50, conclusion="failure"))
    assert exp.ledger.finish_times() == [((REPO, "CI", "main", "failure"), T0 + 81),
                                         ((REPO, "CI", "main", "success"), T0 + 131)]
    assert exp.registry.get_sample_value("github_actions_workflow_run_finished_timestamp_seconds", {
        "repo": REPO, "workflow": "CI", "branch": "main", "conclusion": "success"}) == T0 + 131
