"""The simulator as Vercel's and Supabase's drains (issue 16), on a fake clock with a recording transport:
Vercel batches are signed as Vercel signs and parse with the ingest's own parsers; Supabase's OTLP pushes are
gzip protobuf that opentelemetry-proto decodes into Logflare's shape; its Loki pushes are Logflare's JSON; the
per-start credentials are written in the formats the ingest reads."""
from __future__ import annotations

import gzip
import json
import os
import struct

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from prometheus_client import CollectorRegistry

from obs_bridges import config, vercel_drain
from obs_bridges import vercel_speed_insights as si
from obs_bridges.ingest_settings import supabase_tokens, vercel_secrets
from obs_bridges.simulator import drain_payloads as pl
from obs_bridges.simulator.drains import KINDS, PATHS, DrainSender, DrainTarget, drain_target
from obs_bridges.simulator.world import World
from tests.support.clock import FakeClock

URL = "http://127.0.0.1:1"
SOURCES = {s for s, _ in pl.SUPABASE_SOURCES}


def sender(tmp_path=None, statuses=(200,), batch=20, interval=10.0):
    clock = FakeClock()
    world = World(seed=5, vercel_projects=3, supabase_projects=2, history_hours=1, gh_rate=0, vc_rate=2,
                  rw_rate=0, clock=clock)
    posts = []
    answers = list(statuses)

    def post(url, body, headers):
        posts.append((url, body, headers))
        return answers[min(len(posts) - 1, len(answers) - 1)]
    target = DrainTarget(URL, str(tmp_path or "/nonexistent"), interval, batch)
    return DrainSender(world, target, post=post), world, clock, posts


def vercel_parsed(posts):
    return [r for _, body, h in posts for r in vercel_drain.parse_batch(h["Content-Type"], body)]


def test_vercel_log_batches_are_signed_and_read_by_the_ingest_parser():
    s, world, _, posts = sender()
    for _ in range(6):
        s.send("vercel-logs")
    assert {u for u, _, _ in posts} == {URL + "/vercel/logs"}
    assert {h["Content-Type"] for _, _, h in posts} == {"application/json", "application/x-ndjson"}
    for _, body, h in posts:
        assert vercel_drain.verify_signature(s.vercel_secret["vercel-logs"], body, h["x-vercel-signature"])
        assert not vercel_drain.verify_signature(s.vercel_secret["speed-insights"], body, h["x-vercel-signature"])
    records = vercel_parsed(posts)
    assert len(records) == 6 * 20
    names = {n for _, n in world.vercel.projects}
    assert {r.project for r in records} <= names and len({r.project for r in records}) > 1
    assert {r.source for r in records} <= set(vercel_drain.SOURCES) and "other" not in {r.source for r in records}
    assert {r.level for r in records} <= set(vercel_drain.LEVELS)
    assert {r.environment for r in records} <= {"production", "preview"}
    traced = [r for r in records if r.trace_id]
    assert traced and all(len(r.trace_id) == 32 and len(r.span_id) == 16 for r in traced)
    assert any(r.metadata.get("request_id") and r.metadata.get("path") for r in records)


def test_speed_insights_batches_are_signed_and_feed_the_web_vitals_histograms():
    s, world, _, posts = sender()
    s.send("speed-insights")
    ((url, body, h),) = posts
    assert url == URL + "/vercel/speed-insights"
    assert vercel_drain.verify_signature(s.vercel_secret["speed-insights"], body, h["x-vercel-signature"])
    records = json.loads(body)
    assert all(r["schema"] == "vercel.speed_insights.v1" and "projectName" not in r for r in records)
    reg = CollectorRegistry()
    receiver = si.SpeedInsights(reg, project_names=si.ProjectNames(dict(world.vercel.projects)))
    assert receiver.record(body, h["Content-Type"]) == len(records) == 20
    services = {smp.labels["service"] for f in reg.collect() if f.name.startswith("web_vitals_")
                and f.type == "histogram" for smp in f.samples}
    assert services <= {n for _, n in world.vercel.projects}


def decode(body: bytes) -> ExportLogsServiceRequest:
    return ExportLogsServiceRequest.FromString(gzip.decompress(body))


