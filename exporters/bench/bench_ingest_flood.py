#!/usr/bin/env python3
"""Benchmark: the ingest's memory under floods (issue 16, "bound memory under floods"; not a test, prints a
Markdown report).

Starts `obs-bridge ingest` with a recording stand-in for the collector on 127.0.0.1, then for each scenario
runs `--clients` concurrent senders for `--seconds` and reads the process's peak resident memory (VmHWM)
and current RSS from /proc:
  * forged:  4 MiB bodies with a wrong x-vercel-signature (the unauthenticated flood a public URL gets);
  * signed:  signed Vercel log batches of 2,000 records (~1 MiB; the parse and OTLP encoding cost);
  * slow:    senders that declare 4 MiB and trickle it (hold connections and budget, never finish);
  * oversize: 64 MiB declared (refused before a byte is read).
Every answer is counted by status, so a flood that was refused shows as 401/413/429/503, not as nothing.

Usage: python exporters/bench/bench_ingest_flood.py [--clients 48] [--seconds 20]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "exporters" / "src"))
sys.path.insert(0, str(ROOT))
from obs_bridges.ingest import DECODE_SLOTS  # noqa: E402
from obs_bridges.ingest_server import MAX_CONNECTIONS  # noqa: E402
from obs_bridges.ingest_settings import DEFAULT_INFLIGHT_BYTES  # noqa: E402
from obs_bridges.vercel_drain import signature  # noqa: E402
from tests.support.capture import CaptureServer  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

SECRET = "bench-flood-secret"


def mem(pid: int) -> tuple[float, float]:
    """(VmHWM, VmRSS) in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        fields[k] = v.strip()
    return int(fields["VmHWM"].split()[0]) / 1024, int(fields["VmRSS"].split()[0]) / 1024


def send(port: int, body: bytes, headers: dict, statuses: Counter, lock: threading.Lock) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        try:
            conn.request("POST", "/vercel/logs", body=body, headers=headers)
        except (BrokenPipeError, ConnectionResetError):
            pass
        st = conn.getresponse().status
    except (OSError, http.client.HTTPException) as e:
        st = type(e).__name__
    finally:
        conn.close()
    with lock:
        statuses[st] += 1


def trickle(port: int, stop: threading.Event, statuses: Counter, lock: threading.Lock) -> None:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(b"POST /vercel/logs HTTP/1.1\r\nHost: x\r\nContent-Length: 4194304\r\n\r\n")
        while not stop.is_set():
            s.sendall(b"x" * 1024)
            time.sleep(0.5)
        s.settimeout(15)
        st = s.recv(64).split(b" ")[1].decode()
    except (OSError, IndexError) as e:
        st = type(e).__name__
    with lock:
        statuses[st] += 1


def scenario(name: str, port: int, pid: int, clients: int, seconds: float, make) -> dict:
    statuses, lock, stop = Counter(), threading.Lock(), threading.Event()
    peak_rss = 0.0

    def worker():
        while not stop.is_set():
            make(statuses, lock, stop)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    while time.monotonic() - t0 < seconds:
        peak_rss = max(peak_rss, mem(pid)[1])
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(30)
    hwm, rss = mem(pid)
    return {"name": name, "statuses": dict(statuses), "peak_rss": peak_rss, "hwm": hwm, "rss_after": rss,
            "requests": sum(statuses.values()), "seconds": time.monotonic() - t0}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=48)
    p.add_argument("--seconds", type=float, default=20.0)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp())
    (tmp / "secret").write_text(SECRET)
    port, mport = free_port(), free_port()
    with CaptureServer() as collector:
        collector.requests = _Discard()  # keep no bodies: only the ingest's memory is measured
        env = {**os.environ, "PYTHONPATH": str(ROOT / "exporters" / "src"), "INGEST_PORT": str(port),
               "LISTEN_PORT": str(mport), "LISTEN_ADDR": "127.0.0.1", "INGEST_OTLP_ENDPOINT": collector.url,
               "VERCEL_DRAIN_SECRET_FILE": str(tmp / "secret"), "INGEST_MAX_REQUESTS_PER_SECOND": "10000",
               "LOG_LEVEL": "warning", "MALLOC_ARENA_MAX": "2"}  # as the image sets it (exporters/Dockerfile)
        proc = subprocess.Popen([sys.executable, "-m", "obs_bridges", "ingest"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            idle = mem(proc.pid)[1]
            big = os.urandom(4 * 1024 * 1024 - 64)
            batch = json.dumps([{"id": f"l{i}", "timestamp": 1767225600000 + i, "projectName": "shop",
                                 "environment": "production", "source": "lambda", "level": "info",
                                 "message": "x" * 400, "requestId": f"req_{i}", "path": f"/p/{i}"}
                                for i in range(2000)]).encode()
            lock = threading.Lock()
            results = [
                scenario("forged 4 MiB bodies", port, proc.pid, args.clients, args.seconds,
                         lambda st, lk, _s: send(port, big, {"x-vercel-signature": "0" * 40}, st, lk)),
                scenario(f"signed batches ({len(batch) // 1024} KiB, 2,000 records)", port, proc.pid,
                         args.clients, args.seconds,
                         lambda st, lk, _s: send(port, batch, {"x-vercel-signature": signature(SECRET.encode(), batch),
                                                               "Content-Type": "application/json"}, st, lk)),
                scenario("slow senders (4 MiB declared, 2 KiB/s)", port, proc.pid, args.clients, args.seconds,
                         lambda st, lk, stop: trickle(port, stop, st, lk)),
                scenario("oversize (64 MiB declared)", port, proc.pid, args.clients, args.seconds,
                         lambda st, lk, _s: send(port, b"", {"Content-Length": str(64 * 1024 * 1024)}, st, lk)),
            ]
            del lock
        finally:
            proc.terminate()
            proc.wait(10)
    print(f"## Ingest under floods ({args.clients} concurrent senders, {args.seconds:g} s each)\n")
    print(f"Idle RSS {idle:.0f} MiB; in-flight body budget {DEFAULT_INFLIGHT_BYTES >> 20} MiB "
          f"(INGEST_MAX_INFLIGHT_BYTES); {MAX_CONNECTIONS} connections; {DECODE_SLOTS} batches decoded at once.\n")
    print("| scenario | requests | answers | peak RSS | RSS after |")
    print("|---|---|---|---|---|")
    for r in results:
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items(), key=lambda kv: str(kv[0])))
        print(f"| {r['name']} | {r['requests']} | {answers} | {r['peak_rss']:.0f} MiB | {r['rss_after']:.0f} MiB |")
    print(f"\nPeak resident memory over the whole run (VmHWM): {results[-1]['hwm']:.0f} MiB.")
    return 0


class _Discard(list):
    def append(self, _item) -> None:
        pass


if __name__ == "__main__":
    raise SystemExit(main())
