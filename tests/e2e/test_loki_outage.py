"""Loki down for 2 minutes loses no log record (issue 16, shared rules): the real collector with the shipped
otelcol/config.yaml keeps taking container lines (fluent_forward, as Docker's fluentd driver sends them),
apps' OTLP logs (4318) and Supabase's drain (4319) while the log backend (the OTLP sink standing in for
Loki at loki:3100) is stopped for 120 s; its file-backed sending queue holds them and delivers every one
when the backend is back. Delivery is at least once: the test counts distinct bodies.

Prints the measured numbers (queue depth at the end of the outage, catch-up time); run with -s to see them."""
from __future__ import annotations

import json
import time
import urllib.request

import pytest

from obs_bridges.simulator import drain_payloads

from tests.conftest import running_stack
from tests.e2e import otlp, smoke
from tests.harness import fluent_forward as ff
from tests.harness import otlp_sink
from tests.harness.stack import NativeStack
from tests.support.promtext import metric_sum

OUTAGE_S = 120
EVERY_S = 2.0
PER_ROUND = 5  # records per path per round


@pytest.fixture(scope="module")
def stack():
    with running_stack(NativeStack(["loki", "otelcol"])) as s:
        yield s


def collector_metrics(stack) -> str:
    with urllib.request.urlopen(stack.url("otelcol", 8888, "/metrics"), timeout=5) as r:
        return r.read().decode()


def post_supabase(stack, events: list[dict]) -> int:
    """A Supabase OTLP drain request (the simulator's Logflare encoding) as the ingest forwards it."""
    body = drain_payloads.export_logs_request("postgres.logs", "abcdefghijklmnopqrst", events, time.time_ns())
    req = urllib.request.Request(stack.url("otelcol", 4319, "/v1/logs"), data=body, method="POST",
                                 headers={"Content-Type": "application/x-protobuf", "X-Obs-Project": "shop"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status


def test_two_minute_loki_outage_loses_nothing(stack):
    marker = otlp.ids()[0][:10]
    container = ff.Container("railway-exporter")
    sent: set[str] = set()
    stack.kill("loki")
    start = time.monotonic()
    rnd = 0
    while time.monotonic() - start < OUTAGE_S:
        lines = [json.dumps({"ts": "2026-03-01T09:15:02.417Z", "level": "info", "component": "railway-exporter",
                             "logger": "t", "msg": f"{marker} compose {rnd}.{i}"}) for i in range(PER_ROUND)]
        ff.send(stack.ip("otelcol"), 24224, [ff.message(container, line, "stderr") for line in lines])
        sent.update(lines)
        for i in range(PER_ROUND):
            trace_id, span_id = otlp.ids()
            body = f"{marker} otlp {rnd}.{i}"
            assert otlp.post(stack.url("otelcol", 4318), "logs", otlp.log_payload("obs-outage", trace_id, span_id,
                                                                                   body)) == 200
            sent.add(body)
        events = [{"event_message": f"{marker} supabase {rnd}.{i}", "timestamp": time.time_ns() // 1000,
                   "id": f"{rnd}.{i}"} for i in range(PER_ROUND)]
        assert post_supabase(stack, events) == 200
        sent.update(e["event_message"] for e in events)
        rnd += 1
        time.sleep(max(0.0, start + rnd * EVERY_S - time.monotonic()))

    m = collector_metrics(stack)
    queued_batches = metric_sum(m, "otelcol_exporter_queue_size", exporter="otlp_http/loki")
    refused = metric_sum(m, "otelcol_receiver_refused_log_records")
    enqueue_failed = metric_sum(m, "otelcol_exporter_enqueue_failed_log_records", exporter="otlp_http/loki")
    sink = stack.url("loki", 3100)
    back_ns = time.time_ns()
    back = time.monotonic()
    stack.restart("loki")

    def all_there():
        got = {r["body"] for r in otlp_sink.query(sink, "logs", body_contains=marker)}
        return got >= sent and got

    smoke.poll(f"all {len(sent)} records at the log backend after the outage", all_there, timeout=90, every=1)
    catch_up = time.monotonic() - back
    recs = otlp_sink.query(sink, "logs", body_contains=marker)
    bodies = [r["body"] for r in recs]
    print(f"\nloki outage: {OUTAGE_S} s, {len(sent)} records sent during it ({rnd} rounds x 3 paths x {PER_ROUND}); "
          f"exporter queue at the end: {queued_batches:.0f} batches; all delivered {catch_up:.1f} s after the "
          f"backend came back; {len(bodies) - len(set(bodies))} duplicates")

    assert refused == 0 and enqueue_failed == 0, (refused, enqueue_failed)
    assert queued_batches >= 1, "nothing was queued: the outage was not an outage"
    assert set(bodies) == sent
    # Held by the collector for the whole outage, not delivered to a backend that never went down.
    assert min(r["received_unix_nano"] for r in recs) >= back_ns
