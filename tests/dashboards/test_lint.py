"""Lint of every provisioned dashboard (the rules grafana/dashboard-linter checks, plus ours): datasource
variables used everywhere, title/description/unit on every panel, `$__rate_interval` in rates, counters
only inside range functions, variables defined, valid PromQL (promtool, the pinned Prometheus), links to
runbooks. LogQL is parsed by the real Loki in test_queries_live.py (Loki has no offline checker)."""
from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from tests.conftest import require_tool
from tests.dashboards import dashlib

DASHBOARDS = dashlib.dashboards()
IDS = sorted(DASHBOARDS)
DS_TYPES = {"datasource": "prometheus", "logs": "loki", "traces": "tempo"}
# Variables every dashboard filters by (issue 5): datasource, environment and service, or the platform's
# own labels where the platform has no such label.
REQUIRED_VARS = {
    "obs-system": {"environment", "service"}, "obs-api": {"environment", "service"},
    "obs-web-vitals": {"environment", "service"}, "obs-cost": {"environment", "service"},
    "obs-database": {"environment", "service", "project"}, "obs-slo": {"service"},
    "obs-deployments": {"environment", "service", "repo"}, "obs-railway": {"environment", "service"},
    "obs-vercel": {"project"}, "obs-github": {"repo"}, "obs-supabase": {"project"},
    "obs-exporters": {"job"}, "obs-stack": {"job"},
    "obs-logs": {"platform", "project", "service_name", "level"},
}
# Counters and histogram series whose names do not say so (the collector's own metrics, scraped).
COUNTERS_WITHOUT_SUFFIX = re.compile(r"^otelcol_(receiver|exporter|processor)_\w+$|^otelcol_process_cpu_seconds$")
# Supabase metrics endpoint gauges whose names end in _count (docs/metrics-contract.md).
GAUGE_EXCEPTIONS = {"otelcol_exporter_queue_size", "otelcol_exporter_queue_capacity",
                    "connection_stats_connection_count", "max_connections_connection_count",
                    "otelcol_exporter_in_flight_requests"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
            "offset", "inf", "nan", "sum", "min", "max", "avg", "count", "topk", "bottomk", "quantile",
            "stddev", "stdvar", "count_values", "group", "le", "atan2"}


def _vars(d: dict) -> dict[str, dict]:
    return {v["name"]: v for v in d.get("templating", {}).get("list", [])}


@pytest.mark.parametrize("uid", IDS)
def test_dashboard_metadata(uid):
    d = DASHBOARDS[uid]
    assert d["title"] and d.get("description"), uid
    assert "obs-stack" in d.get("tags", []), "the dashboards dropdown link finds dashboards by this tag"
    assert d["editable"] is False, "provisioned dashboards are changed in code, not in the UI"
    assert d.get("refresh") and d.get("time", {}).get("from")
    v = _vars(d)
    assert v.get("datasource", {}).get("type") == "datasource" and v["datasource"]["query"] == "prometheus"
    missing = REQUIRED_VARS[uid] - set(v)
    assert not missing, f"{uid}: missing variables {missing}"
    for name, var in v.items():
        assert var.get("description") or var["type"] == "datasource", f"{uid}: variable {name} has no description"
        if var["type"] == "query":
            ref = re.fullmatch(r"\$\{(\w+)\}", var["datasource"]["uid"])
            assert ref and DS_TYPES.get(ref.group(1)) == var["datasource"]["type"] and ref.group(1) in v, (
                f"{uid}: variable {name} uses {var['datasource']}, not one of the dashboard's datasource variables")
            assert var.get("includeAll") and var.get("allValue") == ".*", f"{uid}: {name} needs All = .*"
    titles = [lk["title"] for lk in d.get("links", [])]
    assert "Runbooks" in titles, f"{uid}: no link to the runbooks"


