"""One JSON log schema for every component the stack ships (docs/logging.md): a real line from each
component (the bridges, obs_instrument, the auth gateway, the webhook sink, obs-start) is checked against
the one definition below, so a component that drifts (another key, level spelling or timestamp format)
fails here."""
from __future__ import annotations

import datetime as dt
import io
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import auth_gateway  # scripts/railway, on pytest.ini's pythonpath
from tests.support.logschema import check

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "scripts" / "railway" / "auth_gateway.py"
SINK = ROOT / "alertmanager" / "webhook_sink.py"
OBS_START = ROOT / "scripts" / "railway" / "obs-start"

# The schema itself lives in tests/support/logschema.py (the Grafana entrypoint tests check with it too).


def _record(name: str, level: int, msg: str, exc: bool = False, **attrs) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    rec = logging.LogRecord(name, level, __file__, 1, msg, (), exc_info)
    for k, v in attrs.items():
        setattr(rec, k, v)
    return rec


# ------------------------------------------------------------------------------------------ the schema itself

@pytest.mark.parametrize("line", [
    '{"level":"info","ts":"2026-01-01T00:00:00.000Z","component":"x","logger":"x","msg":"m"}',  # order
    '{"ts":"2026-01-01T00:00:00Z","level":"info","component":"x","logger":"x","msg":"m"}',  # no ms
    '{"ts":1767225600.0,"level":"info","component":"x","logger":"x","msg":"m"}',  # epoch
    '{"ts":"2026-01-01T00:00:00.000+00:00","level":"info","component":"x","logger":"x","msg":"m"}',
    '{"ts":"2026-01-01T00:00:00.000Z","level":"INFO","component":"x","logger":"x","msg":"m"}',
    '{"ts":"2026-01-01T00:00:00.000Z","level":"warn","component":"x","logger":"x","msg":"m"}',
    '{"ts":"2026-01-01T00:00:00.000Z","level":"info","logger":"x","msg":"m"}',  # no component
    '{"ts":"2026-01-01T00:00:00.000Z","level":"info","component":"x","logger":"x","message":"m"}',
    '{"ts":"2026-01-01T00:00:00.000Z","level":"info","component":"x","logger":"x","msg":"m","trace_id":"abc"}',
])
def test_the_check_rejects_drift(line, monkeypatch):
    class Fixed(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    monkeypatch.setattr(dt, "datetime", Fixed)
    with pytest.raises((AssertionError, ValueError, TypeError)):
        check(line, "x")


# ------------------------------------------------------------------------------------------ the components

def test_bridges():
    from obs_bridges.log import JsonFormatter
    fmt = JsonFormatter("railway-exporter")
    rec = check(fmt.format(_record("obs_bridges.core", logging.WARNING, "poll failed",
                                   fields={"platform": "railway", "status": 503})), "railway-exporter")
    assert rec["level"] == "warning" and rec["status"] == 503 and rec["logger"] == "obs_bridges.core"
    rec = check(fmt.format(_record("obs_bridges.core", logging.ERROR, "crashed", exc=True)), "railway-exporter")
    assert "ValueError: boom" in rec["exc"]


def test_obs_instrument():
    from opentelemetry import trace

    from obs_instrument.logs import JsonFormatter
    fmt = JsonFormatter("checkout-api", "prod")
    ctx = trace.SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, is_remote=False,
                            trace_flags=trace.TraceFlags(1))
    with trace.use_span(trace.NonRecordingSpan(ctx)):
        rec = check(fmt.format(_record("obs.access", logging.INFO, "GET /orders/{id} 200", status_code=200)),
                    "checkout-api")
    assert rec["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" and rec["span_id"] == "00f067aa0ba902b7"
    assert rec["environment"] == "prod" and rec["status_code"] == 200
    rec = check(fmt.format(_record("app", logging.ERROR, "GET /boom 500", exc=True)), "checkout-api")
    assert "ValueError: boom" in rec["exc"] and "trace_id" not in rec


def test_obs_instrument_configured_logger():
    """Through configure_logging, as an app gets it (the root logger's stdout handler)."""
    from obs_instrument.logs import configure_logging
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    out = io.StringIO()
    try:
        configure_logging("demo-app", "test", "INFO", stream=out)
        logging.getLogger("obs_demo").warning("slow", extra={"duration_ms": 1234})
    finally:
        for h in list(root.handlers):
            if getattr(h, "_obs", False):
                root.removeHandler(h)
        for h in saved[0]:
            if h not in root.handlers:
                root.addHandler(h)
        root.setLevel(saved[1])
    rec = check(out.getvalue().strip().splitlines()[-1], "demo-app")
    assert rec["level"] == "warning" and rec["duration_ms"] == 1234


def test_auth_gateway_refusing_to_start():
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp", "GATEWAY_UPSTREAM": "http://127.0.0.1:9",
           "GATEWAY_LISTEN_HOST": "127.0.0.1", "PORT": "0"}
    p = subprocess.run([sys.executable, str(GATEWAY)], env=env, capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 1, p.stderr
    rec = check(p.stderr.strip().splitlines()[-1], "auth-gateway")
    assert rec["level"] == "error" and rec["logger"] == "auth-gateway" and "GATEWAY_PASSWORD" in rec["msg"]


def test_auth_gateway_warning(capsys):
    """The request path logs "warn": the line spells it the schema's way."""
    auth_gateway.log("warn", "authentication failed", reason="bad password", client="127.0.0.1", method="GET", path="/")
    rec = check(capsys.readouterr().err.strip(), "auth-gateway")
    assert rec["level"] == "warning" and rec["client"] == "127.0.0.1"


def test_webhook_sink_startup():
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SINK_HOST": "127.0.0.1", "SINK_PORT": "0",
           "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen([sys.executable, str(SINK)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, text=True)
    try:
        line = p.stderr.readline()
    finally:
        p.terminate()
        p.wait(timeout=10)
        p.stdout.close()
        p.stderr.close()
    rec = check(line.strip(), "webhook-sink")
    assert rec["msg"] == "webhook sink listening" and rec["level"] == "info"
    assert rec["port"] > 0, "the logged port is the one bound, not the 0 asked for"


SHELLS = [pytest.param(["dash"], id="dash",
                       marks=pytest.mark.skipif(shutil.which("dash") is None, reason="dash is not installed")),
          pytest.param(["busybox", "sh"], id="busybox-ash",
                       marks=pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox is not installed"))]


@pytest.mark.parametrize("shell", SHELLS)
def test_obs_start(shell, tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    p = subprocess.run([*shell, str(OBS_START)], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    rec = check(p.stderr.strip(), "obs-start")
    assert rec["level"] == "error" and rec["msg"].startswith("usage:")
    env.update(RAILWAY_PRIVATE_DOMAIN="x.railway.internal", OBS_RENDER_DIR=str(tmp_path / "r"), PORT="8080",
               OBS_HEALTH_PORT="9097")
    p = subprocess.run([*shell, str(OBS_START), "webhook-sink", "true"], env=env, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    recs = [check(line, "obs-start") for line in p.stderr.strip().splitlines()]
    assert {r["level"] for r in recs} == {"info", "warning"} and {r["service"] for r in recs} == {"webhook-sink"}


@pytest.mark.skipif(not Path("/bin/busybox").exists(), reason="busybox is not at /bin/busybox")
def test_obs_start_in_an_image_without_applet_links(tmp_path):
    """The collector image has only a busybox binary and no `date` on PATH: the timestamp still is one."""
    env = {"PATH": str(tmp_path / "empty"), "RAILWAY_PRIVATE_DOMAIN": "x.railway.internal",
           "OBS_RENDER_DIR": str(tmp_path / "r")}
    p = subprocess.run(["/bin/busybox", "sh", str(OBS_START), "webhook-sink", sys.executable, "-c", "pass"],
                       env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    for line in p.stderr.strip().splitlines():
        check(line, "obs-start")
