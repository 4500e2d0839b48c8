"""CI that cannot be green by accident: with CI=true, a skip that tests/expected-skips.yml does not name
fails the run, naming the test and its reason. A missing install step (a Debian package, a tool build)
shows up as a skip, so this is what catches it.

tests/conftest.py imports the hooks below; `-p tests.skipcheck` loads them into any other pytest run
(the self-test does that). OBS_EXPECTED_SKIPS points at another list (tests only)."""
from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

LIST = Path(__file__).with_name("expected-skips.yml")


@dataclass(frozen=True)
class Expected:
    test: str     # fnmatch pattern on the node id
    reason: str   # fnmatch pattern on the skip reason
    why: str      # why it cannot run on CI's machine

    def matches(self, nodeid: str, reason: str) -> bool:
        return fnmatch.fnmatchcase(nodeid, self.test) and fnmatch.fnmatchcase(reason, self.reason)


def load(path: Path | None = None) -> list[Expected]:
    path = path or Path(os.environ.get("OBS_EXPECTED_SKIPS") or LIST)
    entries = yaml.safe_load(path.read_text()) or []
    out = []
    for i, e in enumerate(entries):
        missing = {"test", "reason", "why"} - set(e or {})
        if missing or not str(e.get("why", "")).strip():
            raise ValueError(f"{path}: entry {i + 1} needs test, reason and a non-empty why (missing {sorted(missing)})")
        out.append(Expected(str(e["test"]), str(e["reason"]), str(e["why"])))
    return out


def skip_reason(report: pytest.TestReport) -> str:
    lr = report.longrepr
    text = lr[2] if isinstance(lr, tuple) and len(lr) == 3 else str(lr)
    return text.removeprefix("Skipped: ")


def unexpected(skips: list[tuple[str, str]], expected: list[Expected]) -> list[tuple[str, str]]:
    return [(n, r) for n, r in skips if not any(e.matches(n, r) for e in expected)]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


_skips: list[tuple[str, str]] = []
_found: list[tuple[str, str]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skips.append((report.nodeid, skip_reason(report)))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not in_ci() or not _skips:
        return
    _found[:] = unexpected(_skips, load())
    if _found and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config) -> None:
    if not _found:
        return
    tr = terminalreporter
    tr.section("unexpected skips (CI=true)", red=True)
    for nodeid, reason in _found:
        tr.line(f"UNEXPECTED SKIP {nodeid}: {reason}", red=True)
    tr.line(f"{len(_found)} skip(s) not in {LIST.relative_to(LIST.parents[1])}: install what is missing "
            "(scripts/install-system-packages, scripts/install_tools.py) or add an entry with its reason.", red=True)
