"""Shared fixtures: the native stack (real binaries, shipped configs) and tool lookups."""
from __future__ import annotations

from pathlib import Path

import pytest

from scripts import install_tools
from tests.harness.stack import NativeStack
# CI=true fails on any skip tests/expected-skips.yml does not name (hooks found by name here).
from tests.skipcheck import pytest_runtest_logreport, pytest_sessionfinish, pytest_terminal_summary  # noqa: F401
from tests.support.native import running_stack  # also imported from here by the tiers

ROOT = Path(__file__).resolve().parents[1]


def require_tool(name: str, binary: str | None = None) -> Path:
    """Path of a pinned tool binary, or skip with the reason it is missing (printed with -rs)."""
    p = install_tools.tool_path(name, binary)
    if p is None:
        pytest.skip(f"{name}: {install_tools.unavailable_reason(name)}")
    return p


_start_error: list[str] = []


@pytest.fixture(scope="session")
def native_stack():
    """Every compose service that has a native binary here, started once for the session."""
    with running_stack(NativeStack(), _start_error) as stack:
        yield stack
