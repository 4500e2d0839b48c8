"""Railway in the synthetic world: projects with environments and services, deployments, metric samples."""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from obs_bridges.simulator.world.common import name, noise, pick

if TYPE_CHECKING:
    from obs_bridges.simulator.world import World

RW_SERVICES = ["api", "worker", "web"]
RW_ENVS = ["production", "staging"]
RW_STEPS_BUILD = ["SNAPSHOT_CODE", "BUILD_IMAGE", "PUBLISH_IMAGE"]
RW_STEPS_DEPLOY = ["CREATE_CONTAINER", "HEALTHCHECK"]


@dataclass
class RwDeployment:
    id: str
    project_id: str
    service_id: str
    environment_id: str
    created: float
    steps: list  # [(step, start, end)]
    outcome: str  # SUCCESS FAILED CRASHED
    removed_at: float | None = None  # set when superseded
    crashed_at: float | None = None

    @property
    def finished(self) -> float:
        return self.steps[-1][2]

    def status(self, now: float) -> str:
        if now < self.steps[0][1]:
            return "QUEUED"
        if now < self.finished:
            step = next((s for s, a, b in self.steps if a <= now < b), self.steps[-1][0])
            return "BUILDING" if step in RW_STEPS_BUILD else "DEPLOYING"
        if self.outcome == "FAILED":
            return "FAILED"
        if self.removed_at is not None and now >= self.removed_at:
            return "REMOVED"
        if self.crashed_at is not None and now >= self.crashed_at:
            return "CRASHED"
        return "SUCCESS"

    def updated(self, now: float) -> float:
        ts = [self.created] + [t for _, a, b in self.steps for t in (a, b) if t <= now]
        for extra in (self.removed_at, self.crashed_at):
            if extra is not None and extra <= now:
                ts.append(extra)
        return max(ts)


