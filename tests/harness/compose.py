"""Read docker-compose.yml the way `docker compose` does for the parts the native harness needs:
.env interpolation, service commands, volumes, environment, healthchecks and depends_on."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_FILE = ROOT / ".env"

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def read_env(path: Path = ENV_FILE) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def interpolate(value, env: dict[str, str]):
    """Compose-style ${VAR}, ${VAR:-default}, ${VAR-default} and $$ escapes, applied recursively."""
    if isinstance(value, str):
        def sub(m: re.Match) -> str:
            if m.group(0) == "$$":
                return "$"
            name = m.group(1) or m.group(4)
            op, default = m.group(2), m.group(3)
            val = env.get(name)
            if op == ":-" and not val:
                return default
            if op == "-" and val is None:
                return default
            return val or ""
        return _VAR.sub(sub, value)
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    return value


def load_compose(env: dict[str, str] | None = None) -> dict:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    return interpolate(raw, env if env is not None else read_env())


@dataclass
class Mount:
    source: str          # host path (bind) or volume name
    target: str
    kind: str            # "bind" | "volume"
    read_only: bool


@dataclass
class Service:
    name: str
    image: str
    command: list[str]
    environment: dict[str, str]
    mounts: list[Mount]
    user: str | None
    health_url: str | None
    depends_on: dict[str, str] = field(default_factory=dict)


_HEALTH_URL = re.compile(r"https?://(?:127\.0\.0\.1|localhost)(:\d+)?(/[^\s'\"]*)?")


def health_url(test) -> str | None:
    """The URL a compose healthcheck probes (wget/python one-liners), or None."""
    text = " ".join(test) if isinstance(test, list) else str(test or "")
    m = _HEALTH_URL.search(text)
    if not m:
        return None
    # `promtool check ready --url=BASE` probes BASE/-/ready.
    if isinstance(test, list) and "promtool" in " ".join(test[:2]) and test[2:4] == ["check", "ready"]:
        return m.group(0).rstrip("/") + "/-/ready"
    return m.group(0)


def services(env: dict[str, str] | None = None) -> dict[str, Service]:
    doc = load_compose(env)
    out = {}
    for name, s in doc["services"].items():
        mounts = []
        for v in s.get("volumes", []):
            parts = v.split(":")
            src, tgt = parts[0], parts[1]
            ro = len(parts) > 2 and "ro" in parts[2].split(",")
            if src.startswith((".", "/")):
                mounts.append(Mount(str((ROOT / src).resolve()), tgt, "bind", ro))
            else:
                mounts.append(Mount(src, tgt, "volume", ro))
        envs = s.get("environment", {}) or {}
        if isinstance(envs, list):
            envs = dict(e.split("=", 1) for e in envs)
        deps = s.get("depends_on", {}) or {}
        if isinstance(deps, list):
            deps = {d: "service_started" for d in deps}
        else:
            deps = {d: c.get("condition", "service_started") for d, c in deps.items()}
        cmd = s.get("command", [])
        if isinstance(cmd, str):
            cmd = cmd.split()
        out[name] = Service(name=name, image=s.get("image", ""), command=list(cmd),
                            environment={k: str(v) for k, v in envs.items()}, mounts=mounts,
                            user=s.get("user"), health_url=health_url((s.get("healthcheck") or {}).get("test")),
                            depends_on=deps)
    return out
