"""Attacks on the Web Vitals ingest (obs_instrument.webvitals in the demo app; issue 12, items 10-12),
on loopback only.

python -m scripts.attack.webvitals starts the demo app (python -m obs_demo serve) on 127.0.0.1 as compose
runs it (one trusted proxy: OBS_WEBVITALS_TRUSTED_PROXY_HOPS=1; here the attacker plays both the browsers
and, where a test needs it, the proxy), runs the attacks below bounded in count and time, and prints one
JSON report (scripts/attack/README.md); exit 1 when an attack did not hold. Peak memory is the app's VmHWM,
reset before each attack.
"""
from __future__ import annotations

import json
import random
import sys
import threading
import time
from pathlib import Path

from obs_demo.app import PAGES
from prometheus_client.parser import text_string_to_metric_families

from scripts.attack._common import run_component, Service, answers, exchange, fetch, free_port, python_env, result, statuses

BEACON = {"Content-Type": "text/plain;charset=UTF-8"}
DEMO_PAGES = set(PAGES)  # the templates the demo app configures
BURST, RATE = 20, 2.0  # the ingest's per-client bucket (WebVitals defaults)
MEMORY_BOUND_MB = 150.0  # the demo app idles near 65 MB: the bound catches bodies or labels that pile up


class DemoApp(Service):
    def __init__(self, workdir: Path):
        self.port = free_port()
        env = python_env(LISTEN_HOST="127.0.0.1", LISTEN_PORT=str(self.port), OBS_DEMO_DB=str(workdir / "demo.db"),
                         OBS_OTLP_ENABLED="false", OBS_USER_ID_SALT="attack-salt", OBS_ACCESS_LOG="false",
                         DEPLOYMENT_ENVIRONMENT="attack", OBS_WEBVITALS_TRUSTED_PROXY_HOPS="1")
        super().__init__([sys.executable, "-m", "obs_demo", "serve"], env, workdir / "demo-app.log",
                         lambda s: answers(f"http://127.0.0.1:{self.port}/healthz"), timeout=60)

    def post(self, body: bytes, xff: str | None = None, **headers: str) -> int:
        h = {**BEACON, **headers}
        if xff is not None:
            h["X-Forwarded-For"] = xff
        return fetch(self.port, "POST", "/vitals", h, body)[0]

    def samples(self, name: str) -> dict[tuple, float]:
        status, text = fetch(self.port, "GET", "/metrics", {"Accept": "text/plain"}, timeout=10)
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        return {tuple(sorted(s.labels.items())): s.value for f in text_string_to_metric_families(text.decode())
                for s in f.samples if s.name == name}

    def vitals_5xx(self) -> float:
        return sum(v for k, v in self.samples("http_requests_total").items()
                   if dict(k).get("endpoint") == "/vitals" and dict(k).get("status_code", "").startswith("5"))


def beacon(page: str = "/", name: str = "LCP", value: float = 1200) -> bytes:
    return json.dumps({"name": name, "value": value, "page": page}).encode()


def hostile_bodies() -> list[tuple[str, bytes]]:
    return [
        ("nesting 2,000 deep in an ignored field",
         b'{"name":"LCP","value":1,"page":"/","entries":' + b"[" * 2000 + b"]" * 2000 + b"}"),
        ("3,000 open brackets", b"[" * 3000),
        ("500 nested objects", b'{"a":' * 500 + b"1" + b"}" * 500),
        ("a 400-digit value", b'{"name":"LCP","value":' + b"9" * 400 + b',"page":"/"}'),
        ("a 400-digit number in an ignored field (accepted)",
         b'{"name":"LCP","value":1,"page":"/","delta":' + b"9" * 400 + b"}"),
        ("value 1e400", b'{"name":"LCP","value":1e400,"page":"/"}'),
        ("value NaN", b'{"name":"LCP","value":NaN,"page":"/"}'),
        ("name as a list", b'{"name":["LCP"],"value":1,"page":"/"}'),
        ("name as an object", b'{"name":{"a":1},"value":1,"page":"/"}'),
        ("rating as a list", b'{"name":"LCP","value":1,"page":"/","rating":["good"]}'),
        ("page as a list", b'{"name":"LCP","value":1,"page":["/"]}'),
        ("NUL in the page", b'{"name":"LCP","value":1,"page":"/\\u0000"}'),
        ("lone surrogate in the id (accepted: never a label)", b'{"name":"LCP","value":1,"page":"/","id":"\\ud800"}'),
        ("not UTF-8", b'{"name":"LCP","value":1,"page":"/\xff"}'),
        ("a bare number", b"1" * 4000),
        ("empty body", b""),
    ]


