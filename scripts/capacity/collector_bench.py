"""The collector's cost per span and log record: the shipped traces and logs pipelines, fed at a fixed rate,
exporting to a counting stand-in for Tempo and Loki."""
from __future__ import annotations

import gzip
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import grpc
import yaml
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from scripts.capacity import loopback
from scripts.capacity.load import send_at_rate
from scripts.capacity.payloads import BATCH, log_payload, span_payload
from scripts.capacity.procs import PeakRss, cpu_seconds, get, start, tool
from tests.harness import compose
from tests.support.promtext import metric_sum
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
# The collector's own counters (0.161.0 exposes them without `_total`, older builds with it). Refused is what
# the memory limiter turned away; dropped too early, traces tail_sampling evicted before deciding them.
ACCEPTED = {"spans": "otelcol_receiver_accepted_spans", "logs": "otelcol_receiver_accepted_log_records"}
REFUSED = {"spans": "otelcol_receiver_refused_spans", "logs": "otelcol_receiver_refused_log_records"}
DROPPED_TOO_EARLY = "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early"


class CountingSink:
    """Stands in for Tempo (OTLP gRPC) and Loki (OTLP/HTTP at /otlp/v1/logs): counts spans and log records."""

    def __init__(self):
        self.spans = self.logs = 0
        self.lock = threading.Lock()
        sink = self

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request, context):
                sink.add("spans", sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans))
                return ExportTraceServiceResponse()

        self.grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), self.grpc)
        self.grpc_port = self.grpc.add_insecure_port("127.0.0.1:0")
        self.grpc.start()
        self.http = loopback.serve("POST", self._logs, "HTTP/1.1")
        self.http_port = self.http.server_address[1]

    def add(self, signal: str, n: int) -> None:
        with self.lock:
            setattr(self, signal, getattr(self, signal) + n)

    def _logs(self, path: str, headers: Message, body: bytes) -> tuple[bytes, str]:
        if headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        req = ExportLogsServiceRequest.FromString(body)
        self.add("logs", sum(len(sl.log_records) for rl in req.resource_logs for sl in rl.scope_logs))
        return b"", "application/x-protobuf"

    def close(self) -> None:
        self.grpc.stop(0)
        loopback.close(self.http)


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
    metrics = {"level": shipped["service"]["telemetry"]["metrics"]["level"], "readers": [
        {"pull": {"exporter": {"prometheus": {"host": "127.0.0.1", "port": ports["metrics"]}}}}]}
    return {
        "extensions": {"health_check": {"endpoint": f"127.0.0.1:{ports['health']}"},
                       "file_storage": {**shipped["extensions"]["file_storage"], "directory": str(queue_dir)}},
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{ports['grpc']}"},
                                             "http": {"endpoint": f"127.0.0.1:{ports['http']}"}}}},
        "processors": {p: shipped["processors"][p] for p in used},
        "exporters": exporters,
        "service": {"extensions": ["health_check", "file_storage"], "pipelines": pipes,
                    "telemetry": {"logs": {"level": "warn", "encoding": "json"}, "metrics": metrics}},
    }


def grew(before: str, after: str, name: str) -> int:
    """How much a counter of the collector's own metrics (named with or without `_total`; absent until it first
    counts) grew between two scrapes of them."""
    def value(text: str) -> float:
        return metric_sum(text, name)  # with or without _total
    return int(value(after) - value(before))


@dataclass
class CollectorResult:
    signal: str
    offered_per_s: int
    accepted_per_s: float
    delivered: int
    accepted: int
    receiver_accepted: int          # the collector's own count of what its receiver took in
    refused: int                    # turned away by the memory limiter
    dropped_too_early: int | None   # traces evicted undecided by tail_sampling (spans only)
    cpu_cores: float
    idle_cpu_cores: float
    items_per_cpu_second: float
    peak_rss_bytes: int
    otlp_bytes_per_item: float


def bench_collector(rates: dict[str, int], seconds: float, work: Path) -> list[CollectorResult]:
    binary = tool("otelcol")
    ports = {k: free_port() for k in ("grpc", "http", "health", "metrics")}
    gomemlimit = compose.load_compose()["services"]["otelcol"]["environment"]["GOMEMLIMIT"]
    (work / "queue").mkdir()
    sink = CountingSink()
    try:
        (work / "otelcol.yaml").write_text(yaml.safe_dump(collector_config(sink, ports, work / "queue"),
                                                          sort_keys=False))
        svc = start([str(binary), f"--config={work / 'otelcol.yaml'}"], work / "otelcol.log",
                    {"DEPLOYMENT_ENVIRONMENT": "local", "GOMEMLIMIT": gomemlimit},
                    f"http://127.0.0.1:{ports['health']}/")
        try:
            return measure(svc.proc.pid, sink, ports, rates, seconds)
        finally:
            svc.stop()
    finally:
        sink.close()


def measure(pid: int, sink: CountingSink, ports: dict[str, int], rates: dict[str, int],
            seconds: float) -> list[CollectorResult]:
    def own_metrics() -> str:
        return get(f"http://127.0.0.1:{ports['metrics']}/metrics").decode()

    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(5)
    idle = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
    out = []
    for sig, path, payload in (("spans", "/v1/traces", span_payload()), ("logs", "/v1/logs", log_payload())):
        rate = rates[sig]
        before, m0 = getattr(sink, sig), own_metrics()
        c0, t0 = cpu_seconds(pid), time.monotonic()
        with PeakRss(pid) as peak:
            accepted = send_at_rate(ports["http"], path, payload, rate, seconds)
            # what is still in tail_sampling's decision_wait and the batch processor reaches the sink; past
            # the sampler's num_traces, traces are evicted undecided and never arrive (reported, not waited for)
            drain_until = time.monotonic() + 40
            while getattr(sink, sig) - before < accepted and time.monotonic() < drain_until:
                time.sleep(0.5)
        c1, t1 = cpu_seconds(pid), time.monotonic()
        m1 = own_metrics()
        busy = (c1 - c0) - idle * (t1 - t0)   # CPU the items cost, over load and drain
        out.append(CollectorResult(
            signal=sig, offered_per_s=rate, accepted_per_s=round(accepted / seconds),
            delivered=getattr(sink, sig) - before, accepted=accepted,
            receiver_accepted=grew(m0, m1, ACCEPTED[sig]), refused=grew(m0, m1, REFUSED[sig]),
            dropped_too_early=grew(m0, m1, DROPPED_TOO_EARLY) if sig == "spans" else None,
            cpu_cores=round(busy / seconds + idle, 4), idle_cpu_cores=round(idle, 4),
            items_per_cpu_second=round(accepted / busy) if busy > 0 else 0,
            peak_rss_bytes=peak.peak, otlp_bytes_per_item=len(payload) / BATCH))
    return out
