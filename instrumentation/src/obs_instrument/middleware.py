"""Pure ASGI middleware: one server span, golden-signal metrics and one access log line per request.

The `endpoint` label and `http.route` attribute are the route template FastAPI matched
(`/api/items/{item_id}`), never the raw path; requests that match no route count as `unmatched`.
"""
from __future__ import annotations

import logging
import time

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

UNMATCHED = "unmatched"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
access_log = logging.getLogger("obs.access")


class _HeaderGetter:
    """Reads W3C trace context straight from the ASGI header list (no dict copy)."""

    def get(self, carrier, key):
        k = key.lower().encode("latin-1")
        vals = [v.decode("latin-1") for hk, v in carrier if hk == k]
        return vals or None

    def keys(self, carrier):
        return [k.decode("latin-1") for k, _ in carrier]


_GETTER = _HeaderGetter()


def route_template(scope) -> str:
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not path:
        return UNMATCHED
    return path


def exemplar_for(span) -> dict | None:
    ctx = span.get_span_context()
    if not ctx.is_valid or not ctx.trace_flags.sampled:
        return None  # an exemplar must point to a trace that is exported
    return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}


class ObsMiddleware:
    def __init__(self, app, obs):
        self.app = app
        self.obs = obs

    async def __call__(self, scope, receive, send):
        obs = self.obs
        if scope["type"] != "http" or scope["path"] in obs.settings.exclude_paths:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "_OTHER"
        parent = propagate.extract(scope.get("headers") or [], getter=_GETTER)
        span = obs.tracer.start_span(
            method, context=parent, kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"],
                        "url.scheme": scope.get("scheme", "http")})
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        status = 500
        env = obs.settings.environment
        m = obs.metrics
        m.http_in_flight.labels(method, env).inc()

        async def send_wrapper(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        error: BaseException | None = None
        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as e:  # re-raised: ServerErrorMiddleware turns it into the 500
            error = e
            status = 500
            raise
        finally:
            duration = time.perf_counter() - start
            route = route_template(scope)
            m.http_in_flight.labels(method, env).dec()
            if route != UNMATCHED:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status)
            if error is not None:
                span.record_exception(error)
                span.set_attribute("error.type", type(error).__qualname__)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
                if error is None:
                    span.set_attribute("error.type", str(status))
            ex = exemplar_for(span)
            m.http_requests.labels(method, route, str(status), env).inc(exemplar=ex)
            m.http_duration.labels(method, route, env).observe(duration, exemplar=ex)
            if obs.settings.access_log:
                level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
                if access_log.isEnabledFor(level):
                    access_log.log(level, "%s %s %d", method, route, status, exc_info=error, extra={
                        "http_method": method, "endpoint": route, "status_code": status,
                        "duration_ms": round(duration * 1000, 2)})
            span.end()
            otel_context.detach(token)
