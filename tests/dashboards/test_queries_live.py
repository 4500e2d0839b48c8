"""Every PromQL dashboard query against the real stack: the native binaries of Prometheus, the collector
and Alertmanager with the shipped configs and rules, fed by the demo app + load generator and the four
platform bridges reading the API simulator. Each PromQL panel query must return data (each failure
names dashboard and panel); variables must have values; counters (by Prometheus' own metadata) appear only
inside range functions; the exemplar and traces-to-metrics correlations find what they link on. LogQL and
TraceQL panels and the Loki/Tempo correlations run through Grafana on the real images in the Docker tier
(tests/docker): Loki and Tempo are never built here (AGPL). Annotations: test_markers_live.py.

One stack for this module and test_markers_live.py (livestack.py), bounded to about 4 minutes."""
from __future__ import annotations

import re
import time
import urllib.parse

import yaml

from tests.dashboards import dashlib
from tests.dashboards.livestack import Live, get_json as _get, has_value as _has_value
from tests.dashboards.test_lint import _selectors
from tests.harness import compose

# How long a query that is empty after the readiness checks is re-run before it fails: four scrape
# intervals, and the loadgen's next broken report (one every 200 scenarios at 8 rps: 25 s) fits in it.
RETRY_SECONDS = 60.0

# Queries that are legitimately empty on healthy demo data. Keep this short; every entry says why.
# (Supabase's own metrics endpoint is scraped in the demo: job supabase-metrics-demo, targets and key written
# by the simulator. The smoke panel has the simulator's "Smoke tests" workflow, run after each successful
# Deploy, and the blackbox-smoke probe of the demo app.)
ALLOWED_EMPTY = {
    ("obs-slo", "Burn-rate alerts"):
        "pending/firing SLO burn-rate alerts only: none while every budget burns slowly (a healthy service; the "
        "compose default DEMO_ENVIRONMENT=local is in no SLO at all). Here, as prod, the demo's deliberately slow "
        "endpoints may or may not have made the latency burn-rate alert pending by the time the query runs",
}


def _all_queries():
    out = []
    for d in dashlib.dashboards().values():
        out.extend(q for q in dashlib.queries(d, with_annotations=False))
    return out


def _run(lv: Live, q: dashlib.Query) -> list:
    expr = dashlib.substitute(q.expr)
    if q.kind == "prometheus":
        return lv.prom_instant(expr) if q.instant else lv.prom_range(expr)
    raise ValueError(q.kind)


def _diagnose(lv: Live, q: dashlib.Query) -> str:
    """What the failing query's selectors hold over the test's range: which series, and their raw samples
    (a flaky 'no data' is then explained by the CI log alone)."""
    if q.kind != "prometheus":
        return ""
    out = []
    expr = dashlib.substitute(q.expr)
    for name, _, m in _selectors(expr):
        if name.startswith("re:"):
            continue
        sel = expr[m.start(1):m.end(2) if m.group(2) else m.end(1)]
        try:
            res = lv.prom_range(sel)
        except AssertionError as e:
            out.append(f"      {sel}: {e}")
            continue
        out.append(f"      {sel}: {len(res)} series")
        for s in res[:6]:
            vals = [v for _, v in s["values"]]
            out.append(f"        {s['metric']}: {len(vals)} samples, first {vals[:3]}, last {vals[-3:]}")
    return "\n".join(out)


def _check(lv: Live, q: dashlib.Query, empty_ok: set) -> str | None:
    """None when the query returns data (or is allowed to be empty: noted in empty_ok); else what is wrong."""
    try:
        res = _run(lv, q)
    except AssertionError as e:
        return f"{q.where}: query fails: {e}\n    {q.expr}"
    if _has_value(res) if q.kind == "prometheus" else bool(res):
        return None
    if (q.dashboard, q.panel) in ALLOWED_EMPTY:
        empty_ok.add((q.dashboard, q.panel))
        return None
    return f"{q.where}: no data\n    {q.expr}"


def _backend_own(q: dashlib.Query) -> bool:
    """A PromQL panel on Loki's or Tempo's own metrics: only the real services expose them (the native
    stack runs an OTLP sink in their place), so it runs through Grafana in the Docker tier."""
    return any(name.startswith(("loki_", "tempo_", "tempodb_")) for name, _, _ in _selectors(dashlib.substitute(q.expr)))


def test_backend_own_panels_are_few_and_real():
    own = [q.where for q in _all_queries() if q.kind == "prometheus" and _backend_own(q)]
    assert 1 <= len(own) <= 6, own


