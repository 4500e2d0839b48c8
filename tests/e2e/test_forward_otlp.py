"""Logs and traces forwarding (docs/forwarding.md, "Logs and traces") with real collectors on loopback.

The sender is the native collector run as docker-compose.forward.yml runs it: the compose service of
docker-compose.yml with the overlay's otelcol block merged over it the way Compose merges (command replaced,
environment by key, volumes by container path), so it loads exactly otelcol/config.yaml, otelcol/forward.yaml
and otelcol/forward-local-<mode>.yaml. Only the secrets folder is the test's own. Its local Loki and Tempo
are the harness's OTLP sinks (tests/harness/stack.py).
The gateway is a second native collector (same build) standing in for Grafana Cloud's OTLP gateway: an OTLP/HTTP
receiver behind a bearertokenauth server authenticator, exporting to an OTLP sink in this process. It listens
on the harness bridge's host address, which the sender's network namespace reaches.

Checked: spans and log records arrive at the gateway and locally; a wrong token is refused (the sender
counts the failures, nothing arrives, local writes go on); a 60 s gateway outage, with a sender restart in it,
is absorbed by the persistent queue and loses nothing; a full forward queue drops what does not fit, counted
where the alerts look, while local writes go on; forward-only writes nothing locally; an empty token file stops
the sender. Run with -s for the measured numbers."""
from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import require_tool, running_stack
from tests.demo.otlp_receiver import OtlpReceiver
from tests.e2e import otlp
from tests.harness import compose, otlp_sink
from tests.harness.stack import NativeStack, StackError
from tests.support import procs
from tests.support.promtext import metric_sum, series
from tests.support.ports import free_port
from tests.support.wait import StopWaiting, wait_for

OVERLAY = compose.ROOT / "docker-compose.forward.yml"
SECRETS_TARGET = "/run/obs-secrets"
TOKEN_FILE = "otlp_forward_token"
ENDPOINT_FILE = "otlp_forward_endpoint"
FORWARD = "otlp_http/forward"
SERVICE = "obs-forward"
OUTAGE_S = 60


# ------------------------------------------------------------------------------------------ the gateway
class Gateway:
    """A native collector acting as the OTLP gateway: OTLP/HTTP at host:port, bearer token required."""

    def __init__(self, binary: Path, workdir: Path, host: str, sink_endpoint: str):
        self.binary, self.dir, self.host = binary, workdir, host
        # The bridge's host address does not exist before the stack starts, and the sender's endpoint must be
        # known before: a port that is free on loopback (a wildcard listener on it would show there).
        self.port = free_port()
        self.health = free_port()
        self.sink_endpoint = sink_endpoint
        self.proc = procs.Proc("gateway", [], workdir / "gateway.log")

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def config(self) -> dict:
        return {
            "extensions": {"health_check": {"endpoint": f"127.0.0.1:{self.health}"},
                           "bearertokenauth/gateway": {"filename": str(self.dir / "tokens")}},
            "receivers": {"otlp": {"protocols": {"http": {
                "endpoint": f"{self.host}:{self.port}",
                "auth": {"authenticator": "bearertokenauth/gateway"}}}}},
            "exporters": {"otlp_http/sink": {"endpoint": self.sink_endpoint, "retry_on_failure": {"enabled": True}}},
            "service": {"extensions": ["health_check", "bearertokenauth/gateway"],
                        "telemetry": {"logs": {"encoding": "json"}, "metrics": {"level": "none"}},
                        "pipelines": {s: {"receivers": ["otlp"], "exporters": ["otlp_http/sink"]}
                                      for s in ("traces", "logs")}},
        }

    def start(self, token: str) -> None:
        (self.dir / "tokens").write_text(token + "\n")
        cfg = self.dir / "gateway.yaml"
        cfg.write_text(yaml.safe_dump(self.config()))
        self.proc.argv = [str(self.binary), f"--config={cfg}"]
        self.proc.start()

        def ready() -> bool:
            if not self.proc.alive():
                raise StopWaiting(f"gateway exited with {self.proc.exit_code()}: {self.log_tail()}")
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health}/", timeout=2) as r:
                return r.status == 200

        wait_for(ready, 30, 0.2, "the gateway collector healthy")

    def stop(self) -> None:
        self.proc.stop(timeout=15)

    def log_tail(self, lines: int = 30) -> str:
        return self.proc.tail(lines)


