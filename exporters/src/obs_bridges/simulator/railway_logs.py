"""Railway's ``environmentLogs`` query in the simulator: the log lines of every service of an environment,
a pure function of the seed, the service, the environment and the second (so asking again returns the same
records), in the shape of Railway's public schema (railwayapp/cli src/gql/schema.json: Log, LogAttribute,
LogTags; the bridge's side is obs_bridges/railway_logs.py).

Each service writes a line in about a third of the seconds; a warning or an error comes with detail lines
of the same timestamp, as a multi-line write does. A third of the lines are structured: their
attributes carry level, a request id and, for the api service, a W3C trace id and span id. Lines exist from
the world's history start (what the API "keeps") up to its current time."""

from __future__ import annotations

import bisect
import hashlib
import json
import time

from graphql import GraphQLError

SDL = """
type LogAttribute { key: String! value: String! }
type LogTags { projectId: String environmentId: String serviceId: String deploymentId: String
  deploymentInstanceId: String pluginId: String snapshotId: String }
type Log { timestamp: String! message: String! severity: String attributes: [LogAttribute!]! tags: LogTags }
"""
QUERY_FIELDS = """
  environmentLogs(environmentId: String!, filter: String, beforeDate: String, beforeLimit: Int, anchorDate: String,
    afterDate: String, afterLimit: Int): [Log!]!
"""
MAX_LIMIT = 5000
DEFAULT_LIMIT = 100
# Seconds of log lines scanned per query at most (a query over a long quiet range stays cheap).
MAX_SCAN_SECONDS = 7 * 86400
LINE_PROBABILITY = 0.33
MESSAGES = {
    "info": ["request completed", "GET /api/orders 200", "job processed", "cache refreshed", "healthcheck ok",
             "POST /api/checkout 201", "connected to database"],
    "warn": ["slow query took 1200ms", "retrying upstream call", "queue depth above 100"],
    "err": ["upstream timeout after 5000ms", "unhandled exception in handler", "payment provider returned 502"],
    "debug": ["cache miss for key", "pool stats"],
}


def _ns(text: str | None, what: str) -> int | None:
    from obs_bridges.railway_logs_state import parse_ts  # the same RFC 3339 reading as the bridge's
    if text is None:
        return None
    v = parse_ts(text)
    if v is None:
        raise GraphQLError(f"Invalid date for {what}: {text}")
    return v