class RailwayWorld:
    def __init__(self, world: World, projects: int, start: float):
        self.w = world
        rng = world.rng  # the workspace and project ids come from the seeded RNG, in this order
        self.workspace = str(uuid.UUID(int=rng.getrandbits(128)))
        self.projects = []
        for i in range(projects):
            pid = str(uuid.UUID(int=rng.getrandbits(128)))
            envs = [(str(uuid.UUID(int=rng.getrandbits(128))), e) for e in RW_ENVS]
            svcs = [(str(uuid.UUID(int=rng.getrandbits(128))), s) for s in RW_SERVICES[: 2 + (i % 2)]]
            self.projects.append({"id": pid, "name": name(i, "shop-"), "envs": envs, "services": svcs,
                                  "created": start - 86400 * 30})
        self.deployments: list[RwDeployment] = []
        self.by_id: dict[str, RwDeployment] = {}

    # -- arrivals (World._catch_up)
    def entities(self) -> int:
        return sum(len(x["services"]) * len(x["envs"]) for x in self.projects)

    def arrive(self, rng: random.Random, t: float) -> None:
        self.new_deployment(rng, t)

    def stop(self) -> None:
        pass

    def new_deployment(self, rng: random.Random, t: float, where: tuple | None = None,
                       outcome: str | None = None, fast: bool = False) -> RwDeployment:
        w = self.w
        if where:
            proj, sid, eid = where
        else:
            proj = rng.choice(self.projects)
            sid = rng.choice(proj["services"])[0]
            eid = rng.choice(proj["envs"])[0]
        fail_p, crash_p = w.outcome_rates["railway_failure"], w.outcome_rates["railway_crash"]
        out = outcome or ("FAILED" if w.fail_all["railway"] else
                          pick(rng, [("SUCCESS", max(0.0, 1.0 - fail_p - crash_p)), ("FAILED", fail_p),
                                     ("CRASHED", crash_p)]))
        steps, cur = [], t + (0.5 if fast else w.scale(rng.uniform(2, 20)))
        plan = RW_STEPS_BUILD + ([] if out == "FAILED" else RW_STEPS_DEPLOY)
        for s in plan:
            if fast:
                d = 0.2
            else:
                d = w.scale({"SNAPSHOT_CODE": rng.uniform(2, 5), "BUILD_IMAGE": rng.uniform(30, 300),
                             "PUBLISH_IMAGE": rng.uniform(5, 30), "CREATE_CONTAINER": rng.uniform(2, 10),
                             "HEALTHCHECK": rng.uniform(5, 60)}[s])
            steps.append((s, cur, cur + d))
            cur += d
            if out == "FAILED" and s == "BUILD_IMAGE":
                break
        dep = RwDeployment(str(uuid.UUID(int=rng.getrandbits(128))), proj["id"], sid, eid, t, steps,
                           "CRASHED" if out == "CRASHED" else out)
        if out == "CRASHED":
            dep.outcome = "SUCCESS"
            dep.crashed_at = dep.finished + w.scale(rng.uniform(60, 600))
        if dep.outcome == "SUCCESS":
            for prev in self.deployments:
                if (prev.service_id, prev.environment_id) == (sid, eid) and prev.outcome == "SUCCESS" \
                        and prev.removed_at is None and prev.created < t:
                    prev.removed_at = dep.finished
        self.deployments.append(dep)
        self.by_id[dep.id] = dep
        return dep

    # -- control
    def inject(self, count: int, outcome: str | None, state: str, project: str | None = None) -> list[str]:
        w = self.w
        with w.lock:
            now = w.now()
            out = []
            for i in range(count):
                proj = next((p for p in self.projects if p["name"] == project), None) \
                    if project else w.inject_rng.choice(self.projects)
                where = (proj, w.inject_rng.choice(proj["services"])[0], proj["envs"][0][0])
                if state == "completed":
                    d = self.new_deployment(w.inject_rng, now - 30 - (count - i) * 0.001, where, outcome, fast=True)
                else:
                    d = self.new_deployment(w.inject_rng, now - 0.1, where, outcome, fast=True)
                    # stretch to finish ~3 s from now
                    shift = 3.0
                    d.steps = [(s, a, b + (shift if k == len(d.steps) - 1 else 0))
                               for k, (s, a, b) in enumerate(d.steps)]
                out.append(d.id)
            return out

    # -- metrics (a deterministic function of the seed, the service and the 30-second bucket)
    def metric(self, measurement: str, sid: str, eid: str, ts: float) -> float:
        seed = self.w.seed
        b = int(ts // 30) * 30
        ph = noise(seed, sid, eid) * 2 * math.pi
        n = noise(seed, sid, eid, measurement, b)
        if measurement == "CPU_USAGE":
            return round(max(0.0, 0.25 + 0.2 * math.sin(b / 900 + ph) + 0.1 * n), 4)
        if measurement == "CPU_LIMIT":
            return 8.0
        if measurement == "MEMORY_USAGE_GB":
            return round(0.3 + 0.15 * math.sin(b / 1800 + ph) + 0.05 * n, 4)
        if measurement == "MEMORY_LIMIT_GB":
            return 8.0
        if measurement in ("NETWORK_RX_GB", "NETWORK_TX_GB"):
            return round(0.001 + 0.002 * n, 6)
        if measurement == "DISK_USAGE_GB":
            return round(1.0 + (b % 86400) / 86400.0, 4)
        if measurement == "EPHEMERAL_DISK_USAGE_GB":
            return round(0.2 + 0.05 * n, 4)
        if measurement == "BACKUP_USAGE_GB":
            return 0.5
        return 0.0

    def estimated(self, project_id: str, measurement: str) -> float:
        i = next((k for k, p in enumerate(self.projects) if p["id"] == project_id), 0)
        base = {"CPU_USAGE": 9000.0, "MEMORY_USAGE_GB": 20000.0, "NETWORK_TX_GB": 12.5, "DISK_USAGE_GB": 40000.0,
                "BACKUP_USAGE_GB": 5000.0}.get(measurement, 0.0)
        return round(base * (1 + i), 3)
