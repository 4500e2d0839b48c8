"""A wall clock for unit tests: ``clock()`` is Unix seconds, moved only by ``advance``/``set``.

Pass it wherever a ``clock`` keyword is taken (core.Exporter, the bridges' ``build``, httpclient's
RateLimitState, ApiClient and make_retry)."""

from __future__ import annotations

import threading

# 2026-01-01T00:00:00Z: a realistic epoch (above httpclient.EPOCH_THRESHOLD), whole minutes.
T0 = 1_767_225_600.0


class FakeClock:
    def __init__(self, t0: float = T0):
        self.t = float(t0)
        self._lock = threading.Lock()
        self.reads = 0

    def __call__(self) -> float:
        with self._lock:
            self.reads += 1
            return self.t

    def advance(self, seconds: float) -> float:
        with self._lock:
            self.t += seconds
            return self.t

    def set(self, t: float) -> None:
        with self._lock:
            self.t = float(t)