def test_supabase_otlp_pushes_are_gzip_protobuf_in_logflares_shape(tmp_path):
    s, world, clock, posts = sender(tmp_path)
    s.send("supabase-otlp")
    refs = {p["ref"]: p["name"] for p in world.supabase.projects}
    assert posts and {u for u, _, _ in posts} == {URL + "/supabase/v1/logs"}
    seen_projects = set()
    for _, body, h in posts:
        assert h["Content-Type"] == "application/x-protobuf" and h["Content-Encoding"] == "gzip"
        req = decode(body)
        (rl,) = req.resource_logs  # one source per request, as Logflare sends
        attrs = {kv.key: kv.value.string_value for kv in rl.resource.attributes}
        assert set(attrs) == {"service.name", "service.namespace"}
        assert attrs["service.name"] in SOURCES and attrs["service.namespace"] in refs
        assert rl.schema_url == pl.OTLP_SCHEMA_URL
        (sl,) = rl.scope_logs
        assert sl.scope.name == "Logflare" and sl.scope.version
        # the bearer token is the one written for this project
        assert h["Authorization"] == f"Bearer {s.supabase_tokens[refs[attrs['service.namespace']]]}"
        seen_projects.add(attrs["service.namespace"])
        for rec in sl.log_records:
            assert rec.event_name and rec.time_unix_nano % 1000 == 0
            assert abs(rec.time_unix_nano / 1e9 - clock()) < 5 and rec.observed_time_unix_nano >= rec.time_unix_nano
            body_keys = {kv.key for kv in rec.body.kvlist_value.values}
            assert {"id", "project", "metadata"} <= body_keys and "event_message" not in body_keys
            assert rec.severity_number in (0, 5, 9, 13, 17, 21)
    assert seen_projects == set(refs)
    sevs = {r.severity_number for _, b, _ in posts for r in decode(b).resource_logs[0].scope_logs[0].log_records}
    assert 9 in sevs


def test_the_protobuf_encoder_matches_opentelemetry_proto_value_for_value():
    for v in ["héllo", "", True, False, 0, 7, 300, -1, -(2**63), 2**63 - 1, 1.5, -0.25,
              {"a": {"b": [1, "x", {"c": False}]}}, [], {}]:
        got = AnyValue.FromString(pl.any_value(v))
        kind = got.WhichOneof("value")
        if isinstance(v, bool):
            assert (kind, got.bool_value) == ("bool_value", v)
        elif isinstance(v, int):
            assert got.int_value == v and kind in ("int_value", None)
        elif isinstance(v, float):
            assert got.double_value == v
        elif isinstance(v, dict):
            assert kind in ("kvlist_value", None) and [kv.key for kv in got.kvlist_value.values] == list(v)
        elif isinstance(v, list):
            assert kind in ("array_value", None) and len(got.array_value.values) == len(v)
        else:
            assert got.string_value == v
    ev = {"timestamp": 1_767_225_600_123_456, "event_message": "hi", "id": "x", "trace_id": "ab" * 16,
          "span_id": "cd" * 8, "metadata": {"level": "error"}}
    req = ExportLogsServiceRequest.FromString(pl.export_logs_request("gotrue.logs.prod", "ref", [ev], 5))
    rec = req.resource_logs[0].scope_logs[0].log_records[0]
    assert (rec.time_unix_nano, rec.observed_time_unix_nano, rec.event_name) == (1_767_225_600_123_456_000, 5, "hi")
    assert rec.trace_id == bytes.fromhex("ab" * 16) and rec.span_id == bytes.fromhex("cd" * 8)
    assert rec.severity_number == 17
    assert struct.pack("<Q", 5) in pl.export_logs_request("s", None, [ev], 5)


@pytest.mark.parametrize("ev,sev", [
    ({"metadata": {"parsed": {"error_severity": "FATAL"}, "level": "info"}}, 21),
    ({"metadata": {"parsed": {"error_severity": "LOG"}}}, 9),
    ({"metadata": {"parsed": {"error_severity": "DEBUG3"}}}, 5),
    ({"metadata": {"level": "warning"}}, 13),
    ({"metadata": {"response": {"status_code": 503}}}, 17),
    ({"metadata": {"response": {"status_code": 404}}}, 13),
    ({"metadata": {"response": {"status_code": 200}}}, 9),
    ({"metadata": {}}, 0),
])
def test_severity_is_derived_as_logflare_derives_it(ev, sev):
    assert pl.severity_of(ev) == sev


