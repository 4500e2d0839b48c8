"""The Supabase Management API (projects, health, API keys) and a project's own Prometheus metrics endpoint
(Basic auth with the service-role key)."""

from __future__ import annotations

import base64

from obs_bridges.simulator.common import ApiRequest, Reply, iso, q1
from obs_bridges.simulator.faults import SimState
from obs_bridges.simulator.world import SB_SERVICES

METRICS_PATH = ["customer", "v1", "privileged", "metrics"]  # below /supabase-metrics/{ref}
TEXT = {"Content-Type": "text/plain"}


def handle(state: SimState, req: ApiRequest):
    w, sb, q = state.world, state.world.supabase, req.q
    auth = req.headers.get("Authorization", "")
    tok = auth[7:].strip() if auth.startswith("Bearer ") else ""
    if not tok or tok.startswith(("invalid", "bad")):
        raise Reply(401, {"message": "Unauthorized"})
    now = w.now()
    parts = [p for p in req.path.split("/") if p]
    if parts == ["v1", "projects"]:
        return 200, [{"id": p["ref"], "ref": p["ref"], "organization_id": sb.org, "organization_slug": sb.org,
                      "name": p["name"], "region": p["region"], "created_at": iso(p["created_at"]),
                      "status": p["status"],
                      "database": {"host": f"db.{p['ref']}.supabase.co", "version": "15.8.1.085",
                                   "postgres_engine": "15", "release_channel": "ga"}}
                     for p in sb.projects], {}
    if len(parts) == 4 and parts[:2] == ["v1", "projects"]:
        p = sb.project(parts[2])
        if p is None:
            raise Reply(404, {"message": "Project not found"})
        if p["status"] in ("INACTIVE", "PAUSING", "REMOVED", "GOING_DOWN", "INIT_FAILED"):
            raise Reply(400, {"message": f"Project is {p['status'].lower()}"})
        if parts[3] == "health":
            svcs = q1(q, "services")
            if not svcs:
                raise Reply(400, {"message": "services is required"})
            out = []
            for s in svcs.split(","):
                if s not in SB_SERVICES:
                    raise Reply(400, {"message": f"Invalid service: {s}"})
                st = sb.health(p["ref"], s, now)
                item = {"name": s, "healthy": st == "ACTIVE_HEALTHY", "status": st}
                if st == "UNHEALTHY":
                    item["error"] = "service did not answer its health check"
                    if s == "realtime":
                        item["info"] = {"healthy": False, "db_connected": True, "replication_connected": False,
                                        "connected_cluster": 0}
                out.append(item)
            return 200, out, {}
        if parts[3] == "api-keys":
            reveal = q1(q, "reveal") == "true"
            return 200, [{"name": "anon", "api_key": "sim-anon-key", "type": "legacy"},
                         {"name": "service_role", "api_key": p["service_role_key"] if reveal else
                          p["service_role_key"][:6] + "·" * 10, "type": "legacy"}], {}
    raise Reply(404, {"message": "Not found"})


def handle_metrics(state: SimState, req: ApiRequest) -> tuple[int, bytes, dict]:
    """/supabase-metrics/{ref}/customer/v1/privileged/metrics: Prometheus text, not JSON."""
    parts = [p for p in req.path.split("/") if p]
    if len(parts) != 5 or parts[1:] != METRICS_PATH:
        return 404, b"not found\n", dict(TEXT)
    return metrics(state, parts[0], req.headers)


