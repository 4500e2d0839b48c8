"""The queries in runbooks/*.md: ```promql and ```logql blocks, one query per line. Shared by the static
checks (tests/alerting/test_runbook_queries.py), the native live run (tests/dashboards/test_queries_live.py)
and the Docker tier (tests/docker)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "runbooks"
PLACEHOLDERS = ("$service", "$environment", "$project", "$model")


@dataclass(frozen=True)
class Query:
    runbook: str
    lang: str  # promql | logql
    text: str

    def filled(self, values: dict[str, str]) -> str:
        out = self.text
        for k in sorted(values, key=len, reverse=True):
            out = out.replace(k, values[k])
        return out


def queries() -> list[Query]:
    out = []
    for path in sorted(RUNBOOKS.glob("*.md")):
        for lang, body in re.findall(r"```(promql|logql)\n(.*?)```", path.read_text(), re.S):
            out += [Query(path.name, lang, line.strip()) for line in body.splitlines() if line.strip()]
    return out
