"""Ingest cost of the stack's native Prometheus and collector, measured on this machine (docs/capacity.md).

  .venv/bin/python -m scripts.bench_capacity                     (from the repository root; about 8 minutes)
  .venv/bin/python -m scripts.bench_capacity --series 10000 --window 30 --skip-collector   (quick)

Prints a line per measurement and, with --json FILE, writes every number measured. Binaries come from
scripts/install_tools.py's cache (installed on first use)."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from scripts.capacity.collector_bench import CollectorResult, bench_collector
from scripts.capacity.prometheus_bench import PromResult, bench_compression, bench_prometheus
from tests.harness import compose


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown")
    mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal:"))
    versions = compose.read_env()
    return {"cpus": os.cpu_count(), "cpu_model": model, "mem_gib": round(mem / 2**20, 1),
            "prometheus": versions["PROMETHEUS_VERSION"], "otelcol": versions["OTELCOL_VERSION"]}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", default="10000,50000,100000", help="comma-separated series counts")
    ap.add_argument("--window", type=float, default=45, help="seconds measured per series count")
    ap.add_argument("--interval", help="scrape interval instead of prometheus.yml's (e.g. 1s: more samples/s)")
    ap.add_argument("--span-rate", type=int, default=5000)
    ap.add_argument("--log-rate", type=int, default=5000)
    ap.add_argument("--collector-seconds", type=float, default=30)
    ap.add_argument("--skip-prometheus", action="store_true")
    ap.add_argument("--skip-compression", action="store_true")
    ap.add_argument("--skip-collector", action="store_true")
    ap.add_argument("--json", type=Path)
    return ap


def show_prometheus(r: PromResult) -> None:
    print(f"prometheus {r.series:>7} series: {r.samples_per_s:>8} samples/s, {r.cpu_cores:.3f} cores "
          f"-> {r.samples_per_cpu_second:>8} samples/CPU-s; RSS {r.rss_bytes / 2**20:.0f} MiB "
          f"(peak {r.peak_rss_bytes / 2**20:.0f}), heap {r.heap_inuse_bytes / 2**20:.0f} MiB", flush=True)


def show_collector(r: CollectorResult) -> None:
    too_early = "" if r.dropped_too_early is None else f", {r.dropped_too_early} traces dropped too early"
    print(f"collector {r.signal}: offered {r.offered_per_s}/s, accepted {r.accepted_per_s}/s, delivered "
          f"{r.delivered}/{r.accepted}; {r.cpu_cores:.3f} cores (idle {r.idle_cpu_cores:.3f}) -> "
          f"{r.items_per_cpu_second} {r.signal}/CPU-s; peak RSS {r.peak_rss_bytes / 2**20:.0f} MiB; "
          f"{r.otlp_bytes_per_item:.0f} OTLP bytes/item; own metrics: {r.receiver_accepted} accepted, "
          f"{r.refused} refused{too_early}", flush=True)


def run_prometheus(args: argparse.Namespace, work: Path, report: dict) -> None:
    rows = []
    for n in (int(x) for x in args.series.split(",")):
        d = work / f"prom-{n}"
        d.mkdir()
        rows.append(bench_prometheus(n, args.window, d, args.interval))
        show_prometheus(rows[-1])
        shutil.rmtree(d)
    report["prometheus"] = [asdict(r) for r in rows]
    if len(rows) >= 2:
        lo, hi = rows[0], rows[-1]
        per = (hi.rss_bytes - lo.rss_bytes) / (hi.series - lo.series)
        report["prometheus_rss_bytes_per_series"] = round(per)
        print(f"prometheus memory: {per:.0f} bytes RSS per added series = {per * 1e6 / 2**30:.2f} GiB "
              f"per million series (slope {lo.series}..{hi.series})", flush=True)


def run_compression(work: Path, report: dict) -> None:
    c = report["compression"] = bench_compression(work)
    print(f"tsdb block: {c['samples']} samples of {c['series']} series ({c['samples_per_series']}/series): "
          f"{c['bytes_per_sample_chunks']} bytes/sample in chunks, {c['bytes_per_sample_block']} with the "
          f"index; WAL {c['wal_bytes_per_sample']} bytes/sample", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    facts = machine()
    print(f"machine: {facts['cpus']} CPUs ({facts['cpu_model']}), {facts['mem_gib']} GiB; "
          f"prometheus {facts['prometheus']}, otelcol {facts['otelcol']}", flush=True)
    report: dict = {"machine": facts}
    work = Path(tempfile.mkdtemp(prefix="obs-bench-"))
    try:
        if not args.skip_prometheus:
            run_prometheus(args, work, report)
        if not args.skip_compression:
            (work / "compression").mkdir()
            run_compression(work / "compression", report)
        if not args.skip_collector:
            (work / "otelcol").mkdir()
            res = bench_collector({"spans": args.span_rate, "logs": args.log_rate}, args.collector_seconds,
                                  work / "otelcol")
            report["collector"] = [asdict(r) for r in res]
            for r in res:
                show_collector(r)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0
