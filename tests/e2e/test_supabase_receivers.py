"""The collector's receiving side of Supabase's OTLP log drain (issue 16, part 3) on the real binary with the
shipped otelcol/config.yaml: `otlp/supabase` (0.0.0.0:4319, internal; the ingest forwards there after checking
the drain's token and names the project in X-Obs-Project) turns what Supabase's Logflare OTLP adaptor sends
into records with the bounded resource attributes Loki indexes (docs/logging.md, "Logs in Loki").

The requests are shaped as Logflare's adaptor builds them (facts in docs/logging.md): http/protobuf, gzip,
one ResourceLogs per log source with service.name = the source's name and service.namespace = the project
ref, scope "Logflare", each record's event_name the message and its body the rest of the event as a map,
severity_number derived by Logflare (0 when it knows none)."""
from __future__ import annotations

import gzip
import random
import time
import urllib.error
import urllib.request

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList

from tests.conftest import running_stack
from tests.e2e import otlp, smoke
from tests.harness import otlp_sink
from tests.harness.stack import NativeStack

LABELS = {"service.name", "project", "platform", "source", "level", "deployment.environment",
          "deployment.environment.name"}
SOURCES = {"postgres", "auth", "rest", "storage", "realtime", "edge", "edge_functions", "pooler", "other"}
# OTLP severity numbers (Logflare's derivation) -> our level.
LEVEL_OF_SEVERITY = {0: "unknown", 5: "debug", 9: "info", 13: "warning", 17: "error", 21: "critical"}


@pytest.fixture(scope="module")
def stack():
    with running_stack(NativeStack(["loki", "otelcol"])) as s:
        yield s


def anyvalue(v) -> AnyValue:
    if isinstance(v, dict):
        return AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=anyvalue(x)) for k, x in v.items()]))
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    return AnyValue(string_value=str(v))


def logflare_request(batches: dict[str, list[dict]], project_ref: str | None = "abcdefghijklmnopqrst") -> bytes:
    """An ExportLogsServiceRequest as Logflare's OTLP adaptor encodes it: {source name: [event, ...]}, each
    event {event_message, timestamp (µs), severity (OTLP number or 0), trace_id?, ...rest of the event}."""
    req = ExportLogsServiceRequest()
    for source, events in batches.items():
        rl = req.resource_logs.add(schema_url="https://opentelemetry.io/schemas/1.26.0")
        rl.resource.attributes.add(key="service.name", value=AnyValue(string_value=source))
        if project_ref:
            rl.resource.attributes.add(key="service.namespace", value=AnyValue(string_value=project_ref))
        sl = rl.scope_logs.add()
        sl.scope.name, sl.scope.version = "Logflare", "1.22.0"
        for e in events:
            e = dict(e)
            rec = sl.log_records.add(time_unix_nano=e.pop("timestamp") * 1000, event_name=e.pop("event_message"),
                                     severity_number=e.pop("severity", 0))
            if "trace_id" in e:
                rec.trace_id = bytes.fromhex(e.pop("trace_id"))
            rec.body.CopyFrom(anyvalue(e))
    return req.SerializeToString()


