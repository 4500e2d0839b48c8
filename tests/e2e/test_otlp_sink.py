"""The OTLP sink that stands in for Loki and Tempo on the native stack (tests/harness/otlp_sink.py), run as
its command line on 127.0.0.1: it listens where the service's own config says, takes what the collector
sends (protobuf, gzip, gRPC), refuses what the real service would not ingest, and keeps its records across
a restart."""
from __future__ import annotations

import gzip
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.e2e import otlp
from tests.e2e.smoke import poll
from tests.harness import compose, otlp_sink
from tests.harness.stack import STAND_INS, native_command, stand_in
from tests.support.ports import free_port


class SinkProcess:
    def __init__(self, profile: str, config: dict, data: Path):
        self.cfg = data.parent / f"{profile}.yml"
        self.cfg.write_text(yaml.safe_dump(config))
        self.argv = [sys.executable, "-m", "tests.harness.otlp_sink", "--as", profile, "--data", str(data),
                     "--", f"-config.file={self.cfg}"]
        self.log = data.parent / f"{profile}.log"
        self.base = f"http://127.0.0.1:{config['server']['http_listen_port']}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "SinkProcess":
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(self.argv, cwd=compose.ROOT, stdout=logf, stderr=subprocess.STDOUT)
        poll("the sink's /ready", lambda: self.proc.poll() is None and get(self.base + "/ready")[0] == 200,
             timeout=20, every=0.2)
        return self

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(10)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


def post(url: str, body: bytes, ctype: str = "application/x-protobuf", encoding: str | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": ctype, **({"Content-Encoding": encoding} if encoding else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers, method="POST"), timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture
def loki(tmp_path):
    (tmp_path / "data").mkdir()
    s = SinkProcess("loki", {"server": {"http_listen_port": free_port()}}, tmp_path / "data").start()
    yield s
    if s.proc.poll() is None:
        s.stop()


def test_loki_stand_in_records_gzip_protobuf_logs_and_refuses_what_loki_would(loki):
    trace_id, span_id = otlp.ids()
    payload = otlp.log_payload("obs-sink-test", trace_id, span_id, "hello sink")
    body = gzip.compress(otlp.message("logs", payload).SerializeToString())
    status, resp = post(loki.base + "/otlp/v1/logs", body, encoding="gzip")
    assert status == 200, resp
    assert otlp_sink.MESSAGES["logs"][1].FromString(resp) is not None

    recs = otlp_sink.query(loki.base, "logs", trace_id=trace_id)
    assert len(recs) == 1, recs
    r = recs[0]
    assert (r["span_id"], r["body"], r["service_name"], r["severity_text"]) == (span_id, "hello sink", "obs-sink-test", "INFO")
    assert r["resource"]["service.instance.id"] == "smoke-1"
    assert otlp_sink.query(loki.base, "logs", trace_id=otlp.ids()[0]) == []
    assert otlp_sink.query(loki.base, "logs", body_contains="hello") == recs

    # What real Loki does not take is refused: no /otlp prefix, traces, OTLP/JSON, an unknown encoding.
    plain = otlp.message("logs", payload).SerializeToString()
    assert post(loki.base + "/v1/logs", plain)[0] == 404
    assert post(loki.base + "/otlp/v1/traces", plain)[0] == 404
    assert post(loki.base + "/otlp/v1/logs", plain, ctype="application/json")[0] == 415
    assert post(loki.base + "/otlp/v1/logs", plain, encoding="zstd")[0] == 415
    assert post(loki.base + "/otlp/v1/logs", b"\xff not protobuf")[0] == 400
    assert get(loki.base + "/_sink/logs?nope=1")[0] == 400
    assert len(otlp_sink.query(loki.base, "logs")) == 1, "a refused request recorded something"
    status, metrics = get(loki.base + "/metrics")
    assert status == 200
    assert 'otlp_sink_records_total{signal="logs"} 1' in metrics.decode()
    assert 'otlp_sink_requests_total{protocol="http",signal="logs",code="415"} 2' in metrics.decode()


def test_restart_keeps_the_records(loki):
    trace_id, span_id = otlp.ids()
    body = otlp.message("logs", otlp.log_payload("obs-sink-test", trace_id, span_id, "kept")).SerializeToString()
    assert post(loki.base + "/otlp/v1/logs", body)[0] == 200
    assert loki.stop() == 0, loki.log.read_text()
    assert get(loki.base + "/ready")[0] == 0, "the sink still answers after SIGTERM"
    loki.start()
    assert [r["body"] for r in otlp_sink.query(loki.base, "logs", trace_id=trace_id)] == ["kept"]
    assert (Path(loki.argv[loki.argv.index("--data") + 1]) / otlp_sink.FILE_NAME).is_file()


def test_tempo_stand_in_takes_traces_over_grpc_and_http_where_its_config_says(tmp_path):
    import grpc  # requirements-test.txt
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    g, h = free_port(), free_port()
    cfg = {"server": {"http_listen_port": free_port()},
           "distributor": {"receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{g}"},
                                                                "http": {"endpoint": f"127.0.0.1:{h}"}}}}}}
    (tmp_path / "data").mkdir()
    tempo = SinkProcess("tempo", cfg, tmp_path / "data").start()
    try:
        trace_id, span_id = otlp.ids()
        with grpc.insecure_channel(f"127.0.0.1:{g}", compression=grpc.Compression.Gzip) as ch:
            trace_service_pb2_grpc.TraceServiceStub(ch).Export(
                otlp.message("traces", otlp.span_payload("obs-sink-test", trace_id, span_id, "over-grpc")), timeout=5)
            with pytest.raises(grpc.RpcError) as e:
                logs_service_pb2_grpc.LogsServiceStub(ch).Export(
                    otlp.message("logs", otlp.log_payload("x", trace_id, span_id, "no")), timeout=5)
            assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED, "Tempo takes no logs"
        span2 = otlp.ids()[1]
        body = otlp.message("traces", otlp.span_payload("obs-sink-test", trace_id, span2, "over-http")).SerializeToString()
        assert post(f"http://127.0.0.1:{h}/v1/traces", body)[0] == 200
        assert post(tempo.base + "/v1/traces", body)[0] == 404, "Tempo's HTTP port is not an OTLP receiver"

        spans = otlp_sink.query(tempo.base, "spans", trace_id=trace_id)
        assert sorted(s["name"] for s in spans) == ["over-grpc", "over-http"]
        s = next(s for s in spans if s["name"] == "over-grpc")
        assert (s["span_id"], s["service_name"], s["attributes"]["http.route"]) == (span_id, "obs-sink-test", "/smoke")
        assert otlp_sink.query(tempo.base, "spans", name="over-http")[0]["span_id"] == span2
        assert otlp_sink.query(tempo.base, "logs") == []
    finally:
        tempo.stop()


