"""The simulator's injected faults, per-platform rate limits and request log (SimState)."""

from __future__ import annotations

import threading
from collections import deque

from obs_bridges.simulator.common import Reply, num
from obs_bridges.simulator.world import World

__all__ = ["FAULT_KINDS", "RATE_LIMITS", "Reply", "SimState"]

# Rate-limit windows per platform: (limit, window seconds). GitHub PAT 5,000/h; Railway Hobby 1,000/h;
# Supabase 60/min (429 for the rest of the minute); Vercel's per-endpoint limits are not published.
RATE_LIMITS = {"github": (5000, 3600), "railway": (1000, 3600), "vercel": (100, 60), "supabase": (60, 60)}
FAULT_KINDS = {"outage", "http5xx", "ratelimit429", "exhaust", "unauthorized", "malformed", "truncated",
               "wrong_shape", "slow"}


class SimState:
    """The world plus what the HTTP front keeps: faults, rate-limit windows and the request log. Time is the
    world's clock (not its advanced time: /_control/advance moves the world, not the rate windows)."""

    def __init__(self, world: World):
        self.world = world
        self.clock = world.clock
        self.lock = threading.Lock()
        self.faults: list[dict] = []
        self.requests: deque = deque(maxlen=200000)
        self.windows = {p: {"start": self.clock(), "used": 0, "limit": lim, "window": win, "exhausted_until": 0.0}
                        for p, (lim, win) in RATE_LIMITS.items()}
        self._fault_id = 0
        self.webhooks = None  # a webhooks.WebhookSender when the simulator delivers GitHub webhooks

    def add_fault(self, spec: dict) -> dict:
        kind = spec.get("kind")
        if kind not in FAULT_KINDS:
            raise Reply(400, {"message": f"kind must be one of {sorted(FAULT_KINDS)}"})
        plat = spec.get("platform", "*")
        with self.lock:
            self._fault_id += 1
            f = {"id": self._fault_id, "platform": plat, "kind": kind,
                 "remaining": num(spec, "count", cast=int) if spec.get("count") is not None else None,
                 "until": (self.clock() + num(spec, "duration")) if spec.get("duration") is not None else None,
                 "retry_after": num(spec, "retry_after", 5, int), "status": num(spec, "status", 503, int),
                 "delay": num(spec, "delay", 2.0), "path": spec.get("path")}
            if kind == "exhaust":
                w = self.windows[plat]
                w["exhausted_until"] = self.clock() + float(spec.get("duration", 30))
                w["used"] = w["limit"]
                return f
            self.faults.append(f)
            return f

    def take_fault(self, platform: str, path: str) -> dict | None:
        now = self.clock()
        with self.lock:
            for f in list(self.faults):
                if f["until"] is not None and now > f["until"]:
                    self.faults.remove(f)
                    continue
                if f["platform"] not in ("*", platform):
                    continue
                if f["path"] and f["path"] not in path:
                    continue
                if f["remaining"] is not None:
                    f["remaining"] -= 1
                    if f["remaining"] <= 0:
                        self.faults.remove(f)
                return f
        return None

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()
            for win in self.windows.values():
                win["exhausted_until"] = 0.0
                win["used"] = 0

    def rate(self, platform: str, counted: bool) -> tuple[bool, dict]:
        """Account one request; returns (allowed, headers)."""
        now = self.clock()
        with self.lock:
            w = self.windows[platform]
            if w["exhausted_until"] and now >= w["exhausted_until"]:
                w["start"], w["used"], w["exhausted_until"] = now, 0, 0.0  # injected exhaustion is over
            if now - w["start"] >= w["window"] and now >= w["exhausted_until"]:
                w["start"], w["used"] = now, 0
            reset = w["exhausted_until"] if now < w["exhausted_until"] else w["start"] + w["window"]
            allowed = w["used"] < w["limit"] and now >= w["exhausted_until"]
            if allowed and counted:
                w["used"] += 1
            rem = max(0, w["limit"] - w["used"]) if now >= w["exhausted_until"] else 0
            h = {"x-ratelimit-limit": str(w["limit"]), "x-ratelimit-remaining": str(rem),
                 "x-ratelimit-reset": str(int(reset))}
            if platform == "github":
                h["x-ratelimit-used"] = str(w["used"])
                h["x-ratelimit-resource"] = "core"
            if not allowed:
                h["Retry-After"] = str(max(1, int(reset - now + 0.999)))
            return allowed, h
