"""The Railway log cursor: where each environment's log stream was last read up to, and its state file.

A cursor is the newest record timestamp shipped (integer nanoseconds) plus the identities of the records
shipped at exactly that timestamp: Railway's timestamps tie (a multi-line output is several records with
one timestamp), so "after this timestamp" alone would either repeat or drop records. The next query asks
from the cursor's timestamp inclusive and drops the records already shipped there.

The state file is JSON, replaced atomically (written beside it, fsynced, renamed, directory fsynced), and
only after the collector accepted the batch: a crash or a collector outage leaves the previous cursor,
so the same records are read again, never lost and never shipped twice."""

from __future__ import annotations

import calendar
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

STATE_FILE = "railway-logs-state.json"
STATE_VERSION = 1
# Identities kept per cursor at most: more records than this at one nanosecond are shipped, but a
# repeated read of that nanosecond could ship the excess again (railway_logs counts it as tie_overflow).
MAX_TIE_IDS = 5000
NS = 1_000_000_000
_RFC3339 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:\d\d)$")


class StateError(Exception):
    """The state directory or file cannot be used; the message names the path and the fix."""


def parse_ts(text: object) -> int | None:
    """RFC 3339 with up to nanosecond digits -> Unix nanoseconds (None if it is not one)."""
    if not isinstance(text, str):
        return None
    m = _RFC3339.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        secs = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s), 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    if not (1 <= int(mo) <= 12 and 1 <= int(d) <= 31 and int(h) < 24 and int(mi) < 60 and int(s) < 61):
        return None
    if tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        secs -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return secs * NS + int((frac or "").ljust(9, "0") or 0)


def format_ts(ns: int) -> str:
    """Unix nanoseconds -> RFC 3339 UTC with nine fractional digits (what Railway's Log.timestamp uses)."""
    secs, frac = divmod(int(ns), NS)
    import time  # local: only the formatting needs it
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


@dataclass(frozen=True)
class Raw:
    """One Log of environmentLogs, as parsed (attributes in the API's order)."""

    ts_ns: int
    message: str
    severity: str | None
    attributes: tuple[tuple[str, str], ...]
    tags: Mapping[str, str]


def identities(records: Sequence[Raw]) -> list[str]:
    """A stable identity per record: a digest of everything it carries plus its occurrence number among
    identical records, so two equal lines at one timestamp stay two records."""
    seen: dict[str, int] = {}
    out = []
    for r in records:
        h = hashlib.sha256(json.dumps([r.ts_ns, r.message, r.severity, list(r.attributes),
                                       sorted(r.tags.items())], separators=(",", ":")).encode()).hexdigest()[:32]
        k = seen.get(h, 0)
        seen[h] = k + 1
        out.append(f"{h}.{k}")
    return out


@dataclass(frozen=True)
class Cursor:
    ts_ns: int
    ids: frozenset[str] = frozenset()


def new_records(cursor: Cursor, records: Iterable[Raw]) -> tuple[list[tuple[Raw, str]], int]:
    """The records after ``cursor`` with their identities, in timestamp order (ties in the API's order), and
    how many were dropped as already shipped."""
    ordered = sorted(enumerate(records), key=lambda x: (x[1].ts_ns, x[0]))
    recs = [r for _, r in ordered]
    new, dup = [], 0
    for r, i in zip(recs, identities(recs), strict=True):
        if r.ts_ns < cursor.ts_ns or (r.ts_ns == cursor.ts_ns and i in cursor.ids):
            dup += 1
            continue
        new.append((r, i))
    return new, dup


def advance(cursor: Cursor, shipped: Sequence[tuple[Raw, str]]) -> Cursor:
    """The cursor once ``shipped`` (a prefix of new_records(cursor, ...)) was accepted."""
    if not shipped:
        return cursor
    top = shipped[-1][0].ts_ns
    at_top = [i for r, i in shipped if r.ts_ns == top]
    if top == cursor.ts_ns:
        at_top = sorted(cursor.ids) + at_top
    return Cursor(top, frozenset(at_top[-MAX_TIE_IDS:]))


def take_new(cursor: Cursor, records: Iterable[Raw]) -> tuple[list[Raw], Cursor, int]:
    """new_records, and the cursor after all of them (pure: the caller persists it once they are accepted)."""
    new, dup = new_records(cursor, records)
    return [r for r, _ in new], advance(cursor, new), dup


class StateFile:
    """Cursors by environment id in ``<dir>/railway-logs-state.json``."""

    def __init__(self, directory: str, setting: str = "RAILWAY_LOGS_STATE_DIR"):
        self.dir = directory
        self.path = os.path.join(directory, STATE_FILE)
        self.setting = setting

    def _fix(self) -> str:
        return (f"make {self.dir} a directory uid {os.getuid()} can write (in compose: the railway-logs "
                f"volume, created owned by 10001 by exporters/Dockerfile), or point {self.setting} at one")

    def check_writable(self) -> None:
        """Raises StateError unless a file can be created, written, synced and removed in the directory."""
        if not os.path.isdir(self.dir):
            raise StateError(f"{self.setting} ({self.dir}) is not a directory: {self._fix()}")
        try:
            fd, tmp = tempfile.mkstemp(prefix=".probe-", dir=self.dir)
            try:
                os.write(fd, b"ok")
                os.fsync(fd)
            finally:
                os.close(fd)
                os.unlink(tmp)
        except OSError as e:
            raise StateError(f"{self.setting} ({self.dir}) is not writable ({e.strerror or e}): {self._fix()}") \
                from None

    def load(self) -> dict[str, Cursor]:
        try:
            with open(self.path, encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise StateError(f"{self.path} cannot be read ({getattr(e, 'strerror', None) or e}); remove it to "
                             "start again from RAILWAY_LOGS_LOOKBACK_SECONDS ago, or fix its permissions") from None
        try:
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"version {data.get('version')!r}")
            out = {}
            for eid, c in data["environments"].items():
                ts = c["ts_ns"]
                if not isinstance(eid, str) or not isinstance(ts, int) or not all(isinstance(i, str) for i in c["ids"]):
                    raise ValueError("types")
                out[eid] = Cursor(ts, frozenset(c["ids"]))
            return out
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise StateError(f"{self.path} is not a Railway log cursor file ({e}); remove it to start again "
                             "from RAILWAY_LOGS_LOOKBACK_SECONDS ago") from None

    def save(self, cursors: Mapping[str, Cursor]) -> None:
        data = {"version": STATE_VERSION, "environments": {
            eid: {"ts_ns": c.ts_ns, "ts": format_ts(c.ts_ns), "ids": sorted(c.ids)} for eid, c in sorted(cursors.items())}}
        body = json.dumps(data, separators=(",", ":")).encode()
        try:
            fd, tmp = tempfile.mkstemp(prefix=".state-", dir=self.dir)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(body)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
            dfd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dfd)  # the rename itself survives a crash
            finally:
                os.close(dfd)
        except OSError as e:
            raise StateError(f"cannot write {self.path} ({e.strerror or e}): {self._fix()}") from None
