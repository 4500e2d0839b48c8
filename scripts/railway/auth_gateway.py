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
Standard library only.
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
import selectors
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

MIN_PASSWORD = 12
CHUNK = 64 * 1024
MAX_REQUEST_LINE = 8192  # longer: 414 (Grafana and promtool send long queries as POST bodies)
MAX_FIELDS = 100         # header lines per request (Railway's edge forwards at most 100 either)
HEALTH_SLOTS = 4         # connections beyond GATEWAY_MAX_CONNECTIONS that only ever answer /healthz
HEALTH_HEAD_TIMEOUT = 2.0  # seconds a health-only connection gets for its head
LINGER_SECONDS = 2.0
# RFC 9110 7.6.1 hop-by-hop fields (plus the legacy ones), never forwarded in either direction.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                        "te", "trailer", "trailers", "transfer-encoding", "upgrade"})
# Request fields the gateway owns: credentials stop here; Host, framing and Expect are re-done upstream.
DROP_REQUEST = HOP_BY_HOP | {"authorization", "host", "content-length", "expect"}
# Fields that decide framing, routing or identity: a second copy is ambiguous (which one does the upstream
# or the limiter believe?), so it is a 400.
SINGLE = ("host", "content-length", "transfer-encoding", "authorization", "expect")
# Refused (403) even with the right password, unless GATEWAY_BLOCKED_PATHS says otherwise: the compose
# command enables Prometheus' lifecycle API (/-/quit, /-/reload) and its write receivers, which the private
# network needs and the internet does not; a leaked password should not stop Prometheus or inject data.
DEFAULT_BLOCKED = ("/-/quit", "/-/reload", "/api/v1/write", "/api/v1/otlp", "/api/v1/admin")


class ConfigError(Exception):
    pass


