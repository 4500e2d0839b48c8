"""Building blocks shared by every dashboard: datasource and query variables, queries, panels with
thresholds taken from the alert rules, runbook and Explore links. Built with grafana-foundation-sdk and
encoded to the JSON that Grafana's file provider loads."""
from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field

from grafana_foundation_sdk.builders import (bargauge, dashboard as db, gauge, heatmap, logs, loki, piechart,
                                             prometheus, stat, table, tempo, timeseries)
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import piechart as pm
from grafana_foundation_sdk.models import prometheus as prom_m
from grafana_foundation_sdk.models import tempo as tempo_m

from rules import SEVERITY_COLOURS, Rules, Step

REPO_RUNBOOKS = "https://github.com/obs-stack/obs-stack/blob/main/runbooks/"

# Datasource variables: every panel and query points at one of these, never at a fixed uid, so a
# dashboard works against another Prometheus/Loki/Tempo by switching the variable.
DS_VARS = {"prometheus": "datasource", "loki": "logs", "tempo": "traces"}
DS_DEFAULT = {"prometheus": "prometheus", "loki": "loki", "tempo": "tempo"}
DS_LABEL = {"prometheus": "Metrics", "loki": "Logs", "tempo": "Traces"}
# With forwarding on (docker-compose.forward.yml) Grafana also has the long-term store as a Prometheus
# datasource, uid prometheus-longterm: the same dashboards read it when the variable is switched to it.
DS_DESCRIPTION = {
    "prometheus": "Metrics datasource (prometheus): the local Prometheus by default, or Prometheus (long-term) "
                  "when forwarding is on (docs/forwarding.md).",
    "loki": "Logs datasource (loki).",
    "tempo": "Traces datasource (tempo).",
}


def ds(kind: str) -> dm.DataSourceRef:
    return dm.DataSourceRef(type_val=kind, uid="${%s}" % DS_VARS[kind])


# ---------------------------------------------------------------------------------------------- queries
@dataclass
class Q:
    """One panel query. kind: prometheus | loki | tempo. instant: evaluated once over the time range
    (stat, gauge, table, pie), else a range query."""
    expr: str
    legend: str | None = None
    kind: str = "prometheus"
    instant: bool = False
    fmt: str | None = None          # prometheus format: table | heatmap
    exemplar: bool = False

    def builder(self, ref: str):
        if self.kind == "prometheus":
            b = prometheus.Dataquery().expr(self.expr).ref_id(ref).datasource(ds("prometheus"))
            b = b.instant() if self.instant else b.range()
            if self.legend:
                b = b.legend_format(self.legend)
            if self.fmt:
                b = b.format(prom_m.PromQueryFormat(self.fmt))
            if self.exemplar:
                b = b.exemplar(True)
            return b
        if self.kind == "loki":
            b = loki.Dataquery().expr(self.expr).ref_id(ref).datasource(ds("loki"))
            if self.instant:
                b = b.instant(True)
            else:
                b = b.range(True)
            if self.legend:
                b = b.legend_format(self.legend)
            return b
        if self.kind == "tempo":
            return (tempo.TempoQuery().query(self.expr).query_type("traceql").ref_id(ref).limit(20)
                    .table_type(tempo_m.SearchTableType.TRACES).datasource(ds("tempo")))
        raise ValueError(self.kind)


def P(expr: str, legend: str | None = None, **kw) -> Q:
    return Q(" ".join(expr.split()), legend, "prometheus", **kw)


def L(expr: str, legend: str | None = None, **kw) -> Q:
    return Q(" ".join(expr.split()), legend, "loki", **kw)


def T(expr: str) -> Q:
    return Q(expr, None, "tempo")


# ---------------------------------------------------------------------------------------------- thresholds
@dataclass
class Th:
    """Threshold steps plus where each number came from (the alert rung), kept for the tests."""
    steps: list[tuple[float | None, str]]
    sources: list[Step] = field(default_factory=list)

    def builder(self):
        return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
            [dm.Threshold(value=v, color=c) for v, c in self.steps])


