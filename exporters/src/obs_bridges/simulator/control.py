"""The simulator's control API (/_control/*): time, arrival rates, rate limits, faults, scenarios, injected
items, Supabase project status, the request log and JSON views of the world."""

from __future__ import annotations

import json

from obs_bridges.simulator import drains, github, railway, supabase, vercel
from obs_bridges.simulator.common import Reply, num, q1
from obs_bridges.simulator.faults import SimState

MAX_ARRIVALS = 200_000
VIEWS = {"github": github.view, "vercel": vercel.view, "railway": railway.view, "supabase": supabase.view}


def world_view(state: SimState, platform: str) -> dict:
    w = state.world
    now = w.now()
    view = VIEWS.get(platform)
    if view is None:
        raise Reply(404, {"message": "unknown platform"})
    with w.lock:
        return view(w, now)


def _inject_github(w, data: dict, n: int) -> list:
    return w.github.inject(data.get("repo"), n, data.get("conclusion"), data.get("state", "completed"),
                           num(data, "finish_in", 2.0), num(data, "duration", 60.0),
                           {k: data[k] for k in ("workflow", "event", "branch") if k in data},
                           num(data, "created_ago", 1.0))


def _inject_vercel(w, data: dict, n: int) -> list:
    return w.vercel.inject(data.get("project"), n, data.get("outcomes") or data.get("outcome"),
                           data.get("state", "completed"), num(data, "finish_in", 2.0),
                           data.get("target", "production"), num(data, "spacing", 0.001))


def _inject_railway(w, data: dict, n: int) -> list:
    return w.railway.inject(n, data.get("outcome"), data.get("state", "completed"), data.get("project"))


INJECT = {"github": _inject_github, "vercel": _inject_vercel, "railway": _inject_railway}


def control(state: SimState, method: str, path: str, q: dict, body: bytes):
    parts = tuple(p for p in path.split("/") if p)[1:]
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        raise Reply(400, {"message": "body must be JSON"}) from None
    if not isinstance(data, dict):
        raise Reply(400, {"message": "body must be a JSON object"})
    endpoint = ENDPOINTS.get(parts) or (len(parts) == 2 and BY_PLATFORM.get(parts[0]))
    if not endpoint:
        raise Reply(404, {"message": "unknown control path"})
    return endpoint(state, method, parts, q, data)


def _health(state, method, parts, q, data):
    return 200, {"ok": True, "now": state.world.now()}, {}


def _faults(state, method, parts, q, data):
    if method == "DELETE":
        state.clear_faults()
        return 200, {"cleared": True}, {}
    if method == "GET":
        with state.lock:
            return 200, {"faults": list(state.faults)}, {}
    return 200, state.add_fault(data), {}


def _requests(state, method, parts, q, data):
    if method == "DELETE":
        with state.lock:
            state.requests.clear()
        return 200, {"cleared": True}, {}
    plat = q1(q, "platform")
    since = float(q1(q, "since", 0))
    with state.lock:
        items = [r for r in state.requests if (not plat or r["platform"] == plat) and r["t"] >= since]
    return 200, {"requests": items}, {}


def _advance(state, method, parts, q, data):
    w = state.world
    seconds = num(data, "seconds", 0)
    # In range but not in memory: every arrival is kept, so the arrivals an advance generates are capped.
    arrivals = seconds * sum(w.rates.values()) / 3600
    if arrivals > MAX_ARRIVALS:
        raise Reply(400, {"message": f"seconds: advancing {seconds:.0f} s at the current rates would create "
                                     f"{arrivals:.0f} arrivals (at most {MAX_ARRIVALS}); advance less or lower "
                                     "the rates"})
    w.advance(seconds)
    return 200, {"now": w.now()}, {}


def _known_platform(data: dict, known) -> str:
    """Checked before anything is stored: an unknown platform once stored broke every later advance."""
    known = sorted(known)
    if data.get("platform") not in known:
        raise Reply(400, {"message": f"platform must be one of {known}, got {str(data.get('platform'))[:40]!r}"})
    return data["platform"]


def _rate(state, method, parts, q, data):
    w = state.world
    w.set_rate(_known_platform(data, w.rates), num(data, "per_hour"))
    return 200, {"rates": w.rates}, {}


def _ratelimit(state, method, parts, q, data):
    plat = _known_platform(data, state.windows)
    with state.lock:
        win = state.windows[plat]
        win["limit"] = num(data, "limit", win["limit"], int)
        win["window"] = num(data, "window", win["window"])
        win["used"], win["start"] = 0, state.clock()
    return 200, {"ok": True}, {}


def _scenario(state, method, parts, q, data):
    w = state.world
    if data.get("name") == "failing_deployments":
        for p in data.get("platforms", ["github", "vercel", "railway"]):
            w.fail_all[p] = bool(data.get("enabled", True))
        return 200, {"fail_all": w.fail_all}, {}
    raise Reply(400, {"message": "unknown scenario"})


def _rerun_github(state, method, parts, q, data):
    try:
        attempt = state.world.github.rerun(num(data, "id", cast=int), data.get("previous_conclusion", "failure"),
                                           data.get("conclusion", "success"), num(data, "duration", 60.0))
    except (KeyError, ValueError):
        raise Reply(404, {"message": "no such run"}) from None
    return 200, {"attempt": attempt}, {}


def _inject(state, method, parts, q, data):
    inject = INJECT.get(parts[1])
    n = num(data, "count", 1, int)
    if inject is None:
        raise Reply(404, {"message": "unknown platform"})
    ids = inject(state.world, data, n)
    return 200, {"ids": ids if n <= 100 else len(ids)}, {}


def _supabase_project(state, method, parts, q, data):
    kw = {k: data[k] for k in ("status", "unhealthy") if k in data}
    if not state.world.supabase.set_project(data.get("name"), **kw):
        raise Reply(404, {"message": "no such project"})
    return 200, {"ok": True}, {}


def _webhooks(state, method, parts, q, data):
    """GET: the sender's counts and recent deliveries. POST {"kind": forged|unsigned|ping|redeliver, "id"?}:
    one special delivery, answered with the receiver's status; {"kind": "pause", "seconds": n} delays them."""
    sender = state.webhooks
    if sender is None:
        raise Reply(404, {"message": "no webhook target: start the simulator with --github-webhook-url"})
    if method == "GET":
        return 200, sender.view(), {}
    try:
        return 200, sender.special(str(data.get("kind", "")), data.get("id"), num(data, "seconds", 0.0)), {}
    except ValueError as e:
        raise Reply(400, {"message": str(e)}) from None


def _world(state, method, parts, q, data):
    return 200, world_view(state, parts[1]), {}


# /_control/<path> -> endpoint(state, method, parts, query, JSON body)
ENDPOINTS = {
    ("health",): _health, ("faults",): _faults, ("requests",): _requests, ("advance",): _advance,
    ("rate",): _rate, ("ratelimit",): _ratelimit, ("scenario",): _scenario, ("rerun", "github"): _rerun_github,
    ("supabase", "project"): _supabase_project, ("webhooks", "github"): _webhooks,
    ("drains",): drains.control_endpoint,
}
# /_control/<prefix>/<platform>
BY_PLATFORM = {"inject": _inject, "world": _world}
