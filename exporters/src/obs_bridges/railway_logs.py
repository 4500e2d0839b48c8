"""Railway service logs into Loki: the Railway bridge polls each environment's logs and ships them to the
collector as OTLP log records (issue 16; Railway has no log drain).

Facts this module relies on (Railway's public GraphQL API, https://backboard.railway.com/graphql/v2):
- ``environmentLogs(environmentId: String!, filter: String, beforeDate: String, beforeLimit: Int,
  anchorDate: String, afterDate: String, afterLimit: Int): [Log!]!`` is a Query (and a Subscription) that
  "fetch[es] logs for a project environment. Build logs are excluded unless a snapshot ID is explicitly
  provided in the filter"; anchorDate is the "target date time to look for logs", afterDate the "latest date
  to look for logs after the anchor", afterLimit "limit[s] the number of logs returned after the anchor"
  (beforeDate/beforeLimit likewise before it). The dates are Strings, not DateTime.
  Source: railwayapp/cli src/gql/schema.json (the introspected schema; snapshot df3838bf, 2026-08-21).
  One query covers every service of the environment: each Log says which in its tags, so the request rate
  does not grow with the number of services. This bridge also puts several environments into one document
  (GraphQL aliases, as its deployments and metrics queries do), so it does not grow with environments either
  (up to ENVS_PER_DOCUMENT per request).
- ``Log { timestamp: String! (RFC 3339 with nanoseconds), message: String!, severity: String (e.g. "err"),
  attributes: [LogAttribute!]! {key: String!, value: String!} (parsed from a structured log line),
  tags: LogTags {projectId, environmentId, serviceId, deploymentId, deploymentInstanceId, pluginId,
  snapshotId} }``. Source: the same schema.json.
- Structured attribute values arrive JSON-encoded (a string value keeps its quotes): the CLI strips the
  quotes before it reads ``level``. Source: railwayapp/cli src/util/logs.rs (format_attr_log_string).
- deploymentLogs/buildLogs (per deployment) take ``limit`` "defaults 100, max 5000"; the CLI notes that the
  API may return limit+1 logs (src/controllers/deployment.rs, take_last_n_logs), so a page is "full" at
  >= the limit asked for. environmentLogs documents no maximum: RAILWAY_LOGS_PAGE_SIZE stays <= 5000.
- Rate limits of the public API (Railway's docs at docs.railway.com, the Public API page, "Rate Limits"):
  requests per hour and per second by plan (Hobby: 1,000 per hour, 10 per second; higher plans more),
  X-RateLimit-Limit/-Remaining/-Reset headers, 429 with Retry-After past them (httpclient.py honours them).
- The document logs_document() builds validates against that schema.json (graphql-core,
  build_client_schema), as it does against the simulator's schema (tests/unit/test_railway_logs.py).
Whether the anchor is inclusive is not documented: the cursor asks from its own timestamp and drops the
records it already shipped there (railway_logs_state.take_new), which is right either way. Records that
Railway indexes later than RAILWAY_LOGS_SETTLE_SECONDS after their timestamp can be missed: the settle
delay is the trade between lag and that gap.

Each record goes out under Resource(service_name=<service name>, environment=<environment name>,
platform="railway", project=<project name>, source="deploy", level=normalise_level(severity)); deployment
and instance ids and Railway's attributes (bounded) are record attributes, trace/span ids the record's ids."""

from __future__ import annotations

import collections
import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Mapping

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

from obs_bridges import config, core
from obs_bridges.httpclient import ApiClient, ApiError, limits
from obs_bridges.otlp_logs import LogRecord, OtlpLogSender, OtlpSendError, Resource, normalise_level
from obs_bridges.parsing import lst, obj, s
from obs_bridges.railway_logs_state import (NS, Cursor, Raw, StateError, StateFile, advance, format_ts,
                                            new_records, parse_ts)

# Environments per request: aliased environmentLogs fields in one document.
ENVS_PER_DOCUMENT = 10
# Seconds between two log requests at least: at most 5/s, half of Hobby's 10 requests/second, so the pages of
# a catch-up never burst past it (the other upstreams send one request per poll each).
MIN_REQUEST_SPACING = 0.2
# Railway's structured attributes kept per record, and their key/value sizes (the rest are dropped).
MAX_RECORD_ATTRIBUTES = 16
ATTR_KEY_MAX = 64
ATTR_VALUE_MAX = 512
MESSAGE_MAX = 64 * 1024
# One OTLP request carries at most this many records and about this many bytes (a receiver bounds request
# bodies, and one poll may read 10 environments x 5 pages x 500 lines); the cursor moves after each accepted one.
SEND_MAX_RECORDS = 1000
SEND_MAX_BYTES = 4 * 1024 * 1024
RECORD_OVERHEAD_BYTES = 300
# Attribute keys (lower case) that carry the level, a trace id or a span id rather than data.
LEVEL_KEYS = ("level", "severity", "lvl")
TRACE_KEYS = ("trace_id", "traceid", "trace.id", "trace-id", "otel.trace_id", "traceparent_trace_id")
SPAN_KEYS = ("span_id", "spanid", "span.id", "span-id", "otel.span_id")
ERROR_REASONS = ("auth", "ratelimit", "api", "parse", "collector", "state", "tie_overflow", "partial", "budget")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")
_KEY = re.compile(r"[^A-Za-z0-9_.\-]")
LOG_FIELDS = ("timestamp message severity attributes { key value } "
              "tags { projectId environmentId serviceId deploymentId deploymentInstanceId }")


