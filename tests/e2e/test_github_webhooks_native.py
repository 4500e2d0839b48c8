"""GitHub webhooks on the native stack, wired exactly as docker-compose.yml wires them: the simulator writes
its per-start secret into the shared tmpfs volume and delivers to http://github-exporter:9605/webhook; the
GitHub bridge (obs-bridge github-webhook) reads the secret from there and counts the run from the delivery,
then Prometheus scrapes it."""
from __future__ import annotations

import json
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e import smoke


def _metric(url: str, name: str, **labels) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_a_run_is_counted_from_its_delivery_and_reaches_prometheus(native_stack):
    sim = native_stack.url("simulator", 8600)
    bridge = native_stack.url("github-exporter", 9604)
    before = _metric(bridge, "github_webhook_deliveries_total", event="workflow_run", result="counted")
    req = urllib.request.Request(sim + "/_control/inject/github", method="POST", headers={"Content-Type": "application/json"},
                                 data=json.dumps({"repo": "demo-org/repo-amber", "count": 2, "state": "in_progress",
                                                  "conclusion": "success", "finish_in": 2}).encode())
    urllib.request.urlopen(req, timeout=10).read()
    # The bridge polls every 60 s in compose: counted within 20 s means counted from the delivery.
    smoke.poll("the injected runs counted from their webhook deliveries", lambda: _metric(
        bridge, "github_webhook_deliveries_total", event="workflow_run", result="counted") >= before + 2, timeout=20)
    assert _metric(bridge, "github_webhook_deliveries_total", result="bad_signature") == 0
    prom = native_stack.url("prometheus", 9090)
    smoke.poll("the delivery counters in Prometheus", lambda: smoke.prom_query(
        prom, 'sum(github_webhook_deliveries_total{result="counted"}) >= 2'), timeout=45)
