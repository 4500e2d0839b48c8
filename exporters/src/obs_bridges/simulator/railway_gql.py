"""The Railway public GraphQL API (a subset of backboard's schema), executed by graphql-core."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

from graphql import GraphQLError, build_schema, graphql_sync

from obs_bridges.simulator import railway_logs
from obs_bridges.simulator.world import World, costs

SDL = """
scalar DateTime
scalar JSON

enum DeploymentStatus { BUILDING CRASHED DEPLOYING FAILED INITIALIZING NEEDS_APPROVAL QUEUED REMOVED REMOVING
  SKIPPED SLEEPING SUCCESS WAITING }
enum MetricMeasurement { CPU_USAGE CPU_LIMIT MEMORY_USAGE_GB MEMORY_LIMIT_GB NETWORK_RX_GB NETWORK_TX_GB
  DISK_USAGE_GB EPHEMERAL_DISK_USAGE_GB BACKUP_USAGE_GB }
enum MetricTag { DEPLOYMENT_ID DEPLOYMENT_INSTANCE_ID ENVIRONMENT_ID PLUGIN_ID PROJECT_ID SERVICE_ID VOLUME_ID }
enum DeploymentEventStep { SNAPSHOT_CODE BUILD_IMAGE PUBLISH_IMAGE PRE_DEPLOY_COMMAND CREATE_CONTAINER
  MIGRATE_VOLUMES HEALTHCHECK CONFIGURE_NETWORK DRAIN_INSTANCES WAIT_FOR_DEPENDENCIES }

type PageInfo { hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String endCursor: String }

type Environment { id: String! name: String! projectId: String! }
type EnvironmentEdge { node: Environment! cursor: String! }
type EnvironmentConnection { edges: [EnvironmentEdge!]! pageInfo: PageInfo! }

type Service { id: String! name: String! projectId: String! }
type ServiceEdge { node: Service! cursor: String! }
type ServiceConnection { edges: [ServiceEdge!]! pageInfo: PageInfo! }

type DeploymentInstance { id: String! status: String! }
type Deployment {
  id: String! status: DeploymentStatus! createdAt: DateTime! updatedAt: DateTime! statusUpdatedAt: DateTime
  serviceId: String environmentId: String! projectId: String! url: String staticUrl: String meta: JSON
  canRollback: Boolean! instances: [DeploymentInstance!]!
}
type DeploymentEdge { node: Deployment! cursor: String! }
type DeploymentConnection { edges: [DeploymentEdge!]! pageInfo: PageInfo! }

type Project {
  id: String! name: String! createdAt: DateTime! workspaceId: String
  environments(first: Int, after: String): EnvironmentConnection!
  services(first: Int, after: String): ServiceConnection!
}
type ProjectEdge { node: Project! cursor: String! }
type ProjectConnection { edges: [ProjectEdge!]! pageInfo: PageInfo! }
type ProjectToken { projectId: String! environmentId: String! }

type DeploymentEventPayload { durationMs: Int attempt: Int error: String }
type DeploymentEvent { step: DeploymentEventStep! createdAt: DateTime! completedAt: DateTime
  payload: DeploymentEventPayload }
type DeploymentEventEdge { node: DeploymentEvent! cursor: String! }
type DeploymentEventConnection { edges: [DeploymentEventEdge!]! pageInfo: PageInfo! }

type MetricTags { deploymentId: String deploymentInstanceId: String environmentId: String pluginId: String
  projectId: String serviceId: String volumeId: String region: String }
type Metric { ts: Int! value: Float! }
type MetricsResult { measurement: MetricMeasurement! tags: MetricTags! values: [Metric!]! }
type EstimatedUsage { measurement: MetricMeasurement! estimatedValue: Float! projectId: String! }
type AggregatedUsage { measurement: MetricMeasurement! value: Float! tags: MetricTags! }

input DeploymentStatusInput { in: [DeploymentStatus!] notIn: [DeploymentStatus!] }
input DeploymentListInput { projectId: String serviceId: String environmentId: String
  status: DeploymentStatusInput }

type User { id: String! email: String! }