@dataclass(frozen=True)
class RailwayLogSettings:
    """RAILWAY_LOGS_* settings (off unless RAILWAY_LOGS_OTLP_ENDPOINT is set)."""

    otlp_endpoint: str
    state_dir: str
    interval: float
    lookback: float
    page_size: int
    max_pages: int
    settle: float
    max_requests_per_hour: int


def load_settings(env: Mapping[str, str]) -> RailwayLogSettings | None:
    endpoint = (env.get("RAILWAY_LOGS_OTLP_ENDPOINT") or "").strip()
    if not endpoint:
        return None
    config.check_url("RAILWAY_LOGS_OTLP_ENDPOINT", endpoint)
    state_dir = (env.get("RAILWAY_LOGS_STATE_DIR") or "").strip()
    if not state_dir:
        raise config.ConfigError("RAILWAY_LOGS_STATE_DIR must be set when RAILWAY_LOGS_OTLP_ENDPOINT is: a "
                                 "directory that survives restarts (compose: the railway-logs volume at "
                                 "/var/lib/obs-bridges/railway-logs), where the log cursor is kept")
    return RailwayLogSettings(
        otlp_endpoint=endpoint.rstrip("/"), state_dir=state_dir,
        interval=config.env_float(env, "RAILWAY_LOGS_INTERVAL_SECONDS", 30.0, 1, 3600),
        lookback=config.env_float(env, "RAILWAY_LOGS_LOOKBACK_SECONDS", 900.0, 0, 7 * 86400),
        page_size=config.env_int(env, "RAILWAY_LOGS_PAGE_SIZE", 500, 1, 5000),
        max_pages=config.env_int(env, "RAILWAY_LOGS_MAX_PAGES", 5, 1, 100),
        settle=config.env_float(env, "RAILWAY_LOGS_SETTLE_SECONDS", 5.0, 0, 300),
        max_requests_per_hour=config.env_int(env, "RAILWAY_LOGS_MAX_REQUESTS_PER_HOUR", 600, 1, 100_000),
    )


# ---------------------------------------------------------------- the query and its parser (pure)

def logs_document(anchors: list[tuple[str, int]], limit: int, upto_ns: int) -> tuple[str, dict]:
    """Logs of each environment from its anchor (Unix ns) to ``upto_ns``, as fields ``l{i}``."""
    defs, fields, variables = ["$upto: String!", "$n: Int!"], [], {"upto": format_ts(upto_ns), "n": limit}
    for i, (eid, anchor) in enumerate(anchors):
        defs += [f"$e{i}: String!", f"$a{i}: String!"]
        variables[f"e{i}"], variables[f"a{i}"] = eid, format_ts(anchor)
        fields.append(f"l{i}: environmentLogs(environmentId: $e{i}, anchorDate: $a{i}, afterDate: $upto, "
                      f"afterLimit: $n, beforeLimit: 0) {{ {LOG_FIELDS} }}")
    return f"query({', '.join(defs)}) {{ {' '.join(fields)} }}", variables


def parse_logs(items: Any) -> list[Raw]:
    out = []
    for i, it in enumerate(lst(items, "environmentLogs")):
        it = obj(it, f"environmentLogs[{i}]")
        ts = parse_ts(it.get("timestamp"))
        if ts is None:
            from obs_bridges.parsing import ParseError
            raise ParseError(f"environmentLogs[{i}].timestamp: not an RFC 3339 time")
        attrs = []
        for a in lst(it.get("attributes") or [], "attributes"):
            a = obj(a, "attribute")
            attrs.append((s(a.get("key"), "attribute.key") or "", s(a.get("value"), "attribute.value") or ""))
        tags = {k: str(v) for k, v in obj(it.get("tags") or {}, "tags").items() if isinstance(v, str) and v}
        out.append(Raw(ts, (s(it.get("message"), "message", True) or "")[:MESSAGE_MAX],
                       s(it.get("severity"), "severity", True), tuple(attrs), tags))
    return out


