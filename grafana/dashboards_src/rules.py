"""Thresholds, budgets, SLO objectives and runbooks read from the Prometheus rule files, so a dashboard's
threshold is the alert's threshold by construction: change the rule, regenerate, and the panel follows
(tests/dashboards/test_thresholds.py proves it by editing a copy of the rules)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "prometheus" / "rules"

# Severity ladder -> threshold colour (green healthy, then warning, error, critical).
SEVERITY_COLOURS = {"low": "yellow", "medium": "orange", "high": "red", "critical": "dark-red"}
SEVERITY_ORDER = ["low", "medium", "high", "critical"]

_NUM = r"([0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)"


class RuleError(LookupError):
    pass


@dataclass(frozen=True)
class Step:
    """One threshold taken from a rule: the alert (or recording) it comes from, its severity and value."""
    alert: str
    severity: str
    value: float
    op: str
    runbook: str | None


class Rules:
    def __init__(self, rules_dir: Path = RULES_DIR):
        self.dir = Path(rules_dir)
        self.alerts: list[dict] = []
        self.records: list[dict] = []
        for f in sorted(self.dir.glob("*.yml")):
            doc = yaml.load(f.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
            for g in doc.get("groups", []):
                for r in g.get("rules", []):
                    (self.alerts if "alert" in r else self.records).append(r)

    # ------------------------------------------------------------------ alerts
    def _alerts(self, name: str) -> list[dict]:
        found = [r for r in self.alerts if r["alert"] == name]
        if not found:
            raise RuleError(f"no alert {name} in {self.dir}")
        return found

    def runbook(self, alert: str) -> str:
        return self._alerts(alert)[0]["annotations"]["runbook_url"]

    def steps(self, alert: str, metric: str | None = None, severities: list[str] | None = None) -> list[Step]:
        """The thresholds of every rung of `alert` (one per severity), lowest severity first.

        metric: take the comparison right after this series (`metric{...} > 0.05`); without it, the
        expression's last comparison with a number (`... / ... > 0.85`). Rungs whose expression does not
        compare `metric` are skipped (APIHighLatency has p95 and p99 rungs)."""
        out = []
        for r in self._alerts(alert):
            sev = r["labels"]["severity"]
            if severities and sev not in severities:
                continue
            expr = " ".join(r["expr"].split())
            if metric:
                m = re.search(re.escape(metric) + r"(?:\{[^}]*\})?\s*(>=|<=|==|>|<)\s*" + _NUM, expr)
            else:
                # the last comparison at the end, else (`... unless on (project) x`) the last one anywhere
                found = (list(re.finditer(r"(>=|<=|==|>|<)\s*" + _NUM + r"\s*\)?\s*$", expr))
                         or list(re.finditer(r"(>=|<=|==|>|<)\s*" + _NUM + r"\b", expr)))
                m = found[-1] if found else None
            if not m:
                continue
            out.append(Step(alert, sev, float(m.group(2)), m.group(1), r["annotations"].get("runbook_url")))
        if not out:
            raise RuleError(f"alert {alert}: no threshold found" + (f" for {metric}" if metric else ""))
        out.sort(key=lambda s: SEVERITY_ORDER.index(s.severity))
        return out

    def steps_if_defined(self, alert: str, metric: str | None = None) -> list[Step]:
        """steps() for an alert that may not exist (yet): [] without it, so the panel has no threshold
        until the rule lands, and picks it up at the next generation."""
        if not any(r["alert"] == alert for r in self.alerts):
            return []
        return self.steps(alert, metric)

    def severity(self, alert: str) -> str:
        return self._alerts(alert)[0]["labels"]["severity"]

    def burn_steps(self, alert: str) -> list[Step]:
        """The burn-rate factors of a multiwindow SLO alert (`> (14.4 * 0.001)`), one Step per factor
        and rung, severity from the rung."""
        out = []
        for r in self._alerts(alert):
            for f in sorted({float(x) for x in re.findall(r">\s*\(\s*" + _NUM + r"\s*\*\s*[0-9.e-]+\s*\)", r["expr"])}):
                out.append(Step(alert, r["labels"]["severity"], f, ">", r["annotations"].get("runbook_url")))
        if not out:
            raise RuleError(f"alert {alert}: no burn-rate factor")
        return out

    def factor(self, alert: str, series: str) -> float:
        """The multiplier in `... > on () (1.5 * series)`, 1.0 when the series is compared as is."""
        expr = " ".join(self._alerts(alert)[0]["expr"].split())
        m = re.search(_NUM + r"\s*\*\s*" + re.escape(series), expr)
        if m:
            return float(m.group(1))
        if series in expr:
            return 1.0
        raise RuleError(f"alert {alert} does not compare with {series}")

    # ------------------------------------------------------------------ recordings
    def vector_value(self, record: str, **labels: str) -> float:
        """The constant of a `vector(N)` recording (budgets, SLO objectives)."""
        for r in self.records:
            if r["record"] != record:
                continue
            if any(r.get("labels", {}).get(k) != v for k, v in labels.items()):
                continue
            m = re.fullmatch(r"\s*vector\(\s*(?:1\s*-\s*)?" + _NUM + r"\s*\)\s*", str(r["expr"]))
            if m:
                return float(m.group(1))
        raise RuleError(f"no vector() recording {record} {labels}")

    def slo_objectives(self) -> dict[str, float]:
        """sloth_id -> objective ratio (0.999), from the slo:objective:ratio recordings."""
        out = {}
        for r in self.records:
            if r["record"] == "slo:objective:ratio":
                # sloth writes vector(0.9990000000000001): the objective is a percentage with few digits
                out[r["labels"]["sloth_id"]] = round(self.vector_value("slo:objective:ratio",
                                                                       sloth_id=r["labels"]["sloth_id"]), 10)
        if not out:
            raise RuleError("no SLO objective recordings")
        return out

    def has_record(self, record: str) -> bool:
        return any(r["record"] == record for r in self.records)
