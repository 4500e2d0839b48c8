"""Static (runs everywhere a Compose CLI is): tests/docker/railway-images.compose.yml, merged by the real
Compose CLI, runs every stack service the way its Railway service does: the image built from the Dockerfile
and folder its railway.toml names, started by exactly its startCommand, with configs baked in (only named
volumes and the secrets folder mounted). So the Docker tier's Railway boot test cannot silently test less."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.docker.composectl import STACK_ENV
from tests.harness import compose
from tests.railway import railwaylib
from tests.railway.railwaylib import DEPLOYS

ROOT = compose.ROOT
OVERRIDE = "tests/docker/railway-images.compose.yml"


def compose_cli() -> list[str]:
    """The Docker CLI's Compose plugin where there is one (the workflow's docker job), else the Compose CLI
    install-tools builds (`config` needs no engine)."""
    try:
        if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0:
            return ["docker", "compose"]
    except (OSError, subprocess.TimeoutExpired):
        pass
    from tests.conftest import require_tool  # skips with the reason when it is not built
    return [str(require_tool("compose"))]


def merged(*files: str) -> dict:
    argv = [*compose_cli(), "--project-directory", str(ROOT)]
    for f in files:
        argv += ["-f", f]
    p = subprocess.run([*argv, "config", "--format", "json"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env={**os.environ, **STACK_ENV})
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["services"]


def _argv(value) -> list[str] | None:
    # `config` re-escapes a literal $ as $$ so that its output loads again; the container gets one $.
    return None if value is None else [a.replace("$$", "$") for a in value]


def dockerfile_start(dockerfile: Path) -> tuple[list[str] | None, list[str] | None]:
    """ENTRYPOINT and CMD of the Dockerfile's last stage (exec form), None where it sets none."""
    ins = railwaylib.dockerfile_instructions(dockerfile)
    stage = ins[max(i for i, (k, _) in enumerate(ins) if k == "FROM") + 1:]
    ep = [json.loads(a) for k, a in stage if k == "ENTRYPOINT"]
    cmd = [json.loads(a) for k, a in stage if k == "CMD"]
    return (ep[-1] if ep else None), (cmd[-1] if cmd else None)


def builder(svc: dict, services: dict) -> dict:
    """The build section of the image a merged service runs: its own, or that of the sibling building it."""
    b = svc if svc.get("build") else next(
        (s for s in services.values() if s.get("build") and s.get("image") == svc.get("image")), None)
    assert b, f"no service builds {svc.get('image')}"
    return b["build"]


def built_from(svc: dict, services: dict) -> tuple[Path, Path]:
    """(build context, Dockerfile) of the image a merged service runs."""
    b = builder(svc, services)
    return Path(b["context"]).resolve(), (Path(b["context"]) / b.get("dockerfile", "Dockerfile")).resolve()


def process(svc: dict, dockerfile: Path) -> list[str]:
    """What the container runs: compose's entrypoint drops the image's CMD; a command replaces it."""
    ep, cmd = dockerfile_start(dockerfile)
    if svc.get("entrypoint") is not None:
        return _argv(svc["entrypoint"]) + (_argv(svc.get("command")) or [])
    assert ep, f"{dockerfile.relative_to(ROOT)} has no ENTRYPOINT and the override sets none"
    return ep + (_argv(svc.get("command")) if svc.get("command") is not None else (cmd or []))


@pytest.fixture(scope="module")
def services() -> dict:
    return merged("docker-compose.yml", OVERRIDE)


@pytest.mark.parametrize("name", sorted(DEPLOYS))
def test_service_runs_its_railway_image_and_start_command(services, name):
    dep = DEPLOYS[name]
    rw = railwaylib.railway_config(dep.railway_file)
    svc = services[name]
    want_context = (ROOT / dep.root_dir).resolve()
    want_dockerfile = (want_context / rw["build"]["dockerfilePath"]).resolve()
    ctx, dockerfile = built_from(svc, services)
    assert dockerfile == want_dockerfile, f"{name}: builds {dockerfile}, Railway {want_dockerfile}"
    assert ctx == want_context, f"{name}: build context {ctx}, Railway builds from {want_context}"
    assert svc.get("pull_policy") == ("build" if svc.get("build") else "never"), (name, svc.get("pull_policy"))

    argv = process(svc, dockerfile)
    assert argv == shlex.split(rw["deploy"]["startCommand"]), f"{name}: runs {argv}"
    if "OBS_BRIDGE" in " ".join(argv):  # the same bridge as the compose service's command
        base = compose.load_compose()["services"][name]
        assert svc["environment"].get("OBS_BRIDGE") == base["command"][0], name

    binds = [v for v in svc.get("volumes", []) if v["type"] != "volume"]
    assert all(Path(v["source"]) == ROOT / "secrets" for v in binds), \
        f"{name}: the Railway image bakes its configs; mount only volumes and secrets: {binds}"


def test_every_railway_dockerfile_of_the_stack_is_built():
    override = merged("docker-compose.yml", OVERRIDE)
    built = {built_from(s, override)[1] for s in override.values()}
    wanted = {(ROOT / d.root_dir / railwaylib.railway_config(d.railway_file)["build"]["dockerfilePath"]).resolve()
              for d in DEPLOYS.values()}
    assert wanted <= built, sorted(str(p.relative_to(ROOT)) for p in wanted - built)
    assert len(wanted) == 10, sorted(str(p.relative_to(ROOT)) for p in wanted)
