"""Supabase exporter: project status and service health from the Management API (within its
60 requests/minute), and optional direct Postgres statistics."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

from obs_bridges import config, core, log
from obs_bridges.httpclient import ApiClient, ApiError, Clock, limits
from obs_bridges.parsing import NAME_LABEL_MAX, STATE_LABEL_MAX, ParseError, lst, obj, s

REAL_URL = "https://api.supabase.com"
PROJECT_STATUSES = ["INACTIVE", "ACTIVE_HEALTHY", "ACTIVE_UNHEALTHY", "COMING_UP", "UNKNOWN", "GOING_DOWN",
                    "INIT_FAILED", "REMOVED", "RESTORING", "UPGRADING", "PAUSING", "RESTORE_FAILED", "RESTARTING",
                    "PAUSE_FAILED", "RESIZING"]
HEALTH_STATUSES = ["COMING_UP", "ACTIVE_HEALTHY", "UNHEALTHY"]
SERVICES = ["auth", "db", "pooler", "realtime", "rest", "storage"]
HEALTH_POLLED = {"ACTIVE_HEALTHY", "ACTIVE_UNHEALTHY", "COMING_UP", "RESTARTING", "UPGRADING", "RESIZING"}
PG_STATES = ["active", "idle", "idle in transaction", "idle in transaction (aborted)", "fastpath function call",
             "disabled"]
METRICS_TEMPLATE = "https://{ref}.supabase.co/customer/v1/privileged/metrics"
# The health upstream starts this long after the projects upstream, which its first poll needs.
HEALTH_INITIAL_DELAY_SECONDS = 0.5
# Requests per minute always left to the health polls, however much the projects polls take of the
# budget: health is never stretched to infinity by a short projects interval.
MIN_HEALTH_REQUESTS_PER_MINUTE = 0.5


@dataclass(frozen=True)
class SupabaseSettings:
    """SUPABASE_* settings, validated (config.Common.platform_settings of the Supabase bridge)."""

    projects: frozenset[str]  # allow-list of project refs or names (empty: all)
    services: tuple[str, ...]  # services whose health is asked for
    interval: float
    health_interval: float
    budget: float  # Management API requests per minute this exporter may make
    db_url: config.SecretSource
    db_interval: float
    metrics_template: str  # the metrics endpoint of a project, "{ref}" replaced (supabase_tools)


def load_settings(env: Mapping[str, str]) -> config.Common:
    c = config.common("supabase", env, "SUPABASE_API_URL", "SUPABASE_ACCESS_TOKEN", REAL_URL)
    services = config.env_list(env, "SUPABASE_HEALTH_SERVICES") or SERVICES
    bad = [x for x in services if x not in SERVICES]
    if bad:
        raise config.ConfigError(f"SUPABASE_HEALTH_SERVICES: unknown service(s) {bad}; known: {SERVICES}")
    demo = c.demo_defaults
    template = (env.get("SUPABASE_METRICS_URL_TEMPLATE") or "").strip() or (
        c.demo_url(demo.metrics_template) if demo else METRICS_TEMPLATE)
    c.platform_settings = SupabaseSettings(
        projects=frozenset(config.env_list(env, "SUPABASE_PROJECTS")),
        services=tuple(services),
        interval=config.env_float(env, "SUPABASE_POLL_INTERVAL_SECONDS", 60.0, 1, 86400),
        health_interval=config.env_float(env, "SUPABASE_HEALTH_INTERVAL_SECONDS", 60.0, 1, 86400),
        budget=config.env_float(env, "SUPABASE_MAX_REQUESTS_PER_MINUTE", 30.0, 1, 60),
        db_url=config.SecretSource(env, "SUPABASE_DB_URL"),
        db_interval=config.env_float(env, "SUPABASE_DB_POLL_INTERVAL_SECONDS", 30.0, 1, 86400),
        metrics_template=template,
    )
    if "{ref}" not in template:
        raise config.ConfigError("SUPABASE_METRICS_URL_TEMPLATE must contain {ref}")
    return c


def health_interval(projects_interval: float, health_polled: int, budget: float, floor: float) -> float:
    """The health poll interval (seconds) that keeps the projects polls (one request per
    ``projects_interval``) plus one health request per polled project within ``budget`` requests per
    minute; never below ``floor`` (SUPABASE_HEALTH_INTERVAL_SECONDS), rounded up to whole seconds."""
    per_min_projects = 60.0 / projects_interval
    spare = max(MIN_HEALTH_REQUESTS_PER_MINUTE, budget - per_min_projects)
    need = 60.0 * health_polled / spare if health_polled else 0.0
    return max(floor, math.ceil(need))


# ---------------------------------------------------------------- parsers

@dataclass
class Project:
    ref: str
    name: str
    region: str
    status: str
    pg_version: str


def parse_projects(data: Any) -> list[Project]:
    out = []
    for i, p in enumerate(lst(data, "projects")):
        p = obj(p, f"projects[{i}]")
        db = p.get("database")
        version = ""
        if db is not None:
            version = s(obj(db, "database").get("version"), "database.version", optional=True) or ""
        ref = s(p.get("ref", p.get("id")), "project.ref")
        out.append(Project(ref, (s(p.get("name"), "project.name", optional=True) or ref)[:NAME_LABEL_MAX],
                           (s(p.get("region"), "project.region", optional=True) or "")[:STATE_LABEL_MAX],
                           (s(p.get("status"), "project.status", optional=True) or "UNKNOWN")[:STATE_LABEL_MAX],
                           version[:STATE_LABEL_MAX]))
    return out


def parse_health(data: Any) -> dict[str, str]:
    out = {}
    for i, h in enumerate(lst(data, "health")):
        h = obj(h, f"health[{i}]")
        name = s(h.get("name"), "health.name")
        status = s(h.get("status"), "health.status", optional=True)
        if status is None:
            status = "ACTIVE_HEALTHY" if h.get("healthy") is True else "UNHEALTHY"
        out[name[:STATE_LABEL_MAX]] = status[:STATE_LABEL_MAX]
    return out


# ---------------------------------------------------------------- Postgres statistics (optional)

# Characters of a Postgres connection error kept in the message (its first line, redacted): the message
# adds its own hint, and the whole stays near ERROR_TEXT_MAX.
PG_ERROR_TEXT_MAX = 150


class PgStats:
    """Direct statistics from a Postgres connection: never query text, only aggregates."""

    def __init__(self, secret: config.SecretSource, timeout: float):
        self.secret = secret
        self.timeout = timeout
        self.conn = None
        self.values: dict = {}

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001
                pass
            self.conn = None

    def poll(self) -> None:
        try:
            import psycopg
            from psycopg import sql
        except ImportError as e:  # pragma: no cover - the image installs it
            raise ApiError("config", "psycopg is not installed: pip install 'obs-bridges[postgres]'") from e
        dsn = core.require_secret(self.secret, log.get("obs_bridges.supabase"))
        try:
            if self.conn is None or self.conn.closed:
                self.conn = psycopg.connect(dsn, connect_timeout=max(1, int(self.timeout)), autocommit=True,
                                            application_name="obs-bridges")
            cur = self.conn.cursor()
            cur.execute("SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity "
                        "WHERE backend_type = 'client backend' GROUP BY 1")
            conns = {st: 0 for st in PG_STATES}
            for st, n in cur.fetchall():
                conns[str(st)] = int(n)
            cur.execute("SELECT coalesce(extract(epoch FROM max(clock_timestamp() - xact_start)), 0) "
                        "FROM pg_stat_activity WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() "
                        "AND backend_type = 'client backend'")
            oldest = float(cur.fetchone()[0])
            cur.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            waiting = int(cur.fetchone()[0])
            cur.execute("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                        "WHERE e.extname = 'pg_stat_statements'")
            row = cur.fetchone()
            stmts = None
            if row:
                try:
                    cur.execute(sql.SQL("SELECT coalesce(sum(calls), 0), coalesce(sum(total_exec_time), 0) / 1000.0, "
                                        "coalesce(sum(rows), 0) FROM {}.pg_stat_statements")
                                .format(sql.Identifier(row[0])))
                    c, t, r = cur.fetchone()
                    stmts = (float(c), float(t), float(r))
                except psycopg.Error:
                    stmts = None  # e.g. not in shared_preload_libraries
        except psycopg.OperationalError as e:
            self.close()
            first = log.redact(str(e).splitlines()[0] if str(e) else "")[:PG_ERROR_TEXT_MAX]
            raise ApiError("network", f"postgres: cannot query ({first}); "
                           "check SUPABASE_DB_URL") from None
        except psycopg.Error as e:
            self.close()
            raise ApiError("http", f"postgres: query failed ({type(e).__name__})") from None
        self.values = {"connections": conns, "oldest": oldest, "waiting": waiting, "statements": stmts}

    def families(self, up: bool):
        yield GaugeMetricFamily("supabase_db_up", "1 if the last direct Postgres poll succeeded.", value=1 if up else 0)
        v = self.values
        if not v:
            return
        g = GaugeMetricFamily("supabase_db_connections", "Client connections by state (pg_stat_activity).",
                              labels=["state"])
        for st, n in sorted(v["connections"].items()):
            g.add_metric([st], n)
        yield g
        yield GaugeMetricFamily("supabase_db_oldest_transaction_age_seconds", "Age of the oldest open transaction.",
                                value=v["oldest"])
        yield GaugeMetricFamily("supabase_db_locks_waiting", "Lock requests not yet granted.", value=v["waiting"])
        yield GaugeMetricFamily("supabase_db_statements_available", "1 if pg_stat_statements can be read.",
                                value=1 if v["statements"] else 0)
        if v["statements"]:
            c, t, r = v["statements"]
            yield CounterMetricFamily("supabase_db_statements_calls", "Sum of pg_stat_statements calls.", value=c)
            yield CounterMetricFamily("supabase_db_statements_exec_seconds", "Sum of pg_stat_statements "
                                      "total_exec_time.", value=t)
            yield CounterMetricFamily("supabase_db_statements_rows", "Sum of pg_stat_statements rows.", value=r)


# ---------------------------------------------------------------- exporter

class SupabaseExporter(core.Exporter):
    platform = "supabase"
    settings_type = SupabaseSettings
    cfg: SupabaseSettings

    def __init__(self, settings: config.Common, *, clock: Clock = time.time):
        super().__init__(settings, clock=clock)
        cfg = self.cfg
        self.projects: list[Project] = []
        self.health_status: dict[tuple[str, str], str] = {}
        self.registry.register(self)
        auth = lambda: {"Authorization": f"Bearer {self.token()}"}  # noqa: E731
        self.c_projects = ApiClient("supabase", settings.api_url, self.selfm, settings.http_timeout,
                                  auth=auth, **limits(settings), clock=clock)
        self.c_health = ApiClient("supabase", settings.api_url, self.selfm, settings.http_timeout,
                                  auth=auth, **limits(settings), clock=clock)
        self.u_projects = self.add_upstream(core.Upstream("projects", cfg.interval, self.poll_projects))
        self.u_health = self.add_upstream(core.Upstream("health", cfg.health_interval, self.poll_health,
                                                        initial_delay=HEALTH_INITIAL_DELAY_SECONDS))
        self.pg = None
        if cfg.db_url.configured:
            self.pg = PgStats(cfg.db_url, settings.http_timeout)
            self.u_pg = self.add_upstream(core.Upstream("postgres", cfg.db_interval, self.pg.poll))

    def _allowed(self, p: Project) -> bool:
        allow = self.cfg.projects
        return not allow or p.ref in allow or p.name in allow

    def poll_projects(self, client: ApiClient | None = None) -> None:
        self.token()
        data, _ = (client or self.c_projects).get_json("/v1/projects", "projects")
        self.projects = [p for p in parse_projects(data) if self._allowed(p)]
        self._fit_budget()

    def _fit_budget(self) -> None:
        """Stretch the health interval so that projects + health calls stay within the request budget."""
        n = sum(1 for p in self.projects if p.status in HEALTH_POLLED)
        self.u_health.interval = health_interval(self.u_projects.interval, n, self.cfg.budget, self.cfg.health_interval)

    def poll_health(self) -> None:
        self.token()
        if not self.projects:
            self.poll_projects(self.c_health)
        out = {}
        svc = ",".join(self.cfg.services)
        for p in self.projects:
            if p.status not in HEALTH_POLLED:
                continue  # paused or removed: reported by supabase_project_status, not an exporter error
            try:
                data, _ = self.c_health.get_json(f"/v1/projects/{p.ref}/health", "health", params={"services": svc})
            except ApiError as e:
                if e.status in (400, 404):
                    continue
                raise
            for name, st in parse_health(data).items():
                out[(p.name, name)] = st
        self.health_status = out

    def describe(self):
        return []

    def collect(self):
        projects = sorted(self.projects, key=lambda p: p.name)
        yield core.enum_gauge("supabase_project_status", "Project status (1 on the current value, 0 on the others).",
                              ["project"], "status", PROJECT_STATUSES, (((p.name,), p.status) for p in projects))
        info = InfoMetricFamily("supabase_project", "Project metadata (the ref is here only).",
                                labels=["project"])
        for p in projects:
            info.add_metric([p.name], {"ref": p.ref, "region": p.region, "postgres_version": p.pg_version})
        yield info
        yield core.enum_gauge("supabase_service_health", "Service health per project (1 on the current value).",
                              ["project", "service"], "status", HEALTH_STATUSES,
                              ((k, v) for k, v in sorted(self.health_status.items())))
        g = GaugeMetricFamily("supabase_service_healthy", "1 if the service reports healthy.",
                              labels=["project", "service"])
        for (p, sv), st in sorted(self.health_status.items()):
            g.add_metric([p, sv], 1 if st == "ACTIVE_HEALTHY" else 0)
        yield g
        yield GaugeMetricFamily("supabase_health_poll_interval_seconds", "Health poll interval after fitting the "
                                "request budget.", value=self.u_health.interval)
        if self.pg is not None:
            yield from self.pg.families(self.u_pg.ok)

    def stop(self):
        super().stop()
        if self.pg is not None:
            self.pg.close()


def build(env: Mapping[str, str], *, clock: Clock = time.time) -> SupabaseExporter:
    return SupabaseExporter(load_settings(env), clock=clock)


_ = ParseError
