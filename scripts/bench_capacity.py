#!/usr/bin/env python3
"""Ingest cost of the stack's native Prometheus and collector, measured on this machine (docs/capacity.md).

Prometheus: the real binary at the .env version, with docker-compose.yml's flags and prometheus/prometheus.yml's
`global` and `storage` blocks (scrape interval, external labels, out-of-order window), scraping synthetic
targets this script serves on 127.0.0.1 (counters and gauges that move like real ones: most counters step by
small integers, some series stand still). For each series count: samples/s ingested, CPU (the process's
utime+stime from /proc), samples per CPU-second, resident memory and Go heap. Then a compression run: the
same targets scraped every second until every series has a full 120-sample chunk, the head written out as a
real TSDB block (the admin API's snapshot) and its bytes divided by the samples in it.

Collector: the real otelcol built from otelcol/builder-config.yaml, with otelcol/config.yaml's traces and
logs pipelines (memory_limiter, resource, tail_sampling / filter/log-sampling, transform/label-names, batch)
and its exporters (persistent file_storage queues) pointed at a counting stand-in sink here. A load generator
sends OTLP/HTTP protobuf at a fixed rate; CPU is the collector's own, less its idle CPU.

  .venv/bin/python -m scripts.bench_capacity                     (from the repository root; about 8 minutes)
  .venv/bin/python -m scripts.bench_capacity --series 10000 --window 30 --skip-collector   (quick)

Prints a table per part and, with --json FILE, writes every number measured. Binaries come from
scripts/install_tools.py's cache (installed on first use)."""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from concurrent import futures
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from scripts import install_tools
from tests.harness import compose

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERIES_PER_TARGET = 5000     # a large exporter; 100k series = 20 targets
COMPRESSION_SERIES = 10000
CHUNK_SAMPLES = 120          # Prometheus cuts a chunk at 120 samples: a full one compresses as in a 2 h block


# ------------------------------------------------------------------ /proc

def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads), /proc/<pid>/stat fields 14 and 15."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what: str, fn, timeout: float, every: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = fn()
            if v:
                return v
            last = v
        except Exception as e:  # noqa: BLE001 - reported below if it never succeeds
            last = e
        time.sleep(every)
    raise TimeoutError(f"{what}: not after {timeout:.0f} s (last: {last!r})")


def get(url: str, timeout: float = 10) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def metric_sum(text: str, name: str) -> float:
    """Sum of every sample of `name` in a Prometheus text exposition."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name)] in " {":
            total += float(line.rsplit(" ", 1)[1])
    return total


class PeakRss:
    """The highest RSS of a process, sampled every 0.2 s while in the `with` block."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            self._stop.wait(0.2)

    def __enter__(self) -> "PeakRss":
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()


class Process:
    """A real binary on loopback, its output in a log file, stopped with SIGTERM then SIGKILL."""

    def __init__(self, argv: list[str], log: Path, env: dict | None = None):
        self.log = log
        self.p = subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                  env={**os.environ, **(env or {})}, start_new_session=True)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(10)

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])


# ------------------------------------------------------------------ synthetic scrape targets

