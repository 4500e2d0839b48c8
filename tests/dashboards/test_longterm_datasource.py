"""The optional long-term Prometheus datasource (docs/forwarding.md, "Grafana") and dashboards that work
against it without edits. Grafana is never run here (the Docker tier runs its image): its provisioning file
is checked against the documented fields, the overlay by the real Compose CLI, and the dashboards by what
Grafana resolves (every Prometheus reference goes through the dashboard's datasource variable)."""
from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.conftest import require_tool
from tests.dashboards import dashlib
from tests.harness import compose
from tests.static import test_grafana_provisioning as prov

PROV = compose.ROOT / "grafana" / "provisioning"
LONGTERM = PROV / "longterm" / "prometheus-longterm.yml"
STUB = PROV / "datasources" / LONGTERM.name
MOUNT_TARGET = f"/etc/grafana/provisioning/datasources/{LONGTERM.name}"
UID = "prometheus-longterm"
SECRETS = "/run/obs-secrets/"
LOCAL_UID = "prometheus"
DASHBOARDS = dashlib.dashboards()


def longterm() -> dict:
    doc = yaml.safe_load(LONGTERM.read_text())
    assert set(doc) <= prov.DATASOURCE_FILE_KEYS and doc["apiVersion"] == 1
    return doc


def test_longterm_datasource_fields():
    doc = longterm()
    # prune: leaving the overlay out (the stub provisions nothing) removes the datasource at the next start.
    assert doc["prune"] is True
    [ds] = doc["datasources"]
    assert set(ds) <= prov.DATASOURCE_KEYS, set(ds) - prov.DATASOURCE_KEYS
    assert set(ds["jsonData"]) <= prov.JSONDATA_KEYS["prometheus"]
    assert ds["uid"] == UID and ds["type"] == "prometheus" and ds["access"] == "proxy"
    assert not ds.get("isDefault"), "the local Prometheus stays the default"
    assert ds["editable"] is False
    local = {d["uid"]: d for d in prov.datasources()}
    assert UID not in local and ds["name"] not in {d["name"] for d in local.values()}
    # URL, user and password from secret files (the password only there, never in the environment).
    assert ds["url"] == f"$__file{{{SECRETS}prometheus_longterm_url}}"
    assert ds["basicAuth"] is True and ds["basicAuthUser"] == f"$__file{{{SECRETS}prometheus_longterm_username}}"
    assert ds["secureJsonData"] == {"basicAuthPassword": f"$__file{{{SECRETS}prometheus_longterm_password}}"}


def test_stub_provisions_nothing_and_is_the_mount_point():
    """Without the overlay Grafana reads the stub: no datasource. The overlay's file mount needs an existing
    file at its target, since the provisioning folder is mounted read-only."""
    assert yaml.safe_load(STUB.read_text()) == {"apiVersion": 1}


def test_only_secret_file_expansions():
    """Grafana expands $NAME, ${NAME} and $__file{...} in provisioning files when it loads them: here only
    $__file of the mounted secrets folder, and no other $ (an unset variable would silently expand to "")."""
    body = "\n".join(line.split("#", 1)[0] for line in LONGTERM.read_text().splitlines())
    refs = re.findall(r"\$(__\w+\{[^}]*\}|\{[^}]*\}|\w*)", body)
    files = {r[len("__file{"):-1] for r in refs if r.startswith("__file{")}
    assert refs and len(files) == len(refs) == 3, refs
    assert {f.rsplit("/", 1)[0] + "/" for f in files} == {SECRETS}
    grafana = compose.services()["grafana"]
    assert {m.target: m.source for m in grafana.mounts}[SECRETS.rstrip("/")] == str(compose.ROOT / "secrets")


def test_overlay_mounts_the_datasource_over_the_stub():
    require_tool("compose")
    from tests.static.test_compose_cli import compose_config
    p = compose_config("docker-compose.yml", "docker-compose.forward.yml")
    assert p.returncode == 0, p.stderr
    grafana = json.loads(p.stdout)["services"]["grafana"]
    mounts = {v["target"]: v for v in grafana["volumes"]}
    assert mounts[MOUNT_TARGET]["source"] == str(LONGTERM) and mounts[MOUNT_TARGET].get("read_only")
    assert mounts["/etc/grafana/provisioning"]["source"] == str(PROV), "the base provisioning mount stays"
    assert mounts["/run/obs-secrets"]["source"] == str(compose.ROOT / "secrets")


# ------------------------------------------------------------------------------- dashboards, either datasource
def prometheus_refs(node, path=""):
    """(path, datasource ref) of every Prometheus datasource reference in a dashboard."""
    if isinstance(node, dict):
        if node.get("type") == "prometheus" and "uid" in node:
            yield path, node
        for k, v in node.items():
            yield from prometheus_refs(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from prometheus_refs(v, f"{path}[{i}]")


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_dashboard_reads_whichever_prometheus_the_variable_names(uid):
    d = DASHBOARDS[uid]
    variables = {v["name"]: v for v in d["templating"]["list"]}
    var = variables["datasource"]
    # Every Prometheus datasource is offered (no regex narrowing it), the local one is the default.
    assert var["type"] == "datasource" and var["query"] == "prometheus" and not var.get("regex")
    assert var["current"]["value"] == LOCAL_UID and not var.get("hide")
    assert not var.get("skipUrlSync"), "?var-datasource=prometheus-longterm must select it"
    refs = list(prometheus_refs(d))  # none in obs-logs (Loki only, bar the variable)
    fixed = [p for p, ref in refs if ref["uid"] != "${datasource}"]
    assert not fixed, f"{uid}: Prometheus references not through $datasource: {fixed[:5]}"
    text = json.dumps(d)
    for spelled in (f'"uid": "{LOCAL_UID}"', f"%22uid%22%3A%22{LOCAL_UID}%22", f"%22datasource%22%3A%22{LOCAL_UID}%22"):
        assert spelled not in text, f"{uid}: a link or query pinned to the local Prometheus ({spelled})"
    # Moving to another dashboard keeps the choice.
    nav = [lk for lk in d.get("links", []) if lk["type"] == "dashboards"]
    assert nav and all(lk["includeVars"] for lk in nav)


def test_the_reference_walk_finds_the_queries():
    """The check above would pass vacuously if prometheus_refs found nothing."""
    with_refs = [uid for uid, d in DASHBOARDS.items() if list(prometheus_refs(d))]
    assert len(with_refs) >= len(DASHBOARDS) - 1, sorted(set(DASHBOARDS) - set(with_refs))
