"""HTTP front of the simulator: the four APIs in their shapes, rate limits, ETags, faults, control."""

from __future__ import annotations

import atexit
import base64
import hashlib
import json
import math
import os
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from obs_bridges import log
from obs_bridges.httpserver import make_http_server
from obs_bridges.files import write_atomic
from obs_bridges.simulator import railway_gql
from obs_bridges.simulator.world import DEFAULT_RATES, SB_SERVICES, World

LOG = log.get("obs_bridges.simulator")

# Rate-limit windows per platform: (limit, window seconds). GitHub PAT 5,000/h; Railway Hobby 1,000/h;
# Supabase 60/min (429 for the rest of the minute); Vercel's per-endpoint limits are not published.
RATE_LIMITS = {"github": (5000, 3600), "railway": (1000, 3600), "vercel": (100, 60), "supabase": (60, 60)}
FAULT_KINDS = {"outage", "http5xx", "ratelimit429", "exhaust", "unauthorized", "malformed", "truncated",
               "wrong_shape", "slow"}


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def add_world_args(p, env) -> None:
    g = lambda k, d: env.get(k, d)  # noqa: E731
    p.add_argument("--seed", type=int, default=int(g("SIM_SEED", "42")))
    p.add_argument("--github-repos", type=int, default=int(g("SIM_GITHUB_REPOS", "3")))
    p.add_argument("--vercel-projects", type=int, default=int(g("SIM_VERCEL_PROJECTS", "3")))
    p.add_argument("--railway-projects", type=int, default=int(g("SIM_RAILWAY_PROJECTS", "2")))
    p.add_argument("--supabase-projects", type=int, default=int(g("SIM_SUPABASE_PROJECTS", "2")))
    p.add_argument("--history-hours", type=float, default=float(g("SIM_HISTORY_HOURS", "6")))
    p.add_argument("--github-rate", type=float, default=float(g("SIM_GITHUB_RUNS_PER_REPO_HOUR", "2")),
                   help="new workflow runs per repository per hour")
    p.add_argument("--vercel-rate", type=float, default=float(g("SIM_VERCEL_DEPLOYS_PER_PROJECT_HOUR", "2")))
    p.add_argument("--railway-rate", type=float, default=float(g("SIM_RAILWAY_DEPLOYS_PER_SERVICE_HOUR", "1")))
    p.add_argument("--time-scale", type=float, default=float(g("SIM_TIME_SCALE", "1")),
                   help="multiply every simulated duration (0.1 = ten times faster)")
    # Outcome rates (0..1). The defaults make a calm world: nothing critical or high fires by itself
    # (world.DEFAULT_RATES says which alert each one feeds); raise them to see incidents without /_control.
    rate = lambda flag, var, key, what: p.add_argument(  # noqa: E731
        flag, type=float, default=float(g(var, str(DEFAULT_RATES[key]))), help=f"{what} (env {var})")
    rate("--supabase-incidents", "SIM_SUPABASE_INCIDENT_RATE", "supabase_incident",
         "share of 5-minute windows each Supabase service, the database included, is UNHEALTHY")
    rate("--supabase-minor-incidents", "SIM_SUPABASE_MINOR_INCIDENT_RATE", "supabase_minor_incident",
         "same, for the non-database services only")
    rate("--github-failure-rate", "SIM_GITHUB_FAILURE_RATE", "github_failure", "share of CI runs that fail")
    rate("--github-deploy-failure-rate", "SIM_GITHUB_DEPLOY_FAILURE_RATE", "github_deploy_failure",
         "share of deploy/release workflow runs that fail")
    rate("--github-smoke-failure-rate", "SIM_GITHUB_SMOKE_FAILURE_RATE", "github_smoke_failure",
         "share of the post-deploy smoke-test runs that fail")
    rate("--vercel-preview-error-rate", "SIM_VERCEL_PREVIEW_ERROR_RATE", "vercel_preview_error",
         "share of preview deployments that end in ERROR")
    rate("--vercel-production-error-rate", "SIM_VERCEL_PRODUCTION_ERROR_RATE", "vercel_production_error",
         "share of production deployments that end in ERROR")
    rate("--railway-failure-rate", "SIM_RAILWAY_FAILURE_RATE", "railway_failure",
         "share of Railway deployments whose build fails")
    rate("--railway-crash-rate", "SIM_RAILWAY_CRASH_RATE", "railway_crash",
         "share of Railway deployments that crash after going live")
    p.add_argument("--prometheus-dir", default=g("SIM_PROMETHEUS_DIR", ""),
                   help="write the Prometheus file_sd targets of the Supabase metrics endpoint and its service-role "
                        "key here at start (docker-compose.yml's demo scrape job; env SIM_PROMETHEUS_DIR)")


def world_from_args(a) -> World:
    for k in ("github_repos", "vercel_projects", "railway_projects", "supabase_projects"):
        if not 0 <= getattr(a, k) <= 1000:
            raise ValueError(f"--{k.replace('_', '-')} must be between 0 and 1000")
    rates = {"supabase_incident": a.supabase_incidents, "supabase_minor_incident": a.supabase_minor_incidents,
             "github_failure": a.github_failure_rate, "github_deploy_failure": a.github_deploy_failure_rate,
             "github_smoke_failure": a.github_smoke_failure_rate,
             "vercel_preview_error": a.vercel_preview_error_rate,
             "vercel_production_error": a.vercel_production_error_rate,
             "railway_failure": a.railway_failure_rate, "railway_crash": a.railway_crash_rate}
    bad = [k for k, v in rates.items() if not 0 <= v <= 1]
    if bad:
        raise ValueError(f"outcome rates must be between 0 and 1: {bad}")
    if a.railway_failure_rate + a.railway_crash_rate > 1:
        raise ValueError("--railway-failure-rate + --railway-crash-rate must not exceed 1")
    w = World(seed=a.seed, github_repos=a.github_repos, vercel_projects=a.vercel_projects,
              railway_projects=a.railway_projects, supabase_projects=a.supabase_projects,
              history_hours=a.history_hours, gh_rate=a.github_rate, vc_rate=a.vercel_rate, rw_rate=a.railway_rate,
              time_scale=a.time_scale, outcome_rates=rates)
    w.prometheus_dir = a.prometheus_dir.strip() or None
    return w


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


