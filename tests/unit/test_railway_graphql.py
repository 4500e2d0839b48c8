"""Every GraphQL document the Railway bridge sends is valid against the simulator's SDL, and its
variables coerce to the declared types. The documents are captured from the real exporter code paths
(discovery with an account and a project token, the batched ``d{i}: deployments`` document with and
without an environment, the pagination document, deployment events, metrics and estimated usage)."""

import graphql
import pytest
from graphql.execution.values import get_variable_values

from obs_bridges import railway, railway_api
from obs_bridges.parsing import to_iso
from obs_bridges.simulator.railway_gql import SCHEMA
from tests.support.clock import FakeClock


def check(doc: str, variables: dict | None) -> None:
    ast = graphql.parse(doc)
    errors = graphql.validate(SCHEMA, ast)
    assert not errors, f"{doc}\n{errors}"
    ops = [d for d in ast.definitions if isinstance(d, graphql.OperationDefinitionNode)]
    assert len(ops) == 1
    coerced = get_variable_values(SCHEMA, ops[0].variable_definitions or (), variables or {})
    assert not isinstance(coerced, list), f"{doc}\nvariables {variables}: {coerced}"  # a list of errors


def conn(nodes, more=False, cursor=None):
    return {"edges": [{"node": n} for n in nodes], "pageInfo": {"hasNextPage": more, "endCursor": cursor}}


PROJECT = {"id": "p1", "name": "alpha", "environments": conn([{"id": "e1", "name": "production"}]),
           "services": conn([{"id": "s1", "name": "web"}])}


class FakeRailway:
    """Stands in for RailwayExporter.gql: checks each document, answers like the API, records both."""

    def __init__(self, clock, kind="account"):
        self.clock, self.kind = clock, kind
        self.sent: list[tuple[str, str, dict]] = []
        self.extra_deployment = False

    def dep(self, did, age):
        return {"id": did, "status": "SUCCESS", "createdAt": to_iso(self.clock() - age), "serviceId": "s1",
                "environmentId": "e1"}

    def __call__(self, client, endpoint, query, variables=None, kind=None):
        check(query, variables)
        self.sent.append((endpoint, query, variables or {}))
        if endpoint == "projects":
            if self.kind != "account":
                raise railway.ApiError("auth", "railway: Not Authorized")
            return {"projects": conn([PROJECT])}
        if endpoint == "project_token":
            return {"projectToken": {"projectId": "p1", "environmentId": "e1"}}
        if endpoint == "project":
            return {"project": PROJECT}
        if endpoint == "deployments" and "d0" not in query:  # the page after a cursor
            return {"d": conn([self.dep("old", 600)])}
        if endpoint == "deployments":
            deps = [self.dep("new", 5)] if self.extra_deployment else []
            return {"d0": conn(deps + [self.dep("a", 60), self.dep("b", 120)], more=True, cursor="c2")}
        if endpoint == "deployment_events":
            return {f"e{i}": conn([{"step": "BUILD", "createdAt": None, "completedAt": None,
                                    "payload": {"durationMs": 1500}}]) for i in range(len(variables))}
        if endpoint == "metrics":
            return {"m0": [{"measurement": "CPU_USAGE", "tags": {"serviceId": "s1", "environmentId": "e1"},
                            "values": [{"ts": self.clock() - 30, "value": 0.25}]}]}
        if endpoint == "estimated_usage":
            return {"u0": [{"measurement": "CPU_USAGE", "estimatedValue": 43200.0}]}
        raise AssertionError(endpoint)


def run_every_upstream(kind):
    clock = FakeClock()
    env = {"RAILWAY_TOKEN": "rw_unit_token", "RAILWAY_API_URL": "https://railway.example/graphql/v2"}
    exp = railway.build(env, clock=clock)
    fake = FakeRailway(clock, kind)
    exp.gql = fake
    exp.poll_discovery()
    exp.poll_deployments()  # seeds
    clock.advance(60)
    fake.extra_deployment = True
    exp.poll_deployments()  # counts "new" and reads its steps
    exp.poll_metrics()
    exp.poll_usage()
    return exp, fake


@pytest.mark.parametrize("kind", ["account", "project"])
def test_every_document_is_valid_against_the_simulator_schema(kind):
    exp, fake = run_every_upstream(kind)
    endpoints = [e for e, _, _ in fake.sent]
    want = {"projects", "deployments", "deployment_events", "metrics", "estimated_usage"}
    if kind == "project":
        want |= {"project_token", "project"}
    assert want <= set(endpoints), endpoints
    docs = [q for e, q, _ in fake.sent if e == "deployments"]
    assert any("d0: deployments(" in q for q in docs) and any("d: deployments(" in q for q in docs)
    batched = next(q for q in docs if "d0:" in q)
    assert ("environmentId: $e0" in batched) == (kind == "project")
    # and what was read through them reached the metrics
    assert exp.kind == kind
    assert exp.projects == {"p1": "alpha"}
    assert exp.deployments_total.labels("alpha", "production", "web", "SUCCESS")._value.get() == 1
    assert exp.step_duration.labels("alpha", "production", "web", "BUILD")._sum.get() == 1.5
    assert exp.resources == {("CPU_USAGE", "alpha", "production", "web"): 0.25}
    assert exp.cost == {"alpha": 20.0}


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("env", [None, "e1"])
def test_batched_builders_for_several_projects(n, env):
    pids = [f"p{i}" for i in range(n)]
    for doc, variables in (railway_api.deployments_document(pids, 50, env),
                           railway_api.metrics_document(pids, 1_767_225_600.0, env),
                           railway_api.usage_document(pids)):
        check(doc, variables)
    doc, variables = railway_api.deployments_document(pids, 50, env)
    assert [f"d{i}: deployments(" in doc for i in range(n)] == [True] * n
    page_doc, page_vars = railway_api.deployments_page_document("p0", "cursor", 50, env)
    check(page_doc, page_vars)
    # a project token's later pages stay in its environment, like the first page
    assert ("environmentId: $e" in page_doc and page_vars["e"] == env) if env else "input: {projectId: $p}," in page_doc
    check(*railway_api.events_document([f"dep{i}" for i in range(railway.STEP_BATCH)]))
    check(railway_api.PROJECTS_QUERY, {"after": None})
    check(railway_api.PROJECT_TOKEN_QUERY, None)
    check(railway_api.PROJECT_QUERY, {"id": "p0"})


def test_check_rejects_a_wrong_document():
    # the validation used above does catch a field the schema lacks and a variable of the wrong type
    with pytest.raises(AssertionError):
        check("query($p: String!) { deployments(input: {projectId: $p}) { nope } }", {"p": "x"})
    with pytest.raises(AssertionError):
        check(railway_api.metrics_document(["p0"], 0.0, None)[0], {"start": to_iso(0.0), "p0": 5})
    with pytest.raises(AssertionError):
        check(railway_api.PROJECT_QUERY, {})
