"""The GitHub REST API (Actions subset): repositories, workflows, runs, attempts and jobs, paginated by Link."""

from __future__ import annotations

from urllib.parse import urlencode

from obs_bridges.simulator import costs
from obs_bridges.simulator.common import ApiRequest, Reply, iso, parse_iso, q1, qint
from obs_bridges.simulator.faults import SimState

DOCS = "https://docs.github.com/rest"


def handle(state: SimState, req: ApiRequest):
    auth = req.headers.get("Authorization", "")
    tok = auth.split(" ", 1)[1].strip() if " " in auth else ""
    if not tok:
        raise Reply(401, {"message": "Requires authentication", "documentation_url": DOCS})
    if tok.startswith(("invalid", "bad")):
        raise Reply(401, {"message": "Bad credentials", "documentation_url": DOCS})
    parts = [p for p in req.path.split("/") if p]
    if parts == ["rate_limit"]:
        return 200, {"resources": {}}, {}
    if len(parts) == 3 and parts[0] in ("orgs", "users") and parts[2] == "repos":
        return _repos(state, req, parts[1])
    if len(parts) >= 4 and parts[0] == "repos" and parts[3] == "actions":
        return _actions(state, req, f"{parts[1]}/{parts[2]}", parts[4:])
    if len(parts) >= 4 and (parts[0] == "organizations" or parts[0] == "orgs" and parts[2] == "settings"):
        return costs.github_billing(state, req, parts, tok)  # billing usage (and the retired endpoints: 410)
    raise Reply(404, {"message": "Not Found", "documentation_url": DOCS})