@pytest.mark.parametrize("uid", IDS)
def test_panels(uid):
    d = DASHBOARDS[uid]
    v = _vars(d)
    problems = []
    ids = set()
    cells = set()
    for p in dashlib.panels(d):
        where = f"{uid} / {p.get('title')!r}"
        assert p["id"] not in ids, f"{where}: duplicate panel id"
        ids.add(p["id"])
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, f"{where}: wider than the grid"
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{where}: overlaps another panel"
                cells.add((x, y))
        if p["type"] == "row":
            continue
        if not p.get("title"):
            problems.append(f"{where}: no title")
        if len(p.get("description", "")) < 20:
            problems.append(f"{where}: no description")
        ds = p.get("datasource", {})
        m = re.fullmatch(r"\$\{(\w+)\}", ds.get("uid", ""))
        if not m or m.group(1) not in v or DS_TYPES.get(m.group(1)) != ds.get("type"):
            problems.append(f"{where}: datasource {ds} is not one of the dashboard's datasource variables")
        for t in p.get("targets", []):
            if t.get("datasource") != ds:
                problems.append(f"{where}: target {t.get('refId')} uses datasource {t.get('datasource')}")
        is_logs_or_traces = p["type"] == "logs" or ds.get("type") == "tempo"
        if not is_logs_or_traces and not p.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            problems.append(f"{where}: no unit")
        if not p.get("targets"):
            problems.append(f"{where}: no query")
    assert not problems, "\n".join(problems)


def _range_windows(expr: str) -> list[tuple[str, str]]:
    """(function, window) for every function applied to a range selector: rate(x[5m]) -> ("rate", "5m")."""
    out = []
    for m in re.finditer(r"\[([^\]]+)\]", expr):
        depth, i = 0, m.start() - 1
        while i >= 0:                      # walk back to the opening parenthesis of the call
            c = expr[i]
            if c == ")":
                depth += 1
            elif c == "(":
                if depth == 0:
                    break
                depth -= 1
            i -= 1
        fn = re.search(r"(\w+)\s*$", expr[:max(i, 0)])
        out.append((fn.group(1) if fn else "", m.group(1)))
    return out


def _alert_windows_for(panel: dict) -> set[str]:
    runbooks = {lk["url"] for lk in panel.get("links", [])}
    wins = set()
    for f in (dashlib.ROOT / "prometheus" / "rules").glob("*.yml"):
        for g in yaml.safe_load(f.read_text()).get("groups", []):
            for r in g["rules"]:
                if r.get("annotations", {}).get("runbook_url") in runbooks:
                    wins |= set(re.findall(r"\[(\d+[smhdw])\]", r["expr"]))
    return wins


def _selectors(expr: str):
    """Metric names used as series selectors (not functions, labels or keywords), with what follows. The
    matches' positions are those of `expr` (what is blanked out keeps its length)."""
    blank = lambda m: '"' + " " * (len(m.group(0)) - 2) + '"'  # noqa: E731
    clean = re.sub(r'"(?:[^"\\]|\\.)*"', blank, expr)          # no string contents
    clean = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)",
                   lambda m: " " * len(m.group(0)), clean)
    for m in re.finditer(r"(?<![\w:.$\[])([a-zA-Z_:][\w:]*)\s*(\{[^}]*\})?\s*(\[|\(|)", clean):
        name, _, after = m.groups()
        if after == "(" or name.lower() in KEYWORDS or re.fullmatch(r"\d.*", name):
            continue
        yield name, after, m
    for m in re.finditer(r'\{__name__=~?"([^"]*)"[^}]*\}\s*(\[?)', expr):
        yield "re:" + m.group(1), m.group(2), m


def is_counter_name(name: str) -> bool:
    if name.startswith("re:"):
        return bool(re.search(r"_total|_bucket|_count|_sum|otelcol_receiver|otelcol_exporter_send", name))
    if name in GAUGE_EXCEPTIONS or ":" in name:      # recording rules are already rates or gauges
        return False
    return bool(re.search(r"_(total|bucket|count|sum)$", name) or COUNTERS_WITHOUT_SUFFIX.match(name))


