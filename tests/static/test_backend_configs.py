"""loki/loki.yml and tempo/tempo.yml (and their object-storage variants loki/loki.s3.yml and tempo/tempo.s3.yml,
which docker-compose.s3.yml mounts) against the documented configuration reference of the version .env pins
(tests/static/config_reference/<product>-<version>.yml, generated from the upstream doc by
scripts/config-reference). Both programs load their config with yaml.UnmarshalStrict, so an unknown or
misplaced key stops them at start; no Loki or Tempo binary runs here (AGPL), so this check stands in for it
until the Docker tier loads the configs in the real images."""
from __future__ import annotations

import copy
import datetime
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import install_tools

ROOT = Path(__file__).resolve().parents[2]
REF_DIR = Path(__file__).resolve().parent / "config_reference"
CONFIGS = {"loki": ("LOKI_VERSION", "loki/loki.yml"), "tempo": ("TEMPO_VERSION", "tempo/tempo.yml")}
# Every config file each program is started with: the stack's, and the S3 overlay's (docker-compose.s3.yml).
FILES = [("loki", "loki/loki.yml"), ("loki", "loki/loki.s3.yml"), ("tempo", "tempo/tempo.yml"),
         ("tempo", "tempo/tempo.s3.yml")]
LEAF_TYPES = {"bool", "int", "float", "duration", "string", "time", "list", "list of strings", "map", "any",
              "unexpanded"}
# Go and Prometheus durations (Loki's model.Duration adds d/w/y); 0 needs no unit.
DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d|w|y))+$")
# Loki's <int> also takes a byte size with a unit ("64MB"); configuration.md, "Generic placeholders".
SIZE = re.compile(r"^\d+(\.\d+)?\s*([KMGTPE]i?)?B$", re.IGNORECASE)


class StaleReference(Exception):
    pass


def reference_for(product: str, versions: dict[str, str]) -> dict:
    """The reference written for the version `versions` pins; a bump without a new reference fails."""
    key, _ = CONFIGS[product]
    version = versions[key]
    path = REF_DIR / f"{product}-{version}.yml"
    if not path.exists():
        have = sorted(p.name for p in REF_DIR.glob(f"{product}-*.yml"))
        raise StaleReference(f".env pins {key}={version} but there is no {path.relative_to(ROOT)} (have {have}): "
                             f"re-check the config against that release's docs with scripts/config-reference")
    ref = yaml.safe_load(path.read_text())
    if ref.get("written_for") != version or ref.get("version_key") != key:
        raise StaleReference(f"{path.name} says written_for={ref.get('written_for')!r} "
                             f"version_key={ref.get('version_key')!r}, .env pins {key}={version}")
    return ref


def type_ok(kind: str, v) -> bool:
    if v is None or kind == "any":
        return True                                   # YAML null: the zero value, which strict decoding accepts
    num = isinstance(v, (int, float)) and not isinstance(v, bool)
    return {
        "bool": lambda: isinstance(v, bool),
        "int": lambda: (isinstance(v, int) and num) or (isinstance(v, str) and bool(SIZE.match(v))),
        "float": lambda: num,
        "duration": lambda: (isinstance(v, str) and bool(DURATION.match(v))) or (num and v == 0),
        "string": lambda: isinstance(v, str),
        "time": lambda: isinstance(v, (str, datetime.date)),
        "list": lambda: isinstance(v, list),
        "list of strings": lambda: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "map": lambda: isinstance(v, dict),
    }.get(kind, lambda: False)()


def documented_at(tree, key: str, path: str = "") -> list[str]:
    """Where else the reference documents `key`, to point a misplaced key at its block."""
    out = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            p = f"{path}.{k}" if path else k
            if k == key:
                out.append(p)
            out += documented_at(v, key, p)
    elif isinstance(tree, list):
        out += documented_at(tree[0], key, path + "[]")
    return out