def _fmt(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


class Streams:
    """The log lines of one environment's services."""

    def __init__(self, world, project: dict, eid: str):
        self.w = world
        self.pid = project["id"]
        self.eid = eid
        self.services = list(project["services"])
        deps: dict[str, list] = {}
        for d in world.railway.deployments:
            if d.environment_id == eid and d.project_id == self.pid and d.outcome == "SUCCESS":
                deps.setdefault(d.service_id, []).append((d.finished, d.id))
        self.deps = {k: sorted(v) for k, v in deps.items()}

    def _deployment(self, sid: str, t: float) -> str | None:
        lst = self.deps.get(sid) or []
        i = bisect.bisect_right(lst, (t, "\uffff"))
        return lst[i - 1][1] if i else None

    def second(self, sec: int) -> list[dict]:
        """Every line of second ``sec``, in timestamp order."""
        seed, out = self.w.seed, []
        for sid, sname in self.services:
            # one digest per service and second gives every draw (crc32-based noise() draws are correlated)
            digest = hashlib.sha256(f"{seed}|rwlog|{sid}|{self.eid}|{sec}".encode()).hexdigest()
            u = [int(digest[k:k + 8], 16) / 2**32 for k in range(0, 64, 8)]
            if u[0] >= LINE_PROBABILITY:
                continue
            ts = sec * 1_000_000_000 + int(u[1] * 1e9)
            sev = "err" if u[2] < 0.06 else "warn" if u[2] < 0.16 else "debug" if u[2] < 0.22 else "info"
            msgs = MESSAGES[sev]
            msg = msgs[int(u[3] * len(msgs))]
            dep = self._deployment(sid, sec)
            tags = {"projectId": self.pid, "environmentId": self.eid, "serviceId": sid,
                    "deploymentId": dep, "deploymentInstanceId": (dep[:8] + "-i0") if dep else None}
            attrs = []
            if u[4] < 0.34:
                rid = hashlib.sha256(digest.encode()).hexdigest()[:16]
                attrs = [{"key": "level", "value": json.dumps("error" if sev == "err" else sev)},
                         {"key": "request_id", "value": json.dumps(rid)}]
                if sname == "api":
                    ids = hashlib.sha256(f"trace|{digest}".encode()).hexdigest()
                    attrs += [{"key": "trace_id", "value": json.dumps(ids[:32])},
                              {"key": "span_id", "value": json.dumps(ids[32:48])}]
                attrs.append({"key": "service", "value": json.dumps(sname)})
            line = {"timestamp": _fmt(ts), "message": f"[{sname}] {msg}", "severity": sev, "attributes": attrs,
                    "tags": tags, "_ns": ts}
            out.append(line)
            if sev in ("err", "warn"):  # a multi-line write: the detail lines share the timestamp
                for k in range(2 if sev == "err" else 1):
                    out.append({**line, "message": f"    at handler ({sname}/src/app.js:{42 + k})",
                                "attributes": []})
        out.sort(key=lambda x: x["_ns"])
        return out


def environment_logs(root, environmentId, filter=None, beforeDate=None, beforeLimit=None, anchorDate=None,
                     afterDate=None, afterLimit=None) -> list[dict]:
    """Up to ``beforeLimit`` lines before the anchor (not before ``beforeDate``) and up to ``afterLimit`` from the
    anchor on (inclusive, not after ``afterDate``), oldest first; the anchor defaults to now."""
    w = root.w
    proj = next((p for p in w.railway.projects if any(e == environmentId for e, _ in p["envs"])), None)
    if proj is None:
        raise GraphQLError("Environment not found")
    root._auth(proj["id"])
    if root.scope["kind"] == "project" and environmentId != root.scope["environmentId"]:
        raise GraphQLError("Not Authorized")
    for v, n in ((beforeLimit, "beforeLimit"), (afterLimit, "afterLimit")):
        if v is not None and not 0 <= v <= MAX_LIMIT:
            raise GraphQLError(f"{n} must be between 0 and {MAX_LIMIT}")
    now_ns = int(root.now * 1e9)
    first_ns = int(w.history_start * 1e9)
    anchor = _ns(anchorDate, "anchorDate")
    if anchor is None:
        anchor = now_ns
        if beforeLimit is None and afterLimit is None:
            beforeLimit = DEFAULT_LIMIT
    upto = min(now_ns, _ns(afterDate, "afterDate") or now_ns)
    oldest = max(first_ns, _ns(beforeDate, "beforeDate") or first_ns)
    streams = Streams(w, proj, environmentId)
    after: list[dict] = []
    if afterLimit:
        sec = max(anchor, first_ns) // 1_000_000_000
        last = min(upto // 1_000_000_000, sec + MAX_SCAN_SECONDS)
        while sec <= last and len(after) < afterLimit:
            after += [x for x in streams.second(sec) if max(anchor, first_ns) <= x["_ns"] <= upto]
            sec += 1
        after = after[:afterLimit]
    before: list[dict] = []
    if beforeLimit:
        sec = min(anchor, now_ns) // 1_000_000_000
        stop = max(oldest // 1_000_000_000, sec - MAX_SCAN_SECONDS)
        while sec >= stop and len(before) < beforeLimit:
            before = [x for x in streams.second(sec) if oldest <= x["_ns"] < anchor] + before
            sec -= 1
        before = before[-beforeLimit:]
    if filter:
        needle = filter.strip().lower()
        before = [x for x in before if needle in x["message"].lower()]
        after = [x for x in after if needle in x["message"].lower()]
    return [{k: v for k, v in x.items() if k != "_ns"} for x in before + after]
