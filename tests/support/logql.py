"""LogQL parsed by Grafana's own grammar (@grafana/lezer-logql, the parser of Grafana's query editor, pinned in
.env and installed into the tool cache by scripts/install_tools.py): many queries in one node process
(tests/support/lezer_logql/parse.mjs), each answered with the facts the tests check (stream matchers,
pipeline stages, label filter names, parsers, log or metric query) or where it fails. Grafana's grammar has
no string or regular-expression semantics, so strings are unquoted the way Loki does (Go syntax: `"\\."`
fails as it does in Loki) and regular expressions are compiled (Python's `re`, refusing the constructs RE2,
Loki's engine, lacks)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

SCRIPT = Path(__file__).resolve().parent / "lezer_logql" / "parse.mjs"
LOKI_CONFIG = Path(__file__).resolve().parents[2] / "loki" / "loki.yml"
# RE2 has no look-around and no back-references; Python's re would accept them.
_NOT_RE2 = re.compile(r"\(\?<?[=!]|\\[1-9]")


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str       # = != =~ !~
    value: str    # unquoted


@dataclass(frozen=True)
class LabelFilter:
    label: str
    op: str       # = != =~ !~ == > >= < <=
    value: str | None
    value_type: str | None  # string | number | duration | bytes


@dataclass(frozen=True)
class Stage:
    type: str     # line_filter | parser | label_filter | line_format | label_format | drop_labels | keep_labels ...
    parser: str | None = None               # json | logfmt | regexp | unpack | pattern
    op: str | None = None                   # line filter: |= != |~ !~ |> !>
    strings: tuple[str, ...] = ()           # line filter strings
    filters: tuple[LabelFilter, ...] = ()   # label filter (several when joined with and/or)
    extracts: tuple[str, ...] = ()          # `| json a="b.c"`: the labels it defines


@dataclass(frozen=True)
class Parsed:
    text: str
    error: str | None
    kind: str | None                        # log | metric
    selectors: tuple[tuple[Matcher, ...], ...]
    stages: tuple[Stage, ...]
    grouping: tuple[str, ...]               # labels in by()/without()

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def matchers(self) -> list[Matcher]:
        return [m for sel in self.selectors for m in sel]

    @property
    def parsers(self) -> list[str]:
        return [s.parser for s in self.stages if s.type == "parser" and s.parser]

    @property
    def label_filters(self) -> list[LabelFilter]:
        return [f for s in self.stages if s.type == "label_filter" for f in s.filters]

    def filters_after_parser(self) -> list[LabelFilter]:
        """Label filters that follow a parser stage (they may filter on the fields it extracted)."""
        out, parsed = [], False
        for s in self.stages:
            parsed = parsed or s.type == "parser"
            if parsed and s.type == "label_filter":
                out += s.filters
        return out


def _regex_error(pattern: str) -> str | None:
    if _NOT_RE2.search(pattern):
        return f"regular expression {pattern!r} uses look-around or a back-reference, which RE2 (Loki) lacks"
    try:
        re.compile(pattern)
    except re.error as e:
        return f"regular expression {pattern!r}: {e}"
    return None


def _build(text: str, raw: dict) -> Parsed:
    selectors = tuple(tuple(Matcher(*m) for m in sel) for sel in raw["selectors"])
    stages = tuple(Stage(type=s["type"], parser=s.get("parser"), op=s.get("op"), strings=tuple(s.get("strings", ())),
                         filters=tuple(LabelFilter(**f) for f in s.get("filters", ())),
                         extracts=tuple(s.get("extracts", ())))
                   for s in raw["stages"])
    error = raw["error"]["text"] if raw["error"] else None
    if error is None:
        regexes = [m.value for m in (m for sel in selectors for m in sel) if m.op in ("=~", "!~")]
        regexes += [x for s in stages if s.type == "line_filter" and s.op in ("|~", "!~") for x in s.strings]
        regexes += [f.value for s in stages for f in s.filters if f.op in ("=~", "!~") and f.value is not None]
        error = next((e for e in map(_regex_error, regexes) if e), None)
    return Parsed(text, error, raw["kind"], selectors, stages, tuple(raw["grouping"]))


def parse_many(texts: list[str], grammar_dir: Path) -> list[Parsed]:
    """Every query parsed in one node process. grammar_dir holds node_modules/@grafana/lezer-logql: the tool
    cache's lezer-logql/<version>/bin, i.e. `require_tool("lezer-logql").parents[3]` (the tool's file is the
    package's package.json)."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH: the LogQL grammar runs on Node.js (Debian: apt-get install nodejs)")
    p = subprocess.run([node, str(SCRIPT), str(grammar_dir)], input=json.dumps(list(texts)), capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"{SCRIPT.name} failed (exit {p.returncode}): {p.stderr[-2000:]}")
    raws = json.loads(p.stdout)
    assert len(raws) == len(texts), (len(raws), len(texts))
    return [_build(t, r) for t, r in zip(texts, raws, strict=True)]


def index_labels(config: Path = LOKI_CONFIG) -> set[str]:
    """Loki's index labels for OTLP logs, as loki.yml's otlp_config declares them (`service.name` ->
    `service_name`): the only labels a stream selector can use."""
    attrs = yaml.safe_load(config.read_text())["limits_config"]["otlp_config"]["resource_attributes"]
    return {a.replace(".", "_") for c in attrs["attributes_config"] if c["action"] == "index_label"
            for a in c["attributes"]}
