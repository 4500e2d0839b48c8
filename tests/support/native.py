"""The native stack (tests/harness/stack.py) as a fixture's context manager."""
from __future__ import annotations

import contextlib

import pytest

from tests.harness.stack import NativeStack, StackError


@contextlib.contextmanager
def running_stack(stack: NativeStack, errors: list[str] | None = None):
    """Start `stack` for a fixture: skip where the harness cannot run, fail with the service's log when a
    service does not come up, and always tear down. `errors`, when given, remembers the first start failure
    so that later users of the same stack fail at once instead of starting it again."""
    reason = NativeStack.unavailable_reason()
    if reason:
        pytest.skip(f"native stack: {reason}")
    if errors:
        pytest.fail(f"native stack did not start (first error above): {errors[0][:200]}")
    try:
        stack.start()
    except StackError as e:
        stack.stop()
        if errors is not None:
            errors.append(str(e))
        pytest.fail(f"native stack did not start: {e}")
    try:
        yield stack
    finally:
        stack.stop()
