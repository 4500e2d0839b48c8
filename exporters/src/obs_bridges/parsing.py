"""Small strict helpers for response parsers: every malformed input raises ParseError, nothing else."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from obs_bridges.httpclient import ApiError

# Label value caps: a value from an API (a name, a state) is cut to this many characters, so that one
# long value cannot bloat every series it labels, nor a hostile upstream the exporter's memory.
NAME_LABEL_MAX = 64  # project, environment, service, workflow and job names
STATE_LABEL_MAX = 32  # enum-like values: states, statuses, regions, versions, service names
EVENT_LABEL_MAX = 40  # GitHub's trigger events and Railway's deployment step names


class ParseError(ApiError):
    def __init__(self, message: str):
        super().__init__("parse", message)


def obj(v: Any, what: str) -> dict:
    if not isinstance(v, dict):
        raise ParseError(f"{what}: expected an object, got {type(v).__name__}")
    return v


def lst(v: Any, what: str) -> list:
    if not isinstance(v, list):
        raise ParseError(f"{what}: expected a list, got {type(v).__name__}")
    return v


def s(v: Any, what: str, optional: bool = False) -> str | None:
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise ParseError(f"{what}: expected a string, got {type(v).__name__}")
    return str(v)


def num(v: Any, what: str, optional: bool = False) -> float | None:
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ParseError(f"{what}: expected a number, got {type(v).__name__}")
    try:
        f = float(v)
    except OverflowError:  # an integer literal past float's range (JSON allows any length)
        raise ParseError(f"{what}: not a finite number") from None
    if f != f or f in (float("inf"), float("-inf")):
        raise ParseError(f"{what}: not a finite number")
    return f


def iso(v: Any, what: str, optional: bool = True) -> float | None:
    """ISO-8601 (GitHub, Supabase, Railway) to Unix seconds UTC."""
    if v is None or v == "":
        if optional:
            return None
        raise ParseError(f"{what}: missing timestamp")
    if not isinstance(v, str):
        raise ParseError(f"{what}: expected an ISO-8601 string")
    txt = v.strip()
    if txt.endswith(("Z", "z")):
        txt = txt[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(txt)
    except ValueError:
        raise ParseError(f"{what}: bad ISO-8601 timestamp") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        return dt.timestamp()
    except (OverflowError, OSError, ValueError):
        raise ParseError(f"{what}: timestamp out of range") from None


def ms(v: Any, what: str, optional: bool = True) -> float | None:
    """Vercel millisecond epochs to Unix seconds."""
    if v is None or v == "" or v == 0:
        if optional:
            return None
        raise ParseError(f"{what}: missing timestamp")
    f = num(v, what)
    if f < 0 or f > 1e14:
        raise ParseError(f"{what}: timestamp out of range")
    return f / 1000.0


def to_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
