"""The simulator as Vercel's and Supabase's drains: it pushes into the ingest (`obs-bridge ingest`, public port
9610) what the platforms would, in their real shapes (drain_payloads.py), for the world's projects:

    POST <url>/vercel/logs                  log drain batches, JSON array or NDJSON, x-vercel-signature
    POST <url>/vercel/speed-insights        Speed Insights batches (JSON array), x-vercel-signature
    POST <url>/supabase/v1/logs             Supabase's OTLP drain: protobuf, gzip, Authorization: Bearer
    POST <url>/supabase/loki/api/v1/push    Supabase's Loki drain: JSON, gzip, Authorization: Bearer

Settings (args.py): --drains-url / SIM_INGEST_URL (the ingest's base URL, e.g. http://ingest:9610; unset: no
drains), --drains-secret-dir / SIM_DRAIN_DEMO_DIR (required with a URL), --drains-interval /
SIM_DRAIN_INTERVAL_SECONDS (default 10: every kind is pushed once per interval), --drains-batch /
SIM_DRAIN_BATCH_RECORDS (records per push, default 20), --drains / SIM_DRAINS (the kinds, comma-separated,
default all of vercel-logs,speed-insights,supabase-otlp,supabase-loki).

Credentials are random at every start and written (0600, atomically) into the secret directory, in the
formats the ingest reads:
    vercel-drain-secret     two lines: the log drain's secret, the Speed Insights drain's secret
                            (the ingest: VERCEL_DRAIN_SECRET_FILE or, in demo mode, OBS_DEMO_VERCEL_DRAIN_SECRET_FILE)
    supabase-drain-tokens   "<project name> <token>" per Supabase project of the world
                            (SUPABASE_DRAIN_TOKENS_FILE or OBS_DEMO_SUPABASE_DRAIN_TOKENS_FILE)
Like the platforms on a dead endpoint, nothing is retried here; every push is counted by what the ingest
answered (2xx accepted, 4xx refused, 5xx or unreachable failed). GET /_control/drains shows the counts and
the recent pushes; POST /_control/drains {"kind": <kind>, "auth": "valid"|"forged"|"none"} pushes one batch
now (forged: signed with another secret / another token) and answers the ingest's status.
"""

from __future__ import annotations

import gzip
import json
import random
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from obs_bridges import log, vercel_drain
from obs_bridges.files import write_atomic
from obs_bridges.simulator import drain_payloads as pl
from obs_bridges.simulator.common import Reply, start_ticker
from obs_bridges.simulator.webhooks import http_post
from obs_bridges.simulator.world import World

LOG = log.get("obs_bridges.simulator.drains")
KINDS = ("vercel-logs", "speed-insights", "supabase-otlp", "supabase-loki")
PATHS = {"vercel-logs": "/vercel/logs", "speed-insights": "/vercel/speed-insights",
         "supabase-otlp": "/supabase/v1/logs", "supabase-loki": "/supabase/loki/api/v1/push"}
VERCEL_SECRET_FILE = "vercel-drain-secret"
SUPABASE_TOKENS_FILE = "supabase-drain-tokens"
USER_AGENT = "obs-bridges-simulator (platform drain)"
TICK_SECONDS = 0.5
RECENT = 200
MAX_BATCH = 1000  # Vercel batches are up to a few hundred records; Logflare's are at most 250


@dataclass(frozen=True)
class DrainTarget:
    url: str  # the ingest's base URL (no trailing slash)
    secret_dir: str
    interval: float = 10.0
    batch: int = 20
    kinds: tuple[str, ...] = KINDS