def log(level: str, msg: str, **fields) -> None:
    """One line in the stack's JSON log schema (docs/logging.md): ts, level, component, logger, msg, fields."""
    now = time.time()
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    level = {"warn": "warning"}.get(level, level)  # the schema spells Python's level names
    rec = {"ts": ts, "level": level, "component": "auth-gateway", "logger": "auth-gateway", "msg": msg}
    rec.update((k, v) for k, v in fields.items() if k not in rec)
    line = json.dumps(rec, separators=(",", ":"))
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
    header_timeout: float
    max_header_bytes: int
    max_body: int
    max_connections: int
    max_per_client: int  # connections per TCP peer address; 0 = no cap
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
        header_timeout=_number(env, "GATEWAY_HEADER_TIMEOUT", 10, 0.1),
        max_header_bytes=int(_number(env, "GATEWAY_MAX_HEADER_BYTES", 8192, 1024, integer=True)),
        max_body=int(_number(env, "GATEWAY_MAX_BODY_BYTES", 16 * 1024 * 1024, 0, integer=True)),
        max_connections=int(_number(env, "GATEWAY_MAX_CONNECTIONS", 128, 1, integer=True)),
        # Behind Railway's edge every connection comes from the edge: a cap per TCP peer would cap all
        # clients together, so it is off there unless set; the edge sends each head whole (it must parse it
        # to route and to add X-Real-IP), so trickled heads never reach us through it.
        max_per_client=int(_number(env, "GATEWAY_MAX_CONNECTIONS_PER_CLIENT", 0 if header else 32, 0, integer=True)),
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
    """Token buckets of failed logins, one per client key: a failure takes a token, and while a client's
    bucket holds less than one, every login from it is refused (429), right password or not, so a guess
    cannot be confirmed. The shared budget counts everyone's failures but never refuses anyone itself:
    someone else's guessing must not lock the real user out. While it is spent (a spray from many
    addresses), a failure empties the failing client's bucket, so each address gets one guess per refill
    instead of a burst. Bounded memory: full (idle) buckets are dropped first, then the oldest."""

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

    def attempt(self, key: str, verdict: str) -> tuple[str, float]:
        """(verdict, 0) or ("limited", seconds to wait). The caller checked the credential before asking,
        always, so the time a request takes never depends on the limiter; the check and the count happen
        under one lock, so parallel guesses cannot all pass the check before the first one is counted."""
        with self.lock:
            now = self.clock()
            wait = self._wait(key, now)
            if wait > 0:
                return "limited", wait
            if verdict not in ("ok", "missing"):  # no credentials is not a guess (a browser's first request)
                self._fail(key, now)
            return verdict, 0.0

    def retry_after(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it may try now."""
        with self.lock:
            return self._wait(key, self.clock())

    def fail(self, key: str) -> None:
        with self.lock:
            self._fail(key, self.clock())

    def spent(self) -> bool:
        """True while the shared budget is spent (many failures from everywhere)."""
        with self.lock:
            self._refill(self.glob, self.gburst, self.grate, self.clock())
            return self.glob[0] < 1

    def _wait(self, key: str, now: float) -> float:
        b = self.buckets.get(key)
        if b is None:
            return 0.0
        self._refill(b, self.burst, self.rate, now)
        return (1 - b[0]) / self.rate if b[0] < 1 else 0.0

    def _fail(self, key: str, now: float) -> None:
        self._refill(self.glob, self.gburst, self.grate, now)
        self.glob[0] = max(0.0, self.glob[0] - 1)
        b = self.buckets.pop(key, None) or [self.burst, now]
        self._refill(b, self.burst, self.rate, now)
        b[0] = min(b[0] - 1, 0.0) if self.glob[0] < 1 else b[0] - 1
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


def client_key(peer: str, header_values: list[str] | None = None) -> str:
    """The rate-limit key: the client's address (an IPv6 client by its /64). With a client-address header
    configured (Railway's edge: X-Real-IP), its LAST value: the last entry of its last line. Railway
    documents the header as the client's address set by the edge; whether the edge replaces a value the
    client sent or adds its own after it, the last value is the edge's, and anything the client wrote
    comes before it and is never read."""
    value = peer
    if header_values:
        last = header_values[-1].split(",")[-1].strip()
        if last:
            value = last
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


# ---------------------------------------------------------------------------------------------- HTTP/1.1
# The request head is read and parsed here, strictly (RFC 9112), instead of by http.server and
# http.client.parse_headers: those drop header lines after a malformed one, unfold obs-folded lines,
# accept bare CR and NUL, and know no total deadline or size for the head. Everything malformed or
# ambiguous is a 400 and the connection is closed: no guess about where the next request starts.

TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
REQUEST_LINE = re.compile(rb"(" + TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])")
FIELD_NAME = re.compile(TOKEN)
BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # CTLs but HTAB: NUL, bare CR, bare LF, ...
CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[\x09\x20-\x7e\x80-\xff]*)?")  # no 0x, +, -, _, spaces
CONTENT_LENGTH = re.compile(r"[0-9]{1,18}", re.ASCII)  # str.isdigit() would take "²" and "５"


class HttpError(Exception):
    """A request refused as it is: the status and a fixed reason (for the reply and the log; never a piece
    of the request)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


BodyError = HttpError


class ClientGone(Exception):
    pass


class ClientReader:
    """The client's side of a connection, with a buffer of our own so that every wait has a deadline
    chosen here: the whole head must arrive by one deadline (a byte now and then does not extend it),
    the body gets `idle` seconds per read. What follows a request stays buffered for the next one."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def _recv(self, timeout: float, size: int = 16384) -> bool:
        if timeout <= 0:
            raise TimeoutError
        self.sock.settimeout(timeout)
        data = self.sock.recv(size)
        self.buf += data
        return bool(data)

    def read_head(self, deadline: float, max_line: int, max_fields: int) -> list[bytes]:
        """The head's lines without their CRLF, request line first (up to four empty lines before it are
        skipped, RFC 9112 2.2). TimeoutError at the deadline, ClientGone when the client closes first."""
        lines: list[bytes] = []
        start = scan = fields = skipped = 0
        while True:
            nl = self.buf.find(b"\n", scan)
            if nl < 0:
                partial = len(self.buf) - start
                if not lines and partial > max_line:
                    raise HttpError(414, "request line too long")
                if lines and fields + partial > max_fields:
                    raise HttpError(431, "request header fields too large")
                scan = len(self.buf)
                if not self._recv(deadline - time.monotonic()):
                    raise ClientGone
                continue
            if nl == start or self.buf[nl - 1] != 0x0D:
                raise HttpError(400, "a line not ended by CRLF")
            line = bytes(self.buf[start:nl - 1])
            start = scan = nl + 1
            if not lines:
                if line:
                    if len(line) > max_line:
                        raise HttpError(414, "request line too long")
                    lines.append(line)
                else:
                    skipped += 1
                    if skipped > 4:
                        raise HttpError(400, "empty lines instead of a request")
                continue
            if not line:
                del self.buf[:start]
                return lines
            fields += len(line) + 2
            if fields > max_fields:
                raise HttpError(431, "request header fields too large")
            if len(lines) > MAX_FIELDS:
                raise HttpError(431, "too many header fields")
            lines.append(line)

    def read(self, n: int, idle: float) -> bytes:
        """Up to n bytes, b"" at the end of the stream."""
        if not self.buf:
            self._recv(idle, CHUNK)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_line(self, limit: int, idle: float) -> bytes:
        """One CRLF-ended line without its CRLF (chunk sizes, trailers)."""
        scan = 0
        while (nl := self.buf.find(b"\n", scan)) < 0:
            if len(self.buf) > limit:
                raise HttpError(400, "bad chunked body")
            scan = len(self.buf)
            if not self._recv(idle, CHUNK):
                raise HttpError(400, "truncated body")
        if nl == 0 or self.buf[nl - 1] != 0x0D or nl - 1 > limit:
            raise HttpError(400, "bad chunked body")
        line = bytes(self.buf[:nl - 1])
        del self.buf[:nl + 1]
        return line


def parse_field(line: bytes) -> tuple[str, str]:
    if line[:1] in (b" ", b"\t"):
        raise HttpError(400, "folded header line")  # obs-fold: RFC 9112 5.2 lets a server reject it
    name, sep, value = line.partition(b":")
    if not sep or not FIELD_NAME.fullmatch(name):  # also "Name :" (RFC 9112 5.1: MUST be rejected)
        raise HttpError(400, "bad header line")
    value = value.strip(b" \t")
    if BAD_VALUE.search(value):
        raise HttpError(400, "control character in a header value")
    return name.decode("ascii"), value.decode("latin-1")


def parse_request_line(line: bytes) -> tuple[str, str, str]:
    """(method, target, version), or HttpError."""
    m = REQUEST_LINE.fullmatch(line)
    if not m:
        raise HttpError(400, "bad request line")
    if m[3] != b"1":
        raise HttpError(505, "HTTP version not supported")
    version = "HTTP/1.0" if m[4] == b"0" else "HTTP/1.1"  # a later 1.x is answered as 1.1 (RFC 9110 6.2)
    return m[1].decode("ascii"), m[2].decode("ascii"), version


def body_length(version: str, fields: list[tuple[str, str]]) -> int | None:
    """The body's length from the framing fields, None for chunked; HttpError for anything ambiguous."""
    names = [k.lower() for k, _ in fields]
    for single in SINGLE:
        if names.count(single) > 1:
            raise HttpError(400, f"more than one {single} header")
    if version == "HTTP/1.1" and "host" not in names:
        raise HttpError(400, "no Host header")
    values = {k.lower(): v for k, v in fields}
    te, cl = values.get("transfer-encoding"), values.get("content-length")
    if te is not None:
        if cl is not None:  # RFC 9112 6.3: a smuggling attempt or a broken client either way
            raise HttpError(400, "both Transfer-Encoding and Content-Length")
        if version != "HTTP/1.1" or te.lower() != "chunked":  # "chunked, identity", "gzip", "xchunked"...
            raise HttpError(400, "unsupported transfer-encoding")
        return None
    if cl is None:
        return 0
    if not CONTENT_LENGTH.fullmatch(cl):
        raise HttpError(400, "bad content-length")
    return int(cl)


# ---------------------------------------------------------------------------------------------- proxy

def make_handler(cfg: Config, limiter: FailureLimiter):
    www_authenticate = f'Basic realm="{cfg.realm}", charset="UTF-8"'

    class Handler(BaseHTTPRequestHandler):
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

    return Handler


class Admission:
    """Who gets a connection slot. `general` slots serve anything; HEALTH_SLOTS more only ever answer
    /healthz, so Railway's healthcheck gets through while every general slot is held (by clients
    trickling their heads, say); and one TCP peer address holds at most `per_client` of them all."""

    def __init__(self, general: int, per_client: int):
        self.general, self.per_client = general, per_client
        self.spare = max(2, general // 8)  # fewer general slots free than this: idle connections yield
        self.lock = threading.Lock()
        self.used = {"general": 0, "health": 0}
        self.by_peer: dict[str, int] = {}
        # Readable while slots run short: idle connections wait on it next to their socket, so they
        # give their slot up at once instead of polling.
        self.pressure_fd, self._signal = os.pipe()
        self._signalled = False

    def admit(self, peer: str) -> str | int:
        """"general" or "health" (a slot is taken), else the status to refuse with: 429 when this address
        holds too many connections, 503 when no slot is free."""
        with self.lock:
            if self.per_client and self.by_peer.get(peer, 0) >= self.per_client:
                return 429
            if self.used["general"] < self.general:
                kind = "general"
            elif self.used["health"] < HEALTH_SLOTS:
                kind = "health"
            else:
                return 503
            self.used[kind] += 1
            self.by_peer[peer] = self.by_peer.get(peer, 0) + 1
            self._update()
            return kind

    def release(self, kind: str, peer: str) -> None:
        with self.lock:
            self.used[kind] -= 1
            left = self.by_peer.get(peer, 1) - 1
            if left > 0:
                self.by_peer[peer] = left
            else:
                self.by_peer.pop(peer, None)
            self._update()

    def _update(self) -> None:
        short = self.general - self.used["general"] < self.spare
        if short != self._signalled:
            if short:
                os.write(self._signal, b"!")
            else:
                os.read(self.pressure_fd, 1)
            self._signalled = short


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
