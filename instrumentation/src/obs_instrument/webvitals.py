"""Web Vitals ingest: Next.js `useReportWebVitals` beacons (JSON, usually sent by navigator.sendBeacon
as text/plain) become histograms of LCP, CLS, INP, FCP and TTFB by page template and device type.

Accepted body (extra fields are ignored, `entries`/`attribution` included):
    {"name": "LCP", "value": 1834.2, "id": "v5-...", "rating": "good", "page": "/chat/[id]"}
`value` is in milliseconds except CLS (unitless). `page` is the route template (Pages Router:
`router.pathname`) or a path (App Router: `usePathname()`). Only configured route templates become page
labels; every other page is `other`, so a client sending random paths cannot push real pages out of their
labels. Device type comes from the User-Agent. Every rejection answers 4xx (never 5xx: a hostile beacon
must not burn the API's error budget) and counts `web_vitals_rejected_total{reason}`.

The rate limit is per client address: the TCP peer, or with `trusted_proxy_hops=N` the N-th
`X-Forwarded-For` entry from the right (the one the outermost of N trusted proxies appended; entries to
its left are whatever the client sent).
"""
from __future__ import annotations

import ipaddress
import json
import math
import re
import threading
import time
from collections import OrderedDict

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import Counter, Histogram

# Buckets around each vital's "good" / "needs improvement" thresholds (web.dev).
BUCKETS = {
    "LCP": (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0),
    "FCP": (0.25, 0.5, 0.75, 1.0, 1.4, 1.8, 2.2, 3.0, 4.0, 6.0, 10.0),
    "TTFB": (0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.2, 1.8, 2.5, 4.0, 8.0),
    "INP": (0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0, 5.0),
    "CLS": (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.35, 0.5, 1.0, 2.0),
}
METRIC_NAMES = {"LCP": "web_vitals_lcp_seconds", "FCP": "web_vitals_fcp_seconds", "TTFB": "web_vitals_ttfb_seconds",
                "INP": "web_vitals_inp_seconds", "CLS": "web_vitals_cls"}
# Largest plausible value per vital (ms, CLS unitless); beyond it the beacon is rejected as invalid.
MAX_VALUE = {"LCP": 120_000, "FCP": 120_000, "TTFB": 120_000, "INP": 60_000, "CLS": 50}
RATINGS = {"good", "needs-improvement", "poor"}
REASONS = ("too_large", "unsupported_media_type", "invalid_json", "not_an_object", "unknown_metric",
           "invalid_value", "invalid_field", "rate_limited", "origin_not_allowed")
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._~\-\[\]/%]*$")
MAX_DEPTH = 8  # beacons are flat objects with one level of `entries`/`attribution`; 8 leaves room
MAX_DIGITS = 30  # longer integer literals are read as floats (so 400 digits is inf, then invalid_value)
OTHER = "other"
_DIGITS = re.compile(r"^[0-9]{1,12}$")
_TABLET = re.compile(r"iPad|Tablet|PlayBook|Silk|Kindle|(Android(?!.*Mobile))", re.I)
_MOBILE = re.compile(r"Mobi|iPhone|iPod|Android.*Mobile|Windows Phone|BlackBerry|Opera Mini", re.I)


def device_type(user_agent: str) -> str:
    if not user_agent:
        return "unknown"
    if _TABLET.search(user_agent):
        return "tablet"
    if _MOBILE.search(user_agent):
        return "mobile"
    return "desktop"


class PageTemplates:
    """Map a path or template to one of the configured route templates, or `other`."""

    def __init__(self, templates: list[str] | None):
        self.exact: set[str] = set()
        self.patterns: list[tuple[re.Pattern, str]] = []
        for t in templates or []:
            t = "/" + t.strip().strip("/") if t.strip() != "/" else "/"
            self.exact.add(t)
            rx = ""
            for seg in t.strip("/").split("/") if t != "/" else []:
                if seg.startswith("[[...") or seg.startswith("[..."):
                    rx += r"(?:/.*)?" if seg.startswith("[[") else r"/.+"
                elif seg.startswith("[") and seg.endswith("]"):
                    rx += r"/[^/]+"
                else:
                    rx += "/" + re.escape(seg)
            self.patterns.append((re.compile("^" + (rx or "/") + "/?$"), t))

    def __call__(self, page: str) -> str | None:
        """None when `page` is not a usable path (then the beacon is rejected)."""
        if not isinstance(page, str) or not page.startswith("/") or len(page) > 512:
            return None
        page = page.split("?", 1)[0].split("#", 1)[0]
        if not _SAFE_PATH.match(page):
            return None
        if page in self.exact:
            return page
        for rx, t in self.patterns:
            if rx.match(page):
                return t
        return OTHER