class Targets:
    """`n` targets of SERIES_PER_TARGET series each at http://127.0.0.1:<port>/metrics/<i>. Per scrape, each
    counter grows by its own small step (0 for a quarter of them: series that stand still) and each gauge
    takes one of a few values, as request counters and queue lengths do."""

    def __init__(self, n: int):
        self.n = n
        self.scrapes = [0] * n
        rnd = random.Random(1)
        self.series = []
        for t in range(n):
            rows = []
            for j in range(SERIES_PER_TARGET):
                if j % 5 == 4:
                    rows.append((f'bench_queue_length{{target="t{t}",queue="q{j}"}} ', 0, rnd.choice((0, 1, 1, 2, 5))))
                else:
                    route, code = f"/api/r{j // 8}", ("200", "200", "200", "404", "500")[j % 5]
                    rows.append((f'bench_requests_total{{target="t{t}",route="{route}",code="{code}",n="{j}"}} ',
                                 rnd.randrange(10**6), rnd.choice((0, 1, 1, 2, 3, 7))))
            self.series.append(rows)
        targets = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                t = int(self.path.rsplit("/", 1)[1])
                k = targets.scrapes[t] = targets.scrapes[t] + 1
                body = "".join(f"{p}{base + k * step}\n" if p.startswith("bench_requests")
                               else f"{p}{(base + k * step) % 7}\n" for p, base, step in targets.series[t]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def scrape_configs(self) -> list[dict]:
        return [{"job_name": "bench", "static_configs": [
            {"targets": [f"127.0.0.1:{self.port}"], "labels": {"__metrics_path__": f"/metrics/{t}"}}
            for t in range(self.n)]}]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------ Prometheus

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
        binary = tool("prometheus")
        argv = [str(binary), f"--config.file={work / 'prometheus.yml'}",
                f"--web.config.file={ROOT / 'prometheus' / 'web.yml'}", f"--storage.tsdb.path={self.data}",
                f"--web.listen-address=127.0.0.1:{self.port}", *prometheus_flags(), *extra]
        self.proc = Process(argv, work / "prometheus.log", env={"OBS_NOTIFICATIONS": ""})
        try:
            wait_until("Prometheus ready", lambda: get(f"{self.url}/-/ready"), 60)
        except TimeoutError:
            self.proc.stop()
            raise RuntimeError(f"Prometheus did not start:\n{self.proc.tail()}") from None

    def query(self, q: str) -> float:
        r = json.loads(get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": q})))
        res = r["data"]["result"]
        return float(res[0]["value"][1]) if res else 0.0

    def self_metrics(self) -> str:
        return get(f"{self.url}/metrics").decode()

    def appended(self) -> float:
        return metric_sum(self.self_metrics(), "prometheus_tsdb_head_samples_appended_total")


def bench_prometheus(series: int, window: float, work: Path, interval: str | None = None) -> PromResult:
    n = max(1, series // SERIES_PER_TARGET)
    targets = Targets(n)
    cfg = prometheus_config(targets, interval)
    interval = parse_duration(cfg["global"]["scrape_interval"])
    prom = Prometheus(work, cfg)
    try:
        pid = prom.proc.p.pid
        # every target scraped twice: the series exist (creating them is a one-off cost, not ingest)
        wait_until(f"{n} targets scraped twice", lambda: min(targets.scrapes) >= 2, 3 * interval + 30)
        # Samples arrive in one burst per scrape interval: measure whole intervals, starting just after a
        # round of scrapes has been appended (2 s: parse and commit of the largest target take far less).
        done = sum(targets.scrapes)
        wait_until("the next round of scrapes", lambda: sum(targets.scrapes) >= done + n, interval + 30, every=0.05)
        time.sleep(2)
        rounds = max(1, round(window / interval))
        a0, c0, t0 = prom.appended(), cpu_seconds(pid), time.monotonic()
        with PeakRss(pid) as peak:
            time.sleep(rounds * interval)
        a1, c1, t1 = prom.appended(), cpu_seconds(pid), time.monotonic()
        text = prom.self_metrics()
        dt, dcpu = t1 - t0, c1 - c0
        return PromResult(series=n * SERIES_PER_TARGET, scrape_interval_s=interval, window_s=round(dt, 1),
                          samples_per_s=round((a1 - a0) / dt), cpu_cores=round(dcpu / dt, 4),
                          samples_per_cpu_second=round((a1 - a0) / dcpu) if dcpu else 0,
                          rss_bytes=rss_bytes(pid), peak_rss_bytes=peak.peak, heap_inuse_bytes=int(metric_sum(text, "go_memstats_heap_inuse_bytes")),
                          head_series=int(metric_sum(text, "prometheus_tsdb_head_series")))
    finally:
        prom.proc.stop()
        targets.close()


def dir_bytes(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def bench_compression(work: Path) -> dict:
    """Bytes per sample of a real block: 1 s scrapes until every series holds a full chunk, then a snapshot
    (the admin API writes the head out as a block, the format retention.size counts)."""
    targets = Targets(COMPRESSION_SERIES // SERIES_PER_TARGET)
    prom = Prometheus(work, prometheus_config(targets, "1s"), ["--web.enable-admin-api"])
    try:
        wait_until("a full chunk per series", lambda: min(targets.scrapes) >= CHUNK_SAMPLES + 5,
                   CHUNK_SAMPLES * 2 + 60, every=2)
        appended, wal = prom.appended(), dir_bytes(prom.data / "wal")
        req = urllib.request.Request(f"{prom.url}/api/v1/admin/tsdb/snapshot", method="POST")
        with urllib.request.urlopen(req, timeout=120) as r:
            name = json.loads(r.read())["data"]["name"]
        snap = prom.data / "snapshots" / name
        blocks = [d for d in snap.iterdir() if (d / "meta.json").exists()]
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
        prom.proc.stop()
        targets.close()


def parse_duration(s: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for u in ("ms", "s", "m", "h"):
        if s.endswith(u) and s[: -len(u)].isdigit():
            return int(s[: -len(u)]) * units[u]
    raise ValueError(s)


# ------------------------------------------------------------------ collector

class CountingSink:
    """Stands in for Tempo (OTLP gRPC) and Loki (OTLP/HTTP at /otlp/v1/logs): counts spans and log records."""

    def __init__(self):
        import grpc
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        self.spans = self.logs = 0
        self.lock = threading.Lock()
        sink = self

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request, context):
                n = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
                with sink.lock:
                    sink.spans += n
                return ExportTraceServiceResponse()

        self.grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), self.grpc)
        self.grpc_port = self.grpc.add_insecure_port("127.0.0.1:0")
        self.grpc.start()

        class Logs(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    import gzip
                    body = gzip.decompress(body)
                req = ExportLogsServiceRequest.FromString(body)
                n = sum(len(sl.log_records) for rl in req.resource_logs for sl in rl.scope_logs)
                with sink.lock:
                    sink.logs += n
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Logs)
        self.http.daemon_threads = True
        self.http_port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.grpc.stop(0)
        self.http.shutdown()
        self.http.server_close()


def collector_config(sink: CountingSink, ports: dict[str, int], queue_dir: Path) -> dict:
    """otelcol/config.yaml's traces and logs pipelines as shipped; only addresses and the queue directory
    change (listeners on 127.0.0.1, exporters to the sink)."""
    shipped = yaml.safe_load((ROOT / "otelcol" / "config.yaml").read_text())
    pipes = {k: shipped["service"]["pipelines"][k] for k in ("traces", "logs")}
    used = {p for pipe in pipes.values() for p in pipe["processors"]}
    exporters = {e: dict(shipped["exporters"][e]) for pipe in pipes.values() for e in pipe["exporters"]}
    for name, cfg in exporters.items():
        cfg["endpoint"] = (f"127.0.0.1:{sink.grpc_port}" if "grpc" in name
                           else f"http://127.0.0.1:{sink.http_port}/otlp")
    return {
        "extensions": {"health_check": {"endpoint": f"127.0.0.1:{ports['health']}"},
                       "file_storage": {**shipped["extensions"]["file_storage"], "directory": str(queue_dir)}},
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{ports['grpc']}"},
                                             "http": {"endpoint": f"127.0.0.1:{ports['http']}"}}}},
        "processors": {p: shipped["processors"][p] for p in used},
        "exporters": exporters,
        "service": {"extensions": ["health_check", "file_storage"], "pipelines": pipes,
                    "telemetry": {"logs": {"level": "warn", "encoding": "json"},
                                  "metrics": {"level": "none"}}},
    }


