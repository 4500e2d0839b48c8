"""Every LogQL query of the provisioned dashboards (panels and Loki label_values() variables), with the
variables replaced as Grafana does (All = `.*`), parsed by Grafana's own LogQL grammar (tests/support/logql.py),
selecting only Loki's index labels, and with one matcher per selector that cannot match "" (Loki refuses a
selector such as `{platform=~".*"}` with 400). The Docker tier runs them all through Grafana on the real Loki."""
from __future__ import annotations

import re

import pytest

from tests.conftest import require_tool
from tests.dashboards import dashlib
from tests.support import logql

INDEX_LABELS = logql.index_labels()
VAR_RE = re.compile(r"label_values\((\{.*\}),\s*(\w+)\)")


def _queries() -> list[tuple[str, str]]:
    """(where, LogQL as Grafana sends it) for every Loki panel query and Loki variable."""
    out = []
    for uid, d in dashlib.dashboards().items():
        out += [(q.where, dashlib.substitute(q.expr)) for q in dashlib.queries(d) if q.kind == "loki"]
        for v in d.get("templating", {}).get("list", []):
            if v["type"] == "query" and v["datasource"]["type"] == "loki":
                m = VAR_RE.fullmatch(v["query"])
                assert m, f"{uid} / variable {v['name']}: {v['query']!r} is not label_values(<selector>, <label>)"
                out.append((f"{uid} / variable {v['name']}", dashlib.substitute(m.group(1))))
    return out


QUERIES = _queries()


def _matches_empty(m: logql.Matcher) -> bool:
    if m.op in ("=", "!="):
        return (m.value == "") == (m.op == "=")
    hit = re.fullmatch(m.value, "") is not None
    return hit if m.op == "=~" else not hit


def problems(where: str, p: logql.Parsed) -> list[str]:
    if not p.ok:
        return [f"{where}: does not parse: {p.error}\n    {p.text}"]
    out = []
    for sel in p.selectors:
        bad = sorted({m.name for m in sel} - INDEX_LABELS)
        if bad:
            out.append(f"{where}: {bad} are not Loki index labels ({sorted(INDEX_LABELS)})")
        if all(_matches_empty(m) for m in sel):
            out.append(f"{where}: every matcher of a selector matches \"\" (with All = .*); Loki refuses it: add "
                       f"`<label>=~\".+\"`")
    return [f"{o}\n    {p.text}" for o in out]


@pytest.fixture(scope="module")
def grammar():
    return require_tool("lezer-logql").parents[3]


def test_the_dashboards_have_logql():
    where = {w.split(" / ")[0] for w, _ in QUERIES}
    assert {"obs-logs", "obs-api"} <= where, where
    assert sum(w.startswith("obs-logs") for w, _ in QUERIES) >= 10


def test_every_logql_query_parses_and_selects_index_labels(grammar):
    parsed = logql.parse_many([q for _, q in QUERIES], grammar)
    found = [x for (where, _), p in zip(QUERIES, parsed, strict=True) for x in problems(where, p)]
    assert not found, f"{len(found)} of {len(QUERIES)} LogQL queries:\n" + "\n".join(found)
    kinds = {p.kind for p in parsed}
    assert kinds == {"log", "metric"}, kinds


def test_the_checks_catch_mistakes(grammar):
    bad = {'{platform=~".*"}': "matches \"\"", '{platform=~".+", job="x"}': "index labels",
           'sum by (level) (count_over_time({platform=~".+"}[1m])': "parse",
           '{platform=~".+"} |~ "(unclosed"': "parse"}
    for (text, why), p in zip(bad.items(), logql.parse_many(list(bad), grammar), strict=True):
        found = problems("x", p)
        assert any(why in f for f in found), f"{text}: expected a problem about {why!r}, got {found}"
    good = logql.parse_many(['{platform=~".+", platform=~".*", level!="debug"}'], grammar)[0]
    assert problems("x", good) == []
