#!/usr/bin/env python3
"""auth-gateway: an authenticating reverse proxy that gives Prometheus or Alertmanager a public domain on
Railway while they themselves stay private (docs/railway.md, "Exposing Prometheus or Alertmanager").

GET|HEAD /healthz   200 "ok", no credentials, never proxied (Railway's healthcheck).
anything else       HTTP Basic auth required (401 + WWW-Authenticate otherwise); then the request (method,
                    path, query, body, end-to-end headers minus Authorization) is streamed to the upstream and
                    the response streamed back. Upstream unreachable: 502 JSON; too slow: 504 JSON.

Hostile clients (issue 12): the request head is parsed strictly here (RFC 9112; anything malformed or
ambiguous is 400 and the connection closed), must arrive whole within GATEWAY_HEADER_TIMEOUT (a total, not
per byte) and within GATEWAY_MAX_HEADER_BYTES; a client address may hold at most
GATEWAY_MAX_CONNECTIONS_PER_CLIENT connections, and a few connection slots beyond GATEWAY_MAX_CONNECTIONS
only ever answer /healthz, so the healthcheck gets through while every other slot is held.

Failed logins are rate limited per client (a token bucket per client address): when its bucket is empty
every login from there gets 429 with Retry-After, right password or not, so guessing is slow. A shared
budget for all clients never refuses anyone itself: while it is spent (a spray from many addresses) every
address gets one guess at a time instead of a burst, and the right password from an address that has not
failed is still accepted. The credential is checked (constant time, both digests) before the limiter is
consulted, whatever the limiter says. The password is read from GATEWAY_PASSWORD or GATEWAY_PASSWORD_FILE,
kept only as a salted SHA-256 digest; without one (or with fewer than 12 characters) the gateway refuses
to start with one JSON line naming the variable: it is never an open proxy.

Environment (docs/railway.md has the table):
  GATEWAY_UPSTREAM            required, e.g. http://prometheus.railway.internal:9090 (a path is a prefix)
  GATEWAY_USER                default "admin"
  GATEWAY_PASSWORD | GATEWAY_PASSWORD_FILE   exactly one; at least 12 characters
  PORT                        listen port (Railway sets it; default 8080); GATEWAY_LISTEN_HOST default "::"
  GATEWAY_REALM, GATEWAY_CONNECT_TIMEOUT, GATEWAY_UPSTREAM_TIMEOUT, GATEWAY_CLIENT_TIMEOUT,
  GATEWAY_HEADER_TIMEOUT, GATEWAY_MAX_HEADER_BYTES, GATEWAY_MAX_BODY_BYTES, GATEWAY_MAX_CONNECTIONS,
  GATEWAY_MAX_CONNECTIONS_PER_CLIENT, GATEWAY_AUTH_FAILURE_BURST, GATEWAY_AUTH_FAILURES_PER_MINUTE,
  GATEWAY_AUTH_GLOBAL_FAILURE_BURST, GATEWAY_AUTH_GLOBAL_FAILURES_PER_MINUTE, GATEWAY_CLIENT_IP_HEADER,
  GATEWAY_BLOCKED_PATHS (default /-/quit,/-/reload,/api/v1/write,/api/v1/otlp,/api/v1/admin: 403)
Logs: one JSON line on stderr per failure (and one at start), with the method and the path only. Never the
password, never the Authorization header, never a query string or any other part of the raw request line.
Standard library only. This file is the entry point; its parts are the gateway_*.py modules beside it
(config and log, HTTP parsing, limits, the handler, forwarding upstream), copied with it into the image.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import ThreadingHTTPServer

from gateway_config import Config, ConfigError, digest, load_config, log
from gateway_limits import HEALTH_SLOTS, Admission, FailureLimiter, client_key
from gateway_proxy import make_handler


def check_credentials(cfg: Config, header: str | None) -> str:
    """"ok", "missing", "malformed" or "bad". Both digests are always compared (no early exit)."""
    if not header:
        return "missing"
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        return "malformed"
    try:
        raw = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return "malformed"
    user, sep, pw = raw.partition(b":")
    if not sep:
        return "malformed"
    user_ok = hmac.compare_digest(digest(cfg.salt, user), cfg.user_digest)
    pw_ok = hmac.compare_digest(digest(cfg.salt, pw), cfg.password_digest)
    return "ok" if user_ok & pw_ok else "bad"


REFUSALS = {429: "too many connections from this address", 503: "busy; retry later"}


def make_server(cfg: Config, limiter: FailureLimiter | None = None) -> ThreadingHTTPServer:
    limiter = limiter or FailureLimiter(cfg.burst, cfg.per_minute, cfg.global_burst, cfg.global_per_minute)
    v6 = ":" in cfg.host
    admission = Admission(cfg.max_connections, cfg.max_per_client)
    refused = {"count": 0, "logged": 0.0}

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if v6 else socket.AF_INET
        request_queue_size = 256  # a burst of connects waits in the backlog instead of being reset

        def server_bind(self):
            if v6:  # "::": dual stack, IPv4 accepted too (Railway's private network may be IPv6-only)
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            super().server_bind()

        pressure_fd = admission.pressure_fd

        def process_request(self, request, client_address):
            peer = client_key(client_address[0])
            kind = admission.admit(peer)
            if isinstance(kind, int):
                self._refuse(request, kind, peer)
                return
            try:
                threading.Thread(target=self._serve, args=(request, client_address, kind, peer), daemon=True).start()
            except RuntimeError:  # no thread to be had: the slot is not leaked
                admission.release(kind, peer)
                self._refuse(request, 503, peer)

        def _serve(self, request, client_address, kind: str, peer: str):
            try:
                self.RequestHandlerClass(request, client_address, self, health_only=kind == "health")
            except Exception:  # noqa: BLE001 - socketserver's own contract: any handler error is logged, not fatal
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)
                admission.release(kind, peer)

        def _refuse(self, request, status: int, peer: str):
            """An answer without reading the request (nothing to wait for), then close. Logged at most
            every 10 s with a count, so a flood of connections is not a flood of log lines."""
            body = (json.dumps({"error": REFUSALS[status]}) + "\n").encode()
            head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n").encode()
            try:
                request.setblocking(False)
                request.send(head + body)
            except OSError:
                pass
            self.shutdown_request(request)
            refused["count"] += 1
            now = time.monotonic()
            if now - refused["logged"] >= 10:
                log("warn", "connection refused: " + REFUSALS[status], client=peer, status=status,
                    refused_since_last_line=refused["count"])
                refused.update(count=0, logged=now)

        def handle_error(self, request, client_address):
            log("error", "connection handler failed", client=client_address[0], error=sys.exc_info()[0].__name__)

    # Handed over, not imported by gateway_proxy: gateway_*.py never import this script (it runs as
    # __main__), and a test wraps auth_gateway.check_credentials.
    return Server((cfg.host, cfg.port), make_handler(cfg, limiter, check_credentials))


def main() -> int:
    try:
        cfg = load_config(dict(os.environ))
    except ConfigError as e:
        log("error", str(e))
        return 1
    for k in ("GATEWAY_PASSWORD", "GATEWAY_PASSWORD_FILE"):
        os.environ.pop(k, None)
    try:
        srv = make_server(cfg)
    except OSError as e:
        log("error", f"cannot listen on [{cfg.host}]:{cfg.port}: {e.strerror or e}")
        return 1
    log("info", "auth gateway listening", host=cfg.host, port=srv.server_address[1],
        upstream=cfg.upstream_origin + cfg.upstream_prefix,
        client_ip_header=cfg.client_ip_header or None, max_connections=cfg.max_connections,
        health_slots=HEALTH_SLOTS, max_connections_per_client=cfg.max_per_client or None,
        header_timeout=cfg.header_timeout, max_header_bytes=cfg.max_header_bytes)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
