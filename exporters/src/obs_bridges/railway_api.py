"""The Railway public API as the bridge speaks it (pure, no I/O): the GraphQL documents it sends and the
parsers of what comes back. tests/unit/test_railway_graphql.py validates every document against the
simulator's SDL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from obs_bridges.httpclient import ERROR_TEXT_MAX, ApiError
from obs_bridges.parsing import STATE_LABEL_MAX, iso, lst, num, obj, s, to_iso

MEASUREMENTS = {
    "CPU_USAGE": ("railway_service_cpu_usage_cores", "CPU in use (vCPU cores)."),
    "CPU_LIMIT": ("railway_service_cpu_limit_cores", "CPU limit (vCPU cores)."),
    "MEMORY_USAGE_GB": ("railway_service_memory_usage_gigabytes", "Memory in use (GB)."),
    "MEMORY_LIMIT_GB": ("railway_service_memory_limit_gigabytes", "Memory limit (GB)."),
    "NETWORK_RX_GB": ("railway_service_network_rx_gigabytes", "Network received in the last sample (GB)."),
    "NETWORK_TX_GB": ("railway_service_network_tx_gigabytes", "Network sent in the last sample (GB)."),
    "DISK_USAGE_GB": ("railway_service_disk_usage_gigabytes", "Volume disk in use (GB)."),
    "EPHEMERAL_DISK_USAGE_GB": ("railway_service_ephemeral_disk_usage_gigabytes", "Ephemeral disk in use (GB)."),
}
USAGE = ["CPU_USAGE", "MEMORY_USAGE_GB", "NETWORK_TX_GB", "DISK_USAGE_GB", "BACKUP_USAGE_GB"]
# Projects per discovery page (Railway's usual page size).
DISCOVERY_PAGE_SIZE = 50
# Events asked for per deployment (a deployment has a handful of steps).
EVENTS_PER_DEPLOYMENT = 50
# Resource metrics' sample rate (the last complete sample is kept).
METRICS_SAMPLE_SECONDS = 30


# ---------------------------------------------------------------- parsers

def gql_data(payload: Any) -> dict:
    """The ``data`` object of a GraphQL response; errors become ApiError (auth) or ParseError."""
    d = obj(payload, "graphql response")
    errs = d.get("errors")
    if errs:
        msgs = []
        for e in lst(errs, "errors"):
            if isinstance(e, dict) and isinstance(e.get("message"), str):
                msgs.append(e["message"][:ERROR_TEXT_MAX])
        text = "; ".join(msgs) or "unknown error"
        if any("not authorized" in m.lower() or "unauthorized" in m.lower() for m in msgs):
            raise ApiError("auth", f"railway: {text}")
        if d.get("data") is None:
            raise ApiError("http", f"railway GraphQL error: {text}")
    return obj(d.get("data"), "data")


def edges(conn: Any, what: str) -> tuple[list[dict], bool, str | None]:
    c = obj(conn, what)
    nodes = [obj(obj(e, f"{what}.edge").get("node"), f"{what}.node") for e in lst(c.get("edges"), f"{what}.edges")]
    pi = c.get("pageInfo") or {}
    pi = obj(pi, f"{what}.pageInfo")
    return nodes, pi.get("hasNextPage") is True, s(pi.get("endCursor"), "endCursor", optional=True)


@dataclass
class Deployment:
    id: str
    status: str
    created: float
    service_id: str
    environment_id: str


def parse_deployments(conn: Any) -> tuple[list[Deployment], bool, str | None]:
    nodes, more, cursor = edges(conn, "deployments")
    out = [Deployment(s(n.get("id"), "deployment.id"),
                      (s(n.get("status"), "deployment.status") or "")[:STATE_LABEL_MAX],
                      iso(n.get("createdAt"), "deployment.createdAt", optional=False),
                      s(n.get("serviceId"), "deployment.serviceId", optional=True) or "",
                      s(n.get("environmentId"), "deployment.environmentId", optional=True) or "") for n in nodes]
    return out, more, cursor


def parse_events(conn: Any) -> list[tuple[str, float]]:
    nodes, _, _ = edges(conn, "deploymentEvents")
    out = []
    for n in nodes:
        step = s(n.get("step"), "event.step")
        created = iso(n.get("createdAt"), "event.createdAt")
        completed = iso(n.get("completedAt"), "event.completedAt")
        payload = n.get("payload")
        dur_ms = num(obj(payload, "payload").get("durationMs"), "durationMs", optional=True) if payload else None
        if dur_ms is not None and dur_ms >= 0:
            out.append((step, dur_ms / 1000.0))
        elif created is not None and completed is not None and completed >= created:
            out.append((step, completed - created))
    return out


def parse_metrics(items: Any) -> dict[tuple[str, str, str], tuple[float, float]]:
    """-> {(measurement, serviceId, environmentId): (ts, value)} of the last complete sample."""
    out = {}
    for i, m in enumerate(lst(items, "metrics")):
        m = obj(m, f"metrics[{i}]")
        meas = s(m.get("measurement"), "measurement")
        tags = obj(m.get("tags") or {}, "tags")
        vals = []
        for v in lst(m.get("values"), "values"):
            v = obj(v, "value")
            vals.append((num(v.get("ts"), "ts"), num(v.get("value"), "value")))
        if not vals:
            continue
        vals.sort()
        out[(meas, s(tags.get("serviceId"), "serviceId", True) or "", s(tags.get("environmentId"),
                                                                         "environmentId", True) or "")] = vals[-1]
    return out


def parse_usage(items: Any) -> dict[str, float]:
    out = {}
    for u in lst(items, "estimatedUsage"):
        u = obj(u, "estimatedUsage")
        out[s(u.get("measurement"), "measurement")] = num(u.get("estimatedValue"), "estimatedValue")
    return out


# ---------------------------------------------------------------- GraphQL documents (pure; see
# tests/unit/test_railway_graphql.py, which validates each against the simulator's SDL)

DEP_FIELDS = "edges { node { id status createdAt updatedAt statusUpdatedAt serviceId environmentId } } " \
             "pageInfo { hasNextPage endCursor }"
PROJECT_FIELDS = "id name environments { edges { node { id name } } } services { edges { node { id name } } }"
PROJECTS_QUERY = ("query($after: String) { projects(first: " f"{DISCOVERY_PAGE_SIZE}" ", after: $after) { "
                  f"edges {{ node {{ {PROJECT_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}")
PROJECT_TOKEN_QUERY = "{ projectToken { projectId environmentId } }"
PROJECT_QUERY = f"query($id: String!) {{ project(id: $id) {{ {PROJECT_FIELDS} }} }}"


def deployments_document(pids: list[str], page_size: int, environment_id: str | None) -> tuple[str, dict]:
    """One document for the first page of every project: field ``d{i}`` is project ``pids[i]``
    (limited to ``environment_id`` for a project token)."""
    var_defs, fields, variables = [], [], {}
    for i, pid in enumerate(pids):
        var_defs.append(f"$p{i}: String!")
        inp = f"{{projectId: $p{i}}}"
        if environment_id is not None:
            var_defs.append(f"$e{i}: String!")
            inp = f"{{projectId: $p{i}, environmentId: $e{i}}}"
            variables[f"e{i}"] = environment_id
        fields.append(f"d{i}: deployments(input: {inp}, first: {page_size}) {{ {DEP_FIELDS} }}")
        variables[f"p{i}"] = pid
    return f"query({', '.join(var_defs)}) {{ {' '.join(fields)} }}", variables


def deployments_page_document(pid: str, cursor: str, page_size: int,
                              environment_id: str | None = None) -> tuple[str, dict]:
    """The page after ``cursor`` of one project's deployments, as field ``d``, scoped like the first page
    (``environment_id`` for a project token)."""
    if environment_id is None:
        q = ("query($p: String!, $a: String) { d: deployments(input: {projectId: $p}, first: "
             f"{page_size}, after: $a) {{ {DEP_FIELDS} }} }}")
        return q, {"p": pid, "a": cursor}
    q = ("query($p: String!, $e: String!, $a: String) { d: deployments(input: {projectId: $p, environmentId: $e}, "
         f"first: {page_size}, after: $a) {{ {DEP_FIELDS} }} }}")
    return q, {"p": pid, "e": environment_id, "a": cursor}


def events_document(deployment_ids: list[str]) -> tuple[str, dict]:
    """The deployment events of each id, as fields ``e{i}``."""
    defs = ", ".join(f"$d{i}: String!" for i in range(len(deployment_ids)))
    fields = " ".join(f"e{i}: deploymentEvents(id: $d{i}, first: {EVENTS_PER_DEPLOYMENT}) {{ edges {{ node {{ "
                      "step createdAt completedAt payload { durationMs error } } } }" for i in range(len(deployment_ids)))
    return f"query({defs}) {{ {fields} }}", {f"d{i}": did for i, did in enumerate(deployment_ids)}


def metrics_document(pids: list[str], start: float, environment_id: str | None) -> tuple[str, dict]:
    """Resource metrics since ``start`` (Unix seconds) of each project, as fields ``m{i}``, grouped by
    service and environment (limited to ``environment_id`` for a project token)."""
    meas = ", ".join(MEASUREMENTS)
    defs = ["$start: DateTime!"] + [f"$p{i}: String!" for i in range(len(pids))]
    env_arg = ""
    variables: dict = {"start": to_iso(start)}
    if environment_id is not None:
        defs.append("$env: String!")
        env_arg = ", environmentId: $env"
        variables["env"] = environment_id
    fields = []
    for i, pid in enumerate(pids):
        variables[f"p{i}"] = pid
        fields.append(f"m{i}: metrics(projectId: $p{i}{env_arg}, startDate: $start, measurements: [{meas}], "
                      f"sampleRateSeconds: {METRICS_SAMPLE_SECONDS}, groupBy: [SERVICE_ID, ENVIRONMENT_ID]) "
                      "{ measurement tags { serviceId environmentId } values { ts value } }")
    return f"query({', '.join(defs)}) {{ {' '.join(fields)} }}", variables


def usage_document(pids: list[str]) -> tuple[str, dict]:
    """The billing period's estimated usage of each project, as fields ``u{i}``."""
    meas = ", ".join(USAGE)
    defs = ", ".join(f"$p{i}: String!" for i in range(len(pids)))
    fields = " ".join(f"u{i}: estimatedUsage(projectId: $p{i}, measurements: [{meas}]) "
                      "{ measurement estimatedValue }" for i in range(len(pids)))
    return f"query({defs}) {{ {fields} }}", {f"p{i}": p for i, p in enumerate(pids)}
