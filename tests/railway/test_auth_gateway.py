"""scripts/railway/auth_gateway.py, the optional authenticating reverse proxy that exposes a private
Prometheus or Alertmanager on Railway: run as a subprocess on 127.0.0.1 in front of the real Prometheus
and Alertmanager binaries of the pinned versions (and a small echo upstream where the test must see what
the upstream received). Every wait is a poll with a deadline; every request has a timeout."""
from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from scripts.attack._common import stop_process
from tests.conftest import require_tool
from tests.e2e.smoke import poll
from tests.railway.railwaylib import ROOT
from tests.support.ports import free_port

GATEWAY = ROOT / "scripts" / "railway" / "auth_gateway.py"
USER = "ops"
PASSWORD = "correct-horse-battery-staple-7"
WRONG = "wrong-password-never-logged-42"
HTTP_TIMEOUT = 15


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


GOOD = {"Authorization": basic(USER, PASSWORD)}


def request(port: int, method: str, path: str, headers: dict | None = None, body: bytes | None = None,
            timeout: float = HTTP_TIMEOUT, encode_chunked: bool = False):
    """(status, headers, body) of one request to 127.0.0.1:port; no redirects followed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {}, encode_chunked=encode_chunked)
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------- gateway

class Gateway:
    def __init__(self, proc: subprocess.Popen, log: Path, port: int):
        self.proc, self.log_path, self.port = proc, log, port

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log().splitlines() if line.strip()]

    def stop(self) -> None:
        stop_process(self.proc)


def gateway_env(upstream: str, **extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp", "PYTHONUNBUFFERED": "1",
           "GATEWAY_UPSTREAM": upstream, "GATEWAY_USER": USER, "GATEWAY_PASSWORD": PASSWORD,
           "GATEWAY_LISTEN_HOST": "127.0.0.1", "PORT": "0",
           # shared gateways see many deliberate failures from 127.0.0.1; the limiter has its own tests
           "GATEWAY_AUTH_FAILURE_BURST": "1000", "GATEWAY_AUTH_GLOBAL_FAILURE_BURST": "1000",
           "GATEWAY_UPSTREAM_TIMEOUT": "20", "GATEWAY_CONNECT_TIMEOUT": "3"}
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


@contextlib.contextmanager
def run_gateway(tmp: Path, env: dict[str, str]):
    tmp.mkdir(parents=True, exist_ok=True)
    log = tmp / f"gateway-{uuid.uuid4().hex[:8]}.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, str(GATEWAY)], env=env, stdout=f, stderr=f,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    gw = Gateway(proc, log, 0)
    try:
        def listening():
            if proc.poll() is not None:
                pytest.fail(f"the gateway exited ({proc.returncode}):\n{gw.log()}")
            for line in gw.log().splitlines():
                rec = json.loads(line)
                if rec.get("msg") == "auth gateway listening":
                    return rec["port"]
            return None
        gw.port = poll("the gateway logs that it listens", listening, 20, 0.1)
        poll("the gateway answers /healthz", lambda: request(gw.port, "GET", "/healthz", timeout=2)[0] == 200, 20, 0.1)
        yield gw
    finally:
        gw.stop()


def start_refused(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GATEWAY)], env=env, capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


# ---------------------------------------------------------------------------------------------- upstreams

@contextlib.contextmanager
def real_process(argv: list[str], log: Path, ready_url: str, what: str, deadline_s: float = 60):
    with open(log, "wb") as f:
        proc = subprocess.Popen(argv, stdout=f, stderr=f, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        def ready():
            if proc.poll() is not None:
                pytest.fail(f"{what} exited ({proc.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
            u = urllib.parse.urlsplit(ready_url)
            return request(u.port, "GET", u.path, timeout=2)[0] == 200
        poll(f"{what} is ready", ready, deadline_s, 0.2)
        yield proc
    finally:
        stop_process(proc, grace=15)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    binary = require_tool("prometheus", "prometheus")
    d = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    (d / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n")
    argv = [str(binary), f"--config.file={d / 'prometheus.yml'}", f"--storage.tsdb.path={d / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}"]
    with real_process(argv, d / "log", f"http://127.0.0.1:{port}/-/ready", "prometheus"):
        def scraped():  # `up` has a sample: the query through the gateway has a real series to return
            s, _, b = request(port, "GET", "/api/v1/query?query=up", timeout=3)
            return s == 200 and json.loads(b)["data"]["result"]
        poll("prometheus has scraped itself", scraped, 30, 0.3)
        yield port


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory):
    binary = require_tool("alertmanager", "alertmanager")
    d = tmp_path_factory.mktemp("alertmanager")
    port = free_port()
    (d / "alertmanager.yml").write_text("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
    argv = [str(binary), f"--config.file={d / 'alertmanager.yml'}", f"--storage.path={d / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="]
    with real_process(argv, d / "log", f"http://127.0.0.1:{port}/-/ready", "alertmanager"):
        yield port


class Echo:
    """A 127.0.0.1 upstream that records every request and answers with what it received."""

    def __init__(self):
        self.requests: list[dict] = []
        self.release = threading.Event()
        echo = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                echo.requests.append({"method": self.command, "path": self.path, "headers": list(self.headers.items()),
                                      "body": body})
                if self.path.startswith("/slow"):
                    echo.release.wait(30)
                if self.path.startswith("/chunked"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(50):
                        part = f"part {i}\n".encode() * 100
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                if self.path.startswith("/redirect"):
                    self.send_response(302)
                    self.send_header("Location", f"http://127.0.0.1:{echo.port}/elsewhere?x=1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                out = json.dumps({"method": self.command, "path": self.path, "sha256": hashlib.sha256(body).hexdigest(),
                                  "length": len(body)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.send_header("X-Upstream", "echo")
                self.send_header("Connection", "X-Upstream-Hop")
                self.send_header("X-Upstream-Hop", "must-not-pass")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _any

        class S(ThreadingHTTPServer):
            daemon_threads = True

        self.server = S(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def echo():
    e = Echo()
    yield e
    e.stop()


@pytest.fixture(scope="module")
def gw_prometheus(prometheus, tmp_path_factory):
    with run_gateway(tmp_path_factory.mktemp("gw-prom"), gateway_env(f"http://127.0.0.1:{prometheus}")) as gw:
        yield gw


@pytest.fixture(scope="module")
def gw_alertmanager(alertmanager, tmp_path_factory):
    with run_gateway(tmp_path_factory.mktemp("gw-am"), gateway_env(f"http://127.0.0.1:{alertmanager}")) as gw:
        yield gw


# ---------------------------------------------------------------------------------------------- start-up

@pytest.mark.parametrize("case, extra, message", [
    ("no password", {"GATEWAY_PASSWORD": None}, "GATEWAY_PASSWORD is not set"),
    ("empty password", {"GATEWAY_PASSWORD": ""}, "GATEWAY_PASSWORD is not set"),
    ("11 characters", {"GATEWAY_PASSWORD": "elevenchars"}, "GATEWAY_PASSWORD is too short (fewer than 12 characters)"),
    ("short file", {"GATEWAY_PASSWORD": None, "GATEWAY_PASSWORD_FILE": "{short}"},
     "GATEWAY_PASSWORD_FILE is too short (fewer than 12 characters)"),
    ("missing file", {"GATEWAY_PASSWORD": None, "GATEWAY_PASSWORD_FILE": "{missing}"},
     "GATEWAY_PASSWORD_FILE cannot be read"),
    ("both", {"GATEWAY_PASSWORD_FILE": "{good}"}, "both GATEWAY_PASSWORD and GATEWAY_PASSWORD_FILE are set"),
    ("no upstream", {"GATEWAY_UPSTREAM": None}, "GATEWAY_UPSTREAM is not set"),
    ("bad upstream", {"GATEWAY_UPSTREAM": "prometheus.railway.internal:9090"}, "GATEWAY_UPSTREAM="),
], ids=lambda v: v if isinstance(v, str) and " " in v else None)
def test_refuses_to_start_without_a_safe_password(case, extra, message, tmp_path):
    (tmp_path / "short").write_text("elevenchars\n")
    (tmp_path / "good").write_text(PASSWORD + "\n")
    files = {"{short}": str(tmp_path / "short"), "{missing}": str(tmp_path / "nope"), "{good}": str(tmp_path / "good")}
    extra = {k: files.get(v, v) if v is not None else None for k, v in extra.items()}
    port = free_port()
    p = start_refused(gateway_env("http://127.0.0.1:9", PORT=str(port), **extra))
    assert p.returncode == 1, f"{case}: the gateway did not refuse to start:\n{p.stderr}"
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, f"{case}: expected one JSON line, got:\n{p.stderr}"
    rec = json.loads(lines[0])
    assert rec["level"] == "error" and rec["logger"] == "auth-gateway"
    assert message in rec["msg"], rec
    assert "elevenchars" not in p.stderr and PASSWORD not in p.stderr
    assert p.stdout == ""
    with pytest.raises(OSError):  # nothing was left listening
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_password_from_file(echo, tmp_path):
    (tmp_path / "pw").write_text(PASSWORD + "\n")  # a trailing newline (echo > file) is not part of it
    env = gateway_env(f"http://127.0.0.1:{echo.port}", GATEWAY_PASSWORD=None, GATEWAY_PASSWORD_FILE=str(tmp_path / "pw"))
    with run_gateway(tmp_path, env) as gw:
        assert request(gw.port, "GET", "/x", GOOD)[0] == 200
        assert request(gw.port, "GET", "/x", {"Authorization": basic(USER, PASSWORD + "\n")})[0] == 401


# ---------------------------------------------------------------------------------------------- Prometheus

def test_prometheus_refuses_requests_without_the_right_credentials(gw_prometheus):
    for headers in ({}, {"Authorization": basic(USER, WRONG)}, {"Authorization": basic("admin", PASSWORD)},
                    {"Authorization": basic(USER, PASSWORD[:-1])}, {"Authorization": "Basic !!!not-base64"},
                    {"Authorization": "Bearer " + PASSWORD}, {"Authorization": "Basic " + base64.b64encode(b"nocolon").decode()}):
        status, h, body = request(gw_prometheus.port, "GET", "/api/v1/query?query=up", headers)
        assert status == 401, (headers, status, body)
        assert h["WWW-Authenticate"] == 'Basic realm="obs-stack", charset="UTF-8"'
        assert json.loads(body) == {"error": "unauthorized"}
    # the UI too, and a POST with a body (the connection is closed: its body was never read)
    assert request(gw_prometheus.port, "GET", "/query")[0] == 401
    status, h, _ = request(gw_prometheus.port, "POST", "/api/v1/query", {"Content-Type": "application/x-www-form-urlencoded"},
                           b"query=up")
    assert status == 401 and h["Connection"] == "close"


def test_prometheus_query_get_and_post_through_the_gateway(gw_prometheus, prometheus):
    status, h, body = request(gw_prometheus.port, "GET", "/api/v1/query?query=up", GOOD)
    assert status == 200, body
    assert h["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["status"] == "success" and doc["data"]["resultType"] == "vector"
    direct = json.loads(request(prometheus, "GET", "/api/v1/query?query=up")[2])
    assert [r["metric"] for r in doc["data"]["result"]] == [r["metric"] for r in direct["data"]["result"]]
    assert doc["data"]["result"][0]["metric"]["job"] == "prometheus"

    form = urllib.parse.urlencode({"query": "sum(up) * 21 + 0.5 * 42"}).encode()
    status, _, body = request(gw_prometheus.port, "POST", "/api/v1/query",
                              {**GOOD, "Content-Type": "application/x-www-form-urlencoded"}, form)
    assert status == 200, body
    doc = json.loads(body)
    assert doc["status"] == "success" and doc["data"]["result"][0]["value"][1] == "42"

    # an API error passes through with Prometheus' own status and body
    status, _, body = request(gw_prometheus.port, "GET", "/api/v1/query?query=sum(", GOOD)
    assert status == 400 and json.loads(body)["errorType"] == "bad_data"


def test_prometheus_ui_through_the_gateway(gw_prometheus, prometheus):
    """The UI's routes answer through the gateway exactly as directly. (The native build here has no
    bundled React assets, so /query is Prometheus' own 500 page on both paths; the image has them.)"""
    status, h, _ = request(gw_prometheus.port, "GET", "/", GOOD)
    assert status == 302 and h["Location"] == "/query"  # Prometheus' relative redirect, unchanged
    for path in ("/query", "/graph?g0.expr=up", "/metrics", "/api/v1/targets"):
        direct_status, direct_h, direct = request(prometheus, "GET", path)
        status, h, body = request(gw_prometheus.port, "GET", path, GOOD)
        assert (status, h.get("Content-Type"), h.get("Location")) == \
            (direct_status, direct_h.get("Content-Type"), direct_h.get("Location")), path
        if path != "/metrics":  # its counters move between the two requests
            assert body == direct or path == "/api/v1/targets", path
    status, h, body = request(gw_prometheus.port, "GET", "/metrics", GOOD)
    assert status == 200 and b"prometheus_build_info" in body
    # compressed responses pass through untouched
    status, h, gz = request(gw_prometheus.port, "GET", "/api/v1/status/buildinfo", {**GOOD, "Accept-Encoding": "gzip"})
    import gzip
    assert status == 200 and h["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(gz))["status"] == "success"
    status, h, body = request(gw_prometheus.port, "HEAD", "/-/healthy", GOOD)
    assert status == 200 and body == b""


def test_lifecycle_and_write_endpoints_are_refused_even_with_the_password(gw_prometheus, prometheus):
    """The compose command enables /-/quit, /-/reload and the write receivers for the private network;
    through the gateway they are 403 however the path is spelled, and Prometheus keeps running."""
    for path in ("/-/quit", "//-/quit", "/%2D/quit", "/./-/QUIT", "/-/reload", "/api/v1/write",
                 "/api/v1/otlp/v1/metrics", "/api/v1/admin/tsdb/snapshot"):
        status, _, body = request(gw_prometheus.port, "POST", path, GOOD, b"")
        assert status == 403, (path, status, body)
    assert request(gw_prometheus.port, "POST", "/-/quit")[0] == 401  # credentials are still checked first
    assert request(prometheus, "GET", "/-/ready")[0] == 200
    assert any(r["msg"] == "blocked path refused" for r in gw_prometheus.lines())


def test_blocked_paths_can_be_changed(echo, tmp_path):
    env = gateway_env(f"http://127.0.0.1:{echo.port}", GATEWAY_BLOCKED_PATHS="/api/v1/status/")
    with run_gateway(tmp_path, env) as gw:
        assert request(gw.port, "POST", "/-/reload", GOOD, b"")[0] == 200
        assert echo.requests[-1]["path"] == "/-/reload"
        assert request(gw.port, "GET", "/api/v1/status/config", GOOD)[0] == 403
    p = start_refused(gateway_env("http://127.0.0.1:9", GATEWAY_BLOCKED_PATHS="/"))
    assert p.returncode == 1 and "GATEWAY_BLOCKED_PATHS" in p.stderr


def http_config(tmp_path: Path) -> Path:
    """The promtool/amtool HTTP client file docs/railway.md shows (password in a file)."""
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    cfg = tmp_path / "gw-http.yml"
    cfg.write_text(f"basic_auth:\n  username: {USER}\n  password_file: {tmp_path / 'pw'}\n")
    return cfg


def test_promtool_queries_through_the_gateway_as_documented(gw_prometheus, tmp_path):
    promtool = require_tool("prometheus", "promtool")
    url = f"http://127.0.0.1:{gw_prometheus.port}"
    p = subprocess.run([str(promtool), "query", "instant", f"--http.config.file={http_config(tmp_path)}", url,
                        'up{job="prometheus"}'], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and 'up{instance=' in p.stdout and "=> 1 @" in p.stdout, p.stdout + p.stderr
    p = subprocess.run([str(promtool), "query", "instant", url, "up"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "401" in p.stdout + p.stderr


# ---------------------------------------------------------------------------------------------- Alertmanager

def test_alertmanager_silence_created_through_the_gateway(gw_alertmanager, alertmanager, tmp_path):
    marker = f"via gateway {uuid.uuid4()}"
    now = time.time()
    silence = {"matchers": [{"name": "alertname", "value": "GatewayTest", "isRegex": False, "isEqual": True}],
               "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60)),
               "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)),
               "createdBy": "pytest", "comment": marker}
    body = json.dumps(silence).encode()
    status, _, _ = request(gw_alertmanager.port, "POST", "/api/v2/silences", {"Content-Type": "application/json"}, body)
    assert status == 401
    status, _, out = request(gw_alertmanager.port, "POST", "/api/v2/silences",
                             {**GOOD, "Content-Type": "application/json"}, body)
    assert status == 200, out
    sid = json.loads(out)["silenceID"]
    status, _, direct = request(alertmanager, "GET", f"/api/v2/silence/{sid}")
    assert status == 200
    got = json.loads(direct)
    assert got["comment"] == marker and got["createdBy"] == "pytest" and got["status"]["state"] == "active"
    # exactly one silence carries the marker: the unauthenticated POST created none
    listed = json.loads(request(alertmanager, "GET", "/api/v2/silences")[2])
    assert [s["id"] for s in listed if s["comment"] == marker] == [sid]
    # and it is visible through the gateway too, to amtool as the docs configure it
    status, _, via = request(gw_alertmanager.port, "GET", f"/api/v2/silence/{sid}", GOOD)
    assert status == 200 and json.loads(via)["comment"] == marker
    amtool = require_tool("alertmanager", "amtool")
    p = subprocess.run([str(amtool), f"--alertmanager.url=http://127.0.0.1:{gw_alertmanager.port}",
                        f"--http.config.file={http_config(tmp_path)}", "silence", "query", "-o", "json"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert [s["id"] for s in json.loads(p.stdout) if s["comment"] == marker] == [sid]


# ---------------------------------------------------------------------------------------------- /healthz

def test_healthz_needs_no_credentials_and_never_reaches_the_upstream(echo, tmp_path):
    with run_gateway(tmp_path, gateway_env(f"http://127.0.0.1:{echo.port}")) as gw:
        before = len(echo.requests)
        for method in ("GET", "HEAD"):
            status, _, body = request(gw.port, method, "/healthz")
            assert status == 200 and body == (b"ok\n" if method == "GET" else b"")
        assert request(gw.port, "GET", "/healthz?x=1", {"Authorization": basic(USER, WRONG)})[0] == 200
        assert request(gw.port, "POST", "/healthz", body=b"x")[0] == 405
        assert len(echo.requests) == before, echo.requests[before:]
        # the counter means something: an authenticated request does reach the echo
        assert request(gw.port, "GET", "/healthzz", GOOD)[0] == 200
        assert [r["path"] for r in echo.requests[before:]] == ["/healthzz"]
    # with the upstream down, the healthcheck still passes (Railway must not restart the gateway for it)
    with run_gateway(tmp_path, gateway_env(f"http://127.0.0.1:{free_port()}")) as gw:
        assert request(gw.port, "GET", "/healthz")[0] == 200


# ---------------------------------------------------------------------------------------------- forwarding

def test_forwarded_request_has_no_credentials_and_no_hop_by_hop_headers(echo, tmp_path):
    with run_gateway(tmp_path, gateway_env(f"http://127.0.0.1:{echo.port}")) as gw:
        body = b"a=1&b=%20two"
        status, h, out = request(gw.port, "PUT", "/api/v1/x?match[]=up&q=a%20b",
                                 {**GOOD, "X-Custom": "kept", "Content-Type": "text/plain", "X-Hop": "dropped",
                                  "Connection": "keep-alive, X-Hop", "Keep-Alive": "timeout=5",
                                  "Proxy-Authorization": basic(USER, PASSWORD), "X-Forwarded-For": "203.0.113.9"},
                                 body)
        assert status == 200, out
        seen = echo.requests[-1]
        names = {k.lower(): v for k, v in seen["headers"]}
        assert seen["method"] == "PUT" and seen["path"] == "/api/v1/x?match[]=up&q=a%20b" and seen["body"] == body
        assert "authorization" not in names and "proxy-authorization" not in names
        assert "x-hop" not in names and "keep-alive" not in names
        assert not any(PASSWORD in v or base64.b64encode(PASSWORD.encode()).decode() in v for _, v in seen["headers"])
        assert names["x-custom"] == "kept" and names["content-type"] == "text/plain"
        assert names["host"] == f"127.0.0.1:{echo.port}"
        assert names["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
        # the response: end-to-end headers back, the upstream's hop-by-hop ones not
        assert h["X-Upstream"] == "echo" and "X-Upstream-Hop" not in h
        assert json.loads(out)["method"] == "PUT"
        # DELETE, PATCH and HEAD keep their method
        for method in ("DELETE", "PATCH", "HEAD"):
            assert request(gw.port, method, "/m", GOOD)[0] == 200
            assert echo.requests[-1]["method"] == method


def test_bodies_and_responses_are_streamed_both_ways(echo, tmp_path):
    with run_gateway(tmp_path, gateway_env(f"http://127.0.0.1:{echo.port}", GATEWAY_MAX_BODY_BYTES=str(4 << 20))) as gw:
        big = os.urandom(3 << 20)
        status, _, out = request(gw.port, "POST", "/upload", GOOD, big)
        assert status == 200 and json.loads(out) == {"method": "POST", "path": "/upload", "length": len(big),
                                                     "sha256": hashlib.sha256(big).hexdigest()}
        # a chunked request body arrives whole, with a length
        status, _, out = request(gw.port, "POST", "/upload-chunked", GOOD, iter([b"abc", b"defg", b"h" * 70000]),
                                 encode_chunked=True)
        assert status == 200 and json.loads(out)["length"] == 70007
        # a chunked upstream response arrives whole
        status, h, out = request(gw.port, "GET", "/chunked", GOOD)
        assert status == 200 and out == b"".join(f"part {i}\n".encode() * 100 for i in range(50))
        # over the limit: 413, nothing sent upstream
        n = len(echo.requests)
        status, _, _ = request(gw.port, "POST", "/too-big", GOOD, b"x" * ((4 << 20) + 1))
        assert status == 413 and len(echo.requests) == n
        # an absolute Location naming the upstream is made relative (the client cannot reach the upstream)
        status, h, _ = request(gw.port, "GET", "/redirect", GOOD)
        assert status == 302 and h["Location"] == "/elsewhere?x=1"
        # keep-alive: two requests on one connection
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=HTTP_TIMEOUT)
        try:
            for i in range(2):
                conn.request("GET", f"/ka{i}", headers=GOOD)
                r = conn.getresponse()
                assert r.status == 200 and json.loads(r.read())["path"] == f"/ka{i}"
        finally:
            conn.close()


def raw_exchange(port: int, head: bytes, then: bytes | None = None) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT) as s:
        s.sendall(head)
        first = s.recv(65536)
        if then is None:
            return first
        s.sendall(then)
        rest = b""
        while b"\r\n\r\n" not in rest or not rest.rstrip().endswith(b"}"):
            data = s.recv(65536)
            if not data:
                break
            rest += data
        return first + rest


def test_expect_100_continue_is_answered_only_after_authentication(echo, tmp_path):
    """curl sends `Expect: 100-continue` with larger bodies: a wrong password gets 401 before the body
    is sent, the right one gets 100 Continue and then the upstream's answer."""
    with run_gateway(tmp_path, gateway_env(f"http://127.0.0.1:{echo.port}")) as gw:
        head = ("POST /api/v1/query HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\nExpect: 100-continue\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nAuthorization: {}\r\n\r\n")
        out = raw_exchange(gw.port, head.format(basic(USER, WRONG)).encode())
        assert out.startswith(b"HTTP/1.1 401 "), out
        out = raw_exchange(gw.port, head.format(basic(USER, PASSWORD)).encode(), b"query=up1")
        assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 "), out
        assert echo.requests[-1]["body"] == b"query=up1"
        assert not any(k.lower() == "expect" for k, _ in echo.requests[-1]["headers"])


# ---------------------------------------------------------------------------------------------- failures

def test_password_never_appears_in_the_logs(echo, tmp_path):
    env = gateway_env(f"http://127.0.0.1:{echo.port}")
    with run_gateway(tmp_path, env) as gw:
        assert request(gw.port, "GET", "/a?query=up", {"Authorization": basic(USER, WRONG)})[0] == 401
        assert request(gw.port, "GET", "/b", {"Authorization": basic(PASSWORD, WRONG)})[0] == 401  # swapped fields
        assert request(gw.port, "GET", "/c", {"Authorization": "Basic " + PASSWORD})[0] == 401   # not base64
        assert request(gw.port, "GET", "/d", GOOD)[0] == 200
        assert request(gw.port, "POST", "/e", {**GOOD, "Content-Type": "text/plain"}, PASSWORD.encode())[0] == 200
        gw.stop()  # every line is flushed
        text = gw.log()
        records = gw.lines()  # every line is JSON
    failures = [r for r in records if r["msg"] == "authentication failed"]
    assert [r["reason"] for r in failures] == ["bad", "bad", "malformed"], records
    assert [r["path"] for r in failures] == ["/a", "/b", "/c"]  # paths, never query strings
    for secret in (PASSWORD, WRONG, basic(USER, WRONG).split()[1], GOOD["Authorization"].split()[1],
                   base64.b64encode(PASSWORD.encode()).decode(), "query=up"):
        assert secret not in text, f"{secret!r} is in the gateway's log:\n{text}"
    assert "Basic " not in text and "authorization" not in text.lower()


def test_repeated_failed_logins_get_429(echo, tmp_path):
    env = gateway_env(f"http://127.0.0.1:{echo.port}", GATEWAY_AUTH_FAILURE_BURST="3",
                      GATEWAY_AUTH_FAILURES_PER_MINUTE="0.5")
    with run_gateway(tmp_path, env) as gw:
        assert request(gw.port, "GET", "/x", GOOD)[0] == 200
        for _ in range(3):
            assert request(gw.port, "GET", "/x", {"Authorization": basic(USER, WRONG)})[0] == 401
        status, h, body = request(gw.port, "GET", "/x", {"Authorization": basic(USER, WRONG)})
        assert status == 429, body
        assert 1 <= int(h["Retry-After"]) <= 121
        # while blocked, even the right password is refused: a guess cannot be confirmed
        assert request(gw.port, "GET", "/x", GOOD)[0] == 429
        assert request(gw.port, "GET", "/healthz")[0] == 200  # the healthcheck is never limited
        assert any(r["msg"] == "too many failed logins: refused" for r in gw.lines())


def test_rate_limit_is_per_client_with_a_global_cap(echo, tmp_path):
    """Behind Railway's edge the client is X-Real-IP: one client's failures do not lock out another.
    The shared budget never refuses the right password itself (issue 12 item 3): once it is spent, each
    address gets one guess at a time instead of its burst."""
    env = gateway_env(f"http://127.0.0.1:{echo.port}", GATEWAY_CLIENT_IP_HEADER="X-Real-IP",
                      GATEWAY_AUTH_FAILURE_BURST="2", GATEWAY_AUTH_FAILURES_PER_MINUTE="0.5",
                      GATEWAY_AUTH_GLOBAL_FAILURE_BURST="5", GATEWAY_AUTH_GLOBAL_FAILURES_PER_MINUTE="0.5")

    def as_client(ip, headers):
        return request(gw.port, "GET", "/x", {**headers, "X-Real-IP": ip})[0]

    bad = {"Authorization": basic(USER, WRONG)}
    with run_gateway(tmp_path, env) as gw:
        assert [as_client("198.51.100.1", bad) for _ in range(3)] == [401, 401, 429]
        assert as_client("198.51.100.2", GOOD) == 200
        # IPv6 clients are one client per /64
        assert [as_client(f"2001:db8::{i}", bad) for i in (1, 2)] == [401, 401]
        assert as_client("2001:db8::3", bad) == 429
        assert as_client("2001:db8:0:1::3", GOOD) == 200
        # 4 failures so far; one more from a fresh address spends the shared budget
        assert as_client("198.51.100.3", bad) == 401
        assert as_client("198.51.100.4", GOOD) == 200  # the real user is not locked out
        assert as_client("198.51.100.3", bad) == 429   # the spraying address is (burst 2, but budget spent)
        assert [as_client("198.51.100.5", bad) for _ in range(2)] == [401, 429]  # one guess, not two
        assert as_client("198.51.100.6", GOOD) == 200


def test_upstream_down_is_502(tmp_path):
    with run_gateway(tmp_path, gateway_env(f"http://127.0.0.1:{free_port()}")) as gw:
        assert request(gw.port, "GET", "/api/v1/query?query=up")[0] == 401  # credentials first
        status, h, body = request(gw.port, "GET", "/api/v1/query?query=up", GOOD)
        assert status == 502 and h["Content-Type"] == "application/json"
        assert json.loads(body) == {"error": "upstream unavailable"}
        status, _, body = request(gw.port, "POST", "/api/v1/query", GOOD, b"query=up")
        assert status == 502
        assert sum(r["msg"] == "upstream unavailable" for r in gw.lines()) == 2


def test_slow_upstream_is_504_within_the_timeout(echo, tmp_path):
    with run_gateway(tmp_path, gateway_env(f"http://127.0.0.1:{echo.port}", GATEWAY_UPSTREAM_TIMEOUT="1")) as gw:
        t0 = time.monotonic()
        status, _, body = request(gw.port, "GET", "/slow", GOOD)
        assert status == 504 and json.loads(body) == {"error": "upstream timed out"}
        assert time.monotonic() - t0 < 10
        echo.release.set()
        assert request(gw.port, "GET", "/slow", GOOD)[0] == 200  # the same gateway still serves


# ---------------------------------------------------------------------------------------------- Railway mode

def test_railway_defaults_listen_dual_stack_on_port(tmp_path):
    """With Railway's variables only (PORT, no GATEWAY_LISTEN_HOST) the gateway listens on [::]:$PORT and
    answers on 127.0.0.1 and ::1, in a network namespace of its own (nothing is exposed on the host)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("nsenter") is None:
        pytest.skip("needs root with unshare/nsenter for a private network namespace")
    if not Path("/proc/net/if_inet6").exists():
        pytest.skip("this kernel has IPv6 disabled")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1", "PORT": "8080",
           "GATEWAY_UPSTREAM": "http://prometheus.railway.internal:9090", "GATEWAY_PASSWORD": PASSWORD,
           "RAILWAY_PRIVATE_DOMAIN": "prometheus-gateway.railway.internal"}
    log = tmp_path / "log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                                 sys.executable, str(GATEWAY)], env=env, stdout=f, stderr=f, start_new_session=True)
    probe = ("import sys,time,http.client as h\n"
             "for host in ('127.0.0.1','::1'):\n"
             "  end=time.time()+20\n"
             "  while True:\n"
             "    try:\n"
             "      c=h.HTTPConnection(host,8080,timeout=2); c.request('GET','/healthz'); a=c.getresponse().status\n"
             "      c=h.HTTPConnection(host,8080,timeout=2); c.request('GET','/api/v1/query'); b=c.getresponse().status\n"
             "      print(host,a,b); break\n"
             "    except OSError as e:\n"
             "      if time.time()>end: print(host,'error',e); sys.exit(1)\n"
             "      time.sleep(0.1)\n")
    try:
        poll("the gateway process is up", lambda: proc.poll() is None and log.read_text().strip(), 20, 0.1)
        p = subprocess.run(["nsenter", f"--net=/proc/{proc.pid}/ns/net", sys.executable, "-c", probe],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, f"{p.stdout}{p.stderr}\n{log.read_text()}"
        assert p.stdout.split("\n")[:2] == ["127.0.0.1 200 401", "::1 200 401"], p.stdout
        start = json.loads(log.read_text().splitlines()[0])
        assert start["host"] == "::" and start["port"] == 8080 and start["client_ip_header"] == "X-Real-IP"
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------------- the limiter

def _module():
    import auth_gateway  # scripts/railway/, on pytest.ini's pythonpath
    return auth_gateway


def test_failure_limiter_refills_and_stays_bounded():
    mod = _module()
    now = [1000.0]
    lim = mod.FailureLimiter(burst=2, per_minute=6, global_burst=1000, global_per_minute=6000, max_keys=3,
                             clock=lambda: now[0])
    assert lim.retry_after("a") == 0
    lim.fail("a")
    lim.fail("a")
    assert lim.retry_after("a") == pytest.approx(10)  # 6 per minute: one token every 10 s
    now[0] += 9.9
    assert lim.retry_after("a") > 0
    now[0] += 0.1
    assert lim.retry_after("a") == 0
    for k in "bcdef":
        lim.fail(k)
    assert len(lim.buckets) <= 3  # memory stays bounded under many addresses
    assert "f" in lim.buckets  # the most recent failure is kept


def test_parallel_guesses_cannot_overrun_the_limit(echo, tmp_path):
    """40 wrong passwords at once against a burst of 5: the check and the count are one step, so
    exactly 5 are looked at (401) and the rest refused (429)."""
    env = gateway_env(f"http://127.0.0.1:{echo.port}", GATEWAY_AUTH_FAILURE_BURST="5",
                      GATEWAY_AUTH_FAILURES_PER_MINUTE="0.5", GATEWAY_MAX_CONNECTIONS_PER_CLIENT="64")
    with run_gateway(tmp_path, env) as gw:
        barrier = threading.Barrier(40, timeout=20)
        results: list[int] = []

        def guess(i):
            barrier.wait()
            results.append(request(gw.port, "GET", "/x", {"Authorization": basic(USER, f"{WRONG}-{i}")})[0])

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert sorted(results) == [401] * 5 + [429] * 35, results