def test_every_panel_query_returns_data(live):
    """Panels whose data is sparse by design (the demo's 5xx are 0.4% of requests, a few per minute) may
    need one more scrape than the readiness checks above waited for: an empty query is re-run every 5 s
    until RETRY_SECONDS have passed, then it fails with what its series hold. The log names every query
    that needed a retry, so a panel that is slow to fill shows up before it becomes a failure."""
    queries = [q for q in _all_queries() if q.kind == "prometheus" and not _backend_own(q)]
    empty_ok: set = set()
    t0 = time.monotonic()
    # Keyed by position: one panel may hold several queries.
    problems = {i: p for i, q in enumerate(queries) if (p := _check(live, q, empty_ok))}
    retried = sorted({queries[i].where for i in problems})
    deadline = time.monotonic() + RETRY_SECONDS
    while problems and time.monotonic() < deadline:
        time.sleep(5)
        problems = {i: p for i in problems if (p := _check(live, queries[i], empty_ok))}
    print(f"\n{len(queries)} queries, data after {live.ready_after:.0f} s; empty at first, re-run: "
          f"{retried or 'none'} ({time.monotonic() - t0:.1f} s in all); allowed empty: {sorted(empty_ok)}")
    # the diagnosis (more queries) only for what is still empty at the end, not at every re-run
    report = [f"{p}\n{_diagnose(live, queries[i])}" for i, p in problems.items()]
    assert not problems, f"{len(problems)} of {len(queries)} dashboard queries:\n" + "\n".join(report)


def test_allowed_empty_list_is_current():
    panels = {(q.dashboard, q.panel) for q in _all_queries()}
    stale = set(ALLOWED_EMPTY) - panels
    assert not stale, f"ALLOWED_EMPTY names panels that no longer exist: {stale}"
    assert len(ALLOWED_EMPTY) <= 1


def test_variables_have_values(live):
    problems = []
    for uid, d in dashlib.dashboards().items():
        for v in d["templating"]["list"]:
            if v["type"] != "query" or v["datasource"]["type"] != "prometheus":  # Loki: Docker tier
                continue
            sel, label = v["query"][len("label_values("):-1].rsplit(",", 1)
            url = f"{live.prom}/api/v1/label/{label.strip()}/values?" + urllib.parse.urlencode(
                {"match[]": dashlib.substitute(sel), "start": live.started - 60})
            vals = _get(url)["data"]
            if not vals:
                problems.append(f"{uid} / variable {v['name']}: no values for {v['query']}")
    assert not problems, "\n".join(problems)


def test_counters_only_inside_range_functions(live):
    """By Prometheus' own metadata: a counter, histogram or summary series never appears raw."""
    meta = _get(f"{live.prom}/api/v1/metadata")["data"]
    kinds = {}
    for name, entries in meta.items():
        t = entries[0]["type"]
        if t == "counter":
            kinds[name] = kinds[name + "_total"] = t
        elif t in ("histogram", "summary"):
            for suffix in ("_bucket", "_count", "_sum"):
                kinds[name + suffix] = t
    problems = []
    for q in _all_queries():
        if q.kind != "prometheus":
            continue
        for name, after, _ in _selectors(q.expr):
            if kinds.get(name) and after != "[":
                problems.append(f"{q.where}: {kinds[name]} {name} used without a range function")
    assert not problems, "\n".join(problems)
    assert len(kinds) > 100


# ------------------------------------------------------------------------------------- correlations
def _datasources() -> dict:
    doc = yaml.safe_load((compose.ROOT / "grafana" / "provisioning" / "datasources" / "datasources.yml").read_text())
    return {d["uid"]: d for d in doc["datasources"]}


def test_exemplars_carry_the_trace_id(live):
    name = _datasources()["prometheus"]["jsonData"]["exemplarTraceIdDestinations"][0]["name"]
    now = time.time()
    r = _get(f"{live.prom}/api/v1/query_exemplars?" + urllib.parse.urlencode(
        {"query": "http_request_duration_seconds_bucket", "start": now - 600, "end": now}))
    labels = [e["labels"] for s in r["data"] for e in s["exemplars"]]
    assert labels and all(name in lab for lab in labels), labels[:3]


def test_traces_to_metrics_queries(live):
    """The trace-to-metrics links with $__tags = the span's service: the app-metric queries return data;
    the span-metric query needs Tempo's metrics generator."""
    t2m = _datasources()["tempo"]["jsonData"]["tracesToMetrics"]
    tag = t2m["tags"][0]["value"]
    ran = 0
    for q in t2m["queries"]:
        expr = q["query"].replace("$$", "$").replace("$__tags", f'{tag}="obs-demo"').replace("$__rate_interval", "1m")
        if "traces_spanmetrics" in expr:
            continue
        assert _has_value(live.prom_range(expr)), f"traces-to-metrics query {q['name']!r} has no data: {expr}"
        ran += 1
    assert ran >= 2


