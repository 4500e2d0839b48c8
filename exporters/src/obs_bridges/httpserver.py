"""The HTTP server the exporters and the simulator share: threading, dual-stack on IPv6, a connection cap,
and the exporters' /metrics and /healthz handler."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from obs_bridges import log

# socketserver's default listen backlog of 5 makes a burst's handshakes retry for seconds.
LISTEN_BACKLOG = 128


class QuietHandler(BaseHTTPRequestHandler):
    """The request handler every server here starts from: keep-alive, no Nagle delay, no version banner, no
    access log (each server logs what matters itself)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed-ACK stall
    server_version = "obs-bridges"
    sys_version = ""

    def log_message(self, *a):
        pass


def send_json(handler: BaseHTTPRequestHandler, r) -> None:
    """Write a receiver's Response (code, bytes(), headers, close) as JSON; `close` ends the connection (its
    body was not read, so the connection cannot carry another request)."""
    data = r.bytes()
    handler.send_response(r.code)
    for k, v in {"Content-Type": "application/json", **r.headers}.items():
        handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(data)))
    if r.close:
        handler.send_header("Connection", "close")
        handler.close_connection = True
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(data)


def serve(exporter_or_handler, addr: str, port: int) -> ThreadingHTTPServer:
    exp = exporter_or_handler

    class Handler(QuietHandler):
        def _send(self, code, body: bytes, ctype: str):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, exp.metrics_bytes(), CONTENT_TYPE_LATEST)
            elif path in ("/healthz", "/health"):
                body = json.dumps(exp.health()).encode()
                self._send(200, log.redact(body.decode()).encode(), "application/json")
            elif path == "/":
                self._send(200, b"obs-bridges exporter: see /metrics and /healthz\n", "text/plain")
            else:
                self._send(404, b"not found\n", "text/plain")

        do_HEAD = do_GET

    return make_http_server(addr, port, Handler)


def make_http_server(addr: str, port: int, handler, max_connections: int | None = None) -> ThreadingHTTPServer:
    """A threading HTTP server on addr; an IPv6 address (e.g. "::", Railway's private network) gets a
    dual-stack socket that accepts IPv4 too. With max_connections, connections past it are closed at once
    (one thread each otherwise, without bound)."""
    v6 = ":" in addr
    slots = threading.BoundedSemaphore(max_connections) if max_connections else None

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        address_family = socket.AF_INET6 if v6 else socket.AF_INET
        request_queue_size = LISTEN_BACKLOG

        def process_request(self, request, client_address):
            if slots is not None and not slots.acquire(blocking=False):
                self.shutdown_request(request)
                return
            super().process_request(request, client_address)

        def process_request_thread(self, request, client_address):
            try:
                super().process_request_thread(request, client_address)
            finally:
                if slots is not None:
                    slots.release()

        def server_bind(self):
            if v6:
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            super().server_bind()

    return Server((addr, port), handler)
