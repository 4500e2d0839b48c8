"""Load generator: realistic traffic for the demo app (reads, writes, slow searches, reports, LLM chats
with token counts, logins with wrong passwords, queue bursts, 404s) and Next.js-style Web Vitals beacons
(a few malformed ones too), some requests joining an upstream trace via traceparent.

The 5xx the demo shows are designed (demo/README.md, "Error mix"): one scenario in every
--broken-report-every (200) opens the report the demo app cannot render (GET /api/reports/13 -> 500), the
first one right at the start, so the share is steady and 5xx exist within a minute; the fake LLM fails
about 1% of chats (502).

    python -m obs_demo loadgen --target http://demo-app:8000 --rps 8 [--duration 0 (forever)]
"""
from __future__ import annotations

import argparse
import collections
import http.client
import json
import logging
import math
import os
import random
import secrets
import threading
import time
import urllib.parse

log = logging.getLogger("obs_demo.loadgen")

UAS = {
    "desktop": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "mobile": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "android": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36",
    "tablet": "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
}
PAGES = ["/", "/chat", "/chat/{id}", "/docs/getting-started/install", "/docs/api", "/settings", "/pricing"]
WORDS = ["relay", "vector", "prompt", "token", "cache", "index", "stream", "agent", "model", "search", "zzz"]
BROKEN_REPORT = 13  # app.BROKEN_REPORTS: always a 500
MALFORMED = [
    b"{not json", b"[1,2,3]", b'{"name":"LCP","value":"fast","page":"/"}', b'{"name":"FID","value":12,"page":"/"}',
    b'{"name":"CLS","value":-0.2,"page":"/"}', b'{"name":"LCP","value":1e12,"page":"/"}',
    b'{"name":"INP","value":120,"page":"no-slash"}', b'{"name":"TTFB","value":80,"rating":"great","page":"/"}',
]


class Client:
    def __init__(self, target: str, timeout: float = 15.0):
        u = urllib.parse.urlsplit(target)
        self.host, self.port = u.hostname, u.port or 80
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> int:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                r.read()
                return r.status
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    return 0
        return 0


def _traceparent() -> dict:
    # A third of requests arrive from an "upstream" (e.g. the Next.js server) that already started a trace.
    if random.random() < 0.33:
        return {"traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"}
    return {}


def _json(obj) -> tuple[bytes, dict]:
    return json.dumps(obj).encode(), {"Content-Type": "application/json"}


def _vitals_for_view(device: str) -> list[dict]:
    slow = 1.6 if device in ("mobile", "android") else 1.0
    page = random.choice(PAGES).replace("{id}", str(random.randint(1, 5000)))
    nav = random.choice(["navigate", "navigate", "reload", "back-forward"])
    ln = random.lognormvariate
    vals = {"TTFB": ln(math.log(280 * slow), 0.6), "FCP": ln(math.log(1100 * slow), 0.5),
            "LCP": ln(math.log(1900 * slow), 0.5), "CLS": max(0.0, ln(math.log(0.04), 1.0) - 0.01),
            "INP": ln(math.log(140 * slow), 0.7)}
    out = []
    for name, v in vals.items():
        v = round(min(v, 59_000), 4 if name == "CLS" else 1)
        out.append({"name": name, "value": v, "delta": v, "id": f"v5-{secrets.token_hex(6)}", "rating": "good",
                    "navigationType": nav, "page": page})
    return out


