"""OTLP sink: a real OTLP receiver of ours that the native harness runs in place of Loki and Tempo.

Why: Loki and Tempo are AGPL, so this project never downloads or builds them (issue 11). The native tests
need a log or trace backend only as a destination (the collector's queues, a demo request's trace id);
Loki and Tempo themselves are tested through their images in the Docker tier (tests/docker).

It listens where the real service's own config file says (the compose command's `-config.file=`, which the
harness mounts at the same path), with the defaults of their configuration references:
  --as loki   HTTP on server.http_listen_port (default 3100); OTLP/HTTP logs at POST /otlp/v1/logs
              (Loki docs: reference/loki-http-api.md, shared/configuration.md).
  --as tempo  HTTP on server.http_listen_port (default 3200); OTLP traces over gRPC at
              distributor.receivers.otlp.protocols.grpc.endpoint and over HTTP (POST /v1/traces) at
              ...protocols.http.endpoint, each only when listed, default localhost:4317 / localhost:4318
              (Tempo docs: tempo/configuration/_index.md).
A signal the real service does not ingest is refused (HTTP 404, gRPC UNIMPLEMENTED). OTLP bodies are
protobuf (the collector's and the SDKs' default), gzip or identity encoded; anything else gets HTTP 415.

Every record is appended to <data>/otlp-sink.jsonl (the service's named volume) before the request is
answered, and the file is read back at start: a stop and restart keeps what was recorded.

HTTP API on the service's HTTP port (the query API is ours, not Loki's or Tempo's):
  GET /ready          200 "ready" once every listener is bound (the compose healthcheck URL)
  GET /metrics        Prometheus text: otlp_sink_records_total{signal},
                      otlp_sink_requests_total{protocol,signal,code}
  GET /_sink/logs     JSON list of log records; filters (all optional, ANDed): trace_id, span_id,
                      service_name, body_contains
  GET /_sink/spans    JSON list of spans; filters: trace_id, span_id, service_name, name
Record fields: signal, trace_id, span_id (hex, "" when unset), service_name, resource (resource
attributes), scope, attributes, time_unix_nano, received_unix_nano; logs add body, severity_text,
severity_number; spans add parent_span_id, name, kind, status.

Run: python -m tests.harness.otlp_sink --as tempo --data /var/tempo -- -config.file=/etc/tempo/tempo.yml
In a test process: OtlpSink([Listener(...)]) (tests/demo/otlp_receiver.py).
"""
from __future__ import annotations

import argparse
import gzip
import json
import signal as signals
import socket
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                      ExportTraceServiceResponse)

FILE_NAME = "otlp-sink.jsonl"
MESSAGES = {"logs": (ExportLogsServiceRequest, ExportLogsServiceResponse),
            "traces": (ExportTraceServiceRequest, ExportTraceServiceResponse)}
FILTERS = {"logs": ("trace_id", "span_id", "service_name", "body_contains"),
           "spans": ("trace_id", "span_id", "service_name", "name")}


def log(level: str, msg: str, **fields) -> None:
    print(json.dumps({"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "level": level,
                      "logger": "otlp-sink", "msg": msg, **fields}), flush=True)


# ------------------------------------------------------------------------------------------ decoding
def _value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return _attrs(v.kvlist_value.values)
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind)


def _attrs(kvs) -> dict:
    return {kv.key: _value(kv.value) for kv in kvs}


def log_records(req: ExportLogsServiceRequest) -> list[dict]:
    out = []
    for rl in req.resource_logs:
        res = _attrs(rl.resource.attributes)
        for sl in rl.scope_logs:
            for r in sl.log_records:
                out.append({"signal": "logs", "trace_id": r.trace_id.hex(), "span_id": r.span_id.hex(),
                            "service_name": res.get("service.name"), "resource": res, "scope": sl.scope.name,
                            "attributes": _attrs(r.attributes), "body": _value(r.body),
                            "severity_text": r.severity_text, "severity_number": r.severity_number,
                            "time_unix_nano": r.time_unix_nano or r.observed_time_unix_nano})
    return out


