"""The committed dashboards are exactly what grafana/dashboards_src generates, and their thresholds are
the alert rules' thresholds (read from prometheus/rules at generation time, so they cannot drift)."""
from __future__ import annotations

import json
import re
import functools
import shutil

import pytest
import yaml

from tests.dashboards import dashlib

generate = pytest.importorskip("generate", reason="grafana-foundation-sdk not installed: pip install -r "
                                                  "grafana/dashboards_src/requirements.txt")
import lib  # noqa: E402
from rules import Rules  # noqa: E402

EXPECTED = {  # uid -> folder: the uids the alert rules link to, plus the rest of issue 5's list
    "obs-system": "Overview", "obs-slo": "Overview",
    "obs-api": "Applications", "obs-web-vitals": "Applications", "obs-cost": "Applications",
    "obs-database": "Applications",
    "obs-deployments": "Platforms", "obs-railway": "Platforms", "obs-vercel": "Platforms",
    "obs-github": "Platforms", "obs-supabase": "Platforms", "obs-logs": "Platforms",
    "obs-exporters": "Stack", "obs-stack": "Stack",
}


def test_committed_json_is_what_the_generator_makes():
    problems = generate.stale(generate.render())
    assert not problems, "\n".join(problems) + "\nrun scripts/generate-dashboards and commit the result"


def test_check_command_passes():
    assert generate.main(["--check"]) == 0


def test_every_dashboard_in_its_folder():
    found = {uid: d["_path"].split("/")[0] for uid, d in dashlib.dashboards().items()}
    assert found == EXPECTED


def test_alert_dashboard_links_resolve():
    """Every dashboard_url in the rules and SLO specs names a dashboard that exists."""
    uids = set(dashlib.dashboards())
    texts = [p.read_text() for p in (dashlib.ROOT / "prometheus" / "rules").glob("*.yml")]
    texts += [p.read_text() for p in (dashlib.ROOT / "slo").glob("*.yml")]
    linked = {m for t in texts for m in re.findall(r"/d/([a-z0-9-]+)", t)}
    assert linked, "no dashboard_url found in the rules"
    assert linked <= uids, f"alerts link to missing dashboards: {linked - uids}"


def test_sdk_is_pinned_exactly():
    req = (dashlib.SRC / "requirements.txt").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", req, re.M))
    assert "grafana-foundation-sdk" in pins, req
    from importlib.metadata import version
    assert version("grafana-foundation-sdk") == pins["grafana-foundation-sdk"], \
        "installed SDK differs from the pin: pip install -r grafana/dashboards_src/requirements.txt"


# ------------------------------------------------------------------------------------------ thresholds
@functools.lru_cache(maxsize=None)
def _committed() -> dict:
    return dashlib.dashboards()


def _json_panel(uid: str, title: str) -> dict:
    d = _committed()[uid]
    return next(p for p in dashlib.panels(d) if p.get("title") == title)


def _steps(panel: dict) -> list[tuple]:
    return [(s["value"], s["color"]) for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]


@functools.lru_cache(maxsize=None)
def _all_rules() -> tuple:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    out = []
    for f in (dashlib.ROOT / "prometheus" / "rules").glob("*.yml"):
        for g in yaml.load(f.read_text(), Loader=loader).get("groups", []):
            out.extend(g["rules"])
    return tuple(out)


@functools.lru_cache(maxsize=None)
def _independent_numbers(alert: str) -> frozenset[float]:
    """Every number in the alert's expressions, read here without the generator's parser."""
    nums = set()
    for r in _all_rules():
        if r.get("alert") == alert:
            nums |= {float(x) for x in re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?:e[+-]?\d+)?(?![\w.])", r["expr"])}
    return frozenset(nums)