ABOVE_ZERO = 1e-9
# A 0/1 `up`-style stat shown as DOWN / UP.
UP_MAP = [{"type": "value", "options": {"0": {"text": "DOWN", "color": "red", "index": 0},
                                         "1": {"text": "UP", "color": "green", "index": 1}}}]


def th_alert(steps: list[Step], base: str = "green") -> Th:
    """Higher is worse: green below the lowest rung, then each rung's severity colour at its value."""
    out: list[tuple[float | None, str]] = [(None, base)]
    for s in sorted(steps, key=lambda s: s.value):
        # Grafana colours a value from the step at or below it; "> 0" starts just above zero.
        v = ABOVE_ZERO if (s.op == ">" and s.value == 0) else s.value
        out.append((v, SEVERITY_COLOURS[s.severity]))
    return Th(out, list(steps))


def th_floor(value: float, source: Step | None = None, colour: str = "red") -> Th:
    """Lower is worse: red below `value` (an objective or a `== 0` health check), green from it."""
    return Th([(None, colour), (value, "green")], [source] if source else [])


def th_static(*steps: tuple[float | None, str]) -> Th:
    """Thresholds with no alert behind them (documented external guidance, e.g. Web Vitals)."""
    return Th(list(steps))


# ---------------------------------------------------------------------------------------------- links
def runbook_links(steps: list[Step] | None = None, urls: list[tuple[str, str]] | None = None) -> list:
    seen, out = set(), []
    for s in steps or []:
        if s.runbook and s.runbook not in seen:
            seen.add(s.runbook)
            out.append((f"Runbook: {s.alert}", s.runbook))
    for title, url in urls or []:
        if url not in seen:
            seen.add(url)
            out.append((title, url))
    return out


def explore_url(kind: str, expr: str) -> str:
    """An Explore link with the query (and the dashboard's variables, interpolated by Grafana)."""
    pane = {"datasource": DS_DEFAULT[kind],
            "queries": [{"refId": "A", "expr": expr, "datasource": {"type": kind, "uid": DS_DEFAULT[kind]}}
                        if kind != "tempo" else
                        {"refId": "A", "query": expr, "queryType": "traceql",
                         "datasource": {"type": kind, "uid": DS_DEFAULT[kind]}}],
            "range": {"from": "now-1h", "to": "now"}}
    panes = json.dumps({"a": pane}, separators=(",", ":"))
    return "/explore?schemaVersion=1&orgId=1&panes=" + urllib.parse.quote(panes, safe="$")


def dash_url(uid: str) -> str:
    return f"/d/{uid}?${{__url_time_range}}&${{__all_variables}}"


# ---------------------------------------------------------------------------------------------- panels
@dataclass
class PanelSpec:
    kind: str                       # timeseries | stat | gauge | table | piechart | bargauge | heatmap | logs | traces
    title: str
    description: str
    unit: str | None
    queries: list[Q]
    th: Th | None = None
    links: list[tuple[str, str]] = field(default_factory=list)
    w: int = 12
    h: int = 8
    stack: bool = False
    minv: float | None = None
    maxv: float | None = None
    mappings: list | None = None
    bars: bool = False
    legend_table: bool = False
    color_background: bool = False


def _apply_common(b, spec: PanelSpec, pid: int):
    b = b.id(pid).title(spec.title).description(spec.description).span(spec.w).height(spec.h)
    if spec.kind in ("logs", "traces"):
        b = b.datasource(ds("loki" if spec.kind == "logs" else "tempo"))
    else:
        b = b.datasource(ds(spec.queries[0].kind))
    for i, q in enumerate(spec.queries):
        b = b.with_target(q.builder(chr(ord("A") + i)))
    if spec.links:
        b = b.links([db.DashboardLink(t).type(dm.DashboardLinkType.LINK).url(u).target_blank(True)
                     for t, u in spec.links])
    if spec.kind not in ("logs", "traces"):
        if spec.unit:
            b = b.unit(spec.unit)
        if spec.th:
            b = b.thresholds(spec.th.builder())
        if spec.minv is not None:
            b = b.min(spec.minv)
        if spec.maxv is not None:
            b = b.max(spec.maxv)
        if spec.mappings:
            b = b.mappings(spec.mappings)
    return b


