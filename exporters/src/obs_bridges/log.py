"""JSON logging, one object per line on stderr, with secret redaction.

The line is the stack's log schema (docs/logging.md): ts (UTC, ms, Z), level (lowercase Python level
name), component, logger, msg, then the record's fields, and exc for a traceback."""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
import time

_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
REDACTED = "[REDACTED]"


def register_secret(value: str | None) -> None:
    """Remember a secret so that it is scrubbed from every log line and error text."""
    if value and len(value) >= 4:
        with _SECRETS_LOCK:
            _SECRETS.add(value)


def redact(text: str) -> str:
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, REDACTED)
    return text


def _finite(v):
    """JSON has no Infinity or NaN: such a number (from a hostile header, say) is written as a string."""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


class JsonFormatter(logging.Formatter):
    def __init__(self, component: str):
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        obj = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "component": self.component,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for k, v in fields.items():
                if k not in obj:
                    obj[k] = v
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(_finite(obj), default=str, ensure_ascii=False, allow_nan=False))


def setup(component: str, level: str = "info") -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(JsonFormatter(component))
    root.addHandler(h)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # urllib3 logs retries at WARNING with full URLs; keep it quiet, we log our own lines.
    logging.getLogger("urllib3").setLevel(logging.ERROR)


def get(name: str) -> logging.Logger:
    return logging.getLogger(name)


def kv(**fields) -> dict:
    """Helper: logger.info("msg", extra=kv(a=1))."""
    return {"fields": fields}


class Throttled:
    """Warnings at most once per reason per `every` seconds, each saying how many were held back since the
    last: a public endpoint under a flood of junk must not flood its log."""

    def __init__(self, logger: logging.Logger, clock, every: float = 60.0):
        self.logger, self.clock, self.every = logger, clock, every
        self._last: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def warning(self, reason: str, msg: str) -> None:
        now = self.clock()
        with self._lock:
            at, n = self._last.get(reason, (float("-inf"), 0))
            if now - at < self.every:
                self._last[reason] = (at, n + 1)
                return
            self._last[reason] = (now, 0)
        self.logger.warning(msg, extra=kv(reason=reason, refused_since_last_line=n))
