"""Container log lines sent to the collector's fluent_forward receiver exactly as Docker's fluentd log driver
sends them, so the native tests exercise the receiving side of docker-compose.yml's x-logging.

What the driver sends (moby daemon/logger/fluentd, through fluent-logger-golang): one Forward-protocol
"Message" per line, a msgpack array [tag, time, record, option]:
  tag     the `tag` log option, by default the container id's first 12 hex digits;
  time    an EventTime (msgpack ext type 0: 4-byte seconds, 4-byte nanoseconds, big endian) with
          fluentd-sub-second-precision, else integer seconds;
  record  a map of strings: container_id (64 hex), container_name ("/" + name), source (stdout|stderr),
          log (the line without its newline), plus one entry per label named in the `labels` option;
  option  a map: empty, or {"chunk": id} with fluentd-request-ack.
"""
from __future__ import annotations

import secrets
import socket
import struct
import time
from dataclasses import dataclass, field

import msgpack

# The labels docker-compose.yml's x-logging asks the driver to add (its `labels` option).
COMPOSE_LABELS = ("com.docker.compose.service", "com.docker.compose.project")


@dataclass
class Container:
    """One container as the driver describes it; compose=False is a plain `docker run` (no compose labels)."""
    service: str
    project: str = "obs-stack"
    compose: bool = True
    container_id: str = field(default_factory=lambda: secrets.token_hex(32))

    @property
    def name(self) -> str:
        return f"/{self.project}-{self.service}-1" if self.compose else f"/{self.service}"

    def record(self, line: str, source: str = "stdout") -> dict[str, str]:
        rec = {"container_id": self.container_id, "container_name": self.name, "source": source, "log": line}
        if self.compose:
            rec.update(zip(COMPOSE_LABELS, (self.service, self.project), strict=True))
        return rec


def event_time(t_ns: int) -> msgpack.ExtType:
    return msgpack.ExtType(0, struct.pack(">II", t_ns // 1_000_000_000, t_ns % 1_000_000_000))


def message(container: Container, line: str, source: str = "stdout", t_ns: int | None = None,
            sub_second: bool = True) -> bytes:
    """One Forward-protocol Message, as the driver encodes it."""
    t_ns = time.time_ns() if t_ns is None else t_ns
    ts = event_time(t_ns) if sub_second else t_ns // 1_000_000_000
    return msgpack.packb([container.container_id[:12], ts, container.record(line, source), {}], use_bin_type=True)


def send(host: str, port: int, messages: list[bytes], timeout: float = 10) -> None:
    """Write the messages on one TCP connection (as the driver does, one connection per container)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(b"".join(messages))
        s.shutdown(socket.SHUT_WR)
        # The receiver closes its side once it has read everything: wait for that, so the lines are in the
        # collector (not only in a socket buffer) when this returns.
        s.settimeout(timeout)
        while s.recv(4096):
            pass
