"""Settings of ``obs-bridge ingest`` (the one public entry for platform pushes; ingest.py), from the
environment, typed. Secrets come from files re-read on every request (a rotated secret needs no restart); a
configured file that is missing, empty or unreadable refuses that route's pushes (503) and never opens it."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Mapping

from obs_bridges import config, log

DEFAULT_PORT = 9610
DEFAULT_METRICS_PORT = 9606
# Bodies held in memory at once across all requests: a flood of large pushes waits its turn (503 +
# Retry-After) instead of growing the process (measured: exporters/bench/bench_ingest_flood.py).
DEFAULT_INFLIGHT_BYTES = 24 * 1024 * 1024
DEFAULT_RPS = 50.0
BURST_SECONDS = 10
_PROJECT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class IngestSettings:
    listen_addr: str
    port: int
    metrics_port: int
    otlp_endpoint: str  # the collector's OTLP/HTTP base (Vercel logs, Vercel traces)
    supabase_otlp_url: str  # the collector's internal Supabase OTLP/HTTP logs receiver (both Supabase drains)
    github_webhook_url: str | None  # the GitHub bridge's receiver; None: the route is off
    vercel_secrets: config.SecretSource | None  # one or more drain secrets, one per line
    vercel_verify: config.SecretSource | None  # the x-vercel-verify token (optional)
    supabase_tokens: config.SecretSource | None  # lines "<project> <token>"
    max_rps: float  # per route
    burst: int
    inflight_bytes: int
    demo: bool


class DemoFallback:
    """NAME(_FILE), or in demo mode, while that is unset, missing or empty, the simulator's per-start OBS_DEMO_*
    file. Decided on every read: a real secret written later takes over without a restart, and an unreadable
    real file is never passed over for the demo one."""

    def __init__(self, real: config.SecretSource, demo: config.SecretSource):
        self.real, self.demo = real, demo
        self.name = real.name
        self.configured = True

    def read(self) -> config.SecretRead:
        r = self.real.read()
        if r.state in ("unset", "missing", "empty"):
            self.name = self.demo.name
            return self.demo.read()
        self.name = self.real.name
        return r


def _secret(env: Mapping[str, str], name: str, demo_name: str, demo: bool):
    """The route's secret source, or None when the route is off (nothing configured)."""
    src = config.SecretSource(env, name)
    alt = config.SecretSource(env, demo_name)
    if demo and alt.configured:
        return DemoFallback(src, alt)
    return src if src.configured else None


def load_settings(env: Mapping[str, str]) -> IngestSettings:
    demo = bool((env.get(config.DEMO_ENV) or "").strip())
    rps = config.env_float(env, "INGEST_MAX_REQUESTS_PER_SECOND", DEFAULT_RPS, 1, 10000)
    github = (env.get("INGEST_GITHUB_WEBHOOK_URL") or "").strip() or None
    if github:
        config.check_url("INGEST_GITHUB_WEBHOOK_URL", github)
    s = IngestSettings(
        listen_addr=(env.get("INGEST_LISTEN_ADDR") or env.get("LISTEN_ADDR") or "").strip() or "0.0.0.0",
        port=config.env_int(env, "INGEST_PORT", DEFAULT_PORT, 1, 65535),
        metrics_port=config.env_int(env, "LISTEN_PORT", DEFAULT_METRICS_PORT, 1, 65535),
        otlp_endpoint=config.env_url(env, "INGEST_OTLP_ENDPOINT", "http://otelcol:4318"),
        supabase_otlp_url=config.env_url(env, "INGEST_SUPABASE_OTLP_URL", "http://otelcol:4319/v1/logs"),
        github_webhook_url=github,
        vercel_secrets=_secret(env, "VERCEL_DRAIN_SECRET", "OBS_DEMO_VERCEL_DRAIN_SECRET", demo),
        vercel_verify=_secret(env, "VERCEL_DRAIN_VERIFY_TOKEN", "OBS_DEMO_VERCEL_DRAIN_VERIFY_TOKEN", demo),
        supabase_tokens=_secret(env, "SUPABASE_DRAIN_TOKENS", "OBS_DEMO_SUPABASE_DRAIN_TOKENS", demo),
        max_rps=rps, burst=max(1, int(BURST_SECONDS * rps)),
        inflight_bytes=config.env_int(env, "INGEST_MAX_INFLIGHT_BYTES", DEFAULT_INFLIGHT_BYTES,
                                      1024 * 1024, 1024 * 1024 * 1024),
        demo=demo)
    if s.port == s.metrics_port:
        raise config.ConfigError(f"INGEST_PORT and LISTEN_PORT are both {s.port}: the public routes and "
                                 "/metrics need their own ports (the public one is the only one to expose)")
    return s


class SecretsProblem(Exception):
    """A configured secret file cannot be used; the text names the variable and the fix, never a value."""


def vercel_secrets(src: config.SecretSource) -> list[bytes]:
    """Every drain secret in the file (one per line: each Vercel drain has its own; two during a rotation)."""
    r = src.read()
    if r.value is None:
        raise SecretsProblem(r.problem or f"{src.name} cannot be read")
    out = []
    for line in r.value.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            log.register_secret(line)
            out.append(line.encode())
    if not out:
        raise SecretsProblem(f"{src.name}_FILE holds no secret: put each Vercel drain's secret on its own line")
    return out


def supabase_tokens(src: config.SecretSource) -> list[tuple[str, bytes]]:
    """(project name, token) per line "<project> <token>": the token a Supabase drain sends as
    `Authorization: Bearer <token>` says which project's logs these are."""
    r = src.read()
    if r.value is None:
        raise SecretsProblem(r.problem or f"{src.name} cannot be read")
    out = []
    for n, line in enumerate(r.value.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or not _PROJECT.match(parts[0]) or len(parts[1]) < 16:
            raise SecretsProblem(f"{src.name}_FILE line {n} is not '<project> <token>' (project: lower-case "
                                 "letters, digits, - or _; token: at least 16 characters)")
        log.register_secret(parts[1])
        out.append((parts[0], parts[1].encode()))
    if not out:
        raise SecretsProblem(f"{src.name}_FILE holds no token: add a line '<project> <token>' per Supabase project")
    return out


def match_token(tokens: list[tuple[str, bytes]], given: bytes) -> str | None:
    """The project whose token equals `given`, comparing against every token in constant time each (no
    early exit: the time taken does not say which token came close)."""
    found = None
    for project, token in tokens:
        if hmac.compare_digest(token, given):
            found = project
    return found
