"""Shared exporter machinery: self-metrics, cached rendering, poll loops, seen-sets (the HTTP server is in
httpserver.py)."""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest

from obs_bridges import __version__, log
from obs_bridges.httpclient import ERROR_TEXT_MAX, MAX_WAIT_SECONDS, ApiError, Clock, RateLimitState

LOG = log.get("obs_bridges.core")
# A token file that exists but cannot be read is re-checked this often at most: no API request is made
# while it fails, so there is nothing to back off from, and a fixed file is picked up soon.
TOKEN_RETRY_SECONDS = 5.0
# A rejected or missing token is retried no sooner than this (then doubling): it must not flood the API.
AUTH_BACKOFF_FLOOR_SECONDS = 60.0
# Failures after which the backoff stops doubling (2**10 x the interval is past every cap anyway).
BACKOFF_MAX_DOUBLINGS = 10
# Every backoff is multiplied by a random factor in this range, so that exporters restarted together
# do not retry in step.
BACKOFF_JITTER = (0.8, 1.2)
# Added to an upstream's Retry-After (seconds, random in this range): never retry at the very instant.
RETRY_AFTER_SLACK = (0.05, 0.5)
# Renders asked for between polls (webhook deliveries) are coalesced: at most one per this many seconds.
RENDER_COALESCE_SECONDS = 0.25
_SECRET_LOCK = threading.Lock()


def require_secret(source, logger: logging.Logger) -> str:
    """The secret's value, or ApiError: ``token_unreadable`` when its _FILE exists but cannot be read,
    ``config`` when it is unset, missing or empty. The unreadable file is logged once at error by
    whichever poll sees it first (again if the problem changes), its recovery once at info."""
    r = source.read()
    problem = r.problem if r.state == "unreadable" else None
    with _SECRET_LOCK:
        before, source.reported = source.reported, problem
    if problem and problem != before:
        logger.error(problem, extra=log.kv(variable=f"{source.name}_FILE", file=source.file, uid=os.getuid(),
                                           reason="token_unreadable"))
    elif before and r.state == "ok":
        logger.info(f"{source.name}_FILE can be read again", extra=log.kv(variable=f"{source.name}_FILE",
                                                                         file=source.file))
    if r.problem:
        raise ApiError("token_unreadable" if problem else "config", r.problem)
    return r.value


# ---------------------------------------------------------------- metric helpers

def enum_gauge(name: str, doc: str, labelnames: list[str], enum_label: str, enum_values: Iterable[str],
               rows: Iterable[tuple[tuple[str, ...], str | None]]) -> GaugeMetricFamily:
    """A state gauge emitting the whole enum: 1 on the current value, 0 on every other one.

    A current value outside the known enum is emitted too (as 1) so that nothing is hidden.
    """
    values = list(enum_values)
    g = GaugeMetricFamily(name, doc, labels=list(labelnames) + [enum_label])
    for labelvalues, current in rows:
        for v in values:
            g.add_metric(list(labelvalues) + [v], 1.0 if v == current else 0.0)
        if current is not None and current not in values:
            g.add_metric(list(labelvalues) + [current], 1.0)
    return g


def latest_per_key(previous: dict, newest_first: Iterable[tuple[object, float, object]]) -> dict:
    """The latest value per key, for "status of the latest deployment/run" gauges. Items are
    (key, created, value) in the API's order, newest first, so on a tie at the API's timestamp resolution
    (GitHub: seconds, Vercel: milliseconds) the first listed wins. A key not listed in this poll keeps its
    previous value; a listed one replaces it unless it is older."""
    fresh: dict = {}
    for key, created, value in newest_first:
        if key not in fresh or created > fresh[key][0]:
            fresh[key] = (created, value)
    out = dict(previous)
    for key, v in fresh.items():
        if key not in out or v[0] >= out[key][0]:
            out[key] = v
    return out


