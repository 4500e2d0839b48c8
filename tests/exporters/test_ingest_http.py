"""obs-bridge ingest over real HTTP on 127.0.0.1 (issue 16): signed Vercel drains become OTLP log records at
the collector (a capturing server stands in), chunked bodies are read, slow and oversized ones refused,
Supabase and GitHub pushes are forwarded to their receivers with the credential stripped, and nothing
secret reaches the log."""
from __future__ import annotations

import http.client
import json
import socket
import time

import pytest

from obs_bridges.vercel_drain import signature
from tests.support.capture import CaptureServer
from tests.support.ports import free_port

SECRET = "vercel-drain-secret-http-test"
TOKEN = "supabase-drain-token-http-test"
RECORDS = [{"id": f"l{i}", "timestamp": 1767225600000 + i, "projectName": "shop", "environment": "production",
            "source": "lambda", "level": "error" if i % 2 else "info", "message": f"line {i}",
            "requestId": f"req_{i}", "path": f"/api/items/{i}", "statusCode": 500 if i % 2 else 200,
            "traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "00f067aa0ba902b7"} for i in range(6)]


@pytest.fixture
def ingest(procs):
    def start(collector: CaptureServer, upstream: CaptureServer, **env):
        (procs.tmp / "vsecret").write_text(SECRET + "\n")
        (procs.tmp / "tokens").write_text(f"shop {TOKEN}\n")
        port = free_port()
        exp = procs.exporter("ingest", {
            "INGEST_PORT": port, "INGEST_OTLP_ENDPOINT": collector.url,
            "INGEST_SUPABASE_OTLP_URL": upstream.url + "/v1/logs",
            "INGEST_GITHUB_WEBHOOK_URL": upstream.url + "/webhook",
            "VERCEL_DRAIN_SECRET_FILE": procs.tmp / "vsecret", "SUPABASE_DRAIN_TOKENS_FILE": procs.tmp / "tokens",
            **env})
        exp.public = port
        return exp
    return start


def request(port, method, path, body=b"", headers=None, chunked=False):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        try:
            if chunked:
                conn.putrequest(method, path)
                for k, v in (headers or {}).items():
                    conn.putheader(k, v)
                conn.putheader("Transfer-Encoding", "chunked")
                conn.endheaders()
                for i in range(0, len(body), 64 * 1024):
                    part = body[i:i + 64 * 1024]
                    conn.send(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                conn.send(b"0\r\n\r\n")
            else:
                conn.request(method, path, body=body, headers=headers or {})
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the whole body was sent (413): the answer is already there to read
        r = conn.getresponse()
        return r.status, r.read(), dict(r.getheaders())
    finally:
        conn.close()


def signed(body: bytes, **h) -> dict:
    return {"x-vercel-signature": signature(SECRET.encode(), body), **h}


def test_vercel_drain_reaches_the_collector_as_labelled_otlp(ingest):
    with CaptureServer() as collector, CaptureServer() as upstream:
        exp = ingest(collector, upstream)
        ndjson = "\n".join(json.dumps(r) for r in RECORDS).encode()
        st, body, _ = request(exp.public, "POST", "/vercel/logs", ndjson,
                              signed(ndjson, **{"Content-Type": "application/x-ndjson"}), chunked=True)
        assert st == 200, body
        (sent,) = collector.taken()
        assert sent.path == "/v1/logs" and sent.headers["content-type"] == "application/json"
        streams = json.loads(sent.body)["resourceLogs"]
        labels = [{a["key"]: a["value"]["stringValue"] for a in s["resource"]["attributes"]} for s in streams]
        assert sorted(x["level"] for x in labels) == ["error", "info"]
        assert all(set(x) == {"service.name", "deployment.environment", "platform", "project", "source", "level"}
                   and x["platform"] == "vercel" and x["project"] == "shop" for x in labels)
        recs = [r for s in streams for r in s["scopeLogs"][0]["logRecords"]]
        assert sorted(r["body"]["stringValue"] for r in recs) == [f"line {i}" for i in range(6)]
        assert all(r["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736" for r in recs)
        assert exp.value("ingest_log_records_total", platform="vercel") == 6
        # Refusals: forged, unsigned, over the size bound, a body that never comes.
        assert request(exp.public, "POST", "/vercel/logs", ndjson, {"x-vercel-signature": "0" * 40})[0] == 401
        assert request(exp.public, "POST", "/vercel/logs", b"x" * (4 * 1024 * 1024 + 1), signed(b""))[0] == 413
        assert request(exp.public, "POST", "/vercel/logs", b"a" * 5_000_000, signed(b""), chunked=True)[0] == 413
        assert len(collector.taken()) == 1
        assert exp.value("ingest_requests_total", route="vercel_logs", result="too_large") == 2
        collector.status = 503
        st, _, headers = request(exp.public, "POST", "/vercel/logs", ndjson, signed(ndjson))
        assert st == 503 and headers.get("Retry-After")
    logs = exp.logs()
    assert SECRET not in logs and all(json.loads(x)["component"] == "ingest" for x in logs.splitlines() if x)


def test_a_body_that_never_arrives_is_408_within_the_deadline(ingest):
    with CaptureServer() as collector, CaptureServer() as upstream:
        exp = ingest(collector, upstream)
        s = socket.create_connection(("127.0.0.1", exp.public), timeout=20)
        try:
            s.sendall(b"POST /vercel/logs HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
            t0 = time.monotonic()
            reply = s.recv(4096)
            waited = time.monotonic() - t0
        finally:
            s.close()
        assert reply.startswith(b"HTTP/1.1 408") and 8 < waited < 15, (reply[:40], waited)
        assert not collector.taken()


def test_supabase_and_github_are_forwarded_without_the_credential(ingest):
    with CaptureServer() as collector, CaptureServer(reply=b'{"result":"pong"}') as upstream:
        exp = ingest(collector, upstream)
        st, _, _ = request(exp.public, "POST", "/supabase/v1/logs", b"\x0a\x02\x0a\x00",
                           {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-protobuf"})
        assert st == 200
        st, body, _ = request(exp.public, "POST", "/github/webhook", b"{}",
                              {"X-GitHub-Event": "ping", "X-Hub-Signature-256": "sha256=00", "Authorization": "x"})
        assert st == 200 and json.loads(body) == {"result": "pong"}
        assert request(exp.public, "POST", "/supabase/loki/api/v1/push", b"{}",
                       {"Authorization": "Bearer nope-nope-nope-nope"})[0] == 401
        otlp, hook = upstream.taken()
        assert otlp.path == "/v1/logs" and otlp.body == b"\x0a\x02\x0a\x00" and otlp.headers["x-obs-project"] == "shop"
        assert hook.path == "/webhook" and hook.headers["x-hub-signature-256"] == "sha256=00"
        assert "authorization" not in otlp.headers and "authorization" not in hook.headers
        assert TOKEN not in exp.logs()
