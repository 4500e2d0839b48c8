"""Vercel log drain deliveries (issue 16, part 1), the pure core: the x-vercel-signature check, the endpoint
verification header, and the parse of a batch (a JSON array, one JSON object, or NDJSON) into records with
bounded labels. Ids, paths, hosts and messages are content or structured metadata, never labels; a valid
trace id is kept so the log links to its trace. No I/O here; the receiver builds on it."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Any

from obs_bridges.parsing import NAME_LABEL_MAX, ParseError

SIGNATURE_HEADER = "x-vercel-signature"
VERIFY_HEADER = "x-vercel-verify"
_SHA1_HEX_LEN = 40
# Vercel truncates a message past 256 KB; a batch is many of them. 4 MiB bounds what an unauthenticated
# sender can make the receiver read before the signature fails.
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_RECORDS = 10_000
MESSAGE_MAX = 256 * 1024
# Label enums (Vercel's own values); anything else is "other" (labels stay bounded whatever a payload says).
SOURCES = ("build", "edge", "lambda", "static", "external", "firewall", "redirect")
LEVELS = ("info", "warning", "error", "fatal")
ENVIRONMENTS = ("production", "preview")
# Structured metadata kept from a record (high cardinality: never labels), Vercel's name -> ours.
METADATA = {"id": "log_id", "requestId": "request_id", "deploymentId": "deployment_id", "projectId": "project_id",
            "buildId": "build_id", "host": "host", "path": "path", "entrypoint": "entrypoint", "type": "type",
            "statusCode": "status_code", "executionRegion": "region", "branch": "branch",
            "edgeType": "edge_type", "destination": "destination"}
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_SPAN_ID = re.compile(r"^[0-9a-f]{16}$")


def signature(secret: bytes, body: bytes) -> str:
    """The x-vercel-signature value for `body` under the drain's secret: hex HMAC-SHA1 of the raw body."""
    return hmac.new(secret, body, hashlib.sha1).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """True only for the exact signature of the raw body, compared in constant time; an empty secret never
    verifies (a receiver without its secret refuses everything)."""
    if not secret or not header:
        return False
    given = header.strip().lower().encode("ascii", "replace")
    expected = signature(secret, body).encode("ascii")
    if len(given) != _SHA1_HEX_LEN:
        hmac.compare_digest(expected, expected)  # same work for a wrong length
        return False
    return hmac.compare_digest(given, expected)


def verification_headers(token: str) -> dict[str, str]:
    """What the endpoint answers with so that Vercel accepts it as a drain destination: the verification
    token Vercel shows when the drain is created, in the x-vercel-verify response header."""
    return {VERIFY_HEADER: token}


@dataclass(frozen=True)
class DrainRecord:
    time: float  # Unix seconds
    project: str  # label: the project's name (bounded), "unknown" without one
    environment: str  # label: production, preview or other
    source: str  # label: SOURCES or other
    level: str  # label: LEVELS (Vercel's level, else stderr is error, else info)
    message: str
    trace_id: str | None = None
    span_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def labels(self) -> dict[str, str]:
        return {"project": self.project, "environment": self.environment, "source": self.source,
                "level": self.level}


def parse_batch(content_type: str | None, body: bytes) -> list[DrainRecord]:
    """A delivery's records: a JSON array or object (the json format) or one object per line (ndjson).
    ParseError, never anything else, for a body that is neither; a record that is not an object with a
    numeric timestamp is a ParseError too (the whole batch is refused, so Vercel shows the failure)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("the drain body is not UTF-8") from None
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        stripped = text.lstrip()
        if ctype in ("application/x-ndjson", "application/ndjson") or not stripped.startswith(("[", "{")) \
                or ("\n" in stripped.rstrip() and not stripped.startswith("[")):
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            data = json.loads(text)
            items = data if isinstance(data, list) else [data]
    except (ValueError, RecursionError) as e:
        raise ParseError(f"the drain body is neither JSON nor NDJSON: {type(e).__name__}") from None
    if len(items) > MAX_RECORDS:
        raise ParseError(f"a batch of {len(items)} records is over {MAX_RECORDS}")
    return [parse_record(x, i) for i, x in enumerate(items)]


def parse_record(data: Any, i: int = 0) -> DrainRecord:
    if not isinstance(data, dict):
        raise ParseError(f"record {i} is not an object")
    ts = data.get("timestamp")
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not 0 <= ts < 1e14:
        raise ParseError(f"record {i}: timestamp must be Unix milliseconds")
    level = _enum(data.get("level"), LEVELS, None)
    if level is None:
        level = "error" if data.get("type") == "stderr" else "info"
    message = data.get("message")
    message = message[-MESSAGE_MAX:] if isinstance(message, str) else ""
    name = data.get("projectName")
    project = name[:NAME_LABEL_MAX] if isinstance(name, str) and name.strip() else "unknown"
    trace = _hex(data.get("traceId") or data.get("trace.id"), _TRACE_ID)
    span = _hex(data.get("spanId") or data.get("span.id"), _SPAN_ID)
    meta = {}
    for key, ours in METADATA.items():
        v = data.get(key)
        if isinstance(v, (str, int, float)) and not isinstance(v, bool):
            meta[ours] = str(v)[:1024]
    return DrainRecord(time=ts / 1000.0, project=project, environment=_enum(data.get("environment"), ENVIRONMENTS),
                       source=_enum(data.get("source"), SOURCES), level=level, message=message,
                       trace_id=trace, span_id=span, metadata=meta)


def _enum(value: Any, allowed: tuple[str, ...], other: str | None = "other") -> str | None:
    return value if isinstance(value, str) and value in allowed else other


def _hex(value: Any, pattern: re.Pattern) -> str | None:
    if isinstance(value, str) and pattern.match(value.lower()) and value.strip("0"):
        return value.lower()
    return None


__all__ = ["DrainRecord", "ParseError", "parse_batch", "parse_record", "signature", "verification_headers",
           "verify_signature"]
