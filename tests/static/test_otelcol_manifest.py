"""The collector build manifest lists exactly the components otelcol/config.yaml and its forwarding overlays
(otelcol/forward*.yaml) use, and the overlays merge into whole configs: checked here by the collector's merge
rule, by the real Compose CLI (docker-compose.forward.yml) and by the real collector's `validate`. The
forwarding itself runs in tests/e2e/test_forward_otlp.py."""
from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml

from tests.conftest import require_tool
from tests.harness import compose

OTELCOL = compose.ROOT / "otelcol"
CONFIG = yaml.safe_load((OTELCOL / "config.yaml").read_text())
FORWARD = yaml.safe_load((OTELCOL / "forward.yaml").read_text())
LOCAL_MODES = ("true", "false")  # OTLP_FORWARD_LOCAL: the third --config is forward-local-<mode>.yaml
LOCAL = {m: yaml.safe_load((OTELCOL / f"forward-local-{m}.yaml").read_text()) for m in LOCAL_MODES}
MANIFEST = yaml.safe_load((OTELCOL / "builder-config.yaml").read_text())
OVERLAY = "docker-compose.forward.yml"
FORWARD_EXPORTER = "otlp_http/forward"
SECRETS_DIR = "/run/obs-secrets/"
IN_CONTAINER = "/etc/otelcol-contrib/"

# Component type -> Go module, as each module's metadata.yaml names it (checked for the pinned version).
TYPE_OF_MODULE = {
    "otlpreceiver": "otlp",
    "batchprocessor": "batch",
    "memorylimiterprocessor": "memory_limiter",
    "resourceprocessor": "resource",
    "otlpexporter": "otlp_grpc",
    "otlphttpexporter": "otlp_http",
    "healthcheckextension": "health_check",
    "tailsamplingprocessor": "tail_sampling",
    "filterprocessor": "filter",
    "filestorage": "file_storage",
    "fluentforwardreceiver": "fluent_forward",
    "transformprocessor": "transform",
    "groupbyattrsprocessor": "groupbyattrs",
    "bearertokenauthextension": "bearertokenauth",
}
KINDS = ("receivers", "processors", "exporters", "extensions")