def malformed_bodies(app: DemoApp) -> dict:
    app.reset_peak()
    before = app.vitals_5xx()
    codes = {}
    for i, (what, body) in enumerate(hostile_bodies()):
        codes[what] = app.post(body, xff=f"198.18.0.{i + 1}")  # its own bucket: the rate limit is not judged
    odd_lengths = ["²", "١٢", "-1", "1e3", "99999999999999999999"]
    for n, declared in enumerate(odd_lengths):
        raw = (b"POST /vitals HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nX-Forwarded-For: 198.18.1.%d\r\n"
               b"Content-Length: " % (n + 1) + declared.encode() + b"\r\nConnection: close\r\n\r\n" + beacon())
        got = statuses(exchange(app.port, raw, timeout=5)[0])
        codes[f"Content-Length {declared!r}"] = got[0] if got else 0
    after = app.vitals_5xx()
    not_4xx = {k: v for k, v in codes.items() if not 400 <= v < 500 and not (v == 204 and "(accepted" in k)}
    held = not not_4xx and after == before and answers(f"http://127.0.0.1:{app.port}/healthz")
    return result("hostile beacon bodies", f"{len(codes)} bodies and headers: deep nesting, huge numbers, wrong "
                  "JSON types, bad UTF-8, odd Content-Length", held,
                  f"answers not 4xx: {not_4xx}; 5xx counted for /vitals {before:g} -> {after:g}", app.peak_mb())


def forwarded_for_rotation(app: DemoApp) -> dict:
    app.reset_peak()
    start = time.monotonic()
    codes = [app.post(beacon(), xff=f"10.{i // 250}.{i % 250}.1, 203.0.113.9") for i in range(300)]
    took = time.monotonic() - start
    accepted = codes.count(204)
    allowed = BURST + RATE * took + 1
    held = accepted <= allowed and codes.count(429) >= 300 - allowed
    return result("X-Forwarded-For rotation", "300 beacons, each with a new client-written address left of the "
                  "one the trusted proxy appended", held,
                  f"{accepted} accepted in {took:.1f} s (one client may get {allowed:.0f}); "
                  f"{codes.count(429)} answered 429", app.peak_mb())


def page_label_flood(app: DemoApp) -> dict:
    app.reset_peak()
    rng = random.Random(12)
    codes: list[int] = []
    for i in range(2000):
        page = f"/{rng.getrandbits(40):x}/{i}"
        # 2,000 proxied clients (the rightmost entry is the key), so the per-client limit does not stop it.
        codes.append(app.post(beacon(page), xff=f"198.19.{i // 250}.{i % 250 + 1}"))
    real = 0
    for attempt in range(20):  # the global bucket may be empty right after the flood: it refills at 500/s
        real = app.post(beacon("/chat/4711", "FCP", 800), xff=f"192.0.2.{attempt + 1}")
        if real != 429:
            break
        time.sleep(0.05)
    pages = {dict(k)["page"] for k in app.samples("web_vitals_lcp_seconds_count")}
    fcp_pages = {dict(k)["page"] for k in app.samples("web_vitals_fcp_seconds_count")}
    held = real == 204 and pages <= DEMO_PAGES | {"other"} and "/chat/[id]" in fcp_pages
    return result("random page paths", "2,000 beacons with random paths from 2,000 client addresses, then one "
                  "beacon for a real page", held,
                  f"{codes.count(204)} accepted, {codes.count(429)} rate-limited; LCP page labels {sorted(pages)}; "
                  f"real page answered {real}, FCP labels {sorted(fcp_pages)}", app.peak_mb())


def body_flood(app: DemoApp) -> dict:
    app.reset_peak()
    codes: list[int] = []
    lock = threading.Lock()

    def declared(i: int):
        code = app.post(b"x" * (4 * 1024 * 1024), xff=f"198.20.0.{i + 1}")
        with lock:
            codes.append(code)

    def chunked(i: int):
        head = (b"POST /vitals HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
                b"X-Forwarded-For: 198.20.1.%d\r\nConnection: close\r\n\r\n" % (i + 1))
        chunk = b"10000\r\n" + b"y" * 0x10000 + b"\r\n"
        raw, _ = exchange(app.port, head + chunk * 64 + b"0\r\n\r\n", timeout=10)
        with lock:
            codes.append((statuses(raw) or [0])[0])

    threads = [threading.Thread(target=f, args=(i,)) for i in range(24) for f in (declared, chunked)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    peak = app.peak_mb()
    # A client whose body the server stopped reading may see the close before the 413: 0 counts as refused.
    refused = sum(1 for c in codes if c in (413, 0))
    held = refused == len(threads) and codes.count(413) >= len(threads) // 2 and peak is not None \
        and peak < MEMORY_BOUND_MB and answers(f"http://127.0.0.1:{app.port}/healthz")
    return result("oversized bodies", f"{len(threads)} concurrent 4 MiB bodies (24 with Content-Length, 24 chunked)",
                  held, f"413: {codes.count(413)}, closed before an answer: {codes.count(0)}, other: "
                  f"{[c for c in codes if c not in (413, 0)]}; peak RSS {peak} MB (bound {MEMORY_BOUND_MB:.0f})", peak)


def main() -> int:
    return run_component("webvitals", DemoApp, (malformed_bodies, forwarded_for_rotation, page_label_flood, body_flood))


if __name__ == "__main__":
    sys.exit(main())