MARK = bytes.fromhex("5ce1ab1e5ce1ab1e5ce1ab1e")   # 12 bytes replaced by random ones in every request
BATCH = 100                                          # spans or records per request (an SDK's batch)


def span_payload() -> bytes:
    """One export of BATCH spans: 20 traces of 5 spans (a server span and 4 children), HTTP attributes."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    def kv(k, v):
        return KeyValue(key=k, value=AnyValue(int_value=v) if isinstance(v, int) else AnyValue(string_value=v))

    now = time.time_ns()
    spans = []
    for t in range(BATCH // 5):
        trace_id = MARK + t.to_bytes(4, "big")
        root = (t + 1).to_bytes(8, "big")
        for s in range(5):
            spans.append(Span(trace_id=trace_id, span_id=root if s == 0 else (t * 8 + s + 1 << 32).to_bytes(8, "big"),
                              parent_span_id=b"" if s == 0 else root, name="GET /api/items/{id}" if s == 0 else f"db.query {s}",
                              kind=Span.SPAN_KIND_SERVER if s == 0 else Span.SPAN_KIND_CLIENT,
                              start_time_unix_nano=now, end_time_unix_nano=now + 30_000_000,
                              attributes=[kv("http.request.method", "GET"), kv("http.route", "/api/items/{id}"),
                                          kv("http.response.status_code", 200), kv("server.address", "api.example"),
                                          kv("db.system", "postgresql")]))
    res = [kv("service.name", "bench-api"), kv("deployment.environment", "local"), kv("service.version", "1.2.3")]
    req = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource={"attributes": res}, scope_spans=[ScopeSpans(scope={"name": "bench"}, spans=spans)])])
    return req.SerializeToString()


def log_payload() -> bytes:
    """One export of BATCH log records of ~150 bytes each, INFO, with trace context and 4 attributes."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs, SeverityNumber

    def kv(k, v):
        return KeyValue(key=k, value=AnyValue(int_value=v) if isinstance(v, int) else AnyValue(string_value=v))

    now = time.time_ns()
    recs = [LogRecord(time_unix_nano=now, observed_time_unix_nano=now, severity_number=SeverityNumber.SEVERITY_NUMBER_INFO,
                      severity_text="INFO", trace_id=MARK + i.to_bytes(4, "big"), span_id=(i + 1).to_bytes(8, "big"),
                      body=AnyValue(string_value=f"request served route=/api/items/{{id}} status=200 duration_ms={i % 90} "
                                                 f"user=u{i % 13} items=12 cache=hit region=eu-west-1 attempt=1"),
                      attributes=[kv("http.route", "/api/items/{id}"), kv("http.response.status_code", 200),
                                  kv("component", "api"), kv("request.id", f"r-{i:08d}")])
            for i in range(BATCH)]
    res = [kv("service.name", "bench-api"), kv("deployment.environment", "local"), kv("service.version", "1.2.3")]
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource={"attributes": res}, scope_logs=[ScopeLogs(scope={"name": "bench"}, log_records=recs)])]).SerializeToString()


