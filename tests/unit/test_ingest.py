"""The public ingest's request handling (issue 16), without sockets: Ingest.handle with a recording OTLP
sender, a fake upstream session and fake clocks. Credentials before anything is parsed or forwarded, size
and rate bounds before a body is read, the in-flight budget, the label mapping of Vercel records, and the
Supabase token -> project mapping forwarded as X-Obs-Project."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from obs_bridges import ingest as ig
from obs_bridges.ingest_settings import load_settings, match_token, supabase_tokens, vercel_secrets
from obs_bridges import config
from obs_bridges.otlp_logs import OtlpSendError, encode_logs, normalise_level, LogRecord, Resource
from obs_bridges.vercel_drain import signature
from tests.support.clock import FakeClock

VSECRET = "vercel-drain-secret-unit"
TOKEN = "supabase-token-unit-0123456789"


class Sender:
    def __init__(self):
        self.groups = []
        self.fail = False

    def send(self, groups):
        if self.fail:
            raise OtlpSendError("collector down")
        self.groups.append(groups)
        return sum(len(v) for v in groups.values())


class Resp:
    def __init__(self, code, body=b"{}"):
        self.status_code, self.headers = code, {"Content-Type": "application/json"}
        import io

        self.raw = type("R", (), {"read": lambda _s, n, decode_content=True: body[:n]})()
        self._io = io.BytesIO(body)

    def close(self):
        pass


class Session:
    def __init__(self, code=200):
        self.code, self.calls = code, []

    def post(self, url, data, headers, timeout, stream):
        self.calls.append((url, data, dict(headers)))
        if self.code is None:
            import requests

            raise requests.ConnectionError("refused")
        return Resp(self.code, b'{"result":"counted"}')


def make(tmp_path: Path, env=None, *, rps="50", budget=None):
    (tmp_path / "v").write_text(f"# drains\n{VSECRET}\nsecond-secret-for-rotation\n")
    (tmp_path / "s").write_text(f"shop {TOKEN}\nblog other-token-0123456789abc\n")
    e = {"VERCEL_DRAIN_SECRET_FILE": str(tmp_path / "v"), "SUPABASE_DRAIN_TOKENS_FILE": str(tmp_path / "s"),
         "INGEST_GITHUB_WEBHOOK_URL": "http://github-exporter:9605/webhook",
         "INGEST_MAX_REQUESTS_PER_SECOND": rps, **(env or {})}
    if budget:
        e["INGEST_MAX_INFLIGHT_BYTES"] = str(budget)
    sender, session, mono = Sender(), Session(), FakeClock(0)
    ingest = ig.Ingest(load_settings(e), registry=CollectorRegistry(), sender=sender, session=session,
                       clock=FakeClock(), monotonic=mono)
    return ingest, sender, session, mono


def body_reader(body: bytes):
    calls = []

    def read(limit):
        calls.append(limit)
        if len(body) > limit:
            raise ig.BodyError(413, "too large")
        return body
    read.calls = calls
    return read


def count(ingest, route, result):
    return ingest.registry.get_sample_value("ingest_requests_total", {"route": route, "result": result})


VERCEL = [{"id": "1", "timestamp": 1767225600123, "projectName": "shop", "environment": "production",
           "source": "lambda", "level": "error", "message": "boom", "requestId": "req_1", "path": "/api/x",
           "statusCode": 500, "traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "00f067aa0ba902b7"},
          {"id": "2", "timestamp": 1767225600200, "projectName": "shop", "environment": "preview",
           "source": "build", "level": "info", "message": "built"}]


def post(ingest, path, body: bytes, headers=None):
    h = {"Content-Length": str(len(body)), **(headers or {})}
    return ingest.handle("POST", path, h, body_reader(body))


def test_vercel_logs_become_bounded_streams_with_trace_ids(tmp_path):
    ingest, sender, _, _ = make(tmp_path)
    body = json.dumps(VERCEL).encode()
    r = post(ingest, "/vercel/logs", body, {"x-vercel-signature": signature(VSECRET.encode(), body),
                                            "Content-Type": "application/json"})
    assert r.code == 200 and r.body["records"] == 2
    (groups,) = sender.groups
    streams = {(g.service_name, g.environment, g.source, g.level): recs for g, recs in groups.items()}
    assert set(streams) == {("shop", "production", "lambda", "error"), ("shop", "preview", "build", "info")}
    rec = streams[("shop", "production", "lambda", "error")][0]
    assert rec.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736" and rec.attributes["request_id"] == "req_1"
    assert rec.time_ns == 1767225600123 * 1_000_000
    assert count(ingest, "vercel_logs", "accepted") == 1
    assert ingest.registry.get_sample_value("ingest_log_records_total", {"platform": "vercel"}) == 2


def test_any_configured_vercel_secret_verifies_and_a_wrong_one_is_401_before_parsing(tmp_path):
    ingest, sender, _, _ = make(tmp_path)
    body = json.dumps(VERCEL).encode()
    assert post(ingest, "/vercel/logs", body,
                {"x-vercel-signature": signature(b"second-secret-for-rotation", body)}).code == 200
    junk = b"not json at all"
    r = post(ingest, "/vercel/logs", junk, {"x-vercel-signature": signature(b"wrong", junk)})
    assert r.code == 401 and count(ingest, "vercel_logs", "bad_signature") == 1
    assert post(ingest, "/vercel/logs", junk).code == 401
    assert len(sender.groups) == 1


def test_signed_but_malformed_is_400_and_collector_down_is_503(tmp_path):
    ingest, sender, _, _ = make(tmp_path)
    junk = b"{not json"
    r = post(ingest, "/vercel/logs", junk, {"x-vercel-signature": signature(VSECRET.encode(), junk)})
    assert r.code == 400 and count(ingest, "vercel_logs", "malformed") == 1
    sender.fail = True
    body = json.dumps(VERCEL).encode()
    r = post(ingest, "/vercel/logs", body, {"x-vercel-signature": signature(VSECRET.encode(), body)})
    assert r.code == 503 and r.headers["Retry-After"] and count(ingest, "vercel_logs", "upstream_error") == 1


def test_supabase_token_names_the_project_and_never_travels_on(tmp_path):
    ingest, _, session, _ = make(tmp_path)
    r = post(ingest, "/supabase/v1/logs", b"\x0a\x00", {"Authorization": f"Bearer {TOKEN}",
                                                       "Content-Type": "application/x-protobuf",
                                                       "Content-Encoding": "gzip"})
    assert r.code == 200
    url, data, headers = session.calls[0]
    assert url == "http://otelcol:4319/v1/logs" and data == b"\x0a\x00"
    assert headers["X-Obs-Project"] == "shop" and headers["content-encoding"] == "gzip"
    assert not any(k.lower() == "authorization" for k in headers)
    push = gzip.compress(json.dumps({"streams": [{"stream": {"source": "supabase", "service": "postgres.logs"},
                                                  "values": [["1767225600000000000", "connection received",
                                                              {"metadata_parsed_error_severity": "LOG"}]]}]}).encode())
    r = post(ingest, "/supabase/loki/api/v1/push", push, {"Authorization": "Bearer other-token-0123456789abc",
                                                          "Content-Encoding": "gzip"})
    assert r.code == 200, r.body
    url, data, headers = session.calls[1]
    assert url == "http://otelcol:4319/v1/logs" and headers["X-Obs-Project"] == "blog"
    assert headers["Content-Type"] == "application/json" and "content-encoding" not in headers
    (rl,) = json.loads(data)["resourceLogs"]
    assert rl["resource"]["attributes"] == [{"key": "service.name", "value": {"stringValue": "postgres.logs"}}]
    (rec,) = rl["scopeLogs"][0]["logRecords"]
    assert rec["timeUnixNano"] == "1767225600000000000" and rec["body"] == {"stringValue": "connection received"}
    r = post(ingest, "/supabase/loki/api/v1/push", b"{}", {"Authorization": "Bearer other-token-0123456789abc"})
    assert r.code == 400 and count(ingest, "supabase_loki", "malformed") == 1
    for auth in (None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", "Bearer"):
        h = {"Authorization": auth} if auth else {}
        assert post(ingest, "/supabase/v1/logs", b"x", h).code == 401
    assert len(session.calls) == 2 and count(ingest, "supabase_otlp", "unauthorized") == 4


def test_github_is_passed_through_with_its_signature_headers(tmp_path):
    ingest, _, session, _ = make(tmp_path)
    r = post(ingest, "/github/webhook", b"{}", {"X-GitHub-Event": "ping", "X-Hub-Signature-256": "sha256=ab",
                                                "X-GitHub-Delivery": "d1", "Authorization": "token leak"})
    assert r.code == 200 and r.bytes() == b'{"result":"counted"}'
    _, _, headers = session.calls[0]
    assert headers["x-hub-signature-256"] == "sha256=ab" and "Authorization" not in headers
    session.code = 401
    assert post(ingest, "/github/webhook", b"{}").code == 401
    assert count(ingest, "github_webhook", "bad_signature") == 1
    session.code = None
    assert post(ingest, "/github/webhook", b"{}").code == 503


def test_bounds_come_before_the_body_is_read(tmp_path):
    ingest, _, _, mono = make(tmp_path, rps="1")
    big = {"Content-Length": str(5 * 1024 * 1024)}
    read = body_reader(b"")
    assert ingest.handle("POST", "/vercel/logs", big, read).code == 413 and read.calls == []
    assert ingest.handle("GET", "/nope", {}, read).code == 404
    assert ingest.handle("PUT", "/vercel/logs", {}, read).code == 405
    for _ in range(10):  # burst of 10 s at 1/s
        post(ingest, "/supabase/v1/logs", b"x")
    r = post(ingest, "/supabase/v1/logs", b"x")
    assert r.code == 429 and r.headers["Retry-After"] == "1"
    mono.advance(1.0)
    assert post(ingest, "/supabase/v1/logs", b"x").code == 401  # a token again: on to the credential check


def test_the_inflight_budget_refuses_instead_of_growing(tmp_path):
    ingest, _, _, _ = make(tmp_path, budget=1024 * 1024)
    held = []

    def slow_read(limit):  # while this body is held, a second one does not fit
        held.append(post(ingest, "/supabase/v1/logs", b"x" * 10, {"Content-Length": str(900 * 1024)}))
        return b"x"
    r = ingest.handle("POST", "/supabase/v1/logs", {"Content-Length": str(600 * 1024)}, slow_read)
    assert held[0].code == 503 and held[0].headers["Retry-After"]
    assert r.code == 401 and ingest.budget.used == 0
    assert count(ingest, "supabase_otlp", "busy") == 1


def test_unconfigured_and_unreadable_secrets_refuse(tmp_path):
    ingest, _, _, _ = make(tmp_path, {"VERCEL_DRAIN_SECRET_FILE": str(tmp_path / "missing")})
    body = b"[]"
    r = post(ingest, "/vercel/logs", body, {"x-vercel-signature": signature(VSECRET.encode(), body)})
    assert r.code == 503 and VSECRET not in json.dumps(r.body)
    bare = ig.Ingest(load_settings({}), registry=CollectorRegistry(), sender=Sender(), session=Session())
    assert post(bare, "/vercel/logs", body).code == 404
    assert post(bare, "/github/webhook", body).code == 404


def test_vercel_verification_header(tmp_path):
    (tmp_path / "t").write_text("verify-me\n")
    ingest, _, _, _ = make(tmp_path, {"VERCEL_DRAIN_VERIFY_TOKEN_FILE": str(tmp_path / "t")})
    r = ingest.handle("GET", "/vercel/logs", {}, body_reader(b""))
    assert r.code == 200 and r.headers["x-vercel-verify"] == "verify-me"


def test_token_file_errors_name_the_line_not_the_token(tmp_path):
    p = tmp_path / "s"
    p.write_text("shop short\n")
    with pytest.raises(Exception) as e:
        supabase_tokens(config.SecretSource({"T_FILE": str(p)}, "T"))
    assert "line 1" in str(e.value) and "short" not in str(e.value)
    p.write_text("# only a comment\n")
    with pytest.raises(Exception, match="no secret"):
        vercel_secrets(config.SecretSource({"T_FILE": str(p)}, "T"))
    assert match_token([("a", b"x" * 16), ("b", b"y" * 16)], b"y" * 16) == "b"
    assert match_token([("a", b"x" * 16)], b"") is None


def test_settings_refuse_one_port_for_both():
    with pytest.raises(config.ConfigError, match="INGEST_PORT"):
        load_settings({"INGEST_PORT": "9606", "LISTEN_PORT": "9606"})


def test_otlp_json_encoding_and_levels():
    res = Resource("shop", "production", "vercel", "shop", "lambda", "error")
    body = json.loads(encode_logs({res: [LogRecord(5, "m", {"level": "x", "path": "/a", "n": 3, "ok": True},
                                                   "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")]}))
    (rl,) = body["resourceLogs"]
    attrs = {a["key"]: a["value"] for a in rl["resource"]["attributes"]}
    assert attrs["service.name"] == {"stringValue": "shop"} and attrs["level"] == {"stringValue": "error"}
    rec = rl["scopeLogs"][0]["logRecords"][0]
    keys = {a["key"]: a["value"] for a in rec["attributes"]}
    assert keys == {"log_level": {"stringValue": "x"}, "path": {"stringValue": "/a"}, "n": {"intValue": "3"},
                    "ok": {"boolValue": True}}
    assert rec["severityNumber"] == 17 and rec["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert [normalise_level(x) for x in ("WARN", "fatal", "err", "Info", None, "chatty")] == \
        ["warning", "critical", "error", "info", "unknown", "unknown"]
    with pytest.raises(ValueError):
        Resource("a", "b", "heroku", "p", "s", "info")


def test_speed_insights_learn_project_names_from_the_log_drain(tmp_path):
    from obs_bridges.vercel_speed_insights import SpeedInsights

    registry = CollectorRegistry()
    (tmp_path / "v").write_text(VSECRET)
    ingest = ig.Ingest(load_settings({"VERCEL_DRAIN_SECRET_FILE": str(tmp_path / "v")}), registry=registry,
                       sender=Sender(), session=Session(), speed_insights=SpeedInsights(registry))
    sample = [{"schema": "vercel.speed_insights.v1", "timestamp": "2026-01-01T00:00:00.000Z", "projectId": "prj_1",
               "metricType": "LCP", "value": 1800, "route": "/blog/[slug]", "path": "/blog/x",
               "deviceType": "mobile", "vercelEnvironment": "production"}]

    def vitals():
        body = json.dumps(sample).encode()
        r = post(ingest, "/vercel/speed-insights", body, {"x-vercel-signature": signature(VSECRET.encode(), body)})
        assert r.code == 200, r.body

    vitals()
    logs = json.dumps([{**VERCEL[0], "projectId": "prj_1"}]).encode()
    assert post(ingest, "/vercel/logs", logs, {"x-vercel-signature": signature(VSECRET.encode(), logs)}).code == 200
    vitals()
    get = registry.get_sample_value
    labels = {"page": "/blog/[slug]", "device_type": "mobile", "environment": "production"}
    assert get("web_vitals_lcp_seconds_count", {**labels, "service": "unknown"}) == 1
    assert get("web_vitals_lcp_seconds_count", {**labels, "service": "shop"}) == 1
    assert get("web_vitals_lcp_seconds_sum", {**labels, "service": "shop"}) == 1.8
    bad = b"[1, 2]"
    r = post(ingest, "/vercel/speed-insights", bad, {"x-vercel-signature": signature(VSECRET.encode(), bad)})
    assert r.code == 400 and count(ingest, "vercel_speed_insights", "malformed") == 1


@pytest.mark.parametrize("body,encoding,why", [
    (b"\x0a\x00", None, "not JSON"),
    (b'{"streams": {}}', None, "expected"),
    (b'{"streams": [{"values": [[1, "x"]]}]}', None, "value 0"),
    (b'{"streams": [{"values": [["12", "x", []]]}]}', None, "structured metadata"),
    (gzip.compress(b" " * (33 * 1024 * 1024)), "gzip", "expands past"),
    (b"not gzip", "gzip", "not valid gzip"),
    (b"{}", "br", "not supported"),
])
def test_supabase_loki_pushes_that_are_refused(body, encoding, why):
    from obs_bridges.supabase_loki import to_otlp
    from obs_bridges.parsing import ParseError

    with pytest.raises(ParseError, match=why):
        to_otlp(body, encoding)


def test_demo_secrets_stand_in_per_read_until_a_real_one_is_written(tmp_path):
    demo = tmp_path / "demo"
    demo.write_text("demo-secret-0123456789\n")
    real = tmp_path / "real"
    env = {"OBS_DEMO_SIMULATOR_URL": "http://simulator:8600", "VERCEL_DRAIN_SECRET_FILE": str(real),
           "OBS_DEMO_VERCEL_DRAIN_SECRET_FILE": str(demo)}
    ingest = ig.Ingest(load_settings(env), registry=CollectorRegistry(), sender=Sender(), session=Session())
    body = json.dumps(VERCEL).encode()

    def status(secret: bytes) -> int:
        return post(ingest, "/vercel/logs", body, {"x-vercel-signature": signature(secret, body)}).code

    assert status(b"demo-secret-0123456789") == 200
    real.write_text(VSECRET)
    assert status(b"demo-secret-0123456789") == 401 and status(VSECRET.encode()) == 200
    real.write_text("")
    assert status(b"demo-secret-0123456789") == 200
    # Outside demo mode the simulator's file is never read.
    live = ig.Ingest(load_settings({k: v for k, v in env.items() if k != "OBS_DEMO_SIMULATOR_URL"}),
                     registry=CollectorRegistry(), sender=Sender(), session=Session())
    assert post(live, "/vercel/logs", body, {"x-vercel-signature": signature(b"demo-secret-0123456789", body)}).code == 503