class SeenSet:
    """Natural ids already counted, per scope (repo, project ...).

    The first successful poll of a scope seeds it without counting, so a restart never re-counts
    history; an item first seen in progress is counted when it is first seen in a final state.
    Ids older than ``retention`` seconds are pruned (they have left every look-back window).
    """

    def __init__(self, retention: float):
        self.retention = retention
        self._seen: dict[object, float] = {}
        self._seeded: set[object] = set()

    def seeded(self, scope) -> bool:
        return scope in self._seeded

    def process(self, scope, items: Iterable[tuple[object, bool, float]]) -> list[object]:
        """items: (key, is_final, timestamp). Returns keys to count now."""
        seeding = scope not in self._seeded
        out = []
        for key, final, ts in items:
            if not final or key in self._seen:
                continue
            self._seen[key] = ts
            if not seeding:
                out.append(key)
        self._seeded.add(scope)
        return out

    def mark(self, key, ts: float) -> bool:
        """Record one final item seen outside a poll (a webhook delivery); True if it was not known."""
        if key in self._seen:
            return False
        self._seen[key] = ts
        return True

    def __contains__(self, key) -> bool:
        return key in self._seen

    def prune(self, now: float) -> None:
        cutoff = now - self.retention
        for k in [k for k, ts in self._seen.items() if ts < cutoff]:
            del self._seen[k]

    def __len__(self) -> int:
        return len(self._seen)


# ---------------------------------------------------------------- self-metrics

class SelfMetrics:
    """``<platform>_api_*`` and ``<platform>_exporter_*`` families."""

    def __init__(self, platform: str, registry: CollectorRegistry, clock: Clock = time.time):
        p = platform
        self.platform = platform
        self.ratelimit = RateLimitState(clock)
        self.requests = Counter(f"{p}_api_requests", f"Requests made to the {p} API, by endpoint and HTTP "
                                "code ('error' for a connection failure or timeout).",
                                ["endpoint", "code"], registry=registry)
        self.poll_errors = Counter(f"{p}_exporter_poll_errors", "Failed polls by upstream and reason.",
                                   ["upstream", "reason"], registry=registry)
        self.upstreams: dict[str, "Upstream"] = {}
        registry.register(self)

    def api_request(self, endpoint: str, code: str) -> None:
        self.requests.labels(endpoint, code).inc()

    def describe(self):
        return []

    def collect(self):
        p = self.platform
        rl = self.ratelimit
        if rl.remaining is not None:
            yield GaugeMetricFamily(f"{p}_api_ratelimit_remaining",
                                    "Requests left in the current rate-limit window, from the last response.",
                                    value=rl.remaining)
        if rl.limit is not None:
            yield GaugeMetricFamily(f"{p}_api_ratelimit_limit", "Rate-limit window size.", value=rl.limit)
        if rl.reset is not None:
            yield GaugeMetricFamily(f"{p}_api_ratelimit_reset_timestamp_seconds",
                                    "When the rate-limit window resets.", value=rl.reset)
        last = GaugeMetricFamily(f"{p}_exporter_last_success_timestamp_seconds",
                                 "Last successful poll of each upstream (age = time() - this).",
                                 labels=["upstream"])
        up = GaugeMetricFamily(f"{p}_exporter_upstream_up",
                               "1 if the last poll of the upstream succeeded.", labels=["upstream"])
        dur = GaugeMetricFamily(f"{p}_exporter_poll_duration_seconds", "Duration of the last poll.",
                                labels=["upstream"])
        for name, u in sorted(self.upstreams.items()):
            if u.last_success is not None:
                last.add_metric([name], u.last_success)
            up.add_metric([name], 1.0 if u.ok else 0.0)
            if u.last_duration is not None:
                dur.add_metric([name], u.last_duration)
        yield last
        yield up
        yield dur
        yield GaugeMetricFamily(f"{p}_up", "1 if every upstream's last poll succeeded.",
                                value=1.0 if self.upstreams and all(u.ok for u in self.upstreams.values()) else 0.0)


class _LabelInjector:
    """Adds constant labels (demo="true") to every sample of an inner registry."""

    def __init__(self, inner: CollectorRegistry, labels: dict[str, str]):
        self.inner = inner
        self.labels = labels

    def collect(self):
        for fam in self.inner.collect():
            m = Metric(fam.name, fam.documentation, fam.type, fam.unit)
            for s in fam.samples:
                m.samples.append(s._replace(labels={**s.labels, **self.labels}))
            yield m


# ---------------------------------------------------------------- poll loops

class Upstream:
    """One upstream (an API area) polled on its own background thread, never on the scrape path."""

    def __init__(self, name: str, interval: float, fn: Callable[[], None], *, initial_delay: float = 0.0,
                 enabled: Callable[[], bool] | None = None):
        self.name = name
        self.interval = interval
        self.fn = fn
        self.initial_delay = initial_delay
        self.enabled = enabled or (lambda: True)
        self.ok = False
        self.last_success: float | None = None
        self.last_attempt: float | None = None
        self.last_duration: float | None = None
        self.last_error: str | None = None
        self.failures = 0
        self.next_due = 0.0
        self.polls = 0


