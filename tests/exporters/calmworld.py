"""A day of the demo world through the real bridges, on a simulated clock, as promtool input series.

Run as a script (tests/exporters/test_calm_world.py does):

    python tests/exporters/calmworld.py HOURS STEP_SECONDS OUT.json [simulator flags...]

The simulator (server + World, with the flags' defaults = the shipped demo defaults unless flags are given)
and the four exporters (module.build, demo mode, OBS_DEMO_SIMULATOR_URL) run in this process; the clock is
a fake one passed to both (World(clock=...), build(env, clock=...)), advanced STEP_SECONDS per step; nothing
replaces time.time. Each step polls every upstream that is due (the exporters' own intervals and backoff, as
their background loops would), renders /metrics and records, like a scrape, every sample whose metric the
alert rules read, with the scrape's `job`/`instance` labels and `up` 1; likewise Prometheus' demo scrape of
the simulator's Supabase metrics endpoint (job supabase-metrics-demo, one target per project, basic auth with
the service-role key). OUT.json: {"steps": n, "step_seconds": s, "series": {series selector: [values]},
"polls": ...} with None where a series was absent at that step.
"""
from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self, t0: float):
        self.t = t0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.t

    def advance(self, s: float) -> None:
        with self.lock:
            self.t += s


def rule_metric_names() -> set[str]:
    text = "\n".join(p.read_text() for p in (ROOT / "prometheus" / "rules").glob("*.yml"))
    names = set(re.findall(r"\b((?:railway|vercel|supabase|github|pg|connection_stats|max_connections)_[a-z0-9_]+)", text))
    for m in re.findall(r'__name__=~"\(([a-z|]+)\)_([a-z_]+)"', text):  # {__name__=~"(a|b)_suffix"}
        names |= {f"{p}_{m[1]}" for p in m[0].split("|")}
    return names


def main(argv: list[str]) -> int:
    hours, step_s, out, sim_args = float(argv[0]), int(argv[1]), Path(argv[2]), argv[3:]
    clock = Clock(float(int(time.time()) // 60 * 60))

    from prometheus_client import disable_created_metrics
    from prometheus_client.parser import text_string_to_metric_families

    from obs_bridges import github, railway, supabase, vercel
    from obs_bridges.simulator import server as sim

    disable_created_metrics()
    p = argparse.ArgumentParser()
    sim.add_world_args(p, {})
    world = sim.world_from_args(p.parse_args(sim_args), clock=clock)
    srv = sim.make_server("127.0.0.1", 0, world)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    env = {"OBS_DEMO_SIMULATOR_URL": url, "LOG_LEVEL": "error"}
    exporters = {f"{m.__name__.rsplit('.', 1)[1]}-exporter": m.build(env, clock=clock)
                 for m in (railway, vercel, supabase, github)}
    # Prometheus' demo scrape of Supabase's own metrics endpoint (job supabase-metrics-demo), one target per project.
    auth = "Basic " + base64.b64encode(f"service_role:{world.supabase.service_role_key}".encode()).decode()
    sb_targets = [(p["ref"], p["name"]) for p in world.supabase.projects]
    wanted = rule_metric_names()

    def parse(text: str) -> list[tuple]:
        text = "\n".join(line for line in text.splitlines()
                         if line and line[0] != "#" and re.split(r"[{ ]", line, maxsplit=1)[0] in wanted)
        return [(s.name, s.labels, s.value) for fam in text_string_to_metric_families(text) for s in fam.samples]

    def record(series: dict, step: int, job: str, instance: str, target: dict, samples: list) -> None:
        for name, labels, value in samples:
            lab = {**labels, **target, "job": job, "instance": instance}
            key = name + "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(lab.items())) + "}"
            series.setdefault(key, [None] * (steps + 1))[step] = value
    due = {(job, u.name): clock() + u.initial_delay for job, e in exporters.items() for u in e.upstreams}
    steps = int(hours * 3600 // step_s)
    series: dict[str, list] = {}
    for step in range(steps + 1):
        now = clock()
        world.tick()
        for job, e in exporters.items():
            for u in e.upstreams:
                if now >= due[(job, u.name)]:
                    due[(job, u.name)] = now + e.poll_once(u)
            e.render()
            record(series, step, job, f"{job}:1", {}, [("up", {}, 1.0)] + parse(e.metrics_bytes().decode()))
        for ref, name in sb_targets:
            req = urllib.request.Request(f"{url}/supabase-metrics/{ref}/customer/v1/privileged/metrics",
                                         headers={"Authorization": auth})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    body, up = r.read().decode(), 1.0
            except OSError:
                body, up = "", 0.0
            record(series, step, "supabase-metrics-demo", "simulator:8600",
                   {"supabase_project": name, "demo": "true"}, [("up", {}, up)] + parse(body))
        clock.advance(step_s)
    srv.shutdown()
    out.write_text(json.dumps({"steps": steps, "step_seconds": step_s, "series": series,
                               "polls": {f"{j}/{u.name}": [u.polls, u.failures] for j, e in exporters.items()
                                         for u in e.upstreams}}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
