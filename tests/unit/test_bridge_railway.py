"""Railway's estimated cost (estimatedUsage x published prices) and the usage upstream that reports it."""

import pytest

from obs_bridges import railway
from tests.support.clock import FakeClock

MONTH_MINUTES = 30 * 24 * 60


@pytest.mark.parametrize("usage, dollars", [
    ({"CPU_USAGE": MONTH_MINUTES}, 20.0),  # one vCPU for a month
    ({"MEMORY_USAGE_GB": MONTH_MINUTES}, 10.0),  # one GB for a month
    ({"NETWORK_TX_GB": 100.0}, 5.0),  # egress: per GB
    ({"DISK_USAGE_GB": MONTH_MINUTES * 10}, 1.5),  # 10 GB volume for a month
    ({"BACKUP_USAGE_GB": MONTH_MINUTES * 2}, 0.3),
    ({"CPU_USAGE": MONTH_MINUTES / 2, "MEMORY_USAGE_GB": MONTH_MINUTES * 2, "NETWORK_TX_GB": 1.0}, 30.05),
    ({"UNPRICED": 1e9}, 0.0),  # a measurement without a price costs nothing
    ({}, 0.0),
])
def test_estimated_cost(usage, dollars):
    assert railway.estimated_cost(usage) == pytest.approx(dollars, abs=1e-9)


def test_estimated_cost_is_rounded_to_micro_dollars():
    assert railway.estimated_cost({"CPU_USAGE": 1.0}) == round(20.0 / MONTH_MINUTES, 6) == 0.000463


def test_poll_usage_reports_cost_and_usage_per_project():
    exp = railway.build({"RAILWAY_TOKEN": "rw_unit", "RAILWAY_API_URL": "https://railway.example/graphql/v2"},
                        clock=FakeClock())
    exp.projects = {"p1": "alpha", "p2": "beta"}
    sent = []

    def gql(client, endpoint, query, variables=None, kind=None):
        sent.append((endpoint, variables))
        return {"u0": [{"measurement": "CPU_USAGE", "estimatedValue": MONTH_MINUTES},
                       {"measurement": "NETWORK_TX_GB", "estimatedValue": 2.0}],
                "u1": [{"measurement": "MEMORY_USAGE_GB", "estimatedValue": MONTH_MINUTES / 4}]}

    exp.gql = gql
    exp.poll_usage()
    assert sent == [("estimated_usage", {"p0": "p1", "p1": "p2"})]  # one batched request
    assert exp.cost == {"alpha": 20.1, "beta": 2.5}
    assert exp.usage == {("alpha", "CPU_USAGE"): MONTH_MINUTES, ("alpha", "NETWORK_TX_GB"): 2.0,
                         ("beta", "MEMORY_USAGE_GB"): MONTH_MINUTES / 4}
    text = "\n".join(f"{s.name}{s.labels} {s.value}" for m in exp.collect() for s in m.samples)
    assert "railway_estimated_cost_dollars{'project': 'alpha'} 20.1" in text


def test_a_rejected_discovery_is_not_retried_by_every_upstream_until_the_hold_passes():
    clock = FakeClock()
    exp = railway.build({"RAILWAY_TOKEN": "rw_unit", "RAILWAY_API_URL": "https://railway.example/graphql/v2",
                         "RAILWAY_TOKEN_KIND": "account"}, clock=clock)
    calls = []

    def gql(client, endpoint, query, variables=None, kind=None):
        calls.append(endpoint)
        raise railway.ApiError("auth", "railway: Not Authorized")

    exp.gql = gql
    for poll in (exp.poll_deployments, exp.poll_metrics, exp.poll_usage):
        with pytest.raises(railway.ApiError):
            poll()
    assert calls == ["projects"]  # the first failure is remembered on the injected clock
    clock.advance(railway.DISCOVERY_ERROR_HOLD_SECONDS - 1)
    with pytest.raises(railway.ApiError):
        exp.poll_metrics()
    assert calls == ["projects"]
    clock.advance(1)
    with pytest.raises(railway.ApiError):
        exp.poll_metrics()
    assert calls == ["projects", "projects"]
