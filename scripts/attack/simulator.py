"""Attacks on the platform API simulator (obs_bridges.simulator; issue 12, item 17), on loopback only.

python -m scripts.attack.simulator starts the simulator as a user would (`python -m obs_bridges simulator`,
no LISTEN_ADDR) and checks:
- it listens on 127.0.0.1 only (its control API has no authentication);
- every numeric parameter of every /_control endpoint, out of range, non-finite, a 400-digit integer or of
  the wrong type, is a 400 naming the parameter, while in-range values still work (`{"seconds": 1e300}` on
  /_control/advance used to run memory away);
- malformed and deeply nested control bodies are a 4xx (or, for broken framing, a closed connection) without
  the process dying;
- a control body larger than the simulator reads (10 MB) is refused, not answered as if empty with its bytes
  then parsed as further requests.
Prints one JSON report (scripts/attack/README.md); exit 1 when an attack did not hold. Peak memory is the
simulator's VmHWM, reset before each attack.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from scripts.attack._common import (Service, answers, exchange, fetch, free_port, listening, python_env, result,
                                    run_component, statuses)

MEMORY_BOUND_MB = 120.0  # the simulator idles near 40 MB with its seeded world; floods seen under 45 MB
BIG_BODY_MEMORY_BOUND_MB = 150.0  # plus one body of up to 10 MB read whole


class Simulator(Service):
    def __init__(self, workdir: Path):
        self.port = free_port()
        super().__init__([sys.executable, "-m", "obs_bridges", "simulator"], python_env(LISTEN_PORT=str(self.port)),
                         workdir / "simulator.log", lambda s: answers(f"http://127.0.0.1:{self.port}/healthz"),
                         timeout=60)

    def control(self, path: str, body: bytes, method: str = "POST") -> tuple[int, dict]:
        status, raw = fetch(self.port, method, path, {"Content-Type": "application/json"}, body, timeout=30)
        try:
            return status, json.loads(raw or b"{}")
        except ValueError:
            return status, {"raw": raw[:200].decode(errors="replace")}

    def healthy(self) -> bool:
        return self.alive() and answers(f"http://127.0.0.1:{self.port}/healthz")


def binding(sim: Simulator) -> dict:
    sim.reset_peak()
    got = listening(sim.port)
    return result("listen address", "the simulator started without LISTEN_ADDR; its LISTEN sockets on the port read "
                  "from /proc/net/tcp and tcp6", got == {"0100007F"},
                  f"listening on {sorted(got)} (0100007F = 127.0.0.1; 00000000 or 000...000 (::) would be every "
                  "address)", sim.peak_mb())


# Every numeric parameter of the control API (simulator.common.LIMITS, read by num()):
# (path, the other fields of a valid body, the parameter under attack, an in-range value).
# "ID" stands for the id of a GitHub run injected first (a re-run needs a run that exists).
PARAMS = [
    ("/_control/advance", {}, "seconds", 60),
    ("/_control/rate", {"platform": "github"}, "per_hour", 3),
    ("/_control/ratelimit", {"platform": "github", "window": 3600}, "limit", 5000),
    ("/_control/ratelimit", {"platform": "github", "limit": 5000}, "window", 3600),
    ("/_control/rerun/github", {}, "id", "ID"),
    ("/_control/rerun/github", {"id": "ID"}, "duration", 90),
    ("/_control/inject/github", {}, "count", 2),
    ("/_control/inject/github", {"count": 1}, "finish_in", 30),
    ("/_control/inject/github", {"count": 1}, "duration", 120),
    ("/_control/inject/github", {"count": 1}, "created_ago", 60),
    ("/_control/inject/vercel", {}, "count", 2),
    ("/_control/inject/vercel", {"count": 1}, "finish_in", 30),
    ("/_control/inject/vercel", {"count": 1}, "spacing", 5),
    ("/_control/inject/railway", {}, "count", 2),
    ("/_control/faults", {"kind": "slow", "delay": 0.01}, "count", 1),
    ("/_control/faults", {"kind": "slow", "delay": 0.01, "count": 1}, "duration", 5),
    ("/_control/faults", {"kind": "http5xx", "count": 1}, "status", 503),
    ("/_control/faults", {"kind": "ratelimit429", "count": 1}, "retry_after", 5),
    ("/_control/faults", {"kind": "slow", "count": 1}, "delay", 0.01),
]
# Written into the JSON text as is: out of range, non-finite (Python's json reads these), a 400-digit
# integer, a string, a list, an object, null, a boolean.
BAD_VALUES = ["1e300", "-1e300", "-5", "Infinity", "-Infinity", "NaN", "9" * 400, "-" + "9" * 400, '"10"', "[1]",
              '{"v": 1}', "null", "true"]
# A fault's count or duration of null is documented as "not set" (no limit), as if absent: answered like an
# absent one (200 with the field null), never a crash. Any other parameter must refuse null.
NULL_MEANS_UNSET = {("/_control/faults", "count"): "remaining", ("/_control/faults", "duration"): "until"}


def control_params(sim: Simulator) -> dict:
    sim.reset_peak()
    st, reply = sim.control("/_control/inject/github", b'{"count": 1}')
    run_id = (reply.get("ids") or [0])[0] if st == 200 else 0
    wrong, tried, good, null_unset, named_400 = [], 0, [], [], 0

    def fill(v):
        return run_id if v == "ID" else v

    for path, base, param, ok_value in PARAMS:
        base = {k: fill(v) for k, v in base.items()}
        for bad in BAD_VALUES:
            head = json.dumps(base)[:-1] + (", " if base else "")
            body = f'{head}"{param}": {bad}}}'.encode()
            tried += 1
            status, reply = sim.control(path, body)
            if bad == "null" and (path, param) in NULL_MEANS_UNSET:
                field = NULL_MEANS_UNSET[(path, param)]
                null_unset.append(f"{param}: {status}")
                if status != 200 or reply.get(field, "missing") is not None:
                    wrong.append(f"{path} {param}=null: {status} {str(reply)[:80]}")
                continue
            named = param in str(reply.get("message", ""))
            named_400 += status == 400 and named
            if status != 400 or not named:
                wrong.append(f"{path} {param}={bad[:12]}: {status} {str(reply)[:80]}")
        status, reply = sim.control(path, json.dumps({**base, param: fill(ok_value)}).encode())
        good.append(status)
        if not 200 <= status < 300:
            wrong.append(f"{path} {param}={fill(ok_value)} (in range): {status} {str(reply)[:80]}")
    sim.control("/_control/faults", b"", method="DELETE")  # the faults added in range above end here
    peak = sim.peak_mb()
    alive = sim.healthy()
    held = not wrong and alive and run_id and peak is not None and peak < MEMORY_BOUND_MB
    return result("control parameters out of range", f"{tried} out-of-range, non-finite, 400-digit or mistyped values "
                  f"over all {len(PARAMS)} numeric parameters of {len({p for p, *_ in PARAMS})} control endpoints, then "
                  "each parameter in range", held,
                  f"{named_400}/{tried - len(null_unset)} answered 400 naming the parameter; wrong answers ({len(wrong)}): {wrong[:6]}; null as 'not set' for {null_unset}; in-range "
                  f"answers {good}; serving afterwards: {alive}; peak RSS {peak} MB (bound {MEMORY_BOUND_MB:.0f} MB)",
                  peak)


def control_bodies(sim: Simulator) -> dict:
    """Malformed and deeply nested bodies: a 4xx; broken framing (an unreadable Content-Length): a 4xx or a
    closed connection without an answer. Never a 2xx, the process alive."""
    sim.reset_peak()
    cases = {
        "not JSON": b"{seconds: 1",
        "truncated JSON": b'{"seconds": 1',
        "a list": b"[1, 2]",
        "a string": b'"advance"',
        "null": b"null",
        "200,000 nested lists": b"[" * 200_000 + b"]" * 200_000,
        "200,000 nested lists as seconds": b'{"seconds": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
        "100,000 nested objects": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        "not UTF-8": b'{"seconds": "\xff"}',
        "a 5,000-digit number": b'{"seconds": ' + b"9" * 5000 + b"}",
        "9 MB of padding": b'{"seconds": 1, "pad": "' + b"x" * (9 * 1024 * 1024) + b'"',
    }
    codes = {what: sim.control("/_control/advance", body)[0] for what, body in cases.items()}
    framing = {
        "Content-Length not a number": b"POST /_control/advance HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
        "Content-Length 1e3": b"POST /_control/advance HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n{}",
    }
    for what, raw in framing.items():
        got, closed = exchange(sim.port, raw, timeout=5)
        codes[what] = (statuses(got) or [0])[0] if (statuses(got) or closed) else -1  # -1: held open, no answer
    peak = sim.peak_mb()
    bad = {k: v for k, v in codes.items() if not (400 <= v < 500 or (v == 0 and k in framing))}
    alive = sim.healthy()
    held = not bad and alive and peak is not None and peak < BIG_BODY_MEMORY_BOUND_MB
    return result("malformed control bodies", f"{len(cases)} malformed, deeply nested or padded bodies and "
                  f"{len(framing)} unreadable Content-Lengths to /_control/advance", held,
                  f"answers {codes} (0: closed without an answer); not 4xx: {bad}; serving afterwards: {alive}; peak "
                  f"RSS {peak} MB (bound {BIG_BODY_MEMORY_BOUND_MB:.0f} MB)", peak)


def oversized_body(sim: Simulator) -> dict:
    """A body over the 10 MB the simulator reads, whose first bytes are another control request
    (/_control/rate setting GitHub's rate to a marker value). It must be refused (4xx) or the connection
    closed without an answer, and the request inside it must never run; memory bounded."""
    sim.reset_peak()
    marker = 4321.0
    inner = json.dumps({"platform": "github", "per_hour": marker}).encode()
    smuggled = b"POST /_control/rate HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(inner) + inner
    body = smuggled + b" " * (20 * 1024 * 1024 - len(smuggled))
    head = b"POST /_control/advance HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    # The first MiB only: enough for the simulator to answer (or not) and to read what follows the head.
    raw, closed = exchange(sim.port, head % len(body) + body[: 1024 * 1024], timeout=10)
    answers_seen = statuses(raw)
    # The whole 20 MB too, as a client would send it.
    whole = sim.control("/_control/advance", b'{"seconds": 1, "pad": "' + b"x" * (20 * 1024 * 1024) + b'"}')[0]
    rates = sim.control("/_control/rate", json.dumps({"platform": "vercel", "per_hour": 2}).encode())[1]
    ran = (rates.get("rates") or {}).get("github") == marker
    peak = sim.peak_mb()
    alive = sim.healthy()
    refused = not answers_seen or 400 <= answers_seen[0] < 500
    held = refused and not ran and (whole == 0 or 400 <= whole < 500) and alive and peak is not None and peak < BIG_BODY_MEMORY_BOUND_MB
    return result("oversized control body", "a 20 MiB body to /_control/advance starting with a /_control/rate request "
                  "(first MiB sent), then a whole 20 MiB body", held,
                  f"answers on the connection {answers_seen} (closed: {closed}); the request inside the body ran: {ran} "
                  f"(GitHub rate now {(rates.get('rates') or {}).get('github')}); whole 20 MiB body: {whole} "
                  f"(0: closed without an answer); serving afterwards: {alive}; peak RSS {peak} MB (bound "
                  f"{BIG_BODY_MEMORY_BOUND_MB:.0f} MB)", peak)


def main() -> int:
    return run_component("simulator", Simulator, (binding, control_params, control_bodies, oversized_body))


if __name__ == "__main__":
    sys.exit(main())