# ------------------------------------------------------------------------------------------ the sender
def with_overlay(svc: compose.Service, env: dict[str, str], secrets_dir: Path) -> compose.Service:
    """`svc` with docker-compose.forward.yml's block for it merged as Compose merges; the overlay's
    /run/obs-secrets mount comes from `secrets_dir` instead of the repository's secrets/."""
    block = compose.interpolate(yaml.safe_load(OVERLAY.read_text())["services"][svc.name], env)
    mounts = {m.target: m for m in svc.mounts}
    for v in block.get("volumes", []):
        src, target, *opts = v.split(":")
        ro = bool(opts) and "ro" in opts[0].split(",")
        src = str(secrets_dir) if target == SECRETS_TARGET else str((compose.ROOT / src).resolve())
        mounts[target] = compose.Mount(src, target, "bind", ro)
    environment = {**svc.environment, **{k: str(v) for k, v in (block.get("environment") or {}).items()}}
    return dataclasses.replace(svc, command=list(block.get("command", svc.command)), environment=environment,
                               mounts=list(mounts.values()))


class Forwarding:
    """The sender stack, the gateway, the gateway's sink, and the sender's token."""

    def __init__(self, stack: NativeStack, gateway: Gateway, sink: OtlpReceiver, secrets_dir: Path, token: str,
                 base_env: dict[str, str]):
        self.stack, self.gateway, self.sink, self.secrets_dir, self.token = stack, gateway, sink, secrets_dir, token
        self.base_env = base_env
        self.original = stack.all["otelcol"]  # docker-compose.yml's service, before the overlay

    def use_local_mode(self, mode: str) -> None:
        env = {**self.base_env, "OTLP_FORWARD_LOCAL": mode}
        self.stack.all["otelcol"] = with_overlay(self.original, env, self.secrets_dir)

    def send(self, marker: str, logs: int, spans: int) -> None:
        base = self.stack.url("otelcol", 4318)
        for i in range(logs):
            t, s = otlp.ids()
            assert otlp.post(base, "logs", otlp.log_payload(SERVICE, t, s, f"{marker} log {i}")) == 200
        for i in range(spans):
            t, s = otlp.ids()
            assert otlp.post(base, "traces", otlp.span_payload(SERVICE, t, s, f"{marker}-span-{i}")) == 200

    def at_gateway(self, marker: str) -> tuple[int, int]:
        with self.sink.lock:
            logs = {r["body"] for r in self.sink.logs if r["body"].startswith(marker)}
            spans = {r["name"] for r in self.sink.spans if r["name"].startswith(marker)}
        return len(logs), len(spans)

    def received_at_gateway(self, marker: str) -> list[int]:
        with self.sink.lock:
            return [r["received_unix_nano"] for r in self.sink.logs + self.sink.spans
                    if (r.get("body") or r.get("name") or "").startswith(marker)]

    def local(self, marker: str) -> tuple[int, int]:
        logs = otlp_sink.query(self.stack.url("loki", 3100), "logs", service_name=SERVICE, body_contains=marker)
        spans = otlp_sink.query(self.stack.url("tempo", 3200), "spans", service_name=SERVICE)
        return len({r["body"] for r in logs}), len({r["name"] for r in spans if r["name"].startswith(marker)})

    def metrics(self) -> str:
        with urllib.request.urlopen(self.stack.url("otelcol", 8888, "/metrics"), timeout=5) as r:
            return r.read().decode()

    def forward_metric(self, name: str) -> float:
        return metric_sum(self.metrics(), name, exporter=FORWARD)


@pytest.fixture(scope="module")
def fwd():
    binary = require_tool("otelcol")
    base_env = compose.read_env()
    work = Path(tempfile.mkdtemp(prefix="obs-forward-"))
    secrets_dir = work / "secrets"
    secrets_dir.mkdir()
    # The collector runs as uid 10001 (compose `user:`): the folder must be searchable, the file readable.
    os.chmod(work, 0o755)
    os.chmod(secrets_dir, 0o755)
    token = secrets.token_urlsafe(24)
    (secrets_dir / TOKEN_FILE).write_text(token + "\n")
    os.chmod(secrets_dir / TOKEN_FILE, 0o644)
    stack = NativeStack(["loki", "tempo", "otelcol"], env=base_env)
    sink = OtlpReceiver().start()
    gateway = Gateway(binary, work, f"{stack.subnet}.1", sink.endpoint)
    (secrets_dir / ENDPOINT_FILE).write_text(gateway.endpoint)  # printf '%s', as docs/forwarding.md says
    os.chmod(secrets_dir / ENDPOINT_FILE, 0o644)
    f = Forwarding(stack, gateway, sink, secrets_dir, token, base_env)
    f.use_local_mode("true")
    try:
        with running_stack(stack):
            # The bridge's host address exists once the stack's network is up.
            gateway.start(token)
            yield f
    finally:
        gateway.stop()
        sink.stop()
        shutil.rmtree(work, ignore_errors=True)


