"""The synthetic world: entities with pre-planned timelines, evaluated lazily at "now".

Every item (run, deployment) is created with its whole timeline (queued, started, finished,
outcome) drawn from a seeded RNG; what the API shows is that timeline evaluated at the current
world time, so the world is deterministic for a seed (except the Supabase service-role key, a
credential: random at every start) and cheap to query. New items arrive as a Poisson process per
platform; history is back-filled at start so that exporters find completed items on their first poll.
"""

from __future__ import annotations

import math
import random
import secrets
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field, replace

# Default outcome rates: a calm, healthy demo world. Everything that the alert rules treat as critical or
# high (a failed Railway deployment, a failed Vercel production deployment, a failed deploy workflow, the
# Supabase database down) does not happen by itself; scenarios (/_control/scenario, /_control/inject,
# /_control/supabase/project) or the SIM_* knobs below raise them. What stays is ordinary noise that at
# most raises a medium or low alert: CI runs and preview deployments that fail now and then, short health
# blips of the non-database Supabase services.
DEFAULT_RATES = {
    "github_failure": 0.06,          # CI / Nightly runs that fail (GitHubWorkflowFailureRateHigh is medium)
    "github_deploy_failure": 0.0,    # deploy/release workflows: a failure is GitHubDeployWorkflowFailed (high)
    "github_smoke_failure": 0.0,     # the post-deploy "Smoke tests" workflow: a failure is SmokeCheckFailed (high)
    "vercel_preview_error": 0.03,    # preview deployments in ERROR (low alert)
    "vercel_production_error": 0.0,  # production deployments in ERROR (VercelDeploymentFailed, high)
    "railway_failure": 0.0,          # Railway builds that fail (RailwayDeploymentFailed, high)
    "railway_crash": 0.0,            # Railway deployments that crash after going live (same alert)
    "supabase_incident": 0.0,        # 5-minute windows a Supabase service (db included) is UNHEALTHY
    "supabase_minor_incident": 0.0,  # ... of the non-database services only (SupabaseServiceUnhealthy: high/critical)
}
GH_DEPLOY_WORKFLOW = ("deploy", "release")
GH_EVENTS = [("push", 50), ("pull_request", 35), ("schedule", 10), ("workflow_dispatch", 5)]
GH_WORKFLOWS = [("CI", ".github/workflows/ci.yml", ["build", "test", "lint"]),
                ("Deploy", ".github/workflows/deploy.yml", ["deploy"]),
                ("Nightly", ".github/workflows/nightly.yml", ["e2e (chromium)", "e2e (firefox)"])]
# Post-deployment smoke tests: never picked at random; every successful Deploy run of the world triggers one
# (event workflow_run) shortly after it finishes, as a real pipeline would. The alert rules and the Deployment
# Health dashboard find smoke workflows by name (*smoke*).
GH_SMOKE_WORKFLOW = ("Smoke tests", ".github/workflows/smoke.yml", ["smoke"])
RW_SERVICES = ["api", "worker", "web"]
RW_ENVS = ["production", "staging"]
SB_SERVICES = ["auth", "db", "pooler", "realtime", "rest", "storage"]
WORDS = ["amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "harbor", "iris", "juniper",
         "kestrel", "lumen", "maple", "nova", "onyx", "pine", "quartz", "river", "sage", "tundra"]


def _is_deploy_workflow(name: str) -> bool:
    return any(k in name.lower() for k in GH_DEPLOY_WORKFLOW)


def noise(*key) -> float:
    """Deterministic pseudo-random number in [0, 1) from a key (independent of PYTHONHASHSEED)."""
    return (zlib.crc32("|".join(map(str, key)).encode()) & 0xFFFFFFFF) / 2**32


def _pick(rng: random.Random, weighted):
    total = sum(w for _, w in weighted)
    x = rng.uniform(0, total)
    for v, w in weighted:
        x -= w
        if x <= 0:
            return v
    return weighted[-1][0]


def _name(i: int, prefix: str = "") -> str:
    return f"{prefix}{WORDS[i % len(WORDS)]}" + (f"-{i // len(WORDS)}" if i >= len(WORDS) else "")


# ---------------------------------------------------------------- GitHub

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


@dataclass
class VcDeployment:
    uid: str
    project_id: str
    project: str
    target: str | None
    created: float
    building: float
    ended: float
    outcome: str  # READY ERROR CANCELED
    sha: str
    branch: str

    def state(self, now: float) -> str:
        if now < self.building:
            return "QUEUED"
        if now < self.ended:
            return "BUILDING"
        return self.outcome


