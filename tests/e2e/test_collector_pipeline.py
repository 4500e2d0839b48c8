"""The collector's pipelines on the real binary with the shipped config: a 60 s outage of the log backend
loses no log record (retries + file-backed sending queue), and records queued during an outage survive a
collector restart. The log backend is the OTLP sink standing in for Loki at loki:3100 (tests/harness/
stack.py STAND_INS): what is tested here is the collector, which sends to it exactly as to Loki.

Sampling is tested in tests/e2e/test_sampling.py."""
from __future__ import annotations

import re
import time
import urllib.request

import pytest

from tests.e2e import otlp, smoke
from tests.conftest import running_stack
from tests.harness import otlp_sink
from tests.harness.stack import NativeStack


@pytest.fixture(scope="module")
def pipeline():
    # Only the collector and its log/metric backends: no demo traffic in the way.
    with running_stack(NativeStack(["prometheus", "loki", "otelcol"])) as stack:
        yield stack


def collector_metrics(stack) -> str:
    with urllib.request.urlopen(stack.url("otelcol", 8888, "/metrics"), timeout=5) as r:
        return r.read().decode()


def delivered(stack, marker: str) -> list[dict]:
    """The log records carrying `marker` that reached the log backend, one per distinct body."""
    recs = otlp_sink.query(stack.url("loki", 3100), "logs", service_name="obs-outage", body_contains=marker)
    return list({r["body"]: r for r in recs}.values())


def test_log_backend_outage_of_60s_loses_no_log(pipeline):
    base = pipeline.url("otelcol", 4318)
    marker = otlp.ids()[0][:10]
    pipeline.kill("loki")
    sent = 0
    outage_start = time.monotonic()
    for i in range(60):
        trace_id, span_id = otlp.ids()
        assert otlp.post(base, "logs", otlp.log_payload("obs-outage", trace_id, span_id, f"{marker} record {i}")) == 200
        sent += 1
    # The outage the issue specifies: the backend stays down for 60 s while the collector holds the records.
    time.sleep(max(0.0, 60 - (time.monotonic() - outage_start)))
    queued = collector_metrics(pipeline)
    back = time.time_ns()
    pipeline.restart("loki")
    got = smoke.poll(f"all {sent} records at the log backend after the outage",
                     lambda: (n := len(delivered(pipeline, marker))) == sent and n, timeout=90, every=2)
    assert got == sent
    # Every one of them arrived after the backend came back: they were held by the collector, not delivered
    # to a backend that never went down.
    assert min(r["received_unix_nano"] for r in delivered(pipeline, marker)) >= back
    assert re.search(r'otelcol_exporter_queue_size\{[^}]*exporter="otlp_http/loki"', queued), \
        "the log exporter's queue should be visible in the collector's own metrics"


def test_collector_restart_during_outage_keeps_queued_logs(pipeline):
    """The sending queue is on disk (file_storage, the otelcol-queue volume): records queued while the
    log backend is down survive a collector restart and are delivered when the backend is back."""
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

    smoke.poll("records waiting in the log exporter's queue", queued, timeout=30, every=0.5)
    pipeline.restart("otelcol")
    pipeline.restart("loki")
    got = smoke.poll("all 20 queued records at the log backend after a collector restart",
                     lambda: (n := len(delivered(pipeline, marker))) == 20 and n, timeout=90, every=2)
    assert got == 20
