"""`docker compose down` then `up -d --wait` keeps what the named volumes hold: Prometheus samples, Loki
log lines, Tempo traces and Grafana's database (the generated admin password still logs in)."""
from __future__ import annotations

import urllib.parse

from tests.docker.composectl import http
from tests.docker.conftest import URL
from tests.e2e import smoke


def _metric_at(sent: dict, at: float) -> list:
    r = smoke.get_json(f"{URL['prometheus']}/api/v1/query?" + urllib.parse.urlencode(
        {"query": f'obs_smoke_requests_total{{smoke_id="{sent["smoke_id"]}"}}', "time": at}))
    return [x for x in r["data"]["result"] if float(x["value"][1]) == 3.0]


def test_down_and_up_keep_the_data(stack, admin):
    sent = smoke.send_signals(URL["otlp"], "obs-smoke-restart")
    smoke.poll("log in Loki", lambda: smoke.loki_has_log(URL["loki"], sent), timeout=120, every=3)
    smoke.poll("trace in Tempo", lambda: smoke.tempo_has_trace(URL["tempo"], sent), timeout=120, every=3)
    seen = smoke.poll("metric in Prometheus", lambda: smoke.prometheus_has_metric(URL["prometheus"], sent),
                      timeout=120, every=3)
    at = float(seen[0]["value"][0])

    stack.down(volumes=False)
    stack.up()

    assert _metric_at(sent, at), "Prometheus lost the sample across down/up (prometheus-data)"
    smoke.poll("the same log in Loki after down/up (loki-data)", lambda: smoke.loki_has_log(URL["loki"], sent),
               timeout=120, every=5)
    smoke.poll("the same trace in Tempo after down/up (tempo-data)", lambda: smoke.tempo_has_trace(URL["tempo"], sent),
               timeout=120, every=5)
    status, body = http(f"{URL['grafana']}/api/user", auth=admin)
    assert status == 200, f"the admin password from before down/up no longer works (grafana-data): {status} {body}"