@pytest.mark.parametrize("uid", IDS)
def test_promql_rates_and_counters(uid):
    d = DASHBOARDS[uid]
    defined = set(_vars(d)) | {k for k in dashlib.BUILTINS}
    problems = []
    for q in dashlib.queries(d):
        if q.kind not in ("prometheus", "loki"):
            continue
        used = dashlib.used_variables(q.expr) - {str(i) for i in range(10)}
        if used - defined:
            problems.append(f"{q.where}: undefined variables {used - defined}")
        if q.kind != "prometheus":
            continue
        for fn, win in _range_windows(q.expr):
            if fn in ("rate", "irate"):
                if win != "$__rate_interval" and not (win == "$__range" and q.instant):
                    problems.append(f"{q.where}: {fn}() over [{win}], use $__rate_interval")
            elif fn in ("increase", "changes", "avg_over_time", "max_over_time", "min_over_time"):
                ok = {"$__rate_interval"} | ({"$__range"} if q.instant else set())
                if win not in ok and win not in _alert_windows_for(q.panel_json):
                    problems.append(f"{q.where}: {fn}() over [{win}]: use $__rate_interval/$__range or the "
                                    f"window of the alert the panel mirrors")
            if "$__interval" in win:
                problems.append(f"{q.where}: $__interval in a range selector; use $__rate_interval")
        for name, after, _ in _selectors(q.expr):
            if is_counter_name(name) and after != "[":
                problems.append(f"{q.where}: counter {name} used raw; wrap it in rate()/increase()")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("uid", IDS)
def test_queries_read_collector_names_that_exist_and_cannot_collide(uid):
    """No rate over a multi-name {__name__=~} selector, no `otelcol_..._total`-only name (the policy of
    tests/alerting/rulepolicy.series_name_problems, applied to the dashboards)."""
    from tests.alerting import rulepolicy as rp
    problems = [f"{q.where}: {p}" for q in dashlib.queries(DASHBOARDS[uid]) if q.kind == "prometheus"
                for p in rp.series_name_problems(q.expr)]
    assert not problems, "\n".join(problems)


def test_lint_catches_mistakes():
    """The lint's own checks on known-bad queries."""
    bad = {"sum(http_requests_total)": "counter", "rate(http_requests_total[5m])": "rate-window",
           "histogram_quantile(0.9, sum by (le) (http_request_duration_seconds_bucket))": "counter",
           'sum(rate({__name__=~"x_api_requests_total"}[$__interval]))': "interval"}
    for expr, why in bad.items():
        raw = [n for n, after, _ in _selectors(expr) if is_counter_name(n) and after != "["]
        wins = [w for fn, w in _range_windows(expr) if fn in ("rate", "irate") and w != "$__rate_interval"]
        assert raw or wins, f"lint misses {why}: {expr}"
    good = 'sum by (le) (rate(http_request_duration_seconds_bucket{a=~"$x"}[$__rate_interval]))'
    assert not [n for n, after, _ in _selectors(good) if is_counter_name(n) and after != "["]


