"""Dockerfiles and Railway config files, checked against docker-compose.yml and .env: one source of
truth for versions, config files, users, commands and settings."""
from __future__ import annotations

import ast
import fnmatch
import json
import re
import shlex
from pathlib import Path

import pytest

from tests.harness import compose
from tests.railway.railwaylib import (DEPLOYS, OBS_START_IN_IMAGE, OBS_START_SERVICES, RAILWAY_ONLY, ROOT,
                                     dockerfile_instructions, entrypoint, railway_config, railway_files, start_tokens)

ENV = compose.read_env()
SERVICES = compose.services()
RAW = compose.load_compose()["services"]
DOCKERFILES = sorted({d.dockerfile for d in (*DEPLOYS.values(), *RAILWAY_ONLY.values()) if d.dockerfile}
                     | {"exporters/Dockerfile", "demo/Dockerfile"})
OWN_DOCKERFILES = {s: d.dockerfile for s, d in DEPLOYS.items() if d.dockerfile}

# Railway config-as-code fields (docs.railway.com/config-as-code/reference).
BUILD_KEYS = {"builder", "watchPatterns", "buildCommand", "dockerfilePath", "railpackVersion", "nixpacksConfigPath",
              "nixpacksPlan", "nixpacksVersion"}
DEPLOY_KEYS = {"startCommand", "preDeployCommand", "multiRegionConfig", "numReplicas", "healthcheckPath",
               "healthcheckTimeout", "restartPolicyType", "restartPolicyMaxRetries", "cronSchedule", "overlapSeconds",
               "drainingSeconds", "sleepApplication", "region"}
RESTART_POLICIES = {"ON_FAILURE", "ALWAYS", "NEVER"}
DOCS = (ROOT / "docs" / "railway.md").read_text() if (ROOT / "docs" / "railway.md").exists() else ""


def test_every_compose_service_deploys():
    """A compose service without a Railway deployment (file, Dockerfile, docs) fails here."""
    assert set(SERVICES) == set(DEPLOYS), (f"compose services without a Railway deployment: "
                                           f"{sorted(set(SERVICES) - set(DEPLOYS))}; stale: {sorted(set(DEPLOYS) - set(SERVICES))}")


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_version_args_equal_env(dockerfile):
    """Every ARG default naming a .env key equals .env (the guard Renovate's .env bump relies on), and
    every base image is pinned through such an ARG."""
    ins = dockerfile_instructions(dockerfile)
    args = {}
    for i, a in ins:
        if i == "ARG" and "=" in a:
            k, v = a.split("=", 1)
            args[k] = v
    for k, v in args.items():
        if k in ENV:
            assert v == ENV[k], f"{dockerfile}: ARG {k}={v}, but .env has {ENV[k]}"
    stages = set()
    for i, a in ins:
        if i != "FROM":
            continue
        parts = a.split()
        image = parts[0]
        if image in stages:
            continue
        m = re.fullmatch(r"[\w./-]+:\$\{(\w+)\}", image)
        assert m and m.group(1) in ENV, f"{dockerfile}: FROM {image} is not pinned by a .env version"
        assert args.get(m.group(1)) == ENV[m.group(1)], f"{dockerfile}: ARG {m.group(1)} has no default equal to .env"
        if len(parts) == 3 and parts[1].upper() == "AS":
            stages.add(parts[2])


@pytest.mark.parametrize("service", sorted(OWN_DOCKERFILES))
def test_dockerfile_bakes_exactly_the_compose_mounts(service):
    """COPY sources exist and are the files compose mounts, at the same container paths; every config
    file compose mounts is baked in (secrets and named volumes excepted)."""
    dockerfile = OWN_DOCKERFILES[service]
    svc = SERVICES[service]
    mounts = {(Path(m.source).resolve(), m.target) for m in svc.mounts
              if m.kind == "bind" and not m.source.endswith("/secrets")}
    copies = set()
    for i, a in dockerfile_instructions(dockerfile):
        if i != "COPY" or a.startswith("--from"):
            continue
        src, dst = a.split()[-2:]
        assert (ROOT / src).exists(), f"{dockerfile}: COPY {src}: no such file in the repo"
        if src == "scripts/railway/obs-start":
            assert dst == OBS_START_IN_IMAGE
            continue
        copies.add(((ROOT / src).resolve(), dst))
    assert copies <= mounts, f"{dockerfile} bakes files compose does not mount there: {sorted(copies - mounts)}"
    assert mounts <= copies, f"{dockerfile} misses files compose mounts: {sorted(mounts - copies)}"