def span_records(req: ExportTraceServiceRequest) -> list[dict]:
    out = []
    for rs in req.resource_spans:
        res = _attrs(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append({"signal": "spans", "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                            "parent_span_id": s.parent_span_id.hex(), "service_name": res.get("service.name"),
                            "resource": res, "scope": ss.scope.name, "name": s.name, "kind": s.kind,
                            "attributes": _attrs(s.attributes), "status": s.status.code,
                            "time_unix_nano": s.start_time_unix_nano})
    return out


def records(otlp_signal: str, req) -> list[dict]:
    return log_records(req) if otlp_signal == "logs" else span_records(req)


# ------------------------------------------------------------------------------------------- storage
class Store:
    """Every record in memory for queries, and appended to a JSON-lines file when there is one."""

    def __init__(self, data_dir: Path | None = None):
        self.lock = threading.Lock()
        self.logs: list[dict] = []
        self.spans: list[dict] = []
        self.requests: dict[tuple[str, str, int], int] = {}
        self._file = None
        if data_dir is not None:
            path = Path(data_dir) / FILE_NAME
            if path.exists():
                self._load(path)
            self._file = open(path, "a", encoding="utf-8")

    def _load(self, path: Path) -> None:
        torn = 0
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                torn += 1  # a write cut short by a kill: that request was never answered, so it is resent
                continue
            (self.logs if r["signal"] == "logs" else self.spans).append(r)
        log("info", "records loaded", file=str(path), logs=len(self.logs), spans=len(self.spans), torn_lines=torn)

    def add(self, recs: list[dict]) -> None:
        now = time.time_ns()
        with self.lock:
            for r in recs:
                r["received_unix_nano"] = now
            if self._file is not None:
                # Written and flushed before the sender gets its answer: a record acknowledged is on disk.
                self._file.write("".join(json.dumps(r) + "\n" for r in recs))
                self._file.flush()
            for r in recs:
                (self.logs if r["signal"] == "logs" else self.spans).append(r)

    def count(self, protocol: str, otlp_signal: str, code: int) -> None:
        with self.lock:
            key = (protocol, otlp_signal, code)
            self.requests[key] = self.requests.get(key, 0) + 1

    def query(self, kind: str, filters: dict[str, str]) -> list[dict]:
        with self.lock:
            recs = list(self.logs if kind == "logs" else self.spans)
        for k, v in filters.items():
            if k == "body_contains":
                recs = [r for r in recs if v in str(r.get("body"))]
            else:
                recs = [r for r in recs if r.get(k) == v]
        return recs

    def metrics(self) -> str:
        with self.lock:
            lines = ["# TYPE otlp_sink_records_total counter",
                     f'otlp_sink_records_total{{signal="logs"}} {len(self.logs)}',
                     f'otlp_sink_records_total{{signal="spans"}} {len(self.spans)}',
                     "# TYPE otlp_sink_requests_total counter"]
            lines += [f'otlp_sink_requests_total{{protocol="{p}",signal="{s}",code="{c}"}} {n}'
                      for (p, s, c), n in sorted(self.requests.items())]
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        with self.lock:
            if self._file is not None:
                self._file.close()
                self._file = None


# ----------------------------------------------------------------------------------------- listeners
@dataclass
class Listener:
    kind: str                 # "http" | "grpc"
    host: str
    port: int
    routes: dict[str, str] = field(default_factory=dict)  # http: POST path -> OTLP signal; grpc: signal -> ""
    api: bool = False         # http: serve /ready, /metrics and /_sink/* here

    def describe(self) -> dict:
        return {"kind": self.kind, "address": f"{self.host}:{self.port}", "otlp": sorted(self.routes),
                "api": self.api}


def _split(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return (host.strip("[]") or "0.0.0.0"), int(port)


def _dig(doc: dict, *keys):
    for k in keys:
        if not isinstance(doc, dict) or k not in doc:
            return None, False
        doc = doc[k]
    return doc, True


def listeners_for(profile: str, config: dict) -> list[Listener]:
    """Where the real `profile` service listens with this config (see the module docstring)."""
    host = _dig(config, "server", "http_listen_address")[0] or "0.0.0.0"
    if profile == "loki":
        port = _dig(config, "server", "http_listen_port")[0] or 3100
        return [Listener("http", host, int(port), {"/otlp/v1/logs": "logs"}, api=True)]
    if profile == "tempo":
        port = _dig(config, "server", "http_listen_port")[0] or 3200
        out = [Listener("http", host, int(port), {}, api=True)]
        protocols = _dig(config, "distributor", "receivers", "otlp", "protocols")[0] or {}
        if "grpc" in protocols:
            out.append(Listener("grpc", *_split((protocols["grpc"] or {}).get("endpoint") or "localhost:4317"),
                                {"traces": ""}))
        if "http" in protocols:
            out.append(Listener("http", *_split((protocols["http"] or {}).get("endpoint") or "localhost:4318"),
                                {"/v1/traces": "traces"}))
        return out
    raise ValueError(f"no OTLP sink profile {profile!r} (loki, tempo)")


def config_file(service_args: list[str]) -> str | None:
    """The -config.file of a Loki/Tempo command line (both spellings of the flag)."""
    for i, a in enumerate(service_args):
        for flag in ("-config.file", "--config.file"):
            if a.startswith(flag + "="):
                return a.split("=", 1)[1]
            if a == flag and i + 1 < len(service_args):
                return service_args[i + 1]
    return None


# -------------------------------------------------------------------------------------------- servers
class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, handler):
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), handler)


