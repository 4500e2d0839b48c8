"""Vercel in the synthetic world: the team's projects and their deployments."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from obs_bridges.simulator.world.common import WORDS, name, noise, pick

if TYPE_CHECKING:
    from obs_bridges.simulator.world import World


@dataclass
class VcDeployment:
    uid: str
    project_id: str
    project: str
    target: str | None
    created: float
    building: float
    ended: float
    outcome: str  # READY ERROR CANCELED
    sha: str
    branch: str

    def state(self, now: float) -> str:
        if now < self.building:
            return "QUEUED"
        if now < self.ended:
            return "BUILDING"
        return self.outcome


class VercelWorld:
    def __init__(self, world: World, projects: int):
        self.w = world
        self.team = "team_demo"
        self.projects = [("prj_%012x" % int(noise(world.seed, "vc", i) * 2**48), name(i, "web-"))
                         for i in range(projects)]
        self.deployments: list[VcDeployment] = []

    # -- arrivals (World._catch_up)
    def entities(self) -> int:
        return len(self.projects)

    def arrive(self, rng: random.Random, t: float) -> None:
        self.new_deployment(rng, t)

    def stop(self) -> None:
        pass

    def new_deployment(self, rng: random.Random, t: float, project: tuple | None = None,
                       outcome: str | None = None, durations: tuple | None = None) -> VcDeployment:
        w = self.w
        pid, pname = project or rng.choice(self.projects)
        target = pick(rng, [("production", 30), (None, 70)])
        queue, build = durations or (w.scale(rng.uniform(1, 60)), w.scale(rng.uniform(20, 400)))
        err_p = w.outcome_rates["vercel_production_error" if target == "production" else "vercel_preview_error"]
        out = outcome or ("ERROR" if w.fail_all["vercel"] else
                          pick(rng, [("READY", max(0.0, 0.97 - err_p)), ("ERROR", err_p), ("CANCELED", 0.03)]))
        d = VcDeployment("dpl_" + "%024x" % rng.getrandbits(96), pid, pname, target, t, t + queue,
                         t + queue + build, out, "%040x" % rng.getrandbits(160),
                         "main" if target == "production" else f"feature/{rng.choice(WORDS)}")
        self.deployments.append(d)
        return d

    # -- control
    def inject(self, project: str | None, count: int, outcome: str | list[str] | None, state: str,
               finish_in: float = 0.0, target: str | None = "production", spacing: float = 0.001) -> list[str]:
        """spacing: seconds between the created times of completed ones, the later ones newer (0: all in
        one millisecond of the API's timestamps, still in that order: a pagination and tie-break edge
        case). outcome: one for all, or a list of one per deployment."""
        w = self.w
        with w.lock:
            now = w.now()
            proj = next((p for p in self.projects if p[1] == project), None) if project else None
            out = []
            ms0 = math.floor((now - 100) * 1000) / 1000  # the start of a millisecond
            for i in range(count):
                oc = outcome[i % len(outcome)] if isinstance(outcome, list) else outcome
                if state == "completed":
                    t = ms0 + 1e-3 * (i + 1) / (count + 1) if spacing == 0 else now - 100 - (count - i) * spacing
                    d = self.new_deployment(w.inject_rng, t, proj, oc, (10.0, 60.0))
                else:
                    d = self.new_deployment(w.inject_rng, now - 2, proj, oc, (1.0, finish_in + 1))
                d.target = target
                out.append(d.uid)
            return out
