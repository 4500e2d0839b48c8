"""Runbook queries that can run (issues 13 part 5, 16). PromQL: every query parses (promtool, as the expression
of a rule) here, and runs against the native Prometheus with data behind every series it names in
tests/dashboards/test_queries_live.py. LogQL: every query parses with Grafana's own LogQL grammar
(tests/support/logql.py) and selects only Loki's index labels (loki/loki.yml's otlp_config) with values
from their enums; the Docker tier runs them against Loki. Three kinds of logs are in Loki:
- apps' OTLP logs (obs_instrument): `{service_name="$service"}`, filtered on the structured metadata those logs
  carry (never `| json` on their plain-text body);
- the stack's own containers: `{platform="compose", service_name=<a compose service>}`, where `| json` gives our
  components' fields (docs/logging.md, the exporters' log calls); a field named like a stream label is
  `<name>_extracted` (Loki's rule);
- the platforms' logs: `{platform="vercel"|"railway"|"supabase", ...}`.
`docker compose logs` commands stay next to the LogQL (they work without Loki) and must name real services."""
from __future__ import annotations

import ast
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

from obs_bridges import otlp_logs, vercel_drain
from tests.alerting.runbookqueries import ROOT, queries
from tests.conftest import install_tools, require_tool
from tests.support import logql

QUERIES = queries()
PROMQL = [q for q in QUERIES if q.lang == "promql"]
LOGQL = [q for q in QUERIES if q.lang == "logql"]
SAMPLE = {"$service": "obs-demo", "$environment": "prod", "$project": "demo-shop", "$model": "fake-small"}

# Fields on an app's log records in Loki: Loki's own (detected_level, service_name) and every key the
# instrumentation passes as `extra=` (read from its source below), which arrive as structured metadata.
LOKI_FIELDS = {"detected_level", "service_name", "trace_id", "span_id", "severity_text"}
INDEX_LABELS = logql.index_labels()
# Each index label's values (the shared design of issue 16); service_name and project are names, not enums.
SOURCES = {"vercel": set(vercel_drain.SOURCES), "railway": {"deploy", "build"}, "compose": {"stdout", "stderr"},
           "supabase": {"postgres", "auth", "rest", "storage", "realtime", "edge_functions", "pooler", "other"}}
ENUMS = {"platform": set(otlp_logs.PLATFORMS), "level": set(otlp_logs.LEVELS),
         "source": set().union(*SOURCES.values())}


def instrumentation_fields() -> set[str]:
    out = set()
    for path in (ROOT / "instrumentation" / "src" / "obs_instrument").glob("*.py"):
        for block in re.findall(r"extra=\{(.*?)\}\)", path.read_text(), re.S):
            out |= set(re.findall(r'"([a-z_]+)":', block))
    return out


def exporter_log_fields() -> set[str]:
    """Every field the bridges log: the keywords of obs_bridges.log.kv(...) calls, read from the source."""
    out = set()
    for path in (ROOT / "exporters" / "src" / "obs_bridges").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "kv":
                out |= {k.arg for k in node.keywords if k.arg}
    return out


@cache
def json_fields() -> frozenset[str]:
    """The keys of our components' lines: the schema's (docs/logging.md's tables), the bridges', the demo app's."""
    doc = set(re.findall(r"^\| `(\w+)` \|", (ROOT / "docs" / "logging.md").read_text(), re.M))
    return frozenset(doc | exporter_log_fields() | instrumentation_fields())


def stack_fields() -> frozenset[str]:
    """What `| json` extracts from our components' lines; one named like a stream label gets `_extracted`
    appended by Loki."""
    return frozenset(f"{n}_extracted" if n in INDEX_LABELS else n for n in json_fields())


def stack_metadata() -> frozenset[str]:
    """The same lines' keys as structured metadata (the collector's transform/compose copies a JSON line's keys
    to record attributes): without `ts` and the level (it is the label), a label's name as `log_<name>`."""
    names = json_fields() - {"ts", "level", "source"}
    return frozenset(f"log_{n}" if n in INDEX_LABELS else n for n in names)


