"""Railway exporter: deployments, deployment steps, resource metrics and estimated cost over GraphQL."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Mapping

from prometheus_client.core import GaugeMetricFamily

from obs_bridges import config, core, railway_logs
from obs_bridges.httpclient import ApiClient, ApiError, Clock, decode_json, limits
from obs_bridges.railway_api import (MEASUREMENTS, PROJECT_QUERY, PROJECT_TOKEN_QUERY,
    PROJECTS_QUERY, Deployment, deployments_document, deployments_page_document, edges, events_document,
    gql_data, metrics_document, parse_deployments, parse_events, parse_metrics, parse_usage, usage_document)
from obs_bridges.parsing import EVENT_LABEL_MAX, NAME_LABEL_MAX, obj, s
from obs_bridges.railway_logs import RailwayLogSettings

REAL_URL = "https://backboard.railway.com/graphql/v2"
STATUSES = ["BUILDING", "CRASHED", "DEPLOYING", "FAILED", "INITIALIZING", "NEEDS_APPROVAL", "QUEUED", "REMOVED",
            "REMOVING", "SKIPPED", "SLEEPING", "SUCCESS", "WAITING"]
# first final state seen is counted, once per deployment id
FINAL = {"SUCCESS", "FAILED", "CRASHED", "SKIPPED", "REMOVED", "SLEEPING"}
STEP_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200)
MINUTES_PER_MONTH = 30 * 24 * 60
# Railway's published prices as the CLI uses them: per vCPU-month, GB-month, egress GB.
PRICES = {"CPU_USAGE": 20.0 / MINUTES_PER_MONTH, "MEMORY_USAGE_GB": 10.0 / MINUTES_PER_MONTH,
          "NETWORK_TX_GB": 0.05, "DISK_USAGE_GB": 0.15 / MINUTES_PER_MONTH,
          "BACKUP_USAGE_GB": 0.15 / MINUTES_PER_MONTH}
# Cost is rounded to micro-dollars: finer digits are float noise, and they would churn the gauge.
COST_DECIMALS = 6
# Discovery: pages at most (2,500 projects at railway_api.DISCOVERY_PAGE_SIZE).
DISCOVERY_MAX_PAGES = 50
# Further deployment pages read per project and poll while a page still reaches into the look-back window.
MAX_DEPLOYMENT_PAGES = 20
# deploymentEvents: new deployments whose steps are read per poll at most, in documents of this many
# aliased fields, each asking for this many events (a deployment has a handful of steps).
MAX_STEP_DEPLOYMENTS = 100
STEP_BATCH = 20
# Resource metrics: the trailing window asked for and its sample rate (the last complete sample is kept).
METRICS_WINDOW_SECONDS = 300
# After discovery failed on the token (auth or config), the other upstreams wait this long before trying
# again themselves: a rejected token is not retried by every upstream at once.
DISCOVERY_ERROR_HOLD_SECONDS = 60.0


@dataclass(frozen=True)
class RailwaySettings:
    """RAILWAY_* settings, validated (config.Common.platform_settings of the Railway bridge)."""

    token_kind: str  # auto, account (also for a workspace token) or project
    projects: frozenset[str]  # allow-list of project ids or names (empty: all)
    environments: frozenset[str]  # allow-list of environment ids or names (empty: all)
    interval: float
    metrics_interval: float
    discovery_interval: float
    usage_interval: float
    lookback: float
    page_size: int
    logs: RailwayLogSettings | None = None  # railway_logs: off unless RAILWAY_LOGS_OTLP_ENDPOINT is set


def load_settings(env: Mapping[str, str]) -> config.Common:
    c = config.common("railway", env, "RAILWAY_API_URL", "RAILWAY_TOKEN", REAL_URL)
    kind = (env.get("RAILWAY_TOKEN_KIND") or "auto").strip().lower()
    if kind not in ("auto", "account", "workspace", "project"):
        raise config.ConfigError(f"RAILWAY_TOKEN_KIND must be auto, account, workspace or project, got {kind!r}")
    c.platform_settings = RailwaySettings(
        token_kind="account" if kind == "workspace" else kind,
        projects=frozenset(config.env_list(env, "RAILWAY_PROJECTS")),
        environments=frozenset(config.env_list(env, "RAILWAY_ENVIRONMENTS")),
        interval=config.env_float(env, "RAILWAY_POLL_INTERVAL_SECONDS", 60.0, 1, 86400),
        metrics_interval=config.env_float(env, "RAILWAY_METRICS_INTERVAL_SECONDS", 60.0, 1, 86400),
        discovery_interval=config.env_float(env, "RAILWAY_DISCOVERY_INTERVAL_SECONDS", 600.0, 1, 86400),
        usage_interval=config.env_float(env, "RAILWAY_USAGE_INTERVAL_SECONDS", 900.0, 1, 86400),
        lookback=config.env_float(env, "RAILWAY_LOOKBACK_SECONDS", 7200.0, 300, 30 * 86400),
        page_size=config.env_int(env, "RAILWAY_PAGE_SIZE", 50, 1, 100),
        logs=railway_logs.load_settings(env),
    )
    return c


def estimated_cost(usage: Mapping[str, float]) -> float:
    """Dollars for a billing period's estimatedUsage (measurement -> value) at PRICES; a measurement
    without a price costs nothing."""
    return round(sum(PRICES.get(m, 0.0) * v for m, v in usage.items()), COST_DECIMALS)



# ---------------------------------------------------------------- exporter

class RailwayExporter(core.Exporter):
    platform = "railway"
    settings_type = RailwaySettings
    cfg: RailwaySettings

    def __init__(self, settings: config.Common, *, clock: Clock = time.time):
        super().__init__(settings, clock=clock)
        cfg = self.cfg
        self._discovery_lock = threading.RLock()
        self._discovery_error: tuple[float, ApiError] | None = None
        self.kind = cfg.token_kind  # resolved from "auto" on first discovery
        self.project_scope: tuple[str, str] | None = None
        self.projects: dict[str, str] = {}
        self.envs: dict[str, str] = {}
        self.services: dict[str, str] = {}
        self.env_project: dict[str, str] = {}
        self.seen = core.SeenSet(retention=2 * cfg.lookback)
        self.latest: dict[tuple[str, str, str], tuple[float, str]] = {}
        # (project, environment, service, final status) -> when the latest such deployment was counted: the
        # deploy markers' time (docs/dashboards.md, "Deploy markers")
        self.finished: dict[tuple[str, str, str, str], float] = {}
        self.resources: dict[tuple[str, str, str, str], float] = {}
        self.cost: dict[str, float] = {}
        self.usage: dict[tuple[str, str], float] = {}
        self.deployments_total = self.counter(
            "railway_deployments", "Deployments that reached a final state, once per deployment id.",
            ["project", "environment", "service", "status"])
        self.step_duration = self.histogram(
            "railway_deployment_step_duration_seconds", "Duration of each deployment step (from deploymentEvents).",
            ["project", "environment", "service", "step"], STEP_BUCKETS)
        self.registry.register(self)
        self.clients = {n: ApiClient("railway", settings.api_url, self.selfm, settings.http_timeout,
                                     auth=self._auth, **limits(settings), clock=clock)
                        for n in ("discovery", "deployments", "metrics", "usage")}
        self.add_upstream(core.Upstream("discovery", cfg.discovery_interval, self.poll_discovery,
                                        initial_delay=0.0))
        self.add_upstream(core.Upstream("deployments", cfg.interval, self.poll_deployments))
        self.add_upstream(core.Upstream("metrics", cfg.metrics_interval, self.poll_metrics))
        self.add_upstream(core.Upstream("usage", cfg.usage_interval, self.poll_usage))
        from obs_bridges import railway_usage  # imported next to its one use
        railway_usage.attach(self, estimated_cost)
        self.log_poller = railway_logs.attach(self)  # the logs upstream, when RAILWAY_LOGS_OTLP_ENDPOINT is set

    def _auth(self, kind: str | None = None) -> dict:
        tok = self.token()
        if (kind or self.kind) == "project":
            return {"Project-Access-Token": tok}
        return {"Authorization": f"Bearer {tok}"}

    def gql(self, client: ApiClient, endpoint: str, query: str, variables: dict | None = None,
            kind: str | None = None) -> dict:
        headers = self._auth(kind) if kind else None
        resp, body = client.request("POST", "", endpoint, json_body={"query": query, "variables": variables or {}},
                                    extra_headers=headers)
        return gql_data(decode_json(body, "railway", endpoint))

    # -- discovery (account/workspace token: all projects; project token: its project and environment)
    def poll_discovery(self, client: ApiClient | None = None) -> None:
        with self._discovery_lock:
            try:
                self._poll_discovery(client or self.clients["discovery"])
                self._discovery_error = None
            except ApiError as e:
                if e.kind in ("auth", "config"):
                    self._discovery_error = (self.clock(), e)
                raise

    def _poll_discovery(self, client: ApiClient) -> None:
        if self.kind == "auto":
            try:
                self._discover_account(client, "account")
                self.kind = "account"
                return
            except ApiError as e:
                if e.kind != "auth":
                    raise
            self._discover_project(client, "project")
            self.kind = "project"
            self.log.info("RAILWAY_TOKEN is a project token: one project and environment are polled")
            return
        if self.kind == "project":
            self._discover_project(client, None)
        else:
            self._discover_account(client, None)

    def _allowed(self, pid: str, name: str) -> bool:
        allow = self.cfg.projects
        return not allow or pid in allow or name in allow

    def _env_allowed(self, eid: str, name: str) -> bool:
        allow = self.cfg.environments
        return not allow or eid in allow or name in allow

    def _take_projects(self, nodes: list[dict]) -> None:
        projects, envs, svcs, env_project = {}, {}, {}, {}
        for n in nodes:
            pid, pname = s(n.get("id"), "project.id"), s(n.get("name"), "project.name")
            if not self._allowed(pid, pname):
                continue
            projects[pid] = pname[:NAME_LABEL_MAX]
            for e in edges(n.get("environments"), "environments")[0]:
                eid, ename = s(e.get("id"), "environment.id"), s(e.get("name"), "environment.name")
                if self._env_allowed(eid, ename) and (self.project_scope is None or eid == self.project_scope[1]):
                    envs[eid] = ename[:NAME_LABEL_MAX]
                    env_project[eid] = pid
            for sv in edges(n.get("services"), "services")[0]:
                svcs[s(sv.get("id"), "service.id")] = s(sv.get("name"), "service.name")[:NAME_LABEL_MAX]
        self.projects, self.envs, self.services, self.env_project = projects, envs, svcs, env_project

    def _discover_account(self, client, kind) -> None:
        nodes, after = [], None
        for _ in range(DISCOVERY_MAX_PAGES):
            data = self.gql(client, "projects", PROJECTS_QUERY, {"after": after}, kind)
            page, more, after = edges(data.get("projects"), "projects")
            nodes.extend(page)
            if not more or not after:
                break
        self.project_scope = None
        if kind:
            self.kind = kind  # before the projects appear: other threads must use the right header
        self._take_projects(nodes)

    def _discover_project(self, client, kind) -> None:
        data = self.gql(client, "project_token", PROJECT_TOKEN_QUERY, None, kind)
        pt = obj(data.get("projectToken"), "projectToken")
        pid, eid = s(pt.get("projectId"), "projectId"), s(pt.get("environmentId"), "environmentId")
        self.project_scope = (pid, eid)
        data = self.gql(client, "project", PROJECT_QUERY, {"id": pid}, kind)
        if kind:
            self.kind = kind
        self._take_projects([obj(data.get("project"), "project")])

    def _ensure_discovered(self, client) -> None:
        with self._discovery_lock:  # the first poll of each upstream would otherwise discover 4 times
            if self.projects:
                return
            err = self._discovery_error
            if err is not None and self.clock() - err[0] < DISCOVERY_ERROR_HOLD_SECONDS:
                raise err[1]  # a rejected token is not retried by every upstream at once
            self.poll_discovery(client)

    # -- deployments: one batched document for every project
    def poll_deployments(self) -> None:
        client = self.clients["deployments"]
        self._ensure_discovered(client)
        now = self.clock()
        pids = list(self.projects)
        if not pids:
            return
        scope = self.project_scope
        data = self.gql(client, "deployments",
                        *deployments_document(pids, self.cfg.page_size, scope[1] if scope else None))
        all_deps: list[Deployment] = []
        for i, pid in enumerate(pids):
            deps, more, cursor = parse_deployments(data.get(f"d{i}"))
            all_deps.extend(deps)
            # follow the connection while the page still reaches into the look-back window
            pages = 0
            while (more and cursor and deps and deps[-1].created >= now - self.cfg.lookback
                   and pages < MAX_DEPLOYMENT_PAGES):
                pages += 1
                more_data = self.gql(client, "deployments",
                                     *deployments_page_document(pid, cursor, self.cfg.page_size,
                                                                scope[1] if scope else None))
                deps, more, cursor = parse_deployments(more_data.get("d"))
                all_deps.extend(deps)
        self._process(all_deps, now)

    def _labels(self, d: Deployment) -> tuple[str, str, str] | None:
        pid = self.env_project.get(d.environment_id)
        if pid is None:
            return None  # environment not allowed (or not yet discovered)
        return (self.projects.get(pid, "unknown"), self.envs.get(d.environment_id, "unknown"),
                self.services.get(d.service_id, "unknown"))

    def _process(self, deps: list[Deployment], now: float) -> None:
        by_id = {}
        for d in deps:
            lb = self._labels(d)
            if lb is None:
                continue
            by_id[d.id] = (d, lb)
        # Only items inside the look-back window take part: the tail of the last page reaches further
        # back by a varying amount, and an old item first seen there must not be counted as new.
        start = now - self.cfg.lookback
        new = self.seen.process("all", ((i, d.status in FINAL, d.created) for i, (d, _) in by_id.items()
                                        if d.created >= start))
        finished = dict(self.finished)  # replaced whole: collect() reads it from another thread
        for did in new:
            d, lb = by_id[did]
            self.deployments_total.labels(*lb, d.status).inc()
            # the start of the poll that first saw it final (the API's deployments carry no finish time)
            finished[(*lb, d.status)] = max(now, finished.get((*lb, d.status), 0.0))
        self.finished = finished
        # each project's connection lists newest first
        self.latest = core.latest_per_key(self.latest, ((lb, d.created, d.status) for d, lb in by_id.values()))
        self.seen.prune(now)
        if new:
            self._observe_steps([(did, by_id[did][1]) for did in new])

    def _observe_steps(self, items: list[tuple[str, tuple]]) -> None:
        client = self.clients["deployments"]
        for start in range(0, min(len(items), MAX_STEP_DEPLOYMENTS), STEP_BATCH):
            chunk = items[start:start + STEP_BATCH]
            try:
                data = self.gql(client, "deployment_events", *events_document([did for did, _ in chunk]))
                for i, (_, lb) in enumerate(chunk):
                    for step, secs in parse_events(data.get(f"e{i}")):
                        self.step_duration.labels(*lb, step[:EVENT_LABEL_MAX]).observe(secs)
            except ApiError as e:
                if e.kind in ("auth", "ratelimit"):
                    raise
                self.log.warning(f"deployment events could not be read: {e}")

    # -- resource metrics: trailing 5-minute window, last complete sample, one batched document
    def poll_metrics(self) -> None:
        client = self.clients["metrics"]
        self._ensure_discovered(client)
        now = self.clock()
        pids = list(self.projects)
        if not pids:
            return
        scope = self.project_scope
        data = self.gql(client, "metrics", *metrics_document(pids, now - METRICS_WINDOW_SECONDS,
                                                             scope[1] if scope else None))
        res = {}
        for i, pid in enumerate(pids):
            for (m, sid, eid), (_, value) in parse_metrics(data.get(f"m{i}")).items():
                if eid not in self.envs or m not in MEASUREMENTS:
                    continue
                res[(m, self.projects[pid], self.envs[eid], self.services.get(sid, "unknown"))] = value
        self.resources = res

    def poll_usage(self) -> None:
        client = self.clients["usage"]
        self._ensure_discovered(client)
        pids = list(self.projects)
        if not pids:
            return
        data = self.gql(client, "estimated_usage", *usage_document(pids))
        cost, usage = {}, {}
        for i, pid in enumerate(pids):
            u = parse_usage(data.get(f"u{i}"))
            name = self.projects[pid]
            cost[name] = estimated_cost(u)
            for m, v in u.items():
                usage[(name, m)] = v
        self.cost, self.usage = cost, usage

    def describe(self):
        return []

    def collect(self):
        yield core.enum_gauge(
            "railway_deployment_status", "Status of the latest deployment per service and environment "
            "(1 on the current value, 0 on the others).", ["project", "environment", "service"], "status", STATUSES,
            ((k, v[1]) for k, v in sorted(self.latest.items())))
        f = GaugeMetricFamily("railway_deployment_finished_timestamp_seconds", "When the latest deployment that "
                              "reached this final status was counted (the poll that first saw it final), unix "
                              "seconds.", labels=["project", "environment", "service", "status"])
        for k, ts in sorted(self.finished.items()):
            f.add_metric(list(k), ts)
        yield f
        fams = {m: GaugeMetricFamily(n, d, labels=["project", "environment", "service"])
                for m, (n, d) in MEASUREMENTS.items()}
        for (m, p, e, sv), v in sorted(self.resources.items()):
            fams[m].add_metric([p, e, sv], v)
        yield from fams.values()
        c = GaugeMetricFamily("railway_estimated_cost_dollars", "Estimated cost of the billing period "
                              "(estimatedUsage x published prices).", labels=["project"])
        for p, v in sorted(self.cost.items()):
            c.add_metric([p], v)
        yield c
        u = GaugeMetricFamily("railway_estimated_usage", "Estimated usage of the billing period by measurement "
                              "(vCPU-minutes, GB-minutes, GB).", labels=["project", "measurement"])
        for (p, m), v in sorted(self.usage.items()):
            u.add_metric([p, m], v)
        yield u
        yield GaugeMetricFamily("railway_projects", "Projects discovered (after the allow-list).",
                                value=len(self.projects))


def build(env: Mapping[str, str], *, clock: Clock = time.time) -> RailwayExporter:
    return RailwayExporter(load_settings(env), clock=clock)


