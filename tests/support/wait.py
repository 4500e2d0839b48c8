"""wait_for(): poll a condition until it holds, with a deadline and a failure that says what was awaited."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The condition did not hold in time (an AssertionError, so a test fails rather than errors)."""


class StopWaiting(Exception):
    """Raise from the polled function when waiting longer cannot help (the process being waited on died)."""


def wait_for(fn: Callable[[], T], timeout: float = 20.0, interval: float = 0.1, what: str = "condition") -> T:
    """Call fn() every `interval` s until it returns something truthy, and return that. Exceptions count as
    "not yet" (the last one is shown), except StopWaiting, which ends the wait at once as a WaitTimeout with
    its message. At the deadline: WaitTimeout naming `what` and the last value or exception."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            got = fn()
            if got:
                return got
            last = got
        except StopWaiting as e:
            raise WaitTimeout(f"gave up waiting for {what}: {e}") from None
        except Exception as e:  # noqa: BLE001 - shown if the deadline passes
            last = e
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}; last: {last!r}")
        time.sleep(interval)
