"""docker-compose.yml against the Compose Specification schema and the project's quality bars."""
from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.conftest import require_tool
from tests.harness import compose

RAW = yaml.safe_load(compose.COMPOSE_FILE.read_text())
DOC = compose.load_compose()
SERVICES = DOC["services"]
ENV = compose.read_env()

# Paths each image creates and owns as its non-root user: a fresh named volume mounted there gets that
# owner from Docker, so no `user: root` or chown step is needed. (Checked against each image's Dockerfile.)
IMAGE_OWNED_PATHS = {
    "prom/prometheus": ("65534", ["/prometheus"]),
    "prom/alertmanager": ("65534", ["/alertmanager"]),
    "grafana/loki": ("10001", ["/loki"]),
    "grafana/tempo": ("10001", ["/var/tempo"]),
    "grafana/grafana": ("472", ["/var/lib/grafana"]),
    "obs-stack/otelcol": ("10001", ["/var/lib/otelcol"]),  # created in otelcol/Dockerfile
    "obs-stack/bridges": ("10001", ["/var/lib/obs-bridges/railway-logs"]),  # created in exporters/Dockerfile
}


# Services that serve no HTTP port; their healthcheck checks a heartbeat instead.
NO_HTTP_PORT = {"demo-loadgen"}


def image_name(image: str) -> str:
    return image.rsplit(":", 1)[0]


def test_schema_valid():
    schema_path = require_tool("compose-spec")
    schema = json.loads(Path(schema_path).read_text())
    jsonschema.validate(RAW, schema)


def test_env_file_pins_every_image_and_marks_bumps():
    lines = compose.ENV_FILE.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[A-Z0-9_]+=", line):
            assert i > 0 and lines[i - 1].startswith("# renovate: datasource="), \
                f".env line {i + 1} ({line}) has no '# renovate:' comment above it"
            value = line.split("=", 1)[1]
            assert value and value.lower() != "latest", f"{line}: not pinned"


def test_renovate_regex_matches_every_env_pin():
    cfg = json.loads((compose.ROOT / "renovate.json").read_text())
    pattern = cfg["customManagers"][0]["matchStrings"][0]
    py = re.sub(r"\(\?<(\w+)>", r"(?P<\1>", pattern)
    text = compose.ENV_FILE.read_text()
    found = {m.group("depName") for m in re.finditer(py, text)}
    pins = [line for line in text.splitlines() if re.match(r"^[A-Z0-9_]+=", line)]
    assert len(found) == len(pins), f"renovate would see {sorted(found)} but .env pins {len(pins)} values"


