"""The auth gateway's request handler: one connection's requests read under deadlines, answered
(/healthz, refusals, authentication) or forwarded (gateway_upstream.py)."""
from __future__ import annotations

import http.client
import json
import selectors
import socket
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler

from gateway_config import Config, log
from gateway_http import (CHUNK, MAX_REQUEST_LINE, ClientGone, ClientReader, HttpError, body_length, is_blocked,
                          parse_field, parse_request_line, target_path)
from gateway_limits import FailureLimiter, client_key
from gateway_upstream import make_forwarding

HEALTH_HEAD_TIMEOUT = 2.0  # seconds a health-only connection gets for its head
LINGER_SECONDS = 2.0


def make_handler(cfg: Config, limiter: FailureLimiter, check_credentials: Callable[[Config, str | None], str]):
    www_authenticate = f'Basic realm="{cfg.realm}", charset="UTF-8"'

    class Handler(make_forwarding(cfg), BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "obs-auth-gateway/1"
        timeout = None  # every wait sets its own (ClientReader; client_timeout for writes)
        default_request_version = "HTTP/1.1"

        def __init__(self, request, client_address, server, health_only: bool = False):
            self.health_only = health_only  # a reserved slot: /healthz only, then close
            self._born = time.monotonic()
            self._served = 0
            super().__init__(request, client_address, server)

        def setup(self):
            super().setup()
            self.rfile = ClientReader(self.connection)

        def handle(self):
            self.close_connection = True
            self.handle_one_request()
            while not self.close_connection:
                self.handle_one_request()

        def finish(self):
            super().finish()
            if self._linger:
                # Refused before its body (or the rest of its head) was read: stop sending, then read and
                # drop what the client still sends for a moment, so it sees the answer instead of a reset
                # (a "lingering close", as nginx does).
                try:
                    self.connection.shutdown(socket.SHUT_WR)
                    end, left = time.monotonic() + LINGER_SECONDS, cfg.max_body + (1 << 20)
                    while left > 0 and time.monotonic() < end:
                        self.connection.settimeout(max(0.05, end - time.monotonic()))
                        data = self.connection.recv(CHUNK)
                        if not data:
                            break
                        left -= len(data)
                except OSError:
                    pass

        # --- one request: head (deadline, size, strict syntax), then dispatch
        def _reset(self):
            self.command, self.path, self.requestline, self.request_version = None, "", "", "HTTP/1.1"
            self.headers = http.client.HTTPMessage()
            self._auth: bool | None = None
            self._linger = False
            self._length: int | None = 0

        def handle_one_request(self):
            self._reset()
            self.close_connection = True
            if self._served and not self._await_next():
                return
            limit = min(cfg.header_timeout, HEALTH_HEAD_TIMEOUT) if self.health_only else cfg.header_timeout
            deadline = (time.monotonic() if self._served else self._born) + limit
            self._served += 1
            try:
                try:
                    lines = self.rfile.read_head(deadline, MAX_REQUEST_LINE, cfg.max_header_bytes)
                finally:
                    self.connection.settimeout(cfg.client_timeout)  # writes, and body reads
                method, target, version = parse_request_line(lines[0])
                self.command, self.path, self.request_version = method, target, version
                fields = [parse_field(line) for line in lines[1:]]
                for k, v in fields:
                    self.headers[k] = v
                self._length = body_length(self.request_version, fields)
                if not self.path.startswith("/"):  # absolute-form or "*": this is no forward proxy
                    raise HttpError(400, "bad request target")
            except HttpError as e:
                log("warn", "bad request: refused", status=e.status, reason=str(e), client=self._peer(),
                    **self._where())
                self._reply(e.status, {"error": str(e)}, close=True)
                self._linger = True  # the client may still be sending its head
                return
            except TimeoutError:
                if not self.rfile.buf:  # not a byte of a request: an idle or pre-opened connection
                    return
                log("warn", "request head not received in time: closed", client=self._peer(), seconds=limit)
                self._reply(408, {"error": "request head not received in time"}, close=True)
                self._linger = False
                return
            except (ClientGone, OSError):
                return
            self.requestline = f"{self.command} {self._where()['path']}"  # no query: the base class logs it
            tokens = {t.strip().lower() for v in self.headers.get_all("Connection") or [] for t in v.split(",")}
            self.close_connection = self.request_version != "HTTP/1.1" or "close" in tokens or self.health_only
            if self.health_only and not (self._is_health() and self.command in ("GET", "HEAD")):
                log("warn", "every connection slot is taken: refused", client=self._peer(), **self._where())
                return self._reply(503, {"error": "busy; retry later"}, {"Retry-After": "1"}, close=True)
            expect = self.headers.get("Expect", "")
            if expect.lower() == "100-continue" and self.request_version == "HTTP/1.1":
                if not self.handle_expect_100():
                    return
            method = getattr(self, "do_" + self.command, None)
            if method is None:
                log("warn", "method not implemented: refused", client=self._peer(), **self._where())
                return self._reply(501, {"error": "method not implemented"}, close=True)
            method()

        def _await_next(self) -> bool:
            """Wait for the next request on a kept-alive connection: up to GATEWAY_CLIENT_TIMEOUT (longer
            than the edge's keep-alive), but an idle connection gives its slot up as soon as slots run
            short, so idling after a request cannot hold slots either."""
            if self.rfile.buf:
                return True
            with selectors.DefaultSelector() as sel:
                sel.register(self.connection, selectors.EVENT_READ)
                sel.register(self.server.pressure_fd, selectors.EVENT_READ)
                ready = [key.fileobj for key, _ in sel.select(cfg.client_timeout)]
            if self.connection not in ready:  # idle too long, or slots run short
                return False
            try:
                self.connection.settimeout(cfg.client_timeout)
                return bool(self.connection.recv(1, socket.MSG_PEEK))  # b"": the client closed
            except OSError:
                return False

        # --- logging: JSON, failures only. Never the request line: the base class would put the query
        # string (and anything else a client sends there) into its messages.
        def log_request(self, code="-", size="-"):
            pass

        def log_message(self, fmt, *args):
            log("warn", "http error", client=self._peer(), **self._where())

        def send_error(self, code, message=None, explain=None):
            self._reply(code, {"error": HTTPStatus(code).phrase.lower()}, close=True)

        def _where(self) -> dict:
            if not self.command:
                return {}
            return {"method": self.command, "path": target_path(self.path)[:200]}

        def _path_only(self) -> str:
            return target_path(self.path)[:200]

        def _peer(self) -> str:
            return client_key(self.client_address[0])

        def _reply(self, code: int, body: dict | bytes, headers: dict | None = None, close: bool = False) -> None:
            data = body if isinstance(body, bytes) else (json.dumps(body) + "\n").encode()
            ctype = "text/plain; charset=utf-8" if isinstance(body, bytes) else "application/json"
            try:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                    self._linger = self._has_body()
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            except OSError:  # the client went away (or stopped reading): nothing left to tell it
                self.close_connection = True
                self._linger = False

        def _has_body(self) -> bool:
            return self._length is None or self._length > 0

        # --- authentication (also before answering Expect: 100-continue)
        def handle_expect_100(self):
            if self._is_health():
                return super().handle_expect_100()
            self._auth = self._authenticate()
            if not self._auth:
                self.close_connection = True
                return False
            return super().handle_expect_100()

        def _authenticate(self) -> bool:
            key = client_key(self.client_address[0],
                             self.headers.get_all(cfg.client_ip_header) if cfg.client_ip_header else None)
            # The credential is checked first, every time: the answer's timing never depends on the limiter.
            verdict = check_credentials(cfg, self.headers.get("Authorization"))
            result, wait = limiter.attempt(key, verdict)
            if result == "limited":
                log("warn", "too many failed logins: refused", client=key, method=self.command,
                    path=self._path_only(), retry_after=int(wait) + 1)
                self._reply(429, {"error": "too many failed logins; retry later"},
                            {"Retry-After": str(int(wait) + 1)}, close=self._has_body())
                return False
            if result == "ok":
                return True
            log("warn", "authentication failed", reason=result, client=key, method=self.command,
                path=self._path_only(), **({"shared_budget_spent": True} if limiter.spent() else {}))
            self._reply(401, {"error": "unauthorized"}, {"WWW-Authenticate": www_authenticate},
                        close=self._has_body())
            return False

        def _is_health(self) -> bool:
            return target_path(self.path) == "/healthz"

        # --- dispatch
        def _handle(self):
            if self._is_health():
                if self.command in ("GET", "HEAD"):
                    return self._reply(200, b"ok\n", close=self._has_body())
                return self._reply(405, {"error": "method not allowed"}, {"Allow": "GET, HEAD"}, close=self._has_body())
            if self._auth is None:
                self._auth = self._authenticate()
            if not self._auth:
                return
            if is_blocked(cfg.blocked, self.path):
                log("warn", "blocked path refused", method=self.command, path=self._path_only())
                return self._reply(403, {"error": "this path is not available through the gateway"},
                                   close=self._has_body())
            self._proxy()

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _handle

    return Handler
