"""Attacks on the platform API simulator (obs_bridges.simulator; issue 12, item 17), on loopback only.

python -m scripts.attack.simulator starts the simulator as a user would (`python -m obs_bridges simulator`,
no LISTEN_ADDR) and checks: it listens on 127.0.0.1 only (its control API has no authentication); every
control parameter out of range, non-finite or of the wrong type is a 400 naming the parameter while in-range
values still work (`{"seconds": 1e300}` on /_control/advance used to run memory away); oversized,
malformed and deeply nested control bodies are refused without the process dying. Prints one JSON report
(scripts/attack/README.md); exit 1 when an attack did not hold. Peak memory is the simulator's VmHWM.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from scripts.attack._common import listening, run_component, Service, answers, fetch, free_port, python_env, result

MEMORY_BOUND_MB = 250.0  # the simulator idles near 60 MB with its seeded world


class Simulator(Service):
    def __init__(self, workdir: Path):
        self.port = free_port()
        super().__init__([sys.executable, "-m", "obs_bridges", "simulator"], python_env(LISTEN_PORT=str(self.port)),
                         workdir / "simulator.log", lambda s: answers(f"http://127.0.0.1:{self.port}/healthz"),
                         timeout=60)

    def control(self, path: str, body: bytes) -> tuple[int, dict]:
        status, raw = fetch(self.port, "POST", path, {"Content-Type": "application/json"}, body, timeout=30)
        try:
            return status, json.loads(raw or b"{}")
        except ValueError:
            return status, {"raw": raw[:200].decode(errors="replace")}


def binding(sim: Simulator) -> dict:
    got = listening(sim.port)
    return result("listen address", "the simulator started without LISTEN_ADDR; its LISTEN sockets read from "
                  "/proc/net/tcp and tcp6", got == {"0100007F"},
                  f"listening on {sorted(got)} (0100007F = 127.0.0.1; 00000000 or :: would be every address)",
                  sim.peak_mb())


# (path, the other fields of a valid body, the numeric parameter under attack, an in-range value)
PARAMS = [
    ("/_control/advance", {}, "seconds", 60),
    ("/_control/rate", {"platform": "github"}, "per_hour", 30),
    ("/_control/ratelimit", {"platform": "github", "window": 3600}, "limit", 5000),
    ("/_control/ratelimit", {"platform": "github", "limit": 5000}, "window", 3600),
    ("/_control/inject/github", {}, "count", 2),
    ("/_control/inject/github", {"count": 1}, "duration", 120),
    ("/_control/inject/github", {"count": 1}, "finish_in", 30),
    ("/_control/inject/vercel", {"count": 1}, "spacing", 5),
    ("/_control/faults", {"kind": "slow"}, "delay", 0.1),
    ("/_control/faults", {"kind": "http5xx"}, "status", 503),
]
BAD_VALUES = ["1e300", "-5", "Infinity", "-Infinity", "NaN", "9" * 400, '"10"', "[1]", "null", "true", "1e-400x"]


def control_params(sim: Simulator) -> dict:
    sim.reset_peak()
    wrong, tried, good = [], 0, []
    for path, base, param, ok_value in PARAMS:
        for bad in BAD_VALUES:
            head = json.dumps(base)[:-1] + (", " if base else "")
            body = f'{head}"{param}": {bad}}}'.encode()
            tried += 1
            status, reply = sim.control(path, body)
            named = param in json.dumps(reply) or bad == "1e-400x"  # not JSON at all: no parameter to name
            if status != 400 or not named:
                wrong.append(f"{path} {param}={bad[:12]}: {status} {str(reply)[:80]}")
        status, reply = sim.control(path, json.dumps({**base, param: ok_value}).encode())
        good.append(status)
        if status != 200:
            wrong.append(f"{path} {param}={ok_value} (in range): {status} {str(reply)[:80]}")
    sim.control("/_control/faults", b'{"kind": "none"}')  # the fault injections above end here
    peak = sim.peak_mb()
    alive = sim.alive() and answers(f"http://127.0.0.1:{sim.port}/healthz")
    held = not wrong and alive and peak is not None and peak < MEMORY_BOUND_MB
    return result("control parameters out of range", f"{tried} out-of-range, non-finite or mistyped values over "
                  f"{len(PARAMS)} parameters, then each parameter in range", held,
                  f"wrong answers: {wrong[:6]}; in-range answers {good}; serving afterwards: {alive}; peak RSS "
                  f"{peak} MB (bound {MEMORY_BOUND_MB:.0f})", peak)


def control_bodies(sim: Simulator) -> dict:
    sim.reset_peak()
    cases = {
        "20 MB body": b'{"seconds": 1, "pad": "' + b"x" * (20 * 1024 * 1024) + b'"}',
        "not JSON": b"{seconds: 1",
        "a list": b"[1, 2]",
        "200,000 nested lists": b"[" * 200_000 + b"]" * 200_000,
        "not UTF-8": b'{"seconds": "\xff"}',
    }
    codes = {}
    for what, body in cases.items():
        codes[what] = sim.control("/_control/advance", body)[0]
    peak = sim.peak_mb()
    # A refused body may also be cut off (0: closed before an answer) when it is larger than the server reads.
    bad = {k: v for k, v in codes.items() if not (400 <= v < 500 or (v == 0 and k == "20 MB body"))}
    alive = sim.alive() and answers(f"http://127.0.0.1:{sim.port}/healthz")
    held = not bad and alive and peak is not None and peak < MEMORY_BOUND_MB
    return result("malformed and oversized control bodies", f"{len(cases)} bodies to /_control/advance", held,
                  f"answers {codes}; not 4xx: {bad}; serving afterwards: {alive}; peak RSS {peak} MB", peak)


def main() -> int:
    return run_component("simulator", Simulator, (binding, control_params, control_bodies))


if __name__ == "__main__":
    sys.exit(main())
