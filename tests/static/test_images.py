"""The images themselves: every healthcheck, entrypoint and Railway start command runs a program that is
guaranteed to be in its image (docs/image-facts.yml, our Dockerfiles), the facts were written for the
pinned versions, and compose's build hygiene (pull_policy, .dockerignore, SELinux labels) holds."""
from __future__ import annotations

import copy
import shlex
from pathlib import Path

import pytest
import yaml

from tests.harness import compose
from tests.railway.railwaylib import DEPLOYS, RAILWAY_ONLY, railway_config
from tests.static import imagelib

ROOT = imagelib.ROOT
FACTS = imagelib.load_facts()
RAW = compose.load_compose()
# The opt-in overlays (docs/forwarding.md, docs/capacity.md): what they run must be in their images too.
OVERLAYS = ("docker-compose.forward.yml", "docker-compose.s3.yml")


def with_overlay(name: str) -> dict:
    """docker-compose.yml with an overlay's services laid over it, key by key: entrypoint, healthcheck, image
    and volumes are replaced whole, which is what the image checks read (Compose merges volumes by target;
    the overlays re-list every mount their entrypoints need)."""
    raw = copy.deepcopy(RAW)
    for svc, block in yaml.safe_load((ROOT / name).read_text())["services"].items():
        base = raw["services"].setdefault(svc, {})
        vols = [*base.get("volumes", []), *block.get("volumes", [])]
        base.update(block)
        if vols:
            base["volumes"] = vols
    return raw


def railway_images() -> list[tuple[str, Path, Path, str]]:
    """(railway file, Dockerfile, build context, startCommand) of every Railway service built from a Dockerfile."""
    out, seen = [], set()
    for d in [*DEPLOYS.values(), *RAILWAY_ONLY.values()]:
        if d.railway_file in seen:
            continue
        seen.add(d.railway_file)
        cfg = railway_config(d.railway_file)
        ctx = ROOT / d.root_dir if d.root_dir else ROOT
        out.append((d.railway_file, ctx / cfg["build"]["dockerfilePath"], ctx, cfg["deploy"]["startCommand"]))
    return out


RAILWAY = railway_images()


# ------------------------------------------------------------------ facts are current

@pytest.mark.parametrize("name", sorted(FACTS))
def test_facts_were_written_for_the_pinned_version(name):
    f = FACTS[name]
    pinned = compose.read_env().get(f.version_key)
    assert pinned == f.written_for, (
        f"docs/image-facts.yml was written for {name} {f.written_for}, but .env pins {f.version_key}={pinned}: "
        f"read the upstream Dockerfile at the new tag (base image, user, shell, health program), update the "
        f"entry and its `checked` source, then set written_for: {pinned}")


def test_every_image_used_has_facts():
    used = {imagelib.image_name(s["image"]) for raw in (RAW, *map(with_overlay, OVERLAYS))
            for s in raw["services"].values() if not s["image"].startswith("obs-stack/")}
    for _, dockerfile, _, _ in RAILWAY:
        for ins, rest in imagelib.instructions(dockerfile.read_text()):
            if ins == "FROM":
                used.add(imagelib.image_name(rest.split()[0].split(":")[0]))
    missing = sorted(u for u in used if u not in FACTS)
    assert not missing, f"images with no entry in docs/image-facts.yml: {missing}"


# ------------------------------------------------------------------ the guarantee

def test_compose_healthchecks_and_entrypoints_run_guaranteed_programs():
    problems = imagelib.compose_problems(RAW, FACTS)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_healthchecks_and_entrypoints_run_guaranteed_programs(overlay):
    raw = with_overlay(overlay)
    assert raw != RAW
    problems = imagelib.compose_problems(raw, FACTS)
    assert not problems, "\n".join(problems)


def test_the_overlay_check_refuses_an_entrypoint_script_that_is_not_mounted():
    raw = with_overlay("docker-compose.forward.yml")
    raw["services"]["prometheus"]["volumes"] = [v for v in raw["services"]["prometheus"]["volumes"]
                                                if "obs-start" not in v]
    assert any("obs-start" in p for p in imagelib.compose_problems(raw, FACTS))


@pytest.mark.parametrize("railway_file,dockerfile,context,start", RAILWAY, ids=[r[0] for r in RAILWAY])
def test_railway_start_commands_run_guaranteed_programs(railway_file, dockerfile, context, start):
    img = imagelib.dockerfile_image(dockerfile, context, FACTS)
    problems = img.check_argv(shlex.split(start), f"{railway_file} startCommand")
    for ins, rest in imagelib.instructions(dockerfile.read_text()):
        if ins == "ENTRYPOINT":
            ep = imagelib.exec_form(rest)
            if ep is None:
                problems.append(f"{dockerfile}: ENTRYPOINT in shell form needs /bin/sh; use the JSON form")
            else:
                problems += img.check_argv(ep, f"{dockerfile.relative_to(ROOT)} ENTRYPOINT")
    hc = imagelib.dockerfile_healthcheck(dockerfile.read_text())
    if hc is not None:
        problems += img.check_argv(hc, f"{dockerfile.relative_to(ROOT)} HEALTHCHECK")
    assert not problems, "\n".join(problems)


def _mutated(service: str, test: list[str]) -> dict:
    raw = copy.deepcopy(RAW)
    raw["services"][service]["healthcheck"]["test"] = test
    return raw


