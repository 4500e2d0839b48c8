"""The alert policy of this repo as code (mirrors .pint.hcl, which cannot run here: pint is not
obtainable). Used by test_rule_policy.py; importable so the checks themselves are unit-tested."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "prometheus" / "rules"
RUNBOOKS = ROOT / "runbooks"
RUNBOOK_BASE = "https://github.com/obs-stack/obs-stack/blob/main/runbooks/"
SEVERITIES = {"critical", "high", "medium", "low"}
RUNBOOK_SECTIONS = ["## Symptoms", "## Impact", "## Diagnosis", "## Resolution", "## Escalation"]
COUNTER_SUFFIX = re.compile(r"_(total|count|sum|bucket)$")
RANGE_FUNCS = r"(?:rate|irate|increase|resets)"
# Gauges whose names end like a counter (Supabase's metrics endpoint).
GAUGES_NAMED_LIKE_COUNTERS = {"connection_stats_connection_count", "max_connections_connection_count"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
            "offset", "inf", "nan"}


def duration_seconds(d: str | None) -> float:
    if not d:
        return 0.0
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    total = 0.0
    for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", d):
        total += int(n) * units[u]
    return total


def load_rules(rules_dir: Path = RULES):
    """Yield (file, group name, rule) for every rule."""
    for f in sorted(rules_dir.glob("*.yml")):
        for g in (yaml.safe_load(f.read_text()) or {}).get("groups", []):
            for r in g.get("rules", []):
                yield f, g["name"], r


def _strip_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def counter_problems(expr: str) -> list[str]:
    """Raw counters must only appear as rate()/irate()/increase()/resets() range arguments."""
    out = []
    # {__name__=~"..._total"} selectors
    for m in re.finditer(r'\{__name__=~?"([^"]*)"[^}]*\}', expr):
        if re.search(r"(total|count|sum|bucket)\)?\"?$", m.group(1).rstrip(")")):
            before = expr[:m.start()].rstrip()
            after = expr[m.end():].lstrip()
            if not (re.search(RANGE_FUNCS + r"\s*\($", before) and after.startswith("[")):
                out.append(f"counter selector {m.group(0)} used outside rate()/increase()")
    text = _strip_strings(expr)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    for m in re.finditer(r"[A-Za-z_][A-Za-z0-9_:]*", text):
        name = m.group(0)
        if ":" in name or name in KEYWORDS or name in GAUGES_NAMED_LIKE_COUNTERS or not COUNTER_SUFFIX.search(name):
            continue
        after = text[m.end():].lstrip()
        if after.startswith("("):
            continue  # a function call
        before = text[:m.start()].rstrip()
        if not (re.search(RANGE_FUNCS + r"\s*\($", before) and after.startswith("[")):
            out.append(f"raw counter {name} used outside rate()/irate()/increase()")
    return out


def series_name_problems(expr: str) -> list[str]:
    """Two ways a query breaks on real data (shared by the dashboards lint):
    - rate()/increase() over a {__name__=~"a|b"} selector that can match several names: once rate() drops
      the name, two series with the same other labels fail the whole query ("vector cannot contain metrics
      with the same labelset"). Use one rate() per name, joined with `or` (label_replace for a label).
    - a collector counter spelled only `otelcol_..._total`: the collector (0.161.0) exposes its own counters
      without the suffix; read both spellings (`rate(x[5m]) or rate(x_total[5m])`)."""
    out = []
    for m in re.finditer(RANGE_FUNCS + r'\s*\(\s*\{[^}]*__name__=~"([^"]*)"', expr):
        if re.search(r"[|?*+.()\[\]]", m.group(1)):
            out.append(f"{m.group(0)}...: rate over a multi-name selector; one rate() per name, joined with `or`")
    names = set(re.findall(r"\botelcol_[A-Za-z0-9_]+", _strip_strings(expr)))
    names |= {n for sel in re.findall(r'__name__=~?"([^"]*)"', expr) for n in re.findall(r"otelcol_\w+", sel)}
    for n in sorted(names):
        if n.endswith("_total") and n[:-len("_total")] not in names:
            out.append(f"{n}: the collector exposes {n[:-len('_total')]} (no _total); read both spellings")
    return out


def offset_problems(expr: str) -> list[str]:
    """`offset` only on counters inside a rate-like function (never on raw gauges), or on a recording
    rule's range inside avg_over_time()/present_over_time(): a service's own baseline from before now."""
    out = []
    text = re.sub(r"\{[^}]*\}", "", _strip_strings(expr))
    for m in re.finditer(r"([A-Za-z_][A-Za-z0-9_:]*)\s*(\[[^\]]*\])?\s*offset\b", text):
        before = text[:m.start()].rstrip()
        baseline = ":" in m.group(1) and m.group(2) and re.search(r"(avg|present)_over_time\s*\($", before)
        if baseline:
            continue
        if not COUNTER_SUFFIX.search(m.group(1)) or m.group(1) in GAUGES_NAMED_LIKE_COUNTERS or not m.group(2):
            out.append(f"offset on {m.group(1)}: only counters inside rate()/increase() may be offset")
    return out


def alert_problems(group: str, rule: dict) -> list[str]:
    name = rule.get("alert", "?")
    p: list[str] = []
    labels = rule.get("labels") or {}
    ann = rule.get("annotations") or {}
    if labels.get("severity") not in SEVERITIES:
        p.append(f"severity {labels.get('severity')!r} not in {sorted(SEVERITIES)}")
    for key in ("service", "team"):
        if not str(labels.get(key, "")).strip():
            p.append(f"label {key} missing")
    summary = ann.get("summary")
    if not summary:
        p.append("annotation summary missing")
    elif "{{" in summary:
        p.append("summary must be static (no template); put values in description")
    if "{{" not in str(ann.get("description", "")):
        p.append("description missing or not templated")
    rb = str(ann.get("runbook_url", ""))
    if not rb.startswith(RUNBOOK_BASE):
        p.append(f"runbook_url {rb!r} does not start with {RUNBOOK_BASE}")
    else:
        path = RUNBOOKS / rb[len(RUNBOOK_BASE):]
        if not path.is_file():
            p.append(f"runbook file {path.relative_to(ROOT)} does not exist")
    if not str(ann.get("dashboard_url", "")).startswith(("http://", "https://")):
        p.append("dashboard_url missing")
    # Multiwindow burn-rate alerts (sloth's groups) need no `for`: the short window is the flap guard.
    if not group.startswith("sloth-slo-alerts-") and duration_seconds(rule.get("for")) < 60:
        p.append(f"for {rule.get('for')!r} is shorter than 1m")
    expr = str(rule.get("expr", ""))
    p += counter_problems(expr) + offset_problems(expr)
    return [f"{name}: {x}" for x in p]
