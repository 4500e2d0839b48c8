"""Vercel exporter: deployments per project and target, with build and queue durations."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

from prometheus_client.core import GaugeMetricFamily

from obs_bridges import config, core
from obs_bridges.httpclient import ApiClient, ApiError, Clock, decode_json, limits
from obs_bridges.parsing import NAME_LABEL_MAX, STATE_LABEL_MAX, ParseError, lst, ms, num, obj, s

REAL_URL = "https://api.vercel.com"
STATES = ["BLOCKED", "BUILDING", "CANCELED", "DELETED", "ERROR", "INITIALIZING", "QUEUED", "READY"]
FINAL = {"READY", "ERROR", "CANCELED"}
TARGETS = ("production", "staging", "preview")
BUILD_BUCKETS = (10, 30, 60, 120, 180, 300, 600, 900, 1800, 2700)
QUEUE_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600)
# Page size of the projects listing: Vercel's maximum (deployments use VERCEL_PAGE_LIMIT).
PROJECTS_PAGE_SIZE = 100
# `until` is exclusive and `next` is the last item's createdAt (ms): pages overlap by this much so that
# deployments created in that same millisecond are not lost between them (uids dedupe).
PAGE_OVERLAP_MS = 1


@dataclass(frozen=True)
class VercelSettings:
    """VERCEL_* settings, validated (config.Common.platform_settings of the Vercel bridge)."""

    team_id: str | None
    projects: frozenset[str]  # allow-list of project names (empty: all)
    interval: float
    projects_interval: float
    lookback: float
    limit: int
    max_pages: int
    # Billing charges (vercel_usage.py): read every ``billing_interval`` seconds unless ``billing`` is off.
    billing: bool = True
    billing_interval: float = 600.0


def load_settings(env: Mapping[str, str]) -> config.Common:
    c = config.common("vercel", env, "VERCEL_API_URL", "VERCEL_TOKEN", REAL_URL)
    demo = c.demo_defaults
    team = (env.get("VERCEL_TEAM_ID") or "").strip() or (demo.team_id if demo else None)
    c.platform_settings = VercelSettings(
        team_id=team,
        projects=frozenset(config.env_list(env, "VERCEL_PROJECTS")),
        interval=config.env_float(env, "VERCEL_POLL_INTERVAL_SECONDS", 60.0, 1, 86400),
        projects_interval=config.env_float(env, "VERCEL_PROJECTS_INTERVAL_SECONDS", 600.0, 1, 86400),
        lookback=config.env_float(env, "VERCEL_LOOKBACK_SECONDS", 7200.0, 600, 30 * 86400),
        limit=config.env_int(env, "VERCEL_PAGE_LIMIT", 100, 1, 100),
        max_pages=config.env_int(env, "VERCEL_MAX_PAGES", 20, 1, 1000),
        billing=config.env_bool(env, "VERCEL_BILLING", True),
        billing_interval=config.env_float(env, "VERCEL_BILLING_INTERVAL_SECONDS", 600.0, 60, 86400),
    )
    return c


# ---------------------------------------------------------------- parsers

@dataclass
class Deployment:
    uid: str
    name: str
    project_id: str
    target: str
    state: str
    created: float
    building: float | None
    ready: float | None


def _pagination_next(d: dict) -> float | None:
    pg = d.get("pagination")
    if pg is None:
        return None
    pg = obj(pg, "pagination")
    nxt = num(pg.get("next"), "pagination.next", optional=True)
    return nxt


def parse_deployments(data: Any) -> tuple[list[Deployment], float | None]:
    d = obj(data, "deployments response")
    out = []
    for i, x in enumerate(lst(d.get("deployments"), "deployments")):
        x = obj(x, f"deployments[{i}]")
        created = ms(x.get("createdAt", x.get("created")), "deployment.createdAt", optional=False)
        state = s(x.get("state", x.get("readyState")), "deployment.state", optional=True) or "UNKNOWN"
        target = s(x.get("target"), "deployment.target", optional=True) or "preview"
        out.append(Deployment(
            uid=s(x.get("uid"), "deployment.uid"),
            name=s(x.get("name"), "deployment.name", optional=True) or "",
            project_id=s(x.get("projectId"), "deployment.projectId", optional=True) or "",
            target=target if target in TARGETS else "other",
            state=state.upper()[:STATE_LABEL_MAX],
            created=created,
            building=ms(x.get("buildingAt"), "deployment.buildingAt"),
            ready=ms(x.get("ready"), "deployment.ready"),
        ))
    return out, _pagination_next(d)


def parse_projects(data: Any) -> tuple[dict[str, str], float | None]:
    d = obj(data, "projects response")
    out = {}
    for i, p in enumerate(lst(d.get("projects"), "projects")):
        p = obj(p, f"projects[{i}]")
        out[s(p.get("id"), "project.id")] = s(p.get("name"), "project.name")
    return out, _pagination_next(d)


# ---------------------------------------------------------------- exporter

class VercelExporter(core.Exporter):
    platform = "vercel"
    settings_type = VercelSettings
    cfg: VercelSettings

    def __init__(self, settings: config.Common, *, clock: Clock = time.time):
        super().__init__(settings, clock=clock)
        cfg = self.cfg
        self.projects: dict[str, str] = {}  # id -> name
        self.seen = core.SeenSet(retention=2 * cfg.lookback)
        self.latest: dict[tuple[str, str], tuple[float, str]] = {}
        self.prod_ready: dict[str, float] = {}
        # (project, target, final state) -> when the latest such deployment finished: the deploy markers' time
        # (docs/dashboards.md, "Deploy markers")
        self.finished: dict[tuple[str, str, str], float] = {}
        self.deployments_total = self.counter(
            "vercel_deployments", "Deployments that reached READY, ERROR or CANCELED, once per uid.",
            ["project", "target", "state"])
        self.build_duration = self.histogram(
            "vercel_deployment_build_duration_seconds", "Build time, buildingAt to ready.",
            ["project", "target"], BUILD_BUCKETS)
        self.queue_duration = self.histogram(
            "vercel_deployment_queue_duration_seconds", "Queue time, createdAt to buildingAt.",
            ["project", "target"], QUEUE_BUCKETS)
        self.registry.register(self)
        auth = lambda: {"Authorization": f"Bearer {self.token()}"}  # noqa: E731
        self.c_projects = ApiClient("vercel", settings.api_url, self.selfm, settings.http_timeout, auth=auth,
                                   **limits(settings), clock=clock)
        self.c_deploy = ApiClient("vercel", settings.api_url, self.selfm, settings.http_timeout, auth=auth,
                                   **limits(settings), clock=clock)
        self.add_upstream(core.Upstream("projects", cfg.projects_interval, self.poll_projects))
        self.add_upstream(core.Upstream("deployments", cfg.interval, self.poll_deployments))
        from obs_bridges import vercel_usage  # imported next to its one use
        vercel_usage.attach(self)

    def _params(self, **kw) -> dict:
        if self.cfg.team_id:
            kw["teamId"] = self.cfg.team_id
        return kw

    def _allowed(self, name: str) -> bool:
        allow = self.cfg.projects
        return not allow or name in allow

    def poll_projects(self, client: ApiClient | None = None) -> None:
        self.token()
        client = client or self.c_projects
        found: dict[str, str] = {}
        cursor = None
        for _ in range(self.cfg.max_pages):
            params = self._params(limit=PROJECTS_PAGE_SIZE)
            if cursor is not None:
                params["from"] = int(cursor)
            data, _ = client.get_json("/v10/projects", "projects", params=params)
            page, cursor = parse_projects(data)
            found.update(page)
            if cursor is None or not page:
                break
        self.projects = {k: v for k, v in found.items() if self._allowed(v)}

    def poll_deployments(self) -> None:
        self.token()
        if not self.projects:
            self.poll_projects(self.c_deploy)
        now = self.clock()
        since = int((now - self.cfg.lookback) * 1000)
        deps: list[Deployment] = []
        uids: set[str] = set()
        until = None
        for _ in range(self.cfg.max_pages):
            params = self._params(limit=self.cfg.limit, since=since)
            if until is not None:
                params["until"] = int(until) + PAGE_OVERLAP_MS
            data, _ = self.c_deploy.get_json("/v6/deployments", "deployments", params=params)
            page, until = parse_deployments(data)
            fresh = [d for d in page if d.uid not in uids]
            uids.update(d.uid for d in fresh)
            deps.extend(fresh)
            if until is None or not fresh:
                break
        self._process(deps)
        self.seen.prune(now)

    def _process(self, deps: list[Deployment]) -> None:
        by_uid: dict[str, tuple[Deployment, str]] = {}
        for d in deps:
            name = self.projects.get(d.project_id) or d.name or "unknown"
            if not self._allowed(name) or (self.projects and d.project_id and d.project_id not in self.projects
                                           and self.cfg.projects):
                continue
            name = name[:NAME_LABEL_MAX]
            by_uid[d.uid] = (d, name)
            if d.target == "production" and d.state == "READY" and d.ready:
                if d.ready > self.prod_ready.get(name, 0):
                    self.prod_ready[name] = d.ready
        new = self.seen.process("all", ((u, d.state in FINAL, d.created) for u, (d, _) in by_uid.items()))
        finished, now = dict(self.finished), self.clock()  # replaced whole: collect() reads it from another thread
        for uid in new:
            d, name = by_uid[uid]
            self.deployments_total.labels(name, d.target, d.state).inc()
            # Vercel's own `ready` time where it gives one, else the poll that first saw it final; never back
            ts = d.ready if d.ready is not None and d.ready >= d.created else now
            finished[(name, d.target, d.state)] = max(ts, finished.get((name, d.target, d.state), 0.0))
            if d.building is not None and d.building >= d.created:
                self.queue_duration.labels(name, d.target).observe(d.building - d.created)
            if d.state == "READY" and d.building is not None and d.ready is not None and d.ready >= d.building:
                self.build_duration.labels(name, d.target).observe(d.ready - d.building)
        self.finished = finished
        # deps are in the API's order (newest first, pages in turn)
        self.latest = core.latest_per_key(self.latest, (((n, d.target), d.created, d.state)
                                                        for d, n in by_uid.values()))

    def describe(self):
        return []

    def collect(self):
        yield core.enum_gauge(
            "vercel_latest_deployment_state", "State of the latest deployment per project and target "
            "(1 on the current value, 0 on the others).", ["project", "target"], "state", STATES,
            ((k, v[1]) for k, v in sorted(self.latest.items())))
        g = GaugeMetricFamily("vercel_latest_production_ready_timestamp_seconds",
                              "When the latest READY production deployment became ready.", labels=["project"])
        for name, ts in sorted(self.prod_ready.items()):
            g.add_metric([name], ts)
        yield g
        f = GaugeMetricFamily("vercel_deployment_finished_timestamp_seconds", "When the latest deployment that "
                              "reached this final state finished: Vercel's ready time, else the poll that first saw "
                              "it final (unix seconds).", labels=["project", "target", "state"])
        for k, ts in sorted(self.finished.items()):
            f.add_metric(list(k), ts)
        yield f
        yield GaugeMetricFamily("vercel_projects", "Projects discovered (after the allow-list).",
                                value=len(self.projects))


def build(env: Mapping[str, str], *, clock: Clock = time.time) -> VercelExporter:
    return VercelExporter(load_settings(env), clock=clock)


_ = (ApiError, ParseError, decode_json)