def test_every_promql_query_parses(tmp_path):
    """promtool (the pinned Prometheus) parses every PromQL query, variables replaced as Grafana does."""
    promtool = require_tool("prometheus", "promtool")
    rules, where = [], []
    for uid in IDS:
        for q in dashlib.queries(DASHBOARDS[uid]):
            if q.kind == "prometheus":
                rules.append({"record": f"dashboard:query_{len(rules)}:check", "expr": dashlib.substitute(q.expr)})
                where.append(q.where)
    # Variables too (label_values(...) is Grafana's, its selector is PromQL; Loki's: test_logql.py).
    for uid in IDS:
        for v in DASHBOARDS[uid]["templating"]["list"]:
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", str(v.get("query", "")))
            if v["type"] == "query" and v["datasource"]["type"] == "prometheus":
                assert m, f"{uid}: variable {v['name']} query {v['query']!r}"
                rules.append({"record": f"dashboard:var_{len(rules)}:check", "expr": dashlib.substitute(m.group(1))})
                where.append(f"{uid} / variable {v['name']}")
    f = tmp_path / "dashboard-queries.yml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    p = subprocess.run([str(promtool), "check", "rules", "--lint=none", str(f)], capture_output=True, text=True)
    if p.returncode != 0:
        # name the dashboard and panel of each failing query
        msgs = []
        for m in re.finditer(r"group \"dashboards\", rule (\d+)", p.stdout + p.stderr):
            msgs.append(where[int(m.group(1)) - 1])
        pytest.fail(f"promtool rejects queries in: {msgs or 'see output'}\n{p.stdout}\n{p.stderr}")
    assert len(rules) > 150, len(rules)


def test_traceql_shape():
    """Tempo cannot run here (README), so TraceQL gets a structural check; Grafana runs it as traceql."""
    n = 0
    for uid in IDS:
        for q in dashlib.queries(DASHBOARDS[uid]):
            if q.kind == "tempo":
                n += 1
                assert q.expr.count("{") == q.expr.count("}") and q.expr.count("(") == q.expr.count(")"), q.where
                assert re.match(r"\{\s*(resource|span|\.)", q.expr.strip()), q.where
    assert n >= 1


def test_links_resolve():
    """Runbook links name a file in runbooks/; dashboard links name a provisioned dashboard."""
    problems = []
    for uid, d in DASHBOARDS.items():
        links = list(d.get("links", []))
        for p in dashlib.panels(d):
            links += p.get("links", [])
        for link in links:
            url = link.get("url", "")
            m = re.match(r"https://github.com/obs-stack/obs-stack/blob/main/(runbooks/.+|prometheus/.+)$", url)
            if m and not (dashlib.ROOT / m.group(1)).exists():
                problems.append(f"{uid}: link {link['title']!r} -> missing {m.group(1)}")
            m = re.match(r"/d/([\w-]+)", url)
            if m and m.group(1) not in DASHBOARDS:
                problems.append(f"{uid}: link {link['title']!r} -> no dashboard {m.group(1)}")
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------------- deploy markers
# Issue 15: every dashboard where a deployment explains the graphs carries the one marker set
# (grafana/dashboards_src/markers.py), with the board's own filters (var -> label, per platform).
MARKER_FAMILY = "obs:deployment_finished:timestamp_seconds"
MARKER_BOARDS = {
    "obs-system": {p: {"service": "service"} for p in ("railway", "vercel", "github")},
    "obs-api": {p: {"service": "service"} for p in ("railway", "vercel", "github")},
    "obs-slo": {p: {"service": "service"} for p in ("railway", "vercel", "github")},
    "obs-deployments": {"railway": {"service": "service", "environment": "environment"},
                        "vercel": {"service": "service"}, "github": {"service": "repo"}},
    "obs-railway": {"railway": {"service": "service", "project": "project", "environment": "environment"},
                    "vercel": {"service": "service"}, "github": {"service": "service"}},
    "obs-vercel": {"railway": {"service": "project"}, "vercel": {"service": "project", "environment": "target"},
                   "github": {"service": "project"}},
    "obs-github": {"railway": {"service": "repo"}, "vercel": {"service": "repo"},
                   "github": {"service": "repo", "workflow": "workflow"}},
}
MARKERS = {"Deployments succeeded": ("success", "green"), "Deployments failed": ("failure", "red")}


def _marker_selectors(expr: str) -> dict[str, dict[str, str]]:
    """platform -> {label: value or $var} of each family selector in a marker query; a selector without a
    platform matcher stands for all three."""
    out = {}
    for body in re.findall(re.escape(MARKER_FAMILY) + r"\{([^}]*)\}", expr):
        m = dict(re.findall(r'(\w+)=~?"([^"]*)"', body))
        for p in [m.pop("platform")] if "platform" in m else ["railway", "vercel", "github"]:
            assert p not in out, f"platform {p} twice in {expr}"
            out[p] = dict(m)
    return out