@cache
def compose_services() -> frozenset[str]:
    return frozenset(yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"])


# ------------------------------------------------------------------------------------------ LogQL
@pytest.fixture(scope="module")
def grammar() -> Path:
    return require_tool("lezer-logql").parents[3]


@pytest.fixture(scope="module")
def parsed(grammar) -> dict[int, logql.Parsed]:
    return dict(enumerate(logql.parse_many([q.filled(SAMPLE) for q in LOGQL], grammar)))


PARSER_CASES = [
    ('{service_name="$service"} | status_code >= 500', True),
    ('{service_name="$service"} |~ "(?i)slow query" |= "x" | detected_level=~"error|warn"', True),
    ('{service_name="$service"} | json | duration_ms > 300ms', True),
    ('sum by (platform, level) (count_over_time({platform=~"vercel|railway"} | json [5m]))', True),
    ('{platform="compose"} | json | level_extracted="error" or reason!="" | line_format "{{.msg}}"', True),
    (r'{service_name="$service"} |= `C:\path` |~ "a\\.b"', True),
    ('{service_name="$service"} |= "(not a regex"', True),
    ('{service_name="$service"} | status_code >>= 500', False),
    ('service_name="$service" |= "x"', False),
    ('{service_name="$service"} |= x', False),
    ('{service_name="$service"', False),
    ('{service_name="$service"} | json |', False),
    ('sum by (level) (count_over_time({platform="vercel"}))', False),    # no range
    (r'{service_name="$service"} |~ "a\\.b" |~ "a\.b"', False),       # Go refuses the escape \. (Loki: 400)
    ('{service_name="$service"} |~ "(?i)(unclosed"', False),
    ('{service_name="$service"} | detected_level=~"(error"', False),
    ('{service_name="$service"} |~ "(?=lookahead)"', False),             # RE2 has no look-around
]


@pytest.fixture(scope="module")
def parsed_cases(grammar) -> list[logql.Parsed]:
    return logql.parse_many([t for t, _ in PARSER_CASES], grammar)


@pytest.mark.parametrize("i", range(len(PARSER_CASES)), ids=[t[:50] for t, _ in PARSER_CASES])
def test_the_logql_parser_itself(parsed_cases, i):
    text, ok = PARSER_CASES[i]
    p = parsed_cases[i]
    assert p.ok == ok, f"{text!r}: expected {'accepted' if ok else 'refused'}, got {p.error or 'accepted'}"


def test_the_parser_reports_the_tree(grammar):
    log, metric = logql.parse_many([
        '{platform="compose", service_name=~"a|b"} |= "x" | json | reason!="" | n > 5',
        'sum by (platform, level) (count_over_time({platform!="x"} | logfmt [$__auto]))'.replace("$__auto", "1m"),
    ], grammar)
    assert log.kind == "log" and metric.kind == "metric"
    assert log.matchers == [logql.Matcher("platform", "=", "compose"), logql.Matcher("service_name", "=~", "a|b")]
    assert [s.type for s in log.stages] == ["line_filter", "parser", "label_filter", "label_filter"]
    assert log.parsers == ["json"] and [f.label for f in log.filters_after_parser()] == ["reason", "n"]
    assert log.label_filters[1] == logql.LabelFilter("n", ">", "5", "number")
    assert metric.grouping == ("platform", "level") and metric.parsers == ["logfmt"]
    assert metric.matchers == [logql.Matcher("platform", "!=", "x")]


def _values(m: logql.Matcher) -> set[str] | None:
    """The values a matcher can select: its value, or a plain alternation's words; None when not enumerable."""
    if m.op == "=":
        return {m.value}
    if m.op == "=~" and re.fullmatch(r"[\w.$-]+(\|[\w.$-]+)*", m.value):
        return set(m.value.split("|"))
    return None


def logql_problems(raw: str, p: logql.Parsed) -> list[str]:
    """What is wrong with a runbook LogQL query (raw: with its placeholders; p: parsed, placeholders filled)."""
    if not p.ok:
        return [f"does not parse: {p.error}"]
    out = []
    for m in p.matchers:
        if m.name not in INDEX_LABELS:
            out.append(f"{m.name} is not a Loki index label ({sorted(INDEX_LABELS)}); filter on it after the selector")
        vals = _values(m)
        if m.name in ENUMS and (vals is None or not vals <= ENUMS[m.name]):
            out.append(f"{m.name}{m.op}{m.value!r}: not an explicit choice from {sorted(ENUMS[m.name])}")
    labels = {m.name: m for m in p.matchers}
    platforms = _values(labels["platform"]) if "platform" in labels else None
    if platforms is None:  # an app's OTLP logs
        raw_sel = logql.Matcher("service_name", "=", SAMPLE["$service"])
        if p.matchers != [raw_sel]:
            out.append('an app\'s logs: select exactly {service_name="$service"}')
        if p.parsers:
            out.append("OTLP log bodies are plain text; their fields are structured metadata, filter on them "
                       "directly instead of `| json`")
        known = instrumentation_fields() | LOKI_FIELDS
        out += [f"{f.label} is not a field of the apps' logs (known: {sorted(known)})"
                for f in p.label_filters if f.label not in known]
        return out
    if "source" in labels and (src := _values(labels["source"])) is not None:
        allowed = set().union(*(SOURCES.get(pl, set()) for pl in platforms))
        if not src <= allowed:
            out.append(f"source {sorted(src - allowed)} is not a source of {sorted(platforms)} ({sorted(allowed)})")
    if platforms == {"compose"}:
        services = _values(labels["service_name"]) if "service_name" in labels else None
        raw_has_placeholder = 'service_name="$service"' in raw
        if services is None:
            out.append("name the compose services: service_name=\"<service>\" or =~\"a|b\"")
        elif not raw_has_placeholder and not services <= compose_services():
            out.append(f"{sorted(services - compose_services())} are not compose services (docker-compose.yml)")
        after = p.filters_after_parser()
        for f in after:
            if f.label in INDEX_LABELS:
                out.append(f"after `| json`, `{f.label}` is the stream label; the line's own field is "
                           f"`{f.label}_extracted`")
            elif f.label not in stack_fields():
                out.append(f"{f.label} is not a field our components log (known: {sorted(stack_fields())})")
        for f in p.label_filters[:len(p.label_filters) - len(after)]:  # before any parser: structured metadata
            if f.label not in stack_metadata() | INDEX_LABELS:
                out.append(f"{f.label} is not in the containers' structured metadata (known: "
                           f"{sorted(stack_metadata())}); `| json` extracts the line's fields")
        return out
    if p.parsers:
        out.append("platform log bodies are the platform's text: filter on labels and structured metadata")
    return out


def test_logql_checks_catch_mistakes(grammar):
    bad = {
        '{service_name="$service"} | json | status_code >= 500': "json",
        '{service_name="$service", job="x"}': "index label",
        '{platform="compose", service_name="exporter"}': "not compose services",
        '{platform="compose", service_name="github-exporter"} | json | level="error"': "_extracted",
        '{platform="compose", service_name="github-exporter"} | json | colour="red"': "not a field",
        '{platform="compose", service_name="github-exporter"} | platform="x" | colour="red"': "structured metadata",
        '{platform="heroku", service_name="a"}': "platform",
        '{platform="vercel", source="deploy"}': "not a source",
        '{platform="railway", level="warn"}': "level",
        '{platform="vercel", project="$service"} |~ "(unclosed"': "does not parse",
    }
    texts = list(bad)
    for raw, p in zip(texts, logql.parse_many([t.replace("$service", "obs-demo") for t in texts], grammar), strict=True):
        problems = logql_problems(raw, p)
        assert any(bad[raw] in x for x in problems), f"{raw}: expected a problem about {bad[raw]!r}, got {problems}"


def test_there_are_runbook_queries():
    assert len(PROMQL) > 80 and len(LOGQL) > 40, (len(PROMQL), len(LOGQL))
    platforms = [re.search(r'platform=~?"([^"]*)"', q.text) for q in LOGQL]
    found = {w for m in platforms if m for w in m.group(1).split("|")}
    assert found == {"compose", "vercel", "railway", "supabase"}, found


@pytest.mark.parametrize("i", range(len(LOGQL)), ids=[f"{q.runbook}:{q.text[:40]}" for q in LOGQL])
def test_logql_selects_index_labels_and_fields_the_logs_carry(parsed, i):
    q = LOGQL[i]
    problems = logql_problems(q.text, parsed[i])
    assert not problems, f"{q.runbook}: {q.text}\n  " + "\n  ".join(problems)


def test_index_labels_are_the_ones_the_senders_set():
    assert set(otlp_logs.LABEL_NAMES) <= INDEX_LABELS, (otlp_logs.LABEL_NAMES, INDEX_LABELS)


def test_field_sources_are_found():
    assert {"status_code", "duration_ms", "gen_ai_request_model", "input_tokens", "cost_dollars"} <= instrumentation_fields()
    assert {"upstream", "reason", "failures", "retry_in_s", "event"} <= exporter_log_fields()
    assert {"msg", "logger", "component", "level_extracted", "exc", "trace_id", "reason"} <= stack_fields()
    assert "level" not in stack_fields()
    assert {"reason", "msg", "log_project"} <= stack_metadata() and not {"level", "ts", "project"} & stack_metadata()


def test_runbooks_with_compose_logs_have_the_logql_too():
    """Every `docker compose logs` command has a LogQL query over the same services' logs in Loki."""
    by_runbook: dict[str, set[str]] = {}
    for q in LOGQL:
        if 'platform="compose"' in q.text:
            m = re.search(r'service_name=~?"([^"]*)"', q.text)
            by_runbook.setdefault(q.runbook, set()).update(m.group(1).split("|") if m else ())
    missing = []
    for rb, line in _shell_lines():
        if line.startswith("docker compose logs"):
            names = set(_compose_log_names(line))
            if not names <= by_runbook.get(rb, set()):
                missing.append(f"{rb}: {sorted(names - by_runbook.get(rb, set()))} ({line})")
    assert not missing, "no LogQL over the same containers:\n" + "\n".join(missing)


def _compose_log_names(line: str) -> list[str]:
    words = line.split("|")[0].split()[3:]
    return [w for w in words if not w.startswith("-") and not re.fullmatch(r"\d+[smh]", w)]


def _shell_lines() -> list[tuple[str, str]]:
    out = []
    for path in sorted((ROOT / "runbooks").glob("*.md")):
        for body in re.findall(r"```shell\n(.*?)```", path.read_text(), re.S):
            out += [(path.name, line.strip()) for line in body.splitlines() if line.strip()]
    return out


def test_compose_log_commands_name_real_services():
    services = compose_services()
    lines = [(rb, line) for rb, line in _shell_lines() if line.startswith("docker compose logs")]
    assert len(lines) > 10
    for rb, line in lines:
        names = _compose_log_names(line)
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