def send_at_rate(port: int, path: str, payload: bytes, per_s: int, seconds: float, threads: int = 2) -> int:
    """Post `payload` (BATCH items, fresh trace ids each time) at per_s items/s for `seconds`; items accepted."""
    sent = [0] * threads
    end = time.monotonic() + seconds
    interval = threads * BATCH / per_s

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        nxt = time.monotonic() + k * interval / threads
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if now < nxt:
                time.sleep(nxt - now)
                if time.monotonic() >= end:
                    break
            nxt += interval
            conn.request("POST", path, payload.replace(MARK, os.urandom(12)),
                         {"Content-Type": "application/x-protobuf"})
            r = conn.getresponse()
            r.read()
            if r.status == 200:
                sent[k] += BATCH
        conn.close()

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(sent)


@dataclass
class CollectorResult:
    signal: str
    offered_per_s: int
    accepted_per_s: float
    delivered: int
    accepted: int
    cpu_cores: float
    idle_cpu_cores: float
    items_per_cpu_second: float
    peak_rss_bytes: int
    otlp_bytes_per_item: float


def tool(name: str) -> Path:
    p = install_tools.tool_path(name, name)
    if p is None:
        raise SystemExit(f"{install_tools.unavailable_reason(name)}")
    return p


def bench_collector(rates: dict[str, int], seconds: float, work: Path) -> list[CollectorResult]:
    binary = tool("otelcol")
    sink = CountingSink()
    ports = {k: free_port() for k in ("grpc", "http", "health")}
    (work / "queue").mkdir()
    (work / "otelcol.yaml").write_text(yaml.safe_dump(collector_config(sink, ports, work / "queue"), sort_keys=False))
    svc = compose.load_compose()["services"]["otelcol"]
    env = {"DEPLOYMENT_ENVIRONMENT": "local", "GOMEMLIMIT": svc["environment"]["GOMEMLIMIT"]}
    proc = Process([str(binary), f"--config={work / 'otelcol.yaml'}"], work / "otelcol.log", env)
    out = []
    try:
        try:
            wait_until("collector healthy", lambda: get(f"http://127.0.0.1:{ports['health']}/"), 60)
        except TimeoutError:
            raise RuntimeError(f"collector did not start:\n{proc.tail()}") from None
        pid = proc.p.pid
        c0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(5)
        idle = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
        for sig, path, payload in (("spans", "/v1/traces", span_payload()), ("logs", "/v1/logs", log_payload())):
            rate = rates[sig]
            before = getattr(sink, sig)
            c0, t0 = cpu_seconds(pid), time.monotonic()
            with PeakRss(pid) as peak:
                accepted = send_at_rate(ports["http"], path, payload, rate, seconds)
                # what is still in tail_sampling's decision_wait and the batch processor reaches the sink; past
                # the sampler's num_traces, traces are evicted undecided and never arrive (reported, not waited for)
                drain_until = time.monotonic() + 40
                while getattr(sink, sig) - before < accepted and time.monotonic() < drain_until:
                    time.sleep(0.5)
            c1, t1 = cpu_seconds(pid), time.monotonic()
            busy = (c1 - c0) - idle * (t1 - t0)   # CPU the items cost, over load and drain
            out.append(CollectorResult(signal=sig, offered_per_s=rate, accepted_per_s=round(accepted / seconds),
                                       delivered=getattr(sink, sig) - before, accepted=accepted,
                                       cpu_cores=round(busy / seconds + idle, 4), idle_cpu_cores=round(idle, 4),
                                       items_per_cpu_second=round(accepted / busy) if busy > 0 else 0,
                                       peak_rss_bytes=peak.peak, otlp_bytes_per_item=len(payload) / BATCH))
    finally:
        proc.stop()
        sink.close()
    return out


