#!/usr/bin/env python3
"""Benchmark of the Railway bridge's log polling against the simulator (not a test; prints a Markdown report).

For several world sizes (projects -> services and environments), runs the Railway bridge with logs shipped to
an OTLP/HTTP JSON sink on 127.0.0.1 and every upstream polled every --interval seconds, for --seconds. From the
bridge's own counters (railway_api_requests_total by endpoint, railway_logs_polls_total) it derives requests
per poll of each upstream and, from those, Railway API requests per hour at the default intervals, against
Hobby's 1,000 requests/hour. Also reports the log lines shipped per second and the bridge's RSS.

Usage: python exporters/bench/bench_railway_logs.py [--projects 1,4,8,25] [--seconds 60] [--interval 2]
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_exporters import P

PY = sys.executable
HOBBY_PER_HOUR = 1000
# Default intervals (seconds) of the Railway bridge's upstreams and the API endpoint label each one counts under.
DEFAULTS = {"logs": (30.0, ("logs",)), "deployments": (60.0, ("deployments", "deployment_events")),
            "metrics": (60.0, ("metrics",)), "discovery": (600.0, ("projects",)),
            "usage": (900.0, ("estimated_usage",)), "cost_to_date": (900.0, ("usage",))}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def post(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read()


def wait(fn, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if fn():
                return True
        except Exception:  # noqa: BLE001
            pass
        time.sleep(0.2)
    raise RuntimeError("timed out")


class Sink:
    """OTLP/HTTP JSON logs: counts records."""

    def __init__(self):
        self.records = 0
        sink = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                sink.records += sum(len(sl["logRecords"]) for rl in body["resourceLogs"] for sl in rl["scopeLogs"])
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"


def metrics(url) -> dict:
    out: dict = {}
    for fam in text_string_to_metric_families(get(url + "/metrics").decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def total(m, name, **labels) -> float:
    return sum(v for lb, v in m.get(name, []) if all(lb.get(k) == x for k, x in labels.items()))


def run(projects: int, seconds: float, interval: float, sink: Sink) -> dict:
    sport = free_port()
    sim = P([PY, "-m", "obs_bridges", "simulator", "--listen-addr", "127.0.0.1", "--port", str(sport),
             "--github-repos", "0", "--vercel-projects", "0", "--supabase-projects", "0",
             "--railway-projects", str(projects)], {})
    surl = f"http://127.0.0.1:{sport}"
    exp = None
    try:
        wait(lambda: get(surl + "/_control/health"))
        post(surl + "/_control/ratelimit", {"platform": "railway", "limit": 1_000_000})
        world = json.loads(get(surl + "/_control/world/railway"))
        services = sum(len(p["services"]) for p in world["projects"])
        envs = sum(len(p["envs"]) for p in world["projects"])
        port = free_port()
        state = tempfile.mkdtemp(prefix="rw-logs-bench-")
        iv = str(interval)
        exp = P([PY, "-m", "obs_bridges", "railway"], {
            "LISTEN_ADDR": "127.0.0.1", "LISTEN_PORT": str(port), "RAILWAY_API_URL": surl + "/railway/graphql/v2",
            "RAILWAY_TOKEN": "bench-token", "RAILWAY_LOGS_OTLP_ENDPOINT": sink.url, "RAILWAY_LOGS_STATE_DIR": state,
            "RAILWAY_LOGS_INTERVAL_SECONDS": iv, "RAILWAY_POLL_INTERVAL_SECONDS": iv,
            "RAILWAY_METRICS_INTERVAL_SECONDS": iv, "RAILWAY_DISCOVERY_INTERVAL_SECONDS": iv,
            "RAILWAY_USAGE_INTERVAL_SECONDS": iv})
        url = f"http://127.0.0.1:{port}"
        # the first poll reads the look-back (15 min): measured apart from the steady state
        wait(lambda: total(metrics(url), "railway_logs_polls_total") >= 1)
        m0, r0, t0 = metrics(url), sink.records, time.monotonic()
        first_logs_requests = total(m0, "railway_api_requests_total", endpoint="logs")
        time.sleep(seconds)
        m1, r1, t1 = metrics(url), sink.records, time.monotonic()
        rss = exp.rss_mb()
        health = json.loads(get(url + "/healthz"))
    finally:
        if exp:
            exp.stop()
        sim.stop()
    polls = {u: health["upstreams"][u] for u in DEFAULTS}
    per_hour, per_poll = {}, {}
    for u, (default, endpoints) in DEFAULTS.items():
        reqs = sum(total(m1, "railway_api_requests_total", endpoint=e) - total(m0, "railway_api_requests_total",
                                                                                endpoint=e) for e in endpoints)
        n = (t1 - t0) / interval if u != "logs" else (total(m1, "railway_logs_polls_total")
                                                     - total(m0, "railway_logs_polls_total"))
        per_poll[u] = reqs / max(n, 1)
        per_hour[u] = per_poll[u] * 3600 / default
    return {"projects": projects, "services": services, "environments": envs, "per_poll": per_poll,
            "per_hour": per_hour, "lines_per_s": (r1 - r0) / (t1 - t0), "first_poll_logs_requests":
            first_logs_requests, "rss_mb": rss, "ok": all(v["ok"] for v in polls.values())}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--projects", default="1,4,8,25", help="world sizes (Railway projects), comma-separated")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--interval", type=float, default=2.0)
    a = ap.parse_args()
    sink = Sink()
    rows = [run(int(n), a.seconds, a.interval, sink) for n in a.projects.split(",")]
    print(f"## Railway logs: API requests per hour (measured {a.seconds:g} s per size, every upstream polled "
          f"every {a.interval:g} s, scaled to the default intervals)\n")
    print("| projects | services | environments | logs requests/poll | "
          "logs requests/h (30 s) | all upstreams requests/h | share of Hobby 1,000/h | log lines/s shipped | "
          "first poll (15 min look-back) requests | RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        allh = sum(r["per_hour"].values())
        print(f"| {r['projects']} | {r['services']} | {r['environments']} | {r['per_poll']['logs']:.2f} | "
              f"{r['per_hour']['logs']:.0f} | {allh:.0f} | {100 * allh / HOBBY_PER_HOUR:.1f}% | "
              f"{r['lines_per_s']:.1f} | {r['first_poll_logs_requests']:.0f} | {r['rss_mb']:.1f} |"
              + ("" if r["ok"] else " (an upstream failed)"))
    print("\nPer upstream (requests/h at default intervals): " + "; ".join(
        f"{r['projects']} projects: " + ", ".join(f"{u} {v:.0f}" for u, v in r["per_hour"].items()) for r in rows))
    envs = max(r["environments"] for r in rows)
    worst = math.ceil(envs / 10) * 5 * 120
    print(f"\nCatching up (RAILWAY_LOGS_MAX_PAGES=5 pages per poll) would take {worst} logs requests/h at {envs} "
          f"environments; RAILWAY_LOGS_MAX_REQUESTS_PER_HOUR (600) caps it at {min(worst, 600)}.")
    sink.srv.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
