"""Helpers every part of the simulator's HTTP front shares: the error reply, the request, number and
query-string parsing, timestamps."""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from obs_bridges import log


class Reply(Exception):
    """An answer that ends a handler early (an error status, usually)."""

    def __init__(self, status: int, body, headers: dict | None = None):
        self.status = status
        self.body = body
        self.headers = headers or {}


@dataclass
class ApiRequest:
    """One request to an emulated API, as its handler sees it: `path` below the API's prefix, `base` the URL
    of that prefix (for the links the API returns)."""
    method: str
    path: str
    q: dict = field(default_factory=dict)
    headers: object = field(default_factory=dict)  # anything with .get(name, default): a Message or a dict
    base: str = "http://localhost"
    body: bytes = b""


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def parse_iso(s: str) -> float:
    dt = datetime.fromisoformat(s.strip().replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def q1(q: dict, k: str, default=None):
    v = q.get(k)
    return v[0] if v else default


def qint(q, k, default, lo, hi):
    try:
        v = int(q1(q, k, default))
    except (TypeError, ValueError):
        raise Reply(422, {"message": f"Invalid value for {k}"}) from None
    return max(lo, min(hi, v))


def auth_kind(headers) -> str:
    if headers.get("Project-Access-Token"):
        return "project"
    a = headers.get("Authorization", "")
    return a.split(" ", 1)[0].lower() if a else "none"


# Ranges of the control API's numbers (issue 12): an out-of-range value is a 400 naming the parameter,
# never an unbounded loop (advance by 1e300 s generated arrivals until memory ran out).
LIMITS = {"seconds": (0.0, 7 * 86400.0), "per_hour": (0.0, 10_000.0), "limit": (0, 1_000_000),
          "window": (1.0, 86400.0), "finish_in": (0.0, 86400.0), "duration": (0.0, 35 * 86400.0),
          "created_ago": (0.0, 40 * 86400.0), "spacing": (0.0, 3600.0), "count": (1, 10_000), "id": (0, 2**53),
          "delay": (0.0, 300.0), "status": (100, 599), "retry_after": (0, 86400)}


def num(data: dict, key: str, default=None, cast=float):
    """data[key] as a finite number within LIMITS[key], else Reply(400) that names the parameter."""
    lo, hi = LIMITS[key]
    if key not in data:
        if default is None:
            raise Reply(400, {"message": f"{key} is required (a number from {lo} to {hi})"})
        return cast(default)
    v = data[key]
    # An int is compared exactly: math.isfinite() of a 400-digit int raises OverflowError (a dropped connection).
    ok = (isinstance(v, (int, float)) and not isinstance(v, bool) and (isinstance(v, int) or math.isfinite(v))
          and lo <= v <= hi)
    if not ok or (cast is int and v != int(v)):
        raise Reply(400, {"message": f"{key} must be a {'whole ' if cast is int else ''}number from {lo} to {hi}, "
                                     f"got {json.dumps(v)[:40]}"})
    return cast(v)


def start_ticker(name: str, tick, every: float) -> None:
    """Call tick() every `every` seconds on a daemon thread for the life of the process; a failing tick is
    logged and the next one runs (the simulator's senders: webhooks, drains)."""
    def loop():
        while True:
            time.sleep(every)
            try:
                tick()
            except Exception:  # noqa: BLE001 - logged; the loop goes on (pragma: no cover)
                log.get("obs_bridges.simulator").exception("periodic task failed", extra=log.kv(task=name))

    threading.Thread(target=loop, daemon=True, name=name).start()
