"""What the demo's bench scripts share: a local OTLP sink, the demo app started on 127.0.0.1, and stopping it.

Imported by bench.py and error_mix.py, which run as scripts (their folder is on sys.path).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Sink(BaseHTTPRequestHandler):
    """Answers OTLP/HTTP exports with 200, as a collector would."""

    def log_message(self, *a):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()


def start_sink() -> tuple[ThreadingHTTPServer, str]:
    sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    return sink, f"http://127.0.0.1:{sink.server_address[1]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(port: int, sink_url: str, db: str, **extra: str) -> dict[str, str]:
    """The demo app's environment on 127.0.0.1:port, exporting to the sink (no inherited OTEL_* settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update({"LISTEN_HOST": "127.0.0.1", "LISTEN_PORT": str(port), "OBS_DEMO_DB": db,
                "OTEL_EXPORTER_OTLP_ENDPOINT": sink_url, "OBS_USER_ID_SALT": "bench", **extra})
    return env


def start_app(env: dict[str, str]) -> subprocess.Popen:
    """`python -m obs_demo serve` in its own process group; returns once /healthz answers (60 s at most)."""
    proc = subprocess.Popen([sys.executable, "-m", "obs_demo", "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{env['LISTEN_PORT']}/healthz"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"demo app exited with {proc.returncode}") from None
            time.sleep(0.2)
    stop(proc)
    raise SystemExit("demo app did not become ready in 60 s")


def stop(proc: subprocess.Popen, grace: float = 15) -> None:
    """SIGTERM to the process group, SIGKILL after `grace` seconds."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
