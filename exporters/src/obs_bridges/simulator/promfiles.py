"""The files of Prometheus' demo scrape of the simulator's Supabase metrics endpoint (SIM_PROMETHEUS_DIR):
the service-role key and the file_sd targets."""

from __future__ import annotations

import json
import os

from obs_bridges import log
from obs_bridges.files import write_atomic
from obs_bridges.simulator.world import World

SB_KEY_FILE = "supabase-service-role-key"
SB_TARGETS_FILE = "supabase-metrics-targets.json"


def _write_private(directory: str, name: str, text: str) -> str:
    """Mode 0640 with the directory's group: compose's tmpfs volume belongs to Prometheus' group, which must
    read the files and nobody else may. Atomic, as file_sd wants."""
    return write_atomic(os.path.join(directory, name), text, mode=0o640, group_of_dir=True)


def write_prometheus_files(world: World, directory: str) -> list[str]:
    """The demo scrape of Supabase's own metrics endpoint (prometheus/prometheus.yml, job supabase-metrics-demo):
    the service-role key (basic_auth password_file) first, then one file_sd target per project, so that
    Prometheus never has a target without its key. A failure is logged (never the key) and the simulator
    keeps serving: the demo job then has no targets. Returns the paths written."""
    lg = log.get("obs_bridges.simulator")
    sb = world.supabase
    log.register_secret(sb.service_role_key)
    targets = [{"targets": [p["ref"]],
                "labels": {"__metrics_path__": f"/supabase-metrics/{p['ref']}/customer/v1/privileged/metrics",
                           "supabase_project": p["name"]}} for p in sb.projects]
    written: list[str] = []
    try:
        written.append(_write_private(directory, SB_KEY_FILE, sb.service_role_key))
        written.append(_write_private(directory, SB_TARGETS_FILE, json.dumps(targets, indent=1) + "\n"))
    except OSError as e:
        lg.error(f"cannot write the Prometheus demo scrape files into {directory}: {e.strerror or e} "
                 "(SIM_PROMETHEUS_DIR); the demo scrape of the Supabase metrics endpoint has no targets")
        remove_files(written)
        return []
    lg.info("wrote the Prometheus file_sd targets of the Supabase metrics endpoint and its service-role key",
            extra=log.kv(dir=directory, projects=len(targets)))
    return written


def remove_files(paths: list[str]) -> None:
    """At exit: targets first, then the key, so a stopped simulator leaves no target behind."""
    for path in reversed(paths):
        try:
            os.unlink(path)
        except OSError:
            pass