class TokenBuckets:
    """Per-client token buckets (LRU-bounded) plus one global bucket."""

    def __init__(self, rate: float, burst: float, global_rate: float, max_clients: int = 10_000):
        self.rate, self.burst, self.global_rate = rate, burst, global_rate
        self.max_clients = max_clients
        self.clients: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.global_state = (global_rate * 2, time.monotonic())
        self.lock = threading.Lock()

    @staticmethod
    def _take(state, rate, burst, now):
        tokens, last = state
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens < 1:
            return False, (tokens, now)
        return True, (tokens - 1, now)

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self.lock:
            state = self.clients.pop(key, (self.burst, now))
            ok, state = self._take(state, self.rate, self.burst, now)
            self.clients[key] = state
            if len(self.clients) > self.max_clients:
                self.clients.popitem(last=False)
            if not ok:
                return False
            ok, self.global_state = self._take(self.global_state, self.global_rate, self.global_rate * 2, now)
            return ok


def _depth_ok(body: bytes) -> bool:
    """Nesting depth of a JSON text, counted outside strings, within MAX_DEPTH (json.loads would recurse
    into RecursionError on deep input, which must be a 400, not a 500)."""
    depth, in_str, esc = 0, False, False
    for b in body:
        if in_str:
            if esc:
                esc = False
            elif b == 0x5C:
                esc = True
            elif b == 0x22:
                in_str = False
        elif b == 0x22:
            in_str = True
        elif b in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif b in (0x5D, 0x7D):
            depth -= 1
    return True


def _parse_int(text: str):
    return int(text) if len(text) <= MAX_DIGITS else float(text)


def parse_beacon(body: bytes):
    """The decoded JSON, or None when it is not JSON we take (malformed, too deep)."""
    if not _depth_ok(body):
        return None
    try:
        return json.loads(body, parse_int=_parse_int)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def proxy_hops_from_env(env) -> int:
    """OBS_WEBVITALS_TRUSTED_PROXY_HOPS, checked: a wrong value stops the app with the fix in the message."""
    raw = (env.get("OBS_WEBVITALS_TRUSTED_PROXY_HOPS") or "0").strip()
    if not (raw.isascii() and raw.isdigit() and int(raw) <= 10):
        raise ValueError(f"OBS_WEBVITALS_TRUSTED_PROXY_HOPS must be a whole number from 0 to 10 (how many "
                         f"reverse proxies in front of the app append X-Forwarded-For), got {raw[:20]!r}")
    return int(raw)