def _handler(sink: "OtlpSink", listener: Listener):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the collector's exporter expects

        def log_message(self, *a):  # one JSON line per problem instead (below), not one per request
            pass

        def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if not listener.api:
                return self._send(404, b"not found\n")
            if url.path == "/ready":
                return self._send(200, b"ready\n") if sink.ready.is_set() else self._send(503, b"starting\n")
            if url.path == "/metrics":
                return self._send(200, sink.store.metrics().encode(), "text/plain; version=0.0.4")
            kind = url.path.removeprefix("/_sink/")
            if url.path.startswith("/_sink/") and kind in FILTERS:
                q = dict(urllib.parse.parse_qsl(url.query))
                unknown = set(q) - set(FILTERS[kind])
                if unknown:
                    return self._send(400, f"unknown filters {sorted(unknown)}; known: {FILTERS[kind]}\n".encode())
                return self._send(200, json.dumps(sink.store.query(kind, q)).encode(), "application/json")
            self._send(404, b"not found\n")

        def do_POST(self):
            path = urllib.parse.urlsplit(self.path).path
            otlp_signal = listener.routes.get(path)
            length = self.headers.get("Content-Length")
            body = self.rfile.read(int(length)) if length else b""
            if otlp_signal is None:
                sink.store.count("http", path, 404)
                return self._send(404, b"not found\n")
            code, msg = self._export(otlp_signal, body)
            sink.store.count("http", otlp_signal, code)
            if code != 200:
                log("warn", "OTLP request refused", path=path, code=code, reason=msg)
                return self._send(code, msg.encode() + b"\n")
            self._send(200, MESSAGES[otlp_signal][1]().SerializeToString(), "application/x-protobuf")

        def _export(self, otlp_signal: str, body: bytes) -> tuple[int, str]:
            if self.headers.get("Content-Length") is None:
                return 411, "Content-Length required"
            ctype = self.headers.get("Content-Type", "").split(";")[0].strip()
            if ctype != "application/x-protobuf":
                return 415, f"Content-Type {ctype!r}: this sink takes OTLP protobuf only"
            encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
            try:
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding not in ("", "identity"):
                    return 415, f"Content-Encoding {encoding!r}: gzip or identity only"
                req = MESSAGES[otlp_signal][0].FromString(body)
            except Exception as e:  # noqa: BLE001 - a bad body is the sender's error, reported to it
                return 400, f"cannot decode the {otlp_signal} request: {e}"
            sink.store.add(records(otlp_signal, req))
            return 200, ""

    return Handler