type Query {
  me: User!
  projectToken: ProjectToken!
  projects(first: Int, after: String, workspaceId: String): ProjectConnection!
  project(id: String!): Project!
  environments(projectId: String!, first: Int, after: String): EnvironmentConnection!
  deployments(input: DeploymentListInput!, first: Int, after: String): DeploymentConnection!
  deploymentEvents(id: String!, first: Int, after: String): DeploymentEventConnection!
  metrics(startDate: DateTime!, endDate: DateTime, measurements: [MetricMeasurement!]!, projectId: String,
    environmentId: String, serviceId: String, sampleRateSeconds: Int, averagingWindowSeconds: Int,
    groupBy: [MetricTag!]): [MetricsResult!]!
  estimatedUsage(measurements: [MetricMeasurement!]!, projectId: String, workspaceId: String): [EstimatedUsage!]!
  usage(measurements: [MetricMeasurement!]!, projectId: String, workspaceId: String, startDate: DateTime,
    endDate: DateTime, groupBy: [MetricTag!], includeDeleted: Boolean): [AggregatedUsage!]!
""" + railway_logs.QUERY_FIELDS + "}\n" + railway_logs.SDL

SCHEMA = build_schema(SDL)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{int((ts % 1) * 1000):03d}Z"


def parse_dt(v) -> float:
    if not isinstance(v, str):
        raise GraphQLError("DateTime must be an ISO-8601 string")
    t = v.strip().replace("Z", "+00:00")
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise GraphQLError(f"Invalid DateTime: {v}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _cursor(i: int) -> str:
    return base64.b64encode(f"cursor:{i}".encode()).decode()


def _uncursor(c: str | None) -> int:
    if not c:
        return 0
    try:
        return int(base64.b64decode(c).decode().split(":")[1]) + 1
    except (ValueError, IndexError, UnicodeDecodeError):  # binascii.Error is a ValueError
        raise GraphQLError("Invalid cursor") from None


def connection(items: list, first: int | None, after: str | None, cap: int = 100) -> dict:
    start = _uncursor(after)
    n = min(first or cap, cap)
    page = items[start:start + n]
    return {
        "edges": [{"node": x, "cursor": _cursor(start + i)} for i, x in enumerate(page)],
        "pageInfo": {"hasNextPage": start + n < len(items), "hasPreviousPage": start > 0,
                     "startCursor": _cursor(start) if page else None,
                     "endCursor": _cursor(start + len(page) - 1) if page else None},
    }


class Root:
    def __init__(self, world: World, scope: dict):
        self.w = world
        self.scope = scope  # {"kind": "account"} or {"kind": "project", "projectId", "environmentId"}
        self.now = world.now()

    def _auth(self, project_id: str | None = None):
        if self.scope["kind"] == "project" and project_id and project_id != self.scope["projectId"]:
            raise GraphQLError("Not Authorized")

    def _project(self, p: dict) -> dict:
        envs = [{"id": e, "name": n, "projectId": p["id"]} for e, n in p["envs"]]
        if self.scope["kind"] == "project":
            envs = [e for e in envs if e["id"] == self.scope["environmentId"]]
        svcs = [{"id": s, "name": n, "projectId": p["id"]} for s, n in p["services"]]
        return {"id": p["id"], "name": p["name"], "createdAt": iso(p["created"]),
                "workspaceId": self.w.railway.workspace,
                "environments": lambda info, first=None, after=None: connection(envs, first, after),
                "services": lambda info, first=None, after=None: connection(svcs, first, after)}

    def me(self, info):
        if self.scope["kind"] != "account":
            raise GraphQLError("Not Authorized")
        return {"id": "user-demo", "email": "demo@example.invalid"}

    def projectToken(self, info):
        if self.scope["kind"] != "project":
            raise GraphQLError("Not Authorized")
        return {"projectId": self.scope["projectId"], "environmentId": self.scope["environmentId"]}

    def projects(self, info, first=None, after=None, workspaceId=None):
        if self.scope["kind"] != "account":
            raise GraphQLError("Not Authorized")
        return connection([self._project(p) for p in self.w.railway.projects], first, after)

    def project(self, info, id):
        self._auth(id)
        p = next((p for p in self.w.railway.projects if p["id"] == id), None)
        if p is None:
            raise GraphQLError("Project not found")
        return self._project(p)

    def environments(self, info, projectId, first=None, after=None):
        return self.project(info, projectId)["environments"](info, first, after)

    def _dep(self, d) -> dict:
        st = d.status(self.now)
        return {"id": d.id, "status": st, "createdAt": iso(d.created), "updatedAt": iso(d.updated(self.now)),
                "statusUpdatedAt": iso(d.updated(self.now)), "serviceId": d.service_id,
                "environmentId": d.environment_id, "projectId": d.project_id,
                "url": f"svc-{d.service_id[:8]}.up.railway.app", "staticUrl": f"svc-{d.service_id[:8]}.up.railway.app",
                "meta": {"branch": "main"}, "canRollback": st in ("SUCCESS", "REMOVED"),
                "instances": [{"id": d.id[:8] + "-i0", "status": "RUNNING" if st == "SUCCESS" else "STOPPED"}]}

    def deployments(self, info, input, first=None, after=None):
        pid = input.get("projectId")
        self._auth(pid)
        eid = input.get("environmentId")
        if self.scope["kind"] == "project":
            pid = pid or self.scope["projectId"]
            if eid and eid != self.scope["environmentId"]:
                raise GraphQLError("Not Authorized")
            eid = self.scope["environmentId"]
        deps = [d for d in self.w.railway.deployments if d.created <= self.now
                and (pid is None or d.project_id == pid)
                and (eid is None or d.environment_id == eid)
                and (input.get("serviceId") is None or d.service_id == input.get("serviceId"))]
        deps.sort(key=lambda d: d.created, reverse=True)
        nodes = [self._dep(d) for d in deps]
        st = input.get("status") or {}
        if st.get("in"):
            nodes = [n for n in nodes if n["status"] in st["in"]]
        if st.get("notIn"):
            nodes = [n for n in nodes if n["status"] not in st["notIn"]]
        return connection(nodes, first, after)

    def deploymentEvents(self, info, id, first=None, after=None):
        d = self.w.railway.by_id.get(id)
        if d is None:
            raise GraphQLError("Deployment not found")
        self._auth(d.project_id)
        evs = []
        for k, (s, a, b) in enumerate(d.steps):
            if a > self.now:
                break
            done = b <= self.now
            failed = done and d.outcome == "FAILED" and k == len(d.steps) - 1
            evs.append({"step": s, "createdAt": iso(a), "completedAt": iso(b) if done else None,
                        "payload": {"durationMs": int(round((b - a) * 1000)) if done else None, "attempt": 1,
                                    "error": "Build failed: exit code 1" if failed else None}})
        return connection(evs, first, after)

    def metrics(self, info, startDate, measurements, endDate=None, projectId=None, environmentId=None,
                serviceId=None, sampleRateSeconds=None, averagingWindowSeconds=None, groupBy=None):
        self._auth(projectId)
        start = parse_dt(startDate)
        end = min(parse_dt(endDate) if endDate else self.now, self.now)
        step = max(30, int(sampleRateSeconds or 30))
        if end - start > 31 * 86400:
            raise GraphQLError("Date range too large")
        if end - start > 3600 * 24 and step < 300:
            raise GraphQLError("sampleRateSeconds too small for the date range")
        groups = []
        for p in self.w.railway.projects:
            if projectId and p["id"] != projectId:
                continue
            for sid, _ in p["services"]:
                if serviceId and sid != serviceId:
                    continue
                for eid, _ in p["envs"]:
                    if environmentId and eid != environmentId:
                        continue
                    if self.scope["kind"] == "project" and eid != self.scope["environmentId"]:
                        continue
                    groups.append((p["id"], sid, eid))
        out = []
        # only complete samples: a bucket is returned once it has ended
        first_b = int(start // step + 1) * step
        buckets = list(range(first_b, int((end - step) // step * step) + 1, step))
        for m in measurements:
            for pid, sid, eid in groups:
                tags = {"projectId": pid, "serviceId": sid, "environmentId": eid}
                out.append({"measurement": m, "tags": tags,
                            "values": [{"ts": b, "value": self.w.railway.metric(m, sid, eid, b)} for b in buckets]})
        return out

    def estimatedUsage(self, info, measurements, projectId=None, workspaceId=None):
        self._auth(projectId)
        pids = [projectId] if projectId else [p["id"] for p in self.w.railway.projects]
        return [{"measurement": m, "estimatedValue": self.w.railway.estimated(pid, m), "projectId": pid}
                for pid in pids for m in measurements]

    def usage(self, info, measurements, projectId=None, workspaceId=None, startDate=None, endDate=None,
              groupBy=None, includeDeleted=None):
        """The current billing period so far (world/costs.py); startDate/endDate are not modelled."""
        self._auth(projectId)
        pids = [projectId] if projectId else [p["id"] for p in self.w.railway.projects]
        by_project = "PROJECT_ID" in (groupBy or [])
        rows = {m: 0.0 for m in measurements}
        out = []
        for pid in pids:
            for m in measurements:
                v = costs.railway_to_date(self.w, pid, m, self.now)
                if by_project:
                    out.append({"measurement": m, "value": v, "tags": {"projectId": pid}})
                rows[m] += v
        return out if by_project else [{"measurement": m, "value": round(v, 6), "tags": {}} for m, v in rows.items()]

    def environmentLogs(self, info, environmentId, **kw):
        return railway_logs.environment_logs(self, environmentId, **kw)


def execute(world: World, scope: dict, body) -> dict:
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return {"errors": [{"message": "Must provide query string."}]}
    variables = body.get("variables")
    if variables is not None and not isinstance(variables, dict):
        return {"errors": [{"message": "Variables must be an object."}]}
    with world.lock:
        res = graphql_sync(SCHEMA, body["query"], root_value=Root(world, scope), variable_values=variables,
                           operation_name=body.get("operationName"))
    out: dict = {"data": res.data}
    if res.errors:
        out["errors"] = [{"message": e.message, "path": e.path,
                          "locations": [{"line": loc.line, "column": loc.column} for loc in (e.locations or [])]}
                         for e in res.errors]
    return out