def test_marker_selector_parser():
    sel = _marker_selectors(f'1000 * ({MARKER_FAMILY}{{outcome="failure", service=~"$s"}})')
    assert sel == {p: {"outcome": "failure", "service": "$s"} for p in ("railway", "vercel", "github")}
    sel = _marker_selectors(f'1000 * ({MARKER_FAMILY}{{outcome="success", platform="github", service=~"$repo"}})')
    assert sel == {"github": {"outcome": "success", "service": "$repo"}}


@pytest.mark.parametrize("uid", sorted(MARKER_BOARDS))
def test_deploy_markers(uid):
    """Success and failure markers of every platform, each on its own switch and colour (failed = red), one
    marker per deployment (the series value is the time), filtered by the board's variables only."""
    anns = {a["name"]: a for a in DASHBOARDS[uid]["annotations"]["list"] if not a.get("builtIn")}
    for name, (outcome, colour) in MARKERS.items():
        a = anns.get(name)
        assert a, f"{uid}: no {name!r} annotation"
        assert a["enable"] and not a["hide"] and a["iconColor"] == colour, f"{uid} / {name}"
        assert a["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert a["useValueForTime"] is True and a["step"] == "15s", f"{uid} / {name}: one marker per deployment"
        assert re.fullmatch(r"1000 \* \(.*\)", a["expr"]), f"{uid} / {name}: milliseconds, as Grafana reads them"
        sel = _marker_selectors(a["expr"])
        assert set(sel) == {"railway", "vercel", "github"}, f"{uid} / {name}: platforms {set(sel)}"
        for p, m in sel.items():
            assert m.pop("outcome") == outcome, f"{uid} / {name}: {p} outcome"
            want = {label: f"${var}" for label, var in MARKER_BOARDS[uid][p].items()}
            assert m == want, f"{uid} / {name}: {p} filtered by {m}, expected {want}"
        assert all(f"{{{{{k}}}}}" in a["titleFormat"] + a["textFormat"] for k in ("service", "environment", "detail"))
        assert a["tagKeys"] == "platform,environment,status"
    assert "{{status}}" in anns["Deployments failed"]["titleFormat"]
    window = anns.get("Deploy windows")
    assert window and window["iconColor"] == "blue" and window["useValueForTime"] is False
    assert 'alertname="DeploymentInProgress"' in window["expr"]
    assert f'service=~"${MARKER_BOARDS[uid]["railway"]["service"]}"' in window["expr"]
    # nothing else: the old per-platform bands (building, failed-while-latest, workflow increase) are gone
    assert set(anns) == set(MARKERS) | {"Deploy windows"}, f"{uid}: {sorted(anns)}"


def test_marker_titles_are_the_same_everywhere():
    seen = {}
    for uid in MARKER_BOARDS:
        for a in DASHBOARDS[uid]["annotations"]["list"]:
            if a["name"] in MARKERS:
                seen.setdefault(a["name"], set()).add((a["titleFormat"], a["textFormat"], a["tagKeys"]))
    assert all(len(v) == 1 for v in seen.values()) and len(seen) == 2, seen


def test_deployments_are_drawn_by_the_marker_set_only():
    """No dashboard has a deployment annotation of its own (a second, different marker for one deployment)."""
    own = re.compile(r"deployment|DeploymentInProgress|workflow_runs|vercel_latest|railway_deployment")
    for uid, d in DASHBOARDS.items():
        for a in d["annotations"]["list"]:
            if not a.get("builtIn") and own.search(a["expr"]):
                assert uid in MARKER_BOARDS and a["name"] in set(MARKERS) | {"Deploy windows"}, f"{uid} / {a['name']}"