def merge(base, over):
    """The collector's merge of its --config files at 0.161.0 (feature gate confmap.enableMergeAppendOption
    off): maps merge key by key, anything else, lists included, is replaced by the later file."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(base[k], v) if k in base else v
        return out
    return over


def merged(mode: str) -> dict:
    """config.yaml, forward.yaml and forward-local-<mode>.yaml, in the order docker-compose.forward.yml gives."""
    return merge(merge(CONFIG, FORWARD), LOCAL[mode])


def used(*docs: dict) -> dict[str, set[str]]:
    return {kind: {k.split("/")[0] for d in docs for k in (d.get(kind) or {})} for kind in KINDS}


def listed(kind: str) -> set[str]:
    out = set()
    for entry in MANIFEST.get(kind, []):
        module = entry["gomod"].split()[0].rsplit("/", 1)[-1]
        assert module in TYPE_OF_MODULE, f"manifest module {module} has no known component type"
        out.add(TYPE_OF_MODULE[module])
    return out


def test_manifest_matches_config():
    uses = used(CONFIG, FORWARD, *LOCAL.values())
    for kind in KINDS:
        assert uses[kind] == listed(kind), f"{kind}: configs use {uses[kind]}, manifest builds {listed(kind)}"


@pytest.mark.parametrize("name", ["config.yaml", *(f"local={m}" for m in LOCAL_MODES)])
def test_pipelines_only_use_defined_components(name):
    cfg = CONFIG if name == "config.yaml" else merged(name.split("=")[1])
    svc = cfg["service"]
    assert set(svc["extensions"]) <= set(cfg["extensions"])
    for pname, p in svc["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            assert set(p[kind]) <= set(cfg[kind]), f"pipeline {pname}: undefined {kind}"
        assert p["processors"][0] == "memory_limiter", f"pipeline {pname}: memory_limiter must come first"


def test_manifest_version_matches_env():
    v = compose.read_env()["OTELCOL_VERSION"].lstrip("v")
    versions = {entry["gomod"].split()[1] for kind in KINDS for entry in MANIFEST[kind]}
    assert versions == {f"v{v}"}, versions
    assert MANIFEST["dist"]["version"] == v
    assert re.fullmatch(r"\d+\.\d+\.\d+", v)


def test_overlays_change_only_what_forwarding_needs():
    """forward.yaml adds the exporter and its authenticator; the local-mode files only set the exporter lists
    of config.yaml's own traces and logs pipelines. Lists are replaced whole, so every list an overlay sets
    must repeat what config.yaml had that is meant to stay."""
    assert set(FORWARD) == {"extensions", "exporters", "service"} and set(FORWARD["service"]) == {"extensions"}
    assert set(CONFIG["service"]["extensions"]) < set(FORWARD["service"]["extensions"])
    assert set(FORWARD["exporters"]) == {FORWARD_EXPORTER}
    base = CONFIG["service"]["pipelines"]
    forwarded = {n for n in base if n == "traces" or n.split("/")[0] == "logs"}
    assert forwarded == {"traces", "logs", "logs/compose", "logs/supabase"}, "a new pipeline: decide its forwarding"
    for mode, doc in LOCAL.items():
        assert set(doc) == {"service"} and set(doc["service"]) == {"pipelines"}, mode
        assert set(doc["service"]["pipelines"]) == forwarded, mode
        assert all(set(p) == {"exporters"} for p in doc["service"]["pipelines"].values()), mode
        pipelines = merged(mode)["service"]["pipelines"]
        for name, p in pipelines.items():
            keep = {k: v for k, v in p.items() if k != "exporters"}
            assert keep == {k: v for k, v in base[name].items() if k != "exporters"}, f"{mode}: {name} changed"
            if name not in forwarded:
                assert p["exporters"] == base[name]["exporters"], f"{mode}: {name} must stay local"
            elif mode == "true":
                assert p["exporters"] == base[name]["exporters"] + [FORWARD_EXPORTER], f"{mode}: {name}"
            else:
                assert p["exporters"] == [FORWARD_EXPORTER], f"{mode}: {name}"


def test_forward_exporter_queues_on_disk_and_reads_its_credential_from_a_file():
    exp = FORWARD["exporters"][FORWARD_EXPORTER]
    # Like the local backends: a persistent queue in the file_storage extension, retries without a deadline.
    local = CONFIG["exporters"]["otlp_http/loki"]
    assert exp["sending_queue"] == local["sending_queue"] and exp["sending_queue"]["storage"] == "file_storage"
    assert exp["retry_on_failure"] == local["retry_on_failure"]
    assert exp["retry_on_failure"]["max_elapsed_time"] in ("0s", 0)
    assert exp["endpoint"] == "${file:/run/obs-secrets/otlp_forward_endpoint}"
    auth_name = exp["auth"]["authenticator"]
    assert auth_name in FORWARD["extensions"] and auth_name in FORWARD["service"]["extensions"]
    auth = FORWARD["extensions"][auth_name]
    assert "token" not in auth and "tokens" not in auth, "the credential comes from a file, never the config"
    assert auth["filename"].startswith(SECRETS_DIR)
    # A missing or unreadable file stops the collector at start instead of sending without credentials.
    assert auth["wait_for_token_file"] is True and auth["retry_on_failure"]["enabled"] is True
    assert auth["retry_on_failure"]["max_retries"] > 0


# ------------------------------------------------------------------------- the compose overlay, real CLI
def compose_merged(**env: str) -> dict:
    from tests.static.test_compose_cli import compose_config
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        p = compose_config("docker-compose.yml", OVERLAY)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["services"]


@pytest.mark.parametrize("mode", LOCAL_MODES)
def test_compose_overlay_runs_the_collector_with_the_overlays(mode):
    require_tool("compose")
    svc = compose_merged(OTLP_FORWARD_LOCAL=mode)
    otelcol = svc["otelcol"]
    configs = [a.split("=", 1)[1] for a in otelcol["command"]]
    assert configs == [f"{IN_CONTAINER}config.yaml", f"{IN_CONTAINER}forward.yaml",
                       f"{IN_CONTAINER}forward-local-{mode}.yaml"]
    assert all(a.startswith("--config=") for a in otelcol["command"])
    mounts = {v["target"]: v for v in otelcol["volumes"]}
    for path in configs:
        src = mounts[path]["source"]
        assert src == str(OTELCOL / path.rsplit("/", 1)[1]) and mounts[path].get("read_only"), path
    assert mounts[SECRETS_DIR.rstrip("/")]["source"] == str(compose.ROOT / "secrets")
    assert mounts["/var/lib/otelcol"]["type"] == "volume", "the queue volume of docker-compose.yml stays"
    assert otelcol["environment"]["OTLP_FORWARD_AUTH_SCHEME"] == "Bearer"
    # Every ${env:NAME} without a default in the overlays is given by the overlay, every file they read is in
    # the mounted secrets folder.
    for f in ("forward.yaml", *(f"forward-local-{m}.yaml" for m in LOCAL_MODES)):
        text = (OTELCOL / f).read_text()
        for name in re.findall(r"\$\{env:(\w+)\}", text):
            assert name in otelcol["environment"], f"{f} needs {name}, which the overlay does not pass"
        for path in re.findall(r"\$\{file:([^}]+)\}", text) + re.findall(r"^\s*filename: (\S+)", text, re.M):
            assert path.startswith(SECRETS_DIR), f"{f} reads {path}, outside the mounted secrets folder"


def test_without_the_overlay_nothing_is_forwarded():
    svc = compose.services()["otelcol"]
    # The forward files are mounted (and baked for Railway) but never on the command line without the overlay.
    assert svc.command == [f"--config={IN_CONTAINER}config.yaml"]
    assert "otlp_http/forward" not in json.dumps(CONFIG)


# ------------------------------------------------------------------------- the real collector's validate
def validate(tmp_path, local: str, endpoint: str | None) -> subprocess.CompletedProcess:
    """`otelcol validate` of the three files; forward.yaml's secrets folder is a temporary one holding the
    endpoint file (None: no file). validate starts no extension, so the token file is not read here."""
    binary = require_tool("otelcol")
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    if endpoint is not None:
        (secrets_dir / "otlp_forward_endpoint").write_text(endpoint)
    forward = tmp_path / "forward.yaml"
    forward.write_text((OTELCOL / "forward.yaml").read_text().replace(SECRETS_DIR, f"{secrets_dir}/"))
    configs = [OTELCOL / "config.yaml", forward, OTELCOL / f"forward-local-{local}.yaml"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run([str(binary), "validate", *(f"--config={c}" for c in configs)], env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("mode", LOCAL_MODES)
def test_the_collector_loads_the_merged_configs(tmp_path, mode):
    p = validate(tmp_path, mode, "https://otlp-gateway.example.test/otlp")
    assert p.returncode == 0, p.stderr[-3000:]


@pytest.mark.parametrize("local,endpoint,says", [
    ("true", None, "otlp_forward_endpoint"),    # no endpoint file: the config does not resolve
    ("true", "", FORWARD_EXPORTER),             # an empty one: the exporter has no endpoint
    # The file provider keeps a trailing newline in a string: docs/forwarding.md says to write it with printf.
    ("true", "https://otlp-gateway.example.test/otlp\n", "endpoint must be a valid URL"),
    ("yes", "https://otlp-gateway.example.test/otlp", "forward-local-yes.yaml"),  # OTLP_FORWARD_LOCAL typo
])
def test_the_collector_refuses_to_start_without_what_it_needs(tmp_path, local, endpoint, says):
    p = validate(tmp_path, local, endpoint)
    assert p.returncode != 0 and says in p.stderr, p.stderr[-2000:]
