"""The auth gateway's configuration (from the environment, checked before it listens) and its log line."""
from __future__ import annotations

import hashlib
import json
import secrets
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway_http import clean_path

MIN_PASSWORD = 12
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
