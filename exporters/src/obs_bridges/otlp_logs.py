"""Platform log records to the collector as OTLP/HTTP JSON (issue 16). The bridges and the ingest hand
records here grouped by their Loki stream: the Resource's attributes are exactly the index labels Loki keeps
(loki/loki.yml, otlp_config; docs/logging.md "Logs in Loki"), each from a bounded set; everything else a
record carries is a record attribute (structured metadata) or its body. The collector's persistent queue
takes it from there, so a sender only has to know whether the collector accepted the batch."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import requests

from obs_bridges import __version__, log

PLATFORMS = ("vercel", "railway", "supabase", "compose")
LEVELS = ("debug", "info", "warning", "error", "critical", "unknown")
# OTLP SeverityNumber of each level (the first of its range: DEBUG 5, INFO 9, WARN 13, ERROR 17, FATAL 21).
SEVERITY = {"debug": 5, "info": 9, "warning": 13, "error": 17, "critical": 21, "unknown": 0}
SEVERITY_TEXT = {"debug": "DEBUG", "info": "INFO", "warning": "WARN", "error": "ERROR", "critical": "FATAL",
                 "unknown": ""}
_ALIASES = {"trace": "debug", "debug": "debug", "dbg": "debug", "info": "info", "information": "info",
            "notice": "info", "log": "info", "warn": "warning", "warning": "warning", "err": "error",
            "error": "error", "crit": "critical", "critical": "critical", "fatal": "critical", "panic": "critical",
            "alert": "critical", "emerg": "critical", "emergency": "critical"}
# What one record may carry beyond its labels: bounded, so a hostile or broken upstream cannot make a batch
# (and the collector's queue) grow without limit.
MAX_ATTRIBUTES = 32
ATTRIBUTE_VALUE_MAX = 1024
BODY_MAX = 256 * 1024
# Index label names: a record attribute of the same name would be ambiguous in LogQL, so it is renamed.
LABEL_NAMES = ("service_name", "deployment_environment", "platform", "project", "source", "level")
SEND_TIMEOUT_SECONDS = 10.0


def normalise_level(text: object) -> str:
    """The level enum for whatever a platform calls its severity (case-insensitive; `unknown` otherwise)."""
    if not isinstance(text, str):
        return "unknown"
    return _ALIASES.get(text.strip().lower(), "unknown")


@dataclass(frozen=True)
class Resource:
    """One Loki stream: every field becomes an index label (service_name, deployment_environment, platform,
    project, source, level), so each must come from a bounded set."""

    service_name: str
    environment: str
    platform: str
    project: str
    source: str
    level: str

    def __post_init__(self):
        if self.platform not in PLATFORMS:
            raise ValueError(f"platform must be one of {PLATFORMS}, got {self.platform!r}")
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS} (use normalise_level), got {self.level!r}")

    def attributes(self) -> dict[str, str]:
        return {"service.name": self.service_name, "deployment.environment": self.environment,
                "platform": self.platform, "project": self.project, "source": self.source, "level": self.level}


@dataclass(frozen=True)
class LogRecord:
    time_ns: int
    body: str
    attributes: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    trace_id: str | None = None  # 32 lower-case hex digits, or None
    span_id: str | None = None  # 16 lower-case hex digits, or None


class OtlpSendError(Exception):
    """The collector did not take the batch (unreachable, timeout, non-2xx, or part of it rejected).
    The message names the endpoint and the status, never a body."""

    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


def _value(v: str | int | float | bool) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": str(v)[:ATTRIBUTE_VALUE_MAX]}


def _attributes(attrs: Mapping[str, object], rename_labels: bool) -> list[dict]:
    out = []
    for key, v in list(attrs.items())[:MAX_ATTRIBUTES]:
        if v is None or not isinstance(v, (str, int, float, bool)):
            continue
        name = f"log_{key}" if rename_labels and key in LABEL_NAMES else key
        out.append({"key": name, "value": _value(v)})
    return out


def encode_logs(groups: Mapping[Resource, Sequence[LogRecord]]) -> bytes:
    """An OTLP/JSON ExportLogsServiceRequest: one ResourceLogs per stream, ids as hex (OTLP/JSON's rule)."""
    resource_logs = []
    for res, records in groups.items():
        if not records:
            continue
        out = []
        for r in records:
            rec = {"timeUnixNano": str(int(r.time_ns)), "observedTimeUnixNano": str(int(r.time_ns)),
                   "severityNumber": SEVERITY[res.level], "severityText": SEVERITY_TEXT[res.level],
                   "body": {"stringValue": r.body[-BODY_MAX:]},
                   "attributes": _attributes(r.attributes, rename_labels=True)}
            if r.trace_id:
                rec["traceId"] = r.trace_id
                if r.span_id:
                    rec["spanId"] = r.span_id
            out.append(rec)
        resource_logs.append({"resource": {"attributes": _attributes(res.attributes(), rename_labels=False)},
                              "scopeLogs": [{"scope": {"name": "obs-bridges", "version": __version__},
                                             "logRecords": out}]})
    return json.dumps({"resourceLogs": resource_logs}, separators=(",", ":")).encode()


class OtlpLogSender:
    """POSTs batches to <endpoint>/v1/logs (the collector's OTLP/HTTP receiver). send() returns only when
    the collector accepted every record; otherwise OtlpSendError, and the caller keeps its cursor."""

    def __init__(self, endpoint: str, timeout: float = SEND_TIMEOUT_SECONDS, session: requests.Session | None = None):
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"the OTLP/HTTP endpoint must be an http(s) URL such as http://otelcol:4318, "
                             f"got {endpoint!r}")
        self.url = endpoint.rstrip("/") + "/v1/logs"
        self.timeout = timeout
        self.session = session or requests.Session()

    def send(self, groups: Mapping[Resource, Sequence[LogRecord]]) -> int:
        count = sum(len(v) for v in groups.values())
        if not count:
            return 0
        body = encode_logs(groups)
        return self.send_encoded(body, count)

    def send_encoded(self, body: bytes, count: int) -> int:
        try:
            resp = self.session.post(self.url, data=body, timeout=self.timeout,
                                     headers={"Content-Type": "application/json"})
        except requests.Timeout:
            raise OtlpSendError(f"the collector at {self.url} did not answer within {self.timeout:g} s") from None
        except requests.RequestException as e:
            raise OtlpSendError(f"the collector at {self.url} is unreachable ({type(e).__name__})") from None
        if resp.status_code >= 300:
            # 429/502/503/504: the collector is busy or its memory limiter refuses; 4xx otherwise is a bug.
            retryable = resp.status_code in (408, 429, 500, 502, 503, 504)
            raise OtlpSendError(f"the collector at {self.url} answered {resp.status_code}", retryable=retryable)
        rejected = _rejected(resp)
        if rejected:
            raise OtlpSendError(f"the collector at {self.url} rejected {rejected} of {count} records",
                                retryable=False)
        log.get("obs_bridges.otlp_logs").debug("logs sent", extra={"records": count})
        return count


def _rejected(resp: requests.Response) -> int:
    try:
        data = resp.json() if resp.content else {}
        return int((data.get("partialSuccess") or {}).get("rejectedLogRecords") or 0)
    except (ValueError, AttributeError, TypeError):
        return 0


__all__ = ["LEVELS", "PLATFORMS", "LogRecord", "OtlpLogSender", "OtlpSendError", "Resource", "encode_logs",
           "normalise_level"]
