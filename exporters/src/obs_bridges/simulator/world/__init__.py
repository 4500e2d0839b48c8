"""The synthetic world: entities with pre-planned timelines, evaluated lazily at "now".

Every item (run, deployment) is created with its whole timeline (queued, started, finished,
outcome) drawn from a seeded RNG; what the API shows is that timeline evaluated at the current
world time, so the world is deterministic for a seed (except the Supabase service-role key, a
credential: random at every start) and cheap to query. New items arrive as a Poisson process per
platform; history is back-filled at start so that exporters find completed items on their first poll.

`World` holds what the platforms share (the clock, the seeded RNGs, the lock, the arrival rates and
outcome rates) and composes one state object per platform: `world.github`, `world.vercel`,
`world.railway`, `world.supabase`. The platforms draw from one RNG in a fixed order, which is what makes
a seed reproduce the same runs, deployments and ids.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from obs_bridges.simulator.world.common import DEFAULT_RATES, WORDS, noise
from obs_bridges.simulator.world.github import (GH_SMOKE_WORKFLOW, GH_WORKFLOWS, GhJob, GhRun, GithubWorld,
                                                is_deploy_workflow)
from obs_bridges.simulator.world.railway import (RW_ENVS, RW_SERVICES, RW_STEPS_BUILD, RW_STEPS_DEPLOY,
                                                 RailwayWorld, RwDeployment)
from obs_bridges.simulator.world.supabase import SB_SERVICES, SupabaseWorld
from obs_bridges.simulator.world.vercel import VcDeployment, VercelWorld

__all__ = ["DEFAULT_RATES", "GH_SMOKE_WORKFLOW", "GH_WORKFLOWS", "RW_ENVS", "RW_SERVICES", "RW_STEPS_BUILD",
           "RW_STEPS_DEPLOY", "SB_SERVICES", "WORDS", "GhJob", "GhRun", "GithubWorld", "RailwayWorld",
           "RwDeployment", "SupabaseWorld", "VcDeployment", "VercelWorld", "World", "is_deploy_workflow", "noise"]


class World:
    def __init__(self, seed: int = 42, github_repos: int = 3, vercel_projects: int = 3, railway_projects: int = 2,
                 supabase_projects: int = 2, history_hours: float = 6.0, gh_rate: float = 2.0,
                 vc_rate: float = 2.0, rw_rate: float = 1.0, time_scale: float = 1.0, now: float | None = None,
                 outcome_rates: dict | None = None, clock: Callable[[], float] = time.time):
        """clock: the wall clock, in epoch seconds (a test passes a fake one). The world's time, now(), is
        the clock plus what /_control/advance added; the simulator's rate-limit windows and request log read
        the clock itself."""
        self.seed = seed
        self.clock = clock
        self.lock = threading.RLock()
        self.offset = 0.0
        self.rng = random.Random(seed)
        self.inject_rng = random.Random(seed + 1)
        self.time_scale = time_scale
        rates = {**DEFAULT_RATES, **(outcome_rates or {})}
        self.outcome_rates = {k: v for k, v in rates.items() if not k.startswith("supabase")}
        self.rates = {"github": gh_rate, "vercel": vc_rate, "railway": rw_rate}
        self.fail_all: dict[str, bool] = {"github": False, "vercel": False, "railway": False}
        self.prometheus_dir: str | None = None  # args.world_from_args: where the demo scrape files go
        self.github_webhook = None  # args.world_from_args: a webhooks.WebhookTarget, if deliveries are sent
        self.drains = None  # args.world_from_args: a drains.DrainTarget, if platform drains are pushed
        start = (now if now is not None else clock()) - history_hours * 3600
        # In this order: Railway draws its ids from the seeded RNG (the others derive theirs from the seed).
        self.github = GithubWorld(self, github_repos)
        self.vercel = VercelWorld(self, vercel_projects)
        self.railway = RailwayWorld(self, railway_projects, start)
        self.supabase = SupabaseWorld(self, supabase_projects, start, rates["supabase_incident"],
                                      rates["supabase_minor_incident"])
        # the platforms with arrivals, in the order they draw from the RNG (the order of self.rates)
        self.arrivals = {"github": self.github, "vercel": self.vercel, "railway": self.railway}
        self._next_arrival = {p: start for p in self.rates}
        self.history_start = start
        self._catch_up(start)
        self._catch_up(self.now())

    # -- time
    def now(self) -> float:
        return self.clock() + self.offset

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.offset += seconds
            self._catch_up(self.now())

    def scale(self, seconds: float) -> float:
        return seconds * self.time_scale

    # -- arrivals
    def _catch_up(self, now: float) -> None:
        with self.lock:
            for p, rate_h in self.rates.items():
                plat = self.arrivals[p]
                n_entities = plat.entities()
                total = rate_h * n_entities / 3600.0
                if total <= 0 or n_entities == 0:
                    self._next_arrival[p] = float("inf")
                    continue
                while self._next_arrival[p] <= now:
                    t = self._next_arrival[p]
                    plat.arrive(self.rng, t)
                    self._next_arrival[p] = t + self.rng.expovariate(total)
            self.github.flush_follow_ups(now)

    def tick(self) -> None:
        self._catch_up(self.now())

    def set_rate(self, platform: str, per_hour: float) -> None:
        with self.lock:
            self.rates[platform] = per_hour
            if per_hour <= 0:
                self.arrivals[platform].stop()
            self._next_arrival[platform] = self.now() if per_hour > 0 else float("inf")
            self._catch_up(self.now())
