#!/usr/bin/env python3
"""auth-gateway: an authenticating reverse proxy that gives Prometheus or Alertmanager a public domain on
Railway while they themselves stay private (docs/railway.md, "Exposing Prometheus or Alertmanager").

GET|HEAD /healthz   200 "ok", no credentials, never proxied (Railway's healthcheck).
anything else       HTTP Basic auth required (401 + WWW-Authenticate otherwise); then the request (method,
                    path, query, body, end-to-end headers minus Authorization) is streamed to the upstream and
                    the response streamed back. Upstream unreachable: 502 JSON; too slow: 504 JSON.

Failed logins are rate limited per client (a token bucket per IP, plus one for all clients together): when
a bucket is empty every login from there gets 429 with Retry-After, right password or not, so guessing is
slow. The password is read from GATEWAY_PASSWORD or GATEWAY_PASSWORD_FILE, kept only as a salted SHA-256
digest and compared in constant time; without one (or with fewer than 12 characters) the gateway refuses
to start with one JSON line naming the variable: it is never an open proxy.

Environment (docs/railway.md has the table):
  GATEWAY_UPSTREAM            required, e.g. http://prometheus.railway.internal:9090 (a path is a prefix)
  GATEWAY_USER                default "admin"
  GATEWAY_PASSWORD | GATEWAY_PASSWORD_FILE   exactly one; at least 12 characters
  PORT                        listen port (Railway sets it; default 8080); GATEWAY_LISTEN_HOST default "::"
  GATEWAY_REALM, GATEWAY_CONNECT_TIMEOUT, GATEWAY_UPSTREAM_TIMEOUT, GATEWAY_CLIENT_TIMEOUT,
  GATEWAY_MAX_BODY_BYTES, GATEWAY_MAX_CONNECTIONS, GATEWAY_AUTH_FAILURE_BURST,
  GATEWAY_AUTH_FAILURES_PER_MINUTE, GATEWAY_AUTH_GLOBAL_FAILURE_BURST,
  GATEWAY_AUTH_GLOBAL_FAILURES_PER_MINUTE, GATEWAY_CLIENT_IP_HEADER,
  GATEWAY_BLOCKED_PATHS (default /-/quit,/-/reload,/api/v1/write,/api/v1/otlp,/api/v1/admin: 403)
Logs: one JSON line on stderr per failure (and one at start). Never the password, never the
Authorization header, never a query string. Standard library only.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import http.client
import ipaddress
import json
import os
import posixpath
import re
import secrets
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

MIN_PASSWORD = 12
CHUNK = 64 * 1024
# RFC 9110 7.6.1 hop-by-hop fields (plus the legacy ones), never forwarded in either direction.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                        "te", "trailer", "trailers", "transfer-encoding", "upgrade"})
# Request fields the gateway owns: credentials stop here; Host, framing and Expect are re-done upstream.
DROP_REQUEST = HOP_BY_HOP | {"authorization", "host", "content-length", "expect"}
# Refused (403) even with the right password, unless GATEWAY_BLOCKED_PATHS says otherwise: the compose
# command enables Prometheus' lifecycle API (/-/quit, /-/reload) and its write receivers, which the private
# network needs and the internet does not; a leaked password should not stop Prometheus or inject data.
DEFAULT_BLOCKED = ("/-/quit", "/-/reload", "/api/v1/write", "/api/v1/otlp", "/api/v1/admin")


class ConfigError(Exception):
    pass


def log(level: str, msg: str, **fields) -> None:
    line = json.dumps({"ts": round(time.time(), 3), "level": level, "logger": "auth-gateway", "msg": msg, **fields},
                      separators=(",", ":"))
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


# ---------------------------------------------------------------------------------------------- config

@dataclass(frozen=True)
class Config:
    upstream_scheme: str
    upstream_host: str
    upstream_port: int
    upstream_prefix: str
    upstream_origin: str
    user_digest: bytes
    password_digest: bytes
    salt: bytes
    host: str
    port: int
    realm: str
    connect_timeout: float
    upstream_timeout: float
    client_timeout: float
    max_body: int
    max_connections: int
    burst: float
    per_minute: float
    global_burst: float
    global_per_minute: float
    client_ip_header: str  # "" = the TCP peer address
    blocked: tuple[str, ...] = DEFAULT_BLOCKED


def digest(salt: bytes, value: bytes) -> bytes:
    return hashlib.sha256(salt + value).digest()


def _number(env: dict, name: str, default: float, minimum: float, integer: bool = False) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    return value


def _password(env: dict) -> bytes:
    direct = env.get("GATEWAY_PASSWORD", "")
    path = env.get("GATEWAY_PASSWORD_FILE", "")
    if direct and path:
        raise ConfigError("both GATEWAY_PASSWORD and GATEWAY_PASSWORD_FILE are set: set exactly one")
    name = "GATEWAY_PASSWORD"
    if path:
        name = "GATEWAY_PASSWORD_FILE"
        try:
            with open(path, "rb") as f:
                raw = f.read(4096)
        except OSError as e:
            raise ConfigError(f"GATEWAY_PASSWORD_FILE cannot be read ({e.strerror or e.__class__.__name__}): "
                              "refusing to start without a password") from None
        if raw.endswith(b"\r\n"):
            raw = raw[:-2]
        elif raw.endswith(b"\n"):
            raw = raw[:-1]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError("GATEWAY_PASSWORD_FILE is not UTF-8 text") from None
    else:
        text = direct
    if not text:
        raise ConfigError("GATEWAY_PASSWORD is not set (nor GATEWAY_PASSWORD_FILE): refusing to start an open proxy. "
                          "Set it as a Railway variable on this service (at least 12 characters)")
    if len(text) < MIN_PASSWORD:
        raise ConfigError(f"{name} is too short (fewer than {MIN_PASSWORD} characters): refusing to start")
    return text.encode("utf-8")


def load_config(env: dict) -> Config:
    upstream = env.get("GATEWAY_UPSTREAM", "").strip()
    if not upstream:
        raise ConfigError("GATEWAY_UPSTREAM is not set: give the private URL to protect, "
                          "e.g. http://prometheus.railway.internal:9090")
    u = urlsplit(upstream)
    try:
        port = u.port
    except ValueError:
        port = -1
    if u.scheme not in ("http", "https") or not u.hostname or port == -1 or u.query or u.fragment:
        raise ConfigError(f"GATEWAY_UPSTREAM={upstream!r} is not an http(s)://host[:port][/prefix] URL")
    if u.username or u.password:
        raise ConfigError("GATEWAY_UPSTREAM must not carry credentials")
    port = port or (443 if u.scheme == "https" else 80)
    user = env.get("GATEWAY_USER", "admin")
    if not user or ":" in user or any(ord(c) < 32 for c in user):
        raise ConfigError("GATEWAY_USER must be non-empty, without ':' or control characters")
    pw = _password(env)
    salt = secrets.token_bytes(16)
    realm = env.get("GATEWAY_REALM", "obs-stack")
    if '"' in realm or "\\" in realm or any(ord(c) < 32 for c in realm):
        raise ConfigError("GATEWAY_REALM must not contain quotes, backslashes or control characters")
    header = env.get("GATEWAY_CLIENT_IP_HEADER")
    if header is None:  # Railway's edge puts the client's address in X-Real-IP
        on_railway = any(env.get(k) for k in ("RAILWAY_PUBLIC_DOMAIN", "RAILWAY_PRIVATE_DOMAIN", "RAILWAY_ENVIRONMENT"))
        header = "X-Real-IP" if on_railway else ""
    header = "" if header.strip().lower() in ("", "none", "-") else header.strip()
    host = env.get("GATEWAY_LISTEN_HOST", "::").strip().strip("[]") or "::"
    blocked_raw = env.get("GATEWAY_BLOCKED_PATHS")
    if blocked_raw is None:
        blocked = DEFAULT_BLOCKED
    elif blocked_raw.strip().lower() in ("", "none", "-"):
        blocked = ()
    else:
        blocked = tuple(clean_path(b.strip()) for b in blocked_raw.split(",") if b.strip())
        if any(not b.startswith("/") or b == "/" for b in blocked):
            raise ConfigError("GATEWAY_BLOCKED_PATHS must be comma-separated path prefixes like /-/quit (not /)")
    return Config(
        upstream_scheme=u.scheme, upstream_host=u.hostname, upstream_port=port,
        upstream_prefix=u.path.rstrip("/"), upstream_origin=f"{u.scheme}://{u.netloc}",
        user_digest=digest(salt, user.encode("utf-8")), password_digest=digest(salt, pw), salt=salt,
        host=host, port=int(_number(env, "PORT", 8080, 0, integer=True)), realm=realm,
        connect_timeout=_number(env, "GATEWAY_CONNECT_TIMEOUT", 5, 0.1),
        upstream_timeout=_number(env, "GATEWAY_UPSTREAM_TIMEOUT", 150, 0.1),
        client_timeout=_number(env, "GATEWAY_CLIENT_TIMEOUT", 75, 0.1),
        max_body=int(_number(env, "GATEWAY_MAX_BODY_BYTES", 16 * 1024 * 1024, 0, integer=True)),
        max_connections=int(_number(env, "GATEWAY_MAX_CONNECTIONS", 128, 1, integer=True)),
        burst=_number(env, "GATEWAY_AUTH_FAILURE_BURST", 10, 1),
        per_minute=_number(env, "GATEWAY_AUTH_FAILURES_PER_MINUTE", 6, 0.001),
        global_burst=_number(env, "GATEWAY_AUTH_GLOBAL_FAILURE_BURST", 100, 1),
        global_per_minute=_number(env, "GATEWAY_AUTH_GLOBAL_FAILURES_PER_MINUTE", 60, 0.001),
        client_ip_header=header, blocked=blocked,
    )


def clean_path(path: str) -> str:
    """The path the upstream routes on: percent-decoded (Go decodes before routing), slashes collapsed,
    dot segments resolved, lower case (for a case-insensitive prefix match)."""
    p = re.sub(r"/+", "/", "/" + unquote(path))
    p = posixpath.normpath(p)
    return ("/" if p in (".", "") else p).lower()


def target_path(target: str) -> str:
    """The path of an origin-form request target ("//x" is a path here, not a host as urlsplit has it)."""
    return target.split("?", 1)[0].split("#", 1)[0]


def is_blocked(blocked: tuple[str, ...], target: str) -> bool:
    p = clean_path(target_path(target))
    return any(p.startswith(b) for b in blocked)  # a prefix match: /api/v1/writer is refused too


# ---------------------------------------------------------------------------------------------- auth

class FailureLimiter:
    """Token buckets of failed logins: one per client key and one shared by all. A failure takes a
    token; while either bucket has less than one, the client is refused (429) before its credentials
    are even looked at. Bounded memory: full (idle) buckets are dropped first, then the oldest."""

    def __init__(self, burst: float, per_minute: float, global_burst: float, global_per_minute: float,
                 max_keys: int = 10000, clock=time.monotonic):
        self.burst, self.rate = burst, per_minute / 60.0
        self.gburst, self.grate = global_burst, global_per_minute / 60.0
        self.max_keys = max_keys
        self.clock = clock
        self.lock = threading.Lock()
        self.buckets: dict[str, list[float]] = {}
        self.glob = [global_burst, clock()]

    @staticmethod
    def _refill(b: list[float], cap: float, rate: float, now: float) -> None:
        b[0] = min(cap, b[0] + (now - b[1]) * rate)
        b[1] = now

    def attempt(self, key: str, verify) -> tuple[str, float]:
        """(verify()'s result, 0) or ("limited", seconds to wait). The check and the bookkeeping happen
        under one lock, so parallel guesses cannot all pass the check before the first one is counted
        (verify is two SHA-256 digests: microseconds)."""
        with self.lock:
            now = self.clock()
            wait = self._wait(key, now)
            if wait > 0:
                return "limited", wait
            result = verify()
            if result not in ("ok", "missing"):  # no credentials is not a guess (a browser's first request)
                self._fail(key, now)
            return result, 0.0

    def retry_after(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it may try now."""
        with self.lock:
            return self._wait(key, self.clock())

    def fail(self, key: str) -> None:
        with self.lock:
            self._fail(key, self.clock())

    def _wait(self, key: str, now: float) -> float:
        self._refill(self.glob, self.gburst, self.grate, now)
        wait = (1 - self.glob[0]) / self.grate if self.glob[0] < 1 else 0.0
        b = self.buckets.get(key)
        if b is not None:
            self._refill(b, self.burst, self.rate, now)
            if b[0] < 1:
                wait = max(wait, (1 - b[0]) / self.rate)
        return wait

    def _fail(self, key: str, now: float) -> None:
        self._refill(self.glob, self.gburst, self.grate, now)
        self.glob[0] -= 1
        b = self.buckets.pop(key, None) or [self.burst, now]
        self._refill(b, self.burst, self.rate, now)
        b[0] -= 1
        self.buckets[key] = b  # re-inserted: dict order is least recently failed first
        if len(self.buckets) > self.max_keys:
            for k in [k for k, v in self.buckets.items() if v[0] + (now - v[1]) * self.rate >= self.burst]:
                del self.buckets[k]
            while len(self.buckets) > self.max_keys:
                del self.buckets[next(iter(self.buckets))]


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


def client_key(peer: str, header_value: str | None, header_name: str) -> str:
    """The rate-limit key: the client's address (an IPv6 client by its /64), from the configured header
    when present (Railway's edge: X-Real-IP; X-Forwarded-For: its last entry, the one the edge added)."""
    value = peer
    if header_name and header_value:
        parts = [p.strip() for p in header_value.split(",") if p.strip()]
        if parts:
            value = parts[-1] if header_name.lower() == "x-forwarded-for" else parts[0]
    value = value[:64]
    try:
        ip = ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return value
    if ip.version == 6 and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


# ---------------------------------------------------------------------------------------------- proxy

class BodyError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def make_handler(cfg: Config, limiter: FailureLimiter):
    www_authenticate = f'Basic realm="{cfg.realm}", charset="UTF-8"'

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "obs-auth-gateway/1"
        timeout = cfg.client_timeout  # idle client sockets (slowloris) are dropped
        _auth: bool | None = None
        _linger = False

        def finish(self):
            super().finish()
            if self._linger:
                # Refused before its body was read (401, 413, ...): stop sending, then read and drop what
                # the client still sends for a moment, so it sees the answer instead of a reset (a
                # "lingering close", as nginx does).
                try:
                    self.connection.shutdown(socket.SHUT_WR)
                    end, left = time.monotonic() + 2, cfg.max_body + (1 << 20)
                    while left > 0 and time.monotonic() < end:
                        self.connection.settimeout(max(0.05, end - time.monotonic()))
                        data = self.connection.recv(CHUNK)
                        if not data:
                            break
                        left -= len(data)
                except OSError:
                    pass

        # --- logging: JSON, failures only; BaseHTTPRequestHandler's own messages carry no headers.
        def log_request(self, code="-", size="-"):
            pass

        def log_message(self, fmt, *args):
            if fmt.startswith("Request timed out"):  # an idle keep-alive connection: not a failure
                return
            log("warn", "http error", client=self.client_address[0], detail=(fmt % args)[:200])

        def _path_only(self) -> str:
            return target_path(self.path)[:200]

        def _reply(self, code: int, body: dict | bytes, headers: dict | None = None, close: bool = False) -> None:
            data = body if isinstance(body, bytes) else (json.dumps(body) + "\n").encode()
            ctype = "text/plain; charset=utf-8" if isinstance(body, bytes) else "application/json"
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

        def _has_body(self) -> bool:
            return bool(self.headers.get("Transfer-Encoding")) or self.headers.get("Content-Length", "0").strip() not in ("", "0")

        # --- authentication (also before answering Expect: 100-continue)
        def parse_request(self):
            self._auth = None
            return super().parse_request()

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
                             self.headers.get(cfg.client_ip_header) if cfg.client_ip_header else None,
                             cfg.client_ip_header)
            header = self.headers.get("Authorization")
            result, wait = limiter.attempt(key, lambda: check_credentials(cfg, header))
            if result == "limited":
                log("warn", "too many failed logins: refused", client=key, method=self.command,
                    path=self._path_only(), retry_after=int(wait) + 1)
                self._reply(429, {"error": "too many failed logins; retry later"},
                            {"Retry-After": str(int(wait) + 1)}, close=self._has_body())
                return False
            if result == "ok":
                return True
            log("warn", "authentication failed", reason=result, client=key, method=self.command,
                path=self._path_only())
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
            if not self.path.startswith("/"):  # absolute-form: this is no forward proxy
                return self._reply(400, {"error": "bad request target"}, close=True)
            if is_blocked(cfg.blocked, self.path):
                log("warn", "blocked path refused", method=self.command, path=self._path_only())
                return self._reply(403, {"error": "this path is not available through the gateway"},
                                   close=self._has_body())
            self._proxy()

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _handle

        # --- the request body
        def _read(self, n: int, line: bool = False) -> bytes:
            try:
                return self.rfile.readline(n) if line else self.rfile.read(n)
            except OSError:  # the client stalled (timeout) or went away mid-body
                raise BodyError(408, "request body not received in time") from None

        def _read_chunked(self):
            total = 0
            while True:
                line = self._read(1026, line=True)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise BodyError(400, "bad chunked body") from None
                if size < 0:
                    raise BodyError(400, "bad chunked body")
                if size == 0:
                    while self._read(8192, line=True) not in (b"\r\n", b"\n", b""):
                        pass  # trailers: dropped
                    return
                total += size
                if total > cfg.max_body:
                    raise BodyError(413, "request body too large")
                yield from self._read_exactly(size)
                self._read(3, line=True)

        def _read_exactly(self, n: int):
            """n bytes of the client's body in pieces of at most CHUNK; a short body is a 400."""
            while n:
                data = self._read(min(n, CHUNK))
                if not data:
                    raise BodyError(400, "truncated body")
                n -= len(data)
                yield data

        def _body(self):
            """(length, iterator) of the client's body; length None when it came chunked."""
            te = self.headers.get("Transfer-Encoding", "").strip().lower()
            if te:
                if te != "chunked":
                    raise BodyError(501, "unsupported transfer-encoding")
                return None, self._read_chunked()
            cl = self.headers.get_all("Content-Length") or []
            if not cl:
                return 0, iter(())
            if len(set(v.strip() for v in cl)) != 1 or not cl[0].strip().isdigit():
                raise BodyError(400, "bad content-length")
            n = int(cl[0])
            if n > cfg.max_body:
                raise BodyError(413, "request body too large")
            return n, self._read_exactly(n)

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

    return Handler


def make_server(cfg: Config, limiter: FailureLimiter | None = None) -> ThreadingHTTPServer:
    limiter = limiter or FailureLimiter(cfg.burst, cfg.per_minute, cfg.global_burst, cfg.global_per_minute)
    v6 = ":" in cfg.host
    slots = threading.BoundedSemaphore(cfg.max_connections)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if v6 else socket.AF_INET

        def server_bind(self):
            if v6:  # "::": dual stack, IPv4 accepted too (Railway's private network may be IPv6-only)
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            super().server_bind()

        def process_request(self, request, client_address):
            if not slots.acquire(blocking=False):
                log("warn", "connection limit reached: connection dropped", client=client_address[0])
                self.shutdown_request(request)
                return
            super().process_request(request, client_address)

        def process_request_thread(self, request, client_address):
            try:
                super().process_request_thread(request, client_address)
            finally:
                slots.release()

        def handle_error(self, request, client_address):
            log("error", "connection handler failed", client=client_address[0], error=sys.exc_info()[0].__name__)

    return Server((cfg.host, cfg.port), make_handler(cfg, limiter))


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
        client_ip_header=cfg.client_ip_header or None)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
