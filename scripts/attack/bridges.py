"""Attacks on the four platform bridges from a hostile upstream API (issue 12, items 13-16), on loopback.

python -m scripts.attack.bridges serves a hostile "platform API" on 127.0.0.1 and points each bridge
(railway, vercel, supabase, github; run as `python -m obs_bridges <name>` in demo mode, so the simulator URL
is the hostile server) at it, one attack at a time: a 200 MB body, a gzip bomb, a body trickled one byte
at a time, and rate-limit headers of 1e12 and inf. Each bridge must cut the response (poll error
too_large / timeout, or a bounded ratelimit wait), keep serving /healthz and /metrics with the upstream
marked down, keep every log line valid JSON, and stay within a memory bound. Peak memory is each
bridge's VmHWM. Prints one JSON report (scripts/attack/README.md); exit 1 when an attack did not hold.
"""
from __future__ import annotations

import gzip
import json
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from obs_bridges.httpclient import MAX_WAIT_SECONDS  # the longest wait an upstream header may impose
from scripts.attack._common import Service, answers, fetch, free_port, python_env, report, result

BRIDGES = ("railway", "vercel", "supabase", "github")
DEADLINE = 3.0  # HTTP_DEADLINE_SECONDS for this run (shipped: 30 s), so the trickle ends quickly
MEMORY_BOUND_MB = 200.0  # a bridge idles near 45 MB; at most one capped body (32 MiB) in memory
BOMB = gzip.compress(b"\0" * (256 * 1024 * 1024), compresslevel=9)  # 256 MiB in about 250 KiB


class Hostile(BaseHTTPRequestHandler):
    """The attack is the first path segment (the bridges' demo URL is http://host:port/<attack>)."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _attack(self):
        attack = self.path.strip("/").split("/", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        try:
            if attack == "huge":  # 200 MB declared and sent until the client hangs up
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(200 * 1024 * 1024))
                self.end_headers()
                block = b" " * 65536
                for _ in range(200 * 16):
                    self.wfile.write(block)
            elif attack == "bomb":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(BOMB)))
                self.end_headers()
                self.wfile.write(BOMB)
            elif attack == "trickle":  # one byte every 0.2 s: each byte restarts a socket timeout
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "10000")
                self.end_headers()
                for _ in range(10000):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.2)
            elif attack.startswith("reset-"):
                value = attack.split("-", 1)[1]
                body = b'{"message": "API rate limit exceeded"}'
                self.send_response(429)
                self.send_header("Content-Type", "application/json")
                self.send_header("x-ratelimit-remaining", "0")
                self.send_header("x-ratelimit-reset", value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404)
        except OSError:
            return

    do_GET = do_POST = _attack


class Bridge(Service):
    def __init__(self, name: str, upstream: str, workdir: Path):
        self.name, self.port = name, free_port()
        env = python_env(LISTEN_ADDR="127.0.0.1", LISTEN_PORT=str(self.port), LOG_LEVEL="info",
                         OBS_DEMO_SIMULATOR_URL=upstream, HTTP_TIMEOUT_SECONDS="1",
                         HTTP_DEADLINE_SECONDS=str(DEADLINE))
        super().__init__([sys.executable, "-m", "obs_bridges", name], env,
                         workdir / f"{name}-{upstream.rsplit('/', 1)[-1]}.log",
                         lambda s: answers(f"http://127.0.0.1:{self.port}/healthz"), timeout=30)

    def poll_errors(self) -> dict[str, float]:
        """Failed polls by reason (summed over upstreams)."""
        status, text = fetch(self.port, "GET", "/metrics", timeout=5)
        out: dict[str, float] = {}
        if status != 200:
            return out
        for fam in text_string_to_metric_families(text.decode()):
            for s in fam.samples:
                if s.name == f"{self.name}_exporter_poll_errors_total":
                    out[s.labels["reason"]] = out.get(s.labels["reason"], 0) + s.value
        return out

    def bad_log_lines(self) -> list[str]:
        bad = []
        for line in self.log_text().splitlines():
            try:
                json.loads(line)  # the stdlib refuses Infinity/NaN only with parse_constant
                if "Infinity" in line or "NaN" in line:
                    bad.append(line[:200])
            except ValueError:
                bad.append(line[:200])
        return bad

    def longest_wait(self) -> float:
        waits = [r.get("retry_in_s") for r in self.records() if isinstance(r.get("retry_in_s"), (int, float))]
        return max(waits, default=0.0)


def run_attack(attack: str, expected: str, hostile_port: int, workdir: Path, tried: str) -> dict:
    bridges = []
    try:
        for name in BRIDGES:
            bridges.append(Bridge(name, f"http://127.0.0.1:{hostile_port}/{attack}", workdir))
        seen: dict[str, dict] = {}
        end = time.monotonic() + DEADLINE + 20
        while time.monotonic() < end and len(seen) < len(bridges):
            for b in bridges:
                errors = b.poll_errors()
                if errors.get(expected):
                    seen[b.name] = errors
            time.sleep(0.2)
        problems = []
        peaks: dict[str, float | None] = {}
        waits: dict[str, float] = {}
        for b in bridges:
            peaks[b.name] = b.peak_mb()
            if b.name not in seen:
                problems.append(f"{b.name}: no poll error {expected!r} (errors {b.poll_errors()})")
            if not b.alive() or not answers(f"http://127.0.0.1:{b.port}/healthz"):
                problems.append(f"{b.name}: not serving after the attack")
            bad, waits[b.name] = b.bad_log_lines(), b.longest_wait()
            if bad:
                problems.append(f"{b.name}: log lines not valid JSON: {bad[:2]}")
            if waits[b.name] > MAX_WAIT_SECONDS * 1.2 + 1:
                problems.append(f"{b.name}: waits {waits[b.name]:.0f} s")
            if peaks[b.name] is None or peaks[b.name] > MEMORY_BOUND_MB:
                problems.append(f"{b.name}: peak RSS {peaks[b.name]} MB (bound {MEMORY_BOUND_MB:.0f})")
        peak = max((p for p in peaks.values() if p is not None), default=None)
        shown = {n: f"{w:.0f}" for n, w in waits.items()}  # a format prints inf; round() would raise
        detail = (f"poll errors {expected}: {sorted(seen)}; peak RSS MB {peaks}; longest wait s {shown}; "
                  f"problems: {problems}")
        return result(f"hostile upstream: {attack}", tried, not problems, detail, peak)
    finally:
        for b in bridges:
            b.stop()


ATTACKS = [
    ("huge", "too_large", "a 200 MB response body to every bridge"),
    ("bomb", "too_large", f"a gzip bomb ({len(BOMB) // 1024} KiB inflating to 256 MiB) to every bridge"),
    ("trickle", "timeout", "a body of one byte every 0.2 s to every bridge"),
    ("reset-1e12", "ratelimit", "429 with x-ratelimit-reset: 1e12 to every bridge"),
    ("reset-inf", "ratelimit", "429 with x-ratelimit-reset: inf to every bridge"),
]


def main() -> int:
    hostile = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    hostile.daemon_threads = True
    threading.Thread(target=hostile.serve_forever, daemon=True).start()
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="attack-bridges-") as tmp:
            for attack, expected, tried in ATTACKS:
                results.append(run_attack(attack, expected, hostile.server_address[1], Path(tmp), tried))
    finally:
        hostile.shutdown()
        hostile.server_close()
    return report("bridges", results)


if __name__ == "__main__":
    sys.exit(main())
