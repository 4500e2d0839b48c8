"""Shared fixtures: the native stack (real binaries, shipped configs) and tool lookups."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import install_tools  # noqa: E402
from tests.harness.stack import NativeStack, StackError  # noqa: E402
# CI=true fails on any skip tests/expected-skips.yml does not name (hooks found by name here).
from tests.skipcheck import pytest_runtest_logreport, pytest_sessionfinish, pytest_terminal_summary  # noqa: E402,F401


def require_tool(name: str, binary: str | None = None) -> Path:
    """Path of a pinned tool binary, or skip with the reason it is missing (printed with -rs)."""
    p = install_tools.tool_path(name, binary)
    if p is None:
        pytest.skip(f"{name}: {install_tools.unavailable_reason(name)}")
    return p


_start_error: list[str] = []


@contextlib.contextmanager
def running_stack(stack: NativeStack):
    """Start `stack` for a fixture: skip where the harness cannot run, fail with the service's log
    when a service does not come up, and always tear down."""
    reason = NativeStack.unavailable_reason()
    if reason:
        pytest.skip(f"native stack: {reason}")
    try:
        stack.start()
    except StackError as e:
        stack.stop()
        pytest.fail(f"native stack did not start: {e}")
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def native_stack():
    """Every compose service that has a native binary here, started once for the session."""
    reason = NativeStack.unavailable_reason()
    if reason:
        pytest.skip(f"native stack: {reason}")
    if _start_error:
        pytest.fail(f"native stack did not start (first error above): {_start_error[0][:200]}")
    stack = NativeStack()
    try:
        stack.start()
    except StackError as e:
        stack.stop()
        _start_error.append(str(e))
        pytest.fail(f"native stack did not start: {e}")
    yield stack
    stack.stop()
