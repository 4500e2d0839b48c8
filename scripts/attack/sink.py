"""Attacks on the demo notification sink (alertmanager/webhook_sink.py; issue 12, items 7-9), on loopback.

python -m scripts.attack.sink starts the sink on 127.0.0.1 (read timeout 2 s, connection cap 64 as
shipped) and runs: bodies of empty alerts and of huge text fields (memory and /notifications stay
bounded, at most 100 alerts kept per notification), wrong JSON types and deep nesting (400, never a
dropped connection or a traceback), and 64 connections that declare 4 MB and send one byte (each closed
by the read deadline, /healthz answering meanwhile). Prints one JSON report (scripts/attack/README.md);
exit 1 when an attack did not hold. Peak memory is the sink's VmHWM, reset before each attack.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from scripts.attack._common import run_component, ROOT, Service, answers, connect, fetch, free_port, python_env, result

READ_TIMEOUT = 2.0
MEMORY_BOUND_MB = 200.0  # parsing one 4 MiB body of empty alerts takes it near 110 MB; before the fix, 2 GB
NOTIFICATIONS_BOUND = 2 * 1024 * 1024  # GET /notifications after the floods (676 MB before the fix)


class Sink(Service):
    def __init__(self, workdir: Path):
        self.port = free_port()
        env = python_env(SINK_HOST="127.0.0.1", SINK_PORT=str(self.port), SINK_READ_TIMEOUT=str(READ_TIMEOUT))
        super().__init__([sys.executable, str(ROOT / "alertmanager" / "webhook_sink.py")], env,
                         workdir / "sink.log", lambda s: answers(f"http://127.0.0.1:{self.port}/healthz"))

    def post(self, body: bytes, path: str = "/critical", timeout: float = 20) -> int:
        return fetch(self.port, "POST", path, {"Content-Type": "application/json"}, body, timeout=timeout)[0]


def payload(alerts: list) -> bytes:
    return json.dumps({"version": "4", "status": "firing", "receiver": "critical", "groupKey": "{}:{}",
                       "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "",
                       "alerts": alerts}).encode()


def memory_floods(sink: Sink) -> dict:
    sink.reset_peak()
    empty = payload([{}] * 1_300_000)[: 4 * 1024 * 1024 - 2]
    # Trim to a valid body just under the 4 MiB cap: cut the alert list and close it.
    empty = empty[: empty.rfind(b"{}")] + b"{}]}"
    big = payload([{"status": "firing", "labels": {"alertname": "A" * 400_000, f"l{i}": "v" * 3000},
                    "annotations": {"description": "d" * 500_000}} for i in range(4)])
    codes = [sink.post(empty) for _ in range(3)] + [sink.post(big)]
    status, body = fetch(sink.port, "GET", "/notifications", timeout=20)
    peak = sink.peak_mb()
    kept = json.loads(body) if status == 200 else []
    most = max((len(n.get("alerts", [])) for n in kept), default=0)
    longest = max((len(v) for n in kept for a in n.get("alerts", []) for v in (a.get("labels") or {}).values()),
                  default=0)
    held = (codes == [200] * 4 and status == 200 and len(body) <= NOTIFICATIONS_BOUND and most <= 100
            and longest <= 2048 and peak is not None and peak < MEMORY_BOUND_MB)
    return result("memory floods", f"3 bodies of ~{len(empty) // 1024} KiB of empty alerts and one of "
                  f"{len(big) // 1024} KiB: 4 alerts with 400-500 KB text fields", held,
                  f"answers {codes}; /notifications {status}, {len(body)} bytes (bound {NOTIFICATIONS_BOUND}); at most "
                  f"{most} alerts and {longest} characters per label kept; peak RSS {peak} MB (bound "
                  f"{MEMORY_BOUND_MB:.0f})", peak)


def bad_json(sink: Sink) -> dict:
    sink.reset_peak()
    cases = {
        "alerts as a string": json.dumps({"version": "4", "alerts": "x"}).encode(),
        "alerts as an object": json.dumps({"version": "4", "alerts": {"a": 1}}).encode(),
        "labels as a list": payload([{"labels": ["a", "b"]}]),
        "annotations as a number": payload([{"annotations": 5}]),
        "status as a list": payload([{"status": ["firing"]}]),
        "a number where text goes": payload([{"labels": {"alertname": 12}}]),
        "the body a list": b"[1, 2, 3]",
        "the body a string": b'"firing"',
        "100,000 nested lists": b"[" * 100_000 + b"]" * 100_000,
        "50,000 nested objects in a label": b'{"alerts": [{"labels": ' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"}]}",
        "not JSON": b"{alerts: [",
        "not UTF-8": b'{"alerts": ["\xff\xfe"]}',
    }
    lenient = {"a number where text goes"}  # kept as text: a real answer either way, never a dropped connection
    codes = {what: sink.post(body) for what, body in cases.items()}
    wrong = {k: v for k, v in codes.items() if v != 400 and not (k in lenient and v == 200)}
    alive = sink.alive() and answers(f"http://127.0.0.1:{sink.port}/healthz")
    return result("wrong JSON types and deep nesting", f"{len(cases)} bodies", not wrong and alive,
                  f"not answered 400: {wrong}; sink serving afterwards: {alive}", sink.peak_mb())


def declared_not_sent(sink: Sink) -> dict:
    """100 connections (more than the cap of 64) declare Content-Length 4 MB and send one byte: each must be
    closed, by the cap at once or by the read deadline, and the sink must serve again right after."""
    sink.reset_peak()
    n = 100
    closed_after: list[float] = []
    lock = threading.Lock()

    def one(i: int):
        start = time.monotonic()
        try:
            # SYN retries while the listen backlog is full are the client's wait, not the sink holding it:
            # the clock starts once the connection is up and the byte is sent.
            with connect(sink.port, f"127.0.1.{i + 1}", timeout=READ_TIMEOUT * 8) as s:
                s.sendall(b"POST /critical HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: 4000000\r\n\r\n{")
                start = time.monotonic()
                while s.recv(4096):
                    pass
        except OSError:
            pass
        with lock:
            closed_after.append(time.monotonic() - start)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(READ_TIMEOUT * 6)
    slowest = max(closed_after, default=float("inf"))
    after = answers(f"http://127.0.0.1:{sink.port}/healthz", timeout=5)
    held = len(closed_after) == n and slowest <= READ_TIMEOUT * 3 and after
    return result("bodies declared and never sent", f"{n} connections (cap 64) each declaring 4,000,000 bytes "
                  "and sending 1",
                  held, f"{len(closed_after)} of {n} closed by the sink, the slowest after {slowest:.1f} s (read "
                  f"timeout {READ_TIMEOUT:.0f} s, bound {READ_TIMEOUT * 3:.0f} s); /healthz right after: {after}",
                  sink.peak_mb())


def main() -> int:
    return run_component("sink", Sink, (memory_floods, bad_json, declared_not_sent))


if __name__ == "__main__":
    sys.exit(main())
