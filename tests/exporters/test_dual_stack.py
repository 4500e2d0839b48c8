"""LISTEN_ADDR=:: (Railway's private network, IPv6 in legacy environments) serves IPv6 and IPv4 alike:
the bridges, the simulator and the demo webhook sink."""
from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from scripts.attack._common import listening
from tests.support.ports import free_port
from tests.support.wait import StopWaiting, wait_for

ROOT = Path(__file__).resolve().parents[2]


def wait_ok(url: str, proc: subprocess.Popen, timeout: float = 20) -> bytes:
    def body() -> bytes:
        if proc.poll() is not None:
            raise StopWaiting(proc.stdout.read().decode() if proc.stdout else proc.returncode)
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.read() or b"(empty)"
    return wait_for(body, timeout, 0.2, f"{url} to answer")


@pytest.fixture
def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError as e:
        pytest.skip(f"no IPv6 loopback here: {e}")


@pytest.mark.parametrize("argv,env,path", [
    ([sys.executable, "-m", "obs_bridges", "simulator"], {}, "/healthz"),
    ([sys.executable, str(ROOT / "alertmanager" / "webhook_sink.py")], {}, "/healthz"),
], ids=["simulator", "webhook-sink"])
def test_listens_on_both_families(ipv6_loopback, argv, env, path):
    port = free_port("::")  # free on IPv6 and IPv4 alike
    envs = {"PATH": "/usr/bin:/bin", "LISTEN_ADDR": "::", "LISTEN_PORT": str(port), "SINK_HOST": "::",
            "SINK_PORT": str(port), **env}
    proc = subprocess.Popen(argv, env={**envs, "PYTHONPATH": ":".join(sys.path)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        wait_ok(f"http://[::1]:{port}{path}", proc)
        wait_ok(f"http://127.0.0.1:{port}{path}", proc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("listen,expected", [(None, {"0100007F"}), ("0.0.0.0", {"00000000"})],
                         ids=["default-loopback", "told-otherwise"])
def test_simulator_binds_loopback_unless_told(listen, expected):
    """Issue 12 item 17: the unauthenticated control API is not reachable from other hosts by default."""
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "LISTEN_PORT": str(port), "PYTHONPATH": ":".join(sys.path)}
    if listen:
        env["LISTEN_ADDR"] = listen
    proc = subprocess.Popen([sys.executable, "-m", "obs_bridges", "simulator"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_ok(f"http://127.0.0.1:{port}/healthz", proc)
        assert listening(port) == expected
    finally:
        proc.terminate()
        proc.wait(timeout=10)
