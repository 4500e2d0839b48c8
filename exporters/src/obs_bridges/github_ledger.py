"""What the GitHub bridge has counted, shared by its two feeds: the poller and the webhook receiver.

One set of natural keys (run id + attempt, job id) for both, so a run both report is counted once, in
whichever order they report it. Thread-safe: the poll thread and the receiver's request threads call in.
Pure (no I/O): the exporter does the HTTP and hands the records over."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from obs_bridges import core
from obs_bridges.github_api import Job, Run, job_label
from obs_bridges.parsing import EVENT_LABEL_MAX, NAME_LABEL_MAX

# How far a run has got: a delivery never moves a run back (GitHub does not promise delivery order).
STATUS_RANK = {"requested": 0, "pending": 0, "waiting": 0, "queued": 0, "in_progress": 1, "completed": 2}
# Runs whose workflow label is remembered for their job deliveries (a job payload names no workflow id).
RUN_WORKFLOW_CACHE = 20_000
# Not-completed runs tracked per repository from deliveries: bounded if completions are lost.
MAX_LIVE_RUNS_PER_REPO = 1000


@dataclass(frozen=True)
class Families:
    """The metric families both feeds write (created by the exporter in its registry)."""

    runs_total: Any
    run_duration: Any
    job_duration: Any
    job_queue: Any


class RunLedger:
    """Counts each completed run attempt and each completed job once.

    ``started`` is when this process started: a run or job that finished before it is history, seeded and
    never counted, exactly as the poller's first poll of a repository seeds what it finds. So a restart
    (or a redelivery of an old delivery after one) never counts anything twice."""

    def __init__(self, fam: Families, *, workflow: Callable[[str, Run], str], branch: Callable[[str], str],
                 retention: float, started: float):
        self.fam = fam
        self._workflow = workflow
        self._branch = branch
        self.started = started
        self.lock = threading.Lock()
        self.seen = core.SeenSet(retention)
        self.seen_jobs = core.SeenSet(retention)
        # Runs not completed, per repository: (run id, attempt) -> status. The poll's list replaces a
        # repository's entries (reconciliation); deliveries move single runs forward between polls.
        self.live: dict[str, dict[tuple[int, int], str]] = {}
        self.last_conclusion: dict[tuple[str, str], tuple[tuple[float, int], str]] = {}
        # When the latest counted run of each (repo, workflow, branch label, conclusion) finished: the deploy
        # markers' one point per run (never set from seeded history, never moved back).
        self.finished: dict[tuple[str, str, str, str], float] = {}
        self._run_workflow: OrderedDict[int, str] = OrderedDict()

    # -- the poller
    def poll(self, repo: str, runs: list[Run]) -> list[tuple[Run, str]]:
        """A repository's listing: counts what completed since it was last seen; returns those runs with
        their workflow label (the poller reads their jobs)."""
        by_key = {(r.id, r.attempt): r for r in runs}
        out = []
        with self.lock:
            self._conclusions(repo, runs)
            for r in runs:
                self._remember_workflow(r.id, self._workflow(repo, r))
            new = self.seen.process(repo, ((k, r.status == "completed", r.created) for k, r in by_key.items()))
            for key in new:
                out.append((by_key[key], self._count(repo, by_key[key])))
            # Completed by a delivery after the list was read: not active any more.
            self.live[repo] = {k: r.status for k, r in by_key.items()
                               if r.status != "completed" and k not in self.seen}
        return out

    def jobs(self, repo: str, wf: str, jobs: Iterable[Job]) -> int:
        """Jobs of a run the poller read: observes those no delivery has reported. Returns how many."""
        n = 0
        with self.lock:
            for j in jobs:
                if j.id is not None and j.completed is not None and not self.seen_jobs.mark(j.id, j.completed):
                    continue
                self._observe_job(repo, wf, j)
                n += 1
        return n

    def prune(self, now: float) -> None:
        with self.lock:
            self.seen.prune(now)
            self.seen_jobs.prune(now)

    # -- webhook deliveries
    def run_event(self, repo: str, r: Run) -> str:
        """A workflow_run delivery. Returns what it did: counted, seeded (finished before this process),
        duplicate (already counted by either feed), updated (status moved forward) or stale (older news)."""
        key = (r.id, r.attempt)
        with self.lock:
            live = self.live.setdefault(repo, {})
            self._remember_workflow(r.id, self._workflow(repo, r))
            # A new attempt replaces the run's earlier ones (a re-run).
            for k in [k for k in live if k[0] == r.id and k[1] < r.attempt]:
                del live[k]
            if r.status == "completed":
                live.pop(key, None)
                self._conclusions(repo, [r])
                if not self.seen.mark(key, r.created):
                    return "duplicate"
                if (r.updated if r.updated is not None else r.created) < self.started:
                    return "seeded"
                self._count(repo, r)
                return "counted"
            if key in self.seen:
                return "stale"  # its completion came first (out of order)
            if STATUS_RANK.get(live.get(key, ""), -1) > STATUS_RANK.get(r.status, 0):
                return "stale"
            if key not in live and len(live) >= MAX_LIVE_RUNS_PER_REPO:
                return "stale"  # bounded: completions are being lost; the next poll reconciles
            live[key] = r.status
            return "updated"

    def job_event(self, repo: str, run_id: int, job_id: int, job: Job, workflow_name: str) -> str:
        """A workflow_job delivery: a completed job is observed once (counted, seeded or duplicate);
        anything else is only news (updated)."""
        if job.status != "completed" or job.completed is None:
            return "updated"
        with self.lock:
            if not self.seen_jobs.mark(job_id, job.completed):
                return "duplicate"
            if job.completed < self.started:
                return "seeded"
            wf = self._run_workflow.get(run_id) or (workflow_name[:NAME_LABEL_MAX] or "unknown")
            self._observe_job(repo, wf, job)
            return "counted"

    # -- reads
    def active(self) -> dict[str, dict[str, int]]:
        with self.lock:
            out = {}
            for repo, runs in self.live.items():
                counts: dict[str, int] = {}
                for st in runs.values():
                    counts[st] = counts.get(st, 0) + 1
                out[repo] = counts
            return out

    def conclusions(self) -> list[tuple[tuple[str, str], str]]:
        with self.lock:
            return [(k, v[1]) for k, v in sorted(self.last_conclusion.items())]

    def finish_times(self) -> list[tuple[tuple[str, str, str, str], float]]:
        with self.lock:
            return sorted(self.finished.items())

    # -- inside the lock
    def _conclusions(self, repo: str, runs: list[Run]) -> None:
        # created_at has whole seconds: the run id (increasing) breaks ties
        self.last_conclusion = core.latest_per_key(self.last_conclusion, (
            ((repo, self._workflow(repo, r)), (r.created, r.id), r.conclusion or "unknown")
            for r in runs if r.status == "completed"))

    def _remember_workflow(self, run_id: int, wf: str) -> None:
        self._run_workflow[run_id] = wf
        self._run_workflow.move_to_end(run_id)
        while len(self._run_workflow) > RUN_WORKFLOW_CACHE:
            self._run_workflow.popitem(last=False)

    def _count(self, repo: str, r: Run) -> str:
        wf = self._workflow(repo, r)
        concl = r.conclusion or "unknown"
        branch = self._branch(r.branch)
        self.fam.runs_total.labels(repo, wf, r.event[:EVENT_LABEL_MAX], branch, concl).inc()
        if r.started is not None and r.updated is not None and r.updated >= r.started:
            self.fam.run_duration.labels(repo, wf, concl).observe(r.updated - r.started)
        done = r.updated if r.updated is not None else r.created
        key = (repo, wf, branch, concl)
        self.finished[key] = max(done, self.finished.get(key, done))
        return wf

    def _observe_job(self, repo: str, wf: str, j: Job) -> None:
        name = job_label(j.name)
        if j.created is not None and j.started is not None and j.started >= j.created:
            self.fam.job_queue.labels(repo, wf, name).observe(j.started - j.created)
        if j.completed is not None and j.started is not None and j.completed >= j.started:
            self.fam.job_duration.labels(repo, wf, name).observe(j.completed - j.started)
