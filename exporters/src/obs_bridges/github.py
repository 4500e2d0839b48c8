"""GitHub Actions exporter: workflow runs and jobs per repository, with ETags and Link pagination."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Mapping

from prometheus_client.core import GaugeMetricFamily

from obs_bridges import config, core, log
from obs_bridges.httpclient import ApiClient, ApiError, Clock, decode_json, limits, next_link
from obs_bridges.github_api import (REPO_RE, Job, Run, parse_jobs, parse_repos, parse_run, parse_runs,
                                    parse_workflows)
from obs_bridges.github_ledger import Families, RunLedger
from obs_bridges.parsing import NAME_LABEL_MAX

REAL_URL = "https://api.github.com"
RUN_STATUSES_ACTIVE = ["queued", "in_progress", "waiting", "requested", "pending"]
CONCLUSIONS = ["success", "failure", "neutral", "cancelled", "timed_out", "action_required", "stale",
               "skipped", "startup_failure"]
DURATION_BUCKETS = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
QUEUE_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800)
MAX_RUN_SECONDS = 35 * 86400  # GitHub cancels a workflow run that reaches 35 days
# Pages followed per listing (Link rel="next"): 50 x 100 items bounds one poll's requests and memory.
MAX_PAGES = 50
# Page size of the listings that are read whole (organization repositories, workflows, jobs): GitHub's maximum.
LIST_PAGE_SIZE = 100
# Run ids are kept this long beyond two look-back windows: a run re-listed late (clock skew, a slow
# re-run) is still recognised as counted.
SEEN_SLACK_SECONDS = 3 * 3600
# Branches that keep their name as a label; every other branch is "other" (bounded cardinality).
DEFAULT_BRANCHES = ("main", "master", "develop")
_OWNER_RE = re.compile(r"^[A-Za-z0-9_.-]+(/\*)?$")


@dataclass(frozen=True)
class GithubSettings:
    """GITHUB_* settings, validated (config.Common.platform_settings of the GitHub bridge)."""

    repos: tuple[str, ...]  # owner/repo entries
    orgs: tuple[str, ...]  # organizations or users whose repositories are discovered
    exclude: frozenset[str]
    branches: frozenset[str]
    interval: float
    meta_interval: float
    lookback: float
    per_page: int
    use_etags: bool
    max_job_fetches: int
    max_tracked_runs: int
    # Webhooks (obs-bridge github-webhook): a repository with a verified delivery in the last
    # ``webhook_trust`` seconds is polled only every ``reconcile_interval`` (missed deliveries, downtime).
    reconcile_interval: float = 3600.0
    webhook_trust: float = 86400.0
    # Billing usage (github_billing.py): these organizations, every ``billing_interval`` seconds (none: off).
    billing_orgs: tuple[str, ...] = ()
    billing_interval: float = 600.0


def load_settings(env: Mapping[str, str]) -> config.Common:
    c = config.common("github", env, "GITHUB_API_URL", "GITHUB_TOKEN", REAL_URL)
    repos, orgs = [], []
    entries = config.env_list(env, "GITHUB_REPOSITORIES")
    if not entries and c.demo:
        entries = list(config.DEMO["github"].repositories)
    for e in entries:
        if REPO_RE.match(e) and not e.endswith("/*"):
            repos.append(e)
        elif _OWNER_RE.match(e):
            orgs.append(e.removesuffix("/*"))
        else:
            raise config.ConfigError(f"GITHUB_REPOSITORIES: {e!r} is neither owner/repo nor an organization name")
    if not entries:
        raise config.ConfigError("GITHUB_REPOSITORIES is empty: list owner/repo entries or organizations "
                                 "to discover, comma-separated (e.g. GITHUB_REPOSITORIES=my-org,other/repo)")
    lookback = config.env_float(env, "GITHUB_LOOKBACK_SECONDS", 7200.0, 600, 30 * 86400)
    billing = list(dict.fromkeys(config.env_list(env, "GITHUB_BILLING_ORGANIZATIONS") or orgs))
    if any(not _OWNER_RE.match(o) or "/" in o for o in billing):
        raise config.ConfigError(f"GITHUB_BILLING_ORGANIZATIONS: organization names only, got {billing!r}")
    c.platform_settings = GithubSettings(
        repos=tuple(repos),
        orgs=tuple(orgs),
        exclude=frozenset(config.env_list(env, "GITHUB_REPOSITORIES_EXCLUDE")),
        branches=frozenset(config.env_list(env, "GITHUB_BRANCHES") or DEFAULT_BRANCHES),
        interval=config.env_float(env, "GITHUB_POLL_INTERVAL_SECONDS", 60.0, 1, 86400),
        meta_interval=config.env_float(env, "GITHUB_METADATA_INTERVAL_SECONDS", 600.0, 1, 86400),
        lookback=lookback,
        per_page=config.env_int(env, "GITHUB_PER_PAGE", 100, 1, 100),
        use_etags=config.env_bool(env, "GITHUB_USE_ETAGS", True),
        max_job_fetches=config.env_int(env, "GITHUB_MAX_JOB_FETCHES_PER_POLL", 100, 0, 10000),
        max_tracked_runs=config.env_int(env, "GITHUB_MAX_TRACKED_RUNS", 50, 0, 10000),
        reconcile_interval=config.env_float(env, "GITHUB_RECONCILE_INTERVAL_SECONDS", min(3600.0, lookback), 1, 86400),
        webhook_trust=config.env_float(env, "GITHUB_WEBHOOK_TRUST_SECONDS", 86400.0, 1, 30 * 86400),
        billing_orgs=tuple(billing) if config.env_bool(env, "GITHUB_BILLING", True) else (),
        billing_interval=config.env_float(env, "GITHUB_BILLING_INTERVAL_SECONDS", 600.0, 60, 86400),
    )
    ps = c.platform_settings
    if ps.reconcile_interval > ps.lookback:
        raise config.ConfigError(
            f"GITHUB_RECONCILE_INTERVAL_SECONDS ({ps.reconcile_interval:g}) must not exceed GITHUB_LOOKBACK_SECONDS "
            f"({ps.lookback:g}): a run created and finished between two reconciliations would be missed")
    return c


# ---------------------------------------------------------------- exporter

class GitHubExporter(core.Exporter):
    platform = "github"
    settings_type = GithubSettings
    cfg: GithubSettings

    def __init__(self, settings: config.Common, *, clock: Clock = time.time):
        super().__init__(settings, clock=clock)
        cfg = self.cfg
        self.repos: list[str] = list(dict.fromkeys(cfg.repos))
        self.workflow_names: dict[str, dict[int, str]] = {}
        # Repositories with verified webhook deliveries (when the last came) and when each was last polled.
        self.hooked: dict[str, float] = {}
        self.reconciled: dict[str, float] = {}
        # Runs (id, attempt) last seen not completed, by repo, with their created time: read one by one
        # once they are no longer in the runs list's window (a long run, or an attempt replaced by a re-run).
        self.unfinished: dict[str, dict[tuple[int, int], float]] = {}
        self._dropped: dict[str, set[tuple[int, int]]] = {}
        self.runs_total = self.counter(
            "github_actions_workflow_runs", "Completed workflow runs, counted once per run id and attempt.",
            ["repo", "workflow", "event", "branch", "conclusion"])
        self.run_duration = self.histogram(
            "github_actions_workflow_run_duration_seconds", "Run duration, run_started_at to updated_at.",
            ["repo", "workflow", "conclusion"], DURATION_BUCKETS)
        self.job_duration = self.histogram(
            "github_actions_job_duration_seconds", "Job duration, started_at to completed_at.",
            ["repo", "workflow", "job"], DURATION_BUCKETS)
        self.job_queue = self.histogram(
            "github_actions_job_queue_seconds", "Job queue time, created_at to started_at.",
            ["repo", "workflow", "job"], QUEUE_BUCKETS)
        self.ledger = RunLedger(
            Families(self.runs_total, self.run_duration, self.job_duration, self.job_queue),
            workflow=self._workflow, branch=self._branch, retention=2 * cfg.lookback + SEEN_SLACK_SECONDS,
            started=self.started)
        self.registry.register(self)
        self.runs_client = self._client()
        self.meta_client = self._client()
        self.add_upstream(core.Upstream("metadata", cfg.meta_interval, self.poll_metadata))
        from obs_bridges import github_billing  # imported next to its one use
        github_billing.attach(self)
        self.add_upstream(core.Upstream("runs", cfg.interval, self.poll_runs, initial_delay=0.0))

    def _client(self) -> ApiClient:
        c = ApiClient("github", self.settings.api_url, self.selfm, self.settings.http_timeout,
                      **limits(self.settings), clock=self.clock,
                      auth=lambda: {"Authorization": f"Bearer {self.token()}",
                                    "Accept": "application/vnd.github+json",
                                    "X-GitHub-Api-Version": "2022-11-28"})
        c.use_etags = self.cfg.use_etags
        return c

    # -- pagination: follow Link rel="next", never build page URLs
    def _get_all(self, client: ApiClient, path: str, endpoint: str, params: dict | None, parser, max_pages=MAX_PAGES,
                 last_page=lambda page: False):
        """Every page's items; stops early after a page for which ``last_page(page)`` is true."""
        items = []
        url, p = path, params
        for _ in range(max_pages):
            resp, body = client.request("GET", url, endpoint, params=p, conditional=True)
            page = parser(decode_json(body, "github", endpoint))
            items.extend(page)
            url, p = next_link(resp.headers.get("Link")), None
            if not url or last_page(page):
                break
        return items

    # -- metadata: repository discovery and workflow names
    def poll_metadata(self, client: ApiClient | None = None) -> None:
        self.token()
        client = client or self.meta_client
        repos = list(self.cfg.repos)
        for org in self.cfg.orgs:
            try:
                found = self._get_all(client, f"/orgs/{org}/repos", "org_repos",
                                      {"per_page": LIST_PAGE_SIZE, "type": "all"}, parse_repos)
            except ApiError as e:
                if e.status != 404:
                    raise
                found = self._get_all(client, f"/users/{org}/repos", "user_repos",
                                      {"per_page": LIST_PAGE_SIZE}, parse_repos)
            repos.extend(found)
        repos = [r for r in dict.fromkeys(repos) if r not in self.cfg.exclude]
        self.repos = repos
        for repo in repos:
            self._fetch_workflows(repo, client)

    def _fetch_workflows(self, repo: str, client: ApiClient) -> None:
        items = self._get_all(client, f"/repos/{repo}/actions/workflows", "workflows",
                              {"per_page": LIST_PAGE_SIZE}, lambda d: list(parse_workflows(d).items()))
        self.workflow_names[repo] = dict(items)

    def _workflow(self, repo: str, run: Run) -> str:
        names = self.workflow_names.get(repo) or {}
        if run.workflow_id is not None and run.workflow_id in names and names[run.workflow_id]:
            return names[run.workflow_id][:NAME_LABEL_MAX]
        base = run.path.rsplit("/", 1)[-1]
        return (base.rsplit(".", 1)[0] if base else "unknown")[:NAME_LABEL_MAX]

    def _branch(self, b: str) -> str:
        return b if b in self.cfg.branches else "other"

    # -- runs
    def poll_runs(self) -> None:
        self.token()
        if not self.repos and self.cfg.orgs:
            self.poll_metadata(self.runs_client)
        now = self.clock()
        start = now - self.cfg.lookback
        errors: list[ApiError] = []
        job_budget = [self.cfg.max_job_fetches]
        for repo in list(self.repos):
            if not self._due(repo, now):
                continue
            try:
                if repo not in self.workflow_names:
                    self._fetch_workflows(repo, self.runs_client)
                runs = self._recent_runs(repo, start)
                runs += self._unlisted_unfinished(repo, runs, now)
                self._process_runs(repo, runs, job_budget)
                self.reconciled[repo] = now
            except ApiError as e:
                if e.kind in ("auth", "ratelimit", "config"):
                    raise
                errors.append(e)
        self.ledger.prune(now)
        if errors:
            raise ApiError(errors[0].kind, f"{len(errors)} of {len(self.repos)} repositories failed; "
                           f"first: {errors[0]}", errors[0].status, errors[0].retry_after)

    def _due(self, repo: str, now: float) -> bool:
        """Every poll, unless webhooks deliver for the repository: then every GITHUB_RECONCILE_INTERVAL_SECONDS
        (a delivery GitHub failed to make is not retried; this catches it)."""
        hooked = self.hooked.get(repo)
        if hooked is None or now - hooked > self.cfg.webhook_trust:
            return True
        return now - self.reconciled.get(repo, float("-inf")) >= self.cfg.reconcile_interval

    def _recent_runs(self, repo: str, start: float) -> list[Run]:
        """Runs created since ``start``, newest first.

        No ``created`` filter: the first page's URL never changes, so its ETag answers 304 (not counted
        against the rate limit) until a run changes. A filter would move with the window and make every
        repository cost a counted request each time it moves. Later pages are read only while the page
        still reaches back into the window. What is kept and how deep pages are read use the same
        bound, so every run in the window is read on every poll (seeded once, or counted once)."""
        runs = self._get_all(self.runs_client, f"/repos/{repo}/actions/runs", "runs",
                             {"per_page": self.cfg.per_page}, parse_runs,
                             last_page=lambda page: not page or min(r.created for r in page) < start)
        return [r for r in runs if r.created >= start]

    def _unlisted_unfinished(self, repo: str, listed: list[Run], now: float) -> list[Run]:
        """Runs seen not completed that the window's list no longer shows: a run longer than
        GITHUB_LOOKBACK_SECONDS, or attempt 1 of a run re-run before a poll saw it complete. Each is read
        by id and attempt (conditional: a 304 is free) until it completes, so it is still counted once.
        Given up after GitHub's 35-day limit on a run, or when the run is gone (404)."""
        track = self.unfinished.get(repo)
        if not track:
            return []
        shown = {(r.id, r.attempt) for r in listed}
        out = []
        for (rid, attempt), created in list(track.items()):
            if (rid, attempt) in shown:
                continue
            if (rid, attempt) in self.ledger.seen:  # a delivery reported it completed
                del track[(rid, attempt)]
                continue
            if created < now - MAX_RUN_SECONDS:
                del track[(rid, attempt)]
                continue
            try:
                _, body = self.runs_client.request("GET", f"/repos/{repo}/actions/runs/{rid}/attempts/{attempt}",
                                                   "run_attempt", conditional=True)
            except ApiError as e:
                if e.status == 404:
                    del track[(rid, attempt)]
                    continue
                raise
            out.append(parse_run(decode_json(body, "github", "run_attempt")))
        return out

    def _track_unfinished(self, repo: str, runs: list[Run]) -> None:
        track = self.unfinished.setdefault(repo, {})
        for r in runs:
            if r.status == "completed":
                track.pop((r.id, r.attempt), None)
            else:
                track[(r.id, r.attempt)] = r.created
        excess = len(track) - self.cfg.max_tracked_runs
        dropped = set(sorted(track, key=track.get)[:max(0, excess)])
        for key in dropped:  # the oldest: bounded memory and requests per poll
            del track[key]
        # Runs still in the window come back each poll: warn when a run is dropped for the first time only.
        if dropped - self._dropped.get(repo, set()):
            self.log.warning(f"more unfinished runs than GITHUB_MAX_TRACKED_RUNS; the {excess} oldest will be "
                             "counted only if they complete inside the look-back window",
                             extra=log.kv(repo=repo))
        self._dropped[repo] = dropped

    def _process_runs(self, repo: str, runs: list[Run], job_budget: list[int]) -> None:
        for r, wf in self.ledger.poll(repo, runs):
            if job_budget[0] > 0:
                job_budget[0] -= 1
                try:
                    self._observe_jobs(repo, wf, r)
                except ApiError as e:
                    if e.kind in ("auth", "ratelimit"):
                        raise
                    self.log.warning(f"jobs of a run could not be read: {e}", extra=log.kv(repo=repo))
        self._track_unfinished(repo, runs)

    def _observe_jobs(self, repo: str, wf: str, r: Run) -> None:
        jobs = self._get_all(self.runs_client, f"/repos/{repo}/actions/runs/{r.id}/attempts/{r.attempt}/jobs",
                             "jobs", {"per_page": LIST_PAGE_SIZE}, parse_jobs)
        self.ledger.jobs(repo, wf, jobs)

    # -- webhook deliveries (github_receiver.py, which asks for a render after each request): the same ledger
    def accepts_repo(self, repo: str) -> bool:
        """A delivery's repository is counted only if polling would count it: the same label bound."""
        if repo in self.cfg.exclude:
            return False
        return repo in self.repos or repo in self.cfg.repos or repo.split("/", 1)[0] in self.cfg.orgs

    def delivered_run(self, repo: str, run: Run) -> str:
        self.hooked[repo] = self.clock()
        return self.ledger.run_event(repo, run)

    def delivered_job(self, repo: str, run_id: int, job_id: int, job: Job, workflow_name: str) -> str:
        self.hooked[repo] = self.clock()
        return self.ledger.job_event(repo, run_id, job_id, job, workflow_name)

    # -- custom collector for the state gauges
    def describe(self):
        return []

    def collect(self):
        g = GaugeMetricFamily("github_actions_workflow_runs_active",
                              "Runs not yet completed in the look-back window, by status.",
                              labels=["repo", "status"])
        for repo, counts in sorted(self.ledger.active().items()):
            for st in sorted(set(RUN_STATUSES_ACTIVE) | set(counts)):
                g.add_metric([repo, st], counts.get(st, 0))
        yield g
        yield core.enum_gauge(
            "github_actions_workflow_last_conclusion", "Conclusion of the latest completed run of each "
            "workflow (1 on the current value, 0 on the others).", ["repo", "workflow"], "conclusion",
            CONCLUSIONS, self.ledger.conclusions())
        fin = GaugeMetricFamily("github_actions_workflow_run_finished_timestamp_seconds",
                                "When the latest counted run finished (updated_at), by workflow, branch and "
                                "conclusion; the deploy markers' time.", labels=["repo", "workflow", "branch", "conclusion"])
        for labels, ts in self.ledger.finish_times():
            fin.add_metric(list(labels), ts)
        yield fin
        yield GaugeMetricFamily("github_actions_repositories", "Repositories polled.", value=len(self.repos))
        now = self.clock()
        yield GaugeMetricFamily("github_webhook_repositories", "Repositories with a verified webhook delivery in the "
                                "last GITHUB_WEBHOOK_TRUST_SECONDS: polled only every GITHUB_RECONCILE_INTERVAL_SECONDS.",
                                value=sum(1 for t in list(self.hooked.values()) if now - t <= self.cfg.webhook_trust))


def build(env: Mapping[str, str], *, clock: Clock = time.time) -> GitHubExporter:
    return GitHubExporter(load_settings(env), clock=clock)