def test_spans_and_logs_reach_the_gateway_and_the_local_backends(fwd):
    marker = "fwd-a-" + secrets.token_hex(3)
    t0 = time.monotonic()
    fwd.send(marker, logs=5, spans=3)
    # Traces wait for the tail sampler's decision (TRACE_DECISION_WAIT, 10 s) before either exporter.
    got = wait_for(lambda: (n := fwd.at_gateway(marker)) == (5, 3) and n, 60, 0.5,
                   f"5 log records and 3 spans of {marker} at the gateway")
    print(f"\n[forward] delivered to the gateway in {time.monotonic() - t0:.1f} s: {got}")
    assert wait_for(lambda: fwd.local(marker) == (5, 3), 30, 0.5, "the same at the local Loki and Tempo")
    with fwd.sink.lock:
        rec = next(r for r in fwd.sink.logs if r["body"].startswith(marker))
    # The records went through the sender's pipeline (its resource processor), not around it.
    env = fwd.stack.all["otelcol"].environment["DEPLOYMENT_ENVIRONMENT"]
    assert rec["service_name"] == SERVICE and rec["resource"].get("deployment.environment") == env


def test_a_wrong_token_is_refused_and_counted(fwd):
    fwd.gateway.stop()
    fwd.gateway.start(secrets.token_urlsafe(24))  # the gateway now expects another token than the sender has
    try:
        marker = "fwd-b-" + secrets.token_hex(3)
        before = fwd.forward_metric("otelcol_exporter_send_failed_log_records")
        fwd.send(marker, logs=5, spans=0)
        failed = wait_for(lambda: (d := fwd.forward_metric("otelcol_exporter_send_failed_log_records") - before) >= 5
                          and d, 30, 0.5, "the sender counting 5 refused log records for the forward exporter")
        print(f"\n[forward] wrong token: {failed:.0f} log records refused")
        # Local writes are not held up by the refused forward.
        assert wait_for(lambda: fwd.local(marker)[0] == 5, 30, 0.5, "the 5 records at the local Loki")
        assert fwd.at_gateway(marker) == (0, 0)
        # A refusal is final (HTTP 401 is not retried): nothing is queued to arrive later.
        assert fwd.forward_metric("otelcol_exporter_queue_size") == 0
        log = fwd.stack.log("otelcol", 400)
        assert "401" in log, "the sender's log should say the gateway refused the credentials"
        assert fwd.token not in log and fwd.token not in fwd.gateway.log_tail(400), "a token in a log"
    finally:
        fwd.gateway.stop()
        fwd.gateway.start(fwd.token)
    # With the right token again, new records flow; the refused ones were dropped, not held for later.
    again = "fwd-b2-" + secrets.token_hex(3)
    fwd.send(again, logs=2, spans=0)
    wait_for(lambda: fwd.at_gateway(again) == (2, 0), 30, 0.5, f"{again} at the gateway with the right token")
    assert fwd.at_gateway(marker) == (0, 0)


def test_gateway_outage_with_a_sender_restart_loses_nothing(fwd):
    """The gateway is down for OUTAGE_S; meanwhile the sender takes records and is restarted (its
    file_storage queue is on the otelcol-queue volume). Every record arrives once the gateway is back."""
    marker = "fwd-c-" + secrets.token_hex(3)
    fwd.gateway.stop()
    down = time.monotonic()
    fwd.send(marker, logs=20, spans=5)
    # Once the local backends have them, both exporters have taken them (one fan-out): the forward copy is
    # in its persistent queue, not in the tail sampler's memory.
    wait_for(lambda: fwd.local(marker) == (20, 5), 60, 0.5, "the outage records at the local backends")
    queued = wait_for(lambda: fwd.forward_metric("otelcol_exporter_queue_size"), 30, 0.5,
                      "requests waiting in the forward exporter's queue")
    fwd.stack.restart("otelcol")
    assert fwd.at_gateway(marker) == (0, 0)
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down)))
    back = time.time_ns()
    t_back = time.monotonic()
    fwd.gateway.start(fwd.token)
    got = wait_for(lambda: (n := fwd.at_gateway(marker)) == (20, 5) and n, 90, 1,
                   f"all 20 log records and 5 spans of {marker} at the gateway after the outage")
    print(f"\n[forward] gateway down {t_back - down:.0f} s, {queued:.0f} requests queued before the sender "
          f"restart, all delivered {time.monotonic() - t_back:.1f} s after the gateway came back: {got}")
    assert min(fwd.received_at_gateway(marker)) >= back, "records held by the sender, not delivered during it"
    assert wait_for(lambda: fwd.forward_metric("otelcol_exporter_queue_size") == 0 or None, 30, 0.5,
                    "the forward queue drained")