def problems(cfg, ref, root=None, path: str = "") -> list[str]:
    """Every key of `cfg` the reference does not document at that place, and every leaf of the wrong type."""
    root = ref if root is None else root
    where = path or "the top level"
    if ref == "unexpanded":
        return [f"{path}: documented, but the reference does not expand this block: regenerate it "
                f"(scripts/config-reference) now that the config uses it"]
    if isinstance(ref, dict):
        if not isinstance(cfg, dict):
            return [f"{where}: expected a block of keys, got {type(cfg).__name__}"]
        out = []
        for k, v in cfg.items():
            p = f"{path}.{k}" if path else str(k)
            if k not in ref:
                elsewhere = documented_at(root, k)
                hint = f"; documented at {', '.join(elsewhere[:3])}" if elsewhere else ""
                out.append(f"{p}: not a documented key of {where}{hint}")
            else:
                out += problems(v, ref[k], root, p)
        return out
    if isinstance(ref, list):
        if not isinstance(cfg, list):
            return [f"{where}: expected a list of blocks, got {type(cfg).__name__}"]
        return [e for i, item in enumerate(cfg) for e in problems(item, ref[0], root, f"{path}[{i}]")]
    return [] if type_ok(ref, cfg) else [f"{where}: {cfg!r} is not a {ref}"]


def leaf_types(tree) -> set[str]:
    if isinstance(tree, dict):
        return set().union(*(leaf_types(v) for v in tree.values())) if tree else set()
    if isinstance(tree, list):
        return leaf_types(tree[0])
    return {tree}


def load(product: str, path: str | None = None) -> tuple[dict, dict]:
    ref = reference_for(product, install_tools.read_versions())
    cfg = yaml.safe_load((ROOT / (path or CONFIGS[product][1])).read_text())
    return cfg, ref


@pytest.mark.parametrize("product", sorted(CONFIGS))
def test_reference_was_written_for_the_pinned_version(product):
    try:
        ref = reference_for(product, install_tools.read_versions())
    except StaleReference as e:
        pytest.fail(str(e))
    assert ref["product"] == product
    assert ref["sources"], "the reference names the upstream doc it was derived from"
    for s in ref["sources"]:
        assert s["repository"].startswith("github.com/grafana/") and s["path"].endswith(".md"), s
        assert re.fullmatch(r"v\d+\.\d+\.\d+", s["tag"]) and re.fullmatch(r"[0-9a-f]{40}", s["commit"]), s
    assert leaf_types(ref["tree"]) <= LEAF_TYPES, leaf_types(ref["tree"]) - LEAF_TYPES


@pytest.mark.parametrize("product,path", FILES)
def test_config_uses_only_documented_keys(product, path):
    cfg, ref = load(product, path)
    found = problems(cfg, ref["tree"])
    assert not found, f"{path} vs {product}-{ref['written_for']}.yml:\n" + "\n".join(found)


@pytest.mark.parametrize("product,path", FILES)
def test_config_header_cites_the_reference(product, path):
    _, ref = load(product, path)
    head = "\n".join(line for line in (ROOT / path).read_text().splitlines()[:10]
                     if line.startswith("#"))
    assert f"config_reference/{product}-{ref['written_for']}.yml" in head, head
    assert ref["sources"][0]["tag"] in head, f"the header names the upstream tag {ref['sources'][0]['tag']}"


def test_a_version_bump_without_a_reference_fails():
    versions = install_tools.read_versions()
    for product, (key, _) in CONFIGS.items():
        with pytest.raises(StaleReference, match="no tests/static/config_reference"):
            reference_for(product, {**versions, key: "99.0.0"})