@pytest.mark.parametrize("service", sorted(OWN_DOCKERFILES))
def test_dockerfile_user_and_image_match_compose(service):
    ins = dockerfile_instructions(OWN_DOCKERFILES[service])
    users = [a for i, a in ins if i == "USER"]
    assert users and users[-1] == SERVICES[service].user, f"runs as {users[-1:]} but compose runs {SERVICES[service].user}"
    froms = [a.split()[0] for i, a in ins if i == "FROM"]
    want = SERVICES[service].image.rsplit(":", 1)[0]
    if want.startswith("obs-stack/"):  # built by compose from this very Dockerfile
        assert RAW[service]["build"]["dockerfile"] == OWN_DOCKERFILES[service]
    else:
        assert froms[-1].rsplit(":", 1)[0] == want, f"FROM {froms[-1]}, compose runs {SERVICES[service].image}"


@pytest.mark.parametrize("service", OBS_START_SERVICES)
def test_start_command_is_obs_start_then_the_compose_command(service):
    """railway.toml startCommand = obs-start SERVICE BINARY + the compose command, and equals the
    Dockerfile ENTRYPOINT (where the Dockerfile has one): flags have one source, compose."""
    tokens = start_tokens(service)
    assert OBS_START_IN_IMAGE in tokens[:3], tokens
    i = tokens.index(OBS_START_IN_IMAGE)
    assert tokens[i + 1] == service
    rest = tokens[i + 2:]
    raw = RAW[service]
    if "entrypoint" in raw:  # grafana: compose replaces the entrypoint and has no command
        assert rest == raw["entrypoint"] + SERVICES[service].command
    else:
        assert rest[1:] == SERVICES[service].command, f"flags differ from compose: {rest[1:]} vs {SERVICES[service].command}"
    ep = entrypoint(OWN_DOCKERFILES[service])
    if service == "otelcol":
        assert ep is None, "otelcol/Dockerfile keeps the image entrypoint compose relies on"
    else:
        assert ep == tokens, f"{OWN_DOCKERFILES[service]} ENTRYPOINT differs from the railway startCommand"


def test_grafana_env_equals_compose():
    env = {}
    for i, a in dockerfile_instructions("grafana/Dockerfile"):
        if i == "ENV":
            for part in shlex.split(a):
                k, _, v = part.partition("=")
                env[k] = v
    want = {k: v for k, v in SERVICES["grafana"].environment.items() if k != "GF_SERVER_ROOT_URL"}
    got = {k: v for k, v in env.items() if k.startswith("GF_")}
    assert got == want
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env


@pytest.mark.parametrize("path", [str(p.relative_to(ROOT)) for p in railway_files()])
def test_railway_file_parses_and_names_an_existing_dockerfile(path):
    cfg = railway_config(path)
    assert set(cfg) <= {"$schema", "build", "deploy", "environments"}, set(cfg)
    build, deploy = cfg["build"], cfg["deploy"]
    assert set(build) <= BUILD_KEYS, set(build) - BUILD_KEYS
    assert set(deploy) <= DEPLOY_KEYS, set(deploy) - DEPLOY_KEYS
    assert build["builder"] == "DOCKERFILE"
    roots = {d.root_dir for d in (*DEPLOYS.values(), *RAILWAY_ONLY.values()) if d.railway_file == path}
    assert len(roots) == 1, (f"{path} is not used by any compose service nor listed in RAILWAY_ONLY "
                             f"(or with two root directories)")
    dockerfile = ROOT / roots.pop() / build["dockerfilePath"]
    assert dockerfile.is_file(), f"{path}: dockerfilePath {build['dockerfilePath']} does not exist"
    assert deploy["restartPolicyType"] in RESTART_POLICIES
    assert isinstance(deploy.get("restartPolicyMaxRetries", 0), int)
    assert isinstance(deploy["startCommand"], str) and shlex.split(deploy["startCommand"])
    if "healthcheckPath" in deploy:
        assert deploy["healthcheckPath"].startswith("/")
        assert isinstance(deploy["healthcheckTimeout"], int) and 0 < deploy["healthcheckTimeout"] <= 3600
    assert f"/{path}" in DOCS, f"docs/railway.md does not give {path} as a Config File Path"


