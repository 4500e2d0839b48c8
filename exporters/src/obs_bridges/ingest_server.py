"""HTTP for ``obs-bridge ingest``: the public listener (INGEST_PORT) that reads bodies under a deadline and
a size bound (Content-Length or chunked, as proxies such as Railway's edge may send), and the private one
(LISTEN_PORT) with /metrics and /healthz. The routes and checks are in ingest.py."""

from __future__ import annotations

import os
import socket
import time
from http.server import ThreadingHTTPServer

from obs_bridges import config, httpserver, log
from obs_bridges.httpserver import QuietHandler, make_http_server, send_json
from obs_bridges.ingest import BodyError, Ingest
from obs_bridges.ingest_settings import load_settings
from obs_bridges.vercel_speed_insights import SpeedInsights

# A push must arrive whole within this: a slow sender cannot hold a thread (and its share of the budget).
READ_DEADLINE_SECONDS = 10.0
MAX_CONNECTIONS = 64
CHUNK_LINE_MAX = 1024
# After a refusal that closes the connection: drain the sender's rest this long, at most this much.
LINGER_SECONDS = 2.0
LINGER_BYTES = 8 * 1024 * 1024


class _Reader:
    def __init__(self, rfile, deadline: float):
        self.rfile, self.deadline = rfile, deadline

    def _check(self):
        if time.monotonic() > self.deadline:
            raise BodyError(408, "the body did not arrive in time")

    def exactly(self, n: int) -> bytes:
        """n bytes, read into one buffer (no list of chunks joined into a second copy: under a flood the body
        budget is the memory bound only if a body is held once)."""
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            self._check()
            try:
                k = self.rfile.readinto1(view[got:got + 65536])
            except OSError:
                raise BodyError(408, "the connection broke while the body was read") from None
            if not k:
                raise BodyError(400, "the body ended before its length")
            got += k
        view.release()
        return buf

    def line(self) -> bytes:
        self._check()
        try:
            raw = self.rfile.readline(CHUNK_LINE_MAX + 1)
        except OSError:
            raise BodyError(408, "the connection broke while the body was read") from None
        if len(raw) > CHUNK_LINE_MAX or not raw.endswith(b"\n"):
            raise BodyError(400, "a malformed chunk")
        return raw.rstrip(b"\r\n")

    def chunked(self, limit: int) -> bytes:
        out, total = [], 0
        while True:
            size_field = self.line().split(b";", 1)[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                raise BodyError(400, "a malformed chunk size") from None
            if size == 0:
                while self.line():  # trailers, ignored
                    pass
                return b"".join(out)
            total += size
            if total > limit:
                raise BodyError(413, f"body over {limit} bytes")
            out.append(self.exactly(size))
            if self.exactly(2) != b"\r\n":
                raise BodyError(400, "a chunk without its CRLF")


def serve_public(ingest: Ingest) -> ThreadingHTTPServer:
    class Handler(QuietHandler):
        timeout = READ_DEADLINE_SECONDS  # per socket read; _Reader bounds the whole body too

        def _read_body(self, limit: int) -> bytes:
            reader = _Reader(self.rfile, time.monotonic() + READ_DEADLINE_SECONDS)
            te = (self.headers.get("Transfer-Encoding") or "").strip().lower()
            if te:
                if te != "chunked" or self.headers.get("Content-Length") is not None:
                    raise BodyError(400, "only Transfer-Encoding: chunked, and never with Content-Length")
                return reader.chunked(limit)
            raw = self.headers.get("Content-Length")
            if raw is None:
                raise BodyError(411, "a push needs Content-Length (or chunked encoding)")
            if not raw.strip().isdigit():
                raise BodyError(400, "Content-Length is not a number")
            n = int(raw)
            if n > limit:
                raise BodyError(413, f"body over {limit} bytes")
            return reader.exactly(n)

        def _do(self):
            r = ingest.handle(self.command, self.path, self.headers, self._read_body)
            send_json(self, r)
            if r.close:
                self._linger()

        def _linger(self):
            """Refused before its body was read: say so, then drain what the sender still sends for a moment.
            Closing with unread data resets the connection, and the sender may then never see the answer."""
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_WR)
                self.connection.settimeout(0.5)
                deadline, drained = time.monotonic() + LINGER_SECONDS, 0
                while time.monotonic() < deadline and drained < LINGER_BYTES:
                    chunk = self.connection.recv(65536)
                    if not chunk:
                        break
                    drained += len(chunk)
            except OSError:
                pass

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _do

    s = ingest.settings
    return make_http_server(s.listen_addr, s.port, Handler, max_connections=MAX_CONNECTIONS)


def run(env=None) -> int:
    from obs_bridges.cli import _serve_until_signal

    env = os.environ if env is None else env
    log.setup("ingest", (env.get("LOG_LEVEL") or "info").strip() or "info")
    lg = log.get("obs_bridges.ingest")
    try:
        settings = load_settings(env)
    except config.ConfigError as e:
        lg.error(f"invalid configuration: {e}", extra=log.kv(exit_code=2))
        return 2
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    speed = SpeedInsights(registry)
    ingest = Ingest(settings, registry=registry, speed_insights=speed)
    servers = []
    for what, make, port, var in (("public routes", serve_public, settings.port, "INGEST_PORT"),
                                  ("/metrics", lambda i: httpserver.serve(i, settings.listen_addr,
                                                                          settings.metrics_port),
                                   settings.metrics_port, "LISTEN_PORT")):
        try:
            servers.append(make(ingest))
        except OSError as e:
            lg.error(f"cannot listen on {settings.listen_addr}:{port} for {what}: {e.strerror or e} (set {var})",
                     extra=log.kv(exit_code=1))
            for srv in servers:
                srv.server_close()
            return 1
    lg.info("ingest starting", extra=log.kv(
        listen=f"{settings.listen_addr}:{settings.port}", metrics=f"{settings.listen_addr}:{settings.metrics_port}",
        mode="demo" if settings.demo else "live",
        routes={name: on for name, on in ingest.health()["routes"].items()}))
    return _serve_until_signal(servers, lambda: None)
