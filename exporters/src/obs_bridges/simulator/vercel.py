"""The Vercel REST API: projects and deployments of the team, paginated by millisecond timestamps."""

from __future__ import annotations

from obs_bridges.simulator.common import ApiRequest, Reply, q1, qint
from obs_bridges.simulator.faults import SimState


NOT_FOUND = {"error": {"code": "not_found", "message": "The requested path was not found"}}


def handle(state: SimState, req: ApiRequest):
    vc, q = state.world.vercel, req.q
    auth = req.headers.get("Authorization", "")
    tok = auth[7:].strip() if auth.startswith("Bearer ") else ""
    if not tok or tok.startswith(("invalid", "bad")):
        raise Reply(403, {"error": {"code": "forbidden", "message": "Not authorized", "invalidToken": True}})
    team = q1(q, "teamId")
    if team is not None and team != vc.team:
        raise Reply(403, {"error": {"code": "forbidden", "message": "Not authorized"}})
    parts = [p for p in req.path.split("/") if p]
    limit = qint(q, "limit", 20, 1, 100)  # checked on every path, as before the split: a bad one is 422 first
    for matches, endpoint in ROUTES:
        if matches(parts):
            return endpoint(state, req, parts, team, limit)
    raise Reply(404, NOT_FOUND)


def _projects(state: SimState, req: ApiRequest, parts: list[str], team: str | None, limit: int):
    """GET /v9|v10/projects: newest update first, paginated by `from` (updatedAt, exclusive)."""
    vc, q, now = state.world.vercel, req.q, state.world.now()
    projs = [] if team is None else [
        {"id": pid, "name": name, "accountId": vc.team, "framework": "nextjs",
         "createdAt": int((now - 86400 * 100) * 1000), "updatedAt": int((now - 3600 * (i + 1)) * 1000)}
        for i, (pid, name) in enumerate(vc.projects)]
    frm = q1(q, "from")
    if frm is not None:
        try:
            f = float(frm)
        except ValueError:
            raise Reply(400, {"error": {"code": "bad_request", "message": "Invalid from"}}) from None
        projs = [p for p in projs if p["updatedAt"] < f]
    page = projs[:limit]
    nxt = page[-1]["updatedAt"] if len(projs) > limit else None
    return 200, {"projects": page, "pagination": {"count": len(page), "next": nxt, "prev": None}}, {}


def _ms_bound(q: dict, key: str) -> int | None:
    raw = q1(q, key)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise Reply(400, {"error": {"code": "bad_request", "message": "Invalid since/until"}}) from None


def _deployments(state: SimState, req: ApiRequest, parts: list[str], team: str | None, limit: int):
    """GET /v6|v7/deployments: newest first, filtered, paginated by `until` (created, milliseconds)."""
    w, q = state.world, req.q
    now = w.now()
    with w.lock:
        deps = [] if team is None else [d for d in w.vercel.deployments if d.created <= now]
    for k in ("projectId", "target", "state"):
        v = q1(q, k)
        if v:
            deps = [d for d in deps if {"projectId": d.project_id, "target": d.target,
                                        "state": d.state(now)}[k] in v.split(",")]
    since, until = _ms_bound(q, "since"), _ms_bound(q, "until")
    # Vercel's timestamps are whole milliseconds: compare as the API does (until exclusive).
    deps = [d for d in deps if (since is None or int(d.created * 1000) >= since)
            and (until is None or int(d.created * 1000) < until)]
    deps.sort(key=lambda d: d.created, reverse=True)
    page = deps[:limit]
    nxt = int(page[-1].created * 1000) if len(deps) > limit else None
    return 200, {"deployments": [deployment_json(d, now) for d in page],
                 "pagination": {"count": len(page), "next": nxt,
                                "prev": int(page[0].created * 1000) if page else None}}, {}


def _deployment(state: SimState, req: ApiRequest, parts: list[str], team: str | None, limit: int):
    """GET /v13/deployments/{uid}."""
    now = state.world.now()
    d = next((d for d in state.world.vercel.deployments if d.uid == parts[2] and d.created <= now), None)
    if d is None:
        raise Reply(404, {"error": {"code": "not_found", "message": "Deployment not found"}})
    return 200, deployment_json(d, now), {}


# Path (split on "/") -> endpoint: the versions the bridge and Vercel's docs use.
ROUTES = (
    (lambda p: p in (["v10", "projects"], ["v9", "projects"]), _projects),
    (lambda p: len(p) == 2 and p[1] == "deployments" and p[0] in ("v6", "v7"), _deployments),
    (lambda p: len(p) == 3 and p[0] == "v13" and p[1] == "deployments", _deployment),
)


def deployment_json(d, now) -> dict:
    st = d.state(now)
    out = {"uid": d.uid, "name": d.project, "projectId": d.project_id, "url": f"{d.project}-{d.uid[4:13]}.vercel.app",
           "created": int(d.created * 1000), "createdAt": int(d.created * 1000), "state": st, "readyState": st,
           "type": "LAMBDAS", "source": "git", "creator": {"uid": "usr_demo", "username": "demo"},
           "inspectorUrl": f"https://vercel.com/team_demo/{d.project}/{d.uid}",
           "meta": {"githubCommitSha": d.sha, "githubCommitRef": d.branch, "githubCommitMessage": "Update"},
           }
    if d.target:
        out["target"] = d.target
    if st != "QUEUED":
        out["buildingAt"] = int(d.building * 1000)
    if st == "READY":
        out["ready"] = int(d.ended * 1000)
        if d.target == "production":
            out["readySubstate"] = "PROMOTED"
    if st == "ERROR":
        out["errorCode"] = "BUILD_FAILED"
        out["errorMessage"] = "Command \"npm run build\" exited with 1"
    return out


def view(w, now: float) -> dict:
    """/_control/world/vercel."""
    vc = w.vercel
    return {"now": now, "team": vc.team, "projects": dict(vc.projects),
            "deployments": [{"uid": d.uid, "project": d.project, "target": d.target or "preview",
                             "state": d.state(now), "created": d.created, "building": d.building,
                             "ended": d.ended} for d in vc.deployments if d.created <= now]}
