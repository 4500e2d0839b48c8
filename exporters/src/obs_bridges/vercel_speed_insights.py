"""Vercel Speed Insights drain deliveries (issue 16) -> the same Web Vitals histograms as the app's beacon
endpoint (instrumentation/src/obs_instrument/webvitals.py), plus a `service` label (the Vercel project).

A delivery (already signature-checked by the ingest) is a JSON array, one JSON object, or NDJSON of records
in Vercel's `vercel.speed_insights.v1` schema (https://vercel.com/docs/drains/reference/speed-insights): `metricType` (LCP, FCP,
TTFB, INP, CLS; FID is gone from web-vitals and is refused as `unknown_metric`), `value` (milliseconds; CLS
unitless), `route` (the route template: the page label; the raw `path` never is), `deviceType`,
`vercelEnvironment`, `projectId`. Records carry no project name: `service` comes from a projectId -> name
lookup the ingest feeds (ProjectNames.learn, e.g. from the log drain's projectId/projectName pairs); an id
it does not know is `unknown`, never the id itself.

A body that is not a batch at all raises SpeedInsightsError (a ParseError: the ingest answers 400). A bad
record inside a good batch is counted in web_vitals_rejected_total{reason} and skipped, so one odd sample
does not make Vercel retry (and double count) the rest of its batch. Label values are bounded: at most
`max_services` services and `max_pages` distinct (service, page) pairs; what comes after is `other`.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram

from obs_bridges.parsing import NAME_LABEL_MAX, ParseError

SCHEMA = "vercel.speed_insights.v1"
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_RECORDS = 10_000
# Duplicated from obs_instrument.webvitals (the exporters image cannot import instrumentation/);
# tests/unit/test_vercel_speed_insights.py asserts they stay equal.
BUCKETS = {
    "LCP": (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0),
    "FCP": (0.25, 0.5, 0.75, 1.0, 1.4, 1.8, 2.2, 3.0, 4.0, 6.0, 10.0),
    "TTFB": (0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.2, 1.8, 2.5, 4.0, 8.0),
    "INP": (0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0, 5.0),
    "CLS": (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.35, 0.5, 1.0, 2.0),
}
METRIC_NAMES = {"LCP": "web_vitals_lcp_seconds", "FCP": "web_vitals_fcp_seconds", "TTFB": "web_vitals_ttfb_seconds",
                "INP": "web_vitals_inp_seconds", "CLS": "web_vitals_cls"}
MAX_VALUE = {"LCP": 120_000, "FCP": 120_000, "TTFB": 120_000, "INP": 60_000, "CLS": 50}
HISTOGRAM_LABELS = ("page", "device_type", "environment", "service")
DEVICE_TYPES = ("mobile", "desktop", "tablet")
ENVIRONMENTS = ("production", "preview", "development")
# The beacon endpoint's reasons where they mean the same, plus what only a drain batch can be.
BODY_REASONS = ("too_large", "unsupported_media_type", "invalid_json", "too_many_records")
RECORD_REASONS = ("not_an_object", "unknown_metric", "invalid_value", "invalid_field", "unsupported_schema")
REASONS = BODY_REASONS + RECORD_REASONS
CONTENT_TYPES = ("application/json", "application/x-ndjson", "application/ndjson", "text/plain", "")
OTHER, UNKNOWN = "other", "unknown"
PAGE_MAX = 256
_SAFE_ROUTE = re.compile(r"^/[A-Za-z0-9._~\-\[\]/%()@+:]*$")


class SpeedInsightsError(ParseError):
    """The body is not a Speed Insights batch; `reason` is one of BODY_REASONS, `status` the HTTP answer."""

    def __init__(self, reason: str, message: str, status: int = 400):
        super().__init__(message)
        self.reason, self.status = reason, status


@dataclass(frozen=True)
class Sample:
    metric: str  # a BUCKETS key
    value: float  # seconds (CLS: unitless)
    project_id: str | None
    route: str | None  # Vercel's route template, unchecked
    device_type: str  # DEVICE_TYPES or unknown
    environment: str  # ENVIRONMENTS or other


class _Reject(Exception):
    def __init__(self, reason: str, environment: str = UNKNOWN):
        self.reason, self.environment = reason, environment


def parse_body(body: bytes, content_type: str | None) -> list[Any]:
    """The delivery's items (not yet checked one by one); SpeedInsightsError when it is not a batch."""
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype not in CONTENT_TYPES:
        raise SpeedInsightsError("unsupported_media_type", f"content type {ctype[:60]!r} is not JSON or NDJSON: "
                                 "send application/json or application/x-ndjson", 415)
    if len(body) > MAX_BODY_BYTES:
        raise SpeedInsightsError("too_large", f"a body of {len(body)} bytes is over {MAX_BODY_BYTES}", 413)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SpeedInsightsError("invalid_json", "the body is not UTF-8") from None
    stripped = text.strip()
    ndjson = ctype in ("application/x-ndjson", "application/ndjson")
    try:
        items: list = []
        if stripped and not ndjson:
            try:
                data = json.loads(stripped)
                items = data if isinstance(data, list) else [data]
            except ValueError:
                if "\n" not in stripped:
                    raise
                ndjson = True  # one object per line, sent as application/json
        if stripped and ndjson:
            items = [json.loads(line) for line in stripped.splitlines() if line.strip()]
    except (ValueError, RecursionError) as e:
        raise SpeedInsightsError("invalid_json", f"the body is neither JSON nor NDJSON: {type(e).__name__}") \
            from None
    if len(items) > MAX_RECORDS:
        raise SpeedInsightsError("too_many_records", f"a batch of {len(items)} records is over {MAX_RECORDS}")
    return items


