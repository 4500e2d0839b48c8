"""The native stack the live dashboard modules share (test_queries_live.py, test_markers_live.py; the fixture
`live` in conftest.py starts it once for the package): the real binaries of Prometheus, the collector and
Alertmanager with the shipped configs and rules, fed by the demo app + load generator and the four platform
bridges reading the API simulator, with simulated deployments and workflow runs injected in two batches.
Bounded to about 4 minutes."""
from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import running_stack
from tests.docker.demo_feed import inject_batch
from tests.e2e.smoke import poll
from tests.harness import compose
from tests.harness.stack import NativeStack

SERVICES = ["prometheus", "loki", "otelcol", "alertmanager", "webhook-sink", "simulator", "railway-exporter",
            "vercel-exporter", "supabase-exporter", "github-exporter", "demo-app", "demo-loadgen",
            "blackbox-exporter", "ingest"]
BRIDGES = ["railway", "vercel", "supabase", "github"]
# The bridges poll every 60 s by default; the test polls every 5 s so that two batches of simulated
# deployments and workflow runs are counted within the time budget (nothing else is changed).
POLL_SECONDS = "5"
DATA_DEADLINE = 150.0


def get_json(url: str, timeout: float = 20) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read().decode(errors="replace")[:400]
        raise AssertionError(f"HTTP {e.code}: {body}") from None


def post_json(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


class Live:
    def __init__(self, stack: NativeStack):
        self.stack = stack
        self.prom = stack.url("prometheus", 9090)
        self.sim = stack.url("simulator", 8600)
        self.started = time.time()
        self.batches: list[float] = []   # when each batch of deployments was injected
        self.ready_after = 0.0

    def prom_instant(self, expr: str) -> list:
        r = get_json(f"{self.prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert r["status"] == "success", r
        return r["data"]["result"]

    def prom_range(self, expr: str, step: int = 15) -> list:
        # The last step is now (Grafana's time range ends at now too): steps run start, start + step, ...
        # so the start is chosen a whole number of steps before the end.
        end = time.time()
        start = end - step * math.ceil((end - self.started + 30) / step)
        r = get_json(f"{self.prom}/api/v1/query_range?" + urllib.parse.urlencode(
            {"query": expr, "start": start, "end": end, "step": f"{step}s"}))
        assert r["status"] == "success", r
        return r["data"]["result"]


def has_value(result: list) -> bool:
    """At least one sample that is a number (NaN is Grafana's 'No data' for a stat)."""
    for s in result:
        vals = s.get("values") or ([s["value"]] if "value" in s else [])
        for _, v in vals:
            if not math.isnan(float(v)):
                return True
    return False


def until(what: str, fn, deadline: float):
    return poll(what, fn, timeout=max(1.0, deadline - time.monotonic()), every=2)


def make_stack() -> NativeStack:
    env = compose.read_env()
    # The demo app reports as environment "prod" (compose's DEMO_ENVIRONMENT knob) so the prod SLOs
    # (slo/api.yml) have data; the compose default ("local") is covered by no SLO.
    env["DEMO_ENVIRONMENT"] = "prod"
    st = NativeStack(SERVICES, env=env)
    secrets = compose.ROOT / "secrets"
    for b in BRIDGES:
        svc = st.all[f"{b}-exporter"]
        e = dict(svc.environment)
        # README: "with no tokens configured, the bridges read the built-in simulator". A token *_FILE
        # that names a file absent from secrets/ is "no token" for the demo.
        for k in [k for k, v in e.items() if k.endswith("_TOKEN_FILE")]:
            if not (secrets / Path(e[k]).name).exists():
                del e[k]
        if b == "github" and not e.get("GITHUB_REPOSITORIES"):
            e["GITHUB_REPOSITORIES"] = "demo-org"       # the simulator's organisation
        for k in ("POLL_INTERVAL_SECONDS", "DB_POLL_INTERVAL_SECONDS"):
            e[f"{b.upper()}_{k}"] = POLL_SECONDS
        if b == "github":
            # A batch makes the simulator deliver some 150 webhooks at once, over the receiver's default burst
            # (100): a refused delivery is not retried, and a repository with deliveries is polled only hourly.
            e["GITHUB_WEBHOOK_MAX_REQUESTS_PER_SECOND"] = "1000"
        svc.environment = e
    return st


@contextmanager
def running():
    with running_stack(make_stack()) as st:
        lv = Live(st)
        deadline = time.monotonic() + DATA_DEADLINE
        # Each bridge seeds its deployment/run history at its first poll (never counted); what finishes
        # after that is counted. Two batches: the first creates the counters, the second increases them.
        until("first poll of every bridge", lambda: len(lv.prom_instant(
            'count by (job) ({__name__=~"(railway|vercel|supabase|github)_exporter_last_success_timestamp_seconds"})'))
            == 4, deadline)
        # The simulator picks repos/projects/services at random: the first batch is large enough to
        # create the series of every outcome, so that the second one increases existing counters.
        # A failed deploy workflow too, for the red GitHub deploy markers (the batch fails CI only), always in
        # the same repository, event and branch: its counter exists after the first batch and increases in the
        # second, whatever the simulator picks for the others.
        failed_deploy = {"conclusion": "failure", "workflow": "Deploy", "event": "push", "branch": "main",
                         "repo": get_json(f"{lv.sim}/_control/world/github")["repos"][0]}
        for batch, n in enumerate((3, 1)):
            lv.batches.append(time.time())
            inject_batch(lv.sim, n)
            post_json(f"{lv.sim}/_control/inject/github", {**failed_deploy, "count": n})
            for m in ("railway_deployments_total", "vercel_deployments_total", "github_actions_workflow_runs_total"):
                until(f"{m} (batch {batch + 1})", lambda m=m, batch=batch: lv.prom_instant(
                    f"sum(increase({m}[10m])) > 0" if batch else f"sum({m})"), deadline)
        until("demo app traffic with 5xx and LLM calls", lambda: lv.prom_instant(
            'sum(increase(http_requests_total{status_code=~"5.."}[10m])) > 0 '
            "and on () sum(increase(llm_tokens_total[10m])) > 0"), deadline)
        until("Supabase's metrics endpoint scraped (demo job) and the smoke probe of the demo app", lambda:
              lv.prom_instant('pg_up{job="supabase-metrics-demo", demo="true"}')
              and lv.prom_instant('probe_success{job="blackbox-smoke", service="obs-demo"}'), deadline)
        until("two evaluations of the SLO and budget rules", lambda: lv.prom_instant(
            "count_over_time(slo:period_error_budget_remaining:ratio[10m]) >= 2"), deadline)
        lv.ready_after = time.time() - lv.started
        yield lv
