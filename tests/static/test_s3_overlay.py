"""docker-compose.s3.yml (Loki and Tempo on S3-compatible object storage, SeaweedFS as the store), checked
without an engine: the real Compose CLI merges it over docker-compose.yml, every service of the merge runs as
a non-root user with nothing published beyond 127.0.0.1, the S3 configs differ from the filesystem ones only
in their storage blocks, no key is in any config, and seaweedfs/start.sh (run here with /bin/sh and a
stand-in for `weed`) takes the keys from the one credentials file or stops. The keys of loki.s3.yml and
tempo.s3.yml are checked against the pinned configuration references by test_backend_configs.py; the
overlay runs for real in the Docker tier (tests/docker/test_6_s3.py)."""
from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.static import imagelib
from tests.static.test_compose_cli import compose_config

ROOT = imagelib.ROOT
OVERLAY = "docker-compose.s3.yml"
START = ROOT / "seaweedfs" / "start.sh"
RAW = yaml.safe_load((ROOT / OVERLAY).read_text())
ENV = imagelib.compose.read_env()
BUCKETS = {"loki": "loki", "tempo": "tempo"}
CREDENTIALS_IN_CONTAINER = "/run/obs-secrets/s3_credentials"
# What the pinned image holds: docs/image-facts.yml (test_images.py checks it is current).
SEAWEEDFS_FACTS = imagelib.load_facts()["chrislusf/seaweedfs"]
SEAWEEDFS_USER = "1000:1000"


@pytest.fixture(scope="module")
def merged() -> dict:
    p = compose_config("docker-compose.yml", OVERLAY)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_seaweedfs_is_pinned_for_automated_bumps():
    lines = (ROOT / ".env").read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("SEAWEEDFS_VERSION="))
    assert lines[i - 1] == "# renovate: datasource=docker depName=chrislusf/seaweedfs"


def test_overlay_merges_with_the_real_compose_cli(merged):
    svc = merged["services"]
    assert svc["seaweedfs"]["image"] == f"chrislusf/seaweedfs:{ENV['SEAWEEDFS_VERSION']}"
    assert svc["loki"]["command"] == ["-config.file=/etc/loki/loki.s3.yml"]
    assert svc["tempo"]["command"] == ["-config.file=/etc/tempo/tempo.s3.yml"]
    for name, state in (("loki", "/loki"), ("tempo", "/var/tempo")):
        s = svc[name]
        mounts = {v["target"]: v for v in s["volumes"]}
        # the config the command names is mounted, read-only, from this repo
        cfg = s["command"][0].split("=", 1)[1]
        assert mounts[cfg]["source"] == str(ROOT / name / Path(cfg).name) and mounts[cfg]["read_only"], mounts
        # the credentials file lies in the read-only secrets mount, and only its path is in the environment
        assert s["environment"]["AWS_SHARED_CREDENTIALS_FILE"] == CREDENTIALS_IN_CONTAINER
        assert mounts["/run/obs-secrets"]["source"] == str(ROOT / "secrets") and mounts["/run/obs-secrets"]["read_only"]
        # local state in a volume of its own: leaving the overlay finds the filesystem-backed data untouched
        assert mounts[state]["type"] == "volume" and mounts[state]["source"] == f"{name}-s3-data", mounts[state]
        assert s["depends_on"]["seaweedfs"]["condition"] == "service_healthy"
    # the rest of the stack is docker-compose.yml's, unchanged
    base = json.loads(compose_config("docker-compose.yml").stdout)["services"]
    assert set(svc) == set(base) | {"seaweedfs"}
    for name in set(base) - {"loki", "tempo"}:
        assert svc[name] == base[name], f"the overlay changed {name}"


def test_merged_stack_is_non_root_and_local_only(merged):
    svc = merged["services"]
    for name, s in svc.items():
        user = str(s.get("user", ""))
        assert user and user.split(":")[0] not in ("0", "root"), f"{name} runs as {user or 'the image default'}"
    assert svc["seaweedfs"]["user"] == SEAWEEDFS_USER
    assert not svc["seaweedfs"].get("ports"), "SeaweedFS is reached over the compose network only"
    ports = [(n, p.get("host_ip")) for n, s in svc.items() for p in s.get("ports", [])]
    assert ports and all(ip == "127.0.0.1" for _, ip in ports), ports
    # /data is where the image's Dockerfile chowns to 1000: Docker initialises the named volume with that owner
    data = next(v for v in svc["seaweedfs"]["volumes"] if v["target"] == "/data")
    assert data["type"] == "volume" and "seaweedfs-data" in merged["volumes"]
    missing = [n for n, s in svc.items() if not (s.get("healthcheck") or {}).get("test")]
    assert not missing, f"no healthcheck (what `up --wait` waits for): {missing}"


