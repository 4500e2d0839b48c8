"""Attacks on the demo notification sink (alertmanager/webhook_sink.py; issue 12, items 7-9), on loopback.

python -m scripts.attack.sink starts the sink on 127.0.0.1 (read timeout 2 s, connection cap 64 as
shipped) and runs:
- item 7: three ~4 MiB bodies of empty alerts and one of huge text fields: peak memory stays bounded,
  GET /notifications stays small, at most 100 alerts and 2 KiB per field kept per notification;
- item 8: wrong JSON types and deep nesting: each a 400 (never a dropped connection or a 500), the sink
  serving afterwards;
- item 9: 100 connections (cap 64) that declare a 4 MB body and send one byte: the cap closes the surplus
  at once, the read timeout closes the rest, /healthz gets through as soon as slots free and right after.
Prints one JSON report (scripts/attack/README.md); exit 1 when an attack did not hold. Peak memory is the
sink's VmHWM, reset before each attack.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from scripts.attack._common import ROOT, Service, answers, connect, fetch, free_port, python_env, request, result, run_component

READ_TIMEOUT = 2.0
MAX_CONNECTIONS = 64
MAX_ALERTS = 100
MAX_FIELD = 2048
# One 4 MiB body of empty alerts parses to ~1M dicts (~100 MB); the next request can start before the
# previous handler has freed its payload, so two may overlap (108 MB usual, 188 MB seen). Before the fix: 580 MB to 2 GB.
MEMORY_BOUND_MB = 250.0
NOTIFICATIONS_BOUND = 2 * 1024 * 1024  # GET /notifications after the floods (676 MB before the fix)
SLOW_MEMORY_BOUND_MB = 100.0  # bodies declared and never sent are never buffered


class Sink(Service):
    def __init__(self, workdir: Path):
        self.port = free_port()
        env = python_env(SINK_HOST="127.0.0.1", SINK_PORT=str(self.port), SINK_READ_TIMEOUT=str(READ_TIMEOUT),
                         SINK_MAX_CONNECTIONS=str(MAX_CONNECTIONS))
        super().__init__([sys.executable, str(ROOT / "alertmanager" / "webhook_sink.py")], env,
                         workdir / "sink.log", lambda s: answers(f"http://127.0.0.1:{self.port}/healthz"))

    def post(self, body: bytes, path: str = "/critical", timeout: float = 20) -> int:
        return fetch(self.port, "POST", path, {"Content-Type": "application/json"}, body, timeout=timeout)[0]

    def healthy(self) -> bool:
        return self.alive() and answers(f"http://127.0.0.1:{self.port}/healthz")


def payload(alerts, **extra) -> bytes:
    """An Alertmanager webhook body (version 4) around `alerts`."""
    doc = {"version": "4", "status": "firing", "receiver": "critical", "groupKey": "{}:{}", "groupLabels": {},
           "commonLabels": {}, "commonAnnotations": {}, "externalURL": "", "truncatedAlerts": 0, "alerts": alerts}
    doc.update(extra)
    return json.dumps(doc).encode()


def empty_alerts_body(size: int = 4 * 1024 * 1024 - 64) -> tuple[bytes, int]:
    """A valid webhook body just under the sink's 4 MiB cap that is nothing but empty alerts, and their count."""
    head, tail = payload([]).split(b'"alerts": []')
    head += b'"alerts": ['
    n = (size - len(head) - len(tail) - 1) // 4  # "{}, " per alert
    return head + b", ".join([b"{}"] * n) + b"]" + tail, n


