"""Shipped files refer only to documents in this repository: every relative Markdown link, every
repository path to a .md file named in a comment or docstring, and every link to a file of this repository
on GitHub must name a file that exists here; and nothing cites the design notes this project was written
from (seed documents, shared references), which are not part of it. Tests are not shipped; everything
else is."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".pytest_cache", ".ruff_cache", "tests"}

# Documents outside the repository (the notes the stack was designed from).
EXTERNAL = [
    (re.compile(r"(?<![\w.-])seeds?/", re.I), "a seeds/ document"),
    (re.compile(r"\bseeds? \d{3}\b", re.I), "a seed document (seed NNN)"),
    (re.compile(r"\.\./shared/"), "a ../shared/ document"),
    (re.compile(r"(?<![\w.-])reference/"), "a reference/ document"),
    (re.compile(r"\b(?:anchors|platform-apis|rules-and-dashboards)\.md\b"), "a design-notes document"),
]
URL = re.compile(r"""[a-z][a-z0-9+.-]*://[^\s"'<>`)\]]+""", re.I)
OWN_URL = re.compile(r"https://github\.com/obs-stack/obs-stack/(?:blob|tree|raw)/[^/\s]+/([^\s\"'<>`)#?\]]+)")
MD_LINK = re.compile(r"\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
MD_PATH = re.compile(r"(?<![\w./:@$*{-])((?:\.\.?/)*[\w-][\w.-]*(?:/[\w.-]+)*\.md)\b(?!\.)")
# Files that name other projects' files by their path in those projects, as data.
UPSTREAM_PATHS = {"scripts/config-reference": "parses Loki's and Tempo's configuration docs, named by their "
                                              "paths in those repositories"}
# Known offenders in files this change does not own: strict, so the test says when they are fixed.
# Files allowed to fail the scan for now (rel path -> why); strict xfail, so a fixed file must leave the list.
KNOWN: dict[str, str] = {}


def shipped_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, check=True, timeout=60).stdout.decode()
        names = [n for n in out.split("\0") if n]
    except (OSError, subprocess.SubprocessError):
        names = []
        for d, dirs, files in os.walk(ROOT):
            dirs[:] = [x for x in dirs if x not in SKIP_DIRS and not x.endswith(".egg-info")]
            names += [str(Path(d, f).relative_to(ROOT)) for f in files]
    out_paths = []
    for n in names:
        parts = Path(n).parts
        if set(parts[:-1]) & SKIP_DIRS or any(p.endswith(".egg-info") for p in parts):
            continue
        p = ROOT / n
        if p.is_file() and not p.is_symlink():
            out_paths.append(p)
    return sorted(out_paths)


def _text(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _exists(target: str, base: Path) -> bool:
    """A path relative to the file or to the repository root; a bare file name anywhere in the repository."""
    target = target.split("#", 1)[0].split("?", 1)[0]
    if not target:
        return True
    if "/" not in target:
        return target in BASENAMES
    for start in (base, ROOT):
        p = (start / target).resolve()
        if p.is_relative_to(ROOT) and p.exists():
            return True
    return False


def problems(path: Path, text: str) -> list[str]:
    rel = path.relative_to(ROOT)
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        where = f"{rel}:{n}"
        for m in OWN_URL.finditer(line):
            if not (ROOT / m.group(1)).exists():
                out.append(f"{where}: links {m.group(0)}, but {m.group(1)} is not in the repository")
        for m in MD_LINK.finditer(line) if path.suffix == ".md" else ():
            t = m.group(1)
            if re.match(r"[a-z][a-z0-9+.-]*:|#|/|\$|\{", t, re.I):
                continue
            t = t.split("#", 1)[0]
            if t and not (path.parent / t).resolve().exists():
                out.append(f"{where}: Markdown link to {t}, which is not in the repository (relative to {rel.parent})")
        bare = URL.sub(" ", line)
        for pattern, what in EXTERNAL:
            for m in pattern.finditer(bare):
                out.append(f"{where}: refers to {what} ({m.group(0)!r}), which is not in the repository: "
                           f"point to an in-repo document or state the fact inline")
        for m in MD_PATH.finditer(MD_LINK.sub(" ", bare)) if str(rel) not in UPSTREAM_PATHS else ():
            if not _exists(m.group(1), path.parent):
                out.append(f"{where}: names {m.group(1)}, which is not in the repository")
    return out


FILES = [p for p in shipped_files() if _text(p) is not None]
BASENAMES = {p.name for p in FILES}


def _param(p: Path):
    rel = str(p.relative_to(ROOT))
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN[rel])] if rel in KNOWN else []
    return pytest.param(p, id=rel, marks=marks)


def test_the_scan_sees_the_shipped_files():
    names = {str(p.relative_to(ROOT)) for p in FILES}
    assert {"README.md", "docs/logging.md", "prometheus/rules/stack.yml", "alertmanager/alertmanager.yml",
            "grafana/dashboards_src/boards_apps.py", "otelcol/config.yaml", "loki/loki.yml"} <= names
    assert any(n.startswith("grafana/dashboards/") and n.endswith(".json") for n in names)
    assert not any(n.startswith("tests/") for n in names)


@pytest.mark.parametrize("text,bad", [
    ("see [the notes](../shared/anchors.md)", True),
    ("thresholds from seed 000 part 2.2", True),
    ("(seeds 000/002/004: 10% of traces)", True),
    ("seeds/004-alerts.md", True),
    ("rules-and-dashboards.md says so", True),
    ("reference/platform-apis.md", True),
    ("[railway](docs/no-such-page.md)", True),
    ("[railway](railway.md)", True),  # relative to README.md's folder: there is no ./railway.md
    ("# docs: runbooks/NO-SUCH.md", True),
    ("https://github.com/obs-stack/obs-stack/blob/main/runbooks/no-such-runbook.md", True),
    ("[railway](docs/railway.md#exposing) and docs/metrics-contract.md", False),
    ("https://github.com/obs-stack/obs-stack/blob/main/runbooks/api-down.md", False),
    ("https://github.com/grafana/loki/blob/v3.7.6/docs/sources/shared/configuration.md", False),
    ("(docs/sources/shared/configuration.md, tag v3.7.6)", True),
    ("DOC = ROOT / \"docs\" / \"dashboards.md\"", False),  # a file name that exists in the repository
    ("see upgrade.md", True),
    ("tests/static/config_reference/loki-3.7.8.yml and `obs-bridge simulator --seed 42`", False),
    ("value = \"^https://github\\.com/obs-stack/obs-stack/blob/main/runbooks/[a-z0-9-]+\\.md$\" and *.md", False),
])
def test_the_scan_itself(text, bad):
    assert bool(problems(ROOT / "README.md", text)) == bad, problems(ROOT / "README.md", text)


@pytest.mark.parametrize("path", [_param(p) for p in FILES])
def test_references_name_documents_in_the_repository(path):
    found = problems(path, _text(path))
    assert not found, "\n".join(found)
