"""What one client may take from the auth gateway: failed logins (FailureLimiter, keyed by client_key)
and connection slots (Admission)."""
from __future__ import annotations

import ipaddress
import os
import threading
import time

HEALTH_SLOTS = 4  # connections beyond GATEWAY_MAX_CONNECTIONS that only ever answer /healthz


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
