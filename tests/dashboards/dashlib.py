"""Reading the provisioned dashboards the way Grafana does (the JSON files, not the generator), and
turning their queries into what Grafana would send: variables replaced by a value."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DASH_DIR = ROOT / "grafana" / "dashboards"
SRC = ROOT / "grafana" / "dashboards_src"  # its modules (lib, rules) are on pytest.ini's pythonpath

# What Grafana sends for its built-in variables with a 15 s scrape interval (datasource timeInterval):
# $__rate_interval = max(4 x 15s, step + 15s) = 1m at the default resolution.
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__auto": "1m", "__range": "10m",
            "__range_s": "600", "__interval_ms": "15000"}


@dataclass
class Query:
    dashboard: str      # uid
    panel: str          # title (or "annotation: name", "variable: name")
    kind: str           # prometheus | loki | tempo
    expr: str
    instant: bool
    panel_json: dict

    @property
    def where(self) -> str:
        return f"{self.dashboard} / {self.panel}"


def dashboards() -> dict[str, dict]:
    out = {}
    for p in sorted(DASH_DIR.rglob("*.json")):
        d = json.loads(p.read_text())
        d["_path"] = str(p.relative_to(DASH_DIR))
        out[d["uid"]] = d
    return out


def panels(d: dict) -> list[dict]:
    out = []
    for p in d.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))   # collapsed rows
    return out


def ds_kind(d: dict, ref: dict) -> str:
    return ref.get("type", "")


def queries(d: dict, with_annotations: bool = True) -> list[Query]:
    out = []
    for p in panels(d):
        if p.get("type") == "row":
            continue
        for t in p.get("targets", []):
            kind = t.get("datasource", p.get("datasource", {})).get("type")
            expr = t.get("expr") if kind != "tempo" else t.get("query")
            out.append(Query(d["uid"], p["title"], kind, expr or "", bool(t.get("instant")), p))
    if with_annotations:
        for a in d.get("annotations", {}).get("list", []):
            if a.get("builtIn"):
                continue
            out.append(Query(d["uid"], f"annotation: {a['name']}", a["datasource"]["type"], a["expr"], False, a))
    return out


VAR_RE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def used_variables(expr: str) -> set[str]:
    return {next(g for g in m.groups() if g) for m in VAR_RE.finditer(expr)}


def substitute(expr: str, values: dict[str, str] | None = None, default: str = ".*") -> str:
    """Grafana-style interpolation: built-ins as above, every dashboard variable -> `default` (All)."""
    values = {**BUILTINS, **(values or {})}

    def sub(m: re.Match) -> str:
        name = next(g for g in m.groups() if g)
        if name in values:
            return values[name]
        if name.isdigit():          # label_replace's "$1" is not a variable
            return m.group(0)
        return default
    return VAR_RE.sub(sub, expr)