# Mutations of temp copies of the shipped configs: the check must catch each one.
MUTATIONS = {
    "loki": [
        ("unknown key", lambda c: c["limits_config"].update(bogus_limit=1), "limits_config.bogus_limit"),
        ("misplaced key", lambda c: c["limits_config"].update(retention_enabled=True),
         "limits_config.retention_enabled: not a documented key of limits_config; documented at compactor."),
        ("unknown top-level block", lambda c: c.update(bogus_block={"a": 1}), "bogus_block"),
        ("wrong type", lambda c: c["compactor"].update(retention_enabled="yes"), "compactor.retention_enabled"),
        ("bad duration", lambda c: c["limits_config"].update(retention_period="7 days"), "limits_config.retention_period"),
        ("list item key", lambda c: c["schema_config"]["configs"][0].update(bogus=1), "schema_config.configs[0].bogus"),
        ("unexpanded block", lambda c: c.update(ingester={"chunk_idle_period": "1h"}), "ingester: documented, but"),
    ],
    "tempo": [
        ("unknown key", lambda c: c["storage"]["trace"].update(bogus=1), "storage.trace.bogus"),
        ("Tempo 2.x retention", lambda c: c.update(compactor={"compaction": {"block_retention": "168h"}}),
         "compactor: not a documented key of the top level"),
        ("2.x ingester", lambda c: c.update(ingester={"max_block_duration": "5m"}), "ingester"),
        ("2.x local-blocks storage", lambda c: c["metrics_generator"].update(traces_storage={"path": "/x"}),
         "metrics_generator.traces_storage"),
        ("misplaced key", lambda c: c["storage"]["trace"].update(block_retention="168h"),
         "documented at backend_worker.compaction.block_retention"),
        ("wrong type", lambda c: c["server"].update(http_listen_port="3200"), "server.http_listen_port"),
        ("unexpanded block", lambda c: c.update(ingest={"kafka": {"address": "k:9092"}}), "ingest: documented, but"),
    ],
}


# The object-storage variants' own blocks (docker-compose.s3.yml): the S3 clients' field names differ between
# Loki (aws.S3Config) and Tempo (tempodb/backend/s3.Config), an easy slip when copying one to the other.
S3_MUTATIONS = {
    "loki/loki.s3.yml": [
        ("Tempo's field name", lambda c: c["common"]["storage"]["s3"].update(forcepathstyle=True),
         "common.storage.s3.forcepathstyle"),
        ("Tempo's bucket key", lambda c: c["common"]["storage"]["s3"].update(bucket="loki"),
         "common.storage.s3.bucket"),
        ("wrong type", lambda c: c["common"]["storage"]["s3"].update(insecure="true"), "common.storage.s3.insecure"),
    ],
    "tempo/tempo.s3.yml": [
        ("Loki's field name", lambda c: c["storage"]["trace"]["s3"].update(s3forcepathstyle=True),
         "storage.trace.s3.s3forcepathstyle"),
        ("Loki's bucket key", lambda c: c["storage"]["trace"]["s3"].update(bucketnames="tempo"),
         "storage.trace.s3.bucketnames"),
        ("wrong type", lambda c: c["storage"]["trace"]["s3"].update(part_size=[5]), "storage.trace.s3.part_size"),
    ],
}
CASES = ([(p, CONFIGS[p][1], *m) for p, ms in MUTATIONS.items() for m in ms]
         + [(path.split("/")[0], path, *m) for path, ms in S3_MUTATIONS.items() for m in ms])


@pytest.mark.parametrize("product,path,label,mutate,expect", CASES,
                         ids=[f"{Path(c[1]).name}-{c[2].replace(' ', '-')}" for c in CASES])
def test_check_rejects_a_broken_copy(product, path, label, mutate, expect, tmp_path):
    cfg, ref = load(product, path)
    broken = copy.deepcopy(cfg)
    mutate(broken)
    copy_path = tmp_path / Path(path).name
    copy_path.write_text(yaml.safe_dump(broken, sort_keys=False))
    found = set(problems(yaml.safe_load(copy_path.read_text()), ref["tree"])) - set(problems(cfg, ref["tree"]))
    assert any(expect in f for f in found), f"{label}: expected a new finding containing {expect!r}, got {found}"


