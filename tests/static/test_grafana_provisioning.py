"""Grafana provisioning files checked against the fields Grafana documents for provisioning
(administration/provisioning: data sources and dashboard providers), since Grafana itself cannot be
built here. Unknown keys are typos Grafana would silently ignore, so they fail here."""
from __future__ import annotations

import urllib.parse

import yaml

from tests.harness import compose

PROV = compose.ROOT / "grafana" / "provisioning"

DATASOURCE_FILE_KEYS = {"apiVersion", "datasources", "deleteDatasources", "prune"}
DATASOURCE_KEYS = {"name", "type", "access", "orgId", "uid", "url", "user", "database", "basicAuth",
                   "basicAuthUser", "withCredentials", "isDefault", "jsonData", "secureJsonData", "version",
                   "editable"}
JSONDATA_KEYS = {
    "prometheus": {"httpMethod", "timeInterval", "queryTimeout", "manageAlerts", "exemplarTraceIdDestinations",
                   "prometheusType", "prometheusVersion", "cacheLevel", "incrementalQuerying",
                   "disableRecordingRules", "customQueryParameters", "defaultEditor", "disableMetricsLookup"},
    "loki": {"maxLines", "derivedFields", "timeout", "manageAlerts"},
    "tempo": {"tracesToLogsV2", "tracesToMetrics", "tracesToProfiles", "serviceMap", "nodeGraph", "search",
              "lokiSearch", "traceQuery", "spanBar", "streamingEnabled"},
    "alertmanager": {"implementation", "handleGrafanaManagedAlerts"},
}
NESTED_KEYS = {
    "exemplarTraceIdDestinations": {"name", "datasourceUid", "url", "urlDisplayLabel"},
    "derivedFields": {"name", "matcherRegex", "matcherType", "url", "urlDisplayLabel", "datasourceUid"},
    "tracesToLogsV2": {"datasourceUid", "spanStartTimeShift", "spanEndTimeShift", "tags", "filterByTraceID",
                       "filterBySpanID", "customQuery", "query"},
    "tracesToMetrics": {"datasourceUid", "spanStartTimeShift", "spanEndTimeShift", "tags", "queries"},
    "serviceMap": {"datasourceUid"},
    "nodeGraph": {"enabled"},
    "lokiSearch": {"datasourceUid"},
    # Tempo "Provision the data source" example (datasources/tempo/configure-tempo-data-source).
    "search": {"hide", "filters"},
    "traceQuery": {"timeShiftEnabled", "spanStartTimeShift", "spanEndTimeShift"},
    "spanBar": {"type", "tag"},
    "streamingEnabled": {"search", "metrics"},
}
# Lists of objects inside the nested blocks: tags are {key, value} (value = the label name on the other
# side), trace-to-metrics queries are {name, query}.
NESTED_LIST_KEYS = {
    ("tracesToLogsV2", "tags"): {"key", "value"},
    ("tracesToMetrics", "tags"): {"key", "value"},
    ("tracesToMetrics", "queries"): {"name", "query"},
}
PROVIDER_FILE_KEYS = {"apiVersion", "providers"}
PROVIDER_KEYS = {"name", "orgId", "folder", "folderUid", "type", "disableDeletion", "updateIntervalSeconds",
                 "allowUiUpdates", "options"}
PROVIDER_OPTION_KEYS = {"path", "foldersFromFilesStructure"}


def datasources() -> list[dict]:
    doc = yaml.safe_load((PROV / "datasources" / "datasources.yml").read_text())
    assert set(doc) <= DATASOURCE_FILE_KEYS, set(doc) - DATASOURCE_FILE_KEYS
    assert doc["apiVersion"] == 1
    return doc["datasources"]


def test_datasource_fields_documented():
    for ds in datasources():
        assert set(ds) <= DATASOURCE_KEYS, f"{ds['name']}: unknown keys {set(ds) - DATASOURCE_KEYS}"
        jd = ds.get("jsonData", {})
        allowed = JSONDATA_KEYS[ds["type"]]
        assert set(jd) <= allowed, f"{ds['name']}: unknown jsonData keys {set(jd) - allowed}"
        for k, v in jd.items():
            if k in NESTED_KEYS:
                for item in v if isinstance(v, list) else [v]:
                    assert set(item) <= NESTED_KEYS[k], f"{ds['name']}.{k}: unknown {set(item) - NESTED_KEYS[k]}"
                    for sub, allowed_sub in NESTED_LIST_KEYS.items():
                        if sub[0] == k and sub[1] in item:
                            for entry in item[sub[1]]:
                                assert isinstance(entry, dict) and set(entry) <= allowed_sub, \
                                    f"{ds['name']}.{k}.{sub[1]}: {entry} (allowed {allowed_sub})"
        assert ds["access"] == "proxy"
        assert "secureJsonData" not in ds, "no secrets in provisioning files"


