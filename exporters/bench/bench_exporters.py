#!/usr/bin/env python3
"""Benchmark of the four exporters against the simulator (not a test; prints a Markdown report).

Measures, at 50 repositories/projects each:
  * /metrics latency p50/p99 over many sequential scrapes, and the exporter's RSS;
  * upstream requests per hour at the default poll intervals, against each platform's limit;
  * for GitHub, counted requests (those that spend rate limit) with and without ETags, with a world
    compressed in time (k x faster arrivals and durations, k x shorter poll interval).

Usage: python exporters/bench/bench_exporters.py [--entities 50] [--scrapes 2000] [--github-seconds 60]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

PY = sys.executable
LIMITS_PER_HOUR = {"github": 5000, "railway": 1000, "vercel": None, "supabase": 3600}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
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


class P:
    def __init__(self, argv, env):
        base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "VERCEL_", "RAILWAY_",
                                                                         "SUPABASE_", "OBS_"))}
        base.update(env)
        self.p = subprocess.Popen(argv, env=base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)

    def rss_mb(self) -> float:
        with open(f"/proc/{self.p.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self):
        try:
            os.killpg(self.p.pid, signal.SIGTERM)
            self.p.wait(10)
        except Exception:  # noqa: BLE001
            os.killpg(self.p.pid, signal.SIGKILL)


def sim(n, *extra):
    port = free_port()
    s = P([PY, "-m", "obs_bridges", "simulator", "--listen-addr", "127.0.0.1", "--port", str(port),
           "--github-repos", str(n), "--vercel-projects", str(n), "--railway-projects", str(n),
           "--supabase-projects", str(n), *extra], {"LISTEN_ADDR": "127.0.0.1"})
    url = f"http://127.0.0.1:{port}"
    wait(lambda: get(url + "/healthz"))
    for plat in ("github", "vercel", "railway", "supabase"):
        req = urllib.request.Request(url + "/_control/ratelimit", data=json.dumps(
            {"platform": plat, "limit": 10**6}).encode(), method="POST")
        urllib.request.urlopen(req).read()
    return s, url


def requests_log(url, platform, since=0.0):
    return json.loads(get(f"{url}/_control/requests?platform={platform}&since={since}", 30))["requests"]


ENV = {
    "github": lambda u: {"GITHUB_API_URL": u + "/github", "GITHUB_TOKEN": "bench-token", "GITHUB_REPOSITORIES": "demo-org"},
    "vercel": lambda u: {"VERCEL_API_URL": u + "/vercel", "VERCEL_TOKEN": "bench-token", "VERCEL_TEAM_ID": "team_demo"},
    "railway": lambda u: {"RAILWAY_API_URL": u + "/railway/graphql/v2", "RAILWAY_TOKEN": "bench-token"},
    "supabase": lambda u: {"SUPABASE_API_URL": u + "/supabase", "SUPABASE_ACCESS_TOKEN": "bench-token"},
}


def scrape_latency(port, n):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    times, size = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        body = r.read()
        times.append((time.perf_counter() - t0) * 1000)
        size = len(body)
    conn.close()
    times.sort()
    return statistics.median(times), times[int(0.99 * (len(times) - 1))], size


def bench_exporter(platform, url, n_scrapes):
    port = free_port()
    t_start = time.time()
    e = P([PY, "-m", "obs_bridges", platform], {**ENV[platform](url), "LISTEN_PORT": str(port),
                                                "LISTEN_ADDR": "127.0.0.1"})
    try:
        def ready():
            h = json.loads(get(f"http://127.0.0.1:{port}/healthz"))
            return all(u["ok"] for u in h["upstreams"].values())
        wait(ready, 120)
        time.sleep(1)
        h = json.loads(get(f"http://127.0.0.1:{port}/healthz"))
        reqs = requests_log(url, platform, t_start)
        p50, p99, size = scrape_latency(port, n_scrapes)
        rss = e.rss_mb()
        series = sum(1 for ln in get(f"http://127.0.0.1:{port}/metrics").decode().splitlines()
                     if ln and not ln.startswith("#"))
        return {"p50_ms": p50, "p99_ms": p99, "rss_mb": rss, "series": series, "bytes": size,
                "first_poll_requests": len(reqs), "health": h}
    finally:
        e.stop()


def per_hour_estimate(platform, n, first_poll_requests):
    """Requests/hour at default intervals (from the exporters' documented schedule)."""
    if platform == "railway":
        # one batched document per upstream poll: deployments 60 s, metrics 60 s, usage 900 s, discovery 600 s
        return 60 + 60 + 4 + 6, "1 batched GraphQL document per poll, independent of project count " \
                                "(+ deploymentEvents for new deployments)"
    if platform == "vercel":
        return 60 * 1 + 6 * 1, "1 page of 100 deployments/min + projects every 10 min (more pages only when >100 in 2 h)"
    if platform == "supabase":
        budget = 30
        spare = budget - 1
        health_interval = max(60, -(-60 * n // spare))
        return 60 + n * 3600 / health_interval, f"projects every 60 s + {n} health calls every {health_interval} s " \
                                                f"(budget {budget}/min of the 60/min limit)"
    return None, ""


def github_etag_run(seconds, n, k, use_etags):
    s, url = sim(n, "--github-rate", str(2 * k), "--time-scale", str(1 / k), "--history-hours", "2")
    port = free_port()
    try:
        env = {**ENV["github"](url), "LISTEN_PORT": str(port), "LISTEN_ADDR": "127.0.0.1",
               "GITHUB_POLL_INTERVAL_SECONDS": str(60 / k), "GITHUB_METADATA_INTERVAL_SECONDS": str(600 / k),
               "GITHUB_USE_ETAGS": "true" if use_etags else "false"}
        e = P([PY, "-m", "obs_bridges", "github"], env)
        try:
            wait(lambda: json.loads(get(f"http://127.0.0.1:{port}/healthz"))["upstreams"]["runs"]["ok"], 120)
            t0 = time.time()
            time.sleep(seconds)
            t1 = time.time()
            reqs = requests_log(url, "github", t0)
            world = json.loads(get(f"{url}/_control/world/github"))
        finally:
            e.stop()
    finally:
        s.stop()
    counted = sum(1 for r in reqs if r["counted"])
    jobs = sum(1 for r in reqs if r["counted"] and r["path"].endswith("/jobs"))
    # runs created while measuring (scheduled ones and the smoke runs that follow successful deploys)
    runs = sum(1 for r in world["runs"] if t0 <= r["created"] < t1)
    sim_hours = seconds * k / 3600
    return {"total_per_hour": len(reqs) / sim_hours, "counted_per_hour": counted / sim_hours,
            "not_modified": sum(1 for r in reqs if r["status"] == 304) / sim_hours,
            "runs_per_hour": runs / sim_hours, "counted_per_run": counted / max(1, runs),
            "jobs_share": jobs / max(1, counted)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--entities", type=int, default=50)
    ap.add_argument("--scrapes", type=int, default=2000)
    ap.add_argument("--github-seconds", type=float, default=60)
    ap.add_argument("--compress", type=float, default=30, help="time compression for the GitHub ETag run")
    a = ap.parse_args()
    n = a.entities
    s, url = sim(n)
    results = {}
    try:
        for plat in ("github", "vercel", "railway", "supabase"):
            results[plat] = bench_exporter(plat, url, a.scrapes)
    finally:
        s.stop()
    print(f"## Exporter benchmark ({n} repositories/projects per platform, {a.scrapes} sequential scrapes)\n")
    print("| exporter | series | /metrics bytes | p50 ms | p99 ms | RSS MB | first-poll requests |")
    print("|---|---|---|---|---|---|---|")
    for plat, r in results.items():
        print(f"| {plat} | {r['series']} | {r['bytes']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
              f"{r['rss_mb']:.1f} | {r['first_poll_requests']} |")
    print("\n### Upstream requests per hour at default intervals\n")
    print("| platform | requests/h | limit/h | share | how |")
    print("|---|---|---|---|---|")
    for plat in ("railway", "vercel", "supabase"):
        rph, how = per_hour_estimate(plat, n, results[plat]["first_poll_requests"])
        lim = LIMITS_PER_HOUR[plat]
        share = f"{100 * rph / lim:.1f}%" if lim else "n/a (not published)"
        print(f"| {plat} | {rph:.0f} | {lim or '?'} | {share} | {how} |")
    with_e = github_etag_run(a.github_seconds, n, a.compress, True)
    without = github_etag_run(a.github_seconds, n, a.compress, False)
    print(f"| github (ETags) | {with_e['counted_per_hour']:.0f} counted ({with_e['total_per_hour']:.0f} sent, "
          f"{with_e['not_modified']:.0f} answered 304) | 5000 | {100 * with_e['counted_per_hour'] / 5000:.1f}% | "
          f"measured: {n} repos, poll 60 s, world {a.compress:.0f}x compressed; {with_e['runs_per_hour']:.0f} runs/h "
          f"(2 scheduled per repo + smoke runs after deploys), {with_e['counted_per_run']:.1f} counted per run "
          f"({100 * with_e['jobs_share']:.0f}% of them job lists) |")
    print(f"| github (no ETags) | {without['counted_per_hour']:.0f} counted | 5000 | "
          f"{100 * without['counted_per_hour'] / 5000:.1f}% | same world, GITHUB_USE_ETAGS=false |")


if __name__ == "__main__":
    main()