def build_panel(spec: PanelSpec, pid: int):
    k = spec.kind
    if k == "timeseries":
        b = timeseries.Panel()
        b = _apply_common(b, spec, pid)
        b = b.fill_opacity(15 if not spec.stack else 60).line_width(1)
        if spec.bars:
            b = b.draw_style(cm.GraphDrawStyle.BARS)
        if spec.stack:
            b = b.stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL))
        if spec.th and spec.th.sources:
            b = b.thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED))
        legend = cb.VizLegendOptions().show_legend(True).placement(cm.LegendPlacement.BOTTOM)
        legend = legend.display_mode(cm.LegendDisplayMode.TABLE if spec.legend_table else cm.LegendDisplayMode.LIST)
        if spec.legend_table:
            legend = legend.calcs(["mean", "max", "lastNotNull"])
        return b.legend(legend)
    if k == "stat":
        b = _apply_common(stat.Panel(), spec, pid)
        b = b.graph_mode(cm.BigValueGraphMode.AREA).color_mode(
            cm.BigValueColorMode.BACKGROUND if spec.color_background else cm.BigValueColorMode.VALUE)
        return b.reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    if k == "gauge":
        b = _apply_common(gauge.Panel(), spec, pid)
        return b.reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    if k == "bargauge":
        b = _apply_common(bargauge.Panel(), spec, pid)
        return (b.reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
                .orientation(cm.VizOrientation.HORIZONTAL).display_mode(cm.BarGaugeDisplayMode.GRADIENT))
    if k == "piechart":
        b = _apply_common(piechart.Panel(), spec, pid)
        return (b.reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
                .pie_type(pm.PieChartType.DONUT))
    if k == "table":
        b = _apply_common(table.Panel(), spec, pid)
        if len(spec.queries) > 1:
            b = b.with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
        return b.with_transformation(dm.DataTransformerConfig(
            id_val="organize", options={"excludeByName": {"Time": True}, "renameByName": {}}))
    if k == "heatmap":
        b = _apply_common(heatmap.Panel(), spec, pid)
        return b
    if k == "logs":
        b = _apply_common(logs.Panel(), spec, pid)
        return b.show_time(True).wrap_log_message(True).sort_order(cm.LogsSortOrder.DESCENDING).enable_log_details(True)
    if k == "traces":
        b = _apply_common(table.Panel(), spec, pid)
        return b
    raise ValueError(k)


# ---------------------------------------------------------------------------------------------- board
@dataclass(frozen=True)
class Annotation:
    name: str
    expr: str
    colour: str
    title: str
    text: str = ""
    tags: str = ""
    value_is_time: bool = False
    step: str = "60s"


