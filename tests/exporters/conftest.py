"""Exporter tests: fixtures live in bridgetest.py (a uniquely named module, importable from tests here)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from bridgetest import procs  # noqa: F401
