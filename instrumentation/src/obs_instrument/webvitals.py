"""Web Vitals ingest: Next.js `useReportWebVitals` beacons (JSON, usually sent by navigator.sendBeacon
as text/plain) become histograms of LCP, CLS, INP, FCP and TTFB by page template and device type.

Accepted body (extra fields are ignored, `entries`/`attribution` included):
    {"name": "LCP", "value": 1834.2, "id": "v5-...", "rating": "good", "page": "/chat/[id]"}
`value` is in milliseconds except CLS (unitless). `page` is the route template (Pages Router:
`router.pathname`) or a path (App Router: `usePathname()`), which is mapped to a configured template
or else normalised (numeric/uuid/hash segments -> `[id]`) under a cardinality cap. Device type comes
from the User-Agent. Every rejection answers 4xx and counts `web_vitals_rejected_total{reason}`.
"""
from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import OrderedDict

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import Counter, Histogram

from .metrics import BoundedValues

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
_ID_SEGMENT = re.compile(r"^(\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,}|"
                         r"[A-Za-z0-9_-]{24,})$", re.I)
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9._~\-\[\]]{1,64}$")
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
    """Map a path or template to a bounded page label."""

    def __init__(self, templates: list[str] | None, limit: int = 100):
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
        self.bounded = BoundedValues(limit)

    def __call__(self, page: str) -> str | None:
        """None when `page` is not a usable path (then the beacon is rejected)."""
        if not isinstance(page, str) or not page.startswith("/") or len(page) > 512:
            return None
        page = page.split("?", 1)[0].split("#", 1)[0]
        if page in self.exact:
            return page
        for rx, t in self.patterns:
            if rx.match(page):
                return t
        segs = [s for s in page.split("/") if s]
        out = []
        for s in segs[:8]:
            if not _SAFE_SEGMENT.match(s):
                return None
            out.append("[id]" if _ID_SEGMENT.match(s) else s)
        norm = "/" + "/".join(out)
        return self.bounded(norm)


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


class WebVitals:
    def __init__(self, obs, pages: list[str] | None = None, rate_per_client: float = 2.0, burst: float = 20,
                 global_rate: float = 500.0, max_body_bytes: int = 4096, allowed_origins: list[str] | None = None,
                 trust_forwarded_for: bool = False):
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
        self.trust_forwarded_for = trust_forwarded_for

    def _reject(self, status: int, reason: str, origin: str | None) -> Response:
        self.rejected.labels(reason, self.env).inc()
        return Response(json.dumps({"error": reason}), status_code=status, media_type="application/json",
                        headers=self._cors(origin))

    def _cors(self, origin: str | None) -> dict:
        if origin and (origin in self.allowed_origins or "*" in self.allowed_origins):
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {}

    def _client(self, request: Request) -> str:
        if self.trust_forwarded_for:
            fwd = request.headers.get("x-forwarded-for", "")
            if fwd:
                return fwd.split(",")[0].strip()[:64]
        return request.client.host if request.client else "unknown"

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
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            return self._reject(413, "too_large", origin)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.max_body:
                return self._reject(413, "too_large", origin)
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return self._reject(400, "invalid_json", origin)
        if not isinstance(data, dict):
            return self._reject(422, "not_an_object", origin)
        name = data.get("name")
        if name not in BUCKETS:
            return self._reject(422, "unknown_metric", origin)
        value = data.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value < 0 or value > MAX_VALUE[name]:
            return self._reject(422, "invalid_value", origin)
        rating = data.get("rating")
        vid = data.get("id")
        if (rating is not None and rating not in RATINGS) or (vid is not None and (not isinstance(vid, str) or len(vid) > 128)):
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
