"""The live stack, started once for the package's live modules (tests/dashboards/livestack.py); the static
modules (test_generator.py, test_lint.py) never ask for it."""
from __future__ import annotations

import pytest

from tests.dashboards import livestack


@pytest.fixture(scope="package")
def live():
    with livestack.running() as lv:
        yield lv