class WebVitals:
    def __init__(self, obs, pages: list[str] | None = None, rate_per_client: float = 2.0, burst: float = 20,
                 global_rate: float = 500.0, max_body_bytes: int = 4096, allowed_origins: list[str] | None = None,
                 trusted_proxy_hops: int = 0):
        if isinstance(trusted_proxy_hops, bool) or not isinstance(trusted_proxy_hops, int) \
                or not 0 <= trusted_proxy_hops <= 10:
            raise ValueError(f"web_vitals trusted_proxy_hops must be an integer from 0 to 10 (the number of "
                             f"reverse proxies in front of the app that append X-Forwarded-For), got "
                             f"{trusted_proxy_hops!r}")
        r, env = obs.metrics.registry, obs.settings.environment
        self.env = env
        self.hist = {k: Histogram(METRIC_NAMES[k], f"Web Vitals {k} from real browsers"
                                  + (" (unitless)" if k == "CLS" else " in seconds"),
                                  ["page", "device_type", "environment"], buckets=BUCKETS[k], registry=r)
                     for k in BUCKETS}
        self.accepted = Counter("web_vitals_beacons", "Web Vitals beacons accepted", ["metric", "environment"],
                                registry=r)
        self.rejected = Counter("web_vitals_rejected", "Web Vitals beacons rejected with a 4xx, by reason",
                                ["reason", "environment"], registry=r)
        for reason in REASONS:
            self.rejected.labels(reason, env)
        self.pages = PageTemplates(pages)
        self.limiter = TokenBuckets(rate_per_client, burst, global_rate)
        self.max_body = max_body_bytes
        self.allowed_origins = set(allowed_origins or [])
        self.trusted_proxy_hops = trusted_proxy_hops

    def _reject(self, status: int, reason: str, origin: str | None) -> Response:
        self.rejected.labels(reason, self.env).inc()
        return Response(json.dumps({"error": reason}), status_code=status, media_type="application/json",
                        headers=self._cors(origin))

    def _cors(self, origin: str | None) -> dict:
        if origin and (origin in self.allowed_origins or "*" in self.allowed_origins):
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {}

    def _client(self, request: Request) -> str:
        peer = request.client.host if request.client else "unknown"
        if not self.trusted_proxy_hops:
            return peer
        # Every proxy appends the address it saw; only the trusted ones' entries are believed. Fewer
        # entries than trusted hops means the request did not come through them: key by the peer.
        entries = [e.strip() for v in request.headers.getlist("x-forwarded-for") for e in v.split(",")]
        if len(entries) < self.trusted_proxy_hops:
            return peer
        candidate = entries[-self.trusted_proxy_hops]
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            return peer

    async def handle(self, request: Request) -> Response:
        origin = request.headers.get("origin")
        if self.allowed_origins and origin and origin not in self.allowed_origins and "*" not in self.allowed_origins:
            return self._reject(403, "origin_not_allowed", origin)
        if not self.limiter.allow(self._client(request)):
            return self._reject(429, "rate_limited", origin)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ("application/json", "text/plain", ""):
            return self._reject(415, "unsupported_media_type", origin)
        declared = request.headers.get("content-length")
        # ASCII digits only: str.isdigit() also takes "²", which int() then refuses (a 500).
        if declared is not None and (not _DIGITS.match(declared) or int(declared) > self.max_body):
            return self._reject(413, "too_large", origin)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.max_body:
                return self._reject(413, "too_large", origin)
        data = parse_beacon(bytes(body))
        if data is None:
            return self._reject(400, "invalid_json", origin)
        if not isinstance(data, dict):
            return self._reject(422, "not_an_object", origin)
        name = data.get("name")
        if not isinstance(name, str) or name not in BUCKETS:
            return self._reject(422, "unknown_metric", origin)
        value = data.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value < 0 or value > MAX_VALUE[name]:
            return self._reject(422, "invalid_value", origin)
        rating = data.get("rating")
        vid = data.get("id")
        if (rating is not None and (not isinstance(rating, str) or rating not in RATINGS)) or (vid is not None and (not isinstance(vid, str) or len(vid) > 128)):
            return self._reject(422, "invalid_field", origin)
        page = self.pages(data.get("page", data.get("pathname", "/")))
        if page is None:
            return self._reject(422, "invalid_field", origin)
        device = device_type(request.headers.get("user-agent", ""))
        self.hist[name].labels(page, device, self.env).observe(value if name == "CLS" else value / 1000.0)
        self.accepted.labels(name, self.env).inc()
        return Response(status_code=204, headers=self._cors(origin))

    async def preflight(self, request: Request) -> Response:
        origin = request.headers.get("origin")
        headers = self._cors(origin)
        if headers:
            headers.update({"Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Headers": "content-type",
                            "Access-Control-Max-Age": "86400"})
        return Response(status_code=204, headers=headers)

    def router(self, path: str = "/vitals") -> APIRouter:
        router = APIRouter()
        router.add_api_route(path, self.handle, methods=["POST"], include_in_schema=False)
        router.add_api_route(path, self.preflight, methods=["OPTIONS"], include_in_schema=False)
        return router
