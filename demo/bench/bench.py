"""Benchmark: the demo app with and without obs_instrument.

    python demo/bench/bench.py [--duration 10] [--concurrency 8] [--path /api/ping] [--json out.json]

For each mode it starts `python -m obs_demo serve` on 127.0.0.1 (OBS_INSTRUMENT=0 / 1; with the helper,
traces and logs are exported over OTLP/HTTP to a local sink that answers 200, as a collector would),
then measures:
  * throughput: closed loop, --concurrency keep-alive connections for --duration seconds -> requests/s
  * latency: one connection, sequential requests -> p50 / p99 (ms); the difference between the modes
    is the latency the helper adds per request on this path
  * in-process: the ASGI app called directly (no sockets, no server) -> microseconds per request
Numbers depend on the machine (2 shared cores here); the load client runs on the same cores.
Only 127.0.0.1 is contacted; every loop is bounded by --duration / --requests.
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import app_env, free_port, start_app, start_sink, stop


def start_mode(instrument: bool, sink_url: str, tmp: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = app_env(port, sink_url, os.path.join(tmp, f"bench-{int(instrument)}.sqlite"),
                  OBS_INSTRUMENT="1" if instrument else "0", OBS_ACCESS_LOG="1", OBS_LOG_LEVEL="INFO")
    return start_app(env), port


def throughput(port: int, path: str, duration: float, concurrency: int) -> dict:
    end = time.monotonic() + duration
    done, errors = [0] * concurrency, [0] * concurrency

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < end:
            try:
                conn.request("GET", path)
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    done[i] += 1
                else:
                    errors[i] += 1
            except (OSError, http.client.HTTPException):
                errors[i] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    return {"rps": round(sum(done) / elapsed, 1), "requests": sum(done), "errors": sum(errors)}


def latency(port: int, path: str, requests: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    samples = []
    for _ in range(requests):
        t = time.perf_counter()
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        samples.append((time.perf_counter() - t) * 1000)
    conn.close()
    samples.sort()
    q = statistics.quantiles(samples, n=100)
    return {"p50_ms": round(q[49], 3), "p99_ms": round(q[98], 3), "mean_ms": round(statistics.fmean(samples), 3)}


def in_process(instrument: bool, path: str, requests: int, tmp: str) -> float:
    """Microseconds per request through the ASGI app alone (the helper's cost without network noise)."""
    os.environ["OBS_INSTRUMENT"] = "1" if instrument else "0"
    from obs_demo.app import create_app
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    kwargs = {"span_exporter": Drop(), "otlp_enabled": False, "log_stream": open(os.devnull, "w")} if instrument else {}
    app = create_app(instrument=instrument, db_path=os.path.join(tmp, f"inproc-{int(instrument)}.sqlite"), **kwargs)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": [],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_msg):
        pass

    async def run() -> float:
        for _ in range(200):
            await app(dict(scope), receive, send)
        t = time.perf_counter()
        for _ in range(requests):
            await app(dict(scope), receive, send)
        return (time.perf_counter() - t) / requests * 1e6

    return round(asyncio.run(run()), 1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--latency-requests", type=int, default=2000)
    p.add_argument("--inproc-requests", type=int, default=5000)
    p.add_argument("--path", default="/api/ping")
    p.add_argument("--json", help="also write the results here")
    a = p.parse_args(argv)

    sink, sink_url = start_sink()
    results: dict = {"path": a.path, "concurrency": a.concurrency, "duration_s": a.duration, "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="obs-bench-") as tmp:
        for mode, instrument in (("without_helper", False), ("with_helper", True)):
            proc, port = start_mode(instrument, sink_url, tmp)
            try:
                throughput(port, a.path, min(2.0, a.duration), a.concurrency)  # warm-up
                r = throughput(port, a.path, a.duration, a.concurrency)
                r.update(latency(port, a.path, a.latency_requests))
            finally:
                stop(proc)
            results[mode] = r
        results["in_process_us_per_request"] = {
            "without_helper": in_process(False, a.path, a.inproc_requests, tmp),
            "with_helper": in_process(True, a.path, a.inproc_requests, tmp)}
    sink.shutdown()
    off, on = results["without_helper"], results["with_helper"]
    ip = results["in_process_us_per_request"]
    results["added"] = {"p50_ms": round(on["p50_ms"] - off["p50_ms"], 3), "p99_ms": round(on["p99_ms"] - off["p99_ms"], 3),
                        "rps_change_pct": round((on["rps"] / off["rps"] - 1) * 100, 1) if off["rps"] else None,
                        "in_process_us": round(ip["with_helper"] - ip["without_helper"], 1)}
    print(f"{'':16}{'rps':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for mode in ("without_helper", "with_helper"):
        r = results[mode]
        print(f"{mode:16}{r['rps']:>10}{r['p50_ms']:>10}{r['p99_ms']:>10}{r['errors']:>8}")
    ad = results["added"]
    print(f"added by the helper on {a.path}: p50 {ad['p50_ms']} ms, p99 {ad['p99_ms']} ms, "
          f"throughput {ad['rps_change_pct']}%, in-process {ad['in_process_us']} us/request "
          f"({ip['without_helper']} -> {ip['with_helper']} us)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