def paginate(req: ApiRequest, items: list, to_json) -> tuple[list, int, dict]:
    """One page of items (per_page, page) with GitHub's Link header (next, last, prev, first)."""
    q = req.q
    per_page = qint(q, "per_page", 30, 1, 100)
    page = qint(q, "page", 1, 1, 10**6)
    total = len(items)
    last = max(1, -(-total // per_page))
    chunk = items[(page - 1) * per_page: page * per_page]

    def url(n):
        qq = {k: v[0] for k, v in q.items()}
        qq["page"] = str(n)
        return f'<{req.base}{req.path}?{urlencode(qq)}>'
    links = []
    if page < last:
        links += [url(page + 1) + '; rel="next"', url(last) + '; rel="last"']
    if page > 1:
        links += [url(page - 1) + '; rel="prev"', url(1) + '; rel="first"']
    return [to_json(x) for x in chunk], total, {"Link": ", ".join(links)} if links else {}


def _repos(state: SimState, req: ApiRequest, owner: str):
    """GET /orgs|users/{owner}/repos."""
    gh = state.world.github
    if owner != gh.org:
        raise Reply(404, {"message": "Not Found"})
    repos = [{"id": 7000 + i, "name": r.split("/")[1], "full_name": r, "private": False, "archived": False,
              "owner": {"login": gh.org}} for i, r in enumerate(gh.repos)]
    items, _, h = paginate(req, repos, lambda x: x)
    return 200, items, h


def _actions(state: SimState, req: ApiRequest, repo: str, rest: list[str]):
    """/repos/{owner}/{repo}/actions/...: workflows, runs, one run or attempt, and their jobs."""
    gh = state.world.github
    if repo not in gh.runs:
        raise Reply(404, {"message": "Not Found"})
    if rest == ["workflows"]:
        wfs = [{"id": wid, "node_id": f"W_{wid}", "name": n, "path": p, "state": "active"}
               for wid, n, p, _ in gh.workflows[repo]]
        items, total, h = paginate(req, wfs, lambda x: x)
        return 200, {"total_count": total, "workflows": items}, h
    if rest == ["runs"]:
        return _runs(state, req, repo)
    # A run (its latest attempt) or one attempt of it, and their jobs: /runs/{id}[/attempts/{n}][/jobs]
    tail = rest[2:-1] if rest[-1:] == ["jobs"] else rest[2:]
    if rest[:1] == ["runs"] and len(rest) >= 2 and (not tail or (len(tail) == 2 and tail[0] == "attempts")):
        now = state.world.now()
        run = _attempt(gh, repo, rest[1], tail[1] if tail else None, now)
        if rest[-1] == "jobs":
            jobs = [j for j in run.jobs if j.created <= now]
            items, total, h = paginate(req, jobs, lambda j: job_json(j, run, now))
            return 200, {"total_count": total, "jobs": items}, h
        return 200, run_json(run, now, req.base, repo), {}
    raise Reply(404, {"message": "Not Found", "documentation_url": DOCS})


def _runs(state: SimState, req: ApiRequest, repo: str):
    """GET .../actions/runs with the created, status (or conclusion), branch and event filters."""
    w, q = state.world, req.q
    now = w.now()
    created_from, created_to = _created(q1(q, "created"))
    with w.lock:
        runs = w.github.list_runs(repo, created_from, now)
    if created_to is not None:
        runs = [r for r in runs if r.created <= created_to]
    for k in ("status", "branch", "event"):
        v = q1(q, k)
        if v:
            runs = [r for r in runs if {"status": r.status(now) if v in ("queued", "in_progress",
                    "completed") else r.conclusion, "branch": r.branch, "event": r.event}[k] == v]
    items, total, h = paginate(req, runs, lambda r: run_json(r, now, req.base, repo))
    return 200, {"total_count": total, "workflow_runs": items}, h


def _created(c: str | None) -> tuple[float | None, float | None]:
    """The runs list's `created` filter (>=T, <=T or T..T) as (from, to); a 422 when it is none of those."""
    created_from, created_to = None, None
    if c:
        try:
            if c.startswith(">="):
                created_from = parse_iso(c[2:])
            elif c.startswith("<="):
                created_to = parse_iso(c[2:])
            elif ".." in c:
                a, b = c.split("..", 1)
                created_from, created_to = parse_iso(a), parse_iso(b)
            else:
                raise ValueError
        except ValueError:
            raise Reply(422, {"message": "Validation Failed: created"}) from None
    return created_from, created_to


def _attempt(gh, repo: str, run_id: str, attempt: str | None, now: float):
    """The run with that id in that repository, at the given attempt (None: the latest), or a 404."""
    try:
        run = gh.run_by_id[int(run_id)]
        n = run.attempt if attempt is None else int(attempt)
    except (ValueError, KeyError):
        raise Reply(404, {"message": "Not Found"}) from None
    if run.repo != repo or run.created > now:
        raise Reply(404, {"message": "Not Found"})
    if n != run.attempt:
        run = gh.past_attempts.get((run.id, n))
        if run is None:
            raise Reply(404, {"message": "Not Found"})
    return run


def run_json(r, now, base, repo) -> dict:
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


def job_json(j, run, now) -> dict:
    st = "queued" if now < j.started else ("in_progress" if now < j.completed else "completed")
    return {"id": j.id, "run_id": run.id, "run_attempt": run.attempt, "name": j.name, "status": st,
            "conclusion": j.conclusion if st == "completed" else None, "created_at": iso(j.created),
            "started_at": iso(j.started) if st != "queued" else iso(j.created),
            "completed_at": iso(j.completed) if st == "completed" else None, "labels": j.labels,
            "runner_name": "GitHub Actions 1" if st != "queued" else None,
            "runner_group_name": "GitHub Actions" if st != "queued" else None,
            "steps": [], "head_sha": run.sha, "workflow_name": run.workflow_name}


def view(w, now: float) -> dict:
    """/_control/world/github."""
    gh = w.github
    return {"now": now, "org": gh.org, "repos": gh.repos,
            "workflows": {r: {str(wid): n for wid, n, _, _ in v} for r, v in gh.workflows.items()},
            "runs": [{"id": r.id, "repo": r.repo, "attempt": r.attempt, "workflow": r.workflow_name,
                      "event": r.event, "branch": r.branch, "status": r.status(now),
                      "conclusion": r.conclusion, "created": r.created, "started": r.started,
                      "finished": r.finished,
                      "jobs": [{"name": j.name, "created": j.created, "started": j.started,
                                "completed": j.completed} for j in r.jobs]}
                     for runs in gh.runs.values() for r in runs if r.created <= now]}
