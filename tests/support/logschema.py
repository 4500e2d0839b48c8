"""The stack's one JSON log schema (docs/logging.md) as a check: tests/static/test_log_schema.py runs it on a
real line from every component, and a component's own tests may run it on the lines they capture."""
from __future__ import annotations

import datetime as dt
import json
import re

# Keys every line starts with, in this order, and their types.
HEAD = (("ts", str), ("level", str), ("component", str), ("logger", str), ("msg", str))
LEVELS = {"debug", "info", "warning", "error", "critical"}
TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
# Optional keys with a fixed meaning.
OPTIONAL = {"exc": re.compile(r"Traceback \(most recent call last\):\n.*", re.S),
            "trace_id": re.compile(r"[0-9a-f]{32}"), "span_id": re.compile(r"[0-9a-f]{16}"),
            "environment": re.compile(r".+")}
# Other spellings of the head keys: a line carrying one of them has drifted.
FORBIDDEN = {"timestamp", "time", "@timestamp", "message", "severity", "lvl", "name"}


def check(line: str, component: str) -> dict:
    """The one schema check: a single line that is one JSON object with the head keys first."""
    assert line and "\n" not in line, f"one JSON object per line: {line!r}"
    rec = json.loads(line)
    assert isinstance(rec, dict), line
    assert [k for k, _ in HEAD] == list(rec)[:len(HEAD)], f"the line must start with {[k for k, _ in HEAD]}: {line}"
    for key, typ in HEAD:
        assert isinstance(rec[key], typ) and rec[key], f"{key} must be a non-empty {typ.__name__}: {line}"
    assert rec["level"] in LEVELS, f"level {rec['level']!r} is not one of {sorted(LEVELS)}: {line}"
    assert TS.fullmatch(rec["ts"]), f"ts {rec['ts']!r} is not YYYY-MM-DDTHH:MM:SS.mmmZ: {line}"
    when = dt.datetime.strptime(rec["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
    skew = abs((dt.datetime.now(dt.timezone.utc) - when).total_seconds())
    assert skew < 300, f"ts {rec['ts']} is not the current UTC time (off by {skew:.0f} s): {line}"
    assert rec["component"] == component, line
    for key, pattern in OPTIONAL.items():
        if key in rec:
            assert isinstance(rec[key], str) and pattern.fullmatch(rec[key]), f"{key}={rec[key]!r}: {line}"
    assert not FORBIDDEN & set(rec), f"{sorted(FORBIDDEN & set(rec))} are other spellings of the head keys: {line}"
    return rec
