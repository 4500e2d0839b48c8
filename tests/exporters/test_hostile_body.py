"""Issue 12 items 13, 15, 16: a hostile upstream on 127.0.0.1 cannot blow up a bridge's memory or stall it.
A huge body and a gzip bomb are cut at the response-byte cap (counted after decompression), a body trickled
one byte at a time is cut at the total deadline; each is an ApiError with a bounded kind. The four bridges
(GitHub, Vercel, Railway, Supabase) build every API client with the same bounds from their settings."""
from __future__ import annotations

import gzip
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry

from obs_bridges import github, railway, supabase, vercel
from obs_bridges.core import SelfMetrics
from obs_bridges.httpclient import ApiClient, ApiError

CAP = 1024 * 1024
BOMB = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # 64 MiB in about 64 KiB


class _Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path == "/huge":  # 200 MB declared and sent until the client hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(200 * 1024 * 1024))
            self.end_headers()
            block = b"x" * 65536
            try:
                for _ in range(200 * 16):
                    self.wfile.write(block)
            except OSError:
                return
        elif self.path == "/bomb":
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(BOMB)))
            self.end_headers()
            self.wfile.write(BOMB)
        elif self.path == "/trickle":  # one byte every 0.3 s: the socket timeout never fires
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b"[")
                    self.wfile.flush()
                    time.sleep(0.3)
            except OSError:
                return


@pytest.fixture(scope="module")
def base():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def client(base: str, **kw) -> ApiClient:
    return ApiClient("github", base, SelfMetrics("github", CollectorRegistry()), timeout=5, retries=0,
                     max_response_bytes=CAP, **kw)


@pytest.mark.parametrize("path", ["/huge", "/bomb"])
def test_response_bytes_are_capped_after_decompression(base, path):
    t0 = time.monotonic()
    with pytest.raises(ApiError) as e:
        client(base).request("GET", path, "hostile")
    assert e.value.kind == "too_large" and "HTTP_MAX_RESPONSE_BYTES" in str(e.value), e.value
    assert time.monotonic() - t0 < 10


def test_a_trickled_body_hits_the_total_deadline(base):
    t0 = time.monotonic()
    with pytest.raises(ApiError) as e:
        client(base, deadline=2.0).request("GET", "/trickle", "hostile")
    took = time.monotonic() - t0
    assert e.value.kind == "timeout" and "HTTP_DEADLINE_SECONDS" in str(e.value), e.value
    assert 1.5 < took < 6, took


@pytest.mark.parametrize("mod,env", [
    (github, {"GITHUB_TOKEN": "t", "GITHUB_REPOSITORIES": "o/r"}),
    (vercel, {"VERCEL_TOKEN": "t"}),
    (railway, {"RAILWAY_TOKEN": "t"}),
    (supabase, {"SUPABASE_ACCESS_TOKEN": "t"}),
], ids=["github", "vercel", "railway", "supabase"])
def test_every_bridge_builds_its_clients_with_the_bounds(mod, env):
    env = {**env, "HTTP_MAX_RESPONSE_BYTES": "123456", "HTTP_DEADLINE_SECONDS": "7", "LISTEN_PORT": "19999"}
    exp = mod.build(env)
    clients = [v for v in vars(exp).values() if isinstance(v, ApiClient)]
    clients += [c for v in vars(exp).values() if isinstance(v, dict) for c in v.values() if isinstance(c, ApiClient)]
    if not clients and hasattr(exp, "client_for"):
        clients = [exp.client_for("o/r")]
    assert clients, f"{mod.__name__}: no ApiClient found"
    assert all(c.max_response_bytes == 123456 and c.deadline == 7.0 for c in clients)
