"""Railway's cost of the current billing period so far, per project.

``usage(measurements, projectId)`` (Railway's public GraphQL schema, railwayapp/cli ``src/gql/schema.json``)
returns ``[AggregatedUsage {measurement, value, tags}]``: without ``startDate`` it is the usage of the
project owner's current billing period so far (vCPU-minutes, GB-minutes, GB), priced here like
``estimatedUsage`` (``railway.estimated_cost``), whose answer is Railway's estimate for the whole period
(``railway_estimated_cost_dollars``). One batched document per poll, on the usage interval."""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client.core import GaugeMetricFamily

from obs_bridges import core
from obs_bridges.httpclient import ApiClient, limits
from obs_bridges.parsing import lst, num, obj, s
from obs_bridges.railway_api import USAGE


def period_usage_document(pids: list[str]) -> tuple[str, dict]:
    """The billing period's usage so far of each project, as fields ``t{i}``."""
    meas = ", ".join(USAGE)
    defs = ", ".join(f"$p{i}: String!" for i in range(len(pids)))
    fields = " ".join(f"t{i}: usage(projectId: $p{i}, measurements: [{meas}]) {{ measurement value }}"
                      for i in range(len(pids)))
    return f"query({defs}) {{ {fields} }}", {f"p{i}": p for i, p in enumerate(pids)}


def parse_period_usage(items: Any) -> dict[str, float]:
    """measurement -> value, summed (a project's usage may come in several tagged rows)."""
    out: dict[str, float] = {}
    for u in lst(items, "usage"):
        u = obj(u, "usage")
        m = s(u.get("measurement"), "measurement")
        out[m] = out.get(m, 0.0) + num(u.get("value"), "value")
    return out


class PeriodCost:
    """The ``cost_to_date`` upstream of the Railway bridge and the collector of its gauge."""

    def __init__(self, exporter, price):
        self.exp = exporter
        self.price = price  # railway.estimated_cost: measurement -> value to dollars
        st = exporter.settings
        self.client = ApiClient("railway", st.api_url, exporter.selfm, st.http_timeout, auth=exporter._auth,
                                **limits(st), clock=exporter.clock)
        self.cost: dict[str, float] = {}
        self._lock = threading.Lock()

    def poll(self) -> None:
        exp = self.exp
        exp._ensure_discovered(self.client)
        pids = list(exp.projects)
        if not pids:
            return
        data = exp.gql(self.client, "usage", *period_usage_document(pids))
        cost = {exp.projects[pid]: self.price(parse_period_usage(data.get(f"t{i}"))) for i, pid in enumerate(pids)}
        with self._lock:
            self.cost = cost

    def describe(self):
        return []

    def collect(self):
        with self._lock:
            cost = dict(self.cost)
        g = GaugeMetricFamily("railway_cost_to_date_dollars", "Cost of the current billing period so far (usage x "
                              "published prices), per project.", labels=["project"])
        for p, v in sorted(cost.items()):
            g.add_metric([p], v)
        yield g


def attach(exporter, price) -> PeriodCost:
    """Adds the ``cost_to_date`` upstream, on RAILWAY_USAGE_INTERVAL_SECONDS like the estimate."""
    poller = PeriodCost(exporter, price)
    exporter.registry.register(poller)
    exporter.add_upstream(core.Upstream("cost_to_date", exporter.cfg.usage_interval, poller.poll))
    return poller