def drain_target(url: str, secret_dir: str, interval: float, batch: int, kinds: str) -> DrainTarget | None:
    """The checked settings, or None when no URL is set (drains off). ValueError names the flag to fix."""
    url = url.strip().rstrip("/")
    if not url:
        return None
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"--drains-url (SIM_INGEST_URL) must be an http(s) URL, got {url[:80]!r}")
    if not secret_dir.strip():
        raise ValueError("--drains-url needs --drains-secret-dir (SIM_DRAIN_DEMO_DIR): where the per-start drain "
                         "secret and tokens are written for the ingest")
    if not 0.1 <= interval <= 3600:
        raise ValueError(f"--drains-interval (SIM_DRAIN_INTERVAL_SECONDS) must be 0.1 to 3600 seconds, got {interval}")
    if not 1 <= batch <= MAX_BATCH:
        raise ValueError(f"--drains-batch (SIM_DRAIN_BATCH_RECORDS) must be 1 to {MAX_BATCH}, got {batch}")
    chosen = tuple(k.strip() for k in kinds.split(",") if k.strip())
    bad = [k for k in chosen if k not in KINDS]
    if bad or not chosen:
        raise ValueError(f"--drains (SIM_DRAINS) must list some of {','.join(KINDS)}, got {kinds[:80]!r}")
    return DrainTarget(url, secret_dir.strip(), interval, batch, chosen)


@dataclass
class Push:
    kind: str
    body: bytes
    headers: dict
    records: int
    project: str


