"""free_port(): a TCP port number for a server the test starts itself, on 127.0.0.1 (or the address asked).

Handing out a number is racy by nature: the port is free when checked, and the server binds it later. The
classic bind(0)-close-reuse trick makes the race likely, because port 0 draws from the kernel's ephemeral
range, the very range every outgoing connection of the machine draws its source port from. So the ports
here come from below that range (/proc/sys/net/ipv4/ip_local_port_range; 32768 when unreadable), where
only a server that asks for the number can get it; never the same number twice in one process; from a
random starting point per process, so that parallel test processes (pytest-xdist) rarely walk the same
numbers; and only numbers that bind right now on the address (and so the family) asked for.

Where the server under test is in-process and can bind port 0 itself and report its port, do that instead.
"""
from __future__ import annotations

import random
import socket
import threading

LOWEST = 20000  # above the well-known and most registered service ports
_FALLBACK_EPHEMERAL_START = 32768

_lock = threading.Lock()
_handed_out: set[int] = set()
_next: int | None = None


def ephemeral_start(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> int:
    """First port of the kernel's ephemeral range (what bind(0) and outgoing connections use)."""
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return _FALLBACK_EPHEMERAL_START


def _bindable(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            if family == socket.AF_INET6 and host == "::":
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # "::" takes IPv4 as well
            s.bind((host, port))
        return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port below the ephemeral range that binds on `host` now and was not handed out before."""
    global _next
    high = ephemeral_start()
    low = LOWEST if high > LOWEST + 1000 else 1024
    span = high - low
    with _lock:
        if _next is None:
            _next = random.randrange(span)
        for _ in range(span):
            port = low + _next % span
            _next += 1
            if port not in _handed_out and _bindable(host, port):
                _handed_out.add(port)
                return port
    raise RuntimeError(f"no bindable port left in {low}-{high - 1} on {host}")