def parse_sample(item: Any) -> Sample:
    """One record as a Sample, or _Reject(reason) naming what is wrong with it."""
    if not isinstance(item, dict):
        raise _Reject("not_an_object")
    env = item.get("vercelEnvironment")
    environment = env if isinstance(env, str) and env in ENVIRONMENTS else OTHER
    schema = item.get("schema")
    if schema is not None and schema != SCHEMA:
        raise _Reject("unsupported_schema", environment)
    metric = item.get("metricType")
    if not isinstance(metric, str) or metric.upper() not in BUCKETS:
        raise _Reject("unknown_metric", environment)
    metric = metric.upper()
    value = item.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Reject("invalid_value", environment)
    try:
        value = float(value)
    except OverflowError:  # an integer literal past float's range
        raise _Reject("invalid_value", environment) from None
    if not math.isfinite(value) or not 0 <= value <= MAX_VALUE[metric]:
        raise _Reject("invalid_value", environment)
    pid, route, device = item.get("projectId"), item.get("route"), item.get("deviceType")
    if (pid is not None and not isinstance(pid, str)) or (route is not None and not isinstance(route, str)) \
            or (device is not None and not isinstance(device, str)):
        raise _Reject("invalid_field", environment)
    device = device.strip().lower() if device else ""
    return Sample(metric, value if metric == "CLS" else value / 1000.0, pid or None, route,
                  device if device in DEVICE_TYPES else UNKNOWN, environment)


class ProjectNames:
    """projectId -> project name, learnt from what the ingest sees (bounded: the oldest entry goes first)."""

    def __init__(self, names: Mapping[str, str] | None = None, max_entries: int = 1000):
        self.max_entries = max_entries
        self._names: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        for pid, name in (names or {}).items():
            self.learn(pid, name)

    def learn(self, project_id: str, name: str) -> None:
        if not (isinstance(project_id, str) and project_id and isinstance(name, str) and name.strip()):
            return
        with self._lock:
            self._names.pop(project_id, None)
            self._names[project_id] = name.strip()[:NAME_LABEL_MAX]
            while len(self._names) > self.max_entries:
                self._names.popitem(last=False)

    def __call__(self, project_id: str | None) -> str | None:
        with self._lock:
            return self._names.get(project_id) if project_id else None