class DrainSender:
    def __init__(self, world: World, target: DrainTarget, *, post: Callable[[str, bytes, dict], int] = http_post):
        self.world, self.target, self.post = world, target, post
        self.rng = random.Random(world.seed + 16)
        # One secret per Vercel drain (as Vercel gives each drain its own), one token per Supabase project.
        self.vercel_secret = {"vercel-logs": secrets.token_hex(32).encode(),
                              "speed-insights": secrets.token_hex(32).encode()}
        self.supabase_tokens = {p["name"]: secrets.token_urlsafe(32) for p in world.supabase.projects}
        self.counts = {k: {"sent": 0, "accepted": 0, "refused": 0, "failed": 0, "records": 0} for k in KINDS}
        self.recent: deque = deque(maxlen=RECENT)
        self.lock = threading.Lock()
        self.next_due = 0.0
        self._failing = False

    def write_secrets(self) -> list[str]:
        d = Path(self.target.secret_dir)
        for s in self.vercel_secret.values():
            log.register_secret(s.decode())
        for t in self.supabase_tokens.values():
            log.register_secret(t)
        vercel = "".join(s.decode() + "\n" for s in self.vercel_secret.values())
        tokens = "".join(f"{name} {tok}\n" for name, tok in self.supabase_tokens.items())
        return [write_atomic(str(d / VERCEL_SECRET_FILE), vercel, mode=0o600),
                write_atomic(str(d / SUPABASE_TOKENS_FILE), tokens, mode=0o600)]

    # -- what a push of each kind carries
    def pushes(self, kind: str, auth: str = "valid") -> list[Push]:
        w, n = self.world, self.target.batch
        with w.lock:
            now = w.now()
            vc_projects, deployments = list(w.vercel.projects), list(w.vercel.deployments[-500:])
            sb_projects = [(p["name"], p["ref"]) for p in w.supabase.projects]
        if kind in ("vercel-logs", "speed-insights"):
            if not vc_projects:
                return []
            if kind == "vercel-logs":
                records = pl.vercel_log_records(self.rng, vc_projects, deployments, now, n)
                ndjson = self.rng.random() < 0.5
                body = ("\n".join(json.dumps(r, separators=(",", ":")) for r in records) + "\n").encode() if ndjson \
                    else json.dumps(records, separators=(",", ":")).encode()
                ctype = "application/x-ndjson" if ndjson else "application/json"
            else:
                records = pl.speed_insights_records(self.rng, vc_projects, now, n)
                body, ctype = json.dumps(records, separators=(",", ":")).encode(), "application/json"
            headers = {"Content-Type": ctype, "User-Agent": USER_AGENT}
            secret = self.vercel_secret[kind] if auth == "valid" else b"not-the-drain-secret"
            if auth != "none":
                headers[vercel_drain.SIGNATURE_HEADER] = vercel_drain.signature(secret, body)
            return [Push(kind, body, headers, len(records), "")]
        out = []
        for name, ref in sb_projects:
            sources = self.rng.sample([s for s, _ in pl.SUPABASE_SOURCES], k=self.rng.randint(1, 3))
            per = max(1, n // len(sources))
            events = {s: pl.supabase_events(self.rng, ref, s, now, per) for s in sources}
            token = self.supabase_tokens[name] if auth == "valid" else "not-" + secrets.token_urlsafe(16)
            base = {"Content-Encoding": "gzip", "User-Agent": USER_AGENT}
            if auth != "none":
                base["Authorization"] = f"Bearer {token}"
            if kind == "supabase-loki":  # one request, a stream per source
                body = gzip.compress(json.dumps(pl.loki_push(events), separators=(",", ":")).encode())
                out.append(Push(kind, body, {**base, "Content-Type": "application/json"},
                                sum(map(len, events.values())), name))
                continue
            for source, evs in events.items():  # Logflare sends one ResourceLogs (one source) per request
                body = gzip.compress(pl.export_logs_request(source, ref, evs, int(now * 1e9)))
                out.append(Push(kind, body, {**base, "Content-Type": "application/x-protobuf"}, len(evs), name))
        return out

    # -- sending
    def send(self, kind: str, auth: str = "valid") -> list[int]:
        statuses = []
        for p in self.pushes(kind, auth):
            status = self.post(self.target.url + PATHS[kind], p.body, p.headers)
            result = "accepted" if 200 <= status < 300 else "refused" if 400 <= status < 500 else "failed"
            with self.lock:
                c = self.counts[kind]
                c["sent"] += 1
                c[result] += 1
                if result == "accepted":
                    c["records"] += p.records
                self.recent.append({"kind": kind, "status": status, "records": p.records, "bytes": len(p.body),
                                    "project": p.project, "auth": auth, "t": self.world.clock()})
            statuses.append(status)
            if status < 0 and not self._failing:
                LOG.warning("drain push failed: the ingest cannot be reached (not retried)",
                            extra=log.kv(url=self.target.url, kind=kind))
            elif status >= 0 and self._failing:
                LOG.info("drain pushes reach the ingest again", extra=log.kv(url=self.target.url))
            self._failing = status < 0
        return statuses

    def tick(self) -> int:
        """Push every configured kind once per interval; how many requests were made."""
        now = self.world.clock()
        if now < self.next_due:
            return 0
        self.next_due = now + self.target.interval
        return sum(len(self.send(k)) for k in self.target.kinds)

    # -- the control API
    def view(self) -> dict:
        with self.lock:
            return {"url": self.target.url, "kinds": list(self.target.kinds), "interval": self.target.interval,
                    "counts": {k: dict(v) for k, v in self.counts.items()}, "recent": list(self.recent)}

    def special(self, kind: str, auth: str) -> dict:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        if auth not in ("valid", "forged", "none"):
            raise ValueError("auth must be valid, forged or none")
        return {"kind": kind, "statuses": self.send(kind, auth)}

    def start(self) -> None:
        start_ticker("platform-drains", self.tick, TICK_SECONDS)


def control_endpoint(state, method, parts, q, data):
    """/_control/drains: GET the counts and recent pushes; POST {"kind", "auth"} one push now."""
    sender = getattr(state, "drains", None)
    if sender is None:
        raise Reply(404, {"message": "no drains: start the simulator with --drains-url (SIM_INGEST_URL)"})
    if method == "GET":
        return 200, sender.view(), {}
    try:
        return 200, sender.special(str(data.get("kind", "")), str(data.get("auth", "valid"))), {}
    except ValueError as e:
        raise Reply(400, {"message": str(e)}) from None
