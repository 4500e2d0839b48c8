"""Prometheus' ingest cost (samples/s, CPU, memory per series count) and its bytes per sample on disk."""
from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from scripts.capacity.procs import PeakRss, cpu_seconds, get, rss_bytes, start, tool
from scripts.capacity.targets import SERIES_PER_TARGET, Targets
from tests.harness import compose
from tests.support.promtext import metric_sum
from tests.support.ports import free_port
from tests.support.wait import wait_for

ROOT = Path(__file__).resolve().parents[2]
COMPRESSION_SERIES = 10000
CHUNK_SAMPLES = 120          # Prometheus cuts a chunk at 120 samples: a full one compresses as in a 2 h block


def parse_duration(s: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for u in ("ms", "s", "m", "h"):
        if s.endswith(u) and s[: -len(u)].isdigit():
            return int(s[: -len(u)]) * units[u]
    raise ValueError(s)


def dir_bytes(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def prometheus_flags() -> list[str]:
    """docker-compose.yml's Prometheus command, without the paths and address this run sets itself."""
    svc = compose.load_compose({**compose.read_env(), "OBS_NOTIFICATIONS": ""})["services"]["prometheus"]
    own = ("--config.file", "--web.config.file", "--storage.tsdb.path", "--web.listen-address")
    return [f for f in svc["command"] if not f.startswith(own)]


def prometheus_config(targets: Targets, scrape_interval: str | None = None) -> dict:
    shipped = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    glob = dict(shipped["global"])
    if scrape_interval:
        glob.update(scrape_interval=scrape_interval, scrape_timeout=scrape_interval)
    return {"global": glob, "storage": shipped.get("storage", {}), "scrape_configs": targets.scrape_configs()}


@dataclass
class PromResult:
    series: int
    scrape_interval_s: float
    window_s: float
    samples_per_s: float
    cpu_cores: float
    samples_per_cpu_second: float
    rss_bytes: int
    peak_rss_bytes: int
    heap_inuse_bytes: int
    head_series: int


class Prometheus:
    def __init__(self, work: Path, cfg: dict, extra: list[str] = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = work / "data"
        (work / "prometheus.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        argv = [str(tool("prometheus")), f"--config.file={work / 'prometheus.yml'}",
                f"--web.config.file={ROOT / 'prometheus' / 'web.yml'}", f"--storage.tsdb.path={self.data}",
                f"--web.listen-address=127.0.0.1:{self.port}", *prometheus_flags(), *extra]
        self.svc = start(argv, work / "prometheus.log", {"OBS_NOTIFICATIONS": ""}, f"{self.url}/-/ready")

    def self_metrics(self) -> str:
        return get(f"{self.url}/metrics").decode()

    def appended(self) -> float:
        return metric_sum(self.self_metrics(), "prometheus_tsdb_head_samples_appended_total")

    def snapshot(self) -> Path:
        """The head written out as a TSDB block (needs --web.enable-admin-api)."""
        req = urllib.request.Request(f"{self.url}/api/v1/admin/tsdb/snapshot", method="POST")
        with urllib.request.urlopen(req, timeout=120) as r:
            return self.data / "snapshots" / json.loads(r.read())["data"]["name"]


def bench_prometheus(series: int, window: float, work: Path, interval: str | None = None) -> PromResult:
    n = max(1, series // SERIES_PER_TARGET)
    targets = Targets(n, min(series, SERIES_PER_TARGET))
    cfg = prometheus_config(targets, interval)
    every = parse_duration(cfg["global"]["scrape_interval"])
    prom = Prometheus(work, cfg)
    try:
        pid = prom.svc.proc.pid
        # every target scraped twice: the series exist (creating them is a one-off cost, not ingest)
        wait_for(lambda: min(targets.scrapes) >= 2, 3 * every + 30, 0.5, f"{n} targets scraped twice")
        # Samples arrive in one burst per scrape interval: measure whole intervals, starting just after a
        # round of scrapes has been appended (2 s: parse and commit of the largest target take far less).
        done = sum(targets.scrapes)
        wait_for(lambda: sum(targets.scrapes) >= done + n, every + 30, 0.05, "the next round of scrapes")
        time.sleep(2)
        rounds = max(1, round(window / every))
        a0, c0, t0 = prom.appended(), cpu_seconds(pid), time.monotonic()
        with PeakRss(pid) as peak:
            time.sleep(rounds * every)
        a1, c1, t1 = prom.appended(), cpu_seconds(pid), time.monotonic()
        text = prom.self_metrics()
        dt, dcpu = t1 - t0, c1 - c0
        return PromResult(series=n * targets.per_target, scrape_interval_s=every, window_s=round(dt, 1),
                          samples_per_s=round((a1 - a0) / dt), cpu_cores=round(dcpu / dt, 4),
                          samples_per_cpu_second=round((a1 - a0) / dcpu) if dcpu else 0,
                          rss_bytes=rss_bytes(pid), peak_rss_bytes=peak.peak,
                          heap_inuse_bytes=int(metric_sum(text, "go_memstats_heap_inuse_bytes")),
                          head_series=int(metric_sum(text, "prometheus_tsdb_head_series")))
    finally:
        prom.svc.stop()
        targets.close()


def bench_compression(work: Path) -> dict:
    """Bytes per sample of a real block: 1 s scrapes until every series holds a full chunk, then a snapshot
    (the admin API writes the head out as a block, the format retention.size counts)."""
    targets = Targets(COMPRESSION_SERIES // SERIES_PER_TARGET)
    prom = Prometheus(work, prometheus_config(targets, "1s"), ["--web.enable-admin-api"])
    try:
        wait_for(lambda: min(targets.scrapes) >= CHUNK_SAMPLES + 5, CHUNK_SAMPLES * 2 + 60, 2,
                 "a full chunk per series")
        appended, wal = prom.appended(), dir_bytes(prom.data / "wal")
        blocks = [d for d in prom.snapshot().iterdir() if (d / "meta.json").exists()]
        metas = [json.loads((d / "meta.json").read_text()) for d in blocks]
        samples = sum(m["stats"]["numSamples"] for m in metas)
        chunks = sum(dir_bytes(d / "chunks") for d in blocks)
        index = sum((d / "index").stat().st_size for d in blocks)
        nseries = sum(m["stats"]["numSeries"] for m in metas)
        return {"series": nseries, "samples": samples, "samples_per_series": round(samples / nseries, 1),
                "chunk_bytes": chunks, "index_bytes": index,
                "bytes_per_sample_chunks": round(chunks / samples, 3),
                "bytes_per_sample_block": round((chunks + index) / samples, 3),
                # the WAL (also counted by retention.size) holds ~2-3 h of raw samples before compaction
                "wal_bytes": wal, "wal_bytes_per_sample": round(wal / appended, 3)}
    finally:
        prom.svc.stop()
        targets.close()