# ---------------------------------------------------------------------------------------- runbooks
# Series a runbook query may name although the demo stack has none: each says why.
RUNBOOK_ABSENT_OK = {
    "ALERTS": "exists only while an alert is pending or firing",
    "service_environment:http_requests:rate5m_baseline1h": "a baseline: needs the stack to have run for 15 minutes",
    "service_environment:http_request_duration_seconds:p95_rate5m_baseline6h": "a baseline, as above",
    "service_environment_queue:queue_oldest_message_age_seconds:max": "for queues that report their oldest "
    "message's age (obs.track_queue(..., oldest_age=...)); the demo's queue reports its depth only",
    "supabase_exporter_poll_errors_total": "counted from a bridge's first failed poll; the demo's polls succeed",
    **{f"otelcol_exporter_send_failed_{x}": "the collector creates it at the first failed send (0.161.0 spells "
       "its counters without _total)" for x in ("spans", "log_records", "metric_points")},
    "otelcol_receiver_refused_metric_points": "created when metric points first arrive over OTLP; the demo's "
    "metrics are scraped",
    **{f"otelcol_exporter_enqueue_failed_{x}": "created at the first refusal at a full sending queue; "
       "tests/e2e/test_forward_otlp.py fills one for real" for x in ("spans", "log_records", "metric_points")},
}
RUNBOOK_ABSENT_PREFIXES = {
    "loki_": "Loki's own metrics: Loki runs only in the Docker tier (AGPL, never built here)",
    "tempo_": "Tempo's own metrics: as Loki's",
    "prometheus_remote_storage_": "per-queue series exist only with forwarding on (docs/forwarding.md); "
                                  "tests/e2e/test_forward_prometheus.py runs these runbook queries on a forwarding Prometheus",
}
# Labels a runbook query may use that the demo's series lack: each says why.
RUNBOOK_LABELS_ABSENT_OK = {
    "error_type": "set on failed calls only (Prometheus drops an empty label); the demo's LLM calls succeed",
}


def test_runbook_promql_runs_with_data_behind_every_series(live):
    """Issue 13 part 5: every PromQL query in runbooks/ runs on the real Prometheus with the shipped rules
    (placeholders filled from the live demo data), and every series it names exists, so the query can
    match during an incident instead of silently returning nothing."""
    from tests.alerting.runbookqueries import queries

    def label(expr: str, name: str) -> str:
        res = live.prom_instant(f"count by ({name}) ({expr})")
        assert res, f"no {expr} to take a {name} from"
        return res[0]["metric"][name]

    values = {"$service": "obs-demo", "$environment": "prod",
              "$project": label("supabase_project_status", "project"),
              "$model": label("llm_tokens_total", "model")}
    labels_of: dict[str, set[str]] = {}
    problems = []
    for q in [q for q in queries() if q.lang == "promql"]:
        expr = q.filled(values)
        try:
            live.prom_instant(expr)
        except AssertionError as e:
            problems.append(f"{q.runbook}: {q.text}: {e}")
            continue
        names = [n for n, _, _ in _selectors(expr) if n != "__name__" and n not in RUNBOOK_ABSENT_OK
                 and not n.startswith(tuple(RUNBOOK_ABSENT_PREFIXES))]
        for name in names:
            if name not in labels_of:
                sel = f'{{__name__=~"{name[3:]}"}}' if name.startswith("re:") else name
                r = _get(f"{live.prom}/api/v1/labels?" + urllib.parse.urlencode({"match[]": sel}))
                labels_of[name] = set(r["data"])
            if not labels_of[name]:
                problems.append(f"{q.runbook}: {q.text}: no series {name} in the live stack")
        # Label names the query matches on or groups by must exist on the series it reads.
        have = set().union(*(labels_of[n] for n in names)) if names else set()
        used = set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)\s*\"", expr)) - {"__name__"}
        for grp in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
            used |= {x.strip() for x in grp.split(",") if x.strip()}
        missing = sorted(used - have - {"le", "quantile"} - set(RUNBOOK_LABELS_ABSENT_OK)) if have else []
        if missing:
            problems.append(f"{q.runbook}: {q.text}: labels {missing} are not on {sorted(set(names))}")
    assert not problems, "\n".join(problems)
    assert len(labels_of) > 40
