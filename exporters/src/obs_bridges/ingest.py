"""``obs-bridge ingest``: the one public entry for what the platforms push (issue 16). Every route checks,
in this order: route and method (404/405), framing and size (411/413), the route's rate limit (429), the
in-flight body budget (503 + Retry-After, so a flood cannot grow memory), a body that arrives in time (408),
then the sender's credential (401), and only then parses or forwards.

    POST /vercel/logs                 Vercel log drain: x-vercel-signature -> OTLP log records -> collector
    GET  /vercel/logs                 answers Vercel's x-vercel-verify check
    POST /vercel/speed-insights       Speed Insights drain: x-vercel-signature -> web_vitals_* on /metrics
    POST /vercel/v1/traces            trace drain (OTLP/HTTP): x-vercel-signature -> collector /v1/traces
    POST /supabase/v1/logs            Supabase OTLP drain: Bearer token -> collector's Supabase receiver
    POST /supabase/loki/api/v1/push   Supabase Loki drain: Bearer token -> as OTLP to the same receiver
    POST /github/webhook              -> the GitHub bridge's receiver (which checks X-Hub-Signature-256)

``Ingest.handle`` holds the logic with no sockets (a unit test drives it); ingest_server.py puts it on HTTP."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import requests
from requests.structures import CaseInsensitiveDict
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from obs_bridges import log, supabase_loki, vercel_drain
from obs_bridges.github_receiver import TokenBucket
from obs_bridges.ingest_settings import IngestSettings, SecretsProblem, match_token, supabase_tokens, vercel_secrets
from obs_bridges.otlp_logs import LogRecord, OtlpLogSender, OtlpSendError, Resource, normalise_level
from obs_bridges.parsing import ParseError

MiB = 1024 * 1024


@dataclass(frozen=True)
class Route:
    name: str  # the metrics' `route` label
    path: str
    max_body: int
    platform: str


ROUTES = {r.path: r for r in (
    Route("vercel_logs", "/vercel/logs", vercel_drain.MAX_BODY_BYTES, "vercel"),
    Route("vercel_speed_insights", "/vercel/speed-insights", 4 * MiB, "vercel"),
    Route("vercel_traces", "/vercel/v1/traces", 4 * MiB, "vercel"),
    Route("supabase_otlp", "/supabase/v1/logs", 4 * MiB, "supabase"),
    Route("supabase_loki", "/supabase/loki/api/v1/push", 4 * MiB, "supabase"),
    # GitHub's own receiver refuses more than 1 MiB (github_webhooks.MAX_BODY_BYTES); refuse it here first.
    Route("github_webhook", "/github/webhook", 1 * MiB, "github"),
)}
# not_configured: the route is off here (no secret variable set); no_secret: its secret file cannot be read.
RESULTS = ("accepted", "bad_signature", "unauthorized", "no_secret", "too_large", "rate_limited", "busy", "malformed",
           "not_configured", "upstream_error", "bad_request", "timeout")
# Request headers passed on to an upstream (everything else, Authorization first, stops here).
FORWARD_HEADERS = ("content-type", "content-encoding", "user-agent", "x-github-event", "x-github-delivery",
                   "x-github-hook-id", "x-hub-signature-256", "x-hub-signature")
UPSTREAM_TIMEOUT = 10.0
UPSTREAM_BODY_MAX = 64 * 1024
RETRY_AFTER_BUSY = "2"
# Batches decoded at once (measured: exporters/bench/bench_ingest_flood.py), and how long one waits its turn.
DECODE_SLOTS = 2
DECODE_WAIT_SECONDS = 5.0
LOG_EVERY_SECONDS = 60.0


class BodyError(Exception):
    """The body could not be read: `status` is 408 (too slow), 411 (no framing), 413 (too large) or 400."""

    def __init__(self, status: int, why: str):
        super().__init__(why)
        self.status = status


@dataclass
class Response:
    code: int
    body: bytes | dict
    headers: dict = field(default_factory=dict)
    close: bool = False

    def bytes(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else json.dumps(self.body, separators=(",", ":")).encode()


class Budget:
    """Bytes of request bodies held at once; take() refuses (never waits) when they would not fit."""

    def __init__(self, total: int):
        self.total, self.used = total, 0
        self._lock = threading.Lock()

    def take(self, n: int) -> bool:
        with self._lock:
            if self.used + n > self.total:
                return False
            self.used += n
            return True

    def give(self, n: int) -> None:
        with self._lock:
            self.used -= n


# The body reader the server passes to handle(): read_body(max_bytes) -> bytes, or BodyError.
ReadBody = Callable[[int], bytes]


class Ingest:
    def __init__(self, settings: IngestSettings, *, registry: CollectorRegistry | None = None,
                 sender: OtlpLogSender | None = None, session: requests.Session | None = None,
                 speed_insights=None, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic):
        self.settings, self.clock = settings, clock
        self.registry = registry or CollectorRegistry()
        self.session = session or requests.Session()
        self.sender = sender or OtlpLogSender(settings.otlp_endpoint, session=self.session)
        self.speed_insights = speed_insights
        self.buckets = {r.name: TokenBucket(settings.max_rps, settings.burst, monotonic) for r in ROUTES.values()}
        self.budget = Budget(settings.inflight_bytes)
        self.decoding = threading.BoundedSemaphore(DECODE_SLOTS)
        self.log = log.get("obs_bridges.ingest")
        self.throttled = log.Throttled(self.log, clock, LOG_EVERY_SECONDS)
        self.requests = Counter("ingest_requests", "Pushes to the public ingest by route and what became of them.",
                                ["route", "result"], registry=self.registry)
        self.records = Counter("ingest_log_records", "Log records the ingest decoded and the collector accepted.",
                               ["platform"], registry=self.registry)
        self.last = Gauge("ingest_last_accepted_timestamp_seconds", "When the route last accepted a push.",
                          ["route"], registry=self.registry)
        self.inflight = Gauge("ingest_inflight_body_bytes", "Request body bytes held right now.",
                              registry=self.registry)
        self.inflight.set_function(lambda: self.budget.used)
        for r in ROUTES.values():  # every refusal series exists from the start: rate() sees 0, not nothing
            for res in RESULTS:
                self.requests.labels(r.name, res)
        self.records.labels("vercel")

    # ------------------------------------------------------------------------------------------ the front
    def metrics_bytes(self) -> bytes:
        return generate_latest(self.registry)

    def health(self) -> dict:
        return {"status": "ok", "routes": {r.name: self._configured(r) for r in ROUTES.values()}}

    def handle(self, method: str, path: str, headers: Mapping[str, str], read_body: ReadBody) -> Response:
        path = path.split("?", 1)[0]
        headers = CaseInsensitiveDict(dict(headers.items()))
        if path in ("/healthz", "/health") and method in ("GET", "HEAD"):
            return Response(200, {"status": "ok"})
        route = ROUTES.get(path)
        if route is None:
            return Response(404, {"error": "not found: see the routes in docs/logging.md (Platform logs)"},
                            close=method not in ("GET", "HEAD"))
        if method == "GET" and route.name == "vercel_logs":
            return self._vercel_verify()
        if method != "POST":
            return Response(405, {"error": f"{path} accepts POST only"}, {"Allow": "POST"}, close=True)
        if not self._configured(route):
            return self._refuse(route, "not_configured", 404, f"{path} is not configured on this ingest", close=True)
        length = _declared_length(headers)
        if length is not None and length > route.max_body:
            return self._refuse(route, "too_large", 413, f"body over {route.max_body} bytes", close=True)
        if not self.buckets[route.name].take():
            return self._refuse(route, "rate_limited", 429, "too many requests", {"Retry-After": "1"}, close=True)
        hold = route.max_body if length is None else length
        if not self.budget.take(hold):
            return self._refuse(route, "busy", 503, "busy: retry later", {"Retry-After": RETRY_AFTER_BUSY}, close=True)
        try:
            try:
                body = read_body(route.max_body)
            except BodyError as e:
                result = {408: "timeout", 413: "too_large"}.get(e.status, "bad_request")
                return self._refuse(route, result, e.status, str(e), close=True)
            return self._route(route, headers, body)
        finally:
            self.budget.give(hold)

    def _configured(self, route: Route) -> bool:
        s = self.settings
        if route.platform == "vercel":
            return s.vercel_secrets is not None
        if route.platform == "supabase":
            return s.supabase_tokens is not None
        return s.github_webhook_url is not None

    def _route(self, route: Route, headers: Mapping[str, str], body: bytes) -> Response:
        if route.platform == "vercel":
            refused = self._check_vercel(route, headers, body)
            if refused:
                return refused
            if route.name in ("vercel_logs", "vercel_speed_insights"):
                # A decoded batch is several times its body in Python objects: decode a few at a time.
                if not self.decoding.acquire(timeout=DECODE_WAIT_SECONDS):
                    return self._refuse(route, "busy", 503, "busy: retry later", {"Retry-After": RETRY_AFTER_BUSY})
                try:
                    if route.name == "vercel_logs":
                        return self._vercel_logs(route, headers, body)
                    return self._speed_insights(route, headers, body)
                finally:
                    self.decoding.release()
            return self._forward(route, self.settings.otlp_endpoint + "/v1/traces", headers, body)
        if route.platform == "supabase":
            project = self._check_supabase(route, headers)
            if isinstance(project, Response):
                return project
            url = self.settings.supabase_otlp_url
            if route.name == "supabase_loki":  # the collector has no Loki receiver: the same records as OTLP
                return self._supabase_loki(route, url, headers, body, project)
            return self._forward(route, url, headers, body, {"X-Obs-Project": project})
        return self._forward(route, self.settings.github_webhook_url or "", headers, body, passthrough=True)

    # ------------------------------------------------------------------------------------------ credentials
    def _check_vercel(self, route: Route, headers: Mapping[str, str], body: bytes) -> Response | None:
        try:
            secrets = vercel_secrets(self.settings.vercel_secrets)
        except SecretsProblem as e:
            self._note("no_secret", f"Vercel drain refused: {e}")
            return self._count(route, "no_secret", Response(503, {"error": "the drain secret is not readable"}))
        given = headers.get(vercel_drain.SIGNATURE_HEADER)
        ok = False
        for secret in secrets:  # every secret is tried: which one matched does not show in the timing
            ok = vercel_drain.verify_signature(secret, body, given) or ok
        if not ok:
            return self._refuse(route, "bad_signature", 401, f"missing or wrong {vercel_drain.SIGNATURE_HEADER}")
        return None

    def _check_supabase(self, route: Route, headers: Mapping[str, str]) -> str | Response:
        try:
            tokens = supabase_tokens(self.settings.supabase_tokens)
        except SecretsProblem as e:
            self._note("no_secret", f"Supabase drain refused: {e}")
            return self._count(route, "no_secret", Response(503, {"error": "the drain tokens are not readable"}))
        auth = headers.get("Authorization") or ""
        scheme, _, token = auth.strip().partition(" ")
        project = match_token(tokens, token.strip().encode()) if scheme.lower() == "bearer" and token else None
        if project is None:
            return self._refuse(route, "unauthorized", 401, "missing or wrong bearer token",
                                {"WWW-Authenticate": 'Bearer realm="obs-ingest"'})
        return project

    def _vercel_verify(self) -> Response:
        src = self.settings.vercel_verify
        value = src.read().value if src is not None else None
        if not value:
            return Response(404, {"error": "no Vercel verification token configured (VERCEL_DRAIN_VERIFY_TOKEN_FILE)"})
        return Response(200, {"status": "ok"}, vercel_drain.verification_headers(value))

    # ------------------------------------------------------------------------------------------ the work
    def _vercel_logs(self, route: Route, headers: Mapping[str, str], body: bytes) -> Response:
        try:
            records = vercel_drain.parse_batch(headers.get("Content-Type"), body)
        except ParseError as e:
            return self._refuse(route, "malformed", 400, f"not a Vercel log drain batch: {e}")
        groups: dict[Resource, list[LogRecord]] = {}
        for r in records:
            # Speed Insights records name their project by id only; the log drain says which name it has.
            if self.speed_insights is not None and r.project != "unknown" and r.metadata.get("project_id"):
                self.speed_insights.project_names.learn(r.metadata["project_id"], r.project)
            res = Resource(service_name=r.project, environment=r.environment, platform="vercel", project=r.project,
                           source=r.source, level=normalise_level(r.level))
            groups.setdefault(res, []).append(LogRecord(round(r.time * 1000) * 1_000_000, r.message, r.metadata, r.trace_id,
                                                        r.span_id))
        try:
            sent = self.sender.send(groups)
        except OtlpSendError as e:
            self._note("upstream_error", f"Vercel logs not delivered to the collector: {e}")
            return self._count(route, "upstream_error",
                               Response(503, {"error": "the collector is unavailable: retry"}, {"Retry-After": "5"}))
        self.records.labels("vercel").inc(sent)
        return self._accepted(route, {"result": "accepted", "records": sent})

    def _speed_insights(self, route: Route, headers: Mapping[str, str], body: bytes) -> Response:
        if self.speed_insights is None:
            return self._refuse(route, "not_configured", 404, "Speed Insights is not enabled on this ingest")
        try:
            n = self.speed_insights.record(body, headers.get("Content-Type"))
        except ParseError as e:
            code = getattr(e, "status", 400)
            return self._refuse(route, "too_large" if code == 413 else "malformed", code,
                                f"not a Speed Insights drain batch: {e}")
        return self._accepted(route, {"result": "accepted", "records": n})

    def _supabase_loki(self, route: Route, url: str, headers: Mapping[str, str], body: bytes,
                       project: str) -> Response:
        if not self.decoding.acquire(timeout=DECODE_WAIT_SECONDS):
            return self._refuse(route, "busy", 503, "busy: retry later", {"Retry-After": RETRY_AFTER_BUSY})
        try:
            try:
                otlp, _ = supabase_loki.to_otlp(body, headers.get("Content-Encoding"))
            except ParseError as e:
                return self._refuse(route, "malformed", 400, str(e))
            return self._forward(route, url, {}, otlp, {"Content-Type": "application/json", "X-Obs-Project": project})
        finally:
            self.decoding.release()

    def _forward(self, route: Route, url: str, headers: Mapping[str, str], body: bytes,
                 extra: Mapping[str, str] | None = None, passthrough: bool = False) -> Response:
        out = {k: v for k in FORWARD_HEADERS if (v := headers.get(k)) is not None}
        out.update(extra or {})
        try:
            resp = self.session.post(url, data=bytes(body), headers=out, timeout=UPSTREAM_TIMEOUT, stream=True)
            data = resp.raw.read(UPSTREAM_BODY_MAX, decode_content=True) if passthrough else b""
            resp.close()
        except requests.RequestException as e:
            self._note("upstream_error", f"{route.name}: upstream unreachable ({type(e).__name__})")
            return self._count(route, "upstream_error",
                               Response(503, {"error": "the receiver behind this route is unavailable: retry"},
                                        {"Retry-After": "5"}))
        code = resp.status_code
        if passthrough:  # GitHub's receiver already said what it did; its answer goes back as it is
            result = "accepted" if code < 300 else ("bad_signature" if code == 401 else "upstream_error")
            self.requests.labels(route.name, result).inc()
            if code < 300:
                self.last.labels(route.name).set(self.clock())
            return Response(code, data or b"{}", {"Content-Type": resp.headers.get("Content-Type",
                                                                                  "application/json")})
        if code < 300:
            return self._accepted(route, {"result": "accepted"})
        if code in (400, 415):
            return self._refuse(route, "malformed", 400, f"the collector refused the payload ({code})")
        self._note("upstream_error", f"{route.name}: the collector answered {code}")
        return self._count(route, "upstream_error",
                           Response(503, {"error": "the collector is unavailable: retry"}, {"Retry-After": "5"}))

    # ------------------------------------------------------------------------------------------ accounting
    def _accepted(self, route: Route, body: dict) -> Response:
        self.last.labels(route.name).set(self.clock())
        return self._count(route, "accepted", Response(200, body))

    def _count(self, route: Route, result: str, r: Response) -> Response:
        self.requests.labels(route.name, result).inc()
        return r

    def _refuse(self, route: Route, result: str, code: int, why: str, headers: dict | None = None,
                close: bool = False) -> Response:
        self._note(result, f"{route.path} refused ({code}): {why}")
        return self._count(route, result, Response(code, {"error": why}, headers or {}, close=close))

    def _note(self, reason: str, msg: str) -> None:
        self.throttled.warning(reason, msg)


def _declared_length(headers: Mapping[str, str]) -> int | None:
    raw = headers.get("Content-Length")
    if raw is None or headers.get("Transfer-Encoding"):
        return None
    try:
        n = int(raw)
    except ValueError:
        return None
    return n if n >= 0 else None
