"""The demo's 5xx share as the APIHighErrorRate rules see it.

    python demo/bench/error_mix.py [--duration 1800] [--rps 8] [--concurrency 4] [--json out.json]

Starts `python -m obs_demo serve` and `python -m obs_demo loadgen` (the compose defaults: 8 rps, 4 workers)
on 127.0.0.1, scrapes the app's /metrics every --scrape seconds (15 s, the stack's interval) and computes,
from `http_requests_total`, what `service_environment:http_requests:error_ratio_rate5m` /
`...:error_ratio_rate1m` compute (prometheus/rules/golden-signals.yml): every series the app exports counts
(only /metrics and /healthz are not instrumented; /vitals, 404s of unmatched paths and 4xx are in the
denominator), 5xx is the numerator. Windows slide by one scrape, like a rule evaluated every scrape;
increases are taken between scrapes (no extrapolation, which cancels out in a ratio).

Also reports when a 5xx series is first seen increasing between two scrapes: what the live dashboard
test (tests/dashboards/test_queries_live.py) waits for (`increase(http_requests_total{5xx}[10m]) > 0`).
Only 127.0.0.1 is contacted; everything is bounded by --duration.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchlib import app_env, free_port, start_app, start_sink, stop
from prometheus_client.parser import text_string_to_metric_families



def scrape(base: str) -> dict[tuple, float]:
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):  # a real parser: route templates carry braces
        for s in fam.samples:
            if s.name == "http_requests_total":
                k = (s.labels.get("method"), s.labels.get("endpoint"), s.labels.get("status_code"))
                out[k] = out.get(k, 0.0) + s.value
    return out


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def windows(samples: list[dict], span: int) -> list[tuple[float, float, float]]:
    """(ratio, requests, errors) per window of `span` scrape intervals, sliding by one scrape."""
    out = []
    for i in range(span, len(samples)):
        a, b = samples[i - span], samples[i]
        total = sum(v - a.get(k, 0.0) for k, v in b.items())
        errors = sum(v - a.get(k, 0.0) for k, v in b.items() if (k[2] or "").startswith("5"))
        if total > 0:
            out.append((errors / total, total, errors))
    return out


def summary(ws: list[tuple[float, float, float]]) -> dict:
    ratios = [w[0] for w in ws]
    return {"windows": len(ws), "mean": statistics.fmean(ratios) if ratios else float("nan"),
            "p50": pct(ratios, 0.5), "p90": pct(ratios, 0.9), "p99": pct(ratios, 0.99), "max": max(ratios, default=float("nan")),
            "share_over_1pct": sum(r > 0.01 for r in ratios) / len(ratios) if ratios else float("nan"),
            "share_over_0_6pct": sum(r > 0.006 for r in ratios) / len(ratios) if ratios else float("nan"),
            "requests_per_window": statistics.fmean(w[1] for w in ws) if ws else float("nan"),
            "errors_per_window": statistics.fmean(w[2] for w in ws) if ws else float("nan")}


def bootstrap_p99(samples: list[dict], span: int, n: int = 20000, seed: int = 1) -> float:
    """p99 of 5-minute windows rebuilt from randomly drawn scrape intervals: the spread the same mix would
    have if every interval's errors were independent of the others (an upper bound for paced errors)."""
    deltas = []
    for a, b in zip(samples, samples[1:], strict=False):
        deltas.append((sum(v - a.get(k, 0.0) for k, v in b.items()),
                       sum(v - a.get(k, 0.0) for k, v in b.items() if (k[2] or "").startswith("5"))))
    if len(deltas) < span:
        return float("nan")
    rng = random.Random(seed)
    ratios = []
    for _ in range(n):
        pick = [rng.choice(deltas) for _ in range(span)]
        t = sum(p[0] for p in pick)
        ratios.append(sum(p[1] for p in pick) / t if t else 0.0)
    return pct(ratios, 0.99)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=1800)
    p.add_argument("--rps", type=float, default=8)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--scrape", type=float, default=15)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--json", default="")
    a = p.parse_args(argv)

    sink, sink_url = start_sink()
    tmp = tempfile.mkdtemp(prefix="obs-error-mix-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = app_env(port, sink_url, os.path.join(tmp, "demo.sqlite"), DEPLOYMENT_ENVIRONMENT="local")
    app = start_app(env)
    load = None
    samples: list[dict] = []
    first_5xx_increase = None
    try:
        largs = ["--target", base, "--rps", str(a.rps), "--concurrency", str(a.concurrency),
                 "--duration", str(a.duration + 2 * a.scrape)]
        if a.seed is not None:
            largs += ["--seed", str(a.seed)]
        load = subprocess.Popen([sys.executable, "-m", "obs_demo", "loadgen", *largs], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        t0 = time.monotonic()
        nxt = t0
        for _ in range(int(a.duration / a.scrape) + 1):
            samples.append(scrape(base))
            if first_5xx_increase is None and len(samples) >= 2:
                prev, cur = samples[-2], samples[-1]
                if any(k[2].startswith("5") and k in prev and v > prev[k] for k, v in cur.items()):
                    first_5xx_increase = round(time.monotonic() - t0, 1)
            nxt += a.scrape
            time.sleep(max(0.0, nxt - time.monotonic()))
            if load.poll() is not None and len(samples) <= a.duration / a.scrape:
                raise SystemExit(f"load generator exited early ({load.returncode})")
    finally:
        if load is not None:
            stop(load, grace=20)
        stop(app, grace=20)
        sink.shutdown()

    span5, span1 = round(300 / a.scrape), round(60 / a.scrape)
    last, elapsed = samples[-1], (len(samples) - 1) * a.scrape
    by = collections.Counter()
    for (m, ep, st), v in last.items():
        by[f"{m} {ep} {st}"] += v
    total = sum(last.values())
    errors = sum(v for k, v in last.items() if (k[2] or "").startswith("5"))
    where = subprocess.run([sys.executable, "-c", "import obs_demo; print(obs_demo.__file__)"], env=env,
                           capture_output=True, text=True, timeout=60).stdout.strip()
    result = {
        "obs_demo": where, "duration_s": elapsed, "requests": total, "requests_per_s": total / elapsed if elapsed else 0,
        "errors_5xx": errors, "error_ratio": errors / total if total else float("nan"),
        "errors_by_series": {k: v for k, v in sorted(by.items()) if k.rsplit(" ", 1)[1].startswith("5")},
        "first_5xx_series_increase_s": first_5xx_increase,
        "window_5m": summary(windows(samples, span5)), "window_1m": summary(windows(samples, span1)),
        "window_5m_p99_if_independent": bootstrap_p99(samples, span5),
    }
    print(json.dumps(result, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({**result, "samples": [{" ".join(map(str, k)): v for k, v in s.items()} for s in samples]}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