def memory_floods(sink: Sink) -> dict:
    """Item 7."""
    sink.reset_peak()
    empty, n_empty = empty_alerts_body()
    big = payload([{"status": "firing", "labels": {"alertname": "A" * 300_000, f"l{i}": "v" * 3000},
                    "annotations": {"description": "d" * 400_000, "summary": "s" * 100_000}} for i in range(4)],
                  groupKey="g" * 200_000, commonLabels={"k" * 100_000: "v" * 100_000})
    assert len(big) < 4 * 1024 * 1024 and len(empty) < 4 * 1024 * 1024  # under the cap: parsed, not refused
    codes = [sink.post(empty) for _ in range(3)] + [sink.post(big)]
    status, body = fetch(sink.port, "GET", "/notifications", timeout=20)
    peak = sink.peak_mb()
    try:
        kept = json.loads(body) if status == 200 else []
    except ValueError:
        kept = []
    ours = [n for n in kept if n.get("receiver") == "critical"]
    most = max((len(n.get("alerts") or []) for n in ours), default=-1)
    dropped = sorted({n.get("alerts_dropped") for n in ours}, key=str)

    def texts(v):
        if isinstance(v, dict):
            for k, x in v.items():
                yield k
                yield from texts(x)
        elif isinstance(v, list):
            for x in v:
                yield from texts(x)
        elif isinstance(v, str):
            yield v

    longest = max((len(t) for t in texts(ours)), default=0)
    held = (codes == [200] * 4 and status == 200 and len(ours) == 4 and len(body) <= NOTIFICATIONS_BOUND
            and 0 <= most <= MAX_ALERTS and longest <= MAX_FIELD and peak is not None and peak < MEMORY_BOUND_MB)
    return result("memory floods (empty alerts, huge fields)",
                  f"3 bodies of {len(empty) / 1048576:.2f} MiB holding {n_empty:,} empty alerts each, then one of "
                  f"{len(big) / 1048576:.2f} MiB: 4 alerts with 100-400 KB labels and annotations, a 200 KB groupKey and 100 KB commonLabels",
                  held, f"answers {codes}; /notifications {status}, {len(body):,} bytes (bound {NOTIFICATIONS_BOUND:,}) "
                  f"with {len(ours)} notifications; at most {most} alerts kept per notification (bound {MAX_ALERTS}), "
                  f"alerts_dropped {dropped}; longest text kept {longest} characters (bound {MAX_FIELD}); peak RSS "
                  f"{peak} MB (bound {MEMORY_BOUND_MB:.0f} MB)", peak)


