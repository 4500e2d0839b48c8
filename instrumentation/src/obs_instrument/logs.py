"""JSON logs on stdout, and the same records over OTLP, both carrying trace_id and span_id.

Every line is one JSON object in the stack's log schema (docs/logging.md): ts (ISO 8601 UTC with ms,
`...Z`), level (lowercase), component (the service name), logger, msg, then environment, trace_id/span_id
when a span is active, extra fields passed with `extra={...}`, and `exc` (the traceback) for exceptions.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import sys
import traceback

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName", "color_message"}
_SEVERITY = {
    logging.DEBUG: SeverityNumber.DEBUG, logging.INFO: SeverityNumber.INFO, logging.WARNING: SeverityNumber.WARN,
    logging.ERROR: SeverityNumber.ERROR, logging.CRITICAL: SeverityNumber.FATAL,
}


def _extras(record: logging.LogRecord) -> dict:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def _trace_ids() -> tuple[str | None, str | None]:
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None, None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def _jsonable(v):
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return str(v)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str, environment: str):
        super().__init__()
        self.service, self.environment = service, environment

    def format(self, record: logging.LogRecord) -> str:
        ts = _dt.datetime.fromtimestamp(record.created, tz=_dt.timezone.utc)
        out = {
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "component": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
            "environment": self.environment,
        }
        trace_id, span_id = getattr(record, "_obs_trace", None) or _trace_ids()
        if trace_id:
            out["trace_id"], out["span_id"] = trace_id, span_id
        for k, v in _extras(record).items():
            out.setdefault(k, _jsonable(v))
        if record.exc_info and record.exc_info[0] is not None:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


class OtlpLogHandler(logging.Handler):
    """Hands each log record to the OTel logs SDK with the active span context (so trace_id/span_id
    travel as the OTLP LogRecord fields Loki keeps as structured metadata)."""

    def __init__(self, provider, level: int = logging.NOTSET):
        super().__init__(level)
        self._logger = provider.get_logger("obs_instrument.logs")

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("opentelemetry"):
            return  # the exporter's own complaints must not feed back into the exporter
        try:
            attrs = {k: _jsonable(v) if isinstance(_jsonable(v), (str, int, float, bool)) else json.dumps(_jsonable(v))
                     for k, v in _extras(record).items()}
            attrs["logger.name"] = record.name
            attrs["code.function.name"] = record.funcName
            attrs["code.line.number"] = record.lineno
            if record.exc_info and record.exc_info[0] is not None:
                etype, evalue, tb = record.exc_info
                attrs["exception.type"] = etype.__name__
                attrs["exception.message"] = str(evalue)
                attrs["exception.stacktrace"] = "".join(traceback.format_exception(etype, evalue, tb))
            self._logger.emit(
                timestamp=int(record.created * 1e9),
                context=otel_context.get_current(),
                severity_number=_SEVERITY.get(record.levelno, SeverityNumber.INFO),
                severity_text=record.levelname,
                body=record.getMessage(),
                attributes=attrs,
            )
        except Exception:  # noqa: BLE001 - logging must never raise into the app
            self.handleError(record)


def configure_logging(service: str, environment: str, level: str, otlp_provider=None, stream=None) -> None:
    """Root logger -> one JSON stdout handler (+ OTLP). Replaces handlers this helper added before and
    routes uvicorn's loggers through the root so every line is JSON."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_obs", False):
            root.removeHandler(h)
    stdout = logging.StreamHandler(stream or sys.stdout)
    stdout.setFormatter(JsonFormatter(service, environment))
    stdout._obs = True  # type: ignore[attr-defined]
    root.addHandler(stdout)
    if otlp_provider is not None:
        h = OtlpLogHandler(otlp_provider)
        h._obs = True  # type: ignore[attr-defined]
        root.addHandler(h)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # the helper's access log replaces it