def test_overlay_logging_is_the_stacks(merged):
    base = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert RAW["x-logging"] == base["x-logging"], "x-logging drifted from docker-compose.yml's"
    assert merged["services"]["seaweedfs"]["logging"] == merged["services"]["loki"]["logging"]


def _seaweedfs_problems(raw: dict) -> list[str]:
    only = {"services": {"seaweedfs": raw["services"]["seaweedfs"]}}
    return imagelib.compose_problems(only, {"chrislusf/seaweedfs": SEAWEEDFS_FACTS})


def test_seaweedfs_runs_only_what_its_image_has():
    assert not _seaweedfs_problems(RAW), _seaweedfs_problems(RAW)


@pytest.mark.parametrize("field,value,expect", [
    ("entrypoint", ["/bin/bash", "/etc/obs-seaweedfs/start.sh"], "/bin/bash"),
    ("entrypoint", ["/bin/sh", "/etc/obs-seaweedfs/missing.sh"], "missing.sh"),
    ("healthcheck", {"test": ["CMD-SHELL", "wget -q http://127.0.0.1:8333/healthz"]}, "'wget'"),
])
def test_the_image_check_refuses_what_seaweedfs_lacks(field, value, expect):
    raw = copy.deepcopy(RAW)
    raw["services"]["seaweedfs"][field] = value
    assert any(expect in p for p in _seaweedfs_problems(raw)), _seaweedfs_problems(raw)


# ------------------------------------------------------------------ the S3 configs

def _without(cfg: dict, paths: list[tuple[str, ...]]) -> dict:
    cfg = copy.deepcopy(cfg)
    for path in paths:
        node = cfg
        for k in path[:-1]:
            node = node[k]
        node.pop(path[-1], None)
    return cfg


STORAGE_PATHS = {
    "loki": [("common", "storage"), ("schema_config",), ("compactor", "delete_request_store")],
    "tempo": [("storage", "trace", "backend"), ("storage", "trace", "local"), ("storage", "trace", "s3")],
}


@pytest.mark.parametrize("product", ["loki", "tempo"])
def test_s3_config_is_the_filesystem_config_but_for_storage(product):
    base = yaml.safe_load((ROOT / product / f"{product}.yml").read_text())
    s3 = yaml.safe_load((ROOT / product / f"{product}.s3.yml").read_text())
    assert _without(s3, STORAGE_PATHS[product]) == _without(base, STORAGE_PATHS[product]), (
        f"{product}.s3.yml drifted from {product}.yml outside the storage blocks: copy the change over")


def test_loki_s3_storage():
    base = yaml.safe_load((ROOT / "loki" / "loki.yml").read_text())
    cfg = yaml.safe_load((ROOT / "loki" / "loki.s3.yml").read_text())
    s3 = cfg["common"]["storage"]["s3"]
    assert set(cfg["common"]["storage"]) == {"s3"}
    assert s3["endpoint"] == "seaweedfs:8333" and s3["insecure"] is True and s3["s3forcepathstyle"] is True
    assert s3["bucketnames"] == BUCKETS["loki"]
    # the same schema periods, every one now in the object store
    assert [dict(c, object_store="s3") for c in base["schema_config"]["configs"]] == cfg["schema_config"]["configs"]
    assert cfg["compactor"]["delete_request_store"] == "s3"


def test_tempo_s3_storage():
    trace = yaml.safe_load((ROOT / "tempo" / "tempo.s3.yml").read_text())["storage"]["trace"]
    assert trace["backend"] == "s3" and "local" not in trace
    s3 = trace["s3"]
    assert s3["endpoint"] == "seaweedfs:8333" and s3["insecure"] is True and s3["forcepathstyle"] is True
    assert s3["bucket"] == BUCKETS["tempo"] and s3["region"]


SECRET_KEYS = {"access_key_id", "secret_access_key", "session_token", "access_key", "secret_key", "s3"}


