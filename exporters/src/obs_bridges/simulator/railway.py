"""The Railway public GraphQL API's HTTP side: authentication (account or project token) and the JSON body;
the schema and its resolvers are in railway_gql."""

from __future__ import annotations

import json

from obs_bridges.simulator import railway_gql
from obs_bridges.simulator.common import ApiRequest, Reply
from obs_bridges.simulator.faults import SimState


def handle(state: SimState, req: ApiRequest):
    w = state.world
    if req.method != "POST":
        raise Reply(405, {"errors": [{"message": "Method not allowed"}]})
    bearer = req.headers.get("Authorization", "")
    ptok = req.headers.get("Project-Access-Token", "").strip()
    scope = None
    projects = w.railway.projects
    if ptok:
        if ptok.startswith("proj-") and projects:
            p = projects[0]
            scope = {"kind": "project", "projectId": p["id"], "environmentId": p["envs"][0][0]}
    elif bearer.startswith("Bearer "):
        t = bearer[7:].strip()
        if t and not t.startswith(("invalid", "bad", "proj-")):
            scope = {"kind": "account"}
    try:
        body = json.loads(req.body or b"null")
    except (ValueError, RecursionError):
        raise Reply(400, {"errors": [{"message": "Unexpected token in JSON"}]}) from None
    if scope is None:
        return 200, {"data": None, "errors": [{"message": "Not Authorized"}]}, {}
    return 200, railway_gql.execute(w, scope, body), {}


def view(w, now: float) -> dict:
    """/_control/world/railway."""
    rw = w.railway
    return {"now": now, "projects": [{"id": p["id"], "name": p["name"], "envs": dict(p["envs"]),
                                      "services": dict(p["services"])} for p in rw.projects],
            "deployments": [{"id": d.id, "project_id": d.project_id, "service_id": d.service_id,
                             "environment_id": d.environment_id, "status": d.status(now),
                             "created": d.created,
                             "steps": [[s, a, b] for s, a, b in d.steps if b <= now]}
                            for d in rw.deployments if d.created <= now]}