def test_a_full_forward_queue_drops_counted_and_local_writes_go_on(fwd):
    """What CollectorExportQueueFilling and CollectorExportQueueDropping read, produced for real: the
    sender with its forward queue shrunk to 3 batches and one consumer (a test-only --config after the
    overlay's, from the secrets folder the sender already mounts), the gateway down, and more batches
    than fit. The gauges and the counter exist with the names and labels the alerts group by, the queue
    is full, and the local Loki still gets every record."""
    small = fwd.secrets_dir / "test-small-queue.yaml"
    small.write_text(yaml.safe_dump({"exporters": {FORWARD: {"sending_queue": {"queue_size": 3,
                                                                               "num_consumers": 1}}}}))
    os.chmod(small, 0o644)
    normal = fwd.stack.all["otelcol"]
    fwd.stack.all["otelcol"] = dataclasses.replace(
        normal, command=[*normal.command, f"--config={SECRETS_TARGET}/{small.name}"])
    fwd.gateway.stop()
    marker = "fwd-q-" + secrets.token_hex(3)
    try:
        fwd.stack.restart("otelcol")
        # The batch processor closes a batch every 2 s (otelcol/config.yaml): one post per second for 14 s
        # makes about 7 batches for a queue of 3 plus the one the consumer holds in its retries.
        for i in range(14):
            fwd.send(f"{marker}-{i}", logs=1, spans=0)
            time.sleep(1)

        def dropped() -> float | None:
            return metric_sum(fwd.metrics(), "otelcol_exporter_enqueue_failed_log_records", exporter=FORWARD) or None

        n = wait_for(dropped, 30, 0.5, "log records refused at the full forward queue")
        text = fwd.metrics()
        logs_q = {"exporter": FORWARD, "data_type": "logs"}
        size = [s for s in series(text, "otelcol_exporter_queue_size") if logs_q.items() <= s.items()]
        cap = [s for s in series(text, "otelcol_exporter_queue_capacity") if logs_q.items() <= s.items()]
        assert len(size) == 1 and len(cap) == 1, (size, cap)
        assert metric_sum(text, "otelcol_exporter_queue_capacity", **logs_q) == 3
        assert metric_sum(text, "otelcol_exporter_queue_size", **logs_q) == 3, "the queue should be full"
        assert any(s.get("exporter") == FORWARD for s in series(text, "otelcol_exporter_enqueue_failed_log_records"))
        print(f"\n[forward] full queue: {n:.0f} log records refused at the forward queue")
        # The local copy is complete: a full forward queue holds nothing else up.
        wait_for(lambda: fwd.local(f"{marker}-")[0] == 14 or None, 30, 0.5, "all 14 records at the local Loki")
    finally:
        fwd.stack.all["otelcol"] = normal
        fwd.gateway.start(fwd.token)
        fwd.stack.restart("otelcol")
        small.unlink(missing_ok=True)


def test_forward_only_writes_nothing_locally(fwd):
    fwd.use_local_mode("false")
    try:
        fwd.stack.restart("otelcol")
        marker = "fwd-d-" + secrets.token_hex(3)
        fwd.send(marker, logs=3, spans=1)
        wait_for(lambda: fwd.at_gateway(marker) == (3, 1), 60, 0.5, f"{marker} at the gateway")
        # Both copies would have left in the same fan-out: by now a local one would be there too.
        time.sleep(3)
        assert fwd.local(marker) == (0, 0)
    finally:
        fwd.use_local_mode("true")
        fwd.stack.restart("otelcol")


def test_an_empty_token_file_stops_the_sender(fwd):
    path = fwd.secrets_dir / TOKEN_FILE
    path.write_text("")
    try:
        with pytest.raises(StackError) as e:
            fwd.stack.restart("otelcol")
        assert f"credentials file \"{SECRETS_TARGET}/{TOKEN_FILE}\" is empty" in str(e.value), str(e.value)[-2000:]
    finally:
        path.write_text(fwd.token + "\n")
        fwd.stack.restart("otelcol")
