"""The GitHub webhook receiver of ``obs-bridge github-webhook``: a public endpoint, so it authenticates
(X-Hub-Signature-256, constant time), bounds bodies (413), rate-limits (429) and answers well within
GitHub's 10 s. A verified workflow_run / workflow_job delivery goes into the GitHub bridge's own ledger
(github_ledger.py), so the poller and the receiver count each run attempt and job once.

``Receiver.handle`` has no I/O (a unit test drives it with a fake clock); ``serve`` puts it on HTTP."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Callable, Mapping, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from obs_bridges import config, log
from obs_bridges.github_api import Job, Run
from obs_bridges.github_webhooks import (DELIVERY_HEADER, EVENT_HEADER, MAX_BODY_BYTES, SIGNATURE_HEADER,
                                         DeliveryLog, Ignored, JobEvent, Ping, RunEvent, decode_body,
                                         parse_delivery, verify_signature)
from obs_bridges.httpserver import QuietHandler, make_http_server, send_json
from obs_bridges.parsing import ParseError

PATH = "/webhook"
DEFAULT_PORT = 9605
# A delivery must be read whole within this (GitHub gives up after 10 s): a slow sender cannot hold a thread.
READ_DEADLINE_SECONDS = 8.0
MAX_CONNECTIONS = 64
# Bounded label values: a header value outside these is "other" (it is untrusted before the signature).
EVENTS = ("workflow_run", "workflow_job", "ping")
RESULTS = ("counted", "seeded", "duplicate", "redelivery", "updated", "stale", "ignored", "unknown_repo", "pong",
           "bad_signature", "malformed", "too_large", "rate_limited", "no_secret", "bad_request", "error")
LAG_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 300, 1800)
# GitHub never retries a refused delivery, so the limit must pass its real bursts (a 256-job matrix is ~770
# workflow_job deliveries in seconds) and only stop a sustained flood: 200/s on average, 10 s of it at once.
DEFAULT_RPS = 200.0
BURST_SECONDS = 10
# Refusals are logged at most once per reason per this many seconds, with how many there were since.
LOG_EVERY_SECONDS = 60.0


class Ledger(Protocol):
    """What the receiver needs of the GitHub bridge (github.GitHubExporter)."""

    def accepts_repo(self, repo: str) -> bool: ...
    def delivered_run(self, repo: str, run: Run) -> str: ...
    def delivered_job(self, repo: str, run_id: int, job_id: int, job: Job, workflow_name: str) -> str: ...
    def request_render(self) -> None: ...


@dataclass(frozen=True)
class ReceiverSettings:
    listen_addr: str
    port: int
    secret: config.SecretSource
    max_rps: float
    burst: int
    max_body: int = MAX_BODY_BYTES


def load_settings(env: Mapping[str, str], common: config.Common) -> ReceiverSettings:
    """GITHUB_WEBHOOK_* settings. The secret is GITHUB_WEBHOOK_SECRET(_FILE); in demo mode only, while that
    is unset, missing or empty, the simulator's per-start secret (OBS_DEMO_GITHUB_WEBHOOK_SECRET_FILE)."""
    secret = config.SecretSource(env, "GITHUB_WEBHOOK_SECRET")
    if common.demo and secret.read().state in ("unset", "missing", "empty"):
        demo = config.SecretSource(env, "OBS_DEMO_GITHUB_WEBHOOK_SECRET")
        if demo.configured:
            secret = demo
    if not secret.configured:
        raise config.ConfigError("the webhook receiver needs its secret: set GITHUB_WEBHOOK_SECRET_FILE to a file "
                                 "holding the secret entered in GitHub's webhook settings (or GITHUB_WEBHOOK_SECRET)")
    rps = config.env_float(env, "GITHUB_WEBHOOK_MAX_REQUESTS_PER_SECOND", DEFAULT_RPS, 1, 10000)
    return ReceiverSettings(
        listen_addr=(env.get("GITHUB_WEBHOOK_LISTEN_ADDR") or "").strip() or common.listen_addr,
        port=config.env_int(env, "GITHUB_WEBHOOK_PORT", DEFAULT_PORT, 1, 65535),
        secret=secret, max_rps=rps, burst=max(1, int(BURST_SECONDS * rps)))


