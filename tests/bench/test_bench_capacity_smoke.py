"""scripts/bench_capacity.py (docs/capacity.md) end to end at tiny numbers: the real Prometheus and collector,
one short run each, so that a change to the bench or to the shipped configs it loads is caught before the
next capacity measurement. Checks measured values, not the script's shape: samples arrive at the rate the
targets offer, every span and record sent is delivered, and the collector's own counters agree."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT, require_tool

SERIES, RATE, SECONDS = 300, 200, 3


def test_bench_capacity_measures_prometheus_and_the_collector(tmp_path):
    require_tool("prometheus", "prometheus")
    require_tool("otelcol", "otelcol")
    out = tmp_path / "bench.json"
    argv = [sys.executable, "-m", "scripts.bench_capacity", "--series", str(SERIES), "--interval", "1s",
            "--window", "5", "--skip-compression", "--span-rate", str(RATE), "--log-rate", str(RATE),
            "--collector-seconds", str(SECONDS), "--json", str(out)]
    # traces decided 2 s after their first span, not 10 s: waiting for them to drain is most of the run time
    env = {**os.environ, "TRACE_DECISION_WAIT": "2s"}
    p = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)   # about 30 s
    assert p.returncode == 0, f"{p.stdout}\n{p.stderr}"
    report = json.loads(out.read_text())

    assert report["machine"]["cpus"] >= 1 and report["machine"]["otelcol"], report["machine"]
    [prom] = report["prometheus"]
    assert prom["series"] == SERIES and prom["scrape_interval_s"] == 1, prom
    assert prom["head_series"] >= SERIES, prom
    # one sample per series and scrape, plus the few per target Prometheus adds itself (up, ...)
    assert 0.6 * SERIES <= prom["samples_per_s"] <= 1.6 * SERIES, prom
    assert prom["rss_bytes"] > 0 and prom["peak_rss_bytes"] > 0 and prom["heap_inuse_bytes"] > 0, prom
    assert prom["cpu_cores"] >= 0, prom

    runs = {r["signal"]: r for r in report["collector"]}
    assert set(runs) == {"spans", "logs"}, report["collector"]
    for sig, r in runs.items():
        assert r["offered_per_s"] == RATE, r
        assert r["accepted"] >= RATE * SECONDS // 2, r     # a slow request may push the last one past the end
        assert r["delivered"] == r["accepted"], f"{sig}: not everything sent arrived at the sink: {r}"
        assert r["receiver_accepted"] == r["accepted"], f"{sig}: the collector's own count disagrees: {r}"
        assert r["refused"] == 0, r
        assert r["peak_rss_bytes"] > 0 and 100 < r["otlp_bytes_per_item"] < 500, r
    assert runs["spans"]["dropped_too_early"] == 0, runs["spans"]
    assert runs["logs"]["dropped_too_early"] is None, runs["logs"]
    assert "traces dropped too early" in p.stdout and " refused" in p.stdout, p.stdout