def _keys(tree, path=""):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield f"{path}.{k}" if path else k, k, v
            yield from _keys(v, f"{path}.{k}" if path else k)
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _keys(v, f"{path}[{i}]")


@pytest.mark.parametrize("path", ["loki/loki.s3.yml", "tempo/tempo.s3.yml", OVERLAY])
def test_no_key_in_any_file(path):
    """Keys come from secrets/s3_credentials only: no key field in a config (Loki's `s3` URL field can embed
    them too), no AWS key variable in the overlay's environment."""
    tree = yaml.safe_load((ROOT / path).read_text())
    found = [p for p, k, v in _keys(tree) if k in SECRET_KEYS and not isinstance(v, dict)]
    assert not found, f"{path}: {found}"
    env = [k for _, _, v in _keys(tree) if isinstance(v, dict) for k in v if str(k).startswith("AWS_") and
           k != "AWS_SHARED_CREDENTIALS_FILE"]
    assert not env, env


def test_buckets_agree():
    """The buckets SeaweedFS creates, the ones its healthcheck waits for and the ones Loki and Tempo use."""
    text = START.read_text()
    assert '-bucket="${OBS_S3_BUCKETS:-loki,tempo}"' in text
    health = RAW["services"]["seaweedfs"]["healthcheck"]["test"][1]
    for b in BUCKETS.values():
        assert f"/buckets/{b}?metadata=true" in health


# ------------------------------------------------------------------ seaweedfs/start.sh, for real

STUB = """#!/bin/sh
{ echo "key=$AWS_ACCESS_KEY_ID"; echo "secret=$AWS_SECRET_ACCESS_KEY"; echo "args=$*"; } > "$STUB_OUT"
"""
KEY, SECRET = "obsaccesskey01", "s3cr3t-value-0123456789abcdef"


def _run_start(tmp_path: Path, credentials: str | None) -> tuple[subprocess.CompletedProcess, str]:
    stub = tmp_path / "weed"
    stub.write_text(STUB)
    stub.chmod(0o755)
    cred = tmp_path / "s3_credentials"
    if credentials is not None:
        cred.write_text(credentials)
    out = tmp_path / "stub.out"
    env = {"PATH": os.environ["PATH"], "OBS_WEED": str(stub), "OBS_S3_CREDENTIALS_FILE": str(cred),
           "STUB_OUT": str(out)}
    p = subprocess.run(["/bin/sh", str(START)], env=env, capture_output=True, text=True, timeout=20)
    return p, out.read_text() if out.exists() else ""


@pytest.mark.parametrize("text", [
    f"[default]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n",
    f"[other]\naws_access_key_id = wrong\n\n[default]\r\naws_access_key_id={KEY}\r\naws_secret_access_key={SECRET}\r\n",
])
def test_start_exports_the_default_profile_and_starts_mini(tmp_path, text):
    p, out = _run_start(tmp_path, text)
    assert p.returncode == 0, p.stderr
    assert f"key={KEY}\n" in out and f"secret={SECRET}\n" in out, out
    args = out.split("args=", 1)[1].split()
    assert args[:2] == ["-logtostderr=true", "mini"]
    for flag in ("-dir=/data", "-bucket=loki,tempo", "-master.telemetry=false", "-admin.ui=false", "-s3.iam=false"):
        assert flag in args, args
    assert SECRET not in p.stdout + p.stderr and SECRET not in " ".join(args)


@pytest.mark.parametrize("text,why", [
    (None, "the S3 credentials file is missing"),
    ("", "no aws_access_key_id"),
    (f"[default]\naws_access_key_id = {KEY}\n", "no aws_secret_access_key"),
    (f"[prod]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n", "no aws_access_key_id"),
    (f"[default]\naws_access_key_id = {KEY}\naws_secret_access_key = short\n", "shorter than 16"),
])
def test_start_refuses_a_bad_credentials_file(tmp_path, text, why):
    p, out = _run_start(tmp_path, text)
    assert p.returncode != 0 and not out, "weed started without usable credentials"
    assert why in p.stderr and "s3_credentials" in p.stderr, p.stderr
    assert SECRET not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_start_refuses_a_directory(tmp_path):
    (tmp_path / "s3_credentials").mkdir()
    p, out = _run_start(tmp_path, None)
    assert p.returncode != 0 and not out and "missing" in p.stderr, p.stderr
