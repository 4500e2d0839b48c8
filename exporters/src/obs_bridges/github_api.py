"""GitHub REST shapes the bridge reads (workflow runs, jobs, workflows, repositories), parsed into records
(pure; ParseError only). The poller and the webhook receiver share them, so both count with the same keys."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from obs_bridges.parsing import NAME_LABEL_MAX, iso, lst, num, obj, s

REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


@dataclass
class Run:
    id: int
    attempt: int
    workflow_id: int | None
    name: str
    path: str
    branch: str
    event: str
    status: str
    conclusion: str | None
    created: float
    started: float | None
    updated: float | None


def parse_runs(data: Any) -> list[Run]:
    d = obj(data, "workflow runs")
    return [parse_run(r, f"workflow_runs[{i}]") for i, r in enumerate(lst(d.get("workflow_runs"), "workflow_runs"))]


def parse_run(data: Any, where: str = "workflow run") -> Run:
    """One run object: an item of the runs list, or GET /runs/{id}/attempts/{n}."""
    r = obj(data, where)
    rid = num(r.get("id"), "run.id")
    created = iso(r.get("created_at"), "run.created_at", optional=False)
    wf = num(r.get("workflow_id"), "run.workflow_id", optional=True)
    return Run(
        id=int(rid),
        attempt=int(num(r.get("run_attempt"), "run.run_attempt", optional=True) or 1),
        workflow_id=int(wf) if wf is not None else None,
        name=s(r.get("name"), "run.name", optional=True) or "",
        path=s(r.get("path"), "run.path", optional=True) or "",
        branch=s(r.get("head_branch"), "run.head_branch", optional=True) or "",
        event=s(r.get("event"), "run.event", optional=True) or "unknown",
        status=s(r.get("status"), "run.status", optional=True) or "unknown",
        conclusion=s(r.get("conclusion"), "run.conclusion", optional=True),
        created=created,
        started=iso(r.get("run_started_at"), "run.run_started_at"),
        updated=iso(r.get("updated_at"), "run.updated_at"),
    )


@dataclass
class Job:
    name: str
    status: str
    conclusion: str | None
    created: float | None
    started: float | None
    completed: float | None
    labels: list[str]
    id: int | None = None  # the job's natural key (the poller and the receiver observe each job once)


def parse_jobs(data: Any) -> list[Job]:
    d = obj(data, "jobs")
    out = []
    for i, j in enumerate(lst(d.get("jobs"), "jobs")):
        j = obj(j, f"jobs[{i}]")
        labels = j.get("labels") or []
        jid = num(j.get("id"), "job.id", optional=True)
        out.append(Job(
            name=s(j.get("name"), "job.name", optional=True) or "",
            status=s(j.get("status"), "job.status", optional=True) or "unknown",
            conclusion=s(j.get("conclusion"), "job.conclusion", optional=True),
            created=iso(j.get("created_at"), "job.created_at"),
            started=iso(j.get("started_at"), "job.started_at"),
            completed=iso(j.get("completed_at"), "job.completed_at"),
            labels=[str(x) for x in lst(labels, "job.labels") if isinstance(x, (str, int))],
            id=int(jid) if jid is not None else None,
        ))
    return out


def parse_workflows(data: Any) -> dict[int, str]:
    d = obj(data, "workflows")
    out = {}
    for i, w in enumerate(lst(d.get("workflows"), "workflows")):
        w = obj(w, f"workflows[{i}]")
        out[int(num(w.get("id"), "workflow.id"))] = s(w.get("name"), "workflow.name", optional=True) or ""
    return out


def parse_repos(data: Any) -> list[str]:
    out = []
    for i, r in enumerate(lst(data, "repositories")):
        r = obj(r, f"repositories[{i}]")
        if r.get("archived") is True:
            continue
        name = s(r.get("full_name"), "repository.full_name")
        if REPO_RE.match(name):
            out.append(name)
    return out


_MATRIX_RE = re.compile(r"\s*\(.*\)\s*$")


def job_label(name: str) -> str:
    """Job name without its matrix suffix ("test (3.12, ubuntu)" -> "test"), bounded in length."""
    return _MATRIX_RE.sub("", name)[:NAME_LABEL_MAX] or "unnamed"