@pytest.mark.parametrize("service,test,why", [
    ("loki", ["CMD", "/busybox/wget", "-q", "-O", "/dev/null", "http://127.0.0.1:3100/ready"], "/busybox/wget"),
    ("tempo", ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:3200/ready"], "'wget'"),
    ("tempo", ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:3200/ready"], "needs /bin/sh"),
    ("otelcol", ["CMD", "wget", "http://127.0.0.1:13133/"], "'wget'"),
    ("grafana", ["CMD", "/bin/bash", "/nonexistent.sh"], "/bin/bash"),
    ("prometheus", ["CMD", "/bin/sh", "/healthcheck.sh"], "/healthcheck.sh"),
])
def test_the_check_refuses_what_an_image_lacks(service, test, why):
    """The 3.7/2.10 failure mode (a healthcheck program the distroless base no longer has) is caught."""
    problems = imagelib.compose_problems(_mutated(service, test), FACTS)
    assert any(why in p for p in problems), problems


@pytest.mark.parametrize("dockerfile,old,new", [
    ("loki/Dockerfile", '"/busybox/busybox", "sh"', '"/busybox/sh"'),
    ("tempo/Dockerfile", '"/busybox/busybox", "sh"', '"/bin/sh"'),
    ("tempo/Dockerfile", "COPY --from=busybox /bin/busybox /busybox/busybox\n", ""),
    ("grafana/Dockerfile", "COPY scripts/railway/obs-start /usr/local/bin/obs-start\n", ""),
])
def test_the_check_refuses_a_start_command_the_image_cannot_run(dockerfile, old, new):
    text = (ROOT / dockerfile).read_text()
    assert old in text, f"{dockerfile} changed: update this test's mutation"
    img = imagelib.dockerfile_image(ROOT / dockerfile, ROOT, FACTS, text=text.replace(old, new))
    ep = next(imagelib.exec_form(r) for i, r in imagelib.instructions(text.replace(old, new)) if i == "ENTRYPOINT")
    assert img.check_argv(ep, dockerfile), f"{dockerfile} with {old!r} -> {new!r} passed the check"


# ------------------------------------------------------------------ compose build hygiene

def build_contexts() -> list[tuple[str, Path, Path]]:
    out = []
    for name, s in RAW["services"].items():
        if "build" in s:
            b = s["build"]
            ctx = ROOT / b["context"]
            out.append((f"compose {name}", ctx, ctx / b.get("dockerfile", "Dockerfile")))
    out += [(f"railway {rf}", ctx, df) for rf, df, ctx, _ in RAILWAY]
    return out


@pytest.mark.parametrize("what,context,dockerfile", build_contexts(), ids=[c[0] for c in build_contexts()])
def test_secrets_never_enter_a_build_context(what, context, dockerfile):
    ignore = imagelib.dockerignore_for(context, dockerfile)
    assert ignore, f"{what}: no .dockerignore for context {context.relative_to(ROOT) or '.'}"
    rel = (ROOT / "secrets").relative_to(context) if (ROOT / "secrets").is_relative_to(context) else Path("secrets")
    patterns = ignore.read_text().splitlines()
    for p in (f"{rel}/grafana_admin_password", f"{rel}/github_token", ".git/config"):
        assert imagelib.ignored(patterns, p), f"{what}: {ignore.relative_to(ROOT)} lets {p} into the build context"


@pytest.mark.parametrize("patterns,path,want", [
    (["secrets/"], "secrets/x", True),
    (["*", "!src/"], "src/a.py", False),
    (["*", "!src/"], "secrets/x", True),
    (["**/__pycache__/"], "src/pkg/__pycache__/m.pyc", True),
    (["secrets/", "!secrets/x"], "secrets/x", False),
    ([".git/"], "secrets/x", False),
])
def test_dockerignore_matching(patterns, path, want):
    assert imagelib.ignored(patterns, path) is want


def test_pull_policy_never_pulls_our_own_images():
    """Services that build pull_policy: build; services reusing a sibling's local image never pull (no
    "pull access denied" lines on the first `up`)."""
    bad = []
    for name, s in RAW["services"].items():
        own = s["image"].startswith("obs-stack/")
        want = "build" if "build" in s else "never" if own else None
        if s.get("pull_policy") != want:
            bad.append(f"{name}: pull_policy {s.get('pull_policy')!r}, want {want!r}")
    assert not bad, "\n".join(bad)


def test_bind_mounts_are_labelled_for_selinux():
    bad = [f"{n}: {v}" for n, s in RAW["services"].items() for v in s.get("volumes", [])
           if v.startswith((".", "/")) and "z" not in (v.split(":")[2:3] or [""])[0].split(",")]
    assert not bad, "bind mounts without :z (SELinux hosts deny the container access):\n" + "\n".join(bad)


def test_grafana_provisioning_has_every_directory_grafana_reads():
    """The mount replaces the image's provisioning folder; a missing subfolder is an error line in Grafana's log."""
    base = ROOT / "grafana" / "provisioning"
    missing = [d for d in ("datasources", "dashboards", "alerting", "plugins") if not (base / d).is_dir()]
    assert not missing, f"grafana/provisioning lacks {missing} (add an empty folder with a .gitkeep)"


def test_readme_waits_for_health():
    text = (ROOT / "README.md").read_text()
    assert "docker compose up -d --wait" in text, "README must start the stack with --wait (fails loudly when unhealthy)"