def test_listens_where_the_config_says_with_the_documented_defaults():
    def where(profile, cfg):
        return [(x.kind, x.host, x.port, sorted(x.routes)) for x in otlp_sink.listeners_for(profile, cfg)]

    assert where("loki", {}) == [("http", "0.0.0.0", 3100, ["/otlp/v1/logs"])]
    assert where("tempo", {}) == [("http", "0.0.0.0", 3200, [])], "no receiver unless configured"
    # Tempo >= 2.7: a listed protocol without an endpoint listens on localhost only.
    assert where("tempo", {"distributor": {"receivers": {"otlp": {"protocols": {"grpc": None}}}}})[1] == \
        ("grpc", "localhost", 4317, ["traces"])
    assert otlp_sink.config_file(["-config.file=/etc/x.yml"]) == "/etc/x.yml"
    assert otlp_sink.config_file(["--config.file", "/etc/y.yml"]) == "/etc/y.yml"


@pytest.mark.parametrize("service", ["loki", "tempo"])
def test_harness_runs_the_sink_in_place_of(service):
    """From the compose file: the sink gets the service's command (its config), its named volume, and
    answers the compose healthcheck's port, which is where the shipped config makes it listen."""
    svc = compose.services()[service]
    assert stand_in(svc) == service and len(STAND_INS) == 2
    argv, extra = native_command(svc)
    assert argv[1:5] == ["-m", "tests.harness.otlp_sink", "--as", service] and extra == {"python": True}
    volume = next(m for m in svc.mounts if m.kind == "volume")
    assert argv[argv.index("--data") + 1] == volume.target
    assert argv[argv.index("--") + 1:] == svc.command
    cfg_target = otlp_sink.config_file(svc.command)
    cfg_source = next(m.source for m in svc.mounts if m.target == cfg_target)
    listeners = otlp_sink.listeners_for(service, yaml.safe_load(Path(cfg_source).read_text()))
    api = next(x for x in listeners if x.api)
    assert svc.health_url == f"http://127.0.0.1:{api.port}/ready", svc.health_url