def test_every_http_service_has_a_healthcheck():
    for service, d in DEPLOYS.items():
        if SERVICES[service].health_url and service != "demo-loadgen":
            assert "healthcheckPath" in railway_config(d.railway_file)["deploy"], service


def test_railway_json_schema_shape():
    """The same files as JSON validate against the documented structure (no remote schema here)."""
    for p in railway_files():
        doc = json.loads(json.dumps(railway_config(p)))
        assert doc["$schema"] == "https://railway.com/railway.schema.json"


def test_docs_describe_every_variable_obs_start_reads():
    text = (ROOT / "scripts" / "railway" / "obs-start").read_text()
    names = set(re.findall(r"\$\{?((?:API|OBS|GF)_[A-Z_]+)", text)) - {"OBS_SERVICE_NAMES"}
    missing = sorted(n for n in names if n not in DOCS)
    assert not missing, f"docs/railway.md does not describe {missing}"


@pytest.mark.parametrize("service", sorted(RAILWAY_ONLY))
def test_railway_only_image(service):
    """A Railway-only service (no compose service to compare with): baked files exist, it runs as a
    non-root numeric user, its ENTRYPOINT is the railway startCommand, its PORT default is the port it
    exposes, and Railway's healthcheck has a path."""
    d = RAILWAY_ONLY[service]
    assert service not in SERVICES, f"{service} is a compose service: list it in DEPLOYS instead"
    ins = dockerfile_instructions(d.dockerfile)
    for i, a in ins:
        if i == "COPY" and not a.startswith("--from"):
            for src in [w for w in a.split()[:-1] if not w.startswith("--")]:
                assert (ROOT / src).is_file(), f"{d.dockerfile}: COPY {src}: no such file in the repo"
    users = [a for i, a in ins if i == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1]), f"{d.dockerfile} must run as a non-root uid:gid"
    deploy = railway_config(d.railway_file)["deploy"]
    assert entrypoint(d.dockerfile) == shlex.split(deploy["startCommand"])
    env = {}
    for i, a in ins:
        if i == "ENV":
            env.update(part.split("=", 1) for part in shlex.split(a))
    assert [a for i, a in ins if i == "EXPOSE"] == [env["PORT"]]
    assert deploy["healthcheckPath"].startswith("/")
    assert f"`{service}`" in DOCS or service in DOCS


def gateway_modules() -> list[Path]:
    """auth_gateway.py and every module of scripts/railway it imports, directly or not."""
    folder = ROOT / "scripts" / "railway"
    found, todo = [], [folder / "auth_gateway.py"]
    while todo:
        path = todo.pop()
        if path in found:
            continue
        found.append(path)
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            todo += [folder / f"{n}.py" for n in names if (folder / f"{n}.py").is_file()]
    return sorted(found)


def test_docs_describe_every_gateway_variable():
    text = "\n".join(p.read_text() for p in gateway_modules())
    names = set(re.findall(r"\b(GATEWAY_[A-Z_]+)", text))
    assert "GATEWAY_PASSWORD" in names and "GATEWAY_UPSTREAM" in names
    missing = sorted(n for n in names if n not in DOCS)
    assert not missing, f"docs/railway.md does not describe {missing}"


def test_the_gateway_image_and_its_redeploys_carry_every_module():
    """The image runs /app/auth_gateway.py, which imports its sibling modules from /app: each one must be
    copied there, and a change to any of them must redeploy the gateway."""
    d = RAILWAY_ONLY["auth-gateway"]
    copied = {}
    for i, a in dockerfile_instructions(d.dockerfile):
        if i == "COPY" and not a.startswith("--from"):
            *srcs, dest = [w for w in a.split() if not w.startswith("--")]
            copied |= {src: dest.rstrip("/") + "/" + Path(src).name if dest.endswith("/") else dest for src in srcs}
    watch = railway_config(d.railway_file)["build"]["watchPatterns"]
    for path in gateway_modules():
        rel = str(path.relative_to(ROOT))
        assert copied.get(rel) == f"/app/{path.name}", f"{d.dockerfile} does not COPY {rel} to /app/{path.name}"
        assert any(fnmatch.fnmatchcase(rel, w) for w in watch), f"{d.railway_file}: no watchPattern matches {rel}"
