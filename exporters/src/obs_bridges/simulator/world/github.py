"""GitHub Actions in the synthetic world: repositories, workflows, runs with their jobs and attempts."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from obs_bridges.simulator.world.common import WORDS, name, pick

if TYPE_CHECKING:
    from obs_bridges.simulator.world import World

GH_DEPLOY_WORKFLOW = ("deploy", "release")
GH_EVENTS = [("push", 50), ("pull_request", 35), ("schedule", 10), ("workflow_dispatch", 5)]
GH_WORKFLOWS = [("CI", ".github/workflows/ci.yml", ["build", "test", "lint"]),
                ("Deploy", ".github/workflows/deploy.yml", ["deploy"]),
                ("Nightly", ".github/workflows/nightly.yml", ["e2e (chromium)", "e2e (firefox)"])]
# Post-deployment smoke tests: never picked at random; every successful Deploy run of the world triggers one
# (event workflow_run) shortly after it finishes, as a real pipeline would. The alert rules and the Deployment
# Health dashboard find smoke workflows by name (*smoke*).
GH_SMOKE_WORKFLOW = ("Smoke tests", ".github/workflows/smoke.yml", ["smoke"])


def is_deploy_workflow(wf_name: str) -> bool:
    return any(k in wf_name.lower() for k in GH_DEPLOY_WORKFLOW)


@dataclass
class GhJob:
    id: int
    name: str
    created: float
    started: float
    completed: float
    conclusion: str
    labels: list


@dataclass
class GhRun:
    id: int
    repo: str
    workflow_id: int
    workflow_name: str
    path: str
    run_number: int
    attempt: int
    event: str
    branch: str
    sha: str
    created: float
    started: float
    finished: float
    conclusion: str
    jobs: list = field(default_factory=list)

    def status(self, now: float) -> str:
        if now < self.started:
            return "queued"
        if now < self.finished:
            return "in_progress"
        return "completed"


class GithubWorld:
    """The organisation's repositories and their workflow runs. Shares the world's seeded RNG, clock and lock."""

    def __init__(self, world: World, repos: int):
        self.w = world
        self.org = "demo-org"
        self.repos = [f"{self.org}/{name(i, 'repo-')}" for i in range(repos)]
        self.workflows = {r: [(100 + i * 10 + k, n, p, jobs)
                              for k, (n, p, jobs) in enumerate(GH_WORKFLOWS + [GH_SMOKE_WORKFLOW])]
                          for i, r in enumerate(self.repos)}
        self.follow_ups: list[tuple[float, str, str, str]] = []  # (created, repo, branch, rng seed)
        self.runs: dict[str, list[GhRun]] = {r: [] for r in self.repos}
        self.run_by_id: dict[int, GhRun] = {}
        self.past_attempts: dict[tuple[int, int], GhRun] = {}  # earlier attempts of re-run runs, as they ended
        self._next_id = 1000
        self._job_id = 50000
        self._run_numbers: dict[int, int] = {}

    # -- arrivals (World._catch_up)
    def entities(self) -> int:
        return len(self.repos)

    def arrive(self, rng: random.Random, t: float) -> None:
        self.flush_follow_ups(t)
        self.plan_follow_up(self.new_run(rng, t))

    def stop(self) -> None:
        """The rate went to 0: no new runs at all, triggered ones included."""
        self.follow_ups.clear()

    def new_run(self, rng: random.Random, t: float, repo: str | None = None, conclusion: str | None = None,
                durations: tuple | None = None, fixed: dict | None = None) -> GhRun:
        w = self.w
        fixed = fixed or {}
        repo = repo or rng.choice(self.repos)
        wfs = self.workflows[repo]
        wid, wname, path, jobnames = next((x for x in wfs if x[1] == fixed.get("workflow")), None) \
            or rng.choice([x for x in wfs if x[1] != GH_SMOKE_WORKFLOW[0]])
        self._next_id += 1
        self._run_numbers[wid] = self._run_numbers.get(wid, 0) + 1
        if durations:
            queue, dur = durations
        else:
            queue, dur = w.scale(rng.uniform(3, 90)), None
        kind = "github_deploy_failure" if is_deploy_workflow(wname) else \
            "github_smoke_failure" if wname == GH_SMOKE_WORKFLOW[0] else "github_failure"
        fail_p = w.outcome_rates[kind]
        concl = conclusion or ("failure" if w.fail_all["github"] else pick(rng, [
            ("success", max(0.0, 0.92 - fail_p)), ("failure", fail_p), ("cancelled", 0.05), ("skipped", 0.03)]))
        started = t + queue
        jobs, end = [], started
        for k, jn in enumerate(jobnames):
            self._job_id += 1
            jq = w.scale(rng.uniform(1, 40)) if dur is None else 1.0
            jd = w.scale(rng.uniform(20, 400)) if dur is None else max(0.0, dur - 2.0)
            jc = "success" if (concl == "failure" and k < len(jobnames) - 1) else concl
            jobs.append(GhJob(self._job_id, jn, started, started + jq, started + jq + jd, jc, ["ubuntu-latest"]))
            end = max(end, started + jq + jd)
        branch = pick(rng, [("main", 60), ("develop", 10), (f"feature/{rng.choice(WORDS)}-{rng.randint(1, 999)}", 30)])
        branch = fixed.get("branch", branch)
        run = GhRun(self._next_id, repo, wid, wname, path, self._run_numbers[wid], 1,
                    fixed.get("event") or pick(rng, GH_EVENTS), branch, "%040x" % rng.getrandbits(160), t, started,
                    end + (1.0 if dur is None else 0.0), concl, jobs)
        self.runs[repo].append(run)
        self.run_by_id[run.id] = run
        return run

    def plan_follow_up(self, run: GhRun) -> None:
        """A successful Deploy run triggers the repository's smoke tests when it finishes (workflow_run). The
        run is created when its time comes (never listed ahead of time) from its own RNG, so the seeded
        timeline of the other runs (times, workflows, outcomes) is the same with or without it; only run ids
        shift. Injected runs trigger nothing."""
        if run.conclusion != "success" or not is_deploy_workflow(run.workflow_name):
            return
        key = f"{self.w.seed}/smoke/{run.id}"
        delay = self.w.scale(random.Random(key).uniform(5, 60))
        self.follow_ups.append((run.finished + delay, run.repo, run.branch, key))

    def flush_follow_ups(self, until: float) -> None:
        due = sorted(f for f in self.follow_ups if f[0] <= until)
        if not due:
            return
        self.follow_ups = [f for f in self.follow_ups if f[0] > until]
        scale = self.w.scale
        for t, repo, branch, key in due:
            rng = random.Random(key + "/run")
            self.new_run(rng, t, repo, None, (scale(rng.uniform(3, 30)), scale(rng.uniform(30, 180))),
                         {"workflow": GH_SMOKE_WORKFLOW[0], "event": "workflow_run", "branch": branch})

    # -- reads
    def list_runs(self, repo: str, created_from: float | None, now: float) -> list[GhRun]:
        runs = [r for r in self.runs.get(repo, ()) if r.created <= now
                and (created_from is None or r.created >= created_from)]
        runs.sort(key=lambda r: (r.created, r.id), reverse=True)
        return runs

    # -- control
    def inject(self, repo: str | None, count: int, conclusion: str | None, state: str, finish_in: float = 0.0,
               duration: float = 60.0, fixed: dict | None = None, created_ago: float = 1.0) -> list[int]:
        """created_ago: for runs not yet completed, how long ago they were created (a long run that leaves
        the exporter's look-back window before it finishes)."""
        w = self.w
        with w.lock:
            now = w.now()
            ids = []
            for i in range(count):
                if state == "completed":
                    t0 = now - duration - 5 - (count - i) * 0.001
                    r = self.new_run(w.inject_rng, t0, repo, conclusion, (5.0, duration), fixed)
                else:  # in progress, finishing in finish_in seconds
                    t0 = now - max(1.0, created_ago)
                    r = self.new_run(w.inject_rng, t0, repo, conclusion, (0.5, finish_in + now - t0 - 0.5), fixed)
                    if state == "queued":
                        r.started = now + finish_in
                        for j in r.jobs:
                            j.created = j.started = r.started
                        r.finished = r.started + 1
                        for j in r.jobs:
                            j.completed = r.finished
                ids.append(r.id)
            return ids

    def rerun(self, run_id: int, previous_conclusion: str = "failure", conclusion: str = "success",
              duration: float = 60.0) -> int:
        """GitHub's "Re-run jobs": the current attempt ends now with `previous_conclusion` and attempt n+1
        of the same run id starts. The runs list shows only the latest attempt; earlier ones are read at
        /runs/{id}/attempts/{n}. Returns the new attempt number."""
        with self.w.lock:
            r = self.run_by_id[run_id]
            now = self.w.now()
            end = lambda t: min(t, now)  # noqa: E731
            self.past_attempts[(r.id, r.attempt)] = replace(
                r, started=end(r.started), finished=end(r.finished), conclusion=previous_conclusion,
                jobs=[replace(j, created=end(j.created), started=end(j.started), completed=end(j.completed),
                              conclusion=previous_conclusion) for j in r.jobs])
            r.attempt += 1
            r.started, r.finished, r.conclusion = now + 0.5, now + 0.5 + duration, conclusion
            jobs = []
            for j in r.jobs:
                self._job_id += 1
                jobs.append(replace(j, id=self._job_id, created=r.started, started=r.started + 0.5,
                                    completed=r.finished, conclusion=conclusion))
            r.jobs = jobs
            return r.attempt