RW_STEPS_BUILD = ["SNAPSHOT_CODE", "BUILD_IMAGE", "PUBLISH_IMAGE"]
RW_STEPS_DEPLOY = ["CREATE_CONTAINER", "HEALTHCHECK"]


@dataclass
class RwDeployment:
    id: str
    project_id: str
    service_id: str
    environment_id: str
    created: float
    steps: list  # [(step, start, end)]
    outcome: str  # SUCCESS FAILED CRASHED
    removed_at: float | None = None  # set when superseded
    crashed_at: float | None = None

    @property
    def finished(self) -> float:
        return self.steps[-1][2]

    def status(self, now: float) -> str:
        if now < self.steps[0][1]:
            return "QUEUED"
        if now < self.finished:
            step = next((s for s, a, b in self.steps if a <= now < b), self.steps[-1][0])
            return "BUILDING" if step in RW_STEPS_BUILD else "DEPLOYING"
        if self.outcome == "FAILED":
            return "FAILED"
        if self.removed_at is not None and now >= self.removed_at:
            return "REMOVED"
        if self.crashed_at is not None and now >= self.crashed_at:
            return "CRASHED"
        return "SUCCESS"

    def updated(self, now: float) -> float:
        ts = [self.created] + [t for _, a, b in self.steps for t in (a, b) if t <= now]
        for extra in (self.removed_at, self.crashed_at):
            if extra is not None and extra <= now:
                ts.append(extra)
        return max(ts)