def test_supabase_loki_pushes_are_logflares_gzip_json():
    s, world, clock, posts = sender()
    s.send("supabase-loki")
    assert len(posts) == len(world.supabase.projects)
    for url, body, h in posts:
        assert url == URL + "/supabase/loki/api/v1/push"
        assert h["Content-Type"] == "application/json" and h["Content-Encoding"] == "gzip"
        assert h["Authorization"].startswith("Bearer ") and h["Authorization"][7:] in s.supabase_tokens.values()
        data = json.loads(gzip.decompress(body))
        assert set(data) == {"streams"} and data["streams"]
        for st in data["streams"]:
            assert set(st["stream"]) == {"source", "service"} and st["stream"]["source"] == "supabase"
            assert st["stream"]["service"] in SOURCES
            for ts, line, meta in st["values"]:
                assert isinstance(ts, str) and ts.isdigit() and abs(int(ts) / 1e9 - clock()) < 5
                assert isinstance(line, str) and line
                assert meta and all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
                assert "timestamp" not in meta and "event_message" not in meta and "id" in meta
                assert not any(isinstance(v, dict) for v in meta.values())


def test_the_credentials_are_written_in_the_ingests_formats(tmp_path):
    s, world, _, _ = sender(tmp_path)
    paths = s.write_secrets()
    for p in paths:
        assert os.stat(p).st_mode & 0o777 == 0o600
    env = {"VERCEL_DRAIN_SECRET_FILE": str(tmp_path / "vercel-drain-secret"),
           "SUPABASE_DRAIN_TOKENS_FILE": str(tmp_path / "supabase-drain-tokens")}
    assert vercel_secrets(config.SecretSource(env, "VERCEL_DRAIN_SECRET")) == list(s.vercel_secret.values())
    tokens = supabase_tokens(config.SecretSource(env, "SUPABASE_DRAIN_TOKENS"))
    assert dict((n, t.decode()) for n, t in tokens) == s.supabase_tokens
    assert set(s.supabase_tokens) == {p["name"] for p in world.supabase.projects}
    other, *_ = sender(tmp_path)
    assert other.vercel_secret != s.vercel_secret, "random at every start, not from the seed"


def test_forged_and_missing_credentials_are_sent_only_when_asked():
    s, _, _, posts = sender()
    s.special("vercel-logs", "forged")
    s.special("speed-insights", "none")
    s.special("supabase-otlp", "forged")
    s.special("supabase-loki", "none")
    (_, b1, h1), (_, _, h2), *sb = posts
    assert not vercel_drain.verify_signature(s.vercel_secret["vercel-logs"], b1, h1["x-vercel-signature"])
    assert "x-vercel-signature" not in h2
    for _, _, h in sb:
        auth = h.get("Authorization")
        assert auth is None or auth[7:] not in s.supabase_tokens.values()
    with pytest.raises(ValueError):
        s.special("vercel-logs", "maybe")
    with pytest.raises(ValueError):
        s.special("datadog", "valid")


def test_every_push_is_counted_by_the_answer_and_never_retried():
    s, _, _, posts = sender(statuses=(202, 401, 503, -1))
    for _ in range(4):
        s.send("vercel-logs")
    c = s.view()["counts"]["vercel-logs"]
    assert (c["sent"], c["accepted"], c["refused"], c["failed"], c["records"]) == (4, 1, 1, 2, 20)
    assert len(posts) == 4
    assert [r["status"] for r in s.view()["recent"]] == [202, 401, 503, -1]


def test_each_kind_is_pushed_once_per_interval():
    s, world, clock, posts = sender(interval=10.0)
    n = s.tick()
    assert n == len(posts) and {u[len(URL):] for u, _, _ in posts} == set(PATHS.values())
    assert s.tick() == 0
    clock.advance(9.9)
    assert s.tick() == 0
    clock.advance(0.2)
    before = len(posts)
    m = s.tick()
    assert m > 0 and m == len(posts) - before
    assert {k for k in KINDS if s.view()["counts"][k]["sent"] >= 2} == set(KINDS)


@pytest.mark.parametrize("args,problem", [
    (("ftp://x", "/d", 10, 20, "vercel-logs"), "http(s) URL"),
    (("http://x", "", 10, 20, "vercel-logs"), "--drains-secret-dir"),
    (("http://x", "/d", 0, 20, "vercel-logs"), "--drains-interval"),
    (("http://x", "/d", 10, 0, "vercel-logs"), "--drains-batch"),
    (("http://x", "/d", 10, 20, "vercel-logs,syslog"), "--drains"),
])
def test_bad_settings_name_the_flag(args, problem):
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        drain_target(*args)


def test_no_url_means_no_drains():
    assert drain_target("", "", 10, 20, "vercel-logs") is None
    t = drain_target("http://ingest:9610/", "/run/x", 5, 10, " supabase-otlp , vercel-logs ")
    assert (t.url, t.kinds) == ("http://ingest:9610", ("supabase-otlp", "vercel-logs"))
