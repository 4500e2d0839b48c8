"""Demo data every dashboard panel needs, on the compose stack: what the native dashboard test's fixture
does (tests/dashboards/test_queries_live.py), with the bridges' shipped 60 s poll interval. Deployments and
workflow runs are injected through the simulator's control API in two batches, each counted by a bridge
poll that finished after it (the first creates the counters, the second increases them); then the demo's
5xx and LLM calls, the Supabase demo scrape and smoke probe, and two evaluations of the SLO rules."""
from __future__ import annotations

import json
import time
import urllib.request

from tests.docker.composectl import log
from tests.e2e import smoke

BRIDGES = "railway|vercel|github"  # the ones a batch is injected into
UPSTREAMS = "deployments|runs"     # their upstreams that read deployments and workflow runs (60 s)
COUNTERS = ("railway_deployments_total", "vercel_deployments_total", "github_actions_workflow_runs_total")
DEADLINE = 420.0  # s: up to three 60 s polls plus scrapes, and the SLO rules' evaluations


def _post(url: str, body: dict) -> None:
    assert url.startswith("http://127."), url  # loopback only
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200, r.status


def inject_batch(sim: str, n: int) -> None:
    """One batch of deployments and workflow runs of every outcome, n times the base counts (also used by
    the native dashboard test)."""
    _post(f"{sim}/_control/inject/github", {"count": 4 * n, "conclusion": "success", "workflow": "Deploy"})
    _post(f"{sim}/_control/inject/github", {"count": 2 * n, "conclusion": "failure", "workflow": "CI"})
    _post(f"{sim}/_control/inject/vercel", {"count": 3 * n, "outcome": "READY"})
    _post(f"{sim}/_control/inject/vercel", {"count": 1 * n, "outcome": "ERROR"})
    _post(f"{sim}/_control/inject/railway", {"count": 4 * n, "outcome": "SUCCESS"})
    _post(f"{sim}/_control/inject/railway", {"count": 1 * n, "outcome": "FAILED"})


def _oldest_poll(prom: str) -> float:
    """The oldest last successful poll among the injected bridges, as Prometheus last scraped it (0 until
    all three are there)."""
    sel = f'{{__name__=~"({BRIDGES})_exporter_last_success_timestamp_seconds", upstream=~"{UPSTREAMS}"}}'
    jobs = smoke.prom_query(prom, f"count(count by (job) ({sel}))")
    oldest = smoke.prom_query(prom, f"min({sel})")
    return float(oldest[0]["value"][1]) if jobs and float(jobs[0]["value"][1]) == 3 and oldest else 0.0


def feed(prom: str, sim: str) -> float:
    """Inject and wait until the panels' data is there; returns the seconds it took."""
    t0 = time.monotonic()
    deadline = t0 + DEADLINE

    def until(what: str, fn):
        return smoke.poll(what, fn, timeout=max(1.0, deadline - time.monotonic()), every=5)

    for batch, n in enumerate((3, 1)):
        injected = time.time()
        inject_batch(sim, n)
        # every bridge polled after the injection, and Prometheus scraped that poll
        until(f"a poll of every bridge after batch {batch + 1}", lambda t=injected: _oldest_poll(prom) > t)
        for m in COUNTERS:
            until(f"{m} (batch {batch + 1})", lambda m=m, batch=batch: smoke.prom_query(
                prom, f"sum(increase({m}[10m])) > 0" if batch else f"sum({m})"))
    until("demo app traffic with 5xx and LLM calls", lambda: smoke.prom_query(
        prom, 'sum(increase(http_requests_total{status_code=~"5.."}[10m])) > 0 '
              "and on () sum(increase(llm_tokens_total[10m])) > 0"))
    until("Supabase's metrics endpoint scraped (demo job) and the smoke probe of the demo app", lambda:
          smoke.prom_query(prom, 'pg_up{job="supabase-metrics-demo", demo="true"}')
          and smoke.prom_query(prom, 'probe_success{job="blackbox-smoke", service="obs-demo"}'))
    until("two evaluations of the SLO and budget rules", lambda: smoke.prom_query(
        prom, "count_over_time(slo:period_error_budget_remaining:ratio[10m]) >= 2"))
    took = time.monotonic() - t0
    log(f"demo data for every panel after {took:.0f} s")
    return took