def test_fixed_uids_and_references_resolve():
    ds = datasources()
    uids = {d["uid"] for d in ds}
    assert uids == {"prometheus", "loki", "tempo", "alertmanager"}
    assert sum(1 for d in ds if d.get("isDefault")) == 1

    def refs(obj):
        if isinstance(obj, dict):
            for k, v in obj.items():
                if k == "datasourceUid":
                    yield v
                else:
                    yield from refs(v)
        elif isinstance(obj, list):
            for v in obj:
                yield from refs(v)

    for d in ds:
        for ref in refs(d.get("jsonData", {})):
            assert ref in uids, f"{d['name']} links to unknown datasource uid {ref}"


def test_datasource_urls_point_at_compose_services():
    services = compose.services()
    for d in datasources():
        u = urllib.parse.urlparse(d["url"])
        assert u.hostname in services, f"{d['name']}: {u.hostname} is not a compose service"
        health = services[u.hostname].health_url
        assert health and urllib.parse.urlparse(health).port == u.port, \
            f"{d['name']}: port {u.port} is not where {u.hostname} listens ({health})"


def test_dashboard_provider():
    doc = yaml.safe_load((PROV / "dashboards" / "dashboards.yml").read_text())
    assert set(doc) <= PROVIDER_FILE_KEYS and doc["apiVersion"] == 1
    mounts = {m.target: m.source for m in compose.services()["grafana"].mounts}
    for p in doc["providers"]:
        assert set(p) <= PROVIDER_KEYS, set(p) - PROVIDER_KEYS
        assert set(p["options"]) <= PROVIDER_OPTION_KEYS
        assert p["type"] == "file"
        assert p["options"]["path"] in mounts, "dashboards path is not mounted into the Grafana container"


def test_provisioning_dir_is_mounted():
    mounts = {m.target: m.source for m in compose.services()["grafana"].mounts}
    assert mounts["/etc/grafana/provisioning"] == str(PROV)


def test_literal_dollars_are_escaped():
    """Grafana expands $VAR and ${VAR} from its environment in provisioning files; a literal $ (Grafana
    and PromQL variables such as ${__value.raw}, $__tags) must be written $$ or it silently vanishes."""
    text = (PROV / "datasources" / "datasources.yml").read_text()
    body = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    bare = [m.start() for m in __import__("re").finditer(r"(?<!\$)\$(?!\$)", body.replace("$$", ""))]
    assert not bare, f"unescaped $ in datasources.yml at {bare}"


def test_every_signal_links_to_the_others():
    """Issue 5: metrics -> traces (exemplars), logs -> traces (trace_id), traces -> logs, traces -> metrics,
    service graph and node graph, and Alertmanager provisioned."""
    ds = {d["uid"]: d for d in datasources()}
    prom, loki, tempo = ds["prometheus"]["jsonData"], ds["loki"]["jsonData"], ds["tempo"]["jsonData"]
    assert any(d["datasourceUid"] == "tempo" and d["name"] == "trace_id" for d in prom["exemplarTraceIdDestinations"])
    assert any(f["datasourceUid"] == "tempo" and f["matcherType"] == "label" and f["matcherRegex"] == "trace_id"
               for f in loki["derivedFields"]), "Loki's trace_id is structured metadata: matcherType label"
    assert tempo["tracesToLogsV2"]["datasourceUid"] == "loki" and tempo["tracesToLogsV2"]["filterByTraceID"]
    assert tempo["tracesToMetrics"]["datasourceUid"] == "prometheus" and tempo["tracesToMetrics"]["queries"]
    assert tempo["serviceMap"]["datasourceUid"] == "prometheus" and tempo["nodeGraph"]["enabled"] is True
    assert tempo["lokiSearch"]["datasourceUid"] == "loki"
    assert ds["alertmanager"]["jsonData"]["implementation"] == "prometheus"
    # the metrics Prometheus needs for exemplars: the exemplar store (compose flag)
    assert "--enable-feature=exemplar-storage" in compose.services()["prometheus"].command


def test_dashboard_files_fit_the_provider():
    """foldersFromFilesStructure: one sub-folder per Grafana folder, no files at the top; uids unique
    and within Grafana's 40 characters; no numeric id (Grafana assigns it)."""
    import json
    root = compose.ROOT / "grafana" / "dashboards"
    files = sorted(root.rglob("*.json"))
    assert files, "no dashboards provisioned"
    uids = {}
    for f in files:
        rel = f.relative_to(root)
        assert len(rel.parts) == 2, f"{rel}: dashboards live one folder deep (the folder is Grafana's folder)"
        d = json.loads(f.read_text())
        assert d.get("id") is None, f"{rel}: provisioned dashboards carry no id"
        assert d["uid"] and len(d["uid"]) <= 40 and d["uid"] not in uids, rel
        assert f.stem == d["uid"], f"{rel}: file name and uid differ"
        uids[d["uid"]] = rel
