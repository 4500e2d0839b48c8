"""The real Compose CLI (pinned in .env, built by install-tools) parses, merges and interpolates our compose
files exactly as `docker compose up` would, without an engine: the main file, and the main file with the
Docker tier's Railway-images override (its !reset / !override merge tags)."""
from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import require_tool
from tests.harness import compose

ROOT = compose.ROOT
OVERRIDE = "tests/docker/railway-images.compose.yml"


def compose_config(*files: str, cwd=ROOT) -> subprocess.CompletedProcess:
    argv = [str(require_tool("compose")), "--project-directory", str(ROOT)]
    for f in files:
        argv += ["-f", str(f)]
    return subprocess.run([*argv, "config", "--format", "json"], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_compose_file_is_what_compose_accepts():
    p = compose_config("docker-compose.yml")
    assert p.returncode == 0, p.stderr
    cfg = json.loads(p.stdout)
    env = compose.read_env()
    assert set(cfg["services"]) == set(compose.load_compose()["services"])
    assert cfg["services"]["loki"]["image"] == f"grafana/loki:{env['LOKI_VERSION']}"
    assert cfg["services"]["tempo"]["image"] == f"grafana/tempo:{env['TEMPO_VERSION']}"
    # what `up --wait` waits for: every service has a healthcheck compose understood
    missing = [n for n, s in cfg["services"].items() if not (s.get("healthcheck") or {}).get("test")]
    assert not missing, f"no healthcheck: {missing}"
    ports = [(n, p.get("host_ip")) for n, s in cfg["services"].items() for p in s.get("ports", [])]
    assert ports and all(ip == "127.0.0.1" for _, ip in ports), ports


def test_railway_images_override_merges():
    p = compose_config("docker-compose.yml", OVERRIDE)
    assert p.returncode == 0, p.stderr
    svc = json.loads(p.stdout)["services"]
    assert svc["loki"]["image"].startswith("obs-railway/") and not svc["loki"].get("command")
    assert not svc["grafana"].get("entrypoint"), "grafana must run the Railway image's ENTRYPOINT"
    assert [v["target"] for v in svc["tempo"]["volumes"]] == ["/var/tempo"]


@pytest.mark.parametrize("old,new", [
    ("    mem_limit: 1g\n", "    mem_limit: lots\n"),
    ("      <<: *healthcheck-timing\n", "      <<: *no-such-anchor\n"),
    ("    pull_policy: never\n", "    pull_policy: sometimes\n"),
])
def test_compose_refuses_a_broken_copy(tmp_path, old, new):
    text = (ROOT / "docker-compose.yml").read_text()
    assert old in text, "mutation no longer applies: update this test"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(old, new, 1))
    p = compose_config(broken)
    assert p.returncode != 0, f"compose accepted {new.strip()!r}"