def post(stack, body: bytes, project: str | None, gzipped: bool = True) -> int:
    headers = {"Content-Type": "application/x-protobuf"}
    if gzipped:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    if project is not None:
        headers["X-Obs-Project"] = project
    req = urllib.request.Request(stack.url("otelcol", 4319, "/v1/logs"), data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def arrived(stack, marker: str, n: int) -> dict[str, dict]:
    def got():
        recs = otlp_sink.query(stack.url("loki", 3100), "logs", body_contains=marker)
        return recs if len(recs) >= n else None
    return {r["body"]: r for r in smoke.poll(f"{n} Supabase records with {marker}", got, timeout=30, every=0.5)}


def postgres_event(marker: str, severity: int, error_severity: str, **extra) -> dict:
    return {"event_message": f"connection authorized {marker}", "timestamp": 1_780_000_000_123_456,
            "severity": severity, "id": "6f1c9a4e-55b1-4c55-9d7e-2a8e3c1d0f11", "identifier": "abcdefghijklmnopqrst",
            "project": "abcdefghijklmnopqrst",
            "metadata": {"host": "db-abcdefghijklmnopqrst", "parsed": {"error_severity": error_severity,
                                                                       "backend_type": "client backend",
                                                                       "sql_state_code": "00000"}}, **extra}


def test_logflare_otlp_batch_gets_bounded_labels(stack):
    marker = otlp.ids()[0][:12]
    trace_id = otlp.ids()[0]
    body = logflare_request({
        "postgres.logs": [postgres_event(marker, 9, "LOG", trace_id=trace_id),
                          {**postgres_event(marker, 17, "ERROR"), "event_message": f"relation does not exist {marker}"}],
        "gotrue.logs.prod": [{"event_message": f"login {marker}", "timestamp": 1_780_000_000_200_000, "severity": 13,
                              "id": "a", "metadata": {"level": "warning", "path": "/token", "status": 400}}],
        "cloudflare.logs.prod": [{"event_message": f"GET | 200 | /rest/v1/items {marker}",
                                  "timestamp": 1_780_000_000_300_000,
                                  "metadata": {"request": {"method": "GET", "path": "/rest/v1/items"},
                                               "response": {"status_code": 200}}}],
        "some_new_source_logs": [{"event_message": f"new {marker}", "timestamp": 1_780_000_000_400_000, "severity": 21}],
    })
    assert post(stack, body, "shop") == 200
    recs = arrived(stack, marker, 5)

    for r in recs.values():
        assert set(r["resource"]) == LABELS, r["resource"]
        assert r["resource"]["platform"] == "supabase" and r["resource"]["project"] == "shop"
        assert r["resource"]["deployment.environment"] == "production"
        assert r["resource"]["service.name"] == r["resource"]["source"]
        # Resource attributes Supabase sends (project ref, its own source name) are record attributes now.
        assert r["attributes"]["supabase.project_ref"] == "abcdefghijklmnopqrst"
        assert not {k.replace(".", "_") for k in r["attributes"]} & {k.replace(".", "_") for k in LABELS}, r

    ok = recs[f"connection authorized {marker}"]
    assert (ok["resource"]["source"], ok["resource"]["level"]) == ("postgres", "info")
    assert ok["trace_id"] == trace_id
    assert ok["time_unix_nano"] == 1_780_000_000_123_456_000
    a = ok["attributes"]
    # The event's fields, flattened; its own `project` (the ref) renamed away from the label.
    assert a["metadata.parsed.error_severity"] == "LOG" and a["metadata.host"] == "db-abcdefghijklmnopqrst"
    assert a["id"] == "6f1c9a4e-55b1-4c55-9d7e-2a8e3c1d0f11" and a["log_project"] == "abcdefghijklmnopqrst"
    assert a["supabase.source"] == "postgres.logs"

    assert recs[f"relation does not exist {marker}"]["resource"]["level"] == "error"
    auth = recs[f"login {marker}"]
    assert (auth["resource"]["source"], auth["resource"]["level"]) == ("auth", "warning")
    assert auth["attributes"]["metadata.level"] == "warning" and auth["attributes"]["metadata.status"] == 400
    edge = recs[f"GET | 200 | /rest/v1/items {marker}"]
    assert (edge["resource"]["source"], edge["resource"]["level"]) == ("edge", "unknown")
    assert edge["attributes"]["metadata.request.path"] == "/rest/v1/items"
    new = recs[f"new {marker}"]
    assert (new["resource"]["source"], new["resource"]["level"]) == ("other", "critical")
    assert new["attributes"]["supabase.source"] == "some_new_source_logs"


@pytest.mark.parametrize("name,source", [
    ("postgres_logs", "postgres"), ("auth_logs", "auth"), ("postgREST.logs.prod", "rest"), ("postgrest_logs", "rest"),
    ("storage.logs.prod.2", "storage"), ("realtime_logs", "realtime"), ("deno-relay-logs", "edge_functions"),
    ("function_logs", "edge_functions"), ("pgbouncer.logs.prod", "pooler"), ("supavisor_logs", "pooler"),
    ("edge_logs", "edge"), ("postgres.logs.evil", "other"),
])
def test_source_names_map_to_the_enum(stack, name, source):
    marker = otlp.ids()[0][:12]
    body = logflare_request({name: [{"event_message": marker, "timestamp": 1_780_000_000_000_000}]}, project_ref=None)
    assert post(stack, body, "shop", gzipped=False) == 200
    (r,) = arrived(stack, marker, 1).values()
    assert (r["resource"]["source"], r["resource"]["service.name"]) == (source, source)
    assert "supabase.project_ref" not in r["attributes"]


@pytest.mark.parametrize("header,project", [(None, "unknown"), ("my-app.prod_2", "my-app.prod_2"),
                                            ("a b/c", "unknown"), ("x" * 80, "unknown")])
def test_project_comes_from_the_ingest_header_only(stack, header, project):
    """The project label is the ingest's X-Obs-Project, and only a plain name: missing or odd -> unknown."""
    marker = otlp.ids()[0][:12]
    req = ExportLogsServiceRequest.FromString(logflare_request(
        {"postgres.logs": [{"event_message": marker, "timestamp": 1_780_000_000_000_000}]}))
    # A sender's own `project` resource attribute never becomes the label.
    req.resource_logs[0].resource.attributes.add(key="project", value=AnyValue(string_value="spoofed"))
    assert post(stack, req.SerializeToString(), header) == 200
    (r,) = arrived(stack, marker, 1).values()
    assert r["resource"]["project"] == project


def test_string_body_kept(stack):
    """Logflare's flatten_to_attributes mode: the body is the message string, fields are attributes already."""
    marker = otlp.ids()[0][:12]
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.add(key="service.name", value=AnyValue(string_value="realtime.logs.prod"))
    rec = rl.scope_logs.add().log_records.add(time_unix_nano=1_780_000_000_000_000_000, severity_number=5)
    rec.body.string_value = f"joined channel {marker}"
    rec.attributes.add(key="metadata.level", value=AnyValue(string_value="debug"))
    assert post(stack, req.SerializeToString(), "shop") == 200
    (r,) = arrived(stack, marker, 1).values()
    assert (r["resource"]["source"], r["resource"]["level"]) == ("realtime", "debug")
    assert r["attributes"]["metadata.level"] == "debug"


def test_not_on_the_generic_receiver(stack):
    """Port 4318 (apps' OTLP) does not apply Supabase's mapping, whatever the request says: only the
    internal 4319 does."""
    marker = otlp.ids()[0][:12]
    body = logflare_request({"postgres.logs": [{"event_message": "x", "timestamp": 1_780_000_000_000_000,
                                                "marker": marker}]})
    req = urllib.request.Request(stack.url("otelcol", 4318, "/v1/logs"), data=body,
                                 headers={"Content-Type": "application/x-protobuf", "X-Obs-Project": "shop"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    (r,) = smoke.poll("the record at the sink", lambda: otlp_sink.query(
        stack.url("loki", 3100), "logs", body_contains=marker), timeout=30, every=0.5)
    assert r["resource"]["service.name"] == "postgres.logs" and "platform" not in r["resource"]
    assert r["body"]["marker"] == marker


def test_simulator_drain_payloads(stack):
    """The simulator's Supabase OTLP drain bodies (obs_bridges.simulator.drain_payloads, Logflare's encoding
    written independently of the helpers above) for every source it sends: all arrive, labels in the enum."""
    from obs_bridges.simulator import drain_payloads as dp

    rng = random.Random(16)
    ref = otlp.ids()[0][:20]
    want = {}
    for source, _ in dp.SUPABASE_SOURCES:
        events = dp.supabase_events(rng, ref, source, time.time(), 20)
        assert post(stack, dp.export_logs_request(source, ref, events, time.time_ns()), "shop") == 200
        want.update({e["id"]: (source, e) for e in events})

    def got():
        recs = [r for r in otlp_sink.query(stack.url("loki", 3100), "logs")
                if r["attributes"].get("supabase.project_ref") == ref]
        return recs if len(recs) >= len(want) else None

    recs = smoke.poll(f"{len(want)} simulator events", got, timeout=30, every=0.5)
    assert sorted(r["attributes"]["id"] for r in recs) == sorted(want)
    for r in recs:
        source, ev = want[r["attributes"]["id"]]
        assert set(r["resource"]) == LABELS
        assert r["resource"]["source"] in SOURCES and r["resource"]["source"] != "other", source
        assert r["resource"]["level"] == LEVEL_OF_SEVERITY[dp.severity_of(ev)]
        assert r["body"] == ev["event_message"] and r["attributes"]["supabase.source"] == source


@pytest.mark.parametrize("attrs,level", [
    ({"metadata_parsed_error_severity": "FATAL"}, "critical"), ({"metadata.parsed.error_severity": "LOG"}, "info"),
    ({"metadata_level": "warn"}, "warning"), ({"metadata.level": "error"}, "error"), ({"metadata_level": "x"}, "unknown"),
])
def test_level_from_the_event_when_no_severity(stack, attrs, level):
    """A record without a severity (a Loki-format event turned into OTLP: string body, Logflare's "_"-flattened
    fields as attributes) gets its level from the event's Postgres error severity or level."""
    marker = otlp.ids()[0][:12]
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.add(key="service.name", value=AnyValue(string_value="postgres.logs"))
    rec = rl.scope_logs.add().log_records.add(time_unix_nano=1_780_000_000_000_000_000)
    rec.body.string_value = f"event {marker}"
    for k, v in attrs.items():
        rec.attributes.add(key=k, value=AnyValue(string_value=v))
    assert post(stack, req.SerializeToString(), "shop") == 200
    (r,) = arrived(stack, marker, 1).values()
    assert r["resource"]["level"] == level
