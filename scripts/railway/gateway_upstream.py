"""The auth gateway's forwarding: the client's body read (bounded), the request sent to the upstream and
its response streamed back."""
from __future__ import annotations

import http.client
import socket

from gateway_config import Config, log
from gateway_http import CHUNK, CHUNK_LINE, BodyError, HttpError, parse_field

# RFC 9110 7.6.1 hop-by-hop fields (plus the legacy ones), never forwarded in either direction.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                        "te", "trailer", "trailers", "transfer-encoding", "upgrade"})
# Request fields the gateway owns: credentials stop here; Host, framing and Expect are re-done upstream.
DROP_REQUEST = HOP_BY_HOP | {"authorization", "host", "content-length", "expect"}


def make_forwarding(cfg: Config) -> type:
    """The handler's methods that talk to the upstream (a base class of gateway_proxy's Handler)."""

    class Forwarding:
        # --- the request body
        def _read(self, n: int) -> bytes:
            try:
                return self.rfile.read(n, cfg.client_timeout)
            except OSError:  # the client stalled (timeout) or went away mid-body
                raise HttpError(408, "request body not received in time") from None

        def _line(self, limit: int) -> bytes:
            try:
                return self.rfile.read_line(limit, cfg.client_timeout)
            except OSError:
                raise HttpError(408, "request body not received in time") from None

        def _read_chunked(self):
            total = 0
            while True:
                m = CHUNK_LINE.fullmatch(self._line(1024))
                if not m:
                    raise HttpError(400, "bad chunked body")
                size = int(m[1], 16)
                if size == 0:
                    break
                total += size
                if total > cfg.max_body:
                    raise HttpError(413, "request body too large")
                yield from self._read_exactly(size)
                if b"".join(self._read_exactly(2)) != b"\r\n":  # chunk data ends with CRLF, exactly
                    raise HttpError(400, "bad chunked body")
            trailers = 0
            while line := self._line(cfg.max_header_bytes):  # trailers: checked, then dropped
                trailers += len(line) + 2
                if trailers > cfg.max_header_bytes:
                    raise HttpError(431, "request trailer fields too large")
                parse_field(line)

        def _read_exactly(self, n: int):
            """n bytes of the client's body in pieces of at most CHUNK; a short body is a 400."""
            while n:
                data = self._read(min(n, CHUNK))
                if not data:
                    raise HttpError(400, "truncated body")
                n -= len(data)
                yield data

        def _body(self):
            """(length, iterator) of the client's body; length None when it came chunked."""
            if self._length is None:
                return None, self._read_chunked()
            if self._length > cfg.max_body:
                raise HttpError(413, "request body too large")
            return self._length, self._read_exactly(self._length)

        def _proxy(self):
            try:
                length, body = self._body()
            except BodyError as e:
                return self._reply(e.status, {"error": str(e)}, close=True)
            if length is None:  # chunked in: buffered (bounded by max_body) and sent with a length
                try:
                    data = b"".join(body)
                except BodyError as e:
                    return self._reply(e.status, {"error": str(e)}, close=True)
                length, body = len(data), iter((data,))
            conn_cls = http.client.HTTPSConnection if cfg.upstream_scheme == "https" else http.client.HTTPConnection
            conn = conn_cls(cfg.upstream_host, cfg.upstream_port, timeout=cfg.connect_timeout)
            body_started = False
            try:
                try:
                    conn.connect()
                    conn.sock.settimeout(cfg.upstream_timeout)
                    conn.putrequest(self.command, cfg.upstream_prefix + self.path, skip_host=True,
                                    skip_accept_encoding=True)
                    conn.putheader("Host", f"{cfg.upstream_host}:{cfg.upstream_port}"
                                   if ":" not in cfg.upstream_host else f"[{cfg.upstream_host}]:{cfg.upstream_port}")
                    connection_named = {t.strip().lower() for v in self.headers.get_all("Connection") or []
                                        for t in v.split(",")}
                    for k, v in self.headers.items():
                        lk = k.lower()
                        if lk in DROP_REQUEST or lk in connection_named or lk == "x-forwarded-for":
                            continue
                        conn.putheader(k, v)
                    xff = ", ".join(self.headers.get_all("X-Forwarded-For") or [])
                    conn.putheader("X-Forwarded-For", f"{xff}, {self.client_address[0]}" if xff else self.client_address[0])
                    if length or self.command in ("POST", "PUT", "PATCH"):
                        conn.putheader("Content-Length", str(length))
                    conn.endheaders()
                    body_started = True
                    for data in body:
                        conn.send(data)
                    resp = conn.getresponse()
                except BodyError as e:
                    return self._reply(e.status, {"error": str(e)}, close=True)
                except ValueError:  # a header value http.client refuses (CR/LF)
                    return self._reply(400, {"error": "bad request header"}, close=True)
                except (TimeoutError, socket.timeout):
                    log("error", "upstream timed out", upstream=cfg.upstream_origin, method=self.command,
                        path=self._path_only())
                    return self._reply(504, {"error": "upstream timed out"}, close=body_started or self._has_body())
                except (OSError, http.client.HTTPException) as e:
                    log("error", "upstream unavailable", upstream=cfg.upstream_origin, method=self.command,
                        path=self._path_only(), error=e.__class__.__name__, detail=str(e)[:200])
                    return self._reply(502, {"error": "upstream unavailable"}, close=body_started or self._has_body())
                self._relay(resp)
            finally:
                conn.close()

        def _relay(self, resp: http.client.HTTPResponse) -> None:
            self.send_response_only(resp.status, resp.reason)
            connection_named = {t.strip().lower() for v in resp.headers.get_all("Connection") or [] for t in v.split(",")}
            length = resp.headers.get("Content-Length")
            for k, v in resp.headers.items():
                lk = k.lower()
                if lk in HOP_BY_HOP or lk in connection_named:
                    continue
                if lk == "location" and v.startswith(cfg.upstream_origin):
                    v = v[len(cfg.upstream_origin):] or "/"
                    if cfg.upstream_prefix and v.startswith(cfg.upstream_prefix):
                        v = v[len(cfg.upstream_prefix):] or "/"
                self.send_header(k, v)
            no_body = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
            chunked = False
            if not no_body and length is None:
                if self.request_version == "HTTP/1.1":
                    self.send_header("Transfer-Encoding", "chunked")
                    chunked = True
                else:
                    self.send_header("Connection", "close")
                    self.close_connection = True
            self.end_headers()
            if no_body:
                return
            try:
                while True:
                    data = resp.read1(CHUNK)
                    if not data:
                        break
                    if chunked:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    else:
                        self.wfile.write(data)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
            except (OSError, http.client.HTTPException) as e:
                # headers are out: the only honest signal left is closing the connection
                log("error", "response stream interrupted", method=self.command, path=self._path_only(),
                    error=e.__class__.__name__)
                self.close_connection = True
            else:
                if length is not None and resp.length:  # upstream sent less than it announced
                    self.close_connection = True

    return Forwarding
