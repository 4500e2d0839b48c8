"""Reading a component's own /metrics page (Prometheus text format) without a Prometheus in between."""
from __future__ import annotations

import re


def _samples(text: str, name: str):
    # The collector 0.161.0 spells its counters without _total; older builds add it: accept both.
    for m in re.finditer(rf"^{name}(?:_total)?(?:\{{([^}}]*)\}})? (\S+)$", text, re.M):
        yield dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or "")), float(m.group(2))


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels` (name with or without _total)."""
    return sum(v for have, v in _samples(text, name) if all(have.get(k) == want for k, want in labels.items()))


def series(text: str, name: str) -> list[dict[str, str]]:
    """The label sets of a metric's samples (name with or without _total)."""
    return [have for have, _ in _samples(text, name)]
