#!/usr/bin/env python3
"""Benchmark of GitHub webhooks (issue 15; not a test, prints a Markdown report).

Same world as bench_exporters.py's GitHub run: 50 repositories, 2 scheduled runs per repository per hour plus
the smoke runs after deploys, compressed k x in time (arrivals and durations k x faster, every interval of
the bridge k x shorter, the look-back window included, so a page holds what it would hold uncompressed; k is
at most 12 because the look-back cannot go under 600 s). `--mode webhooks`: the simulator delivers signed
webhooks (with its default 5% redeliveries and 10% reordered in_progress) to `obs-bridge github-webhook`,
which polls only to reconcile; `--mode poll`: `obs-bridge github` alone, the comparison. Measures:
  * counted GitHub requests (those that spend the 5,000/h limit) per simulated hour;
  * the delay from a run completing to /metrics showing it: probe runs (event repository_dispatch, which the
    world never produces) finish at a known time while /metrics is read every 20 ms;
  * that nothing was counted twice: every run completed in the measured window counted exactly once.

Usage: python exporters/bench/bench_github_webhooks.py [--mode webhooks|poll] [--seconds 600] [--compress 12]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_exporters import ENV, PY, P, free_port, get, requests_log, sim, wait

from prometheus_client.parser import text_string_to_metric_families


def metric(port: int, name: str, **labels) -> float:
    text = get(f"http://127.0.0.1:{port}/metrics").decode()
    return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def probe_delays(sim_url: str, port: int, n: int) -> list[float]:
    """Seconds from a probe run's completion to /metrics counting it, one probe at a time."""
    delays = []
    world = json.loads(get(f"{sim_url}/_control/world/github"))
    repo = world["repos"][0]
    for _ in range(n):
        before = metric(port, "github_actions_workflow_runs_total", event="repository_dispatch")
        rid = post(f"{sim_url}/_control/inject/github", {"repo": repo, "count": 1, "state": "in_progress",
                                                          "finish_in": 1.0, "event": "repository_dispatch"})["ids"][0]
        finished = next(r["finished"] for r in json.loads(get(f"{sim_url}/_control/world/github"))["runs"]
                        if r["id"] == rid)
        while metric(port, "github_actions_workflow_runs_total", event="repository_dispatch") <= before:
            if time.time() > finished + 30:
                raise RuntimeError("a probe run was not counted within 30 s")
            time.sleep(0.02)
        delays.append(time.time() - finished)
    return delays


def run(mode: str, seconds: float, n: int, k: float, probes: int) -> dict:
    hook_port, secret = free_port(), f"/tmp/bench-webhook-secret-{free_port()}"
    hooks = ["--github-webhook-url", f"http://127.0.0.1:{hook_port}/webhook", "--github-webhook-secret-file",
             secret] if mode == "webhooks" else []
    s, url = sim(n, "--github-rate", str(2 * k), "--time-scale", str(1 / k), "--history-hours", "2", *hooks)
    port = free_port()
    try:
        env = {**ENV["github"](url), "LISTEN_PORT": str(port), "LISTEN_ADDR": "127.0.0.1",
               "GITHUB_POLL_INTERVAL_SECONDS": str(60 / k), "GITHUB_METADATA_INTERVAL_SECONDS": str(600 / k),
               "GITHUB_LOOKBACK_SECONDS": str(7200 / k), "GITHUB_RECONCILE_INTERVAL_SECONDS": str(3600 / k),
               "GITHUB_WEBHOOK_TRUST_SECONDS": str(86400 / k), "GITHUB_WEBHOOK_PORT": str(hook_port),
               "GITHUB_WEBHOOK_SECRET_FILE": secret, "GITHUB_BILLING": "false"}
        e = P([PY, "-m", "obs_bridges", "github-webhook" if mode == "webhooks" else "github"], env)
        try:
            wait(lambda: json.loads(get(f"http://127.0.0.1:{port}/healthz"))["upstreams"]["runs"]["ok"], 120)
            if mode == "webhooks":  # warm-up: 90% of the repositories have delivered (the poller relaxes per
                # repository; the rest are still polled every interval, which the count below includes)
                wait(lambda: metric(port, "github_webhook_repositories") >= 0.9 * n, 900)
            t0 = time.time()
            c0 = metric(port, "github_actions_workflow_runs_total")
            time.sleep(seconds)
            t1 = time.time()
            counted_total = metric(port, "github_actions_workflow_runs_total") - c0
            reqs = requests_log(url, "github", t0)
            world = json.loads(get(f"{url}/_control/world/github"))
            sender = json.loads(get(f"{url}/_control/webhooks/github")) if mode == "webhooks" else {}
            delays = probe_delays(url, port, probes) if mode == "webhooks" else []
            dup = {r: metric(port, "github_webhook_deliveries_total", result=r)
                   for r in ("counted", "duplicate", "redelivery", "stale", "seeded", "bad_signature")}
        finally:
            e.stop()
    finally:
        s.stop()
    sim_hours = seconds * k / 3600
    counted = sum(1 for r in reqs if r["counted"])
    completed = sum(1 for r in world["runs"] if r["status"] == "completed" and t0 <= r["finished"] < t1)
    return {"counted_per_hour": counted / sim_hours, "sent_per_hour": len(reqs) / sim_hours,
            "jobs_per_hour": sum(1 for r in reqs if r["counted"] and r["path"].endswith("/jobs")) / sim_hours,
            "runs_per_hour": sum(1 for r in world["runs"] if t0 <= r["created"] < t1) / sim_hours,
            "completed": completed, "counted_runs": counted_total, "deliveries": dup, "sender": sender,
            "delays": sorted(delays)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repos", type=int, default=50)
    ap.add_argument("--mode", choices=("webhooks", "poll"), default="webhooks")
    ap.add_argument("--seconds", type=float, default=600, help="real seconds measured")
    ap.add_argument("--compress", type=float, default=12)
    ap.add_argument("--probes", type=int, default=20)
    a = ap.parse_args()
    r = run(a.mode, a.seconds, a.repos, a.compress, a.probes)
    d = r["delays"]
    print(f"## GitHub {a.mode} ({a.repos} repositories, world {a.compress:.0f}x compressed, "
          f"{a.seconds * a.compress / 3600:.1f} simulated hours)\n")
    print("| measure | value |\n|---|---|")
    print(f"| counted GitHub requests per hour | {r['counted_per_hour']:.0f} "
          f"({100 * r['counted_per_hour'] / 5000:.2f}% of 5,000/h) |")
    print(f"| of which job lists | {r['jobs_per_hour']:.0f}/h |")
    print(f"| requests sent per hour (304s included, free) | {r['sent_per_hour']:.0f} |")
    print(f"| runs per hour | {r['runs_per_hour']:.0f} |")
    print(f"| runs completed in the window / counted | {r['completed']} / {r['counted_runs']:.0f} |")
    if a.mode == "poll":
        return
    print(f"| deliveries by result | {', '.join(f'{k} {v:.0f}' for k, v in r['deliveries'].items())} |")
    print(f"| sender | sent {r['sender']['sent']}, failed {r['sender']['failed']}, redelivered "
          f"{r['sender']['redelivered']}, reordered {r['sender']['reordered']} |")
    print(f"| run completed -> /metrics ({len(d)} probes) | p50 {statistics.median(d):.2f} s, "
          f"max {d[-1]:.2f} s (polling alone: up to the 60 s poll interval) |")


if __name__ == "__main__":
    main()