def bad_json(sink: Sink) -> dict:
    """Item 8: every wrong type is a 400 with a JSON error, deep nesting too; never a drop or a 500."""
    sink.reset_peak()
    cases = {
        "alerts as a string": payload("x"),
        "alerts as an object": payload({"a": 1}),
        "alerts as a number": payload(5),
        "an alert that is a string": payload(["firing"]),
        "an alert that is null": payload([None]),
        "labels as a list": payload([{"labels": ["a", "b"]}]),
        "labels as a string": payload([{"labels": "alertname=x"}]),
        "annotations as a number": payload([{"annotations": 5}]),
        "a label value that is an object": payload([{"labels": {"alertname": {"x": 1}}}]),
        "status as a list": payload([{"status": ["firing"]}]),
        "startsAt as an object": payload([{"startsAt": {"t": 1}}]),
        "receiver as a list": payload([], receiver=["critical"]),
        "groupLabels as a string": payload([], groupLabels="x"),
        "truncatedAlerts as a string": payload([], truncatedAlerts="5"),
        "truncatedAlerts as a float": payload([], truncatedAlerts=1.5),
        "the body a list": b"[1, 2, 3]",
        "the body a string": b'"firing"',
        "the body null": b"null",
        "a 5,000-digit number": b'{"alerts": [], "truncatedAlerts": ' + b"9" * 5000 + b"}",
        "100,000 nested lists": b"[" * 100_000 + b"]" * 100_000,
        "100,000 nested lists as alerts": b'{"alerts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "50,000 nested objects in a label": b'{"alerts": [{"labels": ' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000
                                            + b"}]}",
        "not JSON": b"{alerts: [",
        "empty body": b"",
        "not UTF-8": b'{"alerts": ["\xff\xfe"]}',
    }
    # The sink keeps a number (or boolean) where text goes as its text: Alertmanager sends strings, and
    # turning 12 into "12" loses nothing. That is an answer (200), never a drop; checked separately below.
    numbers = {"a label value that is a number": payload([{"labels": {"alertname": 12}}]),
               "status as a boolean": payload([{"status": True}])}
    codes, errors = {}, {}
    for what, body in cases.items():
        st, raw = fetch(sink.port, "POST", "/critical", {"Content-Type": "application/json"}, body, timeout=15)
        codes[what] = st
        try:
            errors[what] = isinstance(json.loads(raw), dict) and "error" in json.loads(raw)
        except ValueError:
            errors[what] = False
    wrong = {k: v for k, v in codes.items() if v != 400 or not errors[k]}
    lenient = {what: sink.post(body) for what, body in numbers.items()}
    wrong.update({k: v for k, v in lenient.items() if v not in (200, 400)})
    alive = sink.healthy()
    return result("wrong JSON types and deep nesting", f"{len(cases)} bodies of wrong types, deep nesting (to "
                  f"100,000 levels) or not JSON, plus {len(numbers)} with numbers where text goes", not wrong and alive,
                  f"{sum(v == 400 for v in codes.values())}/{len(cases)} answered 400 with a JSON error; not so: "
                  f"{wrong}; numbers where text goes: {lenient} (kept as text); sink serving afterwards: {alive}",
                  sink.peak_mb())


def declared_not_sent(sink: Sink, n: int = 100) -> dict:
    """Item 9: n connections (more than the cap) declare Content-Length 4 MB and send one byte. The cap
    closes the surplus at once, the read timeout each of the rest; /healthz gets a slot as soon as one
    frees, and right after."""
    sink.reset_peak()
    lived: list[float] = []
    lock = threading.Lock()
    sent = threading.Semaphore(0)

    def one(i: int):
        sock = None
        try:
            # SYN retries while the listen backlog is full are the client's wait, not the sink holding it:
            # the clock starts once the connection is up and the byte is sent.
            sock = connect(sink.port, f"127.0.1.{i + 1}", timeout=READ_TIMEOUT * 8)
            sock.sendall(b"POST /critical HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 4000000\r\n\r\n{")
        except OSError:
            pass
        start = time.monotonic()
        sent.release()
        try:
            while sock is not None and sock.recv(4096):
                pass
        except OSError:
            pass
        with lock:
            lived.append(time.monotonic() - start)
        if sock is not None:
            sock.close()

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    end = time.monotonic() + 30
    for _ in range(n):  # every connection is up and has sent its byte (or was refused)
        sent.acquire(timeout=max(0.01, end - time.monotonic()))
    t0 = time.monotonic()
    first = request(sink.port, "GET", "/healthz", timeout=READ_TIMEOUT * 3)
    polls, health = 1, first
    while health != 200 and time.monotonic() - t0 < READ_TIMEOUT * 3:
        time.sleep(0.05)
        polls += 1
        health = request(sink.port, "GET", "/healthz", timeout=READ_TIMEOUT * 3)
    health_after = time.monotonic() - t0
    for t in threads:
        t.join(READ_TIMEOUT * 4)
    after = sink.healthy()
    peak = sink.peak_mb()
    at_once = sum(x < 0.5 for x in lived)
    held_open = sum(x >= 0.5 for x in lived)
    slowest = max(lived, default=float("inf"))
    bound = READ_TIMEOUT + 1.5
    held = (len(lived) == n and held_open <= MAX_CONNECTIONS and at_once >= n - MAX_CONNECTIONS - 2
            and slowest <= bound and health == 200 and health_after <= bound and after
            and peak is not None and peak < SLOW_MEMORY_BOUND_MB)
    return result("bodies declared and never sent", f"{n} connections from {n} addresses (cap {MAX_CONNECTIONS}) each "
                  "declaring Content-Length 4,000,000 and sending 1 byte; /healthz polled meanwhile", held,
                  f"{len(lived)}/{n} closed by the sink: {at_once} at once (< 0.5 s, the cap), {held_open} held until "
                  f"the read timeout (cap {MAX_CONNECTIONS}), the slowest after {slowest:.2f} s (read timeout "
                  f"{READ_TIMEOUT:.0f} s, bound {bound:.1f} s); /healthz while they were open: first try {first}, 200 "
                  f"after {health_after:.2f} s and {polls} tries (bound {bound:.1f} s); right after: {after}; peak RSS "
                  f"{peak} MB (bound {SLOW_MEMORY_BOUND_MB:.0f} MB)", peak)


def main() -> int:
    return run_component("sink", Sink, (memory_floods, bad_json, declared_not_sent))


if __name__ == "__main__":
    sys.exit(main())
