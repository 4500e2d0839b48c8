"""The stack's own container logs (issue 16, part 4) through the real collector with the shipped
otelcol/config.yaml: lines sent to its fluent_forward receiver exactly as Docker's fluentd log driver sends
them (tests/harness/fluent_forward.py) reach the log backend (the OTLP sink standing in for Loki at
loki:3100) with the bounded resource attributes Loki indexes (docs/logging.md, "Logs in Loki"), our JSON
lines' fields as record attributes (structured metadata) and every line's level normalised."""
from __future__ import annotations

import json
import re
import threading
import time
import urllib.request

import pytest

from tests.conftest import running_stack
from tests.e2e import otlp, smoke
from tests.harness import fluent_forward as ff
from tests.harness import otlp_sink
from tests.harness.stack import NativeStack

# The resource attributes (Loki index labels) every container record carries, and nothing else.
LABELS = {"service.name", "project", "platform", "source", "level", "deployment.environment",
          "deployment.environment.name"}
LEVELS = {"debug", "info", "warning", "error", "critical", "unknown"}


@pytest.fixture(scope="module")
def stack():
    with running_stack(NativeStack(["loki", "otelcol"])) as s:
        yield s


def arrived(stack, marker: str, n: int) -> list[dict]:
    def got():
        recs = otlp_sink.query(stack.url("loki", 3100), "logs", body_contains=marker)
        return recs if len(recs) >= n else None
    return smoke.poll(f"{n} container log records with {marker}", got, timeout=30, every=0.5)


def test_container_lines_reach_loki_with_bounded_labels(stack):
    marker = otlp.ids()[0][:12]
    exporter = ff.Container("railway-exporter")
    prometheus = ff.Container("prometheus")
    demo = ff.Container("demo-app", project="shop")
    plain = ff.Container("my-script", compose=False)
    t0 = time.time_ns() - 5_000_000_000
    json_line = json.dumps({"ts": "2026-03-01T09:15:02.417Z", "level": "warning", "component": "railway-exporter",
                            "logger": "obs_bridges.core", "msg": "poll failed", "platform": "railway",
                            "status": 503, "project": "api", "source": "graphql", "marker": marker})
    logfmt_line = (f'time=2026-03-01T09:15:02.417Z level=WARN source=main.go:1441 msg="Error on ingesting '
                   f'samples" marker={marker}')
    collector_line = json.dumps({"level": "error", "ts": "2026-03-01T09:15:02.417Z", "caller": "x.go:1",
                                 "msg": f"Exporting failed {marker}", "otelcol.component.id": "otlp_http/loki"})
    lines = [
        ff.message(exporter, json_line, "stderr", t_ns=t0),
        ff.message(prometheus, logfmt_line, "stderr", t_ns=t0 + 1),
        # Docker without fluentd-sub-second-precision sends integer seconds.
        ff.message(demo, f"plain text line {marker}", "stdout", t_ns=t0 + 2, sub_second=False),
        ff.message(plain, f"FATAL: out of memory {marker}", "stderr", t_ns=t0 + 3),
        ff.message(ff.Container("otelcol"), collector_line, "stderr", t_ns=t0 + 4),
        ff.message(demo, f"level=dbug msg=x {marker}", "stdout", t_ns=t0 + 5),
        # Not a name compose allows (something else on the host writing to the published port).
        ff.message(ff.Container("bad name/../x" + "y" * 80), f"odd labels {marker}", "stdout", t_ns=t0 + 6),
    ]
    # One connection carrying every container's lines: the collector splits them into streams itself.
    ff.send(stack.ip("otelcol"), 24224, lines)
    recs = {r["body"]: r for r in arrived(stack, marker, len(lines))}
    assert len(recs) == len(lines), sorted(recs)

    for body, r in recs.items():
        assert set(r["resource"]) == LABELS, (body, r["resource"])
        assert r["resource"]["platform"] == "compose"
        assert r["resource"]["level"] in LEVELS
        assert r["resource"]["deployment.environment"] == "local"
        # No record attribute shares a name with an index label (Loki would show both).
        assert not {k.replace(".", "_") for k in r["attributes"]} & {k.replace(".", "_") for k in LABELS}, r
        assert "fluent.tag" not in r["attributes"] and not any(k.startswith("com.docker") for k in r["attributes"])

    j = recs[json_line]
    assert j["resource"] == {"service.name": "railway-exporter", "project": "obs-stack", "platform": "compose",
                             "source": "stderr", "level": "warning", "deployment.environment": "local",
                             "deployment.environment.name": "local"}
    a = j["attributes"]
    # The schema's fields are structured metadata; fields named like a label keep their value as log_<name>.
    assert a["msg"] == "poll failed" and a["component"] == "railway-exporter" and a["logger"] == "obs_bridges.core"
    assert a["status"] == 503 and a["marker"] == marker
    assert a["log_platform"] == "railway" and a["log_project"] == "api"
    assert "ts" not in a and "level" not in a and "source" not in a
    assert a["container_name"] == "/obs-stack-railway-exporter-1" and len(a["container_id"]) == 64
    assert j["severity_number"] == 13 and j["severity_text"] == "warning"
    assert j["time_unix_nano"] == t0

    p = recs[logfmt_line]
    assert (p["resource"]["service.name"], p["resource"]["level"], p["resource"]["source"]) == \
        ("prometheus", "warning", "stderr")
    assert p["severity_text"] == "WARN" and p["severity_number"] == 13
    # Only the level is taken from a third-party line; its `source=main.go:1441` stays in the line.
    assert set(p["attributes"]) == {"container_id", "container_name"}

    d = recs[f"plain text line {marker}"]
    assert (d["resource"]["service.name"], d["resource"]["project"], d["resource"]["level"], d["resource"]["source"]) \
        == ("demo-app", "shop", "unknown", "stdout")
    assert d["time_unix_nano"] == (t0 + 2) // 1_000_000_000 * 1_000_000_000

    u = recs[f"FATAL: out of memory {marker}"]
    # A container without compose labels gets no label from its (random) name.
    assert (u["resource"]["service.name"], u["resource"]["project"]) == ("unknown", "unknown")
    assert u["attributes"]["container_name"] == "/my-script"
    assert recs[f"odd labels {marker}"]["resource"]["service.name"] == "unknown"

    c = recs[collector_line]
    assert (c["resource"]["service.name"], c["resource"]["level"]) == ("otelcol", "error")
    assert c["attributes"]["otelcol.component.id"] == "otlp_http/loki" and c["severity_number"] == 17

    assert recs[f"level=dbug msg=x {marker}"]["resource"]["level"] == "debug"