def scenario(c: Client, rng: random.Random, counts: collections.Counter, lock: threading.Lock,
             pick: str | None = None) -> None:
    pick = pick or rng.choices(
        ["items", "item", "create", "search", "chat", "login", "report", "jobs", "notfound", "vitals"],
        weights=[18, 20, 5, 10, 10, 8, 5, 3, 2, 19])[0]
    h = _traceparent()
    if pick == "broken_report":
        st = c.request("GET", f"/api/reports/{BROKEN_REPORT}", headers=h)
    elif pick == "items":
        st = c.request("GET", f"/api/items?limit={rng.choice([10, 20, 50])}", headers=h)
    elif pick == "item":
        st = c.request("GET", f"/api/items/{rng.randint(1, 260)}", headers=h)
    elif pick == "create":
        obj = {"name": f"{rng.choice(WORDS)}-{rng.randint(1, 999)}", "price": round(rng.uniform(1, 300), 2)}
        if rng.random() < 0.15:
            obj["price"] = -5  # a validation error (422)
        body, hh = _json(obj)
        st = c.request("POST", "/api/items", body, {**h, **hh})
    elif pick == "search":
        st = c.request("GET", "/api/search?q=" + urllib.parse.quote(rng.choice(WORDS)), headers=h)
    elif pick == "chat":
        msg = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 400)))
        body, hh = _json({"user_id": f"user-{rng.randint(1, 300)}@example.com", "message": msg,
                          "model": rng.choice(["demo-small", "demo-small", "demo-large"])})
        st = c.request("POST", "/api/chat", body, {**h, **hh})
    elif pick == "login":
        good = rng.random() < 0.8
        body, hh = _json({"username": f"user{rng.randint(1, 60)}", "password": "demo" if good else "hunter2"})
        st = c.request("POST", "/api/login", body, {**h, **hh})
    elif pick == "report":
        rid = rng.randint(1, 39)
        st = c.request("GET", f"/api/reports/{rid + (rid >= BROKEN_REPORT)}", headers=h)  # 1..40 but the broken one
    elif pick == "jobs":
        st = c.request("POST", f"/api/jobs?count={rng.choice([1, 1, 5, 20, 60])}", headers=h)
    elif pick == "notfound":
        st = c.request("GET", f"/wp-admin/{rng.randint(1, 10**6)}.php", headers=h)
    else:
        device = rng.choice(["desktop", "desktop", "mobile", "android", "tablet"])
        # Beacons come from many browsers: X-Forwarded-For carries a simulated client address (documentation
        # range, never contacted), which the demo app trusts as a reverse proxy would set it.
        ua = {"User-Agent": UAS[device], "Content-Type": "text/plain;charset=UTF-8", "Origin": "http://localhost:3000",
              "X-Forwarded-For": f"198.51.100.{rng.randint(1, 254)}"}
        if rng.random() < 0.03:
            st = c.request("POST", "/vitals", rng.choice(MALFORMED), ua)
        else:
            st = 0
            for v in _vitals_for_view(device):
                st = c.request("POST", "/vitals", json.dumps(v).encode(), ua)
                with lock:
                    counts[f"vitals {st}"] += 1
            return
    with lock:
        counts[f"{pick} {st}"] += 1


def wait_ready(target: str, timeout: float) -> bool:
    c = Client(target, timeout=3)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c.request("GET", "/healthz") == 200:
            return True
        time.sleep(1)
    return False


def run(target: str, rps: float, duration: float, concurrency: int, seed: int | None = None,
        ready_timeout: float = 120.0, broken_report_every: int = 200) -> collections.Counter:
    """Send traffic for `duration` seconds (0 = until interrupted); returns counts per scenario+status.
    Scenarios number 1, 1 + n, 1 + 2n, ... (n = broken_report_every, counted over all workers; 0 = never)
    open the broken report instead of a random scenario."""
    if not wait_ready(target, ready_timeout):
        raise SystemExit(f"loadgen: {target}/healthz not ready after {ready_timeout:.0f} s")
    counts: collections.Counter = collections.Counter()
    lock = threading.Lock()
    stop = threading.Event()
    per_worker = rps / concurrency
    started = [0]

    def worker(i: int):
        rng = random.Random(None if seed is None else seed + i)
        c = Client(target)
        next_at = time.monotonic()
        while not stop.is_set():
            with lock:
                n = started[0]
                started[0] += 1
            broken = broken_report_every > 0 and n % broken_report_every == 0
            scenario(c, rng, counts, lock, "broken_report" if broken else None)
            next_at += rng.expovariate(per_worker)
            delay = next_at - time.monotonic()
            if delay > 0:
                stop.wait(delay)
            else:
                next_at = time.monotonic()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    start = time.monotonic()
    heartbeat = os.environ.get("LOADGEN_HEARTBEAT_FILE", "")
    try:
        while duration <= 0 or time.monotonic() - start < duration:
            if heartbeat:  # the container healthcheck reads its age
                with open(heartbeat, "w") as f:
                    f.write(str(time.time()))
            time.sleep(min(10.0, duration - (time.monotonic() - start)) if duration > 0 else 10.0)
            with lock:
                snapshot = dict(counts)
            log.info("loadgen progress", extra={"elapsed_s": round(time.monotonic() - start, 1), "counts": snapshot})
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=20)
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="obs_demo loadgen")
    p.add_argument("--target", default=os.environ.get("LOADGEN_TARGET", "http://demo-app:8000"))
    p.add_argument("--rps", type=float, default=float(os.environ.get("LOADGEN_RPS", "8")))
    p.add_argument("--duration", type=float, default=float(os.environ.get("LOADGEN_DURATION", "0")))
    p.add_argument("--concurrency", type=int, default=int(os.environ.get("LOADGEN_CONCURRENCY", "4")))
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--broken-report-every", type=int,
                   default=int(os.environ.get("LOADGEN_BROKEN_REPORT_EVERY", "200")),
                   help="one scenario in N opens the report that always answers 500 (0: never)")
    a = p.parse_args(argv)
    counts = run(a.target, a.rps, a.duration, max(1, a.concurrency), a.seed,
                 broken_report_every=max(0, a.broken_report_every))
    log.info("loadgen done", extra={"counts": dict(counts)})
    return 0