# Longest wait after the collector (not the platform's API) refused logs: a long backoff would only delay
# shipping once it is back, and each retry costs one API request per environment group.
COLLECTOR_RETRY_MAX_SECONDS = 60.0


def backoff_delay(interval: float, failures: int, kind: str, retry_after: float | None,
                  max_backoff: float, rand: Callable[[float, float], float] = random.uniform) -> float:
    """Seconds before the next poll after ``failures`` consecutive failures (the latest of ``kind``).

    Doubling from the interval (from AUTH_BACKOFF_FLOOR_SECONDS for a rejected or missing token) up to
    ``max_backoff``, with jitter; an upstream's Retry-After is honoured (a rate limit waits exactly that,
    plus slack); never more than MAX_WAIT_SECONDS (the poll thread's Event.wait must accept it). A token
    file that cannot be read is re-checked soon: no request was made. ``rand`` is random.uniform."""
    base = max(interval, 1.0)
    if kind in ("auth", "config"):
        base = max(base, AUTH_BACKOFF_FLOOR_SECONDS)  # a bad or missing token must not flood the API
    delay = min(max_backoff, base * (2 ** min(failures - 1, BACKOFF_MAX_DOUBLINGS)))
    delay *= rand(*BACKOFF_JITTER)
    if retry_after is not None:
        delay = max(delay if kind != "ratelimit" else 0.0, retry_after + rand(*RETRY_AFTER_SLACK))
    # Whatever an upstream's headers said: a finite wait the poll thread's Event.wait accepts.
    delay = min(delay, MAX_WAIT_SECONDS) if math.isfinite(delay) else MAX_WAIT_SECONDS
    if kind == "token_unreadable":
        delay = min(interval, TOKEN_RETRY_SECONDS) * rand(*BACKOFF_JITTER)
    if kind == "collector":  # our own collector refused a batch (railway_logs): resume soon after it is back
        delay = min(delay, COLLECTOR_RETRY_MAX_SECONDS)
    return delay