@pytest.mark.parametrize("text,level", [
    ("DEBUG", "debug"), ("trace", "debug"), ("info", "info"), ("notice", "info"), ("warn", "warning"),
    ("WARNING", "warning"), ("err", "error"), ("ERROR", "error"), ("fatal", "critical"), ("panic", "critical"),
    ("critical", "critical"), ("verbose", "unknown"), ("", "unknown"),
])
def test_levels_normalised(stack, text, level):
    marker = otlp.ids()[0][:12]
    line = json.dumps({"ts": "2026-03-01T09:15:02.417Z", "level": text, "component": "x", "logger": "x",
                       "msg": marker})
    ff.send(stack.ip("otelcol"), 24224, [ff.message(ff.Container("webhook-sink"), line)])
    (r,) = arrived(stack, marker, 1)
    assert r["resource"]["level"] == level


def test_malformed_line_does_not_stop_the_pipeline(stack):
    """A line that looks like JSON but is not, a JSON array and a huge line still arrive, as unknown-level
    lines; the next line on the same connection is unaffected."""
    marker = otlp.ids()[0][:12]
    c = ff.Container("grafana")
    lines = [f'{{"level": "error", broken {marker}', f'["level", "error", "{marker}"]',
             f"{marker} " + "x" * 16_000, f"logger=x lvl=eror msg=y {marker}"]
    ff.send(stack.ip("otelcol"), 24224, [ff.message(c, line) for line in lines])
    recs = {r["body"]: r for r in arrived(stack, marker, len(lines))}
    assert [recs[line]["resource"]["level"] for line in lines] == ["unknown", "unknown", "unknown", "error"]
    assert all(set(r["attributes"]) == {"container_id", "container_name"} for r in recs.values())


def sink_records(stack) -> int:
    text = urllib.request.urlopen(stack.url("loki", 3100, "/metrics"), timeout=5).read().decode()
    return int(re.search(r'^otlp_sink_records_total\{signal="logs"\} (\d+)', text, re.M).group(1))


def test_flood_of_container_lines_stays_within_the_memory_limit(stack):
    """A burst of 100,000 lines from 10 containers at once (as fast as this machine sends them): every line
    arrives and the collector's resident memory stays under its compose mem_limit (400 MiB; GOMEMLIMIT is
    320 MiB). Prints the numbers."""
    n_containers, per_container = 10, 10_000
    before = sink_records(stack)
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], stack.rss_kib().get("otelcol", 0))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    try:
        def one(i: int) -> None:
            c = ff.Container(f"flood-{i}")
            line = json.dumps({"ts": "2026-03-01T09:15:02.417Z", "level": "info", "component": "flood",
                               "logger": "flood", "msg": "x" * 200})
            ff.send(stack.ip("otelcol"), 24224, [ff.message(c, line) for _ in range(per_container)], timeout=60)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n_containers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        sent_s = time.monotonic() - t0
        total = n_containers * per_container
        smoke.poll(f"{total} flood lines at the log backend",
                   lambda: sink_records(stack) - before >= total, timeout=120, every=1)
        done_s = time.monotonic() - t0
    finally:
        stop.set()
        sampler.join(5)
    print(f"\nflood: {total} lines from {n_containers} containers sent in {sent_s:.1f} s, all at the backend after "
          f"{done_s:.1f} s; collector peak RSS {peak[0] / 1024:.0f} MiB")
    assert sink_records(stack) - before == total
    assert 0 < peak[0] < 400 * 1024


def test_app_otlp_attributes_named_like_labels_are_renamed(stack):
    """The generic OTLP pipeline (apps, and the ingest's Vercel/Railway records) keeps the rule too: a
    record attribute named like an index label keeps its value as log_<name>; other attributes are as sent."""
    marker = otlp.ids()[0][:12]
    trace_id, span_id = otlp.ids()
    payload = otlp.log_payload("obs-demo", trace_id, span_id, f"app line {marker}")
    rec = payload["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    rec["attributes"] = [{"key": k, "value": {"stringValue": v}} for k, v in
                         {"level": "warn", "source": "db.py:12", "platform": "x", "service.name": "y",
                          "status_code": "500"}.items()]
    assert otlp.post(stack.url("otelcol", 4318), "logs", payload) == 200
    (r,) = arrived(stack, marker, 1)
    assert r["attributes"] == {"log_level": "warn", "log_source": "db.py:12", "log_platform": "x",
                               "log_service_name": "y", "status_code": "500"}
    assert r["resource"]["service.name"] == "obs-demo" and r["trace_id"] == trace_id