def _stream_retention(cfg: dict, labels: dict[str, str]) -> str:
    """The period Loki applies to a stream with `labels`: the matching retention_stream rule of highest
    priority, else retention_period (Loki's documented rule; selectors here are label matchers only)."""
    best = None
    for rule in cfg["limits_config"].get("retention_stream", []):
        matchers = re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', rule["selector"])
        assert matchers and rule["selector"].strip("{} ").count(",") + 1 == len(matchers), rule["selector"]
        ok = True
        for name, op, value in matchers:
            v = labels.get(name, "")
            hit = re.fullmatch(value, v) is not None if op in ("=~", "!~") else v == value
            ok &= hit if op in ("=", "=~") else not hit
        if ok and (best is None or rule["priority"] > best["priority"]):
            best = rule
    return best["period"] if best else cfg["limits_config"]["retention_period"]


@pytest.mark.parametrize("environment,period", [
    ("prod", "720h"), ("production", "720h"), ("beta", "168h"), ("staging", "168h"),
    ("local", "24h"), ("dev", "24h"), ("preview-123", "24h"), ("prodx", "24h")])
def test_loki_retention_by_environment(environment, period):
    """Seed 000 part 6: prod 30 days, beta/staging 7 days, dev/local 24 hours, on the label the collector
    puts on every stream (deployment.environment, which Loki indexes as deployment_environment)."""
    cfg = yaml.safe_load((ROOT / "loki" / "loki.yml").read_text())
    assert cfg["compactor"]["retention_enabled"] is True
    assert _stream_retention(cfg, {"deployment_environment": environment, "service_name": "api"}) == period
    for rule in cfg["limits_config"]["retention_stream"]:
        hours = int(rule["period"].rstrip("h"))
        assert hours >= 24, f"Loki refuses a retention_stream period under 24h: {rule}"


# The Loki index labels of issue 16's shared design (docs/logging.md, "Logs in Loki"), by resource attribute.
INDEX_ATTRIBUTES = {"service.name", "deployment.environment", "deployment.environment.name", "platform", "project",
                    "source", "level"}


def test_loki_indexes_exactly_the_bounded_resource_attributes():
    """Loki's default OTLP index list has ids (service.instance.id, k8s.pod.name): it is switched off, and
    exactly the design's attributes are labels; the retention rules select on one of them."""
    cfg = yaml.safe_load((ROOT / "loki" / "loki.yml").read_text())
    res = cfg["limits_config"]["otlp_config"]["resource_attributes"]
    assert res["ignore_defaults"] is True
    indexed = {a for c in res["attributes_config"] if c["action"] == "index_label" for a in c["attributes"]}
    assert indexed == INDEX_ATTRIBUTES
    labels = {a.replace(".", "_") for a in indexed}
    for rule in cfg["limits_config"]["retention_stream"]:
        assert set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", rule["selector"])) <= labels, rule
    # The collector lifts exactly label attributes into the resource of container and Supabase records.
    otel = yaml.safe_load((ROOT / "otelcol" / "config.yaml").read_text())
    assert set(otel["processors"]["groupbyattrs/labels"]["keys"]) <= INDEX_ATTRIBUTES


def test_logging_doc_logql_parses_and_selects_index_labels():
    """docs/logging.md's example queries parse (Grafana's LogQL grammar) and select on index labels only."""
    from tests.conftest import require_tool
    from tests.support import logql

    grammar = require_tool("lezer-logql").parents[3]
    text = (ROOT / "docs" / "logging.md").read_text()
    section = text[text.index("## Logs in Loki"):]
    queries = [q.strip() for block in re.findall(r"```logql\n(.*?)```", section, re.S)
               for q in block.splitlines() if q.strip()]
    assert len(queries) >= 10
    labels = logql.index_labels()
    for q, p in zip(queries, logql.parse_many(queries, grammar), strict=True):
        assert p.ok, f"{q}: {p.error}"
        for sel in p.selectors:
            assert {m.name for m in sel} <= labels, q
    platforms = {m.value for p in logql.parse_many(queries, grammar) for sel in p.selectors for m in sel
                 if m.name == "platform" and m.op == "="}
    assert platforms == {"vercel", "railway", "supabase", "compose"}