class Exporter:
    """Base class: subclasses build collectors and upstreams; this runs loops and serves HTTP.

    ``clock`` (Unix seconds, time.time by default) is every wall-time read of the exporter, its bridge
    and its API clients: a test or a simulated day injects its own. Waits between polls stay real."""

    platform = "base"
    max_backoff = 1800.0  # the longest backoff between polls of a failing upstream (30 min)
    settings_type: type | None = None  # the bridge's frozen settings class (settings.platform_settings)

    def __init__(self, settings, *, clock: Clock = time.time):
        if self.settings_type is not None:
            if not isinstance(settings.platform_settings, self.settings_type):
                raise TypeError(f"{type(self).__name__} needs settings from {self.platform}.load_settings")
            self.cfg = settings.platform_settings
        self.settings = settings
        self.clock = clock
        self.log = log.get(f"obs_bridges.{self.platform}")
        self.registry = CollectorRegistry(auto_describe=False)
        self.selfm = SelfMetrics(self.platform, self.registry, clock)
        from prometheus_client.core import InfoMetricFamily  # local: keeps module import light

        mode = "demo" if settings.demo else "live"

        class _Info:
            def collect(self_inner):
                yield InfoMetricFamily(f"{self.platform}_exporter", "Exporter build and mode.",
                                       value={"version": __version__, "mode": mode})

        self.registry.register(_Info())
        self.upstreams: list[Upstream] = []
        self._stop = threading.Event()
        self._render_lock = threading.Lock()
        self._state_lock = threading.RLock()
        self._rendered = b""
        self._render_wanted = threading.Event()
        self._outer = self.registry
        if settings.demo:
            self._outer = CollectorRegistry(auto_describe=False)
            self._outer.register(_LabelInjector(self.registry, {"demo": "true"}))
        self.started = self.clock()
        self._threads: list[threading.Thread] = []
        self._logged_errors: dict[str, str] = {}

    # -- helpers for subclasses
    def histogram(self, name, doc, labels, buckets):
        return Histogram(name, doc, labels, buckets=buckets, registry=self.registry)

    def counter(self, name, doc, labels):
        return Counter(name, doc, labels, registry=self.registry)

    def add_upstream(self, u: Upstream) -> Upstream:
        self.upstreams.append(u)
        self.selfm.upstreams[u.name] = u
        return u

    def token(self) -> str:
        return require_secret(self.settings.token, self.log)

    # -- rendering: /metrics serves bytes rendered after each poll, so a scrape costs no work
    def render(self) -> None:
        with self._render_lock:
            with self._state_lock:
                data = generate_latest(self._outer)
            self._rendered = data

    def metrics_bytes(self) -> bytes:
        return self._rendered

    def request_render(self) -> None:
        """State changed outside a poll (a webhook delivery): render soon, coalescing bursts."""
        self._render_wanted.set()

    def _render_loop(self) -> None:
        while True:
            self._render_wanted.wait()
            if self._stop.is_set():
                return
            self._render_wanted.clear()
            self.render()
            if self._stop.wait(RENDER_COALESCE_SECONDS):
                return

    # -- loops
    def _run_upstream(self, u: Upstream) -> None:
        if u.initial_delay and self._stop.wait(u.initial_delay):
            return
        while not self._stop.is_set():
            delay = self.poll_once(u)
            self.render()
            if self._stop.wait(delay):
                return

    def poll_once(self, u: Upstream) -> float:
        """Run one poll; returns the delay before the next one (backoff on failure)."""
        t0 = self.clock()
        u.last_attempt = t0
        try:
            if u.enabled():
                u.fn()
            u.polls += 1
        except ApiError as e:
            u.last_duration = self.clock() - t0
            return self._failed(u, e.kind, str(e), e.retry_after)
        except Exception as e:  # a parser or logic bug must not kill the loop
            u.last_duration = self.clock() - t0
            self.log.exception("poll failed unexpectedly", extra=log.kv(upstream=u.name))
            return self._failed(u, "internal", f"{type(e).__name__}: {log.redact(str(e))[:ERROR_TEXT_MAX]}", None)
        u.last_duration = self.clock() - t0
        if not u.ok and u.failures:
            self.log.info("upstream recovered", extra=log.kv(upstream=u.name, after_failures=u.failures))
        u.ok = True
        u.failures = 0
        u.last_error = None
        u.last_success = self.clock()
        self._logged_errors.pop(u.name, None)
        return u.interval

    def _failed(self, u: Upstream, kind: str, message: str, retry_after: float | None) -> float:
        u.ok = False
        u.failures += 1
        u.last_error = message
        self.selfm.poll_errors.labels(u.name, kind).inc()
        delay = backoff_delay(u.interval, u.failures, kind, retry_after, self.max_backoff)
        hint = {
            "auth": f"check {self.settings.token.name} (or {self.settings.token.name}_FILE): the API rejected it",
            "config": "",
            "ratelimit": "rate limited by the API, waiting as told",
            "network": "the API is unreachable; check the API URL variable and the network",
            "timeout": "the API did not answer in time; HTTP_TIMEOUT_SECONDS sets the limit",
            "parse": "the API answered with an unexpected body",
            "http": "the API answered with an error status",
            "internal": "unexpected error in the exporter",
        }.get(kind, "")
        # One line per distinct problem; repeated identical failures log at debug only.
        prev = self._logged_errors.get(u.name)
        key = f"{kind}:{message}"
        # An unreadable token file was logged once for the whole exporter by require_secret.
        lvl = logging.WARNING if prev != key and kind != "token_unreadable" else logging.DEBUG
        self._logged_errors[u.name] = key
        self.log.log(lvl, f"{u.name} poll failed: {message}" + (f" ({hint})" if hint else ""),
                     extra=log.kv(upstream=u.name, reason=kind, retry_in_s=round(delay, 1),
                                  failures=u.failures))
        return delay

    def start(self) -> None:
        self.render()
        t = threading.Thread(target=self._render_loop, name="render", daemon=True)
        t.start()
        self._threads.append(t)
        for u in self.upstreams:
            t = threading.Thread(target=self._run_upstream, args=(u,), name=f"poll-{u.name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self._render_wanted.set()

    def health(self) -> dict:
        now = self.clock()
        return {
            "platform": self.platform,
            "mode": "demo" if self.settings.demo else "live",
            "api": self.settings.api_url.split("?")[0],
            "upstreams": {
                u.name: {
                    "ok": u.ok,
                    "last_success_age_seconds": None if u.last_success is None else round(now - u.last_success, 3),
                    "consecutive_failures": u.failures,
                    "last_error": u.last_error,
                }
                for u in self.upstreams
            },
        }