class Reply(Exception):
    def __init__(self, status: int, body, headers: dict | None = None):
        self.status = status
        self.body = body
        self.headers = headers or {}


class SimState:
    def __init__(self, world: World):
        self.world = world
        self.lock = threading.Lock()
        self.faults: list[dict] = []
        self.requests: deque = deque(maxlen=200000)
        self.windows = {p: {"start": time.time(), "used": 0, "limit": lim, "window": win, "exhausted_until": 0.0}
                        for p, (lim, win) in RATE_LIMITS.items()}
        self._fault_id = 0

    def add_fault(self, spec: dict) -> dict:
        kind = spec.get("kind")
        if kind not in FAULT_KINDS:
            raise Reply(400, {"message": f"kind must be one of {sorted(FAULT_KINDS)}"})
        plat = spec.get("platform", "*")
        with self.lock:
            self._fault_id += 1
            f = {"id": self._fault_id, "platform": plat, "kind": kind,
                 "remaining": num(spec, "count", cast=int) if spec.get("count") is not None else None,
                 "until": (time.time() + num(spec, "duration")) if spec.get("duration") is not None else None,
                 "retry_after": num(spec, "retry_after", 5, int), "status": num(spec, "status", 503, int),
                 "delay": num(spec, "delay", 2.0), "path": spec.get("path")}
            if kind == "exhaust":
                w = self.windows[plat]
                w["exhausted_until"] = time.time() + float(spec.get("duration", 30))
                w["used"] = w["limit"]
                return f
            self.faults.append(f)
            return f

    def take_fault(self, platform: str, path: str) -> dict | None:
        now = time.time()
        with self.lock:
            for f in list(self.faults):
                if f["until"] is not None and now > f["until"]:
                    self.faults.remove(f)
                    continue
                if f["platform"] not in ("*", platform):
                    continue
                if f["path"] and f["path"] not in path:
                    continue
                if f["remaining"] is not None:
                    f["remaining"] -= 1
                    if f["remaining"] <= 0:
                        self.faults.remove(f)
                return f
        return None

    def rate(self, platform: str, counted: bool) -> tuple[bool, dict]:
        """Account one request; returns (allowed, headers)."""
        now = time.time()
        with self.lock:
            w = self.windows[platform]
            if w["exhausted_until"] and now >= w["exhausted_until"]:
                w["start"], w["used"], w["exhausted_until"] = now, 0, 0.0  # injected exhaustion is over
            if now - w["start"] >= w["window"] and now >= w["exhausted_until"]:
                w["start"], w["used"] = now, 0
            reset = w["exhausted_until"] if now < w["exhausted_until"] else w["start"] + w["window"]
            allowed = w["used"] < w["limit"] and now >= w["exhausted_until"]
            if allowed and counted:
                w["used"] += 1
            rem = max(0, w["limit"] - w["used"]) if now >= w["exhausted_until"] else 0
            h = {"x-ratelimit-limit": str(w["limit"]), "x-ratelimit-remaining": str(rem),
                 "x-ratelimit-reset": str(int(reset))}
            if platform == "github":
                h["x-ratelimit-used"] = str(w["used"])
                h["x-ratelimit-resource"] = "core"
            if not allowed:
                h["Retry-After"] = str(max(1, int(reset - now + 0.999)))
            return allowed, h


# ---------------------------------------------------------------- platform handlers

def _q1(q: dict, k: str, default=None):
    v = q.get(k)
    return v[0] if v else default


def _int(q, k, default, lo, hi):
    try:
        v = int(_q1(q, k, default))
    except (TypeError, ValueError):
        raise Reply(422, {"message": f"Invalid value for {k}"}) from None
    return max(lo, min(hi, v))