class LabelCap:
    """The first `limit` distinct keys keep their value; every later one is `other` (for the life of the
    process: a label value never changes meaning halfway)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.kept: set = set()
        self._lock = threading.Lock()

    def admit(self, key) -> bool:
        with self._lock:
            if key in self.kept:
                return True
            if len(self.kept) < self.limit:
                self.kept.add(key)
                return True
            return False


def page_label(route: str | None) -> str:
    """The route template as a page label, or `other` when it is missing or does not look like one."""
    if not route or len(route) > PAGE_MAX or not _SAFE_ROUTE.match(route):
        return OTHER
    return route


class SpeedInsights:
    """Counts Speed Insights deliveries into `registry`. record() is what the ingest calls per request."""

    def __init__(self, registry: CollectorRegistry, max_services: int = 20, max_pages: int = 200,
                 project_names: ProjectNames | Callable[[str | None], str | None] | None = None):
        if max_services < 1 or max_pages < 1:
            raise ValueError("max_services and max_pages must be at least 1")
        self.project_names = project_names if project_names is not None else ProjectNames()
        self.services, self.pages = LabelCap(max_services), LabelCap(max_pages)
        self.hist = {k: Histogram(METRIC_NAMES[k], f"Web Vitals {k} from Vercel Speed Insights"
                                  + (" (unitless)" if k == "CLS" else " in seconds"),
                                  list(HISTOGRAM_LABELS), buckets=BUCKETS[k], registry=registry) for k in BUCKETS}
        self.accepted = Counter("web_vitals_beacons", "Web Vitals samples accepted from the Speed Insights drain",
                                ["metric", "environment", "service"], registry=registry)
        self.rejected = Counter("web_vitals_rejected", "Speed Insights samples or batches refused, by reason",
                                ["reason", "environment", "service"], registry=registry)
        for reason in REASONS:  # rate() sees 0 from the start, not nothing
            self.rejected.labels(reason, UNKNOWN, UNKNOWN)

    def service(self, project_id: str | None) -> str:
        name = self.project_names(project_id) if project_id else None
        if not name:
            return UNKNOWN
        return name if self.services.admit(name) else OTHER

    def record(self, body: bytes, content_type: str | None) -> int:
        """Observe every valid sample of the delivery; the number accepted. SpeedInsightsError (400, 413 or
        415 in .status) when the body is not a batch, or when no record in it is usable."""
        try:
            items = parse_body(body, content_type)
        except SpeedInsightsError as e:
            self.rejected.labels(e.reason, UNKNOWN, UNKNOWN).inc()
            raise
        samples, refused = [], []
        for i, item in enumerate(items):
            try:
                samples.append(parse_sample(item))
            except _Reject as r:
                pid = item.get("projectId") if isinstance(item, dict) else None
                refused.append((i, r, self.service(pid) if isinstance(pid, str) else UNKNOWN))
        for _, r, service in refused:
            self.rejected.labels(r.reason, r.environment, service).inc()
        if refused and not samples:
            i, r, _ = refused[0]
            raise SpeedInsightsError(r.reason, f"no usable record: record {i} is {r.reason.replace('_', ' ')}")
        for s in samples:
            service = self.service(s.project_id)
            page = page_label(s.route)
            if page != OTHER and not self.pages.admit((service, page)):
                page = OTHER
            self.hist[s.metric].labels(page, s.device_type, s.environment, service).observe(s.value)
            self.accepted.labels(s.metric, s.environment, service).inc()
        return len(samples)


__all__ = ["BUCKETS", "METRIC_NAMES", "MAX_VALUE", "ProjectNames", "Sample", "SpeedInsights", "SpeedInsightsError",
           "page_label", "parse_body", "parse_sample"]