def metrics(state: SimState, ref: str, headers) -> tuple[int, bytes, dict]:
    w = state.world
    p = w.supabase.project(ref)
    if p is None:
        return 404, b"not found\n", dict(TEXT)
    auth = headers.get("Authorization", "")
    ok = False
    if auth.startswith("Basic "):
        try:
            user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            ok = user == "service_role" and pw == p["service_role_key"]
        except (ValueError, UnicodeDecodeError):
            ok = False
    if not ok:
        return 401, b"Unauthorized\n", {"WWW-Authenticate": 'Basic realm="metrics"', **TEXT}
    now = w.now()
    up = 1 if p["status"] == "ACTIVE_HEALTHY" and w.supabase.health(ref, "db", now) != "UNHEALTHY" else 0
    lb = f'supabase_project_ref="{ref}",supabase_identifier="{ref}",service_type="db"'
    t = int(now - p["created_at"])
    lines = [
        "# HELP pg_up Whether the last scrape of postgres was able to connect.", "# TYPE pg_up gauge",
        f"pg_up{{{lb}}} {up}",
        "# HELP pg_stat_database_xact_commit_total Transactions committed.",
        "# TYPE pg_stat_database_xact_commit_total counter",
        f'pg_stat_database_xact_commit_total{{{lb},datname="postgres"}} {t * 7}',
        "# HELP pg_stat_database_xact_rollback_total Transactions rolled back.",
        "# TYPE pg_stat_database_xact_rollback_total counter",
        f'pg_stat_database_xact_rollback_total{{{lb},datname="postgres"}} {t // 50}',
        "# HELP pg_stat_database_num_backends Backends connected.", "# TYPE pg_stat_database_num_backends gauge",
        f'pg_stat_database_num_backends{{{lb},datname="postgres"}} {10 + int(now // 60) % 7}',
        "# HELP pg_database_size_bytes Database size.", "# TYPE pg_database_size_bytes gauge",
        f'pg_database_size_bytes{{{lb},datname="postgres"}} {50_000_000 + t * 10}',
        "# HELP connection_stats_connection_count Connections.", "# TYPE connection_stats_connection_count gauge",
        f"connection_stats_connection_count{{{lb}}} {12 + int(now // 60) % 5}",
        "# HELP max_connections_connection_count Max connections.",
        "# TYPE max_connections_connection_count gauge", f"max_connections_connection_count{{{lb}}} 60",
        "# HELP node_cpu_seconds_total CPU seconds.", "# TYPE node_cpu_seconds_total counter",
        f'node_cpu_seconds_total{{{lb},cpu="0",mode="idle"}} {t * 0.8:.1f}',
        f'node_cpu_seconds_total{{{lb},cpu="0",mode="user"}} {t * 0.15:.1f}',
        # The database host's disk (node exporter metrics of the endpoint): slowly filling.
        "# HELP node_filesystem_avail_bytes Filesystem space available.", "# TYPE node_filesystem_avail_bytes gauge",
        f'node_filesystem_avail_bytes{{{lb},device="/dev/nvme1n1",fstype="ext4",mountpoint="/data"}} '
        f"{max(1_000_000_000, 7_000_000_000 - t * 10)}",
        "# HELP node_filesystem_size_bytes Filesystem size.", "# TYPE node_filesystem_size_bytes gauge",
        f'node_filesystem_size_bytes{{{lb},device="/dev/nvme1n1",fstype="ext4",mountpoint="/data"}} 8000000000',
        # Supavisor/PgBouncer pools (pgbouncer_pools_client_{active,waiting}_connections).
        "# HELP pgbouncer_pools_client_active_connections Client connections linked to a server connection.",
        "# TYPE pgbouncer_pools_client_active_connections gauge",
        f'pgbouncer_pools_client_active_connections{{{lb},database="postgres",user="authenticator"}} '
        f"{8 + int(now // 60) % 4}",
        "# HELP pgbouncer_pools_client_waiting_connections Client connections waiting for a server connection.",
        "# TYPE pgbouncer_pools_client_waiting_connections gauge",
        f'pgbouncer_pools_client_waiting_connections{{{lb},database="postgres",user="authenticator"}} 0',
        "# HELP gotrue_running Auth server running.", "# TYPE gotrue_running gauge",
        f'gotrue_running{{supabase_project_ref="{ref}",supabase_identifier="{ref}",service_type="gotrue"}} 1',
        "",
    ]
    return 200, "\n".join(lines).encode(), {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}


def view(w, now: float) -> dict:
    """/_control/world/supabase."""
    sb = w.supabase
    return {"now": now, "projects": [{"ref": p["ref"], "name": p["name"], "status": p["status"],
                                      "region": p["region"], "service_role_key": p["service_role_key"],
                                      "health": {s: sb.health(p["ref"], s, now) for s in SB_SERVICES}}
                                     for p in sb.projects]}