def github(state: SimState, method: str, path: str, q: dict, headers, base: str):
    w = state.world
    auth = headers.get("Authorization", "")
    tok = auth.split(" ", 1)[1].strip() if " " in auth else ""
    if not tok:
        raise Reply(401, {"message": "Requires authentication", "documentation_url": "https://docs.github.com/rest"})
    if tok.startswith(("invalid", "bad")):
        raise Reply(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
    now = w.now()
    parts = [p for p in path.split("/") if p]

    def paginate(items, to_json):
        per_page = _int(q, "per_page", 30, 1, 100)
        page = _int(q, "page", 1, 1, 10**6)
        total = len(items)
        last = max(1, -(-total // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]
        links = []

        def url(n):
            qq = {k: v[0] for k, v in q.items()}
            qq["page"] = str(n)
            return f'<{base}{path}?{urlencode(qq)}>'
        if page < last:
            links += [url(page + 1) + '; rel="next"', url(last) + '; rel="last"']
        if page > 1:
            links += [url(page - 1) + '; rel="prev"', url(1) + '; rel="first"']
        h = {"Link": ", ".join(links)} if links else {}
        return [to_json(x) for x in chunk], total, h

    if parts == ["rate_limit"]:
        return 200, {"resources": {}}, {}
    if len(parts) == 3 and parts[0] in ("orgs", "users") and parts[2] == "repos":
        if parts[1] != w.gh_org:
            raise Reply(404, {"message": "Not Found"})
        repos = [{"id": 7000 + i, "name": r.split("/")[1], "full_name": r, "private": False, "archived": False,
                  "owner": {"login": w.gh_org}} for i, r in enumerate(w.gh_repos)]
        items, _, h = paginate(repos, lambda x: x)
        return 200, items, h
    if len(parts) >= 4 and parts[0] == "repos" and parts[3] == "actions":
        repo = f"{parts[1]}/{parts[2]}"
        if repo not in w.gh_runs:
            raise Reply(404, {"message": "Not Found"})
        rest = parts[4:]
        if rest == ["workflows"]:
            wfs = [{"id": wid, "node_id": f"W_{wid}", "name": n, "path": p, "state": "active"}
                   for wid, n, p, _ in w.gh_workflows[repo]]
            items, total, h = paginate(wfs, lambda x: x)
            return 200, {"total_count": total, "workflows": items}, h
        if rest == ["runs"]:
            created_from, created_to = None, None
            c = _q1(q, "created")
            if c:
                try:
                    if c.startswith(">="):
                        created_from = _parse_iso(c[2:])
                    elif c.startswith("<="):
                        created_to = _parse_iso(c[2:])
                    elif ".." in c:
                        a, b = c.split("..", 1)
                        created_from, created_to = _parse_iso(a), _parse_iso(b)
                    else:
                        raise ValueError
                except ValueError:
                    raise Reply(422, {"message": "Validation Failed: created"}) from None
            with w.lock:
                runs = w.gh_list_runs(repo, created_from, now)
            if created_to is not None:
                runs = [r for r in runs if r.created <= created_to]
            for k in ("status", "branch", "event"):
                v = _q1(q, k)
                if v:
                    runs = [r for r in runs if {"status": r.status(now) if v in ("queued", "in_progress",
                            "completed") else r.conclusion, "branch": r.branch, "event": r.event}[k] == v]
            items, total, h = paginate(runs, lambda r: _gh_run(r, now, base, repo))
            return 200, {"total_count": total, "workflow_runs": items}, h
        # A run (its latest attempt) or one attempt of it, and their jobs: /runs/{id}[/attempts/{n}][/jobs]
        tail = rest[2:-1] if rest[-1:] == ["jobs"] else rest[2:]
        if rest[:1] == ["runs"] and len(rest) >= 2 and (not tail or (len(tail) == 2 and tail[0] == "attempts")):
            run = _gh_attempt(w, repo, rest[1], tail[1] if tail else None, now)
            if rest[-1] == "jobs":
                jobs = [j for j in run.jobs if j.created <= now]
                items, total, h = paginate(jobs, lambda j: _gh_job(j, run, now))
                return 200, {"total_count": total, "jobs": items}, h
            return 200, _gh_run(run, now, base, repo), {}
    raise Reply(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})


def _gh_attempt(w, repo: str, run_id: str, attempt: str | None, now: float):
    """The run with that id in that repository, at the given attempt (None: the latest), or a 404."""
    try:
        run = w.gh_run_by_id[int(run_id)]
        n = run.attempt if attempt is None else int(attempt)
    except (ValueError, KeyError):
        raise Reply(404, {"message": "Not Found"}) from None
    if run.repo != repo or run.created > now:
        raise Reply(404, {"message": "Not Found"})
    if n != run.attempt:
        run = w.gh_past_attempts.get((run.id, n))
        if run is None:
            raise Reply(404, {"message": "Not Found"})
    return run


def _parse_iso(s: str) -> float:
    from datetime import datetime, timezone

    dt = datetime.fromisoformat(s.strip().replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _gh_run(r, now, base, repo) -> dict:
    st = r.status(now)
    upd = r.created if st == "queued" else (r.started if st == "in_progress" else r.finished)
    return {
        "id": r.id, "name": r.workflow_name, "node_id": f"WFR_{r.id}", "head_branch": r.branch,
        "head_sha": r.sha, "path": r.path, "display_title": f"Change {r.sha[:7]}", "run_number": r.run_number,
        "event": r.event, "status": st, "conclusion": r.conclusion if st == "completed" else None,
        "workflow_id": r.workflow_id, "check_suite_id": r.id * 3, "url": f"{base}/repos/{repo}/actions/runs/{r.id}",
        "html_url": f"https://github.com/{repo}/actions/runs/{r.id}", "created_at": iso(r.created),
        "updated_at": iso(upd), "run_attempt": r.attempt, "run_started_at": iso(r.started if st != "queued"
                                                                               else r.created),
        "jobs_url": f"{base}/repos/{repo}/actions/runs/{r.id}/jobs", "actor": {"login": "octo-dev", "id": 1},
        "repository": {"full_name": repo},
    }


def _gh_job(j, run, now) -> dict:
    st = "queued" if now < j.started else ("in_progress" if now < j.completed else "completed")
    return {"id": j.id, "run_id": run.id, "run_attempt": run.attempt, "name": j.name, "status": st,
            "conclusion": j.conclusion if st == "completed" else None, "created_at": iso(j.created),
            "started_at": iso(j.started) if st != "queued" else iso(j.created),
            "completed_at": iso(j.completed) if st == "completed" else None, "labels": j.labels,
            "runner_name": "GitHub Actions 1" if st != "queued" else None,
            "runner_group_name": "GitHub Actions" if st != "queued" else None,
            "steps": [], "head_sha": run.sha, "workflow_name": run.workflow_name}


def vercel(state: SimState, method: str, path: str, q: dict, headers, base: str):
    w = state.world
    auth = headers.get("Authorization", "")
    tok = auth[7:].strip() if auth.startswith("Bearer ") else ""
    if not tok or tok.startswith(("invalid", "bad")):
        raise Reply(403, {"error": {"code": "forbidden", "message": "Not authorized", "invalidToken": True}})
    team = _q1(q, "teamId")
    if team is not None and team != w.vc_team:
        raise Reply(403, {"error": {"code": "forbidden", "message": "Not authorized"}})
    now = w.now()
    parts = [p for p in path.split("/") if p]
    limit = _int(q, "limit", 20, 1, 100)
    if parts == ["v10", "projects"] or parts == ["v9", "projects"]:
        projs = [] if team is None else [
            {"id": pid, "name": name, "accountId": w.vc_team, "framework": "nextjs",
             "createdAt": int((now - 86400 * 100) * 1000), "updatedAt": int((now - 3600 * (i + 1)) * 1000)}
            for i, (pid, name) in enumerate(w.vc_projects)]
        frm = _q1(q, "from")
        if frm is not None:
            try:
                f = float(frm)
            except ValueError:
                raise Reply(400, {"error": {"code": "bad_request", "message": "Invalid from"}}) from None
            projs = [p for p in projs if p["updatedAt"] < f]
        page = projs[:limit]
        nxt = page[-1]["updatedAt"] if len(projs) > limit else None
        return 200, {"projects": page, "pagination": {"count": len(page), "next": nxt, "prev": None}}, {}
    if len(parts) == 2 and parts[1] == "deployments" and parts[0] in ("v6", "v7"):
        with w.lock:
            deps = [] if team is None else [d for d in w.vc_deployments if d.created <= now]
        for k in ("projectId", "target", "state"):
            v = _q1(q, k)
            if v:
                deps = [d for d in deps if {"projectId": d.project_id, "target": d.target,
                                            "state": d.state(now)}[k] in v.split(",")]
        try:
            since = int(_q1(q, "since")) if _q1(q, "since") else None
            until = int(_q1(q, "until")) if _q1(q, "until") else None
        except ValueError:
            raise Reply(400, {"error": {"code": "bad_request", "message": "Invalid since/until"}}) from None
        # Vercel's timestamps are whole milliseconds: compare as the API does (until exclusive).
        deps = [d for d in deps if (since is None or int(d.created * 1000) >= since)
                and (until is None or int(d.created * 1000) < until)]
        deps.sort(key=lambda d: d.created, reverse=True)
        page = deps[:limit]
        nxt = int(page[-1].created * 1000) if len(deps) > limit else None
        return 200, {"deployments": [_vc_dep(d, now) for d in page],
                     "pagination": {"count": len(page), "next": nxt,
                                    "prev": int(page[0].created * 1000) if page else None}}, {}
    if len(parts) == 3 and parts[0] == "v13" and parts[1] == "deployments":
        d = next((d for d in w.vc_deployments if d.uid == parts[2] and d.created <= now), None)
        if d is None:
            raise Reply(404, {"error": {"code": "not_found", "message": "Deployment not found"}})
        return 200, _vc_dep(d, now), {}
    raise Reply(404, {"error": {"code": "not_found", "message": "The requested path was not found"}})


def _vc_dep(d, now) -> dict:
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


def railway(state: SimState, method: str, path: str, q: dict, headers, base: str, body: bytes):
    w = state.world
    if method != "POST":
        raise Reply(405, {"errors": [{"message": "Method not allowed"}]})
    bearer = headers.get("Authorization", "")
    ptok = headers.get("Project-Access-Token", "").strip()
    scope = None
    if ptok:
        if ptok.startswith("proj-") and w.rw_projects:
            p = w.rw_projects[0]
            scope = {"kind": "project", "projectId": p["id"], "environmentId": p["envs"][0][0]}
    elif bearer.startswith("Bearer "):
        t = bearer[7:].strip()
        if t and not t.startswith(("invalid", "bad", "proj-")):
            scope = {"kind": "account"}
    try:
        req = json.loads(body or b"null")
    except (ValueError, RecursionError):
        raise Reply(400, {"errors": [{"message": "Unexpected token in JSON"}]}) from None
    if scope is None:
        return 200, {"data": None, "errors": [{"message": "Not Authorized"}]}, {}
    return 200, railway_gql.execute(w, scope, req), {}


def supabase(state: SimState, method: str, path: str, q: dict, headers, base: str):
    w = state.world
    auth = headers.get("Authorization", "")
    tok = auth[7:].strip() if auth.startswith("Bearer ") else ""
    if not tok or tok.startswith(("invalid", "bad")):
        raise Reply(401, {"message": "Unauthorized"})
    now = w.now()
    parts = [p for p in path.split("/") if p]
    if parts == ["v1", "projects"]:
        return 200, [{"id": p["ref"], "ref": p["ref"], "organization_id": w.sb_org, "organization_slug": w.sb_org,
                      "name": p["name"], "region": p["region"], "created_at": iso(p["created_at"]),
                      "status": p["status"],
                      "database": {"host": f"db.{p['ref']}.supabase.co", "version": "15.8.1.085",
                                   "postgres_engine": "15", "release_channel": "ga"}}
                     for p in w.sb_projects], {}
    if len(parts) == 4 and parts[:2] == ["v1", "projects"]:
        p = next((p for p in w.sb_projects if p["ref"] == parts[2]), None)
        if p is None:
            raise Reply(404, {"message": "Project not found"})
        if p["status"] in ("INACTIVE", "PAUSING", "REMOVED", "GOING_DOWN", "INIT_FAILED"):
            raise Reply(400, {"message": f"Project is {p['status'].lower()}"})
        if parts[3] == "health":
            svcs = _q1(q, "services")
            if not svcs:
                raise Reply(400, {"message": "services is required"})
            out = []
            for s in svcs.split(","):
                if s not in SB_SERVICES:
                    raise Reply(400, {"message": f"Invalid service: {s}"})
                st = w.sb_health(p["ref"], s, now)
                item = {"name": s, "healthy": st == "ACTIVE_HEALTHY", "status": st}
                if st == "UNHEALTHY":
                    item["error"] = "service did not answer its health check"
                    if s == "realtime":
                        item["info"] = {"healthy": False, "db_connected": True, "replication_connected": False,
                                        "connected_cluster": 0}
                out.append(item)
            return 200, out, {}
        if parts[3] == "api-keys":
            reveal = _q1(q, "reveal") == "true"
            return 200, [{"name": "anon", "api_key": "sim-anon-key", "type": "legacy"},
                         {"name": "service_role", "api_key": p["service_role_key"] if reveal else
                          p["service_role_key"][:6] + "·" * 10, "type": "legacy"}], {}
    raise Reply(404, {"message": "Not found"})


def supabase_metrics(state: SimState, ref: str, headers) -> tuple[int, bytes, dict]:
    w = state.world
    p = next((p for p in w.sb_projects if p["ref"] == ref), None)
    if p is None:
        return 404, b"not found\n", {"Content-Type": "text/plain"}
    auth = headers.get("Authorization", "")
    ok = False
    if auth.startswith("Basic "):
        try:
            user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            ok = user == "service_role" and pw == p["service_role_key"]
        except (ValueError, UnicodeDecodeError):
            ok = False
    if not ok:
        return 401, b"Unauthorized\n", {"WWW-Authenticate": 'Basic realm="metrics"', "Content-Type": "text/plain"}
    now = w.now()
    up = 1 if p["status"] == "ACTIVE_HEALTHY" and w.sb_health(ref, "db", now) != "UNHEALTHY" else 0
    lb = f'supabase_project_ref="{ref}",supabase_identifier="{ref}",service_type="db"'
    t = int(now - p["created_at"])
    lines = [
        "# HELP pg_up Whether the last scrape of postgres was able to connect.", "# TYPE pg_up gauge",
        f"pg_up{{{lb}}} {up}",
        "# HELP pg_stat_database_xact_commit_total Transactions committed.",
        "# TYPE pg_stat_database_xact_commit_total counter",
        f'pg_stat_database_xact_commit_total{{{lb},datname="postgres"}} {t * 7}',
        "# HELP pg_stat_database_xact_rollback_total Transactions rolled back.",
        "# TYPE pg_stat_database_xact_rollback_total counter",
        f'pg_stat_database_xact_rollback_total{{{lb},datname="postgres"}} {t // 50}',
        "# HELP pg_stat_database_num_backends Backends connected.", "# TYPE pg_stat_database_num_backends gauge",
        f'pg_stat_database_num_backends{{{lb},datname="postgres"}} {10 + int(now // 60) % 7}',
        "# HELP pg_database_size_bytes Database size.", "# TYPE pg_database_size_bytes gauge",
        f'pg_database_size_bytes{{{lb},datname="postgres"}} {50_000_000 + t * 10}',
        "# HELP connection_stats_connection_count Connections.", "# TYPE connection_stats_connection_count gauge",
        f"connection_stats_connection_count{{{lb}}} {12 + int(now // 60) % 5}",
        "# HELP max_connections_connection_count Max connections.",
        "# TYPE max_connections_connection_count gauge", f"max_connections_connection_count{{{lb}}} 60",
        "# HELP node_cpu_seconds_total CPU seconds.", "# TYPE node_cpu_seconds_total counter",
        f'node_cpu_seconds_total{{{lb},cpu="0",mode="idle"}} {t * 0.8:.1f}',
        f'node_cpu_seconds_total{{{lb},cpu="0",mode="user"}} {t * 0.15:.1f}',
        # The database host's disk (node exporter metrics of the endpoint): slowly filling.
        "# HELP node_filesystem_avail_bytes Filesystem space available.", "# TYPE node_filesystem_avail_bytes gauge",
        f'node_filesystem_avail_bytes{{{lb},device="/dev/nvme1n1",fstype="ext4",mountpoint="/data"}} '
        f"{max(1_000_000_000, 7_000_000_000 - t * 10)}",
        "# HELP node_filesystem_size_bytes Filesystem size.", "# TYPE node_filesystem_size_bytes gauge",
        f'node_filesystem_size_bytes{{{lb},device="/dev/nvme1n1",fstype="ext4",mountpoint="/data"}} 8000000000',
        # Supavisor/PgBouncer pools (platform-apis.md: pgbouncer_pools_client_{active,waiting}_connections).
        "# HELP pgbouncer_pools_client_active_connections Client connections linked to a server connection.",
        "# TYPE pgbouncer_pools_client_active_connections gauge",
        f'pgbouncer_pools_client_active_connections{{{lb},database="postgres",user="authenticator"}} '
        f"{8 + int(now // 60) % 4}",
        "# HELP pgbouncer_pools_client_waiting_connections Client connections waiting for a server connection.",
        "# TYPE pgbouncer_pools_client_waiting_connections gauge",
        f'pgbouncer_pools_client_waiting_connections{{{lb},database="postgres",user="authenticator"}} 0',
        "# HELP gotrue_running Auth server running.", "# TYPE gotrue_running gauge",
        f'gotrue_running{{supabase_project_ref="{ref}",supabase_identifier="{ref}",service_type="gotrue"}} 1',
        "",
    ]
    return 200, "\n".join(lines).encode(), {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}


# ---------------------------------------------------------------- control

def world_view(state: SimState, platform: str) -> dict:
    w = state.world
    now = w.now()
    with w.lock:
        if platform == "github":
            return {"now": now, "org": w.gh_org, "repos": w.gh_repos,
                    "workflows": {r: {str(wid): n for wid, n, _, _ in v} for r, v in w.gh_workflows.items()},
                    "runs": [{"id": r.id, "repo": r.repo, "attempt": r.attempt, "workflow": r.workflow_name,
                              "event": r.event, "branch": r.branch, "status": r.status(now),
                              "conclusion": r.conclusion, "created": r.created, "started": r.started,
                              "finished": r.finished,
                              "jobs": [{"name": j.name, "created": j.created, "started": j.started,
                                        "completed": j.completed} for j in r.jobs]}
                             for runs in w.gh_runs.values() for r in runs if r.created <= now]}
        if platform == "vercel":
            return {"now": now, "team": w.vc_team, "projects": dict(w.vc_projects),
                    "deployments": [{"uid": d.uid, "project": d.project, "target": d.target or "preview",
                                     "state": d.state(now), "created": d.created, "building": d.building,
                                     "ended": d.ended} for d in w.vc_deployments if d.created <= now]}
        if platform == "railway":
            return {"now": now, "projects": [{"id": p["id"], "name": p["name"], "envs": dict(p["envs"]),
                                              "services": dict(p["services"])} for p in w.rw_projects],
                    "deployments": [{"id": d.id, "project_id": d.project_id, "service_id": d.service_id,
                                     "environment_id": d.environment_id, "status": d.status(now),
                                     "created": d.created,
                                     "steps": [[s, a, b] for s, a, b in d.steps if b <= now]}
                                    for d in w.rw_deployments if d.created <= now]}
        if platform == "supabase":
            return {"now": now, "projects": [{"ref": p["ref"], "name": p["name"], "status": p["status"],
                                              "region": p["region"], "service_role_key": p["service_role_key"],
                                              "health": {s: w.sb_health(p["ref"], s, now) for s in SB_SERVICES}}
                                             for p in w.sb_projects]}
    raise Reply(404, {"message": "unknown platform"})


def control(state: SimState, method: str, path: str, q: dict, body: bytes):
    w = state.world
    parts = [p for p in path.split("/") if p][1:]
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        raise Reply(400, {"message": "body must be JSON"}) from None
    if not isinstance(data, dict):
        raise Reply(400, {"message": "body must be a JSON object"})
    if parts == ["health"]:
        return 200, {"ok": True, "now": w.now()}, {}
    if parts == ["faults"]:
        if method == "DELETE":
            with state.lock:
                state.faults.clear()
                for win in state.windows.values():
                    win["exhausted_until"] = 0.0
                    win["used"] = 0
            return 200, {"cleared": True}, {}
        if method == "GET":
            with state.lock:
                return 200, {"faults": list(state.faults)}, {}
        return 200, state.add_fault(data), {}
    if parts == ["requests"]:
        if method == "DELETE":
            with state.lock:
                state.requests.clear()
            return 200, {"cleared": True}, {}
        plat = _q1(q, "platform")
        since = float(_q1(q, "since", 0))
        with state.lock:
            items = [r for r in state.requests if (not plat or r["platform"] == plat) and r["t"] >= since]
        return 200, {"requests": items}, {}
    if parts == ["advance"]:
        seconds = num(data, "seconds", 0)
        # In range but not in memory: every arrival is kept, so the arrivals an advance generates are capped.
        arrivals = seconds * sum(w.rates.values()) / 3600
        if arrivals > MAX_ARRIVALS:
            raise Reply(400, {"message": f"seconds: advancing {seconds:.0f} s at the current rates would create "
                                         f"{arrivals:.0f} arrivals (at most {MAX_ARRIVALS}); advance less or lower "
                                         "the rates"})
        w.advance(seconds)
        return 200, {"now": w.now()}, {}
    # Checked before anything is stored: an unknown platform once stored broke every later advance.
    known = sorted(w.rates) if parts == ["rate"] else sorted(state.windows) if parts == ["ratelimit"] else None
    if known is not None and data.get("platform") not in known:
        raise Reply(400, {"message": f"platform must be one of {known}, got {str(data.get('platform'))[:40]!r}"})
    if parts == ["rate"]:
        w.set_rate(data["platform"], num(data, "per_hour"))
        return 200, {"rates": w.rates}, {}
    if parts == ["ratelimit"]:
        plat = data["platform"]
        with state.lock:
            win = state.windows[plat]
            win["limit"] = num(data, "limit", win["limit"], int)
            win["window"] = num(data, "window", win["window"])
            win["used"], win["start"] = 0, time.time()
        return 200, {"ok": True}, {}
    if parts == ["scenario"]:
        name = data.get("name")
        if name == "failing_deployments":
            for p in data.get("platforms", ["github", "vercel", "railway"]):
                w.fail_all[p] = bool(data.get("enabled", True))
            return 200, {"fail_all": w.fail_all}, {}
        raise Reply(400, {"message": "unknown scenario"})
    if parts == ["rerun", "github"]:
        try:
            attempt = w.rerun_gh(num(data, "id", cast=int), data.get("previous_conclusion", "failure"),
                                 data.get("conclusion", "success"), num(data, "duration", 60.0))
        except (KeyError, ValueError):
            raise Reply(404, {"message": "no such run"}) from None
        return 200, {"attempt": attempt}, {}
    if len(parts) == 2 and parts[0] == "inject":
        p = parts[1]
        n = num(data, "count", 1, int)
        if p == "github":
            ids = w.inject_gh_runs(data.get("repo"), n, data.get("conclusion"), data.get("state", "completed"),
                                   num(data, "finish_in", 2.0), num(data, "duration", 60.0),
                                   {k: data[k] for k in ("workflow", "event", "branch") if k in data},
                                   num(data, "created_ago", 1.0))
        elif p == "vercel":
            ids = w.inject_vc(data.get("project"), n, data.get("outcomes") or data.get("outcome"),
                              data.get("state", "completed"), num(data, "finish_in", 2.0),
                              data.get("target", "production"), num(data, "spacing", 0.001))
        elif p == "railway":
            ids = w.inject_rw(n, data.get("outcome"), data.get("state", "completed"), data.get("project"))
        else:
            raise Reply(404, {"message": "unknown platform"})
        return 200, {"ids": ids if n <= 100 else len(ids)}, {}
    if parts == ["supabase", "project"]:
        with w.lock:
            p = next((p for p in w.sb_projects if data.get("name") in (p["name"], p["ref"])), None)
            if p is None:
                raise Reply(404, {"message": "no such project"})
            if "status" in data:
                p["status"] = data["status"]
            if "unhealthy" in data:
                p["unhealthy"] = set(data["unhealthy"])
        return 200, {"ok": True}, {}
    if len(parts) == 2 and parts[0] == "world":
        return 200, world_view(state, parts[1]), {}
    raise Reply(404, {"message": "unknown control path"})


# ---------------------------------------------------------------- HTTP plumbing

PREFIXES = (("/railway/graphql/v2", "railway"), ("/vercel", "vercel"), ("/supabase-metrics", "supabase_metrics"),
            ("/supabase", "supabase"), ("/github", "github"))


MAX_BODY = 10_000_000
MAX_ARRIVALS = 200_000
READ_TIMEOUT = 30.0  # seconds a client may stay silent mid-request; then the connection is closed
MAX_CONNECTIONS = 128


def make_server(addr: str, port: int, world: World) -> ThreadingHTTPServer:
    state = SimState(world)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed-ACK stall
        server_version = "obs-bridges-simulator"
        timeout = READ_TIMEOUT
        sys_version = ""

        def log_message(self, *a):
            pass

        def _write(self, status: int, body: bytes, headers: dict, truncate: bool = False):
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            if truncate:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and status != 304:
                self.wfile.write(body[: len(body) // 2] if truncate else body)
            if truncate:
                self.close_connection = True

        def handle_any(self, method: str):
            u = urlsplit(self.path)
            path, q = u.path, parse_qs(u.query, keep_blank_values=True)
            # Framing first: a body that is not read whole would be parsed as further requests on this
            # connection (found by the attack script: a POST hidden in an oversized body ran).
            raw_len = (self.headers.get("Content-Length") or "0").strip()
            if self.headers.get("Transfer-Encoding"):
                self.close_connection = True
                self._write(411, b'{"message":"send a Content-Length; Transfer-Encoding is not accepted"}',
                            {"Content-Type": "application/json", "Connection": "close"})
                return
            if not (raw_len.isascii() and raw_len.isdigit()) or int(raw_len) > MAX_BODY:
                self.close_connection = True
                self._write(413 if raw_len.isascii() and raw_len.isdigit() else 400,
                            json.dumps({"message": f"Content-Length must be a whole number up to {MAX_BODY}"}).encode(),
                            {"Content-Type": "application/json", "Connection": "close"})
                return
            length = int(raw_len)
            body = self.rfile.read(length) if length else b""
            if len(body) < length:  # the client stopped sending (or the read timed out)
                self.close_connection = True
                return
            base = f"http://{self.headers.get('Host', 'localhost')}"
            if path in ("/healthz", "/"):
                self._write(200, json.dumps({"ok": True, "role": "simulator"}).encode(),
                            {"Content-Type": "application/json"})
                return
            if path.startswith("/_control"):
                try:
                    st, obj, h = control(state, method, path, q, body)
                except Reply as r:
                    st, obj, h = r.status, r.body, r.headers
                except (KeyError, ValueError, TypeError) as e:
                    st, obj, h = 400, {"message": f"bad control request: {str(e)[:200]}"}, {}
                except RecursionError:  # json.loads of deeply nested input
                    st, obj, h = 400, {"message": "bad control request: JSON nested too deeply"}, {}
                self._write(st, json.dumps(obj).encode(), {"Content-Type": "application/json", **h})
                return
            plat, sub = None, path
            for prefix, name in PREFIXES:
                if path == prefix or path.startswith(prefix + "/"):
                    plat, sub = name, path[len(prefix):] or "/"
                    break
            if plat is None:
                self._write(404, b'{"message":"unknown API"}', {"Content-Type": "application/json"})
                return
            rate_plat = "supabase" if plat == "supabase_metrics" else plat
            entry = {"t": time.time(), "platform": rate_plat, "method": method, "path": path, "query": u.query,
                     "status": 0, "conditional": bool(self.headers.get("If-None-Match")), "counted": False,
                     "auth": _auth_kind(self.headers)}
            try:
                status, out, headers = self._dispatch(plat, method, sub, q, body, base, entry)
            finally:
                with state.lock:
                    state.requests.append(entry)
            if status is None:
                return
            self._write(status, out, headers, truncate=headers.pop("_truncate", False))

        def _dispatch(self, plat, method, sub, q, body, base, entry):
            rate_plat = "supabase" if plat == "supabase_metrics" else plat
            fault = state.take_fault(rate_plat, self.path)
            if fault is not None:
                entry["fault"] = fault["kind"]
                k = fault["kind"]
                if k == "outage":
                    entry["status"] = -1
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass
                    return None, b"", {}
                if k == "slow":
                    time.sleep(min(fault["delay"], 30))
                elif k == "http5xx":
                    entry["status"] = fault["status"]
                    return fault["status"], b'{"message":"Server Error"}', {"Content-Type": "application/json"}
                elif k == "ratelimit429":
                    entry["status"] = 429
                    return 429, b'{"message":"Too Many Requests"}', {"Content-Type": "application/json",
                                                                      "Retry-After": str(fault["retry_after"])}
                elif k == "unauthorized":
                    entry["status"] = 401
                    return 401, b'{"message":"Unauthorized"}', {"Content-Type": "application/json"}
            if plat == "supabase_metrics":
                parts = [p for p in sub.split("/") if p]
                if len(parts) != 5 or parts[1:] != ["customer", "v1", "privileged", "metrics"]:
                    entry["status"] = 404
                    return 404, b"not found\n", {"Content-Type": "text/plain"}
                st, out, h = supabase_metrics(state, parts[0], self.headers)
                entry["status"] = st
                return st, out, h
            conditional = self.headers.get("If-None-Match")
            try:
                if plat == "github":
                    st, obj, h = github(state, method, sub, q, self.headers, base + "/github")
                elif plat == "vercel":
                    st, obj, h = vercel(state, method, sub, q, self.headers, base)
                elif plat == "railway":
                    st, obj, h = railway(state, method, sub, q, self.headers, base, body)
                else:
                    st, obj, h = supabase(state, method, sub, q, self.headers, base)
            except Reply as r:
                st, obj, h = r.status, r.body, dict(r.headers)
            out = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
            h = {"Content-Type": "application/json; charset=utf-8", **h}
            not_modified = False
            if plat == "github" and st == 200 and method == "GET":
                etag = 'W/"' + hashlib.sha1(out).hexdigest() + '"'
                h["ETag"] = etag
                h["Cache-Control"] = "private, max-age=60, s-maxage=60"
                not_modified = conditional is not None and conditional.strip() == etag
                if fault is not None and fault["kind"] in ("malformed", "truncated", "wrong_shape"):
                    not_modified = False  # a broken upstream answers 200 with a broken body
            counted = not not_modified and st not in (401,)
            allowed, rl = state.rate(rate_plat, counted)
            h.update(rl)
            if not allowed:
                entry["status"] = 403 if plat == "github" else 429
                if plat == "github":
                    return 403, json.dumps({"message": "API rate limit exceeded for user.",
                                            "documentation_url": "https://docs.github.com/rest"}).encode(), h
                if plat == "railway":
                    return 429, b'{"errors":[{"message":"Too many requests"}]}', h
                return 429, b'{"message":"Too Many Requests"}', h
            entry["counted"] = counted
            if not_modified:
                entry["status"] = 304
                return 304, b"", {k: v for k, v in h.items() if k != "Content-Type"}
            if fault is not None and st == 200:
                k = fault["kind"]
                if k == "malformed":
                    out = b'{"this is": not json' + out[:20]
                elif k == "wrong_shape":
                    out = b'{"unexpected": [1, "two", null], "data": "nope"}'
                    h.pop("ETag", None)
                elif k == "truncated":
                    h["_truncate"] = True
                    h.pop("ETag", None)
                    entry["status"] = st
                    return st, out, h
                h.pop("ETag", None)
            entry["status"] = st
            return st, out, h

        def do_GET(self):
            self.handle_any("GET")

        def do_POST(self):
            self.handle_any("POST")

        def do_DELETE(self):
            self.handle_any("DELETE")

        def do_HEAD(self):
            self.handle_any("HEAD")

    srv = make_http_server(addr, port, Handler, max_connections=MAX_CONNECTIONS)
    srv.sim_state = state
    if world.prometheus_dir:
        written = write_prometheus_files(world, world.prometheus_dir)
        atexit.register(remove_files, written)

    def ticker():
        while True:
            time.sleep(1.0)
            try:
                world.tick()
            except Exception:  # pragma: no cover
                LOG.exception("world tick failed")

    threading.Thread(target=ticker, daemon=True, name="world-tick").start()
    return srv


# ---------------------------------------------------------------- Prometheus demo scrape job

SB_KEY_FILE = "supabase-service-role-key"
SB_TARGETS_FILE = "supabase-metrics-targets.json"


def _write_private(directory: str, name: str, text: str) -> str:
    """Mode 0640 with the directory's group: compose's tmpfs volume belongs to Prometheus' group, which must
    read the files and nobody else may. Atomic, as file_sd wants."""
    return write_atomic(os.path.join(directory, name), text, mode=0o640, group_of_dir=True)


def write_prometheus_files(world: World, directory: str) -> list[str]:
    """The demo scrape of Supabase's own metrics endpoint (prometheus/prometheus.yml, job supabase-metrics-demo):
    the service-role key (basic_auth password_file) first, then one file_sd target per project, so that
    Prometheus never has a target without its key. A failure is logged (never the key) and the simulator
    keeps serving: the demo job then has no targets. Returns the paths written."""
    lg = log.get("obs_bridges.simulator")
    log.register_secret(world.sb_service_role_key)
    targets = [{"targets": [p["ref"]],
                "labels": {"__metrics_path__": f"/supabase-metrics/{p['ref']}/customer/v1/privileged/metrics",
                           "supabase_project": p["name"]}} for p in world.sb_projects]
    written: list[str] = []
    try:
        written.append(_write_private(directory, SB_KEY_FILE, world.sb_service_role_key))
        written.append(_write_private(directory, SB_TARGETS_FILE, json.dumps(targets, indent=1) + "\n"))
    except OSError as e:
        lg.error(f"cannot write the Prometheus demo scrape files into {directory}: {e.strerror or e} "
                 "(SIM_PROMETHEUS_DIR); the demo scrape of the Supabase metrics endpoint has no targets")
        remove_files(written)
        return []
    lg.info("wrote the Prometheus file_sd targets of the Supabase metrics endpoint and its service-role key",
            extra=log.kv(dir=directory, projects=len(targets)))
    return written


def remove_files(paths: list[str]) -> None:
    """At exit: targets first, then the key, so a stopped simulator leaves no target behind."""
    for path in reversed(paths):
        try:
            os.unlink(path)
        except OSError:
            pass


def _auth_kind(headers) -> str:
    if headers.get("Project-Access-Token"):
        return "project"
    a = headers.get("Authorization", "")
    return a.split(" ", 1)[0].lower() if a else "none"
