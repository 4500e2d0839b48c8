"""LLM calls: OTel GenAI spans and metrics (gen_ai.client.token.usage, gen_ai.client.operation.duration)
plus the contract's `llm_tokens_total` and `api_cost_usd_total` (dollars) priced from a configurable table.

Price table: `OBS_LLM_PRICES_FILE` (a JSON file) or `OBS_LLM_PRICES` (inline JSON), shaped
    {"model-name": {"input_per_mtok": 3.0, "output_per_mtok": 15.0}, ...}
in US dollars per million tokens. The built-in table only prices the demo's fake models; put your
providers' current prices in the file. Calls to a model that is not in the table still count tokens;
their cost is not guessed but counted in `llm_unpriced_calls_total`.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from opentelemetry.trace import SpanKind, Status, StatusCode

from .middleware import exemplar_for

log = logging.getLogger("obs_instrument.llm")

DEMO_PRICES = {
    "demo-large": {"input_per_mtok": 3.0, "output_per_mtok": 15.0},
    "demo-small": {"input_per_mtok": 0.25, "output_per_mtok": 1.25},
    "demo-embed": {"input_per_mtok": 0.02, "output_per_mtok": 0.0},
}


class PriceTableError(ValueError):
    pass


class PriceTable:
    def __init__(self, prices: dict[str, dict[str, float]]):
        self.prices: dict[str, tuple[float, float]] = {}
        for model, p in prices.items():
            if not isinstance(p, dict):
                raise PriceTableError(f"price of {model!r} must be an object")
            try:
                inp, out = float(p.get("input_per_mtok", 0)), float(p.get("output_per_mtok", 0))
            except (TypeError, ValueError) as e:
                raise PriceTableError(f"price of {model!r}: {e}") from None
            if not (math.isfinite(inp) and math.isfinite(out)) or inp < 0 or out < 0:
                raise PriceTableError(f"price of {model!r} must be finite and >= 0")
            self.prices[str(model)] = (inp, out)

    @classmethod
    def from_env(cls) -> "PriceTable":
        path = os.environ.get("OBS_LLM_PRICES_FILE", "").strip()
        raw = os.environ.get("OBS_LLM_PRICES", "").strip()
        if path:
            with open(path, encoding="utf-8") as f:
                raw = f.read()
        if not raw:
            return cls(DEMO_PRICES)
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            raise PriceTableError(f"LLM price table is not JSON: {e}") from None
        if not isinstance(data, dict):
            raise PriceTableError("LLM price table must be a JSON object keyed by model")
        return cls(data)

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float | None:
        p = self.prices.get(model)
        if p is None:
            return None
        return (input_tokens * p[0] + output_tokens * p[1]) / 1_000_000


@dataclass
class LLMCall:
    """Filled in by the caller inside `obs.llm_call(...)`."""
    operation: str
    model: str
    provider: str
    input_tokens: int = 0
    output_tokens: int = 0
    response_model: str | None = None
    finish_reason: str | None = None
    cost: float | None = field(default=None, init=False)

    def set_usage(self, input_tokens: int, output_tokens: int, response_model: str | None = None,
                  finish_reason: str | None = None) -> None:
        self.input_tokens, self.output_tokens = int(input_tokens), int(output_tokens)
        self.response_model = response_model or self.response_model
        self.finish_reason = finish_reason or self.finish_reason


def record_usage(obs, call: LLMCall, duration: float, error_type: str | None, span=None) -> float | None:
    m, env = obs.metrics, obs.settings.environment
    model = m.models(call.model)
    ex = exemplar_for(span) if span is not None else None
    op, prov = call.operation, call.provider
    if call.input_tokens or error_type is None:
        m.genai_tokens.labels(op, prov, model, "input", env).observe(call.input_tokens, exemplar=ex)
    if call.output_tokens or error_type is None:
        m.genai_tokens.labels(op, prov, model, "output", env).observe(call.output_tokens, exemplar=ex)
    m.genai_duration.labels(op, prov, model, error_type or "", env).observe(duration, exemplar=ex)
    m.llm_tokens.labels(model, "input", op, env).inc(call.input_tokens)
    m.llm_tokens.labels(model, "output", op, env).inc(call.output_tokens)
    cost = obs.prices.cost(call.model, call.input_tokens, call.output_tokens)
    if cost is None:
        m.llm_unpriced.labels(model, env).inc()
    else:
        m.llm_cost.labels(model, op, env).inc(cost, exemplar=ex if cost > 0 else None)
    call.cost = cost
    return cost


@contextmanager
def llm_call(obs, operation: str, model: str, provider: str, user_id: object | None = None):
    """Span `{operation} {model}` (kind CLIENT) with gen_ai.* attributes; metrics recorded on exit,
    also when the call raises (error.type then labels the duration)."""
    call = LLMCall(operation=operation, model=model, provider=provider)
    attrs = {"gen_ai.operation.name": operation, "gen_ai.request.model": model, "gen_ai.provider.name": provider}
    if user_id is not None:
        attrs["user.hash"] = obs.hash_user_id(user_id)
    start = time.perf_counter()
    with obs.tracer.start_as_current_span(f"{operation} {model}", kind=SpanKind.CLIENT, attributes=attrs,
                                          record_exception=True, set_status_on_exception=True) as span:
        error_type = None
        try:
            yield call
        except BaseException as e:
            error_type = type(e).__name__
            span.set_attribute("error.type", error_type)
            span.set_status(Status(StatusCode.ERROR))
            raise
        finally:
            duration = time.perf_counter() - start
            cost = record_usage(obs, call, duration, error_type, span)
            span.set_attribute("gen_ai.usage.input_tokens", call.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", call.output_tokens)
            if call.response_model:
                span.set_attribute("gen_ai.response.model", call.response_model)
            if call.finish_reason:
                span.set_attribute("gen_ai.response.finish_reasons", [call.finish_reason])
            if cost is not None:
                span.set_attribute("llm.cost_dollars", round(cost, 8))
            log.info("llm call %s %s", operation, model, extra={
                "gen_ai_operation_name": operation, "gen_ai_request_model": model,
                "input_tokens": call.input_tokens, "output_tokens": call.output_tokens,
                "cost_dollars": None if cost is None else round(cost, 8),
                "duration_ms": round(duration * 1000, 2), "error_type": error_type,
                **({"user_hash": attrs["user.hash"]} if "user.hash" in attrs else {})})
