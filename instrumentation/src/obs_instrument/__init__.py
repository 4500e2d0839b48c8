"""obs_instrument: opt-in observability for a FastAPI app in a few lines.

    from obs_instrument import instrument_app
    obs = instrument_app(app, service_name="relay-api", engine=engine)   # metrics, traces, logs, SQL
    with obs.llm_call("chat", "claude-sonnet", provider="anthropic") as call:
        reply = client.messages.create(...)
        call.set_usage(reply.usage.input_tokens, reply.usage.output_tokens)

See instrumentation/README.md for every setting.
"""
from __future__ import annotations

import logging
import os

from fastapi import FastAPI
from fastapi.responses import Response
from opentelemetry import propagate
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from . import db as _db
from . import llm as _llm
from . import logs as _logs
from . import telemetry as _telemetry
from .config import Settings
from .metrics import ObsMetrics
from .middleware import ObsMiddleware
from .users import UserHasher
from .webvitals import WebVitals, proxy_hops_from_env

__all__ = ["Instrumentation", "instrument_app", "Settings", "PriceTable", "inject_trace_headers", "current"]
PriceTable = _llm.PriceTable
_current: "Instrumentation | None" = None


def current() -> "Instrumentation":
    if _current is None:
        raise RuntimeError("obs_instrument: call instrument_app(app) first")
    return _current


def inject_trace_headers(headers: dict | None = None) -> dict:
    """W3C traceparent (+ baggage) for an outgoing call, so the callee joins this trace."""
    headers = {} if headers is None else headers
    propagate.inject(headers)
    return headers


class Instrumentation:
    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None, span_exporter=None,
                 log_exporter=None, price_table: "_llm.PriceTable | None" = None, configure_logging: bool = True,
                 log_stream=None):
        self.settings = settings
        self.metrics = ObsMetrics(registry)
        resource = _telemetry.resource_for(settings)
        self.tracer_provider = _telemetry.tracer_provider(settings, resource, span_exporter)
        self.tracer = self.tracer_provider.get_tracer("obs_instrument", "0.1.0")
        self.logger_provider = _telemetry.logger_provider(settings, resource, log_exporter)
        if configure_logging:
            _logs.configure_logging(settings.service_name, settings.environment, settings.log_level,
                                    self.logger_provider, log_stream)
        self.prices = price_table if price_table is not None else _llm.PriceTable.from_env()
        self.hash_user_id = UserHasher(settings.user_id_salt)
        self._engines: dict = {}
        self._pool_collector_registered = False
        self.web_vitals: WebVitals | None = None

    # -- exposition --------------------------------------------------------------------------------
    def metrics_payload(self, accept: str | None) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.metrics.registry), content_type

    async def metrics_endpoint(self, request) -> Response:
        body, ctype = self.metrics_payload(request.headers.get("accept"))
        return Response(body, media_type=None, headers={"Content-Type": ctype})

    # -- helpers for application code -------------------------------------------------------------
    def instrument_engine(self, engine, pool_name: str = "default", record_statements: bool = True) -> None:
        _db.instrument_engine(self, engine, pool_name, record_statements)

    def llm_call(self, operation: str, model: str, provider: str = "unknown", user_id: object | None = None):
        return _llm.llm_call(self, operation, model, provider, user_id)

    def record_llm_usage(self, *, operation: str, model: str, provider: str, input_tokens: int, output_tokens: int,
                         duration_seconds: float, error_type: str | None = None) -> float | None:
        """For calls timed elsewhere (no span): metrics only. Returns the dollar cost or None."""
        call = _llm.LLMCall(operation=operation, model=model, provider=provider)
        call.set_usage(input_tokens, output_tokens)
        return _llm.record_usage(self, call, duration_seconds, error_type)

    def record_auth(self, method: str, success: bool, reason: str | None = None) -> None:
        m, env = self.metrics, self.settings.environment
        m.auth_attempts.labels(method, "success" if success else "failure", env).inc()
        if not success:
            m.auth_failures.labels(method, m.reasons(reason or "unknown"), env).inc()

    def set_queue_depth(self, queue: str, depth: int) -> None:
        self.metrics.queue_depth.labels(self.metrics.queues(queue), self.settings.environment).set(depth)

    def track_queue(self, queue: str, depth_fn) -> None:
        """Read the depth at scrape time from `depth_fn()`."""
        self.metrics.queue_depth.labels(self.metrics.queues(queue), self.settings.environment).set_function(depth_fn)

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        if self.logger_provider is not None:
            self.logger_provider.shutdown()


def _quiet_native_fastapi_telemetry(app) -> None:
    """FastAPI's built-in OpenTelemetry support (FastAPI(telemetry=...)) would start a second server
    span, a second duration histogram and its own exception logs from the same global providers. The
    helper's middleware owns those signals, so it turns FastAPI's off (same dict FastAPI reads per request)."""
    cfg = getattr(app, "_telemetry", None)
    if isinstance(cfg, dict):
        cfg.update(tracing=False, metrics=False, logs=False)


def instrument_app(app: FastAPI, *, service_name: str | None = None, environment: str | None = None,
                   engine=None, metrics_path: str | None = "/metrics", web_vitals: bool | dict = False,
                   price_table: "_llm.PriceTable | None" = None, registry: CollectorRegistry | None = None,
                   span_exporter=None, log_exporter=None, configure_logging: bool = True, log_stream=None,
                   **settings) -> Instrumentation:
    """Instrument `app` and return the handle for LLM, DB, auth and queue helpers.

    `web_vitals=True` (or a dict of WebVitals options, e.g. {"pages": ["/chat/[id]"]}) mounts POST /vitals.
    Settings not given come from the environment (see config.Settings.from_env)."""
    global _current
    s = Settings.from_env(service_name=service_name, environment=environment, **settings)
    obs = Instrumentation(s, registry, span_exporter, log_exporter, price_table, configure_logging, log_stream)
    _quiet_native_fastapi_telemetry(app)
    app.add_middleware(ObsMiddleware, obs=obs)
    if metrics_path:
        app.add_route(metrics_path, obs.metrics_endpoint, include_in_schema=False)
    if engine is not None:
        obs.instrument_engine(engine)
    if web_vitals:
        opts = dict(web_vitals) if isinstance(web_vitals, dict) else {}
        path = opts.pop("path", "/vitals")
        opts.setdefault("pages", [p for p in os.environ.get("OBS_WEBVITALS_PAGES", "").split(",") if p.strip()])
        origins = [o.strip() for o in os.environ.get("OBS_WEBVITALS_ALLOWED_ORIGINS", "").split(",") if o.strip()]
        opts.setdefault("allowed_origins", origins)
        if "trusted_proxy_hops" not in opts:
            opts["trusted_proxy_hops"] = proxy_hops_from_env(os.environ)
        obs.web_vitals = WebVitals(obs, **opts)
        app.include_router(obs.web_vitals.router(path))
    app.state.obs = obs
    _current = obs
    logging.getLogger("obs_instrument").info("instrumented %s", s.service_name, extra={
        "otlp_endpoint": s.otlp_endpoint if s.otlp_enabled else None})
    return obs