class TokenBucket:
    """``rate`` requests per second on average, bursts of ``burst``; thread-safe."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self._tokens, self._at = float(burst), clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


@dataclass
class Response:
    code: int
    body: dict
    headers: dict = field(default_factory=dict)
    close: bool = False  # the body was not read: the connection cannot be reused

    def bytes(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":")).encode()


class Receiver:
    def __init__(self, ledger: Ledger, settings: ReceiverSettings, registry: CollectorRegistry, *,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic):
        self.ledger, self.settings, self.clock = ledger, settings, clock
        self.bucket = TokenBucket(settings.max_rps, settings.burst, monotonic)
        self.deliveries = DeliveryLog(clock=clock)
        self.log = log.get("obs_bridges.github.webhook")
        self.throttled = log.Throttled(self.log, clock, LOG_EVERY_SECONDS)
        self.total = Counter("github_webhook_deliveries", "Webhook requests by event and what became of them.",
                             ["event", "result"], registry=registry)
        self.last = Gauge("github_webhook_last_delivery_timestamp_seconds",
                          "When the last delivery with a valid signature arrived.", registry=registry)
        self.lag = Histogram("github_webhook_delivery_lag_seconds", "From a run's updated_at to its completed "
                             "delivery's arrival (GitHub's delivery delay).", buckets=LAG_BUCKETS, registry=registry)
        for ev in (*EVENTS, "other"):  # the refusals exist from the start: rate() and alerts see 0, not nothing
            for res in ("bad_signature", "too_large", "rate_limited"):
                self.total.labels(ev, res)

    def handle(self, method: str, path: str, headers: Mapping[str, str],
               read: Callable[[int], bytes | None]) -> Response:
        """One request. ``read(n)`` returns the body's n bytes, or None if the sender was too slow."""
        path = path.split("?", 1)[0]
        if path in ("/healthz", "/health") and method in ("GET", "HEAD"):
            return Response(200, {"status": "ok"})
        r = self._handle(method, path, headers, read)
        self.ledger.request_render()  # /metrics shows the delivery counters now, not at the next poll
        return r

    def _handle(self, method: str, path: str, headers: Mapping[str, str],
                read: Callable[[int], bytes | None]) -> Response:
        if path != PATH:
            return Response(404, {"error": f"not found: deliveries go to POST {PATH}"}, close=method == "POST")
        if method != "POST":
            return Response(405, {"error": f"{PATH} accepts POST only"}, {"Allow": "POST"})
        event = headers.get(EVENT_HEADER) or ""
        ev = event if event in EVENTS else "other"
        if headers.get("Transfer-Encoding") or headers.get("Content-Length") is None:
            return self._refuse(ev, "bad_request", 411, "a delivery needs Content-Length", close=True)
        try:
            length = int(headers.get("Content-Length", ""))
            if length < 0:
                raise ValueError
        except ValueError:
            return self._refuse(ev, "bad_request", 400, "Content-Length is not a number", close=True)
        if length > self.settings.max_body:
            return self._refuse(ev, "too_large", 413, f"body over {self.settings.max_body} bytes", close=True)
        if not self.bucket.take():
            r = self._refuse(ev, "rate_limited", 429, "too many requests", close=True)
            r.headers["Retry-After"] = "1"
            return r
        body = read(length)
        if body is None:
            return self._refuse(ev, "bad_request", 408, "the body did not arrive in time", close=True)
        secret = self.settings.secret.read()
        if secret.value is None:
            self._note("no_secret", f"webhook delivery refused: the receiver has no secret ({secret.problem})")
            self.total.labels(ev, "no_secret").inc()
            return Response(503, {"error": "the receiver has no webhook secret configured"})
        if not verify_signature(secret.value.encode(), body, headers.get(SIGNATURE_HEADER)):
            return self._refuse(ev, "bad_signature", 401, f"missing or wrong {SIGNATURE_HEADER}")
        return self._verified(ev, event, headers, body)

    def _verified(self, ev: str, event: str, headers: Mapping[str, str], body: bytes) -> Response:
        now = self.clock()
        self.last.set(now)
        delivery = (headers.get(DELIVERY_HEADER) or "").strip()
        if not delivery or len(delivery) > 64:
            return self._refuse(ev, "bad_request", 400, f"{DELIVERY_HEADER} is missing or too long")
        if not self.deliveries.first_time(delivery):
            self.total.labels(ev, "redelivery").inc()
            return Response(200, {"result": "redelivery"})
        try:
            d = parse_delivery(event, decode_body(headers.get("Content-Type"), body))
            result, code = self._apply(d, now)
        except ParseError as e:
            return self._refuse(ev, "malformed", 400, f"not a {ev} payload: {e}")
        except Exception:  # a bug must not lose the delivery: forget it so GitHub's redelivery is processed
            self.deliveries.forget(delivery)
            self.log.exception("webhook delivery failed", extra=log.kv(event=ev))
            self.total.labels(ev, "error").inc()
            return Response(500, {"error": "internal error"})
        self.total.labels(ev, result).inc()
        self.log.debug("webhook delivery", extra=log.kv(event=ev, result=result))
        return Response(code, {"result": result})

    def _apply(self, d, now: float) -> tuple[str, int]:
        if isinstance(d, Ping):
            self.log.info("webhook ping: GitHub reached the receiver", extra=log.kv(hook_id=d.hook_id))
            return "pong", 200
        if isinstance(d, Ignored):
            return "ignored", 202
        if not self.ledger.accepts_repo(d.repo):
            return "unknown_repo", 202
        if isinstance(d, RunEvent):
            result = self.ledger.delivered_run(d.repo, d.run)
            if result == "counted" and d.run.updated is not None:
                self.lag.observe(max(0.0, now - d.run.updated))
            return result, 200
        assert isinstance(d, JobEvent)
        return self.ledger.delivered_job(d.repo, d.run_id, d.job_id, d.job, d.workflow_name), 200

    def _refuse(self, ev: str, result: str, code: int, why: str, close: bool = False) -> Response:
        self.total.labels(ev, result).inc()
        self._note(result, f"webhook request refused ({code}): {why}")
        return Response(code, {"error": why}, close=close)

    def _note(self, reason: str, msg: str) -> None:
        self.throttled.warning(reason, msg)


def serve(rc: Receiver) -> ThreadingHTTPServer:
    class Handler(QuietHandler):
        timeout = READ_DEADLINE_SECONDS  # per socket read; _read bounds the whole body too

        def _read(self, n: int) -> bytes | None:
            deadline, chunks, got = time.monotonic() + READ_DEADLINE_SECONDS, [], 0
            try:
                while got < n:
                    if time.monotonic() > deadline:
                        return None
                    chunk = self.rfile.read1(min(65536, n - got))
                    if not chunk:
                        return None
                    chunks.append(chunk)
                    got += len(chunk)
            except OSError:
                return None
            return b"".join(chunks)

        def _do(self):
            send_json(self, rc.handle(self.command, self.path, self.headers, self._read))

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _do

    return make_http_server(rc.settings.listen_addr, rc.settings.port, Handler, max_connections=MAX_CONNECTIONS)
