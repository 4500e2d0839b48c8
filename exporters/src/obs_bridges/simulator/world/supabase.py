"""Supabase in the synthetic world: the organisation's projects, their status and service health."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from obs_bridges.simulator.world.common import name, noise

if TYPE_CHECKING:
    from obs_bridges.simulator.world import World

SB_SERVICES = ["auth", "db", "pooler", "realtime", "rest", "storage"]
KEEP = object()  # set_project: leave as it is


class SupabaseWorld:
    def __init__(self, world: World, projects: int, start: float, incident_rate: float, minor_incident_rate: float):
        self.w = world
        self.incident_rate = incident_rate
        self.minor_incident_rate = minor_incident_rate
        # The service-role key (Basic auth of the metrics endpoint) is random at every start, never derived
        # from the seed, and shared by the demo projects so that one Prometheus job with one password_file
        # scrapes them all (SIM_PROMETHEUS_DIR). It does not consume the seeded RNG.
        self.org = "org-demo"
        self.service_role_key = "sim_" + secrets.token_urlsafe(32)
        self.projects = []
        for i in range(projects):
            ref = "".join(chr(97 + int(noise(world.seed, "sb", i, k) * 26)) for k in range(20))
            self.projects.append({"ref": ref, "name": name(i, "db-"), "region": "us-east-1",
                                  "status": "ACTIVE_HEALTHY", "created_at": start - 86400 * 90,
                                  "service_role_key": self.service_role_key, "unhealthy": set()})

    def project(self, ref: str) -> dict | None:
        return next((p for p in self.projects if p["ref"] == ref), None)

    def health(self, ref: str, service: str, now: float) -> str:
        p = next(p for p in self.projects if p["ref"] == ref)
        if p["status"] in ("COMING_UP", "RESTORING"):
            return "COMING_UP"
        if service in p["unhealthy"]:
            return "UNHEALTHY"
        # short random incidents: a share of 5-minute buckets per service (none by default for the
        # database: DatabaseDown pages; SIM_SUPABASE_INCIDENT_RATE turns them on for every service)
        rate = self.incident_rate if service == "db" else max(self.incident_rate, self.minor_incident_rate)
        bucket = int(now // 300)
        return "UNHEALTHY" if noise(self.w.seed, ref, service, bucket) < rate else "ACTIVE_HEALTHY"

    def set_project(self, name_or_ref, status=KEEP, unhealthy=KEEP) -> bool:
        """/_control/supabase/project: a project's status and its unhealthy services. False: no such project."""
        with self.w.lock:
            p = next((p for p in self.projects if name_or_ref in (p["name"], p["ref"])), None)
            if p is None:
                return False
            if status is not KEEP:
                p["status"] = status
            if unhealthy is not KEEP:
                p["unhealthy"] = set(unhealthy)
            return True