def _plain(value: str) -> str:
    """An attribute value without its JSON string quotes (numbers, objects stay as JSON text)."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        try:
            v = json.loads(value)
            if isinstance(v, str):
                return v
        except ValueError:
            pass
    return value


def to_record(r: Raw) -> tuple[str, LogRecord]:
    """The normalised level and the OTLP record of one Railway log."""
    level, trace, span, attrs = None, None, None, {}
    for key, value in r.attributes:
        k, v = key.lower(), _plain(value)
        if k in LEVEL_KEYS and level is None:
            lv = normalise_level(v)
            level = lv if lv != "unknown" else None
            continue
        if k in TRACE_KEYS and trace is None and _HEX32.match(v.lower()) and v.strip("0"):
            trace = v.lower()
            continue
        if k in SPAN_KEYS and span is None and _HEX16.match(v.lower()) and v.strip("0"):
            span = v.lower()
            continue
        name = _KEY.sub("_", key)[:ATTR_KEY_MAX]
        if name and len(attrs) < MAX_RECORD_ATTRIBUTES and name not in attrs:
            attrs[name] = v[:ATTR_VALUE_MAX]
    for tag, name in (("deploymentId", "railway.deployment.id"),
                      ("deploymentInstanceId", "railway.deployment_instance.id")):
        if r.tags.get(tag):
            attrs[name] = r.tags[tag][:ATTR_VALUE_MAX]
    level = level or normalise_level(r.severity)
    return level, LogRecord(r.ts_ns, r.message, attrs, trace, span if trace else None)


# ---------------------------------------------------------------- the poller

class LogPoller:
    """The ``logs`` upstream of the Railway bridge and the collector of its railway_logs_* metrics."""

    def __init__(self, exporter, cfg: RailwayLogSettings, sender=None, state: StateFile | None = None):
        self.exp = exporter
        self.cfg = cfg
        self.clock = exporter.clock
        st = exporter.settings
        self.client = ApiClient("railway", st.api_url, exporter.selfm, st.http_timeout, auth=exporter._auth,
                                **limits(st), clock=exporter.clock)
        self.sender = sender or OtlpLogSender(cfg.otlp_endpoint)
        self.state = state or StateFile(cfg.state_dir)
        try:
            self.state.check_writable()
            self.cursors: dict[str, Cursor] = self.state.load()
        except StateError as e:
            raise config.ConfigError(str(e)) from None
        self.caught_up: dict[str, int] = {}  # environment id -> ns up to which every record was read
        self.spent: collections.deque[float] = collections.deque()  # when each request of the last hour was sent
        self.sleep, self.monotonic = time.sleep, time.monotonic  # the request spacing (real time; tests swap)
        self._last_request = -MIN_REQUEST_SPACING
        self.last_success: float | None = None
        self._lock = threading.Lock()
        reg = exporter.registry
        self.shipped = Counter("railway_logs_records_shipped", "Log records the collector accepted, by project "
                               "and environment.", ["project", "environment"], registry=reg)
        self.polls = Counter("railway_logs_polls", "Log polls that completed.", registry=reg)
        self.errors = Counter("railway_logs_errors", "Log poll problems by reason.", ["reason"], registry=reg)
        self.duplicates = Counter("railway_logs_duplicates_dropped", "Records read again at the cursor and not "
                                  "shipped twice.", registry=reg)
        for r in ERROR_REASONS:
            self.errors.labels(r)

    def _names(self, eid: str) -> tuple[str, str] | None:
        exp = self.exp
        pid = exp.env_project.get(eid)
        if pid is None:
            return None
        return exp.projects.get(pid, "unknown"), exp.envs.get(eid, "unknown")

    def poll(self) -> None:
        try:
            self._poll()
        except ApiError as e:
            self.errors.labels({"auth": "auth", "ratelimit": "ratelimit", "parse": "parse",
                                "collector": "collector", "state": "state"}.get(e.kind, "api")).inc()
            raise

    def _poll(self) -> None:
        exp = self.exp
        exp._ensure_discovered(self.client)
        now = self.clock()
        upto = int((now - self.cfg.settle) * NS)
        start = int((now - self.cfg.lookback) * NS)
        pending = [eid for eid in exp.envs if eid in exp.env_project]
        for _ in range(self.cfg.max_pages):
            if not pending:
                break
            full = []
            for k in range(0, len(pending), ENVS_PER_DOCUMENT):
                if not self._spend(now):
                    # over RAILWAY_LOGS_MAX_REQUESTS_PER_HOUR: the rest waits (every environment gets its first
                    # page of a poll before any gets a second, so none starves)
                    self.errors.labels("budget").inc()
                    pending = full = []
                    break
                full += self._page(pending[k:k + ENVS_PER_DOCUMENT], start, upto)
            pending = full
        self.polls.inc()
        self.last_success = self.clock()

    def _spend(self, now: float) -> bool:
        """Takes one request from the hourly budget (a sliding hour), or False when it is spent."""
        while self.spent and self.spent[0] <= now - 3600:
            self.spent.popleft()
        if len(self.spent) >= self.cfg.max_requests_per_hour:
            return False
        self.spent.append(now)
        wait = self._last_request + MIN_REQUEST_SPACING - self.monotonic()
        if wait > 0:
            self.sleep(wait)
        self._last_request = self.monotonic()
        return True

    def _page(self, eids: list[str], start: int, upto: int) -> list[str]:
        """One request for these environments; ships what is new of each, moving and saving its cursor after
        every accepted batch. Returns the environments whose page was full (more to read)."""
        cur = {eid: self.cursors.get(eid) or Cursor(start) for eid in eids}
        data = self.exp.gql(self.client, "logs", *logs_document([(e, cur[e].ts_ns) for e in eids],
                                                                 self.cfg.page_size, upto))
        full = []
        for i, eid in enumerate(eids):
            names = self._names(eid)
            items = data.get(f"l{i}")
            if items is None or names is None:
                self.errors.labels("partial").inc()  # that environment's field failed; the others go on
                continue
            parsed = parse_logs(items)
            new, dup = new_records(cur[eid], [r for r in parsed if r.ts_ns <= upto])
            self.duplicates.inc(dup)
            self._ship(eid, names, cur[eid], new)
            if len(parsed) < self.cfg.page_size:
                self.caught_up[eid] = upto
                continue
            if not new:
                # a whole page at one nanosecond, all shipped: step past it (what is left there is lost)
                self.errors.labels("tie_overflow").inc()
                self._commit(eid, Cursor(cur[eid].ts_ns + 1))
            full.append(eid)
        return full

    def _ship(self, eid: str, names: tuple[str, str], cursor: Cursor, new: list) -> None:
        """Sends ``new`` in batches of bounded size, committing the cursor after each one the collector took."""
        k = 0
        while k < len(new):
            j, size = k, 0
            while j < len(new) and j - k < SEND_MAX_RECORDS and (j == k or size < SEND_MAX_BYTES):
                r = new[j][0]
                size += RECORD_OVERHEAD_BYTES + len(r.message) + sum(len(a) + len(b) for a, b in r.attributes)
                j += 1
            groups: dict[Resource, list[LogRecord]] = {}
            for r, _ in new[k:j]:
                level, rec = to_record(r)
                res = Resource(service_name=self.exp.services.get(r.tags.get("serviceId", ""), "unknown"),
                               environment=names[1], platform="railway", project=names[0], source="deploy",
                               level=level)
                groups.setdefault(res, []).append(rec)
            try:
                self.sender.send(groups)
            except OtlpSendError as e:
                raise ApiError("collector", f"logs not shipped, cursor kept: {e}") from None
            self._commit(eid, advance(cursor, new[:j]))
            self.shipped.labels(*names).inc(j - k)
            k = j

    def _commit(self, eid: str, cursor: Cursor) -> None:
        with self._lock:
            self.cursors[eid] = cursor
            snapshot = dict(self.cursors)
        try:
            self.state.save(snapshot)
        except StateError as e:
            raise ApiError("state", str(e)) from None

    def describe(self):
        return []

    def collect(self):
        now = self.clock()
        lag = GaugeMetricFamily("railway_logs_cursor_lag_seconds", "Seconds between now and the newest time up "
                                "to which every log record of the environment was read.",
                                labels=["project", "environment"])
        with self._lock:
            cursors = dict(self.cursors)
        for eid in sorted(cursors):
            names = self._names(eid)
            if names is None:
                continue
            ts = max(cursors[eid].ts_ns, self.caught_up.get(eid, 0))
            lag.add_metric(list(names), max(0.0, now - ts / NS))
        yield lag
        if self.last_success is not None:
            yield GaugeMetricFamily("railway_logs_last_success_timestamp_seconds", "When the last log poll "
                                    "completed (every environment read and shipped), Unix seconds.",
                                    value=self.last_success)


def attach(exporter) -> LogPoller | None:
    """Adds the ``logs`` upstream when RAILWAY_LOGS_OTLP_ENDPOINT is set (ConfigError on a bad state dir)."""
    cfg = exporter.cfg.logs
    if cfg is None:
        return None
    poller = LogPoller(exporter, cfg)
    exporter.registry.register(poller)
    exporter.add_upstream(core.Upstream("logs", cfg.interval, poller.poll))
    return poller