class World:
    def __init__(self, seed: int = 42, github_repos: int = 3, vercel_projects: int = 3, railway_projects: int = 2,
                 supabase_projects: int = 2, history_hours: float = 6.0, gh_rate: float = 2.0,
                 vc_rate: float = 2.0, rw_rate: float = 1.0, time_scale: float = 1.0, now: float | None = None,
                 outcome_rates: dict | None = None):
        self.seed = seed
        self.lock = threading.RLock()
        self.offset = 0.0
        self.rng = random.Random(seed)
        self.inject_rng = random.Random(seed + 1)
        self.time_scale = time_scale
        rates = {**DEFAULT_RATES, **(outcome_rates or {})}
        self.sb_incident_rate = rates["supabase_incident"]
        self.sb_minor_incident_rate = rates["supabase_minor_incident"]
        self.outcome_rates = {k: v for k, v in rates.items() if not k.startswith("supabase")}
        self.rates = {"github": gh_rate, "vercel": vc_rate, "railway": rw_rate}
        self.fail_all: dict[str, bool] = {"github": False, "vercel": False, "railway": False}
        self.prometheus_dir: str | None = None  # server.world_from_args: where the demo scrape files go
        start = (now if now is not None else time.time()) - history_hours * 3600
        # GitHub
        self.gh_org = "demo-org"
        self.gh_repos = [f"{self.gh_org}/{_name(i, 'repo-')}" for i in range(github_repos)]
        self.gh_workflows = {r: [(100 + i * 10 + k, n, p, jobs)
                                 for k, (n, p, jobs) in enumerate(GH_WORKFLOWS + [GH_SMOKE_WORKFLOW])]
                             for i, r in enumerate(self.gh_repos)}
        self._gh_follow_ups: list[tuple[float, str, str, str]] = []  # (created, repo, branch, rng seed)
        self.gh_runs: dict[str, list[GhRun]] = {r: [] for r in self.gh_repos}
        self.gh_run_by_id: dict[int, GhRun] = {}
        self.gh_past_attempts: dict[tuple[int, int], GhRun] = {}  # earlier attempts of re-run runs, as they ended
        self._gh_next_id = 1000
        self._gh_job_id = 50000
        self._gh_run_numbers: dict[int, int] = {}
        # Vercel
        self.vc_team = "team_demo"
        self.vc_projects = [("prj_%012x" % int(noise(seed, "vc", i) * 2**48), _name(i, "web-"))
                            for i in range(vercel_projects)]
        self.vc_deployments: list[VcDeployment] = []
        # Railway
        self.rw_workspace = str(uuid.UUID(int=self.rng.getrandbits(128)))
        self.rw_projects = []
        for i in range(railway_projects):
            pid = str(uuid.UUID(int=self.rng.getrandbits(128)))
            envs = [(str(uuid.UUID(int=self.rng.getrandbits(128))), e) for e in RW_ENVS]
            svcs = [(str(uuid.UUID(int=self.rng.getrandbits(128))), s) for s in RW_SERVICES[: 2 + (i % 2)]]
            self.rw_projects.append({"id": pid, "name": _name(i, "shop-"), "envs": envs, "services": svcs,
                                     "created": start - 86400 * 30})
        self.rw_deployments: list[RwDeployment] = []
        self.rw_by_id: dict[str, RwDeployment] = {}
        # Supabase. The service-role key (Basic auth of the metrics endpoint) is random at every start, never
        # derived from the seed, and shared by the demo projects so that one Prometheus job with one
        # password_file scrapes them all (SIM_PROMETHEUS_DIR). It does not consume the seeded RNG.
        self.sb_org = "org-demo"
        self.sb_service_role_key = "sim_" + secrets.token_urlsafe(32)
        self.sb_projects = []
        for i in range(supabase_projects):
            ref = "".join(chr(97 + int(noise(seed, "sb", i, k) * 26)) for k in range(20))
            self.sb_projects.append({"ref": ref, "name": _name(i, "db-"), "region": "us-east-1",
                                     "status": "ACTIVE_HEALTHY", "created_at": start - 86400 * 90,
                                     "service_role_key": self.sb_service_role_key, "unhealthy": set()})
        # arrivals
        self._next_arrival = {p: start for p in self.rates}
        self._clock_start = start
        self._catch_up(start)
        self._catch_up(self.now())

    # -- time
    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.offset += seconds
            self._catch_up(self.now())

    def scale(self, seconds: float) -> float:
        return seconds * self.time_scale

    # -- arrivals
    def _catch_up(self, now: float) -> None:
        with self.lock:
            for p, rate_h in self.rates.items():
                n_entities = {"github": len(self.gh_repos), "vercel": len(self.vc_projects),
                              "railway": sum(len(x["services"]) * len(x["envs"]) for x in self.rw_projects)}[p]
                total = rate_h * n_entities / 3600.0
                if total <= 0 or n_entities == 0:
                    self._next_arrival[p] = float("inf")
                    continue
                while self._next_arrival[p] <= now:
                    t = self._next_arrival[p]
                    if p == "github":
                        self._gh_flush_follow_ups(t)
                        self._gh_plan_follow_up(self._new_gh_run(self.rng, t))
                    else:
                        {"vercel": self._new_vc_deployment, "railway": self._new_rw_deployment}[p](self.rng, t)
                    self._next_arrival[p] = t + self.rng.expovariate(total)
            self._gh_flush_follow_ups(now)

    def tick(self) -> None:
        self._catch_up(self.now())

    def set_rate(self, platform: str, per_hour: float) -> None:
        with self.lock:
            self.rates[platform] = per_hour
            if platform == "github" and per_hour <= 0:
                self._gh_follow_ups.clear()  # no new runs at all, triggered ones included
            self._next_arrival[platform] = self.now() if per_hour > 0 else float("inf")
            self._catch_up(self.now())

    # -- GitHub
    def _new_gh_run(self, rng: random.Random, t: float, repo: str | None = None, conclusion: str | None = None,
                    durations: tuple | None = None, fixed: dict | None = None) -> GhRun:
        fixed = fixed or {}
        repo = repo or rng.choice(self.gh_repos)
        wfs = self.gh_workflows[repo]
        wid, wname, path, jobnames = next((x for x in wfs if x[1] == fixed.get("workflow")), None) \
            or rng.choice([x for x in wfs if x[1] != GH_SMOKE_WORKFLOW[0]])
        self._gh_next_id += 1
        self._gh_run_numbers[wid] = self._gh_run_numbers.get(wid, 0) + 1
        if durations:
            queue, dur = durations
        else:
            queue, dur = self.scale(rng.uniform(3, 90)), None
        kind = "github_deploy_failure" if _is_deploy_workflow(wname) else \
            "github_smoke_failure" if wname == GH_SMOKE_WORKFLOW[0] else "github_failure"
        fail_p = self.outcome_rates[kind]
        concl = conclusion or ("failure" if self.fail_all["github"] else _pick(rng, [
            ("success", max(0.0, 0.92 - fail_p)), ("failure", fail_p), ("cancelled", 0.05), ("skipped", 0.03)]))
        started = t + queue
        jobs, end = [], started
        for k, jn in enumerate(jobnames):
            self._gh_job_id += 1
            jq = self.scale(rng.uniform(1, 40)) if dur is None else 1.0
            jd = self.scale(rng.uniform(20, 400)) if dur is None else max(0.0, dur - 2.0)
            jc = "success" if (concl == "failure" and k < len(jobnames) - 1) else concl
            jobs.append(GhJob(self._gh_job_id, jn, started, started + jq, started + jq + jd, jc,
                              ["ubuntu-latest"]))
            end = max(end, started + jq + jd)
        branch = _pick(rng, [("main", 60), ("develop", 10), (f"feature/{rng.choice(WORDS)}-{rng.randint(1, 999)}", 30)])
        branch = fixed.get("branch", branch)
        run = GhRun(self._gh_next_id, repo, wid, wname, path, self._gh_run_numbers[wid], 1,
                    fixed.get("event") or _pick(rng, GH_EVENTS), branch, "%040x" % rng.getrandbits(160), t, started,
                    end + (1.0 if dur is None else 0.0), concl, jobs)
        self.gh_runs[repo].append(run)
        self.gh_run_by_id[run.id] = run
        return run

    def _gh_plan_follow_up(self, run: GhRun) -> None:
        """A successful Deploy run triggers the repository's smoke tests when it finishes (workflow_run). The
        run is created when its time comes (never listed ahead of time) from its own RNG, so the seeded
        timeline of the other runs (times, workflows, outcomes) is the same with or without it; only run ids
        shift. Injected runs trigger nothing."""
        if run.conclusion != "success" or not _is_deploy_workflow(run.workflow_name):
            return
        key = f"{self.seed}/smoke/{run.id}"
        delay = self.scale(random.Random(key).uniform(5, 60))
        self._gh_follow_ups.append((run.finished + delay, run.repo, run.branch, key))

    def _gh_flush_follow_ups(self, until: float) -> None:
        due = sorted(f for f in self._gh_follow_ups if f[0] <= until)
        if not due:
            return
        self._gh_follow_ups = [f for f in self._gh_follow_ups if f[0] > until]
        for t, repo, branch, key in due:
            rng = random.Random(key + "/run")
            self._new_gh_run(rng, t, repo, None, (self.scale(rng.uniform(3, 30)), self.scale(rng.uniform(30, 180))),
                             {"workflow": GH_SMOKE_WORKFLOW[0], "event": "workflow_run", "branch": branch})

    def gh_list_runs(self, repo: str, created_from: float | None, now: float) -> list[GhRun]:
        runs = [r for r in self.gh_runs.get(repo, ()) if r.created <= now
                and (created_from is None or r.created >= created_from)]
        runs.sort(key=lambda r: (r.created, r.id), reverse=True)
        return runs

    def inject_gh_runs(self, repo: str | None, count: int, conclusion: str | None, state: str,
                       finish_in: float = 0.0, duration: float = 60.0, fixed: dict | None = None,
                       created_ago: float = 1.0) -> list[int]:
        """created_ago: for runs not yet completed, how long ago they were created (a long run that leaves
        the exporter's look-back window before it finishes)."""
        with self.lock:
            now = self.now()
            ids = []
            for i in range(count):
                if state == "completed":
                    t0 = now - duration - 5 - (count - i) * 0.001
                    r = self._new_gh_run(self.inject_rng, t0, repo, conclusion, (5.0, duration), fixed)
                else:  # in progress, finishing in finish_in seconds
                    t0 = now - max(1.0, created_ago)
                    r = self._new_gh_run(self.inject_rng, t0, repo, conclusion, (0.5, finish_in + now - t0 - 0.5),
                                         fixed)
                    if state == "queued":
                        r.started = now + finish_in
                        for j in r.jobs:
                            j.created = j.started = r.started
                        r.finished = r.started + 1
                        for j in r.jobs:
                            j.completed = r.finished
                ids.append(r.id)
            return ids

    def rerun_gh(self, run_id: int, previous_conclusion: str = "failure", conclusion: str = "success",
                 duration: float = 60.0) -> int:
        """GitHub's "Re-run jobs": the current attempt ends now with `previous_conclusion` and attempt n+1
        of the same run id starts. The runs list shows only the latest attempt; earlier ones are read at
        /runs/{id}/attempts/{n}. Returns the new attempt number."""
        with self.lock:
            r = self.gh_run_by_id[run_id]
            now = self.now()
            end = lambda t: min(t, now)  # noqa: E731
            self.gh_past_attempts[(r.id, r.attempt)] = replace(
                r, started=end(r.started), finished=end(r.finished), conclusion=previous_conclusion,
                jobs=[replace(j, created=end(j.created), started=end(j.started), completed=end(j.completed),
                              conclusion=previous_conclusion) for j in r.jobs])
            r.attempt += 1
            r.started, r.finished, r.conclusion = now + 0.5, now + 0.5 + duration, conclusion
            jobs = []
            for j in r.jobs:
                self._gh_job_id += 1
                jobs.append(replace(j, id=self._gh_job_id, created=r.started, started=r.started + 0.5,
                                    completed=r.finished, conclusion=conclusion))
            r.jobs = jobs
            return r.attempt

    # -- Vercel
    def _new_vc_deployment(self, rng: random.Random, t: float, project: tuple | None = None,
                           outcome: str | None = None, durations: tuple | None = None) -> VcDeployment:
        pid, pname = project or rng.choice(self.vc_projects)
        target = _pick(rng, [("production", 30), (None, 70)])
        queue, build = durations or (self.scale(rng.uniform(1, 60)), self.scale(rng.uniform(20, 400)))
        err_p = self.outcome_rates["vercel_production_error" if target == "production" else "vercel_preview_error"]
        out = outcome or ("ERROR" if self.fail_all["vercel"] else
                          _pick(rng, [("READY", max(0.0, 0.97 - err_p)), ("ERROR", err_p), ("CANCELED", 0.03)]))
        d = VcDeployment("dpl_" + "%024x" % rng.getrandbits(96), pid, pname, target, t, t + queue,
                         t + queue + build, out, "%040x" % rng.getrandbits(160),
                         "main" if target == "production" else f"feature/{rng.choice(WORDS)}")
        self.vc_deployments.append(d)
        return d

    def inject_vc(self, project: str | None, count: int, outcome: str | list[str] | None, state: str,
                  finish_in: float = 0.0, target: str | None = "production", spacing: float = 0.001) -> list[str]:
        """spacing: seconds between the created times of completed ones, the later ones newer (0: all in
        one millisecond of the API's timestamps, still in that order: a pagination and tie-break edge
        case). outcome: one for all, or a list of one per deployment."""
        with self.lock:
            now = self.now()
            proj = next((p for p in self.vc_projects if p[1] == project), None) if project else None
            out = []
            ms0 = math.floor((now - 100) * 1000) / 1000  # the start of a millisecond
            for i in range(count):
                oc = outcome[i % len(outcome)] if isinstance(outcome, list) else outcome
                if state == "completed":
                    t = ms0 + 1e-3 * (i + 1) / (count + 1) if spacing == 0 else now - 100 - (count - i) * spacing
                    d = self._new_vc_deployment(self.inject_rng, t, proj, oc, (10.0, 60.0))
                else:
                    d = self._new_vc_deployment(self.inject_rng, now - 2, proj, oc, (1.0, finish_in + 1))
                d.target = target
                out.append(d.uid)
            return out

    # -- Railway
    def _new_rw_deployment(self, rng: random.Random, t: float, where: tuple | None = None,
                           outcome: str | None = None, fast: bool = False) -> RwDeployment:
        if where:
            proj, sid, eid = where
        else:
            proj = rng.choice(self.rw_projects)
            sid = rng.choice(proj["services"])[0]
            eid = rng.choice(proj["envs"])[0]
        fail_p, crash_p = self.outcome_rates["railway_failure"], self.outcome_rates["railway_crash"]
        out = outcome or ("FAILED" if self.fail_all["railway"] else
                          _pick(rng, [("SUCCESS", max(0.0, 1.0 - fail_p - crash_p)), ("FAILED", fail_p),
                                      ("CRASHED", crash_p)]))
        steps, cur = [], t + (0.5 if fast else self.scale(rng.uniform(2, 20)))
        plan = RW_STEPS_BUILD + ([] if out == "FAILED" else RW_STEPS_DEPLOY)
        for s in plan:
            if fast:
                d = 0.2
            else:
                d = self.scale({"SNAPSHOT_CODE": rng.uniform(2, 5), "BUILD_IMAGE": rng.uniform(30, 300),
                                "PUBLISH_IMAGE": rng.uniform(5, 30), "CREATE_CONTAINER": rng.uniform(2, 10),
                                "HEALTHCHECK": rng.uniform(5, 60)}[s])
            steps.append((s, cur, cur + d))
            cur += d
            if out == "FAILED" and s == "BUILD_IMAGE":
                break
        dep = RwDeployment(str(uuid.UUID(int=rng.getrandbits(128))), proj["id"], sid, eid, t, steps,
                           "CRASHED" if out == "CRASHED" else out)
        if out == "CRASHED":
            dep.outcome = "SUCCESS"
            dep.crashed_at = dep.finished + self.scale(rng.uniform(60, 600))
        if dep.outcome == "SUCCESS":
            for prev in self.rw_deployments:
                if (prev.service_id, prev.environment_id) == (sid, eid) and prev.outcome == "SUCCESS" \
                        and prev.removed_at is None and prev.created < t:
                    prev.removed_at = dep.finished
        self.rw_deployments.append(dep)
        self.rw_by_id[dep.id] = dep
        return dep

    def inject_rw(self, count: int, outcome: str | None, state: str, project: str | None = None) -> list[str]:
        with self.lock:
            now = self.now()
            out = []
            for i in range(count):
                proj = next((p for p in self.rw_projects if p["name"] == project), None) \
                    if project else self.inject_rng.choice(self.rw_projects)
                where = (proj, self.inject_rng.choice(proj["services"])[0], proj["envs"][0][0])
                if state == "completed":
                    d = self._new_rw_deployment(self.inject_rng, now - 30 - (count - i) * 0.001, where, outcome,
                                                fast=True)
                else:
                    d = self._new_rw_deployment(self.inject_rng, now - 0.1, where, outcome, fast=True)
                    # stretch to finish ~3 s from now
                    shift = 3.0
                    d.steps = [(s, a, b + (shift if k == len(d.steps) - 1 else 0))
                               for k, (s, a, b) in enumerate(d.steps)]
                out.append(d.id)
            return out

    def rw_metric(self, measurement: str, sid: str, eid: str, ts: float) -> float:
        b = int(ts // 30) * 30
        ph = noise(self.seed, sid, eid) * 2 * math.pi
        n = noise(self.seed, sid, eid, measurement, b)
        if measurement == "CPU_USAGE":
            return round(max(0.0, 0.25 + 0.2 * math.sin(b / 900 + ph) + 0.1 * n), 4)
        if measurement == "CPU_LIMIT":
            return 8.0
        if measurement == "MEMORY_USAGE_GB":
            return round(0.3 + 0.15 * math.sin(b / 1800 + ph) + 0.05 * n, 4)
        if measurement == "MEMORY_LIMIT_GB":
            return 8.0
        if measurement in ("NETWORK_RX_GB", "NETWORK_TX_GB"):
            return round(0.001 + 0.002 * n, 6)
        if measurement == "DISK_USAGE_GB":
            return round(1.0 + (b % 86400) / 86400.0, 4)
        if measurement == "EPHEMERAL_DISK_USAGE_GB":
            return round(0.2 + 0.05 * n, 4)
        if measurement == "BACKUP_USAGE_GB":
            return 0.5
        return 0.0

    def rw_estimated(self, project_id: str, measurement: str) -> float:
        i = next((k for k, p in enumerate(self.rw_projects) if p["id"] == project_id), 0)
        base = {"CPU_USAGE": 9000.0, "MEMORY_USAGE_GB": 20000.0, "NETWORK_TX_GB": 12.5, "DISK_USAGE_GB": 40000.0,
                "BACKUP_USAGE_GB": 5000.0}.get(measurement, 0.0)
        return round(base * (1 + i), 3)

    # -- Supabase
    def sb_health(self, ref: str, service: str, now: float) -> str:
        p = next(p for p in self.sb_projects if p["ref"] == ref)
        if p["status"] in ("COMING_UP", "RESTORING"):
            return "COMING_UP"
        if service in p["unhealthy"]:
            return "UNHEALTHY"
        # short random incidents: a share of 5-minute buckets per service (none by default for the
        # database: DatabaseDown pages; SIM_SUPABASE_INCIDENT_RATE turns them on for every service)
        rate = self.sb_incident_rate if service == "db" else max(self.sb_incident_rate, self.sb_minor_incident_rate)
        bucket = int(now // 300)
        return "UNHEALTHY" if noise(self.seed, ref, service, bucket) < rate else "ACTIVE_HEALTHY"
