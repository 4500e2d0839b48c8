"""The collector build manifest lists exactly the components otelcol/config.yaml uses."""
from __future__ import annotations

import re

import yaml

from tests.harness import compose

CONFIG = yaml.safe_load((compose.ROOT / "otelcol" / "config.yaml").read_text())
MANIFEST = yaml.safe_load((compose.ROOT / "otelcol" / "builder-config.yaml").read_text())

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
}


def used(kind: str) -> set[str]:
    return {k.split("/")[0] for k in (CONFIG.get(kind) or {})}


def listed(kind: str) -> set[str]:
    out = set()
    for entry in MANIFEST.get(kind, []):
        module = entry["gomod"].split()[0].rsplit("/", 1)[-1]
        assert module in TYPE_OF_MODULE, f"manifest module {module} has no known component type"
        out.add(TYPE_OF_MODULE[module])
    return out


def test_manifest_matches_config():
    for kind in ("receivers", "processors", "exporters", "extensions"):
        assert used(kind) == listed(kind), f"{kind}: config uses {used(kind)}, manifest builds {listed(kind)}"


def test_pipelines_only_use_defined_components():
    svc = CONFIG["service"]
    assert set(svc["extensions"]) <= set(CONFIG["extensions"])
    for name, p in svc["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            assert set(p[kind]) <= set(CONFIG[kind]), f"pipeline {name}: undefined {kind}"
        assert p["processors"][0] == "memory_limiter", f"pipeline {name}: memory_limiter must come first"


def test_manifest_version_matches_env():
    v = compose.read_env()["OTELCOL_VERSION"].lstrip("v")
    versions = {entry["gomod"].split()[1] for kind in ("receivers", "processors", "exporters", "extensions")
                for entry in MANIFEST[kind]}
    assert versions == {f"v{v}"}, versions
    assert MANIFEST["dist"]["version"] == v
    assert re.fullmatch(r"\d+\.\d+\.\d+", v)