# ------------------------------------------------------------------ main

def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown")
    mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal:"))
    versions = compose.read_env()
    return {"cpus": os.cpu_count(), "cpu_model": model, "mem_gib": round(mem / 2**20, 1),
            "prometheus": versions["PROMETHEUS_VERSION"], "otelcol": versions["OTELCOL_VERSION"]}


def main(argv: list[str] | None = None) -> int:
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
    args = ap.parse_args(argv)

    facts = machine()
    print(f"machine: {facts['cpus']} CPUs ({facts['cpu_model']}), {facts['mem_gib']} GiB; "
          f"prometheus {facts['prometheus']}, otelcol {facts['otelcol']}", flush=True)
    report: dict = {"machine": facts}
    work = Path(tempfile.mkdtemp(prefix="obs-bench-"))
    try:
        if not args.skip_prometheus:
            rows = []
            for n in (int(x) for x in args.series.split(",")):
                d = work / f"prom-{n}"
                d.mkdir()
                r = bench_prometheus(n, args.window, d, args.interval)
                rows.append(r)
                print(f"prometheus {r.series:>7} series: {r.samples_per_s:>8} samples/s, {r.cpu_cores:.3f} cores "
                      f"-> {r.samples_per_cpu_second:>8} samples/CPU-s; RSS {r.rss_bytes / 2**20:.0f} MiB "
                      f"(peak {r.peak_rss_bytes / 2**20:.0f}), "
                      f"heap {r.heap_inuse_bytes / 2**20:.0f} MiB", flush=True)
                shutil.rmtree(d)
            report["prometheus"] = [asdict(r) for r in rows]
            if len(rows) >= 2:
                lo, hi = rows[0], rows[-1]
                per = (hi.rss_bytes - lo.rss_bytes) / (hi.series - lo.series)
                report["prometheus_rss_bytes_per_series"] = round(per)
                print(f"prometheus memory: {per:.0f} bytes RSS per added series = {per * 1e6 / 2**30:.2f} GiB "
                      f"per million series (slope {lo.series}..{hi.series})", flush=True)
        if not args.skip_compression:
            d = work / "compression"
            d.mkdir()
            c = bench_compression(d)
            report["compression"] = c
            print(f"tsdb block: {c['samples']} samples of {c['series']} series ({c['samples_per_series']}/series): "
                  f"{c['bytes_per_sample_chunks']} bytes/sample in chunks, {c['bytes_per_sample_block']} with the "
                  f"index; WAL {c['wal_bytes_per_sample']} bytes/sample", flush=True)
        if not args.skip_collector:
            d = work / "otelcol"
            d.mkdir()
            res = bench_collector({"spans": args.span_rate, "logs": args.log_rate}, args.collector_seconds, d)
            report["collector"] = [asdict(r) for r in res]
            for r in res:
                print(f"collector {r.signal}: offered {r.offered_per_s}/s, accepted {r.accepted_per_s}/s, delivered "
                      f"{r.delivered}/{r.accepted}; {r.cpu_cores:.3f} cores (idle {r.idle_cpu_cores:.3f}) -> "
                      f"{r.items_per_cpu_second} {r.signal}/CPU-s; peak RSS {r.peak_rss_bytes / 2**20:.0f} MiB; "
                      f"{r.otlp_bytes_per_item:.0f} OTLP bytes/item", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
