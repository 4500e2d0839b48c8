"""Railway's cost of the billing period so far (railway_usage.py): the batched `usage` document is valid against
the simulator's schema, its answer is parsed and priced like estimatedUsage, per project."""

from __future__ import annotations

import graphql
import pytest

from obs_bridges import railway, railway_usage as ru
from obs_bridges.parsing import ParseError
from obs_bridges.simulator.railway_gql import SCHEMA
from tests.support.clock import FakeClock

MONTH_MINUTES = 30 * 24 * 60


@pytest.mark.parametrize("n", [1, 3])
def test_the_document_is_valid_against_the_schema(n):
    doc, variables = ru.period_usage_document([f"p{i}" for i in range(n)])
    assert not graphql.validate(SCHEMA, graphql.parse(doc))
    assert variables == {f"p{i}": f"p{i}" for i in range(n)}
    assert all(f"t{i}: usage(projectId: $p{i}" in doc for i in range(n))


def test_parse_sums_rows_of_a_measurement():
    assert ru.parse_period_usage([{"measurement": "CPU_USAGE", "value": 10, "tags": {"serviceId": "a"}},
                                  {"measurement": "CPU_USAGE", "value": 5.5, "tags": {"serviceId": "b"}},
                                  {"measurement": "NETWORK_TX_GB", "value": 2}]) == {"CPU_USAGE": 15.5,
                                                                                      "NETWORK_TX_GB": 2.0}


@pytest.mark.parametrize("bad", [None, {}, [{"measurement": "CPU_USAGE"}], [{"value": 1}], ["x"],
                                 [{"measurement": "CPU_USAGE", "value": float("nan")}]])
def test_parse_refuses_the_wrong_shape(bad):
    with pytest.raises(ParseError):
        ru.parse_period_usage(bad)


def test_poll_prices_each_projects_usage_in_one_request():
    exp = railway.build({"RAILWAY_TOKEN": "rw_unit", "RAILWAY_API_URL": "https://railway.example/graphql/v2"},
                        clock=FakeClock())
    up = {u.name: u for u in exp.upstreams}
    assert up["cost_to_date"].interval == exp.cfg.usage_interval
    exp.projects = {"p1": "alpha", "p2": "beta"}
    sent = []

    def gql(client, endpoint, query, variables=None, kind=None):
        sent.append((endpoint, variables))
        return {"t0": [{"measurement": "CPU_USAGE", "value": MONTH_MINUTES / 2}],
                "t1": [{"measurement": "NETWORK_TX_GB", "value": 10.0}, {"measurement": "UNPRICED", "value": 9.0}]}

    exp.gql = gql
    exp.poll_once(up["cost_to_date"])
    assert up["cost_to_date"].ok, up["cost_to_date"].last_error
    assert sent == [("usage", {"p0": "p1", "p1": "p2"})]
    got = {s.labels["project"]: s.value for f in exp.registry.collect() for s in f.samples
           if s.name == "railway_cost_to_date_dollars"}
    assert got == {"alpha": 10.0, "beta": 0.5}