def test_thresholds_come_from_the_rules():
    """Every threshold the generator took from an alert: the value is a number of that alert's expression
    (or a budget/SLO recording it compares with), and it is in the panel's JSON thresholds."""
    r = Rules()
    checked = 0
    budgets = {r.vector_value("obs:cost_budget_usd:per_day"), r.vector_value("obs:llm_token_budget:per_day")}
    objectives = set(r.slo_objectives().values())
    for b in generate.boards():
        for spec in b.panels():
            if not spec.th or not spec.th.sources:
                continue
            panel = _json_panel(b.uid, spec.title)
            values = {v for v, _ in _steps(panel)}
            for s in spec.th.sources:
                shown = lib.ABOVE_ZERO if (s.op == ">" and s.value == 0) else s.value
                if s.op == "==" and s.value == 0:     # "== 0 is down": red below 1
                    shown = 1
                assert shown in values, f"{b.uid} / {spec.title}: {s} not in thresholds {values}"
                alert = s.alert.split(" (")[0]
                derived = budgets | objectives | {round(1 - o, 10) for o in objectives} | {1.0}
                derived |= {x * y for x in budgets for y in _independent_numbers(alert)}
                assert s.value in _independent_numbers(alert) | derived, \
                    f"{b.uid} / {spec.title}: {s.value} is not a threshold of {alert}"
                checked += 1
    assert checked >= 40, f"only {checked} thresholds traced to rules"


def test_changing_a_rule_changes_the_dashboard(tmp_path):
    """Edit a copy of the rules: the generated panel follows (no number is hard-coded)."""
    rules = tmp_path / "rules"
    shutil.copytree(dashlib.ROOT / "prometheus" / "rules", rules)
    apps = rules / "alerts-apps.yml"
    text = apps.read_text()
    assert "error_ratio_rate5m > 0.05" in text
    apps.write_text(text.replace("error_ratio_rate5m > 0.05", "error_ratio_rate5m > 0.07")
                    .replace("p95_rate5m > 0.5", "p95_rate5m > 0.6"))
    budgets = rules / "budgets.yml"
    budgets.write_text(budgets.read_text().replace("vector(100)", "vector(250)"))
    files = generate.render(rules)
    api = json.loads(files[generate.OUT / "Applications" / "obs-api.json"])
    cost = json.loads(files[generate.OUT / "Applications" / "obs-cost.json"])
    p = next(p for p in dashlib.panels(api) if p["title"] == "5xx ratio by endpoint")
    assert 0.07 in {v for v, _ in _steps(p)} and 0.05 not in {v for v, _ in _steps(p)}
    p = next(p for p in dashlib.panels(api) if p["title"] == "p95 latency by endpoint")
    assert 0.6 in {v for v, _ in _steps(p)}
    p = next(p for p in dashlib.panels(cost) if p["title"] == "Spend, last 24 h")
    assert 250 in {v for v, _ in _steps(p)}
    p = next(p for p in dashlib.panels(cost) if p["title"] == "Projected daily spend")
    assert 375 in {v for v, _ in _steps(p)}


def test_missing_alert_fails_generation(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(dashlib.ROOT / "prometheus" / "rules", rules)
    (rules / "alerts-apps.yml").write_text((rules / "alerts-apps.yml").read_text().replace("APIHighLatency", "Renamed"))
    with pytest.raises(LookupError, match="APIHighLatency"):
        generate.render(rules)


# Prometheus annotation options (Grafana's Prometheus annotation editor) that the SDK's generic
# AnnotationQuery model does not carry; everything else must survive the schema model.
PROMETHEUS_ANNOTATION_FIELDS = {"step", "titleFormat", "textFormat", "tagKeys", "useValueForTime"}


def _lost(a, b, path=""):
    out = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a:
            out += [f"{path}/{k}"] if k not in b else _lost(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            out += _lost(x, y, f"{path}[{i}]")
    return out


@pytest.mark.parametrize("uid", sorted(EXPECTED))
def test_dashboards_fit_the_grafana_schema(uid):
    """Every committed dashboard decodes into the SDK's Grafana 11.6 dashboard model (schema version 41)
    and encodes back without losing a field."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard
    d = dict(_committed()[uid])
    d.pop("_path")
    back = json.loads(JSONEncoder(sort_keys=True).encode(Dashboard.from_json(d)))
    lost = [p for p in _lost(d, back) if not (p.startswith("/annotations/list")
                                               and p.rsplit("/", 1)[-1] in PROMETHEUS_ANNOTATION_FIELDS)]
    assert not lost, f"{uid}: fields outside the schema: {lost}"
    assert d["schemaVersion"] == 41