def local_build(image: str) -> dict | None:
    """The build section of the service that builds `image` (our own images: obs-stack/...)."""
    for s in RAW["services"].values():
        if s.get("image") == image and s.get("build"):
            return s["build"]
    return None


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_image_pinned_from_env(name):
    raw_image = RAW["services"][name]["image"]
    if raw_image.startswith("obs-stack/"):
        # Built here: every base image version must come from .env through a build arg.
        build = local_build(raw_image)
        assert build, f"{name}: {raw_image} is built by no service"
        args = build.get("args", {})
        assert args and all(re.fullmatch(r"\$\{[A-Z0-9_]+\}", v) and v[2:-1] in ENV for v in args.values()), args
        dockerfile = compose.ROOT / build["context"] / build.get("dockerfile", "Dockerfile")
        froms = re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), re.M)
        assert froms and all("${" in f for f in froms), f"{dockerfile}: FROM lines not pinned by ARG: {froms}"
        return
    m = re.fullmatch(r"[\w./-]+:\$\{([A-Z0-9_]+)\}", raw_image)
    assert m, f"{name}: image {raw_image!r} must take its tag from a .env variable"
    assert m.group(1) in ENV, f"{name}: {m.group(1)} is not defined in .env"
    assert "latest" not in SERVICES[name]["image"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_healthcheck_limits_logging(name):
    s = SERVICES[name]
    assert s.get("healthcheck", {}).get("test"), f"{name}: no healthcheck"
    if name not in NO_HTTP_PORT:
        assert compose.health_url(s["healthcheck"]["test"]), f"{name}: healthcheck probes no local URL"
    assert s.get("mem_limit"), f"{name}: no memory limit"
    assert s.get("logging") == DOC["x-logging"], f"{name}: logs through `logging: *logging` (to Loki)"
    assert s.get("restart") in ("unless-stopped", "always", "on-failure"), f"{name}: no restart policy"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_ports_on_loopback_only(name):
    for raw, p in zip(RAW["services"][name].get("ports", []), SERVICES[name].get("ports", []), strict=False):
        assert isinstance(p, str), f"{name}: use 'HOST_IP:HOST:CONTAINER' strings"
        assert p.split(":")[0] == "127.0.0.1", f"{name}: port {raw} is not bound to 127.0.0.1 by default"
        if raw.startswith("${"):
            assert name == "grafana" and raw.startswith("${GRAFANA_BIND:-127.0.0.1}:"), \
                "only Grafana may be opened, and only by GRAFANA_BIND"


def read_only(mount: str) -> bool:
    """A short-syntax volume mount (`source:target[:options]`) with the `ro` option."""
    parts = mount.split(":")
    return len(parts) >= 3 and "ro" in parts[2].split(",")


def tmpfs_owner(volume: str) -> dict | None:
    """uid, gid and mode of a named volume declared as a tmpfs with explicit owner options, else None."""
    opts = (DOC.get("volumes") or {}).get(volume) or {}
    d = opts.get("driver_opts") or {}
    if d.get("type") != "tmpfs":
        return None
    o = dict(kv.split("=", 1) for kv in str(d.get("o", "")).split(",") if "=" in kv)
    return {"uid": o.get("uid"), "gid": o.get("gid"), "mode": int(o.get("mode", "1777"), 8)}


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_non_root_and_volume_ownership(name):
    s = SERVICES[name]
    user = str(s.get("user", ""))
    assert user and not user.startswith(("0", "root")), f"{name}: runs as root or image default ({user!r})"
    named = [v for v in s.get("volumes", []) if not v.startswith((".", "/"))]
    for v in named:
        volume, target = v.split(":")[:2]
        t = tmpfs_owner(volume)
        if t is not None:
            # A volume shared between services (tmpfs with explicit owner options): its one writer runs as
            # its owner, every other service mounts it read-only and reads through its group; nobody else
            # gets in, and no image path is copied over the explicit owner.
            uid, gid = (user.split(":") + [user])[:2]
            assert t["mode"] & 0o007 == 0, f"{volume}: mode {oct(t['mode'])} lets every user in"
            if read_only(v):
                assert gid == t["gid"], f"{name}: reads {volume} but its group {gid} is not the volume's {t['gid']}"
            else:
                assert uid == t["uid"], f"{name}: writes {volume} but is not its owner uid {t['uid']}"
            owned = IMAGE_OWNED_PATHS.get(image_name(s["image"]), ("", []))[1]
            assert target not in owned, f"{name}: {target} exists in the image; Docker would copy its owner over"
            continue
        owner = IMAGE_OWNED_PATHS.get(image_name(s["image"]))
        assert owner, f"{name}: named volume {v} on an image with no known owned path"
        assert target in owner[1], f"{name}: {target} is not a path the image's user owns ({owner[1]})"
        assert user.split(":")[0] == owner[0], f"{name}: user {user} is not the owner {owner[0]} of {target}"


def test_shared_volumes_have_one_writer():
    for volume in DOC.get("volumes") or {}:
        if tmpfs_owner(volume) is None:
            continue
        mounts = [(n, v) for n, s in SERVICES.items() for v in s.get("volumes", []) if v.split(":")[0] == volume]
        writers = [n for n, v in mounts if not read_only(v)]
        assert len(writers) == 1 and len(mounts) >= 2, f"{volume}: mounted by {mounts}; exactly one writer expected"


def test_no_default_passwords_or_anonymous_access():
    for name, s in SERVICES.items():
        for k in (s.get("environment") or {}):
            if re.search(r"PASSWORD|TOKEN|SECRET|API_KEY", k) and not k.endswith("_FILE"):
                pytest.fail(f"{name}: {k} set inline; secrets come from files (*_FILE)")
    g = SERVICES["grafana"]["environment"]
    assert g["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert g["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in g


def test_ordered_startup_waits_for_health():
    for name, s in SERVICES.items():
        for dep, cond in (s.get("depends_on") or {}).items():
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
            assert cond.get("condition") == "service_healthy", f"{name} -> {dep} must wait for service_healthy"
    assert set(SERVICES["otelcol"]["depends_on"]) >= {"prometheus", "loki", "tempo"}


def test_retention_on_every_store():
    cmd = " ".join(SERVICES["prometheus"]["command"])
    assert "--storage.tsdb.retention.time=" in cmd and "--storage.tsdb.retention.size=" in cmd
    loki = yaml.safe_load((compose.ROOT / "loki/loki.yml").read_text())
    assert loki["compactor"]["retention_enabled"] is True
    assert loki["limits_config"]["retention_period"]
    assert all(c["schema"] == "v13" and c["store"] == "tsdb" for c in loki["schema_config"]["configs"])
    tempo = yaml.safe_load((compose.ROOT / "tempo/tempo.yml").read_text())
    # Tempo 3.0: retention runs in the backend worker (the 2.x compactor block is gone).
    assert tempo["backend_worker"]["compaction"]["block_retention"] == "168h"


def test_every_bind_mount_source_exists():
    for name, svc in compose.services().items():
        for m in svc.mounts:
            if m.kind == "bind":
                assert Path(m.source).exists(), f"{name}: mounts missing {m.source}"
                assert m.read_only, f"{name}: config mount {m.target} should be read-only"


def test_expected_services_present():
    assert {"prometheus", "alertmanager", "grafana", "loki", "tempo", "otelcol", "blackbox-exporter",
            "simulator", "railway-exporter", "vercel-exporter", "supabase-exporter",
            "github-exporter"} <= set(SERVICES)


def test_logging_reaches_the_collector_without_blocking():
    """Every service's lines go to the collector's fluent_forward receiver (docs/logging.md, "Logs in
    Loki"): asynchronously, so a collector outage never blocks a container, with a bounded in-memory
    buffer, the compose labels the collector turns into Loki labels, and Docker's dual-logging cache
    bounded so `docker compose logs` keeps working without filling the disk."""
    lg = DOC["x-logging"]
    opts = lg["options"]
    assert lg["driver"] == "fluentd"
    assert opts["fluentd-async"] == "true"
    assert 0 < int(opts["fluentd-buffer-limit"]) <= 100000
    assert set(opts["labels"].split(",")) == {"com.docker.compose.service", "com.docker.compose.project"}
    # The driver runs in dockerd on the host: it reaches the collector through the published port.
    host, _, port = opts["fluentd-address"].removeprefix("tcp://").rpartition(":")
    assert host == "127.0.0.1"
    assert f"127.0.0.1:{port}:{port}" in SERVICES["otelcol"]["ports"]
    receiver = yaml.safe_load((compose.ROOT / "otelcol" / "config.yaml").read_text())["receivers"]["fluent_forward"]
    assert receiver["endpoint"] == f"0.0.0.0:{port}"
    assert re.fullmatch(r"\d+m", opts["cache-max-size"]) and int(opts["cache-max-file"]) <= 5
    # Options of other drivers would make dockerd refuse to create the container.
    assert not {"max-size", "max-file"} & set(opts)
    # The Supabase OTLP receiver is internal only (the ingest forwards to it).
    assert not any(p.endswith(":4319") for p in SERVICES["otelcol"]["ports"])

