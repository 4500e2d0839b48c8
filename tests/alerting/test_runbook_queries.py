"""Runbook queries that can run (issue 13 part 5). PromQL: every query parses (promtool, as the expression
of a rule) here, and runs against the native Prometheus with data behind every series it names in
tests/dashboards/test_queries_live.py. LogQL: the only logs in Loki are those apps send over OTLP
(obs_instrument), so every LogQL query selects `{service_name="$service"}`, parses as LogQL, and filters
only on fields those logs carry (structured metadata, never `| json` on a plain-text body); the Docker
tier runs them against Loki. Logs of the stack's own components are read with `docker compose logs`,
which must name real compose services."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.alerting.runbookqueries import ROOT, queries
from tests.conftest import install_tools

QUERIES = queries()
PROMQL = [q for q in QUERIES if q.lang == "promql"]
LOGQL = [q for q in QUERIES if q.lang == "logql"]
SAMPLE = {"$service": "obs-demo", "$environment": "prod", "$project": "demo-shop", "$model": "fake-small"}

# Fields on an app's log records in Loki: Loki's own (detected_level, service_name) and every key the
# instrumentation passes as `extra=` (read from its source below), which arrive as structured metadata.
LOKI_FIELDS = {"detected_level", "service_name", "trace_id", "span_id", "severity_text"}


def instrumentation_fields() -> set[str]:
    out = set()
    for path in (ROOT / "instrumentation" / "src" / "obs_instrument").glob("*.py"):
        for block in re.findall(r"extra=\{(.*?)\}\)", path.read_text(), re.S):
            out |= set(re.findall(r'"([a-z_]+)":', block))
    return out


# ------------------------------------------------------------------------------------------ LogQL
_STR = r'"(?:[^"\\]|\\.)*"|`[^`]*`'
_MATCHER = rf'\s*([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*({_STR})\s*'
_STAGE = re.compile(
    rf"\s*(?:(?P<line>\|=|!=|\|~|!~)\s*(?P<lstr>{_STR})"
    rf"|\|\s*(?P<parser>json|logfmt)\b"
    rf"|\|\s*(?P<label>[a-zA-Z_]\w*)\s*(?P<op>=~|!~|!=|==|=|>=|<=|>|<)\s*(?P<val>{_STR}|-?\d+(?:\.\d+)?(?:ms|s|m|h)?)"
    rf"|\|\s*line_format\s+(?P<fmt>{_STR}))")


def parse_logql(text: str) -> tuple[list[tuple[str, str, str]], list[dict]]:
    """(stream matchers, pipeline stages) of a log query in the subset the runbooks use; ValueError with
    the position otherwise."""
    m = re.match(r"\s*\{((?:" + _MATCHER + r",)*" + _MATCHER + r")\}", text)
    if not m:
        raise ValueError(f"no stream selector at the start of {text!r}")
    matchers = re.findall(_MATCHER, m.group(1))
    pos, stages = m.end(), []
    while pos < len(text):
        sm = _STAGE.match(text, pos)
        if not sm or sm.end() == pos:
            if text[pos:].strip():
                raise ValueError(f"cannot parse {text[pos:]!r} (position {pos}) in {text!r}")
            break
        stages.append({k: v for k, v in sm.groupdict().items() if v is not None})
        pos = sm.end()
    for stage in stages:  # the regular expressions must compile: line filters |~ !~ and label matchers =~ !~
        regex = ((stage.get("line") in ("|~", "!~") and stage["lstr"])
                 or (stage.get("op") in ("=~", "!~") and stage["val"]))
        if regex and regex.startswith('"'):
            re.compile(regex[1:-1].replace('\\"', '"'))
    return matchers, stages


@pytest.mark.parametrize("text,ok", [
    ('{service_name="$service"} | status_code >= 500', True),
    ('{service_name="$service"} |~ "(?i)slow query" |= "x" | detected_level=~"error|warn"', True),
    ('{service_name="$service"} | json | duration_ms > 300ms', True),
    ('{service_name="$service"} | status_code >>= 500', False),
    ('service_name="$service" |= "x"', False),
    ('{service_name="$service"} |= x', False),
    ('{service_name="$service"} |~ "(?i)(unclosed"', False),
    ('{service_name="$service"} | detected_level=~"(error"', False),
    ('{service_name="$service"} |= "(not a regex"', True),
])
def test_the_logql_parser_itself(text, ok):
    if ok:
        parse_logql(text)
    else:
        with pytest.raises((ValueError, re.error)):
            parse_logql(text)


def test_there_are_runbook_queries():
    assert len(PROMQL) > 80 and len(LOGQL) > 15, (len(PROMQL), len(LOGQL))


@pytest.mark.parametrize("q", LOGQL, ids=lambda q: f"{q.runbook}:{q.text[:40]}")
def test_logql_selects_app_logs_and_fields_they_carry(q):
    matchers, stages = parse_logql(q.filled(SAMPLE))
    assert [(n, op) for n, op, _ in matchers] == [("service_name", "=")] and matchers[0][2] == '"obs-demo"', (
        f"{q.runbook}: only apps' OTLP logs reach Loki; select {{service_name=\"$service\"}} (stack components: "
        f"`docker compose logs`): {q.text}")
    assert not any("parser" in s for s in stages), (
        f"{q.runbook}: OTLP log bodies are plain text; their fields are structured metadata, filter on them "
        f"directly instead of `| json`: {q.text}")
    known = instrumentation_fields() | LOKI_FIELDS
    unknown = [s["label"] for s in stages if "label" in s and s["label"] not in known]
    assert not unknown, f"{q.runbook}: {unknown} are not fields of the apps' logs (known: {sorted(known)}): {q.text}"


def test_instrumentation_fields_are_found():
    assert {"status_code", "duration_ms", "gen_ai_request_model", "input_tokens", "cost_dollars"} <= instrumentation_fields()


def _shell_lines() -> list[tuple[str, str]]:
    out = []
    for path in sorted((ROOT / "runbooks").glob("*.md")):
        for body in re.findall(r"```shell\n(.*?)```", path.read_text(), re.S):
            out += [(path.name, line.strip()) for line in body.splitlines() if line.strip()]
    return out


def test_compose_log_commands_name_real_services():
    services = set(yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"])
    lines = [(rb, line) for rb, line in _shell_lines() if line.startswith("docker compose logs")]
    assert len(lines) > 10
    for rb, line in lines:
        words = line.split("|")[0].split()[3:]
        names = [w for w in words if not w.startswith("-") and not re.fullmatch(r"\d+[smh]", w)]
        assert names, f"{rb}: {line}"
        bad = [n for n in names if n not in services and n != "$service"]
        assert not bad, f"{rb}: {bad} are not compose services: {line}"


# ------------------------------------------------------------------------------------------ PromQL
def test_every_promql_query_parses(tmp_path: Path):
    """promtool parses each filled-in query as a recording rule's expression: one failure names its
    runbook and query."""
    promtool = install_tools.tool_path("prometheus", "promtool")
    if promtool is None:
        pytest.skip(f"promtool: {install_tools.unavailable_reason('prometheus')}")
    rules = [{"record": f"runbook:q{i}", "expr": q.filled(SAMPLE)} for i, q in enumerate(PROMQL)]
    path = tmp_path / "runbook-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "runbooks", "rules": rules}]}))
    p = subprocess.run([str(promtool), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        out = p.stdout + p.stderr
        bad = sorted({int(n) - 1 for n in re.findall(r"rule (\d+)", out)})  # promtool counts rules from 1
        where = [f"{PROMQL[i].runbook}: {PROMQL[i].text}" for i in bad if 0 <= i < len(PROMQL)]
        pytest.fail(f"promtool refuses runbook queries:\n{out[-3000:]}\n" + "\n".join(where))
