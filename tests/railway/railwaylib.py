"""What the Railway deployment is made of, for tests/railway: every compose service, the Railway
config file it deploys with, the folder Railway builds from, and helpers to run obs-start."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tests.harness import compose
from tests.harness.stack import compose_user, service_mounts, write_spec
from tests.harness.stack import run_spec as harness_run_spec

ROOT = compose.ROOT
OBS_START = ROOT / "scripts" / "railway" / "obs-start"
OBS_START_IN_IMAGE = "/usr/local/bin/obs-start"


@dataclass(frozen=True)
class Deploy:
    railway_file: str          # repo path of the config-as-code file
    root_dir: str = ""         # Railway "Root Directory" ("" = repo root)
    dockerfile: str | None = None  # the component Dockerfile that bakes the compose mounts (ours)


# compose service -> how it deploys on Railway. A new compose service fails test_every_compose_service_deploys
# until it is added here (and to docs/railway.md).
DEPLOYS: dict[str, Deploy] = {
    "prometheus": Deploy("prometheus/railway.toml", dockerfile="prometheus/Dockerfile"),
    "alertmanager": Deploy("alertmanager/railway.toml", dockerfile="alertmanager/Dockerfile"),
    "loki": Deploy("loki/railway.toml", dockerfile="loki/Dockerfile"),
    "tempo": Deploy("tempo/railway.toml", dockerfile="tempo/Dockerfile"),
    "otelcol": Deploy("otelcol/railway.toml", dockerfile="otelcol/Dockerfile"),
    "grafana": Deploy("grafana/railway.toml", dockerfile="grafana/Dockerfile"),
    "blackbox-exporter": Deploy("blackbox/railway.toml", dockerfile="blackbox/Dockerfile"),
    "webhook-sink": Deploy("alertmanager/webhook-sink.railway.toml", dockerfile="alertmanager/webhook-sink.Dockerfile"),
    "simulator": Deploy("exporters/railway.toml", root_dir="exporters"),
    "railway-exporter": Deploy("exporters/railway.toml", root_dir="exporters"),
    "vercel-exporter": Deploy("exporters/railway.toml", root_dir="exporters"),
    "supabase-exporter": Deploy("exporters/railway.toml", root_dir="exporters"),
    "github-exporter": Deploy("exporters/railway.toml", root_dir="exporters"),
    "ingest": Deploy("exporters/railway.toml", root_dir="exporters"),
    "demo-app": Deploy("demo/railway.toml"),
    "demo-loadgen": Deploy("demo/loadgen.railway.toml"),
}
# Railway-only services: optional extras with no compose counterpart (docs/railway.md). Their Dockerfile
# and railway file are checked like the others (tests/railway/test_static.py), minus the compose comparisons.
RAILWAY_ONLY: dict[str, Deploy] = {
    "auth-gateway": Deploy("scripts/railway/auth-gateway.railway.toml",
                           dockerfile="scripts/railway/auth-gateway.Dockerfile"),
}
# Services whose start command is obs-start followed by the compose command.
OBS_START_SERVICES = ["prometheus", "alertmanager", "loki", "tempo", "otelcol", "grafana", "blackbox-exporter"]


def railway_files() -> list[Path]:
    out = []
    for p in sorted(ROOT.rglob("*railway.toml")) + sorted(ROOT.rglob("railway.json")):
        rel = p.relative_to(ROOT)
        if rel.parts[0].startswith(".") or "node_modules" in rel.parts:
            continue
        out.append(p)
    return out


def railway_config(path: str | Path) -> dict:
    with open(ROOT / path, "rb") as f:
        return tomllib.load(f)


def start_tokens(service: str) -> list[str]:
    return shlex.split(railway_config(DEPLOYS[service].railway_file)["deploy"]["startCommand"])


def dockerfile_instructions(path: str | Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / path).read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        ins, _, rest = line.partition(" ")
        out.append((ins.upper(), rest.strip()))
    return out


def entrypoint(path: str | Path) -> list[str] | None:
    eps = [json.loads(a) for i, a in dockerfile_instructions(path) if i == "ENTRYPOINT"]
    return eps[-1] if eps else None


def health_port(service: str) -> int:
    url = compose.services()[service].health_url
    m = re.match(r"https?://[^/:]+:(\d+)", url or "")
    assert m, f"{service}: no port in its compose healthcheck {url!r}"
    return int(m.group(1))


def railway_env(service: str, **extra: str) -> dict[str, str]:
    """The environment Railway gives a service (private domain, PORT), plus compose's environment."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/tmp",
           **compose.services()[service].environment,
           "RAILWAY_PRIVATE_DOMAIN": f"{service}.railway.internal", "RAILWAY_ENVIRONMENT_NAME": "production",
           "RAILWAY_PROJECT_NAME": "obs", "RAILWAY_SERVICE_NAME": service}
    try:
        env["PORT"] = str(health_port(service))
        env["OBS_HEALTH_PORT"] = env["PORT"]
    except AssertionError:
        pass
    env.update(extra)
    return env


def service_spec(service: str, argv: list[str], env: dict[str, str], render_dir: Path, tool: str | None = None,
                 base: Path | None = None) -> Path:
    """A tests/harness/launch.py spec: the service's compose mounts at their container paths, the tool's
    native binaries at /opt/obs-bin, obs-start where the Dockerfiles put it, a writable render dir."""
    from scripts import install_tools

    svc = compose.services()[service]
    base = base or Path(tempfile.mkdtemp(prefix=f"obs-railway-{service}-"))
    base.mkdir(parents=True, exist_ok=True)
    uid, gid = compose_user(svc)
    # Railway has no secrets folder: that bind mount is left out.
    mounts = service_mounts(svc, base / "volumes", uid, gid,
                            keep=lambda m: m.kind == "volume" or not m.source.endswith("/secrets"))
    if tool:
        t = install_tools.BY_NAME[tool]
        mounts.append({"source": str(install_tools.tool_path(tool, t.binaries[0]).parent), "target": "/opt/obs-bin",
                       "is_dir": True, "read_only": True})
    mounts.append({"source": str(OBS_START), "target": OBS_START_IN_IMAGE, "is_dir": False, "read_only": True})
    render_dir.mkdir(parents=True, exist_ok=True)
    if uid is not None:
        os.chown(render_dir, uid, gid)
    mounts.append({"source": str(render_dir), "target": "/obs-rendered", "is_dir": True, "read_only": False})
    return write_spec(base, mounts, argv, {**env, "OBS_RENDER_DIR": "/obs-rendered/r"}, uid, gid)


def run_spec(spec: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return harness_run_spec(spec, timeout)
