"""SQLAlchemy: a client span and a latency observation per statement, pool gauges at scrape time."""
from __future__ import annotations

import re
import time
from functools import lru_cache

from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event

from .middleware import exemplar_for

_OPS = {"select", "insert", "update", "delete", "begin", "commit", "rollback", "create", "drop", "alter",
        "pragma", "with", "savepoint", "release"}
_TABLE_PATTERNS = {
    "select": re.compile(r"\bFROM\s+[\"`\[]?([A-Za-z_][\w$]*)", re.I),
    "with": re.compile(r"\bFROM\s+[\"`\[]?([A-Za-z_][\w$]*)", re.I),
    "delete": re.compile(r"\bFROM\s+[\"`\[]?([A-Za-z_][\w$]*)", re.I),
    "insert": re.compile(r"\bINTO\s+[\"`\[]?([A-Za-z_][\w$]*)", re.I),
    "update": re.compile(r"^\s*UPDATE\s+(?:OR\s+\w+\s+)?[\"`\[]?([A-Za-z_][\w$]*)", re.I),
    "create": re.compile(r"\b(?:TABLE|INDEX)\s+(?:IF\s+NOT\s+EXISTS\s+)?[\"`\[]?([A-Za-z_][\w$]*)", re.I),
    "drop": re.compile(r"\b(?:TABLE|INDEX)\s+(?:IF\s+EXISTS\s+)?[\"`\[]?([A-Za-z_][\w$]*)", re.I),
}


@lru_cache(maxsize=1024)
def parse_statement(statement: str) -> tuple[str, str]:
    """(operation, table): operation SELECT/INSERT/UPDATE/DELETE/OTHER, table lower case or `none`."""
    words = statement.lstrip().split(None, 1)
    op = words[0].lower() if words else "other"
    if op not in _OPS:
        op = "other"
    pattern = _TABLE_PATTERNS.get(op)
    m = pattern.search(statement) if pattern else None
    table = m.group(1).lower() if m else "none"
    if op == "with":
        op = "select"
    # The contract's operation values: SELECT/INSERT/UPDATE/DELETE, everything else OTHER.
    return (op.upper() if op in ("select", "insert", "update", "delete") else "OTHER"), table


class _PoolCollector(Collector):
    def __init__(self, engines: dict, environment: str):
        self.engines, self.environment = engines, environment

    def collect(self):
        labels = ["pool", "environment"]
        active = GaugeMetricFamily("database_connections_active", "Pooled connections checked out now", labels=labels)
        idle = GaugeMetricFamily("database_connections_idle", "Pooled connections open and idle now", labels=labels)
        size = GaugeMetricFamily("database_connections_max", "Most connections the pool will open (size + max overflow)",
                                 labels=labels)
        avail = GaugeMetricFamily("database_connection_pool_available",
                                  "Connections that can still be checked out before waiting", labels=labels)
        for name, engine in list(self.engines.items()):
            pool = engine.pool
            try:
                out, idle_n = pool.checkedout(), pool.checkedin()
                maximum = pool.size() + max(getattr(pool, "_max_overflow", 0), 0)
            except (AttributeError, NotImplementedError):
                continue  # StaticPool/NullPool: no pool to measure
            lv = [name, self.environment]
            active.add_metric(lv, out)
            idle.add_metric(lv, idle_n)
            size.add_metric(lv, maximum)
            avail.add_metric(lv, max(maximum - out, 0))
        yield from (active, idle, size, avail)

    def describe(self):
        return []


def instrument_engine(obs, engine, pool_name: str = "default", record_statements: bool = True) -> None:
    """Listen on one Engine's cursor events. Statements are recorded parameterised (no literal values)."""
    tracer, m, env = obs.tracer, obs.metrics, obs.settings.environment
    slow = obs.settings.slow_query_seconds
    system = engine.dialect.name

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):
        op, table = parse_statement(statement)
        table = m.tables(table)
        attrs = {"db.system.name": system, "db.operation.name": op}
        if table != "none":
            attrs["db.collection.name"] = table
        if record_statements:
            attrs["db.query.text"] = statement[:2048]
        span = tracer.start_span(f"{op} {table}" if table != "none" else op,
                                 kind=SpanKind.CLIENT, attributes=attrs)
        conn.info.setdefault("_obs_stack", []).append((span, op, table, time.perf_counter()))

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):
        stack = conn.info.get("_obs_stack")
        if not stack:
            return
        span, op, table, start = stack.pop()
        d = time.perf_counter() - start
        ex = exemplar_for(span)
        m.db_duration.labels(op, table, env).observe(d, exemplar=ex)
        m.db_queries.labels(op, table, "success", env).inc()
        if d >= slow:
            m.db_slow.labels(table, env).inc()
        span.end()

    @event.listens_for(engine, "handle_error")
    def _error(ctx):
        conn = ctx.connection
        stack = conn.info.get("_obs_stack") if conn is not None else None
        if not stack:
            return
        span, op, table, start = stack.pop()
        etype = type(ctx.original_exception).__name__
        m.db_duration.labels(op, table, env).observe(time.perf_counter() - start)
        m.db_queries.labels(op, table, "error", env).inc()
        m.db_errors.labels(op, m.reasons(etype), env).inc()
        span.set_status(Status(StatusCode.ERROR, str(ctx.original_exception)[:200]))
        span.set_attribute("error.type", etype)
        span.end()

    obs._engines[pool_name] = engine
    if not obs._pool_collector_registered:
        obs.metrics.registry.register(_PoolCollector(obs._engines, env))
        obs._pool_collector_registered = True