def _grpc_server(sink: "OtlpSink", listener: Listener):
    # Imported here: only a gRPC listener needs grpcio (the in-test receiver and the Loki profile do not).
    from concurrent import futures

    import grpc
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    def export(otlp_signal: str):
        def handle(request, context):
            sink.store.add(records(otlp_signal, request))
            sink.store.count("grpc", otlp_signal, 0)
            return MESSAGES[otlp_signal][1]()
        return handle

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    if "traces" in listener.routes:
        servicer = trace_service_pb2_grpc.TraceServiceServicer()
        servicer.Export = export("traces")
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    if "logs" in listener.routes:
        servicer = logs_service_pb2_grpc.LogsServiceServicer()
        servicer.Export = export("logs")
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(servicer, server)
    host = f"[{listener.host}]" if ":" in listener.host else listener.host
    server.add_insecure_port(f"{host}:{listener.port}")  # raises when the address is taken
    return server


class OtlpSink:
    """The listeners and the store; start() binds everything, then marks the sink ready."""

    def __init__(self, listeners: list[Listener], data_dir: Path | None = None):
        self.listeners = listeners
        self.store = Store(data_dir)
        self.ready = threading.Event()
        self._http: list[_HTTPServer] = []
        self._grpc: list = []

    def start(self) -> "OtlpSink":
        try:
            for lst in self.listeners:
                if lst.kind == "grpc":
                    self._grpc.append(_grpc_server(self, lst))
                else:
                    srv = _HTTPServer(lst.host, lst.port, _handler(self, lst))
                    lst.port = srv.server_address[1]  # the real port when 0 was asked for
                    self._http.append(srv)
            for g in self._grpc:
                g.start()
            for srv in self._http:
                threading.Thread(target=srv.serve_forever, name=f"http-{srv.server_address[1]}", daemon=True).start()
        except BaseException:
            self.stop()
            raise
        self.ready.set()
        return self

    def stop(self) -> None:
        self.ready.clear()
        for g in self._grpc:
            g.stop(grace=2).wait(5)
        for srv in self._http:
            srv.shutdown()
            srv.server_close()
        self._grpc, self._http = [], []
        self.store.close()

    def __enter__(self) -> "OtlpSink":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ------------------------------------------------------------------------------------- query client
def query(base_url: str, kind: str, timeout: float = 10, **filters: str) -> list[dict]:
    """Records of `kind` ("logs" | "spans") the sink at base_url holds that match every filter."""
    url = f"{base_url}/_sink/{kind}?" + urllib.parse.urlencode(filters)
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


# ------------------------------------------------------------------------------------------------ CLI
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="otlp_sink", description=__doc__.split("\n\n")[0])
    ap.add_argument("--as", dest="profile", required=True, choices=["loki", "tempo"])
    ap.add_argument("--data", type=Path, help="directory for otlp-sink.jsonl (the service's volume)")
    ap.add_argument("service_args", nargs="*", help="the real service's command line (after --)")
    args = ap.parse_args(argv)
    import yaml  # only the CLI reads a service config

    cfg_path = config_file(args.service_args)
    config = yaml.safe_load(Path(cfg_path).read_text()) if cfg_path else {}
    sink = OtlpSink(listeners_for(args.profile, config or {}), args.data)
    stop = threading.Event()
    for s in (signals.SIGTERM, signals.SIGINT):
        signals.signal(s, lambda *_: stop.set())
    try:
        sink.start()
    except (OSError, RuntimeError) as e:
        log("error", "cannot listen", error=str(e), listeners=[x.describe() for x in sink.listeners])
        return 1
    log("info", "OTLP sink ready", stands_in_for=args.profile, config=cfg_path, data=str(args.data),
        listeners=[x.describe() for x in sink.listeners])
    stop.wait()
    sink.stop()
    log("info", "OTLP sink stopped", logs=len(sink.store.logs), spans=len(sink.store.spans))
    return 0


if __name__ == "__main__":
    sys.exit(main())