class Board:
    """One dashboard: metadata, variables, rows of PanelSpecs; `build()` gives the provisioned JSON."""

    def __init__(self, rules: Rules, uid: str, title: str, folder: str, description: str, questions: list[str],
                 tags: list[str], refresh: str = "30s", time_from: str = "now-1h",
                 datasources: tuple[str, ...] = ("prometheus",)):
        self.rules = rules
        self.uid, self.title, self.folder = uid, title, folder
        self.description, self.questions, self.tags = description, questions, tags
        self.refresh, self.time_from = refresh, time_from
        self.datasources = datasources
        self.variables: list = []
        self.variable_queries: dict[str, str] = {}   # name -> label_values(...) for the tests
        self.items: list[tuple[str, object]] = []   # ("row", title) | ("panel", PanelSpec)
        self.annotations: list[Annotation] = []
        self.links: list[tuple[str, str]] = []

    # variables -----------------------------------------------------------------------------
    def var(self, name: str, label: str, metric: str, label_name: str | None = None, description: str = "",
            multi: bool = True):
        """A Prometheus label_values() variable, All = `.*` (use it as `label=~"$name"`)."""
        q = f"label_values({metric}, {label_name or name})"
        self.variable_queries[name] = q
        v = (db.QueryVariable(name).label(label).description(description or f"Filter by {label.lower()}.")
             .datasource(ds("prometheus")).query(q).refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
             .sort(dm.VariableSort.ALPHABETICAL_ASC).multi(multi).include_all(True).all_value(".*")
             .current(dm.VariableOption(selected=True, text="All", value="$__all")))
        self.variables.append(v)
        return self

    def row(self, title: str):
        self.items.append(("row", title))
        return self

    def add(self, *specs: PanelSpec):
        for s in specs:
            self.items.append(("panel", s))
        return self

    def annotate(self, name: str, expr: str, colour: str, title: str, text: str = "", tags: str = "",
                 value_is_time: bool = False, step: str = "60s"):
        """A Prometheus annotation query. value_is_time: Grafana's "series value as timestamp" (the value is
        the event's time in ms; each distinct value is one marker); else a band wherever the value is > 0.
        Events closer than `step` (or the step Grafana picks for a long range) merge into one region."""
        self.annotations.append(Annotation(name, " ".join(expr.split()), colour, title, text, tags, value_is_time,
                                           step))
        return self

    def link(self, title: str, url: str):
        self.links.append((title, url))
        return self

    # build ---------------------------------------------------------------------------------
    def panels(self) -> list[PanelSpec]:
        return [s for k, s in self.items if k == "panel"]

    def builder(self):
        d = (db.Dashboard(self.title).uid(self.uid).description(self.description).tags(self.tags)
             .refresh(self.refresh).time(self.time_from, "now").timezone("browser").readonly()
             .tooltip(dm.DashboardCursorSync.CROSSHAIR))
        ds_vars = [db.DatasourceVariable(DS_VARS[k]).label(DS_LABEL[k]).type(k)
                   .description(DS_DESCRIPTION[k])
                   .current(dm.VariableOption(selected=True, text=DS_DEFAULT[k].capitalize(), value=DS_DEFAULT[k]))
                   for k in self.datasources]
        d = d.variables(ds_vars + self.variables)
        for a in self.annotations:
            d = d.annotation(db.AnnotationQuery().name(a.name).datasource(ds("prometheus")).enable(True)
                             .icon_color(a.colour).expr(a.expr).target(db.AnnotationTarget()))
        links = [db.DashboardLink("Dashboards").type(dm.DashboardLinkType.DASHBOARDS).tags(["obs-stack"])
                 .as_dropdown(True).include_vars(True).keep_time(True)]
        links += [db.DashboardLink(t).type(dm.DashboardLinkType.LINK).url(u).target_blank(True).icon("doc")
                  for t, u in self.links + [("Runbooks", REPO_RUNBOOKS)]]
        d = d.links(links)
        pid = 0
        row = None
        for kind, item in self.items:
            pid += 1
            if kind == "row":
                if row is not None:
                    d = d.with_row(row[0])
                    for p in row[1]:
                        d = d.with_panel(p)
                row = (db.Row(item).id(pid), [])
            else:
                p = build_panel(item, pid)
                if row is None:
                    d = d.with_panel(p)
                else:
                    row[1].append(p)
        if row is not None:
            d = d.with_row(row[0])
            for p in row[1]:
                d = d.with_panel(p)
        return d

    def to_json(self) -> dict:
        raw = json.loads(JSONEncoder(sort_keys=True).encode(self.builder().build()))
        self._post(raw)
        return raw

    def _post(self, raw: dict) -> None:
        """What the SDK leaves out: the options of Prometheus annotations (Grafana's Prometheus annotation
        editor: step, title, text, tag keys, series value as timestamp) and the built-in annotations."""
        anns = raw.setdefault("annotations", {}).setdefault("list", [])
        for a, spec in zip(anns, self.annotations, strict=True):
            a["step"] = spec.step
            a["titleFormat"] = spec.title
            if spec.text:
                a["textFormat"] = spec.text
            if spec.tags:
                a["tagKeys"] = spec.tags
            a["useValueForTime"] = spec.value_is_time
            a.pop("target", None)
        anns.insert(0, {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
                        "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
                        "type": "dashboard"})


def questions_md(boards: list[Board]) -> str:
    lines = []
    for b in boards:
        lines.append(f"- **{b.title}** (`{b.folder}/{b.uid}`, `/d/{b.uid}`): " + " ".join(b.questions))
    return "\n".join(lines) + "\n"
