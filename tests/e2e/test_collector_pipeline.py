"""The collector's pipelines on real binaries with the shipped config: a Loki outage of 60 s loses no
log record (retries + file-backed sending queue).

Tail sampling is not here: its processor (contrib 0.162.0) needs contrib pkg/ottl/xottl and
pkg/ottl/contexts/xprofile, which the Go module proxy here refuses, so no collector with it can be built
(README, Known gaps)."""
from __future__ import annotations

import re
import time
import urllib.request

import pytest

from tests.e2e import otlp, smoke
from tests.conftest import running_stack
from tests.harness.stack import NativeStack


@pytest.fixture(scope="module")
def pipeline():
    # Only the collector and its log/metric backends: no demo traffic in the way.
    with running_stack(NativeStack(["prometheus", "loki", "otelcol"])) as stack:
        yield stack


def collector_metrics(stack) -> str:
    with urllib.request.urlopen(stack.url("otelcol", 8888, "/metrics"), timeout=5) as r:
        return r.read().decode()


def loki_count(stack, marker: str) -> int:
    import json
    import urllib.parse
    now = time.time_ns()
    q = f'{{service_name="obs-outage"}} |= "{marker}"'
    url = stack.url("loki", 3100, "/loki/api/v1/query_range?" + urllib.parse.urlencode(
        {"query": q, "start": now - 900 * 10**9, "end": now + 60 * 10**9, "limit": 1000}))
    with urllib.request.urlopen(url, timeout=10) as r:
        res = json.loads(r.read())["data"]["result"]
    return len({v[1] for s in res for v in s["values"]})


def test_loki_outage_of_60s_loses_no_log(pipeline):
    base = pipeline.url("otelcol", 4318)
    marker = otlp.ids()[0][:10]
    pipeline.kill("loki")
    sent = 0
    outage_start = time.monotonic()
    for i in range(60):
        trace_id, span_id = otlp.ids()
        assert otlp.post(base, "logs", otlp.log_payload("obs-outage", trace_id, span_id, f"{marker} record {i}")) == 200
        sent += 1
    # The outage the issue specifies: Loki stays down for 60 s while the collector holds the records.
    time.sleep(max(0.0, 60 - (time.monotonic() - outage_start)))
    queued = collector_metrics(pipeline)
    pipeline.restart("loki")
    got = smoke.poll(f"all {sent} records in Loki after the outage",
                     lambda: (n := loki_count(pipeline, marker)) == sent and n, timeout=90, every=2)
    assert got == sent
    assert re.search(r'otelcol_exporter_queue_size\{[^}]*exporter="otlp_http/loki"', queued), \
        "the Loki exporter's queue should be visible in the collector's own metrics"


def test_collector_restart_during_outage_keeps_queued_logs(pipeline):
    """The sending queue is on disk (file_storage, the otelcol-queue volume): records queued while Loki
    is down survive a collector restart and are delivered when Loki is back."""
    base = pipeline.url("otelcol", 4318)
    marker = otlp.ids()[0][:10]
    pipeline.kill("loki")
    for i in range(20):
        trace_id, span_id = otlp.ids()
        assert otlp.post(base, "logs", otlp.log_payload("obs-outage", trace_id, span_id, f"{marker} queued {i}")) == 200

    def queued():
        m = re.search(r'otelcol_exporter_queue_size\{[^}]*exporter="otlp_http/loki"[^}]*\} (\S+)',
                      collector_metrics(pipeline))
        return m and float(m.group(1)) >= 1

    smoke.poll("records waiting in the Loki exporter's queue", queued, timeout=30, every=0.5)
    pipeline.restart("otelcol")
    pipeline.restart("loki")
    got = smoke.poll("all 20 queued records in Loki after a collector restart",
                     lambda: (n := loki_count(pipeline, marker)) == 20 and n, timeout=90, every=2)
    assert got == 20
